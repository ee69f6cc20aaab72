//! The CRI log line: `<RFC3339Nano ts> <stdout|stderr> <P|F>[:tags] <content>` (DESIGN.md §5).

use model::{Stream, Timestamp};

/// One decoded CRI line, borrowing its content from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CriLine<'a> {
    /// The runtime's timestamp (containerd trims fraction zeros; CRI-O writes nine digits
    /// and a numeric offset; both parse).
    pub timestamp: Timestamp,
    /// stdout or stderr.
    pub stream: Stream,
    /// `P`: a chunk of a longer line that continues in the next `P`/`F` of the same stream.
    pub partial: bool,
    /// The container's bytes, without the trailing newline.
    pub content: &'a [u8],
}

/// Why a line is not a CRI line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CriDecodeError {
    /// Fewer than the three space-separated header fields.
    #[error("not a CRI line: expected `<timestamp> <stream> <tag> <content>`")]
    MissingField,
    /// The first field is not an RFC 3339 timestamp.
    #[error("CRI timestamp is not RFC 3339")]
    BadTimestamp,
    /// The stream is neither stdout nor stderr.
    #[error("CRI stream is neither stdout nor stderr")]
    BadStream,
    /// The tag does not start with P or F.
    #[error("CRI tag is neither P nor F")]
    BadTag,
}

/// Decodes one line (without its `\n`).
pub fn decode_cri(line: &[u8]) -> Result<CriLine<'_>, CriDecodeError> {
    let (ts, rest) = split_field(line).ok_or(CriDecodeError::MissingField)?;
    let (stream, rest) = split_field(rest).ok_or(CriDecodeError::MissingField)?;
    // An empty line is written as `… F ` (trailing space); tolerate a writer that drops it.
    let (tag, content) = split_field(rest).unwrap_or((rest, &[][..]));
    if tag.is_empty() {
        return Err(CriDecodeError::MissingField);
    }
    let timestamp = std::str::from_utf8(ts)
        .ok()
        .and_then(|s| Timestamp::parse_rfc3339(s).ok())
        .ok_or(CriDecodeError::BadTimestamp)?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return Err(CriDecodeError::BadStream),
    };
    // Tags are `:`-separated; the first says whether the line is partial.
    let first_tag = tag.split(|&b| b == b':').next().unwrap_or(tag);
    let partial = match first_tag {
        b"F" => false,
        b"P" => true,
        _ => return Err(CriDecodeError::BadTag),
    };
    Ok(CriLine {
        timestamp,
        stream,
        partial,
        content,
    })
}

/// A whole line: either one `F` line, or `P` chunks joined with their closing `F`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedLine {
    /// Position of the line's first chunk (the caller's unit: a byte offset, a line number).
    pub position: u64,
    /// The first chunk's timestamp: when the container started writing the line.
    pub timestamp: Timestamp,
    /// stdout or stderr.
    pub stream: Stream,
    /// The content, capped at the merger's limit.
    pub content: Vec<u8>,
    /// Whether content beyond the cap was dropped.
    pub truncated: bool,
    /// How many `P` chunks were joined (0 for a plain `F` line).
    pub partial_chunks: u32,
}

/// Joins `P` chunks per stream until their `F` (DESIGN.md §5), capping the merged size so a
/// runaway line cannot grow memory without bound.
#[derive(Debug)]
pub struct PartialLineMerger {
    max_line_bytes: usize,
    pending: [Option<MergedLine>; 2],
    /// When each pending line got its first chunk, for the flush timeout.
    since: [Option<std::time::Instant>; 2],
}

impl PartialLineMerger {
    /// A merger that keeps at most `max_line_bytes` of any line.
    pub fn new(max_line_bytes: usize) -> Self {
        PartialLineMerger {
            max_line_bytes,
            pending: [None, None],
            since: [None, None],
        }
    }

    /// Feeds one decoded line found at `position`; returns the whole line once it is complete.
    pub fn push(&mut self, line: &CriLine<'_>, position: u64) -> Option<MergedLine> {
        let at = stream_slot(line.stream);
        let slot = &mut self.pending[at];
        if slot.is_none() {
            self.since[at] = Some(std::time::Instant::now());
        }
        let merged = slot.get_or_insert_with(|| MergedLine {
            position,
            timestamp: line.timestamp,
            stream: line.stream,
            content: Vec::new(),
            truncated: false,
            partial_chunks: 0,
        });
        let room = self.max_line_bytes.saturating_sub(merged.content.len());
        if line.content.len() > room {
            merged.truncated = true;
        }
        merged
            .content
            .extend_from_slice(&line.content[..line.content.len().min(room)]);
        if line.partial {
            merged.partial_chunks += 1;
            return None;
        }
        slot.take()
    }

    /// The position of the earliest line still waiting for its `F`, if any: a reader must
    /// resume there after a restart so the line is not lost.
    pub fn earliest_pending(&self) -> Option<u64> {
        self.pending.iter().flatten().map(|m| m.position).min()
    }

