//! A Kafka source with a dead-letter topic (issue 9): a message, or a line of a JSON-lines
//! message, that is not a record (a damaged binary message whole) goes to that topic as it
//! was read, keyed as it was, with
//! where it came from and why in its headers; the records beside it are indexed. A restart
//! resumes after what was handled, so no dead letter is published twice. Without the topic
//! on the brokers, each dead letter is counted as a failure and logged with its origin.

use collector::kafka::DEAD_LETTER_HEADERS;
use model::{AttrValue, Attributes, Record, RecordId, Timestamp, names};
use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tests::Running;
use tests::tansu::{Broker, ReadMessage};

const TOPIC: &str = "records";
const DEAD: &str = "records-dead-letters";
const KEY: &[u8] = b"pod-uid-7";

fn aggregator(broker: &Broker, data: &Path) -> Running {
    let args: Vec<OsString> = [
        "run",
        "--preset",
        "aggregator",
        "--listen",
        "127.0.0.1:0",
        "--kafka-brokers",
        &broker.addr,
        "--kafka-topic",
        TOPIC,
        "--kafka-dead-letter-topic",
        DEAD,
        "--data-dir",
    ]
    .into_iter()
    .map(OsString::from)
    .chain([data.as_os_str().to_owned()])
    .collect();
    Running::spawn(&args).0
}

/// A broker keeping its data under `dir`, with one-partition `topics`.
fn broker_with(dir: &Path, topics: &[&str]) -> Broker {
    let broker = Broker::start(&dir.join("broker"));
    for topic in topics {
        broker.create_topic(topic, 1);
    }
    broker
}

fn record(n: u64) -> Record {
    let resource: Attributes = [
        (names::K8S_NAMESPACE_NAME, AttrValue::from("dlq")),
        (names::K8S_POD_NAME, AttrValue::from("vllm-0")),
    ]
    .into_iter()
    .collect();
    let now = Timestamp::now();
    Record::log(
        RecordId::from_source(b"dead-letter-test", n),
        now,
        now,
        Arc::new(resource),
        format!("deadlettertest record {n}"),
    )
}

fn metric(running: &Running, name: &str) -> f64 {
    tests::metric_sum(&running.get_text("/metrics").1, name)
}

fn found(running: &Running) -> u64 {
    let (status, body) = running.get("/api/v1/search?q=deadlettertest&from=now-1h&limit=1");
    assert_eq!(status, 200, "{body}");
    body["total"].as_u64().unwrap_or(0)
}

/// How long a test waits for the aggregator to get somewhere.
const WAIT: Duration = Duration::from_secs(120);

/// Checks a dead letter's payload and headers.
fn assert_dead_letter(m: &ReadMessage, payload: &[u8], offset: u64, line: Option<&str>, why: &str) {
    let [topic_h, partition_h, offset_h, line_h, error_h] = DEAD_LETTER_HEADERS;
    assert_eq!(m.payload, payload, "{m:?}");
    assert_eq!(m.key.as_deref(), Some(KEY), "keyed as it was: {m:?}");
    assert_eq!(m.header(topic_h), Some(TOPIC), "{m:?}");
    assert_eq!(m.header(partition_h), Some("0"), "{m:?}");
    assert_eq!(
        m.header(offset_h),
        Some(offset.to_string().as_str()),
        "{m:?}"
    );
    assert_eq!(m.header(line_h), line, "{m:?}");
    let error = m.header(error_h).unwrap_or_default();
    assert!(error.starts_with(why), "{why}: {m:?}");
}

