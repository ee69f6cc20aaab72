//! Write then read through a real on-disk index.

use super::*;
use crate::{IndexStore, SinkOptions, StatsQuestion};
use model::{AttrValue, Attributes, Batch, BatchStatus, Checkpoint, Finalizers, RecordId, names};
use std::sync::Arc;
use std::sync::mpsc;

pub(crate) fn record(n: u64, pod: &str, secs: i64, body: &str) -> Record {
    let resource: Attributes = [
        (names::K8S_NAMESPACE_NAME, AttrValue::from("llm")),
        (names::K8S_POD_NAME, AttrValue::from(pod)),
        (names::K8S_CONTAINER_NAME, AttrValue::from("server")),
    ]
    .into_iter()
    .collect();
    let ts = Timestamp::from_unix_nanos(1_795_000_000_000_000_000 + secs * 1_000_000_000);
    Record::log(
        RecordId::from_source(pod.as_bytes(), n),
        ts,
        ts,
        Arc::new(resource),
        body.to_string(),
    )
}

/// A batch of copies of records an earlier run may have delivered (each replaces its copy).
pub(crate) fn redelivered(records: Vec<Record>) -> Batch {
    Batch {
        redelivered: records.iter().map(|r| r.id).collect(),
        ..Batch::new(records)
    }
}

pub(crate) fn request(query: &str) -> SearchRequest {
    SearchRequest {
        query: query.into(),
        limit: 100,
        ..Default::default()
    }
}

/// An index in a new directory holding `records`, committed.
fn committed(records: Vec<Record>) -> (tempfile::TempDir, IndexStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    sink.add(Batch::new(records)).unwrap();
    sink.commit().unwrap();
    (dir, store)
}

pub(crate) fn bodies(r: &SearchResults) -> Vec<&str> {
    r.hits.iter().map(|h| h.body.as_str()).collect()
}

#[test]
fn committed_records_are_found_newest_first_with_filters_and_time_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    let mut stats = record(
        3,
        "vllm-0",
        30,
        "Engine 000: Avg prompt throughput: 0.0 tokens/s, GPU KV cache usage: 57.9%",
    );
    stats.kind = RecordKind::EngineStats;
    stats.attributes.insert(names::LLM_SERVER, "vllm");
    stats.attributes.insert(names::LLM_RUNNING, 18i64);
    stats.attributes.insert(names::LOG_LINES, 12i64);
    sink.add(Batch::new(vec![
        record(
            1,
            "vllm-0",
            10,
            "Received request chatcmpl-a269fdcb7c6ce890",
        ),
        record(2, "tgi-0", 20, "Success total_time=\"1.2s\" chatcmpl"),
        stats,
    ]))
    .unwrap();
    let searcher = store.searcher();
    assert_eq!(
        searcher.search(&request("*")).unwrap().total,
        0,
        "nothing is visible before the commit"
    );
    sink.commit().unwrap();

    let all = searcher.search(&request("")).unwrap();
    assert_eq!(all.total, 3);
    assert_eq!(
        bodies(&all)[0],
        "Engine 000: Avg prompt throughput: 0.0 tokens/s, GPU KV cache usage: 57.9%"
    );
    assert_eq!(
        all.hits[0].attributes.get(names::LLM_RUNNING),
        Some(&AttrValue::Int(18))
    );

    assert_eq!(
        bodies(
            &searcher
                .search(&request("chatcmpl-a269fdcb7c6ce890"))
                .unwrap()
        ),
        ["Received request chatcmpl-a269fdcb7c6ce890"]
    );
    assert_eq!(
        searcher.search(&request("a269fdcb7c6ce890")).unwrap().total,
        1,
        "the id's hex part alone finds it"
    );
    assert_eq!(searcher.search(&request("KV cache")).unwrap().total, 1);
    assert_eq!(
        searcher
            .search(&request("k8s.pod.name:tgi-0"))
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        searcher.search(&request("llm.server:vllm")).unwrap().total,
        1
    );
    for prefix in ["chatcmpl-a269*", "chatcmpl-A269* request", "a269fd*"] {
        assert_eq!(
            searcher.search(&request(prefix)).unwrap().total,
            1,
            "{prefix}"
        );
    }
    assert!(
        searcher.search(&request("ch*")).is_err(),
        "too short a prefix"
    );
    for numeric in [
        "llm.running:18",
        "llm.running:>10",
        "llm.running:[10 TO 20]",
    ] {
        assert_eq!(
            searcher.search(&request(numeric)).unwrap().total,
            1,
            "{numeric}"
        );
    }
    assert_eq!(
        searcher.search(&request("llm.running:<10")).unwrap().total,
        0
    );
    assert_eq!(
        searcher
            .search(&request("attributes.log.lines:12"))
            .unwrap()
            .total,
        1
    );

    let mut by_pod = request("chatcmpl");
    by_pod.pod = Some("vllm-0".into());
    assert_eq!(searcher.search(&by_pod).unwrap().total, 1);
    let mut by_kind = request("*");
    by_kind.kind = Some(RecordKind::EngineStats);
    assert_eq!(searcher.search(&by_kind).unwrap().total, 1);

    let mut window = request("*");
    window.from = Some(all.hits[1].timestamp);
    window.to = Some(all.hits[1].timestamp);
    assert_eq!(
        bodies(&searcher.search(&window).unwrap()),
        ["Success total_time=\"1.2s\" chatcmpl"]
    );

    let mut capped = request("*");
    capped.limit = MAX_LIMIT + 1;
    let r = searcher.search(&capped).unwrap();
    assert!(r.limit_capped);
    assert_eq!(r.limit, MAX_LIMIT);
    let mut scanned = Vec::new();
    let n = searcher
        .scan(&request("chatcmpl"), |r| scanned.push(r.body))
        .unwrap();
    scanned.sort();
    assert_eq!((n, scanned.len()), (2, 2));
    assert!(scanned[0].starts_with("Received request"));

    let mut one = request("*");
    one.limit = 1;
    assert_eq!(searcher.search(&one).unwrap().hits.len(), 1);
}