    /// Forgets pending chunks (the file was truncated under us).
    pub fn clear(&mut self) {
        self.pending = [None, None];
    }

    /// Hands out lines still waiting for their `F` (input ended).
    pub fn flush(&mut self) -> impl Iterator<Item = MergedLine> + '_ {
        self.pending.iter_mut().filter_map(Option::take)
    }

    /// Hands out lines whose first chunk came `timeout` ago or earlier and whose `F` has
    /// not come: a writer that died mid-line, or one that never ends its last line.
    pub fn flush_older_than(
        &mut self,
        timeout: std::time::Duration,
    ) -> impl Iterator<Item = MergedLine> + '_ {
        self.pending
            .iter_mut()
            .zip(&self.since)
            .filter(move |(_, since)| since.is_some_and(|t| t.elapsed() >= timeout))
            .filter_map(|(slot, _)| slot.take())
    }
}

fn stream_slot(s: Stream) -> usize {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

fn split_field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = memchr::memchr(b' ', s)?;
    Some((&s[..at], &s[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn containerd_lines_from_the_fixtures() {
        let l = decode_cri(b"2025-03-04T09:14:05.6Z stdout F INFO:     Started server process [1]")
            .unwrap();
        assert_eq!(l.timestamp, ts("2025-03-04T09:14:05.600Z"));
        assert_eq!(l.stream, Stream::Stdout);
        assert!(!l.partial);
        assert_eq!(l.content, b"INFO:     Started server process [1]");

        let p = decode_cri(b"2025-03-04T09:20:01.000104213Z stdout P {\"level\":\"info\"").unwrap();
        assert!(p.partial);
        let killed = decode_cri(b"2025-03-04T10:52:41.3Z stderr P Killed").unwrap();
        assert_eq!((killed.stream, killed.partial), (Stream::Stderr, true));
    }

    #[test]
    fn crio_lines_with_nine_digits_and_an_offset() {
        let l =
            decode_cri(b"2025-03-04T10:14:05.551219537+01:00 stdout F ... rest of line").unwrap();
        assert_eq!(l.timestamp, ts("2025-03-04T09:14:05.551219537Z"));
        assert_eq!(l.content, b"... rest of line");
    }

    #[test]
    fn empty_lines_keep_an_empty_content() {
        assert_eq!(
            decode_cri(b"2025-03-04T09:14:06.1Z stdout F ")
                .unwrap()
                .content,
            b""
        );
        assert_eq!(
            decode_cri(b"2025-03-04T09:14:06.1Z stdout F")
                .unwrap()
                .content,
            b""
        );
    }

    #[test]
    fn content_keeps_its_own_spaces_and_extra_tags_are_allowed() {
        let l = decode_cri(b"2025-03-04T09:14:06.1Z stderr F:x  two  spaces ").unwrap();
        assert_eq!(l.content, b" two  spaces ");
    }

    #[test]
    fn partial_chunks_merge_per_stream_and_are_capped() {
        let mut m = PartialLineMerger::new(10);
        let p1 = decode_cri(b"2025-03-04T09:20:01.1Z stdout P abcd").unwrap();
        let e = decode_cri(b"2025-03-04T09:20:01.2Z stderr F other").unwrap();
        let p2 = decode_cri(b"2025-03-04T09:20:01.3Z stdout P efgh").unwrap();
        let f = decode_cri(b"2025-03-04T09:20:01.4Z stdout F ijkl").unwrap();
        assert_eq!(m.push(&p1, 0), None);
        assert_eq!(m.push(&e, 1).unwrap().content, b"other");
        assert_eq!(m.earliest_pending(), Some(0));
        assert_eq!(m.push(&p2, 2), None);
        let whole = m.push(&f, 3).unwrap();
        assert_eq!(whole.content, b"abcdefghij");
        assert!(whole.truncated);
        assert_eq!((whole.position, whole.partial_chunks), (0, 2));
        assert_eq!(whole.timestamp, ts("2025-03-04T09:20:01.1Z"));
        assert_eq!(m.earliest_pending(), None);
        assert_eq!(m.push(&p1, 4), None);
        assert_eq!(
            m.flush().map(|l| l.content).collect::<Vec<_>>(),
            [b"abcd".to_vec()]
        );
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        assert_eq!(decode_cri(b"hello"), Err(CriDecodeError::MissingField));
        assert_eq!(
            decode_cri(b"yesterday stdout F x"),
            Err(CriDecodeError::BadTimestamp)
        );
        assert_eq!(
            decode_cri(b"2025-03-04T09:14:06.1Z stdin F x"),
            Err(CriDecodeError::BadStream)
        );
        assert_eq!(
            decode_cri(b"2025-03-04T09:14:06.1Z stdout X x"),
            Err(CriDecodeError::BadTag)
        );
        assert_eq!(
            decode_cri("2025-03-04T09:14:06.1Z stdout F ü\u{fffd}".as_bytes()).map(|l| l.partial),
            Ok(false)
        );
    }
}