#[test]
fn what_is_not_a_record_goes_to_the_dead_letter_topic_once_and_the_records_beside_it_are_indexed() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let broker = broker_with(tmp.path(), &[TOPIC, DEAD]);

    let (one, two, three) = (record(1), record(2), record(3));
    let lines = format!(
        "{}\n{{\"not\":\"a record\"}}\n{}",
        one.to_json(),
        two.to_json()
    );
    // The third record in the binary form, and a binary message cut short.
    let binary = |r: &Record| {
        let mut m = model::BinaryMessage::new();
        m.push(r, usize::MAX);
        m.into_bytes()
    };
    let cut = binary(&record(4));
    let cut = &cut[..cut.len() - 1];
    broker.produce_keyed(
        TOPIC,
        Some(KEY),
        &[
            lines.as_bytes(),
            b"not json",
            &[0xff, 0xfe],
            &binary(&three),
            cut,
        ],
    );
    let data = tmp.path().join("data");
    let agg = aggregator(&broker, &data);
    agg.wait_until("three records and four dead letters", WAIT, || {
        found(&agg) == 3 && metric(&agg, "infersight_kafka_dead_letters_total") >= 4.0
    });
    assert_eq!(metric(&agg, "infersight_kafka_malformed_total"), 4.0);
    assert_eq!(metric(&agg, "infersight_kafka_dead_letters_total"), 4.0);
    assert_eq!(
        metric(&agg, "infersight_kafka_dead_letter_failures_total"),
        0.0
    );
    let dead = broker.read_partition(DEAD, 4, Duration::from_secs(30));
    assert_eq!(dead.len(), 4, "{dead:?}");
    assert_dead_letter(
        &dead[0],
        br#"{"not":"a record"}"#,
        0,
        Some("2"),
        "not a record",
    );
    assert_dead_letter(&dead[1], b"not json", 1, None, "not a record");
    assert_dead_letter(&dead[2], &[0xff, 0xfe], 2, None, "not UTF-8");
    assert_dead_letter(&dead[3], cut, 4, None, "not a record: record 1, byte ");

    // Started again on its data, it resumes after what it handled: the next dead letter
    // is the only new one (a replay would publish the first four again before it, in
    // the one partition, so the fifth read would be one of them).
    let (status, stderr) = agg.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}: {stderr}");
    let agg = aggregator(&broker, &data);
    broker.produce_keyed(TOPIC, Some(KEY), &[b"{\"id\":"]);
    agg.wait_until("the fifth dead letter", WAIT, || {
        metric(&agg, "infersight_kafka_dead_letters_total") >= 1.0
    });
    let dead = broker.read_partition(DEAD, 5, Duration::from_secs(30));
    assert_eq!(dead.len(), 5, "{dead:?}");
    assert_dead_letter(&dead[4], b"{\"id\":", 5, None, "not a record");
    assert_eq!(found(&agg), 3, "no record indexed twice");
}

#[test]
fn without_the_dead_letter_topic_each_dead_letter_is_counted_and_logged_and_the_records_go_on() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // The dead-letter topic is not created.
    let broker = broker_with(tmp.path(), &[TOPIC]);
    let (one, two) = (record(1), record(2));
    broker.produce_keyed(
        TOPIC,
        Some(KEY),
        &[
            one.to_json().as_bytes(),
            b"not json",
            two.to_json().as_bytes(),
        ],
    );
    let agg = aggregator(&broker, &tmp.path().join("data"));
    // The broker gives up on the dead letter after the producer's 30 s.
    agg.wait_until("the dead letter to fail", WAIT, || {
        metric(&agg, "infersight_kafka_dead_letter_failures_total") >= 1.0
    });
    agg.wait_until("both records", WAIT, || found(&agg) == 2);
    assert_eq!(metric(&agg, "infersight_kafka_malformed_total"), 1.0);
    assert_eq!(metric(&agg, "infersight_kafka_dead_letters_total"), 0.0);
    let log = agg.stderr();
    assert!(
        log.contains("the brokers do not have the dead-letter topic"),
        "said at the start:\n{log}"
    );
    assert!(
        log.contains("infersight-source-offset=1"),
        "the lost dead letter's origin is logged:\n{log}"
    );
}

#[test]
fn a_dead_letter_the_producer_refuses_is_counted_and_logged_and_the_records_go_on() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let broker = broker_with(tmp.path(), &[TOPIC, DEAD]);
    let (one, two) = (record(1), record(2));
    // Over the dead-letter producer's 1 MB limit (librdkafka's `message.max.bytes`), which
    // refuses it before it reaches the broker.
    let huge = vec![b'x'; 1_500_000];
    broker.produce_keyed(
        TOPIC,
        Some(KEY),
        &[one.to_json().as_bytes(), &huge, two.to_json().as_bytes()],
    );
    let agg = aggregator(&broker, &tmp.path().join("data"));
    agg.wait_until("both records and the refused dead letter", WAIT, || {
        found(&agg) == 2 && metric(&agg, "infersight_kafka_dead_letter_failures_total") >= 1.0
    });
    assert_eq!(metric(&agg, "infersight_kafka_malformed_total"), 1.0);
    assert_eq!(
        metric(&agg, "infersight_kafka_dead_letter_failures_total"),
        1.0
    );
    assert_eq!(metric(&agg, "infersight_kafka_dead_letters_total"), 0.0);
    let log = agg.stderr();
    assert!(
        log.contains("the dead-letter topic cannot take a malformed message")
            && log.contains("offset=1"),
        "the refusal and the message's origin are logged:\n{log}"
    );
}