#[test]
fn a_query_syntax_error_names_the_query() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let err = store
        .searcher()
        .search(&request("body:(unclosed"))
        .unwrap_err();
    assert!(
        matches!(err, IndexError::Query(ref m) if m.contains("unclosed") && m.contains("position")),
        "{err}"
    );
    let err = store
        .searcher()
        .search(&request("nosuchfield:x"))
        .unwrap_err();
    assert!(matches!(err, IndexError::Query(_)), "{err}");
}

#[test]
fn checkpoints_are_committed_with_the_documents_and_batches_acknowledged_after() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    {
        let store = IndexStore::open_or_create(dir.path()).unwrap();
        let mut sink = store.sink(SinkOptions::default()).unwrap();
        sink.add(Batch {
            records: vec![record(1, "p", 1, "one")],
            finalizers: Finalizers::with_callback(move |s| tx.send(s).unwrap()),
            checkpoints: vec![Checkpoint {
                source: "files".into(),
                key: "/logs/p/0.log".into(),
                position: 42,
                finished: false,
            }],
            redelivered: vec![],
        })
        .unwrap();
        assert!(
            rx.try_recv().is_err(),
            "no acknowledgement before the commit"
        );
        assert!(
            matches!(
                store.sink(SinkOptions::default()),
                Err(IndexError::Locked(_))
            ),
            "one writer per directory"
        );
        sink.close().unwrap();
        assert_eq!(rx.try_recv(), Ok(BatchStatus::Delivered));
    }
    let reopened = IndexStore::open_or_create(dir.path()).unwrap();
    assert_eq!(
        reopened
            .committed_checkpoints()
            .unwrap()
            .position("files", "/logs/p/0.log"),
        Some(42)
    );
    assert_eq!(
        IndexStore::open_existing(dir.path())
            .unwrap()
            .searcher()
            .search(&request("one"))
            .unwrap()
            .total,
        1
    );
}

/// The pipeline makes documents on one thread while the sink commits on another: a batch
/// made before a commit but added after it belongs to the next commit, checkpoints and
/// acknowledgement included.
#[test]
fn a_batch_made_before_a_commit_and_added_after_it_lands_in_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    let mut maker = sink.document_maker();
    let batch = |n: u64, body: &str, position: u64, tx: mpsc::Sender<BatchStatus>| Batch {
        records: vec![record(n, "p", n as i64, body)],
        finalizers: Finalizers::with_callback(move |s| tx.send(s).unwrap()),
        checkpoints: vec![Checkpoint {
            source: "files".into(),
            key: "/logs/p/0.log".into(),
            position,
            finished: false,
        }],
        redelivered: vec![],
    };
    let (first_tx, first_acks) = mpsc::channel();
    let (second_tx, second_acks) = mpsc::channel();
    let first = maker.make(batch(1, "first", 10, first_tx));
    let second = maker.make(batch(2, "second", 20, second_tx));
    assert_eq!((first.len(), second.len()), (1, 1));

    sink.add_documents(first).unwrap();
    sink.commit().unwrap();
    let position = || {
        IndexStore::open_existing(dir.path())
            .unwrap()
            .committed_checkpoints()
            .unwrap()
            .position("files", "/logs/p/0.log")
    };
    assert_eq!(position(), Some(10));
    assert_eq!(first_acks.try_recv(), Ok(BatchStatus::Delivered));
    assert!(second_acks.try_recv().is_err(), "made, but not added yet");
    let searcher = store.searcher();
    assert_eq!(bodies(&searcher.search(&request("*")).unwrap()), ["first"]);

    sink.add_documents(second).unwrap();
    sink.commit().unwrap();
    assert_eq!(position(), Some(20));
    assert_eq!(second_acks.try_recv(), Ok(BatchStatus::Delivered));
    assert_eq!(
        bodies(&store.searcher().search(&request("*")).unwrap()),
        ["second", "first"]
    );
}

#[test]
fn offline_search_without_an_index_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let err = IndexStore::open_existing(&dir.path().join("index"))
        .err()
        .unwrap();
    assert!(matches!(err, IndexError::NoIndex(_)));
    assert!(err.to_string().contains("infersight run"));
}

#[test]
fn a_redelivered_record_replaces_the_committed_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    sink.add(Batch::new(vec![
        record(1, "p", 1, "first line"),
        record(2, "p", 2, "kept"),
    ]))
    .unwrap();
    sink.commit().unwrap();
    // A restart re-reads from a checkpoint before record 1; the source flags it, and its
    // group has grown meanwhile.
    let again = record(1, "p", 1, "first line\n  and its continuation");
    sink.add(redelivered(vec![again])).unwrap();
    sink.commit().unwrap();
    let all = store.searcher().search(&request("*")).unwrap();
    assert_eq!(all.total, 2, "{:?}", bodies(&all));
    assert_eq!(bodies(&all), ["kept", "first line\n  and its continuation"]);
}

#[test]
fn copies_of_one_record_from_several_node_agents_are_kept_once_in_or_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    let event = record(7, "vllm-0", 5, "Back-off restarting failed container");
    let other = record(8, "vllm-0", 6, "Pulled image");
    // Two agents' copies in one batch, a third copy in a later batch before the commit,
    // and a fourth after it.
    sink.add(Batch {
        redelivered: vec![event.id, event.id, other.id],
        ..Batch::new(vec![event.clone(), other.clone(), event.clone()])
    })
    .unwrap();
    sink.add(redelivered(vec![event.clone()])).unwrap();
    sink.commit().unwrap();
    sink.add(redelivered(vec![event.clone()])).unwrap();
    sink.commit().unwrap();
    let all = store.searcher().search(&request("*")).unwrap();
    assert_eq!(
        bodies(&all),
        ["Pulled image", "Back-off restarting failed container"]
    );
}

