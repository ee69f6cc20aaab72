//! The source against real files on disk.

use super::*;
use model::{AttrValue, Record, Stream, names};
use std::io::Write;
use std::path::Path;

fn write_lines(path: &Path, lines: &[&str]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

/// A source with default settings but one record per line over `logs_dir`, starting with
/// no checkpoints.
fn source_over(logs_dir: &Path) -> FileSource {
    FileSource::new("files", line_per_record(logs_dir), CheckpointSet::new()).unwrap()
}

/// Defaults, without multi-line grouping: most tests here are about files, not grouping.
fn line_per_record(logs_dir: &Path) -> FileSourceConfig {
    FileSourceConfig {
        multiline: None,
        ..FileSourceConfig::new(logs_dir.into())
    }
}

/// Runs one discovery + read pass and returns the batches it sent.
fn one_pass(source: &mut FileSource) -> Vec<Batch> {
    one_pass_reporting(source).0
}

/// One pass, also returning whether the source wants another pass at once.
fn one_pass_reporting(source: &mut FileSource) -> (Vec<Batch>, bool) {
    let (tx, mut rx) = mpsc::channel(64);
    source.refresh_files();
    let again = source
        .read_files(&tx, None)
        .ok()
        .expect("the channel is open");
    drop(tx);
    let mut out = Vec::new();
    while let Ok(b) = rx.try_recv() {
        out.push(b);
    }
    (out, again)
}

fn bodies(batches: &[Batch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| b.records.iter().map(|r| r.body.clone()))
        .collect()
}

#[test]
fn reads_lines_with_resource_from_the_layout_and_merges_partials() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("llm_vllm-0_uid-1/vllm/0.log");
    write_lines(
        &log,
        &[
            "2025-03-04T09:14:05.551219537Z stderr F INFO 03-04 09:14:05 [api_server.py:1024] Starting vLLM API server",
            "2025-03-04T09:20:01.000104213Z stdout P {\"level\":\"info\",",
            "2025-03-04T09:20:01.000131007Z stderr F interleaved on the other stream",
            "2025-03-04T09:20:01.00015Z stdout F \"msg\":\"request\"}",
            "2025-03-04T09:14:06.1Z stdout F ",
            "not a cri line",
        ],
    );
    let mut source = source_over(dir.path());
    let batches = one_pass(&mut source);
    assert_eq!(
        bodies(&batches),
        [
            "INFO 03-04 09:14:05 [api_server.py:1024] Starting vLLM API server",
            "interleaved on the other stream",
            "{\"level\":\"info\",\"msg\":\"request\"}",
            "",
            "not a cri line",
        ]
    );
    let records: Vec<&Record> = batches.iter().flat_map(|b| &b.records).collect();
    let merged = records[2];
    assert_eq!(merged.stream, Some(Stream::Stdout));
    assert_eq!(
        merged.timestamp.to_rfc3339(),
        "2025-03-04T09:20:01.000104213Z",
        "a merged line keeps its first chunk's time"
    );
    assert_eq!(merged.resource_str(names::K8S_NAMESPACE_NAME), Some("llm"));
    assert_eq!(merged.resource_str(names::K8S_POD_NAME), Some("vllm-0"));
    assert_eq!(merged.resource_str(names::K8S_CONTAINER_NAME), Some("vllm"));
    assert_eq!(
        merged.resource.get(names::K8S_CONTAINER_RESTART_COUNT),
        Some(&AttrValue::Int(0))
    );
    assert!(
        records[4]
            .attributes
            .get_str(names::LOG_DECODE_ERROR)
            .is_some()
    );
    let metrics = source.metrics();
    assert_eq!(metrics.decode_errors.load(Relaxed), 1);
    assert_eq!(metrics.lines_read.load(Relaxed), 6);
    let last = batches.last().unwrap().checkpoints.last().unwrap();
    assert_eq!(last.position, std::fs::metadata(&log).unwrap().len());
}

#[test]
fn resumes_from_a_checkpoint_and_only_reads_new_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ns_p_u/c/0.log");
    write_lines(
        &log,
        &[
            "2025-03-04T09:14:05Z stdout F one",
            "2025-03-04T09:14:06Z stdout F two",
        ],
    );
    let mut source = source_over(dir.path());
    let first = one_pass(&mut source);
    assert_eq!(bodies(&first), ["one", "two"]);
    let mut committed = CheckpointSet::new();
    for c in first.iter().flat_map(|b| &b.checkpoints) {
        committed.update(c);
    }
    assert!(
        one_pass(&mut source).is_empty(),
        "nothing new, nothing sent"
    );

    write_lines(&log, &["2025-03-04T09:14:07Z stdout F three"]);
    let mut restarted = FileSource::new("files", line_per_record(dir.path()), committed).unwrap();
    let again = one_pass(&mut restarted);
    assert_eq!(bodies(&again), ["three"]);
    // Ids are stable: the same line read again by a fresh run gets the same id.
    let mut fresh = source_over(dir.path());
    let reread = one_pass(&mut fresh);
    let ids = |b: &[Batch]| {
        b.iter()
            .flat_map(|b| b.records.iter().map(|r| r.id))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&reread)[..2], ids(&first)[..]);
    assert_eq!(ids(&reread)[2], ids(&again)[0]);
}

