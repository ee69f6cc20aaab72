//! Reading one container log file: complete lines out, partial (`P`) chunks merged, the
//! resume position kept, and truncation or replacement under us noticed.

use super::FileSourceMetrics;
use super::cri::{CriLine, MergedLine, PartialLineMerger, decode_cri};
use super::docker::decode_docker_json;
use super::fingerprint::fingerprint;
use super::layout::LogFile;
use super::multiline::TailLine;
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

/// How a file frames its lines, told by its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineFormat {
    /// `<ts> <stream> <P|F> <content>` (containerd, CRI-O).
    Cri,
    /// `{"log":…,"stream":…,"time":…}` (docker json-file, cri-dockerd).
    DockerJson,
}

impl LineFormat {
    /// The format and the runtime timestamp of the file's first line (`MAX` when it has
    /// none): the first line tells both what the file is and how old it is.
    fn detect(file: &File) -> (Self, Timestamp) {
        let mut head = [0u8; 4096];
        let n = file.read_at(&mut head, 0).unwrap_or(0);
        let first = &head[..n];
        let first = memchr::memchr(b'\n', first).map_or(first, |nl| &first[..nl]);
        if first.first() == Some(&b'{') {
            let ts = decode_docker_json(first).map(|l| l.as_cri().timestamp);
            (LineFormat::DockerJson, ts.unwrap_or(Timestamp::MAX))
        } else {
            let ts = decode_cri(first).map(|l| l.timestamp);
            (LineFormat::Cri, ts.unwrap_or(Timestamp::MAX))
        }
    }
}

/// The read state of one file, identified by its [`fingerprint`].
pub(crate) struct FileTail {
    path: PathBuf,
    /// The container run the file belongs to: lines are grouped per run, across rotations.
    pub(crate) container_run: Arc<str>,
    /// Whether its lines go through multi-line grouping.
    pub(crate) group_lines: bool,
    format: LineFormat,
    /// When the file's first line was written: files of one container run are read oldest
    /// first, so that lines reach the grouping in the order the container wrote them, even
    /// when a listing raced with a rotation and names say nothing.
    pub(crate) first_written: Timestamp,
    /// Lines that start before this offset may have been delivered by an earlier run.
    replay_until: u64,
    /// The identity (first-line fingerprint); also the checkpoint key and the id seed.
    pub(crate) key: Arc<str>,
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
    /// The read offset last put in a batch's checkpoints as how far lines were sent.
    reported_sent: u64,
}