#[test]
fn histograms_and_percentiles_per_group_come_from_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    let mut records = Vec::new();
    for (n, (secs, model, e2e)) in [
        (0, "llama3", 100.0),
        (30, "llama3", 200.0),
        (70, "llama3", 300.0),
        (130, "qwen", 1000.0),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = record(n as u64, "vllm-0", secs, "request finished");
        r.kind = RecordKind::Request;
        r.attributes.insert(names::GEN_AI_REQUEST_MODEL, model);
        r.attributes.insert_f64(names::LLM_E2E_MS, e2e);
        records.push(r);
    }
    records.push(record(9, "vllm-0", 200, "no timing here"));
    sink.add(Batch::new(records)).unwrap();
    sink.commit().unwrap();
    let searcher = store.searcher();

    let minute = std::time::Duration::from_secs(60);
    let buckets = searcher.histogram(&request("*"), minute).unwrap();
    let mut want: std::collections::BTreeMap<i64, u64> = Default::default();
    for secs in [0, 30, 70, 130, 200] {
        let ts = record(0, "x", secs, "").timestamp.unix_nanos();
        *want.entry(ts - ts.rem_euclid(60_000_000_000)).or_default() += 1;
    }
    let got: Vec<(i64, u64)> = buckets
        .iter()
        .map(|b| (b.start.unix_nanos(), b.count))
        .collect();
    assert_eq!(got, want.into_iter().collect::<Vec<_>>());
    let mut window = request("*");
    window.from = Some(Timestamp::from_unix_nanos(0));
    window.to = Some(Timestamp::now());
    assert!(
        searcher
            .histogram(&window, std::time::Duration::from_millis(1))
            .is_err(),
        "too many buckets"
    );

    let stats = searcher
        .field_stats(
            &request("*"),
            names::LLM_E2E_MS,
            Some(names::GEN_AI_REQUEST_MODEL),
            &[50.0, 95.0],
        )
        .unwrap();
    assert_eq!(
        stats.len(),
        3,
        "llama3, qwen, and the record without a model"
    );
    let unknown = stats
        .iter()
        .find(|s| s.group.as_deref() == Some(crate::MISSING_GROUP))
        .unwrap();
    assert_eq!((unknown.count, unknown.avg), (1, None));
    let llama = stats
        .iter()
        .find(|s| s.group.as_deref() == Some("llama3"))
        .unwrap();
    assert_eq!(llama.count, 3);
    assert_eq!(llama.avg, Some(200.0));
    assert_eq!(llama.sum, 600.0);
    let p50 = llama.percentiles[0];
    assert_eq!(p50.0, 50.0);
    assert!((p50.1 - 200.0).abs() <= 2.0, "{p50:?}");
    let all = searcher
        .field_stats(&request("*"), names::LLM_E2E_MS, None, &[50.0])
        .unwrap();
    assert_eq!(all[0].count, 5);
    assert_eq!(all[0].avg, Some(400.0));
    // No percents: the same count, sum and average, and no sketch.
    let plain = searcher
        .field_stats(&request("*"), names::LLM_E2E_MS, None, &[])
        .unwrap();
    assert_eq!(
        (plain[0].count, plain[0].avg, plain[0].sum),
        (5, Some(400.0), 1600.0)
    );
    assert!(plain[0].percentiles.is_empty());
    assert!(
        searcher
            .field_stats(&request("*"), "body", None, &[50.0])
            .is_err()
    );
}

#[test]
fn field_stats_of_two_indexes_merged_equal_those_of_one_index_holding_both() {
    let requests: Vec<Record> = (0..400u64)
        .map(|n| {
            let mut r = record(n, &format!("vllm-{}", n % 3), n as i64, "request finished");
            r.kind = RecordKind::Request;
            let model = if n % 4 == 0 { "qwen" } else { "llama3" };
            r.attributes.insert(names::GEN_AI_REQUEST_MODEL, model);
            r.attributes
                .insert_f64(names::LLM_E2E_MS, 50.0 + (n * n % 997) as f64);
            r.attributes
                .insert_f64(names::LLM_GENERATED_TOKENS, n as f64);
            r
        })
        .collect();
    let index_of = |records: &[Record]| {
        let dir = tempfile::tempdir().unwrap();
        let store = IndexStore::open_or_create(dir.path()).unwrap();
        let mut sink = store.sink(SinkOptions::default()).unwrap();
        sink.add(Batch::new(records.to_vec())).unwrap();
        sink.commit().unwrap();
        (dir, store.searcher())
    };
    let (_d1, whole) = index_of(&requests);
    let (_d2, first) = index_of(&requests[..150]);
    let (_d3, second) = index_of(&requests[150..]);
    let question = StatsQuestion {
        field: names::LLM_E2E_MS.into(),
        group_by: Some(names::GEN_AI_REQUEST_MODEL.into()),
        percents: vec![50.0, 95.0, 99.0],
        sums: vec![names::LLM_GENERATED_TOKENS.into()],
    };
    let want = whole
        .field_stats_partial(&request("*"), &question)
        .unwrap()
        .finish()
        .unwrap();
    let mut merged = first.field_stats_partial(&request("*"), &question).unwrap();
    // The peer's half travels as bytes, as it does between aggregators.
    let bytes = second
        .field_stats_partial(&request("*"), &question)
        .unwrap()
        .to_bytes()
        .unwrap();
    merged
        .merge(crate::FieldStatsPartial::from_bytes(&bytes).unwrap())
        .unwrap();
    let got = merged.finish().unwrap();
    assert_eq!(got, want);
    assert_eq!(got.iter().map(|g| g.count).sum::<u64>(), 400);
    // The sums asked with it: of every group, in its order.
    assert_eq!(
        got.iter().map(|g| g.sums[0]).sum::<f64>(),
        399.0 * 400.0 / 2.0
    );
    let qwen = got
        .iter()
        .find(|g| g.group.as_deref() == Some("qwen"))
        .unwrap();
    assert_eq!(qwen.sums, [(0..400).step_by(4).sum::<u64>() as f64]);

    let other = StatsQuestion {
        percents: vec![50.0],
        ..question.clone()
    };
    let mut mismatched = first.field_stats_partial(&request("*"), &question).unwrap();
    let err = mismatched
        .merge(first.field_stats_partial(&request("*"), &other).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("different questions"), "{err}");
    assert!(crate::FieldStatsPartial::from_bytes(b"not cbor").is_err());

    // A peer of the version before `stats` sends no layout: its half is refused by name
    // (the API then marks the answer partial), not mixed in under other names.
    let ciborium::Value::Map(mut fields) = ciborium::from_reader(bytes.as_slice()).unwrap() else {
        panic!("a partial is a map");
    };
    let before = fields.len();
    fields.retain(|(k, _)| k.as_text() != Some("layout"));
    assert_eq!(fields.len(), before - 1);
    let mut old = Vec::new();
    ciborium::into_writer(&ciborium::Value::Map(fields), &mut old).unwrap();
    let err = first
        .field_stats_partial(&request("*"), &question)
        .unwrap()
        .merge(crate::FieldStatsPartial::from_bytes(&old).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("another version"), "{err}");
}

