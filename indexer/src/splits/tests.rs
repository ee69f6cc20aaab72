//! Splits through the public write and read paths: rollover, time pruning, merges,
//! retention, and what a crash or a damaged split leaves behind.

use crate::search::tests::{bodies, record, redelivered, request};
use crate::{IndexStore, SearchRequest, SinkOptions};
use model::{Batch, Checkpoint, Record, RecordKind, Timestamp, names};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The first record of the tests' clock (see `record`).
const BASE_SECS: i64 = 1_795_000_000;

fn at_secs(secs: i64) -> Timestamp {
    Timestamp::from_unix_nanos((BASE_SECS + secs) * 1_000_000_000)
}

fn batch_with_checkpoint(records: Vec<Record>, position: u64) -> Batch {
    Batch {
        checkpoints: vec![Checkpoint {
            source: "files".into(),
            key: "/logs/p/0.log".into(),
            position,
            finished: false,
        }],
        ..Batch::new(records)
    }
}

/// Where the sources resume in the log [`batch_with_checkpoint`] names: the position of
/// the index's last commit.
fn committed_position(store: &IndexStore) -> Option<u64> {
    let checkpoints = store.committed_checkpoints().unwrap();
    checkpoints.position("files", "/logs/p/0.log")
}

fn split_dirs(index: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(index.join("splits"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// A sink whose every commit seals its split (a quiet cluster's hourly splits, sped up),
/// after `commits` commits of 5 records each, checkpointed at the commit's number.
fn sink_of_small_splits(store: &IndexStore, commits: u64) -> crate::IndexSink {
    let mut sink = store
        .sink(SinkOptions {
            split_age: Duration::ZERO,
            ..SinkOptions::default()
        })
        .unwrap();
    for c in 0..commits {
        let records = (0..5)
            .map(|i| record(c * 5 + i, "vllm-0", (c * 5 + i) as i64, "line"))
            .collect();
        sink.add(batch_with_checkpoint(records, c)).unwrap();
        sink.commit().unwrap();
    }
    sink
}

/// Distinct record ids among all records, and how many records there are.
fn ids(store: &IndexStore) -> (usize, usize) {
    let mut seen = HashSet::new();
    let n = store
        .searcher()
        .scan(&SearchRequest::default(), |r| {
            seen.insert(r.id);
        })
        .unwrap();
    (seen.len(), n)
}

#[test]
fn splits_roll_over_and_a_time_range_opens_only_the_splits_it_overlaps() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store
        .sink(SinkOptions {
            split_docs: 100,
            ..SinkOptions::default()
        })
        .unwrap();
    // Five hours, 100 requests an hour, committed hourly: one split per hour.
    for hour in 0..5i64 {
        let records = (0..100i64)
            .map(|i| {
                let mut r = record(
                    (hour * 100 + i) as u64,
                    "vllm-0",
                    hour * 3600 + i * 30,
                    &format!("request {hour}-{i} finished"),
                );
                r.kind = RecordKind::Request;
                r.attributes.insert(names::GEN_AI_REQUEST_MODEL, "llama3");
                r.attributes
                    .insert_f64(names::LLM_E2E_MS, (hour * 100 + i) as f64);
                r
            })
            .collect();
        sink.add(Batch::new(records)).unwrap();
        sink.commit().unwrap();
    }
    sink.close().unwrap();
    let searcher = store.searcher();

    let hour_2 = searcher
        .search(&SearchRequest {
            from: Some(at_secs(2 * 3600)),
            to: Some(at_secs(2 * 3600 + 3599)),
            ..request("finished")
        })
        .unwrap();
    assert_eq!(hour_2.total, 100);
    assert_eq!(
        hour_2.splits_searched, 1,
        "only the split of hour 2 is opened"
    );
    assert!(hour_2.hits.iter().all(|r| r.body.starts_with("request 2-")));

    let newest = searcher
        .search(&SearchRequest {
            limit: 10,
            ..request("finished")
        })
        .unwrap();
    assert_eq!(newest.total, 500);
    assert_eq!(newest.splits_searched, 5);
    assert_eq!(newest.splits_sorted, 1, "older splits are only counted");
    assert_eq!(newest.hits[0].body, "request 4-99 finished");
    // Paging crosses split boundaries without gaps or repeats.
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = searcher
            .search(&SearchRequest {
                limit: 70,
                after,
                ..request("finished")
            })
            .unwrap();
        seen.extend(page.hits.iter().map(|r| r.body.clone()));
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let expected: Vec<String> = (0..5)
        .rev()
        .flat_map(|h| {
            (0..100)
                .rev()
                .map(move |i| format!("request {h}-{i} finished"))
        })
        .collect();
    assert_eq!(seen, expected);

    let hourly = searcher
        .histogram(&request("*"), Duration::from_secs(3600))
        .unwrap();
    assert_eq!(
        hourly.iter().map(|b| b.count).collect::<Vec<_>>(),
        [100; 5],
        "{hourly:?}"
    );
    // Percentiles over all splits together, not per split.
    let stats = searcher
        .field_stats(
            &request("*"),
            names::LLM_E2E_MS,
            Some(names::GEN_AI_REQUEST_MODEL),
            &[50.0],
        )
        .unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].count, 500);
    assert_eq!(stats[0].avg, Some(249.5));
    let p50 = stats[0].percentiles[0].1;
    assert!((p50 - 249.5).abs() < 5.0, "p50 {p50}");

    // Another process sees the same.
    let offline = IndexStore::open_existing(dir.path()).unwrap();
    assert_eq!(offline.searcher().search(&request("*")).unwrap().total, 500);
}

