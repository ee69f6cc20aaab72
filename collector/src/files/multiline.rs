//! Multi-line grouping: one record for a Python traceback, a Go panic with its goroutine
//! dump, or a message followed by its continuation lines, instead of one per physical line.
//!
//! The rules are the shapes of the languages inference servers are written in, not of any
//! one server, so the source stays ignorant of what the message means:
//! - a Python traceback runs from `Traceback (most recent call last):` through its indented
//!   frames to the final `ExceptionType: message` line, chained tracebacks included;
//! - a Go `panic:`/`fatal error:` runs through its goroutine headers, function lines,
//!   indented file lines, register dump and `exit status`;
//! - after a line that starts like a log record (a timestamp, a level word, a glog or JSON
//!   head), lines that are indented or start like no record are its continuation, if they
//!   were written within a short window of the previous line (by the runtime's clock).
//!
//! A group is bounded in lines and bytes, and is emitted once a line that does not belong
//! arrives or no line came for a timeout. Grouping is per container and stream, across the
//! container's files: a traceback cut by a rotation is still one record. While a group is
//! open, the lines it holds are what a restart must read again, so the source keeps each
//! file's checkpoint at or before the group's first line in it ([`LineGrouper::hold`]).

use model::{AttrValue, Record, RecordId, Stream, Timestamp, names};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much later than its runtime timestamp a line of the same write may be read (a poll
/// interval and some): an ordinary message idle this long past the join window is done.
pub(crate) const MESSAGE_ARRIVAL_SLACK: Duration = Duration::from_millis(200);

/// Settings of multi-line grouping.
#[derive(Clone, Debug)]
pub struct MultilineConfig {
    /// Most physical lines in one record.
    pub max_lines: usize,
    /// Most bytes in one record's body.
    pub max_bytes: usize,
    /// A group that got no line for this long is emitted.
    pub timeout: Duration,
    /// Loose continuations (an indented or unprefixed line after an ordinary message) join
    /// only if the runtime stamped them within this window of the previous line: lines of
    /// one multi-line write arrive microseconds apart, an unrelated print much later.
    pub window: Duration,
}

impl Default for MultilineConfig {
    fn default() -> Self {
        MultilineConfig {
            max_lines: 1000,
            max_bytes: 512 * 1024,
            timeout: Duration::from_millis(1000),
            window: Duration::from_millis(100),
        }
    }
}

/// A complete physical line, as a file tail emits it.
#[derive(Debug)]
pub(crate) struct TailLine {
    /// The line as a record of its own.
    pub(crate) record: Record,
    /// Where the line starts in its file.
    pub(crate) position: u64,
    /// An earlier run may have delivered it already.
    pub(crate) replay: bool,
}

/// What the grouping hands on: records, and the ids among them that may be re-sent.
#[derive(Debug, Default)]
pub(crate) struct Emitted {
    pub(crate) records: Vec<Record>,
    pub(crate) redelivered: Vec<RecordId>,
    /// Files whose lines an emitted group held: their checkpoints may move now.
    pub(crate) released: Vec<String>,
    /// Physical lines joined into records beyond each record's first.
    pub(crate) joined: u64,
}

impl Emitted {
    pub(crate) fn push(&mut self, record: Record, replay: bool) {
        if replay {
            self.redelivered.push(record.id);
        }
        self.records.push(record);
    }
}

/// Where a group stands, which decides what may join it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// An ordinary message; `prefixed` when it starts like a log record.
    Message { prefixed: bool },
    /// Inside a Python traceback, before its exception line.
    TracebackFrames { prefixed_head: bool },
    /// After a traceback's exception line: only a chained traceback or an indented
    /// exception detail may follow.
    TracebackEnd { prefixed_head: bool },
    /// A Go panic or fatal error with its dump.
    GoDump { prefixed_head: bool },
}

impl Shape {
    fn prefixed_head(self) -> bool {
        match self {
            Shape::Message { prefixed }
            | Shape::TracebackFrames {
                prefixed_head: prefixed,
            }
            | Shape::TracebackEnd {
                prefixed_head: prefixed,
            }
            | Shape::GoDump {
                prefixed_head: prefixed,
            } => prefixed,
        }
    }
}