#[test]
fn grouping_by_a_resource_field_joins_the_containers_that_share_its_value() {
    // vllm-0 has two containers (two resources), vllm-1 one; a Kubernetes event has no pod.
    let in_container = |n: u64, pod: &str, container: &str, e2e: f64| {
        let mut r = record(n, pod, n as i64, "request finished");
        let mut resource = (*r.resource).clone();
        resource.insert(names::K8S_CONTAINER_NAME, container);
        r.resource = Arc::new(resource);
        r.attributes.insert_f64(names::LLM_E2E_MS, e2e);
        r
    };
    let mut records: Vec<Record> = (0..30u64)
        .map(|n| match n % 3 {
            0 => {
                // A sparse column: on vllm-0's engine only.
                let mut r = in_container(n, "vllm-0", "engine", 100.0);
                r.attributes.insert_f64(names::LLM_GENERATED_TOKENS, 10.0);
                r
            }
            1 => in_container(n, "vllm-0", "router", 300.0),
            _ => in_container(n, "vllm-1", "engine", 1000.0),
        })
        .collect();
    let mut event = record(99, "x", 99, "Back-off restarting failed container");
    event.resource = Arc::new(Attributes::new());
    records.push(event);
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    // Two commits: each group's figures merge across segments too.
    let later = records.split_off(12);
    sink.add(Batch::new(records)).unwrap();
    sink.commit().unwrap();
    sink.add(Batch::new(later)).unwrap();
    sink.commit().unwrap();
    let searcher = store.searcher();
    let by = |field: &str| {
        searcher
            .field_stats(&request("*"), names::LLM_E2E_MS, Some(field), &[50.0, 99.0])
            .unwrap()
            .into_iter()
            .map(|g| (g.group.unwrap(), g.count, g.avg, g.percentiles))
            .collect::<Vec<_>>()
    };
    let pods = by(names::K8S_POD_NAME);
    let names_counts: Vec<(&str, u64)> = pods.iter().map(|g| (g.0.as_str(), g.1)).collect();
    assert_eq!(
        names_counts,
        [("vllm-0", 20), ("vllm-1", 10), (crate::MISSING_GROUP, 1)],
        "largest first, the event in the group of no pod"
    );
    // vllm-0's figures are those of both its containers' values together.
    assert_eq!(pods[0].2, Some(200.0));
    let p99 = pods[0].3[1].1;
    assert!((p99 - 300.0).abs() <= 3.0, "{:?}", pods[0].3);
    assert_eq!(pods[2].2, None, "the event has no latency");
    let containers = by(names::K8S_CONTAINER_NAME);
    let engine = containers.iter().find(|g| g.0 == "engine").unwrap();
    assert_eq!(
        (engine.1, engine.2),
        (20, Some(550.0)),
        "engine spans both pods"
    );
    let namespaces = by(names::K8S_NAMESPACE_NAME);
    assert_eq!(namespaces[0].0, "llm");
    assert_eq!(namespaces[0].1, 30);

    // Between aggregators, the halves merge before they are regrouped; sums asked with
    // them are regrouped alike.
    let question = StatsQuestion::new(names::LLM_E2E_MS, Some(names::K8S_POD_NAME), &[50.0])
        .with_sums(&[names::LLM_GENERATED_TOKENS, names::LLM_RUNNING]);
    let mut half = searcher
        .field_stats_partial(&request("*"), &question)
        .unwrap();
    half.merge(
        crate::FieldStatsPartial::from_bytes(
            &searcher
                .field_stats_partial(&request("*"), &question)
                .unwrap()
                .to_bytes()
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let doubled: Vec<(String, u64, Vec<f64>)> = half
        .finish()
        .unwrap()
        .into_iter()
        .map(|g| (g.group.unwrap(), g.count, g.sums))
        .collect();
    assert_eq!(doubled[0], ("vllm-0".to_string(), 40, vec![200.0, 0.0]));
    assert_eq!(doubled[1], ("vllm-1".to_string(), 20, vec![0.0, 0.0]));
}

#[test]
fn pages_follow_each_other_without_gaps_or_repeats_across_equal_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    // 25 records over 6 distinct seconds: runs of equal timestamps span page boundaries.
    let records: Vec<Record> = (0..25)
        .map(|n| record(n, "vllm-0", (n / 5) as i64, &format!("line {n}")))
        .collect();
    sink.add(Batch::new(records)).unwrap();
    sink.commit().unwrap();
    let searcher = store.searcher();
    let mut seen = Vec::new();
    let mut page = request("line");
    page.limit = 7;
    loop {
        let r = searcher.search(&page).unwrap();
        assert_eq!(r.total, 25, "the total is the query's, not the page's");
        seen.extend(r.hits.iter().map(|h| (h.timestamp, h.body.clone())));
        match r.next {
            Some(next) => {
                let text = next.to_string();
                page.after = Some(text.parse().unwrap());
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let distinct: std::collections::BTreeSet<_> = seen.iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(distinct.len(), 25, "no repeats");
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");
    assert!("12-x".parse::<SearchCursor>().is_err());
}

#[test]
fn a_request_trace_gathers_its_lines_from_every_container() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    let id = "chatcmpl-a269fdcb7c6ce890";
    let mut received = record(1, "vllm-0", 1, &format!("Received request {id}: params"));
    received
        .attributes
        .insert(names::LLM_REQUEST_ID, id.to_string());
    let mut finished = record(2, "vllm-0", 3, "Finished request (engine id)");
    finished
        .attributes
        .insert(names::LLM_REQUEST_ID, format!("{id}-a8a65d16"));
    let router = record(3, "router-0", 2, &format!("proxying {id} to vllm-0"));
    let other = record(4, "vllm-0", 2, "Received request chatcmpl-a269fdcb7c6ce891");
    // The sidecar's line of the call, by the x-request-id vLLM made its id of.
    let sidecar = |n: u64, header: &str| {
        let mut r = record(n, "vllm-0", 4, "\"POST /v1/chat/completions HTTP/1.1\" 200");
        r.attributes
            .insert(names::LLM_REQUEST_ID, header.to_string());
        r
    };
    let (proxied, not_it) = (
        sidecar(5, "a269fdcb7c6ce890"),
        sidecar(6, "a269fdcb7c6ce891"),
    );
    sink.add(Batch::new(vec![
        finished, other, router, received, proxied, not_it,
    ]))
    .unwrap();
    sink.commit().unwrap();
    let trace = store
        .searcher()
        .request_trace(id, &SearchRequest::default())
        .unwrap();
    let pods: Vec<&str> = trace
        .iter()
        .map(|r| r.resource_str(names::K8S_POD_NAME).unwrap())
        .collect();
    assert_eq!(
        pods,
        ["vllm-0", "router-0", "vllm-0", "vllm-0"],
        "oldest first"
    );
    assert_eq!(
        trace[3].attributes.get_str(names::LLM_REQUEST_ID),
        Some("a269fdcb7c6ce890")
    );
    assert!(
        store
            .searcher()
            .request_trace(" ", &SearchRequest::default())
            .is_err()
    );
}

#[test]
fn a_numbered_request_is_traced_by_its_id_field_within_its_pod_and_time() {
    // llama.cpp numbers its tasks from 0 in each run: task 73 of two pods, and of one pod's
    // run an hour later, are three requests; "73 tokens" in a line is no mention of any.
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    let task = |n, pod: &str, secs, body: &str| {
        let mut r = record(n, pod, secs, body);
        r.attributes.insert(names::LLM_REQUEST_ID, "73");
        r
    };
    sink.add(Batch::new(vec![
        task(
            1,
            "llamacpp-0",
            100,
            "slot launch_slot_: id  0 | task 73 | processing task",
        ),
        record(
            2,
            "llamacpp-0",
            101,
            "slot print_timing: id  0 | task 70 | eval time = 73.17 ms /    73 tokens",
        ),
        record(
            3,
            "vllm-0",
            102,
            "INFO:     10.42.0.73:32436 - \"POST /v1/chat/completions HTTP/1.1\" 200 OK",
        ),
        task(
            4,
            "llamacpp-0",
            110,
            "slot      release: id  0 | task 73 | stop processing",
        ),
        task(
            5,
            "llamacpp-1",
            105,
            "slot launch_slot_: id  0 | task 73 | processing task",
        ),
        task(
            6,
            "llamacpp-0",
            3700,
            "slot launch_slot_: id  0 | task 73 | processing task",
        ),
    ]))
    .unwrap();
    sink.commit().unwrap();
    let searcher = store.searcher();
    let positions = |within: &SearchRequest| -> Vec<u64> {
        searcher
            .request_trace("73", within)
            .unwrap()
            .iter()
            .map(|r| r.id.position())
            .collect()
    };
    assert_eq!(
        positions(&SearchRequest::default()),
        [1, 5, 4, 6],
        "no line that says 73"
    );
    let at = |secs: i64| {
        Some(Timestamp::from_unix_nanos(
            1_795_000_000_000_000_000 + secs * 1_000_000_000,
        ))
    };
    let within = SearchRequest {
        pod: Some("llamacpp-0".into()),
        from: at(0),
        to: at(1900),
        ..SearchRequest::default()
    };
    assert_eq!(positions(&within), [1, 4]);
    let asked_a_query = SearchRequest {
        query: "oops".into(),
        ..within
    };
    assert!(searcher.request_trace("73", &asked_a_query).is_err());
}

#[test]
fn retention_deletes_records_older_than_it_at_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store
        .sink(SinkOptions {
            retention: Some(std::time::Duration::from_secs(3600)),
            ..SinkOptions::default()
        })
        .unwrap();
    let now = Timestamp::now().unix_nanos();
    let at = |n: u64, ago_secs: i64, body: &str| {
        let mut r = record(n, "vllm-0", 0, body);
        r.timestamp = Timestamp::from_unix_nanos(now - ago_secs * 1_000_000_000);
        r
    };
    sink.add(Batch::new(vec![
        at(1, 2 * 3600, "two hours old"),
        at(2, 60, "a minute old"),
    ]))
    .unwrap();
    sink.commit().unwrap();
    assert_eq!(
        bodies(&store.searcher().search(&request("*")).unwrap()),
        ["a minute old"]
    );
}

#[test]
fn a_hit_is_the_record_that_was_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    let mut r = record(u64::MAX - 7, "vllm-0", 12, "Engine 000: Running: 3 reqs");
    r.kind = RecordKind::EngineStats;
    r.severity = Some(model::Severity::Warn);
    r.observed_timestamp = Timestamp::from_unix_nanos(r.timestamp.unix_nanos() + 123);
    r.attributes.insert(names::LLM_RUNNING, 3i64);
    r.attributes.insert_f64(names::LLM_KV_CACHE_PCT, 57.9);
    r.attributes.insert(names::LLM_REQUEST_ID, "chatcmpl-1");
    sink.add(Batch::new(vec![r.clone()])).unwrap();
    sink.commit().unwrap();
    let hits = store.searcher().search(&request("*")).unwrap().hits;
    assert_eq!(hits, [r.clone()]);
    assert_eq!(
        store
            .searcher()
            .request_trace("chatcmpl-1", &SearchRequest::default())
            .unwrap(),
        [r]
    );
}

#[test]
fn the_newest_hits_are_found_however_far_apart_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    // Hours apart, so that the first windows (15 min, 2 h, 24 h) hold too few of them.
    let hours = [0i64, 1, 3, 30, 50];
    let records: Vec<Record> = hours
        .iter()
        .enumerate()
        .map(|(n, h)| record(n as u64, "vllm-0", -h * 3600, &format!("kv line {h}h")))
        .collect();
    sink.add(Batch::new(records)).unwrap();
    sink.commit().unwrap();
    let mut r = request("kv");
    r.limit = 4;
    let got = store.searcher().search(&r).unwrap();
    assert_eq!(got.total, 5);
    assert_eq!(
        bodies(&got),
        ["kv line 0h", "kv line 1h", "kv line 3h", "kv line 30h"]
    );
    r.after = got.next;
    assert_eq!(
        bodies(&store.searcher().search(&r).unwrap()),
        ["kv line 50h"]
    );
}