#[test]
fn small_splits_are_merged_and_nothing_is_lost_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = sink_of_small_splits(&store, 10);
    sink.compact();
    // How the ten fall into merges depends on when each was sealed; what is left is fewer
    // than four small sealed splits (a merge takes four) and the empty active one.
    let left = store.split_count();
    assert!((2..=4).contains(&left), "{left} splits");
    assert_eq!(ids(&store), (50, 50));
    sink.close().unwrap();
    drop(store);
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    assert_eq!(ids(&store), (50, 50));
    assert_eq!(committed_position(&store), Some(9));
}

#[test]
fn a_merge_cut_short_by_a_crash_neither_loses_nor_doubles_records() {
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = sink_of_small_splits(&store, 4);
    sink.wait_for_merges();
    let before = split_dirs(dir.path());
    for d in &before {
        copy_dir(d, &backup.path().join(d.file_name().unwrap()));
    }
    sink.compact();
    sink.close().unwrap();
    drop(store);
    // The crash: the merged split is in place, its sources were not removed yet, and a
    // later merge had only begun.
    for d in &before {
        copy_dir(&backup.path().join(d.file_name().unwrap()), d);
    }
    let unfinished = dir.path().join("splits/00000000000000000099.merging");
    std::fs::create_dir_all(&unfinished).unwrap();
    std::fs::write(unfinished.join("meta.json"), "{").unwrap();

    let offline = IndexStore::open_existing(dir.path()).unwrap();
    assert_eq!(
        ids(&offline),
        (20, 20),
        "a reader skips the replaced splits"
    );
    drop(offline);
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    assert_eq!(ids(&store), (20, 20));
    assert_eq!(store.split_count(), 2, "merged + active");
    assert!(!unfinished.exists());
    assert_eq!(
        split_dirs(dir.path()).len(),
        2,
        "replaced splits are removed"
    );
    assert_eq!(committed_position(&store), Some(3));
}