#[test]
fn a_pending_partial_line_holds_the_checkpoint_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ns_p_u/c/0.log");
    write_lines(&log, &["2025-03-04T09:14:05Z stdout F done"]);
    let done_len = std::fs::metadata(&log).unwrap().len();
    write_lines(&log, &["2025-03-04T09:14:06Z stdout P half of a "]);
    let mut source = source_over(dir.path());
    let batches = one_pass(&mut source);
    assert_eq!(bodies(&batches), ["done"]);
    assert_eq!(batches[0].checkpoints[0].position, done_len);
    write_lines(&log, &["2025-03-04T09:14:06Z stdout F long line"]);
    assert_eq!(bodies(&one_pass(&mut source)), ["half of a long line"]);
}

#[test]
fn over_long_lines_are_cut_and_flagged_and_invalid_utf8_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ns_p_u/c/0.log");
    let chunk = "x".repeat(600);
    write_lines(
        &log,
        &[
            &format!("2025-03-04T09:14:05Z stdout P {chunk}"),
            &format!("2025-03-04T09:14:05Z stdout F {chunk}"),
        ],
    );
    let mut raw = b"2025-03-04T09:14:06Z stdout F bad \xff byte\n".to_vec();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&raw).unwrap();
    raw.clear();
    let mut config = line_per_record(dir.path());
    config.max_line_bytes = 1000;
    let mut source = FileSource::new("files", config, CheckpointSet::new()).unwrap();
    let batches = one_pass(&mut source);
    let records: Vec<&Record> = batches.iter().flat_map(|b| &b.records).collect();
    assert_eq!(records[0].body.len(), 1000);
    assert_eq!(
        records[0].attributes.get(names::LOG_TRUNCATED),
        Some(&AttrValue::Bool(true))
    );
    assert_eq!(records[1].body, "bad \u{fffd} byte");
    assert_eq!(
        records[1].attributes.get(names::LOG_INVALID_UTF8),
        Some(&AttrValue::Bool(true))
    );
}

#[test]
fn a_file_without_newlines_does_not_grow_memory_past_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ns_p_u/c/0.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, vec![b'y'; 3 * 1024 * 1024]).unwrap();
    let mut config = line_per_record(dir.path());
    config.max_line_bytes = 64 * 1024;
    let mut source = FileSource::new("files", config, CheckpointSet::new()).unwrap();
    let batches = one_pass(&mut source);
    let records: Vec<&Record> = batches.iter().flat_map(|b| &b.records).collect();
    assert_eq!(
        records.len(),
        1,
        "one cut record for the whole run of bytes"
    );
    assert_eq!(records[0].body.len(), 64 * 1024);
    let tail = source.tails.values().next().unwrap();
    assert!(tail.carry.len() <= 64 * 1024 + 128);
}

#[test]
fn a_missing_logs_dir_is_an_error_at_start() {
    let err = FileSource::new(
        "files",
        FileSourceConfig::new("/nonexistent/logs".into()),
        CheckpointSet::new(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("/nonexistent/logs"), "{err}");
}

#[test]
fn run_stops_promptly_on_shutdown_and_acknowledgements_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(
        &dir.path().join("ns_p_u/c/0.log"),
        &["2025-03-04T09:14:05Z stdout F one"],
    );
    let source = source_over(dir.path());
    let metrics = source.metrics();
    let (tx, mut rx) = mpsc::channel(4);
    let shutdown = Shutdown::new();
    let handle = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || source.run(tx, shutdown))
    };
    let batch = rx.blocking_recv().unwrap();
    assert_eq!(batch.records[0].body, "one");
    batch.finalizers.deliver();
    assert_eq!(metrics.batches_delivered.load(Relaxed), 1);
    shutdown.trigger();
    handle.join().unwrap();
    assert!(
        rx.blocking_recv().is_none(),
        "the channel closes when the source stops"
    );
}

#[test]
fn a_shutdown_stops_reading_a_backlog_mid_file_and_the_rest_is_read_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    const LINES: usize = 40_000; // ~20 batches
    write_numbered(&dir.path().join("ns_p_u/c/0.log"), 0, LINES);
    let source = source_over(dir.path());
    let (tx, mut rx) = mpsc::channel(1);
    let shutdown = Shutdown::new();
    let handle = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || source.run(tx, shutdown))
    };
    let mut before = vec![rx.blocking_recv().expect("a first batch")];
    shutdown.trigger();
    while let Some(batch) = rx.blocking_recv() {
        before.push(batch);
    }
    handle.join().unwrap();
    let read = line_numbers(&before);
    assert!(
        read.len() < LINES / 2,
        "stopped within a batch or two of the signal, not at the end of the backlog: {} of {LINES}",
        read.len()
    );
    // Nothing read was left without its checkpoint: a restart reads exactly the rest.
    let mut restarted = restart_with(dir.path(), &before);
    let after = line_numbers(&drain(&mut restarted));
    let all: Vec<usize> = read.into_iter().chain(after).collect();
    assert_eq!(all, (0..LINES).collect::<Vec<_>>());
}