#[test]
fn time_ranges_are_exact_at_minute_edges() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    let minute = 60_000_000_000i64;
    let base = 1_795_000_020 * 1_000_000_000 / minute * minute;
    let offsets: Vec<i64> = vec![
        -1,
        0,
        1,
        minute / 2,
        minute - 1,
        minute,
        2 * minute + 7,
        3 * minute - 1,
        3 * minute,
        5 * minute + 1,
    ];
    let records: Vec<Record> = offsets
        .iter()
        .enumerate()
        .map(|(i, off)| {
            let mut r = record(i as u64, "p", 0, &format!("at {off}"));
            r.timestamp = Timestamp::from_unix_nanos(base + off);
            r
        })
        .collect();
    sink.add(Batch::new(records)).unwrap();
    sink.commit().unwrap();
    let searcher = store.searcher();
    let bounds: Vec<Option<i64>> = std::iter::once(None)
        .chain(
            [
                -1,
                0,
                1,
                minute - 1,
                minute,
                2 * minute + 7,
                3 * minute,
                9 * minute,
            ]
            .map(Some),
        )
        .collect();
    for from in &bounds {
        for to in &bounds {
            let want = offsets
                .iter()
                .filter(|o| from.is_none_or(|f| **o >= f) && to.is_none_or(|t| **o <= t))
                .count();
            let got = searcher
                .search(&SearchRequest {
                    from: from.map(|f| Timestamp::from_unix_nanos(base + f)),
                    to: to.map(|t| Timestamp::from_unix_nanos(base + t)),
                    ..request("*")
                })
                .unwrap()
                .total;
            assert_eq!(got, want, "from {from:?} to {to:?}");
        }
    }
}