#[test]
fn a_damaged_split_is_quarantined_and_the_others_stay_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let options = SinkOptions {
        split_docs: 2,
        ..SinkOptions::default()
    };
    {
        let store = IndexStore::open_or_create(dir.path()).unwrap();
        let mut sink = store.sink(options.clone()).unwrap();
        sink.add(batch_with_checkpoint(
            vec![record(1, "p", 1, "a"), record(2, "p", 2, "b")],
            1,
        ))
        .unwrap();
        sink.commit().unwrap();
        sink.add(batch_with_checkpoint(
            vec![record(3, "p", 3, "c"), record(4, "p", 4, "d")],
            2,
        ))
        .unwrap();
        sink.close().unwrap();
    }
    let splits = split_dirs(dir.path());
    assert_eq!(splits.len(), 3, "two full splits and an empty active one");
    // The split of the last commit loses a segment file (a disk error, a bad copy).
    let victim = std::fs::read_dir(&splits[1])
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "idx"))
        .unwrap();
    std::fs::remove_file(&victim).unwrap();

    let store = IndexStore::open_or_create(dir.path()).unwrap();
    assert_eq!(
        bodies(&store.searcher().search(&request("*")).unwrap()),
        ["b", "a"]
    );
    assert_eq!(
        committed_position(&store),
        Some(1),
        "the sources resume from the commit before, so c and d are read again"
    );
    let quarantined = std::fs::read_dir(dir.path().join("quarantine"))
        .unwrap()
        .count();
    assert_eq!(quarantined, 1, "the damaged files are kept aside");
    let mut sink = store.sink(options).unwrap();
    sink.add(batch_with_checkpoint(
        vec![record(3, "p", 3, "c"), record(4, "p", 4, "d")],
        2,
    ))
    .unwrap();
    sink.close().unwrap();
    drop(store);
    // A half-written meta.json in the first split.
    std::fs::write(splits[0].join("meta.json"), "{\"index_settings\":").unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    assert_eq!(
        bodies(&store.searcher().search(&request("*")).unwrap()),
        ["d", "c"]
    );
}

#[test]
fn retention_drops_whole_splits_by_age_and_the_oldest_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let now = Timestamp::now().unix_nanos();
    let days_ago = |n: u64, days: i64| {
        let mut r = record(n, "vllm-0", 0, &format!("record {n}"));
        r.timestamp = Timestamp::from_unix_nanos(now - days * 86_400_000_000_000);
        r
    };
    {
        let store = IndexStore::open_or_create(dir.path()).unwrap();
        let mut sink = store
            .sink(SinkOptions {
                split_docs: 2,
                ..SinkOptions::default()
            })
            .unwrap();
        sink.add(Batch::new(vec![days_ago(1, 3), days_ago(2, 3)]))
            .unwrap();
        sink.close().unwrap();
    }
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store
        .sink(SinkOptions {
            retention: Some(Duration::from_secs(86_400)),
            ..SinkOptions::default()
        })
        .unwrap();
    sink.add(Batch::new(vec![days_ago(3, 0)])).unwrap();
    sink.commit().unwrap();
    assert_eq!(sink.splits_dropped(), 1);
    assert_eq!(
        bodies(&store.searcher().search(&request("*")).unwrap()),
        ["record 3"]
    );
    sink.close().unwrap();
    drop(store);

    // By size: every sealed split is over a one-byte budget; the active one stays.
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store
        .sink(SinkOptions {
            split_age: Duration::ZERO,
            retention_bytes: Some(1),
            ..SinkOptions::default()
        })
        .unwrap();
    for n in 10..15 {
        sink.add(Batch::new(vec![days_ago(n, 0)])).unwrap();
        sink.commit().unwrap();
        sink.wait_for_merges();
    }
    assert!(sink.splits_dropped() >= 4, "{}", sink.splits_dropped());
    assert_eq!(
        bodies(&store.searcher().search(&request("*")).unwrap()),
        ["record 14"],
        "only the newest split is left"
    );
    sink.close().unwrap();
}