fn numbered(from: usize, to: usize) -> Vec<String> {
    (from..to)
        .map(|n| format!("2025-03-04T09:14:{:02}.{n:09}Z stdout F line {n}", n % 60))
        .collect()
}

fn write_numbered(path: &Path, from: usize, to: usize) {
    let lines = numbered(from, to);
    write_lines(path, &lines.iter().map(String::as_str).collect::<Vec<_>>());
}

fn line_numbers(batches: &[Batch]) -> Vec<usize> {
    bodies(batches)
        .iter()
        .map(|b| {
            b.strip_prefix("line ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected body {b:?}"))
        })
        .collect()
}

/// Passes until one reads nothing and sends nothing; returns every batch sent.
fn drain(source: &mut FileSource) -> Vec<Batch> {
    let mut all = Vec::new();
    for _ in 0..10 {
        let (batches, again) = one_pass_reporting(source);
        if batches.is_empty() && !again {
            return all;
        }
        all.extend(batches);
    }
    panic!("the source kept producing");
}

#[test]
fn kubelet_rename_rotation_reads_the_old_file_to_its_end_then_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("ns_p_u/c/0.log");
    write_numbered(&live, 0, 3);
    let mut source = source_over(dir.path());
    assert_eq!(line_numbers(&drain(&mut source)), [0, 1, 2]);
    write_numbered(&live, 3, 5); // written before the rename, not yet read
    let rotated = dir.path().join("ns_p_u/c/0.log.20250304-091406");
    std::fs::rename(&live, &rotated).unwrap();
    write_numbered(&live, 5, 7);
    assert_eq!(line_numbers(&drain(&mut source)), [3, 4, 5, 6]);
    // kubelet gzips the older rotated file and removes it: nothing is read twice, the
    // finished file's checkpoint is forgotten.
    std::fs::remove_file(&rotated).unwrap();
    let batches = drain(&mut source);
    assert!(bodies(&batches).is_empty());
    assert!(
        batches
            .iter()
            .flat_map(|b| &b.checkpoints)
            .any(|c| c.finished),
        "the gone file is finished"
    );
    assert_eq!(source.tails.len(), 1);
}

#[test]
fn a_file_deleted_while_unread_is_read_to_its_end_through_the_open_handle() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("ns_p_u/c/0.log");
    write_numbered(&live, 0, 2);
    let mut source = source_over(dir.path());
    assert_eq!(line_numbers(&drain(&mut source)), [0, 1]);
    write_numbered(&live, 2, 4);
    std::fs::remove_file(&live).unwrap();
    assert_eq!(line_numbers(&drain(&mut source)), [2, 3]);
    assert!(source.tails.is_empty());
}

#[test]
fn copytruncate_continues_in_the_copy_and_reads_the_truncated_file_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("ns_p_u/c/0.log");
    write_numbered(&live, 0, 3);
    let mut source = source_over(dir.path());
    assert_eq!(line_numbers(&drain(&mut source)), [0, 1, 2]);
    write_numbered(&live, 3, 6); // not yet read when the copy is taken
    let copy = dir.path().join("ns_p_u/c/0.log.20250304-091406");
    std::fs::copy(&live, &copy).unwrap();
    source.refresh_files(); // the copy is seen before the truncation, as with logrotate
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&live)
        .unwrap();
    write_numbered(&live, 6, 8);
    let mut got = line_numbers(&drain(&mut source));
    got.sort();
    assert_eq!(
        got,
        [3, 4, 5, 6, 7],
        "every line once: the rest from the copy, then the new content"
    );
}

#[test]
fn truncation_that_regrows_past_the_old_position_is_still_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("ns_p_u/c/0.log");
    write_numbered(&live, 0, 2);
    let mut source = source_over(dir.path());
    assert_eq!(line_numbers(&drain(&mut source)), [0, 1]);
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&live)
        .unwrap();
    write_numbered(&live, 100, 110); // longer than before: the size alone would not tell
    assert_eq!(
        line_numbers(&drain(&mut source)),
        (100..110).collect::<Vec<_>>()
    );
}

#[test]
fn a_restart_resumes_inside_a_file_rotated_while_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("ns_p_u/c/0.log");
    write_numbered(&live, 0, 2);
    let mut committed = CheckpointSet::new();
    {
        let mut source = source_over(dir.path());
        for c in drain(&mut source).iter().flat_map(|b| &b.checkpoints) {
            committed.update(c);
        }
    }
    write_numbered(&live, 2, 4);
    std::fs::rename(&live, dir.path().join("ns_p_u/c/0.log.20250304-091406")).unwrap();
    write_numbered(&live, 4, 5);
    std::fs::create_dir_all(dir.path().join("ns_p_u/c")).unwrap();
    write_numbered(&dir.path().join("ns_p_u/c/1.log"), 5, 6); // the container restarted too
    let mut restarted = FileSource::new("files", line_per_record(dir.path()), committed).unwrap();
    let mut got = line_numbers(&drain(&mut restarted));
    got.sort();
    assert_eq!(got, [2, 3, 4, 5]);
}

