//! Reading one container log file: complete lines out, partial (`P`) chunks merged, the
//! resume position kept, and truncation or replacement under us noticed.

use super::FileSourceMetrics;
use super::cri::{PartialLineMerger, decode_cri};
use super::fingerprint::fingerprint;
use model::{Attributes, Record, RecordId, Stream, Timestamp, names};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// Bytes read per `pread`.
pub(crate) const READ_CHUNK: usize = 256 * 1024;

/// Device and inode: which open file a path points at right now.
pub(crate) type DevIno = (u64, u64);

/// The read state of one file, identified by its [`fingerprint`].
pub(crate) struct FileTail {
    path: PathBuf,
    /// The identity (first-line fingerprint); also the checkpoint key and the id seed.
    pub(crate) key: String,
    pub(crate) dev_ino: DevIno,
    resource: Arc<Attributes>,
    /// Kept open: a rotated or deleted file is read to its end through this handle.
    file: File,
    /// Offset of the first byte not yet consumed as part of a complete line.
    offset: u64,
    /// Bytes after `offset` that do not end in a newline yet.
    pub(super) carry: Vec<u8>,
    /// Inside a line longer than the cap whose head was already emitted.
    discarding: bool,
    partials: PartialLineMerger,
    max_line_bytes: usize,
    /// The file's size when last read, to skip the identity check when nothing changed.
    last_len: u64,
    /// The file disappeared from the directory; drop it once read to its end.
    pub(crate) gone: bool,
    /// The file was truncated or rewritten under us (copytruncate): the bytes past our
    /// position live on in the copy, if one appears with our identity.
    pub(crate) detached: bool,
    /// The position last put in a batch's checkpoints.
    reported: u64,
}

