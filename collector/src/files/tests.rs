//! The source against real files on disk.

use super::*;
use model::{AttrValue, Stream, names};
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

/// A source with default settings over `logs_dir`, starting with no checkpoints.
fn source_over(logs_dir: &Path) -> FileSource {
    FileSource::new(
        "files",
        FileSourceConfig::new(logs_dir.into()),
        CheckpointSet::new(),
    )
    .unwrap()
}

/// Runs one discovery + read pass and returns the batches it sent.
fn one_pass(source: &mut FileSource) -> Vec<Batch> {
    one_pass_reporting(source).0
}

/// One pass, also returning whether the source wants another pass at once.
fn one_pass_reporting(source: &mut FileSource) -> (Vec<Batch>, bool) {
    let (tx, mut rx) = mpsc::channel(64);
    source.refresh_files();
    let again = source.read_files(&tx).ok().expect("the channel is open");
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
    let mut restarted =
        FileSource::new("files", FileSourceConfig::new(dir.path().into()), committed).unwrap();
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
    let mut config = FileSourceConfig::new(dir.path().into());
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
    let mut config = FileSourceConfig::new(dir.path().into());
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
    let mut restarted =
        FileSource::new("files", FileSourceConfig::new(dir.path().into()), committed).unwrap();
    let mut got = line_numbers(&drain(&mut restarted));
    got.sort();
    assert_eq!(got, [2, 3, 4, 5]);
}

#[test]
fn read_from_end_skips_what_existed_at_the_first_start_only() {
    let dir = tempfile::tempdir().unwrap();
    write_numbered(&dir.path().join("ns_p_u/c/0.log"), 0, 3);
    let mut config = FileSourceConfig::new(dir.path().into());
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
    let mut committed = CheckpointSet::new();
    for c in batches.iter().flat_map(|b| &b.checkpoints) {
        committed.update(c);
    }
    FileSource::new("files", FileSourceConfig::new(dir.into()), committed).unwrap()
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