#[test]
fn read_from_end_skips_what_existed_at_the_first_start_only() {
    let dir = tempfile::tempdir().unwrap();
    write_numbered(&dir.path().join("ns_p_u/c/0.log"), 0, 3);
    let mut config = line_per_record(dir.path());
    config.read_from = ReadFrom::End;
    let mut source = FileSource::new("files", config, CheckpointSet::new()).unwrap();
    assert!(drain(&mut source).is_empty());
    write_numbered(&dir.path().join("ns_p_u/c/0.log"), 3, 4);
    write_numbered(&dir.path().join("ns_q_v/c/0.log"), 10, 12); // a new pod after start
    let mut got = line_numbers(&drain(&mut source));
    got.sort();
    assert_eq!(got, [3, 10, 11]);
}

#[test]
fn a_dangling_partial_line_is_emitted_when_its_file_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("ns_p_u/c/0.log");
    write_lines(
        &live,
        &[
            "2025-03-04T09:14:05Z stdout F first",
            "2025-03-04T10:52:41.3Z stderr P Killed",
        ],
    );
    let mut source = source_over(dir.path());
    assert_eq!(bodies(&drain(&mut source)), ["first"]);
    std::fs::remove_file(&live).unwrap();
    assert_eq!(bodies(&drain(&mut source)), ["Killed"]);
}

/// Restarts over `dir` with the checkpoints committed by `batches`.
fn restart_with(dir: &Path, batches: &[Batch]) -> FileSource {
    FileSource::new("files", line_per_record(dir), committed(batches)).unwrap()
}

fn gzip_in_place(path: &Path) {
    let data = std::fs::read(path).unwrap();
    let gz = std::fs::File::create(format!("{}.gz", path.display())).unwrap();
    let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
    enc.write_all(&data).unwrap();
    enc.finish().unwrap();
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_restart_resumes_a_file_compressed_while_stopped_from_its_gz() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("ns_p_u/c/0.log");
    write_numbered(&live, 0, 3);
    let first = {
        let mut source = source_over(dir.path());
        drain(&mut source)
    };
    assert_eq!(line_numbers(&first), [0, 1, 2]);
    write_numbered(&live, 3, 6); // read by nobody before the stop
    let rotated = dir.path().join("ns_p_u/c/0.log.20250304-091406");
    std::fs::rename(&live, &rotated).unwrap();
    gzip_in_place(&rotated);
    write_numbered(&live, 6, 8);
    let mut restarted = restart_with(dir.path(), &first);
    let batches = drain(&mut restarted);
    let mut got = line_numbers(&batches);
    got.sort();
    assert_eq!(
        got,
        [3, 4, 5, 6, 7],
        "the rest of the compressed file, once, then the new one"
    );
    assert_eq!(
        restarted.metrics().files_recovered_from_gzip.load(Relaxed),
        1
    );
    assert_eq!(restarted.metrics().files_lost.load(Relaxed), 0);
    assert!(
        batches
            .iter()
            .flat_map(|b| &b.checkpoints)
            .any(|c| c.finished)
    );
}

#[test]
fn a_file_gone_in_every_form_is_counted_as_lost_and_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("ns_p_u/c/0.log");
    write_numbered(&live, 0, 3);
    let first = {
        let mut source = source_over(dir.path());
        drain(&mut source)
    };
    std::fs::remove_file(&live).unwrap();
    write_numbered(&dir.path().join("ns_p_u/c/1.log"), 10, 11);
    let mut restarted = restart_with(dir.path(), &first);
    let batches = drain(&mut restarted);
    assert_eq!(line_numbers(&batches), [10]);
    assert_eq!(restarted.metrics().files_lost.load(Relaxed), 1);
    let forgotten = batches
        .iter()
        .flat_map(|b| &b.checkpoints)
        .filter(|c| c.finished)
        .count();
    assert_eq!(
        forgotten, 1,
        "the lost file's checkpoint is dropped, not kept forever"
    );
}

#[test]
fn a_rotation_compressed_before_any_commit_recorded_it_is_read_from_zero_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("ns_p_u/c/0.log");
    write_numbered(&live, 0, 2);
    let committed = {
        let mut source = source_over(dir.path());
        drain(&mut source)
    };
    // Rotated twice while the pipeline was down (or before it committed): the middle file
    // was never recorded anywhere and now exists only compressed.
    let r1 = dir.path().join("ns_p_u/c/0.log.20250304-091406");
    std::fs::rename(&live, &r1).unwrap();
    write_numbered(&live, 2, 4);
    let r2 = dir.path().join("ns_p_u/c/0.log.20250304-091407");
    std::fs::rename(&live, &r2).unwrap();
    gzip_in_place(&r1);
    gzip_in_place(&r2);
    write_numbered(&live, 4, 5);
    let mut restarted = restart_with(dir.path(), &committed);
    let batches = drain(&mut restarted);
    let mut got = line_numbers(&batches);
    got.sort();
    assert_eq!(
        got,
        [2, 3, 4],
        "nothing from the file already read, all of the unseen one"
    );
    // Both compressed files are resumed: the first from its checkpoint (at its end), the
    // unseen one from 0.
    assert_eq!(
        restarted.metrics().files_recovered_from_gzip.load(Relaxed),
        2
    );
    // Read once only: the next passes leave the compressed files alone.
    assert!(bodies(&drain(&mut restarted)).is_empty());
    let again = restart_with(dir.path(), &[committed, batches].concat());
    let mut again = again;
    assert!(
        bodies(&drain(&mut again)).is_empty(),
        "a later restart reads nothing twice"
    );
}