struct OpenGroup {
    record: Record,
    lines: usize,
    shape: Shape,
    last_timestamp: Timestamp,
    last_arrival: Instant,
    /// The file the last line came from.
    last_file: Arc<str>,
    /// (file identity, position of the group's first line in that file).
    holds: Vec<(Arc<str>, u64)>,
    replay: bool,
}

impl OpenGroup {
    fn start(line: TailLine, tail_key: &Arc<str>) -> Self {
        let shape = head_shape(&line.record.body);
        OpenGroup {
            last_timestamp: line.record.timestamp,
            record: line.record,
            lines: 1,
            shape,
            last_arrival: Instant::now(),
            last_file: Arc::clone(tail_key),
            holds: vec![(Arc::clone(tail_key), line.position)],
            replay: line.replay,
        }
    }

    fn append(&mut self, line: TailLine, tail_key: &Arc<str>, shape: Shape) {
        self.record.body.push('\n');
        self.record.body.push_str(&line.record.body);
        for flag in [names::LOG_INVALID_UTF8, names::LOG_TRUNCATED] {
            if line.record.attributes.get(flag) == Some(&AttrValue::Bool(true)) {
                self.record.attributes.insert(flag, true);
            }
        }
        self.lines += 1;
        self.shape = shape;
        self.last_timestamp = line.record.timestamp;
        self.last_arrival = Instant::now();
        self.replay |= line.replay;
        self.last_file = Arc::clone(tail_key);
        if !self.holds.iter().any(|(k, _)| k == tail_key) {
            self.holds.push((Arc::clone(tail_key), line.position));
        }
    }

    /// The group's last physical line.
    fn last_line(&self) -> &str {
        let body = &self.record.body;
        body.rfind('\n').map_or(body.as_str(), |nl| &body[nl + 1..])
    }

    /// Emits the record. The files it held, other than `reading` (whose checkpoint the
    /// caller looks at anyway), are named in `out.released`: their checkpoints may move.
    fn finish(mut self, out: &mut Emitted, reading: Option<&str>) {
        for (key, _) in self.holds.drain(..) {
            if reading != Some(&*key) {
                out.released.push(key.to_string());
            }
        }
        out.joined += self.lines as u64 - 1;
        if self.lines > 1 {
            self.record
                .attributes
                .insert(names::LOG_LINES, self.lines as i64);
        }
        out.push(self.record, self.replay);
    }
}

/// Groups the lines of one container, per stream.
pub(crate) struct LineGrouper {
    open: [Option<OpenGroup>; 2],
}

impl LineGrouper {
    pub(crate) fn new() -> Self {
        LineGrouper { open: [None, None] }
    }

    /// Feeds the next line of the container (read from file `tail_key`); records whose
    /// group is complete go to `out`.
    pub(crate) fn push(
        &mut self,
        line: TailLine,
        tail_key: &Arc<str>,
        config: &MultilineConfig,
        out: &mut Emitted,
    ) {
        let Some(stream) = line.record.stream else {
            // Not a decoded container line (a decode error): it stands alone.
            out.push(line.record, line.replay);
            return;
        };
        let slot = &mut self.open[slot(stream)];
        if let Some(group) = slot {
            let gap = line
                .record
                .timestamp
                .unix_nanos()
                .saturating_sub(group.last_timestamp.unix_nanos());
            // A line of another file stamped before the group's last line was written
            // before it: an older rotation found late (a listing missed it while gzip
            // replaced it). It cannot continue the group; joining it put a traceback's
            // cut-off tail onto a later traceback.
            let written_before = gap < 0 && group.last_file != *tail_key;
            let fits = group.lines < config.max_lines
                && group.record.body.len() + 1 + line.record.body.len() <= config.max_bytes;
            if fits && !written_before {
                let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
                let within_window = gap <= nanos(config.window);
                // Nothing joins across a pause longer than the timeout by the runtime's
                // clock either, so a replay after a restart groups as the first read did.
                let last = group.last_line();
                let joined = (gap <= nanos(config.timeout))
                    .then(|| joins(group.shape, last, &line.record.body, within_window))
                    .flatten();
                if let Some(shape) = joined {
                    group.append(line, tail_key, shape);
                    return;
                }
            }
            if let Some(done) = slot.take() {
                done.finish(out, Some(&**tail_key));
            }
        }
        *slot = Some(OpenGroup::start(line, tail_key));
    }

