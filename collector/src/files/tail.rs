//! Reading one container log file: complete lines out, partial (`P`) chunks merged, the
//! resume position kept.

use super::FileSourceMetrics;
use super::cri::{PartialLineMerger, decode_cri};
use model::{Attributes, Record, RecordId, Stream, Timestamp, names};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

const READ_CHUNK: usize = 256 * 1024;

/// The read state of one file.
pub(crate) struct FileTail {
    path: PathBuf,
    /// The checkpoint key. The path for now; a content fingerprint once rotation is handled.
    pub(crate) key: String,
    resource: Arc<Attributes>,
    file: Option<File>,
    /// Offset of the first byte not yet consumed as part of a complete line.
    offset: u64,
    /// Bytes after `offset` that do not end in a newline yet.
    pub(super) carry: Vec<u8>,
    /// Inside a line longer than the cap whose head was already emitted.
    discarding: bool,
    partials: PartialLineMerger,
    max_line_bytes: usize,
    /// The file disappeared from the directory; drop it once read to its end.
    pub(crate) gone: bool,
    /// The position last put in a batch's checkpoints.
    reported: u64,
}

impl FileTail {
    pub(crate) fn new(
        path: PathBuf,
        resource: Attributes,
        start_offset: u64,
        max_line_bytes: usize,
    ) -> Self {
        FileTail {
            key: path.to_string_lossy().into_owned(),
            path,
            resource: Arc::new(resource),
            file: None,
            offset: start_offset,
            carry: Vec::new(),
            discarding: false,
            partials: PartialLineMerger::new(max_line_bytes),
            max_line_bytes,
            gone: false,
            reported: start_offset,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
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
        metrics: &FileSourceMetrics,
    ) -> io::Result<u64> {
        let mut file = match self.file.take() {
            Some(f) => f,
            None => File::open(&self.path)?,
        };
        let result = self.read_from(&mut file, out, max_records, metrics);
        self.file = Some(file);
        result
    }

    fn read_from(
        &mut self,
        file: &mut File,
        out: &mut Vec<Record>,
        max_records: usize,
        metrics: &FileSourceMetrics,
    ) -> io::Result<u64> {
        let read_at = self.offset + self.carry.len() as u64;
        let len = file.metadata()?.len();
        if len < read_at {
            // The file shrank under us (copytruncate); proper handling comes with rotation
            // support. Restart at its beginning rather than read nothing forever.
            tracing::warn!(path = %self.path.display(), len, read_at, "log file shrank; reading it again from the start");
            self.offset = 0;
            self.carry.clear();
            self.partials.clear();
            self.discarding = false;
        }
        let mut total = 0u64;
        let mut buf = vec![0u8; READ_CHUNK];
        while out.len() < max_records {
            let pos = self.offset + self.carry.len() as u64;
            file.seek(SeekFrom::Start(pos))?;
            let n = file.read(&mut buf)?;
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