#[test]
fn compressed_rotations_that_existed_at_the_first_start_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("ns_p_u/c/0.log.20250304-091406");
    write_numbered(&old, 0, 2);
    gzip_in_place(&old);
    write_numbered(&dir.path().join("ns_p_u/c/0.log"), 2, 3);
    let mut source = source_over(dir.path());
    let first = drain(&mut source);
    assert_eq!(line_numbers(&first), [2]);
    let mut restarted = restart_with(dir.path(), &first);
    assert!(bodies(&drain(&mut restarted)).is_empty());
}

/// Defaults with grouping on and a timeout long enough that only lines close a group.
fn grouping(logs_dir: &Path) -> FileSourceConfig {
    FileSourceConfig {
        multiline: Some(MultilineConfig {
            timeout: Duration::from_secs(3600),
            ..MultilineConfig::default()
        }),
        ..FileSourceConfig::new(logs_dir.into())
    }
}

fn committed(batches: &[Batch]) -> CheckpointSet {
    let mut set = CheckpointSet::new();
    for c in batches.iter().flat_map(|b| &b.checkpoints) {
        set.update(c);
    }
    set
}

/// CRI lines on stderr, stamped `micros` after a fixed start.
fn stderr_lines(lines: &[(i64, &str)]) -> Vec<String> {
    let start = model::Timestamp::parse_rfc3339("2025-03-04T09:14:05Z").unwrap();
    lines
        .iter()
        .map(|(micros, body)| {
            let ts = start.saturating_add_nanos(micros * 1000).to_rfc3339();
            format!("{ts} stderr F {body}")
        })
        .collect()
}

fn write_owned(path: &Path, lines: &[String]) {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    write_lines(path, &refs);
}

#[test]
fn corpus_groups_become_one_record_per_logical_message() {
    // Each group of the corpus is written as one container's stderr. Lines the corpus
    // marks as the continuation of the record before them, and traceback lines after the
    // first, are stamped 10 µs after the line before (one write); the others 200 ms after
    // (a separate message).
    let corpus = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/lines.jsonl"),
    )
    .expect("the corpus is in ../shared/corpus");
    let expected: &[(&str, usize)] = &[
        ("litellm-20867-tb", 3),
        ("tgi-1661-tb", 1),
        ("tgi-1627-shardfail", 7),
        ("tgi-714-c10d-frames", 2),
        ("triton-3786-table", 1),
        ("triton-4716-verbose", 5),
        ("trtllm-5389-cpp-stack", 2),
        ("trtllm-2069-mpi-backtrace", 4),
        ("vllm-2281-tb", 2),
        ("vllm-6102-tb", 2),
        ("vllm-club3090-16-tb", 2),
    ];
    let rows: Vec<serde_json::Value> = corpus
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (group, want) in expected {
        let dir = tempfile::tempdir().unwrap();
        let mut micros = 0;
        let mut lines = Vec::new();
        let members: Vec<_> = rows.iter().filter(|r| r["group"] == *group).collect();
        assert!(!members.is_empty(), "group {group} is in the corpus");
        for (i, row) in members.iter().enumerate() {
            // A traceback's first line joins a logged error (`logger.exception`), not
            // whatever came before it.
            let line = row["line"].as_str().unwrap();
            let after_error = i > 0 && members[i - 1]["line"].as_str().unwrap().contains("ERROR");
            let joined = row["expect"]["continuation_of_previous_record"] == true
                || (i > 0
                    && row["kind"] == "traceback"
                    && (!line.contains("Traceback") || after_error));
            micros += if joined { 10 } else { 200_000 };
            lines.push((micros, line));
        }
        write_owned(&dir.path().join("ns_p_u/c/0.log"), &stderr_lines(&lines));
        let mut source =
            FileSource::new("files", grouping(dir.path()), CheckpointSet::new()).unwrap();
        let mut batches = one_pass(&mut source);
        // The last message stays open until a line or the timeout closes it.
        for group in source.groups.values_mut() {
            let mut rest = multiline::Emitted::default();
            group.flush(&mut rest);
            batches.push(Batch::new(rest.records));
        }
        let got = bodies(&batches);
        assert_eq!(got.len(), *want, "{group}: {got:#?}");
        let physical: usize = got.iter().map(|b| b.lines().count().max(1)).sum();
        assert_eq!(physical, members.len(), "{group}: every line kept");
    }
}