    /// Emits groups that got no line for the timeout; an ordinary message sooner: only a
    /// line the runtime stamped within `window` of its last line can still join it, and
    /// such a line arrives within [`MESSAGE_ARRIVAL_SLACK`] more (the same write, or the
    /// next read). Most lines are such messages: holding them the whole timeout made every
    /// line wait a second before search and tail saw it.
    pub(crate) fn flush_idle(&mut self, config: &MultilineConfig, out: &mut Emitted) {
        let message_idle = config.timeout.min(config.window + MESSAGE_ARRIVAL_SLACK);
        for slot in &mut self.open {
            if slot.as_ref().is_some_and(|g| {
                let idle = match g.shape {
                    Shape::Message { .. } => message_idle,
                    _ => config.timeout,
                };
                g.last_arrival.elapsed() >= idle
            }) && let Some(group) = slot.take()
            {
                group.finish(out, None);
            }
        }
    }

    /// Emits every open group (the container is gone, or the source stops).
    pub(crate) fn flush(&mut self, out: &mut Emitted) {
        for slot in &mut self.open {
            if let Some(group) = slot.take() {
                group.finish(out, None);
            }
        }
    }

    /// The earliest position in file `tail_key` that an open group holds: a restart must
    /// read from there to rebuild the group.
    pub(crate) fn hold(&self, tail_key: &str) -> Option<u64> {
        self.open
            .iter()
            .flatten()
            .flat_map(|g| g.holds.iter())
            .filter(|(k, _)| &**k == tail_key)
            .map(|(_, p)| *p)
            .min()
    }
}

/// Grouping for one input that is not a set of files (`infersight parse` on stdin): lines
/// in, records out, in input order within each stream. Lines without a stream (raw text, not a container runtime's
/// framing) are grouped as one stream when `unframed` is set.
pub struct MultilineStream {
    grouper: LineGrouper,
    config: MultilineConfig,
    key: Arc<str>,
    out: Emitted,
    unframed: bool,
}

impl MultilineStream {
    /// A stream grouping with `config` (its timeout does not apply: nothing waits here).
    pub fn new(config: MultilineConfig, unframed: bool) -> Self {
        MultilineStream {
            grouper: LineGrouper::new(),
            config,
            key: Arc::from("stream"),
            out: Emitted::default(),
            unframed,
        }
    }

    /// Feeds the line at `position`; returns the records it completed.
    pub fn push(&mut self, mut record: Record, position: u64) -> Vec<Record> {
        if self.unframed && record.stream.is_none() {
            record.stream = Some(Stream::Stdout);
        }
        if record.stream.is_none() {
            // A line that stands alone (undecodable) goes out in input order, after what
            // came before it.
            self.grouper.flush(&mut self.out);
        }
        let line = TailLine {
            record,
            position,
            replay: false,
        };
        self.grouper
            .push(line, &self.key, &self.config, &mut self.out);
        self.take()
    }

    /// The records still open, at the end of the input.
    pub fn finish(&mut self) -> Vec<Record> {
        self.grouper.flush(&mut self.out);
        self.take()
    }

    fn take(&mut self) -> Vec<Record> {
        self.out.released.clear();
        self.out.redelivered.clear();
        let mut records = std::mem::take(&mut self.out.records);
        if self.unframed {
            for r in &mut records {
                r.stream = None;
            }
        }
        records
    }
}