#[test]
fn time_ranges_are_exact_across_time_blocks_segments_and_late_records() {
    // Thousands of records in time order over two segments, one in twenty arriving late
    // (written among records up to 10 minutes newer): ranges must count exactly what a scan
    // of the timestamps counts, whether a block lies wholly inside, across an end, or out.
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    let mut stamps = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for part in 0..2u64 {
        let records: Vec<Record> = (0..3000u64)
            .map(|i| {
                let n = part * 3000 + i;
                let late = if next() % 20 == 0 { next() % 600 } else { 0 };
                let secs = n as i64 - late as i64;
                stamps.push(secs);
                record(n, "p", secs, "line")
            })
            .collect();
        sink.add(Batch::new(records)).unwrap();
        sink.commit().unwrap();
    }
    let searcher = store.searcher();
    let at =
        |secs: i64| Timestamp::from_unix_nanos(1_795_000_000_000_000_000 + secs * 1_000_000_000);
    for _ in 0..200 {
        let a = (next() % 6200) as i64 - 100;
        let b = a + (next() % 3000) as i64;
        let (from, to) = match next() % 4 {
            0 => (None, Some(b)),
            1 => (Some(a), None),
            _ => (Some(a), Some(b)),
        };
        let want = stamps
            .iter()
            .filter(|s| from.is_none_or(|f| **s >= f) && to.is_none_or(|t| **s <= t))
            .count();
        let got = searcher
            .search(&SearchRequest {
                from: from.map(at),
                to: to.map(at),
                ..request("*")
            })
            .unwrap();
        assert_eq!(got.total, want, "from {from:?} to {to:?}");
        let newest = stamps
            .iter()
            .filter(|s| from.is_none_or(|f| **s >= f) && to.is_none_or(|t| **s <= t))
            .max();
        assert_eq!(
            got.hits.first().map(|h| h.timestamp),
            newest.map(|s| at(*s)),
            "from {from:?} to {to:?}"
        );
    }
}

#[test]
fn a_record_redelivered_after_a_restart_replaces_the_copy_the_last_run_committed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = IndexStore::open_or_create(dir.path()).unwrap();
        let mut sink = store.sink(SinkOptions::default()).unwrap();
        sink.add(Batch::new(vec![
            record(1, "p", 1, "once"),
            record(2, "p", 2, "kept"),
        ]))
        .unwrap();
        sink.close().unwrap();
    }
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    let again = record(1, "p", 1, "once");
    sink.add(redelivered(vec![again])).unwrap();
    sink.close().unwrap();
    let all = store.searcher().search(&request("*")).unwrap();
    assert_eq!(bodies(&all), ["kept", "once"]);
}