#[test]
fn a_traceback_split_by_a_rotation_is_one_record_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("llm_vllm-0_u1/vllm/0.log");
    let rotated = dir.path().join("llm_vllm-0_u1/vllm/0.log.20250304-091406");
    let p = "ERROR 03-04 09:14:06 [engine.py:52] ";
    write_owned(
        &live,
        &stderr_lines(&[
            (0, "INFO 03-04 09:14:05 [engine.py:40] started"),
            (1_000_000, &format!("{p}Engine step failed.")),
            (1_000_010, &format!("{p}Traceback (most recent call last):")),
            (
                1_000_020,
                &format!("{p}  File \"/app/engine.py\", line 52, in step"),
            ),
        ]),
    );
    let mut source = FileSource::new("files", grouping(dir.path()), CheckpointSet::new()).unwrap();
    let first = one_pass(&mut source);
    assert_eq!(
        bodies(&first),
        ["INFO 03-04 09:14:05 [engine.py:40] started"]
    );

    // kubelet rotates; the runtime goes on in a new file.
    std::fs::rename(&live, &rotated).unwrap();
    write_owned(
        &live,
        &stderr_lines(&[
            (1_000_030, &format!("{p}    out = self.model(x)")),
            (
                1_000_040,
                &format!("{p}torch.OutOfMemoryError: CUDA out of memory."),
            ),
            (3_000_000, "INFO 03-04 09:14:08 [engine.py:40] recovered"),
        ]),
    );
    let second = one_pass(&mut source);
    let got = bodies(&second);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].lines().count(), 5);
    assert!(got[0].ends_with("torch.OutOfMemoryError: CUDA out of memory."));
    let traceback_id = second[0].records[0].id;

    // A crash after the first commit, with the rotated file compressed while we were down:
    // the group is rebuilt from the `.gz` and the new file, under the same id.
    gzip_in_place(&rotated);
    let mut restarted = FileSource::new("files", grouping(dir.path()), committed(&first)).unwrap();
    let replay = one_pass(&mut restarted);
    let again: Vec<&Record> = replay.iter().flat_map(|b| &b.records).collect();
    assert_eq!(again.len(), 1, "{:#?}", bodies(&replay));
    assert_eq!((again[0].id, &again[0].body), (traceback_id, &got[0]));

    // A crash after the second commit: only the open `recovered` message is read again,
    // flagged as possibly delivered, since the last run had read past it.
    let mut all = first.clone();
    all.extend(second.iter().cloned());
    let mut restarted = FileSource::new("files", grouping(dir.path()), committed(&all)).unwrap();
    let nothing = one_pass(&mut restarted);
    assert!(bodies(&nothing).is_empty(), "{:#?}", bodies(&nothing));
    let mut rest = multiline::Emitted::default();
    for group in restarted.groups.values_mut() {
        group.flush(&mut rest);
    }
    assert_eq!(rest.records.len(), 1);
    assert_eq!(
        rest.records[0].body,
        "INFO 03-04 09:14:08 [engine.py:40] recovered"
    );
    assert_eq!(rest.redelivered, [rest.records[0].id]);
}

#[test]
fn an_open_group_holds_the_checkpoint_and_lines_past_it_are_resent_as_replacements() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ns_p_u/c/0.log");
    write_owned(
        &log,
        &stderr_lines(&[
            (0, "ERROR 03-04 09:14:05 [x.py:1] failed"),
            (10, "Traceback (most recent call last):"),
        ]),
    );
    write_lines(
        &log,
        &["2025-03-04T09:14:05.5Z stdout F an unrelated stdout line"],
    );
    let mut source = FileSource::new("files", grouping(dir.path()), CheckpointSet::new()).unwrap();
    let first = one_pass(&mut source);
    // Both streams' groups are open, stderr's from 0: the resume position stays at 0, and
    // how far the lines were read is recorded beside it.
    let set = committed(&first);
    let end = std::fs::metadata(&log).unwrap().len();
    let stored: Vec<(&str, u64)> = set.of_source("files").collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].0.starts_with(SENT_PREFIX));
    assert_eq!(stored[0].1, end);
    let mut restarted = FileSource::new("files", grouping(dir.path()), set).unwrap();
    let _ = one_pass(&mut restarted);
    let mut rest = multiline::Emitted::default();
    for group in restarted.groups.values_mut() {
        group.flush(&mut rest);
    }
    assert_eq!(rest.records.len(), 2);
    assert_eq!(
        rest.redelivered.len(),
        2,
        "both were read past before the restart"
    );
}

