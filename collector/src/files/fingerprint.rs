//! File identity: a hash of the file's first line.
//!
//! A CRI or docker line starts with a nanosecond timestamp, so a file's first line is, in
//! practice, unique to that file. Keying checkpoints on it (not on the path or inode) is
//! what makes every kubelet rotation safe:
//! - rename (`0.log` → `0.log.<stamp>`): same first line, so the reader keeps its position;
//! - copytruncate: the copy has the same first line, so reading resumes in the copy at the
//!   old position, while the truncated original gets a new first line, hence a new identity
//!   read from 0;
//! - inode reuse and a container restart (`1.log`): a new first line, a new identity.
//!
//! A file without a complete first line yet has no identity and is not read until it has
//! one (at most one line late, never lost).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use xxhash_rust::xxh3::xxh3_64;

/// Longest first line considered; a longer one is identified by its first bytes.
const MAX_PROBE: usize = 4096;

/// The identity of `file`: `<hash of first line>-<its length>`, or `None` while the file
/// holds no complete first line (and is shorter than the probe).
pub fn fingerprint(file: &File) -> io::Result<Option<String>> {
    fingerprint_read(|buf, at| file.read_at(buf, at))
}

/// The identity of the content `read` yields (`read(buf, offset)` like `pread`), so a
/// compressed rotation can be identified from its decompressed head.
pub(crate) fn fingerprint_read(
    mut read: impl FnMut(&mut [u8], u64) -> io::Result<usize>,
) -> io::Result<Option<String>> {
    let mut buf = [0u8; MAX_PROBE];
    let mut filled = 0;
    while filled < buf.len() {
        let n = read(&mut buf[filled..], filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
        if memchr::memchr(b'\n', &buf[..filled]).is_some() {
            break;
        }
    }
    let head = match memchr::memchr(b'\n', &buf[..filled]) {
        Some(nl) => &buf[..=nl],
        None if filled == buf.len() => &buf[..],
        None => return Ok(None),
    };
    Ok(Some(format!("{:016x}-{}", xxh3_64(head), head.len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn identity_follows_the_first_line_not_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("0.log");
        std::fs::write(&a, "").unwrap();
        assert_eq!(
            fingerprint(&File::open(&a).unwrap()).unwrap(),
            None,
            "empty: no identity yet"
        );
        std::fs::write(&a, "2025-03-04T09:14:05.1Z stdout P half").unwrap();
        assert_eq!(
            fingerprint(&File::open(&a).unwrap()).unwrap(),
            None,
            "no complete line yet"
        );
        let mut f = std::fs::OpenOptions::new().append(true).open(&a).unwrap();
        writeln!(f, " done").unwrap();
        let id = fingerprint(&File::open(&a).unwrap()).unwrap().unwrap();
        writeln!(f, "2025-03-04T09:14:06Z stdout F more").unwrap();
        assert_eq!(
            fingerprint(&File::open(&a).unwrap()).unwrap().as_ref(),
            Some(&id),
            "growth keeps it"
        );
        let renamed = dir.path().join("0.log.20250304-091406");
        std::fs::rename(&a, &renamed).unwrap();
        assert_eq!(
            fingerprint(&File::open(&renamed).unwrap())
                .unwrap()
                .as_ref(),
            Some(&id),
            "rename keeps it"
        );
        std::fs::write(&a, "2025-03-04T09:14:07Z stdout F new file\n").unwrap();
        assert_ne!(
            fingerprint(&File::open(&a).unwrap()).unwrap().as_ref(),
            Some(&id)
        );
        std::fs::write(&a, vec![b'x'; MAX_PROBE + 10]).unwrap();
        assert!(
            fingerprint(&File::open(&a).unwrap()).unwrap().is_some(),
            "a huge first line is cut at the probe"
        );
    }
}