fn slot(s: Stream) -> usize {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

const TRACEBACK_HEAD: &str = "Traceback (most recent call last):";

/// The shape a group takes from its first line.
fn head_shape(line: &str) -> Shape {
    let prefixed = starts_like_a_record(line);
    if line.trim_end().ends_with(TRACEBACK_HEAD) {
        Shape::TracebackFrames {
            prefixed_head: prefixed,
        }
    } else if starts_go_dump(line) {
        Shape::GoDump {
            prefixed_head: prefixed,
        }
    } else {
        Shape::Message { prefixed }
    }
}

/// Whether `line` continues a group of shape `shape` whose last line is `last`, and the
/// group's shape after it.
///
/// Some loggers repeat their prefix on every line of a multi-line message (vLLM's
/// `ERROR 06-21 15:09:02 [engine.py:52] ` before each traceback line, `[rank0]: `, a
/// `… | ERROR | stderr | ` wrapper): a prefix the line shares with the last one is set
/// aside and the rules look at what follows it. Such lines join only by the traceback and
/// dump rules or by indentation, since every line of that logger starts the same way.
fn joins(shape: Shape, last: &str, line: &str, within_window: bool) -> Option<Shape> {
    let shared = shared_prefix(last, line);
    let line = &line[shared..];
    let indented = line.starts_with([' ', '\t']);
    let blank = line.trim().is_empty();
    let prefixed_head = shape.prefixed_head();
    let loose =
        within_window && !blank && (indented || (shared == 0 && !starts_like_a_record(line)));
    let is_traceback_head = line.trim_end() == TRACEBACK_HEAD;
    match shape {
        Shape::TracebackFrames { .. } => {
            if indented || blank || is_traceback_head {
                Some(shape)
            } else if shared == 0 && starts_like_a_record(line) {
                None // another record interleaved: the traceback was cut short
            } else {
                // `ValueError: …`, or a bare `KeyboardInterrupt`.
                Some(Shape::TracebackEnd { prefixed_head })
            }
        }
        Shape::TracebackEnd { .. } => {
            if is_traceback_head {
                Some(Shape::TracebackFrames { prefixed_head })
            } else if indented
                || blank
                || line.starts_with("During handling of the above exception")
                || line.starts_with("The above exception was the direct cause")
                // A multi-line exception message (CUDA errors) after a logged traceback.
                || (prefixed_head && loose)
            {
                Some(shape)
            } else {
                None
            }
        }
        Shape::GoDump { .. } => {
            if indented || blank || continues_go_dump(line) || (prefixed_head && loose) {
                Some(shape)
            } else {
                None
            }
        }
        Shape::Message { prefixed } => {
            if within_window && is_traceback_head {
                // `logger.exception(…)`: the message, then its traceback.
                Some(Shape::TracebackFrames { prefixed_head })
            } else if within_window && prefixed && starts_go_dump(line) {
                Some(Shape::GoDump { prefixed_head })
            } else if (prefixed && loose) || (!prefixed && within_window && indented && !blank) {
                Some(shape)
            } else {
                None
            }
        }
    }
}

/// The length of the logger prefix `a` and `b` share: their common start, cut back to
/// the end of a `] `, `]: ` or ` | ` delimiter, at least 8 bytes long, and starting like a
/// record (or a `[rank0]: ` tag); else 0.
fn shared_prefix(a: &str, b: &str) -> usize {
    let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let head = &b.as_bytes()[..common];
    let Some(end) = (8..=common).rev().find(|&end| {
        let h = &head[..end];
        h.ends_with(b"] ") || h.ends_with(b"]: ") || h.ends_with(b" | ")
    }) else {
        return 0;
    };
    // Only a logger's prefix counts, not any common start (two rows of a table).
    let prefix = &b[..end];
    let rank_tag = prefix.starts_with('[') && prefix.ends_with("]: ") && prefix.len() <= 16;
    if rank_tag || starts_like_a_record(prefix) {
        end
    } else {
        0
    }
}

fn starts_go_dump(line: &str) -> bool {
    line.starts_with("panic: ") || line.starts_with("fatal error: ") || goroutine_header(line)
}

/// `goroutine 1 [running]:`
fn goroutine_header(line: &str) -> bool {
    line.strip_prefix("goroutine ").is_some_and(|rest| {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with(" [")
    })
}

fn continues_go_dump(line: &str) -> bool {
    if goroutine_header(line)
        || [
            "created by ",
            "[signal ",
            "runtime stack:",
            "exit status ",
            "...additional frames elided...",
            "panic: ",
            "\t",
        ]
        .iter()
        .any(|p| line.starts_with(p))
    {
        return true;
    }
    // A frame's function line: `main.main()`, `panic({0x4a1f20?, 0x5a2b40?})`.
    let t = line.trim_end();
    if t.ends_with(')') && t.contains('(') && !t.contains(' ') {
        return true;
    }
    // The register dump of a fatal signal: `rax    0x0`.
    let mut parts = t.split_whitespace();
    matches!((parts.next(), parts.next(), parts.next()),
        (Some(reg), Some(value), None)
            if reg.len() <= 6 && reg.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && value.starts_with("0x"))
}

/// Whether `line` starts the way log records start: a timestamp, a level word, a glog
/// header, a syslog date, a JSON object or a logfmt key. Lines that do not are candidates
/// for the continuation of the record before them.
pub fn starts_like_a_record(line: &str) -> bool {
    let b = line.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    match first {
        b'{' => true,
        b'[' => timestamp_like(&b[1..]) || level_word(&b[1..]),
        // vLLM's process tag: `(APIServer pid=1) INFO …`
        // The first `) ` within 48 bytes, or none at all: a longer tag is not one (and a
        // search of the whole line, with its searcher set up per line, cost more than the
        // rest of this function).
        b'(' => b
            .windows(2)
            .take(48)
            .position(|w| w == b") ")
            .filter(|&end| b[..end].windows(4).any(|w| w == b"pid="))
            .is_some_and(|end| starts_like_a_record(&line[end + 2..])),
        b'0'..=b'9' => timestamp_like(b),
        b'I' | b'W' | b'E' | b'F' if glog_head(b) => true,
        b'A'..=b'Z' => level_word(b) || syslog_date(b),
        _ => logfmt_head(b),
    }
}

/// `2025-03-04T09:14:05`, `2025/03/04 09:14:05`, `09:14:05`, `03-04 09:14:05`.
fn timestamp_like(b: &[u8]) -> bool {
    let head = &b[..b.len().min(20)];
    let run = head
        .iter()
        .take_while(|c| c.is_ascii_digit() || b"-/:.T ".contains(c))
        .count();
    let run = &head[..run];
    let colons = run.iter().filter(|&&c| c == b':').count();
    let dashes = run.iter().filter(|&&c| c == b'-' || c == b'/').count();
    run.len() >= 8 && (colons >= 2 || (dashes >= 2 && colons >= 1))
}

/// glog: `I0110 21:30:54.920681 60 server.cc:592]`.
fn glog_head(b: &[u8]) -> bool {
    b.len() > 8
        && b[1..5].iter().all(u8::is_ascii_digit)
        && b[5] == b' '
        && b[6].is_ascii_digit()
        && b[7].is_ascii_digit()
        && b[8] == b':'
}

fn level_word(b: &[u8]) -> bool {
    const LEVELS: [&[u8]; 11] = [
        b"TRACE",
        b"DEBUG",
        b"INFO",
        b"NOTICE",
        b"WARNING",
        b"WARN",
        b"ERROR",
        b"ERR",
        b"CRITICAL",
        b"FATAL",
        b"PANIC",
    ];
    LEVELS.iter().any(|level| {
        b.starts_with(level)
            && b.get(level.len())
                .is_none_or(|c| !c.is_ascii_alphanumeric() && *c != b'_')
    })
}

/// `Feb 26 10:05:54`
fn syslog_date(b: &[u8]) -> bool {
    const MONTHS: [&[u8]; 12] = [
        b"Jan ", b"Feb ", b"Mar ", b"Apr ", b"May ", b"Jun ", b"Jul ", b"Aug ", b"Sep ", b"Oct ",
        b"Nov ", b"Dec ",
    ];
    // `b[4..]` is `26 10:05:54` or ` 6 10:05:54`; both read as a time.
    MONTHS.iter().any(|m| b.starts_with(m)) && b.len() > 6 && timestamp_like(&b[4..])
}

fn logfmt_head(b: &[u8]) -> bool {
    ["time=", "ts=", "level=", "lvl=", "msg=", "t="]
        .iter()
        .any(|k| b.starts_with(k.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `(microseconds, line)` on stderr through one grouper; returns the bodies.
    fn group(lines: &[(i64, &str)]) -> Vec<String> {
        let config = MultilineConfig::default();
        let mut g = LineGrouper::new();
        let mut out = Emitted::default();
        for (i, (micros, body)) in lines.iter().enumerate() {
            let mut record = Record::log(
                RecordId::from_source(b"f", i as u64),
                Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + micros * 1000),
                Timestamp::now(),
                Arc::default(),
                body.to_string(),
            );
            record.stream = Some(Stream::Stderr);
            let line = TailLine {
                record,
                position: i as u64,
                replay: false,
            };
            g.push(line, &Arc::from("f"), &config, &mut out);
        }
        g.flush(&mut out);
        out.records.into_iter().map(|r| r.body).collect()
    }

    #[test]
    fn a_python_traceback_ends_with_its_exception_line() {
        let bodies = group(&[
            (0, "INFO 03-04 09:14:05 [engine.py:10] step"),
            (1_000_000, "Traceback (most recent call last):"),
            (1_000_001, "  File \"/app/x.py\", line 8, in <module>"),
            (1_000_002, "    main()"),
            (1_000_003, "ValueError: bad"),
            (1_000_004, ""),
            (
                1_000_005,
                "During handling of the above exception, another exception occurred:",
            ),
            (1_000_006, ""),
            (1_000_007, "Traceback (most recent call last):"),
            (1_000_008, "  File \"/app/x.py\", line 9, in <module>"),
            (1_000_009, "RuntimeError: worse"),
            (1_000_010, "INFO 03-04 09:14:06 [engine.py:10] next"),
        ]);
        assert_eq!(bodies.len(), 3, "{bodies:#?}");
        assert!(bodies[1].starts_with("Traceback") && bodies[1].ends_with("RuntimeError: worse"));
        assert_eq!(bodies[1].lines().count(), 10);
    }

    #[test]
    fn a_logged_exception_takes_its_traceback_even_with_the_prefix_repeated() {
        let p = "(APIServer pid=1) ERROR 05-01 14:39:06 [async_llm.py:699] ";
        let lines = [
            format!("{p}AsyncLLM output_handler failed."),
            format!("{p}Traceback (most recent call last):"),
            format!("{p}  File \"/usr/lib/python3.12/x.py\", line 3, in f"),
            format!("{p}    outputs = await engine_core.get_output_async()"),
            format!("{p}torch.OutOfMemoryError: CUDA out of memory."),
            format!("{p}next message from the same place"),
        ];
        let lines: Vec<(i64, &str)> = lines.iter().map(|l| (0, l.as_str())).collect();
        let bodies = group(&lines);
        assert_eq!(bodies.len(), 2, "{bodies:#?}");
        assert!(bodies[0].ends_with("torch.OutOfMemoryError: CUDA out of memory."));
    }

    #[test]
    fn a_go_panic_runs_through_its_goroutine_dump() {
        let bodies = group(&[
            (
                0,
                "time=2025-02-26T10:05:54Z level=INFO msg=\"loading model\"",
            ),
            (
                5_000_000,
                "panic: runtime error: invalid memory address or nil pointer dereference",
            ),
            (
                5_000_001,
                "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1f20]",
            ),
            (5_000_002, ""),
            (5_000_003, "goroutine 1 [running]:"),
            (5_000_004, "main.main()"),
            (5_000_005, "\t/app/main.go:8 +0x1d"),
            (
                5_000_006,
                "created by runtime.gcBgMarkStartWorkers in goroutine 1",
            ),
            (5_000_007, "rax    0x0"),
            (5_000_008, "exit status 2"),
            (
                9_000_000,
                "time=2025-02-26T10:06:00Z level=INFO msg=\"restarted\"",
            ),
        ]);
        assert_eq!(bodies.len(), 3, "{bodies:#?}");
        assert_eq!(bodies[1].lines().count(), 9);
    }

    #[test]
    fn loose_continuations_join_only_within_the_window() {
        let bodies = group(&[
            (0, "I0110 21:30:54.920681 60 server.cc:592]"),
            (10, "+-------+---------+"),
            (20, "| Model | Version |"),
            (500_000, "plain output much later"),
            (500_010, "I0110 21:30:55.0 60 server.cc:600] next"),
            (500_020, "  indented detail"),
        ]);
        assert_eq!(
            bodies,
            [
                "I0110 21:30:54.920681 60 server.cc:592]\n+-------+---------+\n| Model | Version |",
                "plain output much later",
                "I0110 21:30:55.0 60 server.cc:600] next\n  indented detail",
            ]
        );
    }

    #[test]
    fn groups_are_bounded_in_lines() {
        let config = MultilineConfig {
            max_lines: 3,
            ..MultilineConfig::default()
        };
        let mut g = LineGrouper::new();
        let mut out = Emitted::default();
        for i in 0..7u64 {
            let body = if i == 0 {
                "Traceback (most recent call last):"
            } else {
                "  frame"
            };
            let mut record = Record::log(
                RecordId::from_source(b"f", i),
                Timestamp::from_unix_nanos(0),
                Timestamp::now(),
                Arc::default(),
                body.into(),
            );
            record.stream = Some(Stream::Stdout);
            let line = TailLine {
                record,
                position: i,
                replay: false,
            };
            g.push(line, &Arc::from("f"), &config, &mut out);
        }
        assert_eq!(g.hold("f"), Some(6), "the open group holds its first line");
        g.flush(&mut out);
        let sizes: Vec<usize> = out.records.iter().map(|r| r.body.lines().count()).collect();
        assert_eq!(sizes, [3, 3, 1]);
        assert_eq!(
            out.records[0].attributes.get(names::LOG_LINES),
            Some(&AttrValue::Int(3))
        );
    }

    #[test]
    fn record_starts_are_recognised() {
        for line in [
            "2024-03-21T09:01:53.354872Z ERROR text_generation_launcher: x",
            "INFO 03-04 09:14:05 [api_server.py:1024] x",
            "INFO:     Started server process [1]",
            "I0801 13:59:33.053370 1 grpc_server.cc:3592] x",
            "[06/21/2025-01:30:42] [TRT-LLM] [RANK 0] [I] x",
            "{\"level\":\"info\"}",
            "time=2025-02-26T10:05:54Z level=INFO",
            "Feb 26 10:05:54 host ollama[1]: x",
            "14:31:15 - LiteLLM Proxy:ERROR: x",
            "(APIServer pid=3646) INFO 11-27 20:41:07 [loggers.py:123] x",
        ] {
            assert!(starts_like_a_record(line), "{line}");
        }
        for line in [
            "  File \"x.py\", line 1",
            "ValueError: bad",
            "Error: ShardCannotStart",
            "original inputs:",
            "[0x0x7f3793589428] input: images",
            "1       0x7fac7ac778fd tensorrt_llm::common::throwRuntimeError",
            "softmax",
        ] {
            assert!(!starts_like_a_record(line), "{line}");
        }
        // A process tag: `pid=` in it, shorter than 48 bytes, a record after it.
        let tag = |name: &str| format!("({name} pid=1) INFO 11-27 20:41:07 [x.py:1] x");
        assert!(starts_like_a_record(&tag(&"w".repeat(40))));
        assert!(!starts_like_a_record(&tag(&"w".repeat(41))));
        assert!(!starts_like_a_record(
            "(worker) INFO 11-27 20:41:07 [x.py:1] x"
        ));
        assert!(!starts_like_a_record("(APIServer pid=1) continued"));
    }
}