#[test]
fn percentiles_of_few_values_are_nearest_rank_so_the_slow_one_shows() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    // 20 requests of llama3 (100 ms … 2000 ms) and 3 of qwen, one of them slow.
    let mut records = Vec::new();
    let timed = [(
        "llama3",
        (1..=20).map(|i| i as f64 * 100.0).collect::<Vec<_>>(),
    )]
    .into_iter()
    .chain([("qwen", vec![1500.0, 2500.0, 35_684.0])]);
    for (model, values) in timed {
        for e2e in values {
            let n = records.len() as u64;
            let mut r = record(n, "vllm-0", n as i64, "request finished");
            r.kind = RecordKind::Request;
            r.attributes.insert(names::GEN_AI_REQUEST_MODEL, model);
            r.attributes.insert_f64(names::LLM_E2E_MS, e2e);
            records.push(r);
        }
    }
    sink.add(Batch::new(records)).unwrap();
    sink.commit().unwrap();
    let stats = store
        .searcher()
        .field_stats(
            &request("*"),
            names::LLM_E2E_MS,
            Some(names::GEN_AI_REQUEST_MODEL),
            &[50.0, 95.0, 99.0],
        )
        .unwrap();
    let of = |model: &str| -> Vec<f64> {
        let group = stats
            .iter()
            .find(|g| g.group.as_deref() == Some(model))
            .unwrap();
        group.percentiles.iter().map(|(_, v)| *v).collect()
    };
    let near = |got: Vec<f64>, want: [f64; 3]| {
        assert!(
            got.iter().zip(want).all(|(g, w)| (g - w).abs() <= w * 0.01),
            "{got:?}, not {want:?}"
        );
    };
    // Ranks ⌈p·n⌉: the 10th, 19th and 20th of 20; the 2nd, 3rd and 3rd of 3.
    near(of("llama3"), [1000.0, 1900.0, 2000.0]);
    near(of("qwen"), [2500.0, 35_684.0, 35_684.0]);
    let keys: Vec<f64> = stats[0].percentiles.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        keys,
        [50.0, 95.0, 99.0],
        "the percents asked, whatever was asked of tantivy"
    );
}

#[test]
fn prefixes_work_on_exact_fields_and_keep_the_querys_structure() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    let mut with_model = record(2, "vllm-llama3-1", 20, "other");
    with_model.attributes.insert(
        names::GEN_AI_REQUEST_MODEL,
        "meta-llama/Llama-3.1-8B-Instruct",
    );
    sink.add(Batch::new(vec![
        record(
            1,
            "vllm-llama3-0",
            10,
            "Received request chatcmpl-a269fdcb7c6ce890",
        ),
        with_model,
        record(3, "tgi-0", 20, "third"),
    ]))
    .unwrap();
    sink.commit().unwrap();
    let searcher = store.searcher();
    for (query, expected) in [
        ("k8s.pod.name:vllm-llama3*", 2),
        ("k8s.pod.name:vllm* OR third", 3),
        ("-k8s.pod.name:vllm*", 1),
        ("-k8s.pod.name:tgi-0 -chatcmpl", 1),
        ("(k8s.pod.name:vllm* AND other)", 1),
        ("chatcmpl-a26* OR third", 2),
        ("gen_ai.request.model:meta-llama/*", 1),
        // A regex's metacharacters in a prefix are matched as themselves.
        ("k8s.pod.name:vllm.llama*", 0),
        // An exact field keeps its case; the message is searched in lowercase.
        ("k8s.pod.name:VLLM*", 0),
        ("CHATCMPL*", 1),
    ] {
        assert_eq!(
            searcher
                .search(&request(query))
                .map(|r| r.total)
                .map_err(|e| e.to_string()),
            Ok(expected),
            "{query}"
        );
    }
    // The pod filter (the UI's pod box) takes a prefix too.
    let mut by_pod = request("*");
    by_pod.pod = Some("vllm-llama3-*".into());
    assert_eq!(searcher.search(&by_pod).map(|r| r.total).ok(), Some(2));
    by_pod.pod = Some("vllm-llama3-1".into());
    assert_eq!(searcher.search(&by_pod).map(|r| r.total).ok(), Some(1));
    by_pod.pod = Some("v*".into());
    assert!(searcher.search(&by_pod).is_err(), "too short a prefix");
    for (query, says) in [
        ("k8s.pod.name:vl*", "at least 3 characters"),
        ("k8s.pod.name:/vllm.*/", "goes in quotes"),
        (
            "attributes.url.path:/v1/chat",
            "goes in quotes (attributes.url.path:\"/v1/chat\")",
        ),
        ("attributes.log.lines:1*", "not on `attributes.log.lines`"),
        ("colour:*", "Field does not exist: 'colour'"),
        ("pod:vllm-0", "did you mean `k8s.pod.name`?"),
        ("model:llama3", "`gen_ai.request.model`"),
        ("status:503", "`http.response.status_code`"),
        (
            "colour:red",
            "an attribute of that name is `attributes.colour`",
        ),
        (&format!("k8s.pod.name:{}*", "a".repeat(201)), "at most 200"),
        // Parsed by tantivy, refused only when run: the user's mistake all the same.
        (
            "attributes.log.lines:>5",
            "are matched exactly; ranges work",
        ),
        ("llm.e2e_ms:IN [1 2]", "is not indexed"),
        ("llm.e2e_ms:[a TO b]", "Expected a number"),
        ("llm.e2e_ms:>abc", "Expected a number"),
    ] {
        let error = searcher.search(&request(query)).map(|r| r.total);
        assert!(
            matches!(&error, Err(IndexError::Query(m)) if m.contains(says)),
            "{query}: {error:?}"
        );
    }
}