#[test]
fn under_the_disk_floor_the_index_gives_back_its_own_growth_and_stops_growing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let options = SinkOptions {
        split_docs: 10,
        min_free_disk: Some(0.15),
        ..SinkOptions::default()
    };
    // The filesystem as statvfs would say: (free, total) bytes.
    let disk = Arc::new((AtomicU64::new(1 << 40), AtomicU64::new(1 << 40)));
    let set_disk = |free: u64, total: u64| {
        disk.0.store(free, Ordering::SeqCst);
        disk.1.store(total, Ordering::SeqCst);
    };
    let sink_on_disk = || {
        let disk = disk.clone();
        store
            .sink(options.clone())
            .unwrap()
            .with_disk_probe(move |_| {
                Ok((disk.0.load(Ordering::SeqCst), disk.1.load(Ordering::SeqCst)))
            })
    };
    let hour = |h: i64, n: u64| -> Vec<Record> {
        (0..n)
            .map(|i| {
                record(
                    h as u64 * 100 + i,
                    "vllm-0",
                    h * 3600 + i as i64,
                    &format!("hour {h}"),
                )
            })
            .collect()
    };
    let found = || {
        (0..10)
            .map(|h| {
                let hits = store.searcher().search(&request(&format!("\"hour {h}\"")));
                hits.unwrap().total
            })
            .collect::<Vec<_>>()
    };
    // Four hours, a split each, on a roomy disk. Each commit looks at the disk (no 5 s wait).
    let mut sink = sink_on_disk();
    let add_hour = |sink: &mut crate::IndexSink, h: i64, n: u64| {
        sink.add(batch_with_checkpoint(hour(h, n), h as u64))
            .unwrap();
        sink.next_disk_pass_now();
        sink.commit().unwrap();
    };
    for h in 0..4 {
        add_hour(&mut sink, h, 10);
    }
    assert_eq!(sink.splits_dropped(), 0);
    let health = store.health();
    assert!(health.since_commit.is_some() && health.failing.is_none());
    assert!(!health.disk.expect("a disk reading").under_floor());
    // A disk of 1000 splits' size, so 150 of them is the floor.
    let split = store.stats().bytes / 4;
    let floor = 150 * split;

    // The index itself crosses the floor, by half a split: it gives that back (the
    // oldest split goes)...
    set_disk(floor - split / 2, 1000 * split);
    add_hour(&mut sink, 4, 10);
    assert_eq!(sink.splits_dropped(), 1, "its own growth past the floor");
    assert!(
        store.health().disk.is_some_and(|d| d.under_floor()),
        "a status says so"
    );
    assert_eq!(found(), [0, 10, 10, 10, 10, 0, 0, 0, 0, 0]);
    // ...and grows no more while the disk stays under the floor: a new split, an old one
    // goes.
    add_hour(&mut sink, 5, 10);
    assert_eq!(sink.splits_dropped(), 2);
    assert_eq!(found(), [0, 0, 10, 10, 10, 10, 0, 0, 0, 0]);
    // A dropped split's space comes back as searches let go of it, so one pass per 5 s.
    sink.add(batch_with_checkpoint(hour(6, 10), 6)).unwrap();
    sink.commit().unwrap();
    assert_eq!(sink.splits_dropped(), 2, "one pass per DISK_PASS");
    sink.close().unwrap();

    // Others fill the disk, 100 splits' worth under the floor: emptying the index would
    // lose its history and not restore the floor. It keeps what it has...
    set_disk(floor - 100 * split, 1000 * split);
    let mut sink = sink_on_disk();
    add_hour(&mut sink, 7, 10);
    assert_eq!(
        sink.splits_dropped(),
        2,
        "nothing is dropped for others' files"
    );
    assert_eq!(found(), [0, 0, 10, 10, 10, 10, 10, 10, 0, 0]);
    // ...and stops growing: as hour 7 comes, hour 2 goes.
    add_hour(&mut sink, 8, 10);
    assert_eq!(sink.splits_dropped(), 3);
    assert_eq!(found(), [0, 0, 0, 10, 10, 10, 10, 10, 10, 0]);
    sink.close().unwrap();

    // A full disk (under 1 % free): the commits need room, so every split goes but the one
    // of the last commit (the sources resume from its checkpoints) and the one being written.
    set_disk(0, 1000 * split);
    let mut sink = sink_on_disk();
    add_hour(&mut sink, 9, 1);
    assert_eq!(found(), [0, 0, 0, 0, 0, 0, 0, 0, 10, 1]);
    sink.close().unwrap();
    assert_eq!(committed_position(&store), Some(9));
}