#[test]
fn docker_json_files_are_decoded_in_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    let docker = dir.path().join("containers");
    let id = "4b1c9e0f";
    let json = [
        r#"{"log":"INFO:     Started server process [1]\n","stream":"stdout","time":"2025-03-04T09:14:05.600180213Z"}"#,
        r#"{"log":"{\"level\":\"info\",","stream":"stdout","time":"2025-03-04T09:20:01.000104213Z"}"#,
        r#"{"log":"oops\n","stream":"stderr","time":"2025-03-04T09:20:01.000104214Z"}"#,
        r#"{"log":"\"msg\":\"request\"}\n","stream":"stdout","time":"2025-03-04T09:20:01.000104215Z"}"#,
        r#"{"log": broken"#,
    ];
    // cri-dockerd links the kubelet layout to docker's files; either way the format is
    // told by the content.
    write_lines(&pods.join("ns_p_u/c/0.log"), &json);
    write_lines(
        &docker.join(id).join(format!("{id}-json.log")),
        &[
            r#"{"log":"from docker's own layout\n","stream":"stdout","time":"2025-03-04T09:14:05.7Z"}"#,
        ],
    );
    let config = FileSourceConfig {
        docker_dir: Some(docker),
        ..line_per_record(&pods)
    };
    let mut source = FileSource::new("files", config, CheckpointSet::new()).unwrap();
    let batches = one_pass(&mut source);
    let records: Vec<&Record> = batches.iter().flat_map(|b| &b.records).collect();
    let from_pod: Vec<&str> = records
        .iter()
        .filter(|r| r.resource_str(names::K8S_POD_NAME) == Some("p"))
        .map(|r| r.body.as_str())
        .collect();
    assert_eq!(
        from_pod,
        [
            "INFO:     Started server process [1]",
            "oops",
            "{\"level\":\"info\",\"msg\":\"request\"}",
            "{\"log\": broken",
        ]
    );
    let broken = records
        .iter()
        .find(|r| r.body == "{\"log\": broken")
        .unwrap();
    assert!(broken.attributes.get(names::LOG_DECODE_ERROR).is_some());
    let from_docker: Vec<_> = records
        .iter()
        .filter(|r| r.resource_str(names::CONTAINER_ID) == Some(id))
        .collect();
    assert_eq!(from_docker.len(), 1);
    assert_eq!(from_docker[0].stream, Some(Stream::Stdout));
}

#[test]
fn include_and_exclude_globs_pick_the_containers_read() {
    let dir = tempfile::tempdir().unwrap();
    for (pod_dir, container) in [
        ("llm_vllm-0_u1", "vllm"),
        ("llm_vllm-0_u1", "istio-proxy"),
        ("kube-system_coredns-1_u2", "coredns"),
    ] {
        write_lines(
            &dir.path().join(pod_dir).join(container).join("0.log"),
            &[&format!("2025-03-04T09:14:05Z stdout F from {container}")],
        );
    }
    let config = FileSourceConfig {
        containers: ContainerFilter::new(&["llm/*/*".into()], &["*/*/istio-proxy".into()]).unwrap(),
        ..line_per_record(dir.path())
    };
    let mut source = FileSource::new("files", config, CheckpointSet::new()).unwrap();
    assert_eq!(bodies(&one_pass(&mut source)), ["from vllm"]);
}

#[test]
fn a_line_whose_end_never_comes_is_emitted_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ns_p_u/c/0.log");
    write_lines(&log, &["2025-03-04T10:52:41.3Z stderr P Killed"]);
    let config = FileSourceConfig {
        partial_timeout: Duration::ZERO,
        ..line_per_record(dir.path())
    };
    let mut source = FileSource::new("files", config, CheckpointSet::new()).unwrap();
    let batches = one_pass(&mut source);
    assert_eq!(bodies(&batches), ["Killed"]);
    let r = &batches[0].records[0];
    assert_eq!(
        r.attributes.get(names::LOG_PARTIAL),
        Some(&AttrValue::Bool(true))
    );
    let end = std::fs::metadata(&log).unwrap().len();
    assert_eq!(
        committed(&batches).position("files", &source.tails.keys().next().unwrap().clone()),
        Some(end)
    );
}

#[test]
fn a_filesystem_notification_wakes_the_source_before_its_poll_interval() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ns_p_u/c/0.log");
    write_lines(&log, &["2025-03-04T09:14:05Z stdout F one"]);
    let config = FileSourceConfig {
        // So long that only a notification can explain a prompt second batch.
        poll_interval: Duration::from_secs(3600),
        ..line_per_record(dir.path())
    };
    let source = FileSource::new("files", config, CheckpointSet::new()).unwrap();
    let (tx, mut rx) = mpsc::channel(4);
    let shutdown = Shutdown::new();
    let handle = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || source.run(tx, shutdown))
    };
    let first = rx.blocking_recv().unwrap();
    assert_eq!(bodies(&[first]), ["one"]);
    write_lines(&log, &["2025-03-04T09:14:06Z stdout F two"]);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let mut got = Vec::new();
        while let Some(b) = rx.blocking_recv() {
            got.extend(bodies(&[b]));
            if got.iter().any(|b| b == "two") {
                break;
            }
        }
        let _ = done_tx.send(got);
    });
    let got = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the appended line arrived without waiting for the poll interval");
    assert_eq!(got, ["two"]);
    shutdown.trigger();
    handle.join().unwrap();
    waiter.join().unwrap();
}

