//! What a node agent does with what Kafka will not take as it is.
//! - A topic the brokers do not have (a typo in `--kafka-topic`, or brokers that do not
//!   create topics on first use, as most production clusters): it says so at the start,
//!   naming the topic, holds every record meanwhile, and publishes all of them, once each,
//!   when the topic is created.
//! - A record larger than a Kafka message may be (a 1 MB log line): it goes with its body
//!   cut to fit and flagged `log.truncated`, and the lines after it go on. (Before, the
//!   producer refused it at once, the sink tried it again every 5 ms, and the node's logs
//!   stopped there, silently.)

use serde_json::Value;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;
use tests::Running;
use tests::tansu::Broker;

fn metric(running: &Running, name: &str) -> f64 {
    tests::metric_sum(&running.get_text("/metrics").1, name)
}

/// `infersight run --preset agent` on `logs`, publishing to `topic`.
fn agent(broker: &Broker, logs: &Path, data: &Path, topic: &str) -> Running {
    let args: Vec<OsString> = vec![
        "run".into(),
        "--preset".into(),
        "agent".into(),
        "--logs-dir".into(),
        logs.into(),
        "--data-dir".into(),
        data.into(),
        "--kafka-brokers".into(),
        broker.addr.clone().into(),
        "--kafka-topic".into(),
        topic.into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ];
    Running::spawn(&args).0
}

/// The records of the messages in partition 0 of `topic`, in their JSON form (the agent
/// preset writes the binary form).
fn published(broker: &Broker, topic: &str) -> Vec<Value> {
    let mut shared = model::SharedResources::default();
    let mut records = Vec::new();
    for m in broker.read_partition(topic, usize::MAX, Duration::from_secs(5)) {
        model::read_binary(&m.payload, &mut shared, &mut records).expect("the binary form");
    }
    records
        .iter()
        .map(|r| serde_json::from_str(&r.to_json()).expect("a record's JSON"))
        .collect()
}

fn body(record: &Value) -> &str {
    record["body"].as_str().unwrap_or_default()
}

#[test]
fn an_agent_names_a_topic_the_brokers_lack_and_publishes_every_record_once_it_exists() {
    const TOPIC: &str = "records-not-there-yet";
    const LINES: usize = 200;
    let tmp = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(&tmp.path().join("broker"));
    let logs = tmp.path().join("pods");
    let expected: Vec<String> = (0..LINES)
        .map(|i| format!("INFO topictest line {i}"))
        .collect();
    let lines: Vec<(&str, &str)> = expected.iter().map(|l| ("stdout", l.as_str())).collect();
    tests::append_cri(&logs, "kt", "vllm-0", "server", &lines);

    let agent = agent(&broker, &logs, &tmp.path().join("agent"), TOPIC);
    let wait = Duration::from_secs(60);
    agent.wait_until("the agent to name the missing topic", wait, || {
        agent
            .stderr()
            .lines()
            .any(|l| l.contains("do not have the topic") && l.contains(TOPIC))
    });
    // It read the lines and holds them: nothing acknowledged, no checkpoint moved on.
    agent.wait_until("the lines to be read", wait, || {
        metric(&agent, "infersight_files_lines_read_total") >= LINES as f64
    });
    assert_eq!(metric(&agent, "infersight_kafka_records_acked_total"), 0.0);
    let (_, status) = agent.get("/api/v1/status");
    assert_eq!(status["sinks"][0]["state"], "failing", "{status}");
    assert!(
        status["sinks"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(TOPIC)),
        "{status}"
    );

    broker.create_topic(TOPIC, 1);
    // librdkafka gives a message for a topic it does not know up after 30 s
    // (`topic.metadata.propagation.max.ms`) and the sink sends it again, so allow for that.
    agent.wait_until("every record published", Duration::from_secs(90), || {
        metric(&agent, "infersight_kafka_records_acked_total") >= LINES as f64
    });
    let (_, status) = agent.get("/api/v1/status");
    assert_eq!(status["sinks"][0]["state"], "ok", "{status}");
    let records = published(&broker, TOPIC);
    let mut bodies: Vec<&str> = records
        .iter()
        .map(body)
        .filter(|b| b.contains("topictest"))
        .collect();
    bodies.sort();
    let mut expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(bodies, expected, "every line once");
}

#[test]
fn a_record_larger_than_a_kafka_message_goes_cut_and_flagged_and_the_lines_after_it_go_on() {
    const TOPIC: &str = "records";
    let tmp = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(&tmp.path().join("broker"));
    broker.create_topic(TOPIC, 1);
    let logs = tmp.path().join("pods");
    // Under the files source's own cap (1 MiB), over a Kafka message's (1,000,000 bytes).
    let big = "x".repeat(1_000_000);
    let after: Vec<String> = (0..5).map(|i| format!("bigtest after {i}")).collect();
    let mut lines = vec![("stdout", "bigtest before"), ("stdout", big.as_str())];
    lines.extend(after.iter().map(|l| ("stdout", l.as_str())));
    tests::append_cri(&logs, "kt", "vllm-0", "server", &lines);

    let agent = agent(&broker, &logs, &tmp.path().join("agent"), TOPIC);
    agent.wait_until("every line published", Duration::from_secs(60), || {
        metric(&agent, "infersight_kafka_records_acked_total") >= lines.len() as f64
    });
    assert_eq!(metric(&agent, "infersight_kafka_records_cut_total"), 1.0);
    assert_eq!(
        metric(&agent, "infersight_kafka_records_refused_total"),
        0.0
    );
    let records = published(&broker, TOPIC);
    let cut: Vec<&Value> = records
        .iter()
        .filter(|r| body(r).starts_with("xxx"))
        .collect();
    assert_eq!(cut.len(), 1, "the big line once");
    let kept = body(cut[0]).len();
    assert!(
        (900_000..1_000_000).contains(&kept),
        "cut to fit, not away: {kept} bytes kept"
    );
    assert_eq!(cut[0]["attributes"]["log.truncated"], true);
    let bodies: Vec<&str> = records.iter().map(body).collect();
    for expected in ["bigtest before", "bigtest after 0", "bigtest after 4"] {
        assert_eq!(
            bodies.iter().filter(|b| **b == expected).count(),
            1,
            "{expected} once, in {} records",
            bodies.len()
        );
    }
    assert!(
        agent.stderr().contains("longest texts cut"),
        "the cut is said: {}",
        agent.stderr()
    );
}