impl FileTail {
    pub(crate) fn new(
        path: PathBuf,
        owner: &LogFile,
        file: File,
        dev_ino: DevIno,
        key: String,
        start_offset: u64,
        max_line_bytes: usize,
    ) -> Self {
        let (format, first_written) = LineFormat::detect(&file);
        FileTail {
            format,
            first_written,
            key: key.into(),
            path,
            container_run: owner.container_run().into(),
            group_lines: false,
            replay_until: 0,
            dev_ino,
            resource: Arc::new(owner.resource()),
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
            reported_sent: start_offset,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Lines before `offset` may have been delivered before a restart: flag them so the
    /// sinks replace rather than duplicate them.
    pub(crate) fn replaying_until(mut self, offset: u64) -> Self {
        self.replay_until = offset;
        self
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

    /// Where a restart should resume: before any line not yet emitted in full, and before
    /// `hold` (the first of its lines a multi-line group still holds).
    pub(crate) fn checkpoint_position(&self, hold: Option<u64>) -> u64 {
        let own = self
            .partials
            .earliest_pending()
            .map_or(self.offset, |p| p.min(self.offset));
        hold.map_or(own, |h| h.min(own))
    }

    /// The resume position, if it moved since it was last taken; and how far lines were
    /// read, if that is past the resume position and moved: the lines in between went out
    /// (or are held) and a restart re-sends them as replacements.
    pub(crate) fn take_moved_positions(&mut self, hold: Option<u64>) -> (Option<u64>, Option<u64>) {
        let position = self.checkpoint_position(hold);
        let moved = (position != self.reported).then(|| {
            self.reported = position;
            position
        });
        let sent = (self.offset > position && self.offset != self.reported_sent).then(|| {
            self.reported_sent = self.offset;
            self.offset
        });
        (moved, sent)
    }

    /// Reads what the file has past our position, appending records to `out`, until the file
    /// has nothing more or `out` holds `max_records`. Returns the bytes read.
    pub(crate) fn read_available(
        &mut self,
        out: &mut Vec<TailLine>,
        max_records: usize,
        buf: &mut [u8],
        metrics: &FileSourceMetrics,
    ) -> io::Result<u64> {
        if self.detached {
            return Ok(0);
        }
        let len = self.file.metadata()?.len();
        let read_at = self.offset + self.carry.len() as u64;
        if len != self.last_len {
            // Truncated (shorter than what we read) or rewritten in place (a new first line):
            // this handle no longer holds the rest of our file. Checked at offset 0 too: a
            // file found (or resumed) at 0 and copied-and-truncated before its first read
            // would otherwise be read with another file's identity, whose ids it would take.
            let replaced = len < read_at || fingerprint(&self.file)?.as_deref() != Some(&*self.key);
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
    pub(crate) fn finish(&mut self, out: &mut Vec<TailLine>, metrics: &FileSourceMetrics) {
        let pending: Vec<_> = self.partials.flush().collect();
        for line in pending {
            metrics.partial_flushed.fetch_add(1, Relaxed);
            out.push(self.unfinished(line));
        }
    }

    /// Emits lines whose end has not come for `timeout` (a writer that died mid-line).
    pub(crate) fn flush_stale_partials(
        &mut self,
        timeout: std::time::Duration,
        out: &mut Vec<TailLine>,
        metrics: &FileSourceMetrics,
    ) {
        let stale: Vec<_> = self.partials.flush_older_than(timeout).collect();
        for line in stale {
            metrics.partial_flushed.fetch_add(1, Relaxed);
            tracing::debug!(path = %self.path.display(), position = line.position, "line without its end after the timeout; emitting it as it is");
            out.push(self.unfinished(line));
        }
    }

    fn unfinished(&self, line: MergedLine) -> TailLine {
        let mut l = self.line(
            line.position,
            line.timestamp,
            Some(line.stream),
            line.content,
        );
        l.record.attributes.insert(names::LOG_PARTIAL, true);
        if line.truncated {
            l.record.attributes.insert(names::LOG_TRUNCATED, true);
        }
        l
    }

    fn consume_lines(&mut self, out: &mut Vec<TailLine>, metrics: &FileSourceMetrics) {
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
                let mut line = self.line(
                    self.offset,
                    Timestamp::now(),
                    None,
                    rest[..max_line_bytes].to_vec(),
                );
                line.record.attributes.insert(names::LOG_TRUNCATED, true);
                line.record.attributes.insert(
                    names::LOG_DECODE_ERROR,
                    "line without newline exceeds max_line_bytes",
                );
                metrics.truncated_lines.fetch_add(1, Relaxed);
                out.push(line);
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
        out: &mut Vec<TailLine>,
        metrics: &FileSourceMetrics,
    ) {
        let decoded = match self.format {
            LineFormat::Cri => decode_cri(line).map_err(|e| e.to_string()),
            LineFormat::DockerJson => match decode_docker_json(line) {
                Ok(docker) => {
                    self.push_decoded(&docker.as_cri(), line_offset, out, metrics);
                    return;
                }
                Err(e) => Err(e.to_string()),
            },
        };
        match decoded {
            Ok(cri) => self.push_decoded(&cri, line_offset, out, metrics),
            Err(e) => {
                // Keep the raw line: losing it would hide exactly the lines that need a look.
                metrics.decode_errors.fetch_add(1, Relaxed);
                let mut raw = self.line(line_offset, Timestamp::now(), None, line.to_vec());
                raw.record.attributes.insert(names::LOG_DECODE_ERROR, e);
                out.push(raw);
            }
        }
    }

    fn push_decoded(
        &mut self,
        decoded: &CriLine<'_>,
        line_offset: u64,
        out: &mut Vec<TailLine>,
        metrics: &FileSourceMetrics,
    ) {
        let Some(merged) = self.partials.push(decoded, line_offset) else {
            metrics.partial_chunks.fetch_add(1, Relaxed);
            return;
        };
        let mut line = self.line(
            merged.position,
            merged.timestamp,
            Some(merged.stream),
            merged.content,
        );
        if merged.truncated {
            metrics.truncated_lines.fetch_add(1, Relaxed);
            line.record.attributes.insert(names::LOG_TRUNCATED, true);
        }
        out.push(line);
    }

    fn line(
        &self,
        position: u64,
        timestamp: Timestamp,
        stream: Option<Stream>,
        bytes: Vec<u8>,
    ) -> TailLine {
        let mut record = Record::log_from_bytes(
            RecordId::from_source(self.key.as_bytes(), position),
            timestamp,
            Timestamp::now(),
            Arc::clone(&self.resource),
            bytes,
        );
        record.stream = stream;
        TailLine {
            record,
            position,
            replay: position < self.replay_until,
        }
    }
}