#[test]
fn every_form_of_query_on_a_resource_field_is_answered_from_the_resource_column() {
    let mut on_node = record(4, "sglang-0", 40, "fourth");
    Arc::make_mut(&mut on_node.resource).insert(names::K8S_NODE_NAME, "gpu-node-7");
    let mut other_namespace = record(5, "tgi-1", 50, "fifth out of memory");
    Arc::make_mut(&mut other_namespace.resource).insert(names::K8S_NAMESPACE_NAME, "batch");
    let (_dir, store) = committed(vec![
        record(1, "vllm-0", 10, "first out of memory"),
        record(2, "vllm-1", 20, "second"),
        record(3, "tgi-0", 30, "third"),
        on_node,
        other_namespace,
    ]);
    let searcher = store.searcher();
    for (query, expected) in [
        ("k8s.pod.name:vllm-0", vec!["first out of memory"]),
        ("k8s.pod.name:\"tgi-0\"", vec!["third"]),
        ("k8s.pod.name:IN [vllm-1 tgi-0]", vec!["third", "second"]),
        (
            "k8s.pod.name:[tgi-0 TO vllm-0]",
            vec!["fifth out of memory", "third", "first out of memory"],
        ),
        (
            "k8s.pod.name:{tgi-0 TO vllm-0}",
            vec!["fifth out of memory"],
        ),
        ("k8s.pod.name:>=vllm-1", vec!["second"]),
        ("k8s.node.name:*", vec!["fourth"]),
        ("k8s.node.name:gpu-node-7", vec!["fourth"]),
        ("k8s.namespace.name:batch", vec!["fifth out of memory"]),
        (
            "memory AND -k8s.namespace.name:batch",
            vec!["first out of memory"],
        ),
        (
            "memory AND NOT k8s.pod.name:vllm*",
            vec!["fifth out of memory"],
        ),
        ("-k8s.namespace.name:llm", vec!["fifth out of memory"]),
        (
            "(k8s.pod.name:vllm-0 OR k8s.pod.name:tgi-0) AND (third OR first)",
            vec!["third", "first out of memory"],
        ),
        ("k8s.pod.name:vllm-1^3 OR fourth", vec!["fourth", "second"]),
        ("k8s.container.name:server AND second", vec!["second"]),
        ("k8s.pod.name:nothing-here", vec![]),
        (
            "k8s.container.name:server",
            vec![
                "fifth out of memory",
                "fourth",
                "third",
                "second",
                "first out of memory",
            ],
        ),
    ] {
        let found = searcher.search(&request(query)).map_err(|e| e.to_string());
        assert_eq!(found.as_ref().map(bodies), Ok(expected.clone()), "{query}");
        assert_eq!(found.map(|r| r.total), Ok(expected.len()), "{query}: total");
    }
    let mut by_namespace = request("memory");
    by_namespace.namespace = Some("bat*".into());
    assert_eq!(
        searcher
            .search(&by_namespace)
            .map(|r| bodies(&r).join("|"))
            .ok(),
        Some("fifth out of memory".to_string())
    );
    by_namespace.namespace = None;
    by_namespace.container = Some("server".into());
    assert_eq!(
        searcher.search(&by_namespace).map(|r| r.total).ok(),
        Some(2)
    );
}

#[test]
fn and_not_excludes_from_what_the_rest_matches() {
    let (_dir, store) = committed(vec![
        record(1, "vllm-0", 10, "first out of memory"),
        record(2, "tgi-0", 20, "second out of memory"),
        record(3, "tgi-0", 30, "third"),
    ]);
    let searcher = store.searcher();
    // tantivy's grammar reads `a AND NOT b` as `+a +(-b)`; the exclusion alone once matched
    // nothing, and with it the whole query.
    for (query, expected) in [
        ("memory AND NOT first", vec!["second out of memory"]),
        (
            "memory AND NOT k8s.pod.name:vllm*",
            vec!["second out of memory"],
        ),
        ("memory AND (NOT first)", vec!["second out of memory"]),
        ("third OR NOT memory", vec!["third"]),
        ("memory -first", vec!["second out of memory"]),
        ("NOT memory", vec!["third"]),
    ] {
        assert_eq!(
            searcher
                .search(&request(query))
                .map(|r| bodies(&r).join("|"))
                .map_err(|e| e.to_string()),
            Ok(expected.join("|")),
            "{query}"
        );
    }
}

#[test]
fn a_resource_filter_counts_and_intersects_across_the_columns_blocks() {
    // Pods interleaved unevenly over 3,000 records: three blocks of the resource column,
    // runs that cross their edges, and words on only some records of each pod.
    let pod = |i: u64| match i % 7 {
        0 | 3 => "vllm-0",
        1 | 5 | 6 => "vllm-1",
        _ => "tgi-0",
    };
    let body = |i: u64| match i % 5 {
        0 => format!("line {i} preempted"),
        _ => format!("line {i}"),
    };
    let records = (0..3000)
        .map(|i| record(i, pod(i), i as i64, &body(i)))
        .collect();
    let (_dir, store) = committed(records);
    let searcher = store.searcher();
    let checks: [(&str, &dyn Fn(u64) -> bool); 5] = [
        ("k8s.pod.name:vllm-1", &|i| pod(i) == "vllm-1"),
        ("k8s.pod.name:vllm*", &|i| pod(i) != "tgi-0"),
        ("-k8s.pod.name:vllm-0", &|i| pod(i) != "vllm-0"),
        ("preempted AND k8s.pod.name:tgi-0", &|i| {
            i % 5 == 0 && pod(i) == "tgi-0"
        }),
        ("preempted AND NOT k8s.pod.name:vllm-1", &|i| {
            i % 5 == 0 && pod(i) != "vllm-1"
        }),
    ];
    for (query, keep) in checks {
        let found = searcher.search(&request(query)).unwrap();
        assert_eq!(
            found.total,
            (0..3000).filter(|i| keep(*i)).count(),
            "{query}"
        );
        // Newest first: the first hit is the last record that matches.
        let last = (0..3000).rev().find(|i| keep(*i)).unwrap();
        assert_eq!(found.hits[0].body, body(last), "{query}");
    }
}

#[test]
fn a_search_that_meets_a_commit_before_its_refresh_returns_what_it_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    // An hour of older lines, so that the newest hits are looked for in windows.
    sink.add(Batch::new(vec![
        record(1, "vllm-0", 0, "older line"),
        record(2, "vllm-0", 3600, "older line"),
    ]))
    .unwrap();
    sink.commit().unwrap();
    let searcher = store.searcher();
    let split = searcher.splits.overlapping(None, None).remove(0);
    let before = split.stats();
    sink.add(Batch::new(vec![record(
        3,
        "vllm-0",
        3700,
        "Starting server",
    )]))
    .unwrap();
    sink.commit().unwrap();
    // The moment between the reader's reload and the stats' refresh: the split's newest
    // time is still the older line's.
    split.stats_from_an_older_snapshot(before);
    let found = searcher.search(&request("Starting")).unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(bodies(&found), ["Starting server"]);
}