#[test]
fn files_of_a_container_are_read_oldest_first_even_when_a_listing_misses_a_rename() {
    // The rotated file is renamed to a name no listing matches (as a listing racing with
    // the rename sees neither name): only its first line's age says it comes first. Eight
    // containers, so that an order left to chance (identity hashes) fails the test.
    let dir = tempfile::tempdir().unwrap();
    let mut source = FileSource::new("files", grouping(dir.path()), CheckpointSet::new()).unwrap();
    let live = |c: usize| dir.path().join(format!("ns_p_u/c{c}/0.log"));
    for c in 0..8 {
        write_owned(
            &live(c),
            &stderr_lines(&[
                (0, &format!("ERROR 03-04 09:14:05 [x.py:1] c{c}")),
                (10, "Traceback (most recent call last):"),
            ]),
        );
    }
    assert!(
        bodies(&one_pass(&mut source)).is_empty(),
        "both lines are held"
    );
    for c in 0..8 {
        // The old file gets one more line before it is rotated, unread when the new file
        // appears: reading the new file first would put the frame before it.
        write_owned(
            &live(c),
            &stderr_lines(&[(15, "  File \"main.py\", line 9, in <module>")]),
        );
        std::fs::rename(live(c), live(c).with_extension("unlisted")).unwrap();
        write_owned(
            &live(c),
            &stderr_lines(&[
                (20, &format!("  File \"c{c}.py\", line 1, in f")),
                (30, "KeyError: 'k'"),
            ]),
        );
    }
    let _ = one_pass(&mut source);
    let mut rest = multiline::Emitted::default();
    for group in source.groups.values_mut() {
        group.flush(&mut rest);
    }
    let got: Vec<&str> = rest.records.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(got.len(), 8, "{got:#?}");
    for body in got {
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 5, "{body}");
        assert!(
            lines[2].contains("main.py") && lines[4] == "KeyError: 'k'",
            "{body}"
        );
    }
}

#[test]
fn an_older_rotation_found_late_does_not_continue_the_newer_files_open_group() {
    // gzip replaces a rotation while the directory is listed: the listing sees neither the
    // file nor a decodable `.gz`, and the newer file is read first, its traceback still
    // open at its end. The rotation's first lines (the tail of a traceback the rotation
    // cut) were written before that traceback and must not join it.
    let dir = tempfile::tempdir().unwrap();
    let container = dir.path().join("llm_vllm-0_u1/vllm");
    let hidden = container.join("0.log.unlisted");
    write_owned(
        &hidden,
        &stderr_lines(&[
            (10, "    out = self.model(x)"),
            (10, "torch.OutOfMemoryError: CUDA out of memory."),
            (
                20,
                "INFO 03-04 09:14:05 [engine.py:40] after the first traceback",
            ),
        ]),
    );
    write_owned(
        &container.join("0.log"),
        &stderr_lines(&[
            (
                1_000_000,
                "ERROR 03-04 09:14:06 [engine.py:52] Traceback (most recent call last):",
            ),
            (1_000_000, "  File \"/app/engine.py\", line 52, in step"),
            (1_000_000, "    out = self.model(x)"),
            (1_000_000, "torch.OutOfMemoryError: CUDA out of memory."),
        ]),
    );
    let mut source = FileSource::new("files", grouping(dir.path()), CheckpointSet::new()).unwrap();
    assert!(
        bodies(&one_pass(&mut source)).is_empty(),
        "the traceback is held open for a chained one"
    );
    std::fs::rename(&hidden, container.join("0.log.20250304-091405")).unwrap();
    let mut got = bodies(&one_pass(&mut source));
    let mut rest = multiline::Emitted::default();
    for group in source.groups.values_mut() {
        group.flush(&mut rest);
    }
    got.extend(rest.records.into_iter().map(|r| r.body));
    let traceback: Vec<&String> = got.iter().filter(|b| b.contains("Traceback")).collect();
    assert_eq!(traceback.len(), 1, "{got:#?}");
    assert_eq!(traceback[0].lines().count(), 4, "{got:#?}");
    // The cut-off tail stands alone (in one record or a record per line), nothing lost.
    let tail: Vec<&str> = got
        .iter()
        .filter(|b| !b.contains("Traceback") && !b.contains("INFO"))
        .flat_map(|b| b.lines())
        .collect();
    assert_eq!(
        tail,
        [
            "    out = self.model(x)",
            "torch.OutOfMemoryError: CUDA out of memory."
        ],
        "{got:#?}"
    );
    assert_eq!(
        got.iter().filter(|b| b.contains("INFO")).count(),
        1,
        "{got:#?}"
    );
}

#[test]
fn a_file_copied_and_truncated_before_its_first_read_is_not_read_as_itself() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ns_p_u/c/0.log");
    write_lines(
        &log,
        &[
            "2025-03-04T09:14:05Z stdout F a1",
            "2025-03-04T09:14:06Z stdout F a2",
        ],
    );
    let mut source = source_over(dir.path());
    // Found (a tail at offset 0), then copied and truncated before the first read.
    source.refresh_files();
    std::fs::copy(&log, dir.path().join("ns_p_u/c/0.log.20250304-091407")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    write_lines(&log, &["2025-03-04T09:14:08Z stdout F b1"]);
    let (tx, mut rx) = mpsc::channel(64);
    let _ = source.read_files(&tx, None);
    drop(tx);
    let mut batches = Vec::new();
    while let Ok(b) = rx.try_recv() {
        batches.push(b);
    }
    batches.extend(drain(&mut source));
    let mut got = bodies(&batches);
    got.sort();
    assert_eq!(got, ["a1", "a2", "b1"]);
    let ids: HashSet<_> = batches
        .iter()
        .flat_map(|b| b.records.iter().map(|r| r.id))
        .collect();
    assert_eq!(ids.len(), 3, "each line has its own id");
}