impl FileTail {
    pub(crate) fn new(
        path: PathBuf,
        resource: Attributes,
        file: File,
        dev_ino: DevIno,
        key: String,
        start_offset: u64,
        max_line_bytes: usize,
    ) -> Self {
        FileTail {
            key,
            path,
            dev_ino,
            resource: Arc::new(resource),
            file,
            offset: start_offset,
            carry: Vec::new(),
            discarding: false,
            partials: PartialLineMerger::new(max_line_bytes),
            max_line_bytes,
            last_len: 0,
            gone: false,
            detached: false,
            reported: start_offset,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file was renamed (kubelet rotation): same file, new name.
    pub(crate) fn renamed(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// Continues in `file` (a copy with our identity, made by copytruncate).
    pub(crate) fn reattach(&mut self, path: PathBuf, file: File, dev_ino: DevIno) {
        tracing::info!(from = %self.path.display(), to = %path.display(), "log file was copied and truncated; continuing in the copy");
        self.path = path;
        self.file = file;
        self.dev_ino = dev_ino;
        self.last_len = 0;
        self.detached = false;
    }

    /// Where a restart should resume: before any line not yet emitted in full.
    pub(crate) fn checkpoint_position(&self) -> u64 {
        self.partials
            .earliest_pending()
            .map_or(self.offset, |p| p.min(self.offset))
    }

    /// The resume position, if it moved since it was last taken.
    pub(crate) fn take_moved_position(&mut self) -> Option<u64> {
        let position = self.checkpoint_position();
        (position != self.reported).then(|| {
            self.reported = position;
            position
        })
    }

    /// Reads what the file has past our position, appending records to `out`, until the file
    /// has nothing more or `out` holds `max_records`. Returns the bytes read.
    pub(crate) fn read_available(
        &mut self,
        out: &mut Vec<Record>,
        max_records: usize,
        buf: &mut [u8],
        metrics: &FileSourceMetrics,
    ) -> io::Result<u64> {
        if self.detached {
            return Ok(0);
        }
        let len = self.file.metadata()?.len();
        let read_at = self.offset + self.carry.len() as u64;
        if len != self.last_len && read_at > 0 {
            // Truncated (shorter than what we read) or rewritten in place (a new first line):
            // this handle no longer holds the rest of our file.
            let replaced =
                len < read_at || fingerprint(&self.file)?.as_deref() != Some(self.key.as_str());
            if replaced {
                tracing::info!(path = %self.path.display(), len, read_at, "log file truncated or rewritten under the reader");
                self.detached = true;
                return Ok(0);
            }
        }
        self.last_len = len;
        if len == read_at {
            return Ok(0); // nothing new: the common case of an idle file
        }
        let mut total = 0u64;
        while out.len() < max_records {
            let pos = self.offset + self.carry.len() as u64;
            let n = self.file.read_at(buf, pos)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            metrics.bytes_read.fetch_add(n as u64, Relaxed);
            self.carry.extend_from_slice(&buf[..n]);
            self.consume_lines(out, metrics);
        }
        Ok(total)
    }

    /// The file is done (gone and read to its end): a line still waiting for its `F` is
    /// emitted as it is, since its end will never come.
    pub(crate) fn finish(&mut self, out: &mut Vec<Record>) {
        let pending: Vec<_> = self.partials.flush().collect();
        for line in pending {
            let mut r = self.record(
                line.position,
                line.timestamp,
                Some(line.stream),
                line.content,
            );
            if line.truncated {
                r.attributes.insert(names::LOG_TRUNCATED, true);
            }
            out.push(r);
        }
    }

    fn consume_lines(&mut self, out: &mut Vec<Record>, metrics: &FileSourceMetrics) {
        let max_line_bytes = self.max_line_bytes;
        let carry = std::mem::take(&mut self.carry);
        let mut start = 0usize;
        for nl in memchr::memchr_iter(b'\n', &carry) {
            let line_offset = self.offset + start as u64;
            let line = &carry[start..nl];
            start = nl + 1;
            if self.discarding {
                // The rest of an over-long line whose head was already emitted.
                self.discarding = false;
                continue;
            }
            metrics.lines_read.fetch_add(1, Relaxed);
            self.handle_line(line, line_offset, out, metrics);
        }
        self.offset += start as u64;
        let rest = &carry[start..];
        // A runtime never writes more than a few KiB without a newline; a file that does is
        // not a CRI log. Cut it so memory stays bounded.
        if rest.len() > max_line_bytes + 128 {
            if !self.discarding {
                let mut record = self.record(
                    self.offset,
                    Timestamp::now(),
                    None,
                    rest[..max_line_bytes].to_vec(),
                );
                record.attributes.insert(names::LOG_TRUNCATED, true);
                record.attributes.insert(
                    names::LOG_DECODE_ERROR,
                    "line without newline exceeds max_line_bytes",
                );
                metrics.truncated_lines.fetch_add(1, Relaxed);
                out.push(record);
                self.discarding = true;
            }
            self.offset += rest.len() as u64;
        } else {
            self.carry = rest.to_vec();
        }
    }

    fn handle_line(
        &mut self,
        line: &[u8],
        line_offset: u64,
        out: &mut Vec<Record>,
        metrics: &FileSourceMetrics,
    ) {
        let cri = match decode_cri(line) {
            Ok(cri) => cri,
            Err(e) => {
                // Keep the raw line: losing it would hide exactly the lines that need a look.
                metrics.decode_errors.fetch_add(1, Relaxed);
                let mut record = self.record(line_offset, Timestamp::now(), None, line.to_vec());
                record
                    .attributes
                    .insert(names::LOG_DECODE_ERROR, e.to_string());
                out.push(record);
                return;
            }
        };
        let Some(line) = self.partials.push(&cri, line_offset) else {
            metrics.partial_chunks.fetch_add(1, Relaxed);
            return;
        };
        let mut record = self.record(
            line.position,
            line.timestamp,
            Some(line.stream),
            line.content,
        );
        if line.truncated {
            metrics.truncated_lines.fetch_add(1, Relaxed);
            record.attributes.insert(names::LOG_TRUNCATED, true);
        }
        out.push(record);
    }

    fn record(
        &self,
        offset: u64,
        timestamp: Timestamp,
        stream: Option<Stream>,
        bytes: Vec<u8>,
    ) -> Record {
        let mut r = Record::log_from_bytes(
            RecordId::from_source(self.key.as_bytes(), offset),
            timestamp,
            Timestamp::now(),
            Arc::clone(&self.resource),
            bytes,
        );
        r.stream = stream;
        r
    }
}