#[test]
fn a_disk_that_cannot_be_measured_stops_no_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store
        .sink(SinkOptions {
            min_free_disk: Some(0.15),
            ..SinkOptions::default()
        })
        .unwrap()
        .with_disk_probe(|_| Err(std::io::Error::other("statvfs: stale NFS file handle")));
    sink.add(batch_with_checkpoint(
        vec![record(1, "vllm-0", 1, "kept")],
        1,
    ))
    .unwrap();
    sink.commit().unwrap();
    assert_eq!(
        bodies(&store.searcher().search(&request("kept")).unwrap()),
        ["kept"]
    );
    assert_eq!(sink.splits_dropped(), 0);
    sink.close().unwrap();
}

#[test]
fn a_redelivered_record_replaces_its_copy_in_a_sealed_split() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store
        .sink(SinkOptions {
            split_docs: 2,
            ..SinkOptions::default()
        })
        .unwrap();
    sink.add(Batch::new(vec![
        record(1, "p", 1, "first line"),
        record(2, "p", 2, "kept"),
    ]))
    .unwrap();
    sink.commit().unwrap();
    sink.wait_for_merges();
    assert_eq!(store.split_count(), 2, "the full split is sealed");
    let again = record(1, "p", 1, "first line\n  and its continuation");
    sink.add(redelivered(vec![again])).unwrap();
    sink.commit().unwrap();
    let all = store.searcher().search(&request("*")).unwrap();
    assert_eq!(bodies(&all), ["kept", "first line\n  and its continuation"]);
    sink.close().unwrap();
}

#[test]
fn a_second_writer_on_one_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = IndexStore::open_or_create(dir.path()).unwrap();
    let second = IndexStore::open_or_create(dir.path()).err().unwrap();
    assert!(matches!(second, crate::IndexError::Locked(_)), "{second}");
    assert!(second.to_string().contains("another infersight process"));
}

/// Segments in a split's directory, as its last commit left them.
fn segments_in(split: &Path) -> usize {
    tantivy::Index::open_in_dir(split)
        .unwrap()
        .searchable_segment_ids()
        .unwrap()
        .len()
}

/// A sink that merges only segments of at most 10 documents, after 8 commits of
/// `docs_per_commit` records each (record `n` at second `n`).
fn sink_of_8_commits(
    store: &IndexStore,
    docs_per_commit: u64,
    split_docs: u64,
) -> crate::IndexSink {
    let mut sink = store
        .sink(SinkOptions {
            segment_merge_max_docs: 10,
            split_docs,
            ..SinkOptions::default()
        })
        .unwrap();
    for c in 0..8 {
        let records = (0..docs_per_commit)
            .map(|i| {
                let n = c * docs_per_commit + i;
                record(n, "vllm-0", n as i64, "line")
            })
            .collect();
        sink.add(Batch::new(records)).unwrap();
        sink.commit().unwrap();
    }
    sink
}

