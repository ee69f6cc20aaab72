//! A node agent whose topic the brokers do not have (a typo in `--kafka-topic`, or brokers
//! that do not create topics on first use, as most production clusters): it says so at
//! the start, naming the topic, holds every record meanwhile, and publishes all of them,
//! once each, when the topic is created.

use std::ffi::OsString;
use std::time::{Duration, Instant};
use tests::Running;
use tests::tansu::Broker;

const TOPIC: &str = "records-not-there-yet";
const LINES: usize = 200;

fn wait_until(what: &str, agent: &Running, timeout: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn metric(running: &Running, name: &str) -> f64 {
    tests::metric_sum(&running.get_text("/metrics").1, name)
}

#[test]
fn an_agent_names_a_topic_the_brokers_lack_and_publishes_every_record_once_it_exists() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let broker_dir = tmp.path().join("broker");
    std::fs::create_dir_all(&broker_dir).expect("broker dir");
    let broker = Broker::start(&broker_dir);
    let logs = tmp.path().join("pods");
    let lines: Vec<String> = (0..LINES)
        .map(|i| format!("INFO topictest line {i}"))
        .collect();
    let lines: Vec<(&str, &str)> = lines.iter().map(|l| ("stdout", l.as_str())).collect();
    tests::append_cri(&logs, "kt", "vllm-0", "server", &lines);

    let args: Vec<OsString> = vec![
        "run".into(),
        "--preset".into(),
        "agent".into(),
        "--logs-dir".into(),
        logs.into(),
        "--data-dir".into(),
        tmp.path().join("agent").into(),
        "--kafka-brokers".into(),
        broker.addr.clone().into(),
        "--kafka-topic".into(),
        TOPIC.into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ];
    let (agent, _) = Running::spawn(&args);
    let wait = Duration::from_secs(60);
    wait_until("the agent to name the missing topic", &agent, wait, || {
        agent
            .stderr()
            .lines()
            .any(|l| l.contains("do not have the topic") && l.contains(TOPIC))
    });
    // It read the lines and holds them: nothing acknowledged, no checkpoint moved on.
    wait_until("the lines to be read", &agent, wait, || {
        metric(&agent, "infersight_files_lines_read_total") >= LINES as f64
    });
    assert_eq!(metric(&agent, "infersight_kafka_records_acked_total"), 0.0);

    broker.create_topic(TOPIC, 1);
    // librdkafka gives a message for a topic it does not know up after 30 s
    // (`topic.metadata.propagation.max.ms`) and the sink sends it again, so allow for that.
    wait_until(
        "every record published",
        &agent,
        Duration::from_secs(90),
        || metric(&agent, "infersight_kafka_records_acked_total") >= LINES as f64,
    );
    let messages = broker.read_partition(TOPIC, usize::MAX, Duration::from_secs(5));
    let mut bodies: Vec<String> = messages
        .iter()
        .flat_map(|m| {
            String::from_utf8_lossy(&m.payload)
                .lines()
                .map(|line| {
                    let record: serde_json::Value =
                        serde_json::from_str(line).expect("a record a line");
                    record["body"].as_str().unwrap_or_default().to_string()
                })
                .collect::<Vec<_>>()
        })
        .filter(|b| b.contains("topictest"))
        .collect();
    bodies.sort();
    let mut expected: Vec<String> = (0..LINES)
        .map(|i| format!("INFO topictest line {i}"))
        .collect();
    expected.sort();
    assert_eq!(bodies, expected, "every line once");
}