/// Merging a busy aggregator's per-commit segments again cost ~15 % of its CPU; a quiet
/// cluster's tiny per-second segments must still be merged.
#[test]
fn segments_over_the_merge_limit_stay_apart_and_small_ones_are_merged() {
    let segments = |docs_per_commit: u64| {
        let dir = tempfile::tempdir().unwrap();
        let store = IndexStore::open_or_create(dir.path()).unwrap();
        sink_of_8_commits(&store, docs_per_commit, 1_000_000)
            .close()
            .unwrap();
        let dirs = split_dirs(dir.path());
        assert_eq!(dirs.len(), 1);
        let total = 8 * docs_per_commit as usize;
        assert_eq!(ids(&store), (total, total));
        segments_in(&dirs[0])
    };
    assert_eq!(
        segments(20),
        8,
        "segments of 20 documents, over the limit of 10"
    );
    assert_eq!(segments(5), 1, "eight segments of 5 documents");
}

/// Replacing a redelivered record in a sealed split deletes it there and nothing more:
/// merging the split's segments too would hold the sink's thread for as long.
#[test]
fn a_redelivered_record_deleted_from_a_sealed_split_merges_none_of_its_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    // The split is full, and sealed, at its 8th commit.
    let mut sink = sink_of_8_commits(&store, 20, 160);
    sink.wait_for_merges();
    let sealed = split_dirs(dir.path())[0].clone();
    assert_eq!(segments_in(&sealed), 8);
    let again = record(3, "vllm-0", 3, "line, again");
    sink.add(redelivered(vec![again])).unwrap();
    sink.close().unwrap();
    assert_eq!(segments_in(&sealed), 8);
    assert_eq!(ids(&store), (160, 160), "replaced, not added");
    let hits = store.searcher().search(&request("again")).unwrap();
    assert_eq!(bodies(&hits), ["line, again"]);
}

/// Writes split `id` of `index` as a version whose schema lacked `dropped` (a field added
/// since) would have: the other fields in the same order, so every later field's handle is
/// one lower than this version's.
fn write_split_of_an_older_schema(index: &Path, id: u64, dropped: &str, records: &[Record]) {
    let current = crate::IndexSchema::new();
    let mut builder = tantivy::schema::Schema::builder();
    for (_, entry) in current.schema.fields() {
        if entry.name() != dropped {
            builder.add_field(entry.clone());
        }
    }
    let schema = builder.build();
    let dir = index.join("splits").join(super::split_dir_name(id));
    std::fs::create_dir_all(&dir).unwrap();
    let split = tantivy::Index::create_in_dir(&dir, schema.clone()).unwrap();
    crate::IndexSchema::register_tokenizers(&split);
    let mut writer: tantivy::IndexWriter = split.writer(super::SMALL_WRITER_BUDGET).unwrap();
    if !records.is_empty() {
        let older = current.for_split(&schema).unwrap();
        for r in records {
            writer
                .add_document(older.document(r, &r.resource_json(), &mut Vec::new()))
                .unwrap();
        }
    }
    let mut checkpoints = model::CheckpointSet::new();
    for c in &batch_with_checkpoint(Vec::new(), 7).checkpoints {
        checkpoints.update(c);
    }
    let payload = super::CommitPayload {
        checkpoints,
        commit_seq: 3,
        ..Default::default()
    };
    let mut prepared = writer.prepare_commit().unwrap();
    prepared.set_payload(&serde_json::to_string(&payload).unwrap());
    prepared.commit().unwrap();
}

fn timed_request(n: u64, pod: &str, secs: i64, id: &str, ttft_ms: f64, queue_ms: f64) -> Record {
    let mut r = record(n, pod, secs, &format!("Finished request {id}"));
    r.attributes.insert(names::LLM_REQUEST_ID, id);
    r.attributes.insert(names::GEN_AI_REQUEST_MODEL, "llama3");
    r.attributes
        .insert(names::LLM_TTFT_MS, model::AttrValue::Float(ttft_ms));
    r.attributes
        .insert(names::LLM_QUEUE_MS, model::AttrValue::Float(queue_ms));
    r
}

#[test]
fn a_split_an_older_version_wrote_stays_searchable_and_is_neither_written_to_nor_merged() {
    let dir = tempfile::tempdir().unwrap();
    // The older version had no queue-time column: its split keeps that figure in the JSON
    // attributes, and the ttft column (after it in the schema) under another handle.
    write_split_of_an_older_schema(
        dir.path(),
        5,
        names::LLM_QUEUE_MS,
        &[
            timed_request(1, "vllm-0", 10, "cmpl-old", 250.0, 40.0),
            record(2, "vllm-0", 11, "CUDA out of memory"),
        ],
    );
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    assert_eq!(store.stats().splits_quarantined, 0);
    assert_eq!(store.split_count(), 1);
    assert_eq!(
        committed_position(&store),
        Some(7),
        "the sources resume from the older split's commit"
    );
    let mut sink = store
        .sink(SinkOptions {
            split_age: Duration::ZERO,
            ..SinkOptions::default()
        })
        .unwrap();
    assert_eq!(store.split_count(), 2, "new records go to a new split");
    for c in 0..5u64 {
        let secs = 20 + c as i64;
        sink.add(batch_with_checkpoint(
            vec![timed_request(
                10 + c,
                "vllm-1",
                secs,
                &format!("cmpl-new{c}"),
                50.0,
                2.0,
            )],
            8 + c,
        ))
        .unwrap();
        sink.commit().unwrap();
    }
    sink.compact();

    let searcher = store.searcher();
    let found = |q: &str| bodies(&searcher.search(&request(q)).unwrap()).len();
    assert_eq!(found("*"), 7);
    assert_eq!(found("cuda memory"), 1);
    assert_eq!(
        found("llm.ttft_ms:>100"),
        1,
        "the older split's column, by name"
    );
    assert_eq!(found("llm.ttft_ms:50"), 5);
    assert_eq!(
        found("llm.queue_ms:>1"),
        5,
        "a field the older split lacks matches nothing there, and is no error"
    );
    assert_eq!(
        found("attributes.llm.queue_ms:40"),
        1,
        "where the older split kept it"
    );
    let pod = SearchRequest {
        pod: Some("vllm-0".into()),
        ..request("*")
    };
    assert_eq!(searcher.search(&pod).unwrap().total, 2);
    let trace = searcher
        .request_trace("cmpl-old", &SearchRequest::default())
        .unwrap();
    assert_eq!(trace.len(), 1);
    assert_eq!(trace[0].body, "Finished request cmpl-old");
    let buckets = searcher
        .histogram(&request("*"), Duration::from_secs(3600))
        .unwrap();
    assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), 7);
    let ttft = searcher
        .field_stats(
            &request("*"),
            names::LLM_TTFT_MS,
            Some(names::GEN_AI_REQUEST_MODEL),
            &[50.0],
        )
        .unwrap();
    let llama3 = ttft
        .iter()
        .find(|g| g.group.as_deref() == Some("llama3"))
        .unwrap();
    assert_eq!((llama3.count, llama3.sum), (6, 500.0), "{ttft:?}");
    // A column the older split lacks: its records count, with no value.
    let queue = searcher
        .field_stats(&request("*"), names::LLM_QUEUE_MS, None, &[50.0])
        .unwrap();
    assert_eq!((queue[0].count, queue[0].sum), (7, 10.0), "{queue:?}");

    // The older split was left as it was: not merged with the new ones, not written to.
    let older = dir.path().join("splits").join(super::split_dir_name(5));
    assert!(older.is_dir());
    assert_eq!(
        tantivy::Index::open_in_dir(&older)
            .unwrap()
            .reader()
            .unwrap()
            .searcher()
            .num_docs(),
        2
    );
    sink.close().unwrap();
    drop((searcher, store));
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    assert_eq!(ids(&store), (7, 7));
}

#[test]
fn a_split_missing_a_field_every_search_needs_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    write_split_of_an_older_schema(dir.path(), 1, "body", &[]);
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    assert_eq!(store.stats().splits_quarantined, 1);
    assert!(dir.path().join("quarantine").is_dir());
}
