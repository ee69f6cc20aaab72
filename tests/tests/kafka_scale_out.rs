//! Issue 9's end-to-end check with a real Kafka-protocol broker (tansu) on loopback: one
//! agent tails generated pods' logs into a 4-partition topic; two aggregators consume it in
//! one group. Mid-stream aggregator A is stopped and started again on its data (a rebalance
//! each way), the broker is away for a while, and aggregator B, a static member as in the
//! StatefulSet, is killed with SIGKILL and restarted. The aggregators are each other's
//! peers: at the end a search through either one counts every line exactly once (its total
//! is the sum of both indexes' totals, so a line in both would count twice).

use serde_json::Value;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};
use tests::tansu::Broker;
use tests::{Running, wait_until};

const TOPIC: &str = "records";
const PODS: usize = 6;

/// An aggregator on `port`; with `static_name`, a static member of the group (as in the
/// StatefulSet, named after its pod).
fn aggregator(
    broker: &Broker,
    data: &Path,
    port: u16,
    peers: &str,
    static_name: Option<&str>,
) -> Running {
    let mut args: Vec<OsString> = vec![
        "run".into(),
        "--preset".into(),
        "aggregator".into(),
        "--data-dir".into(),
        data.into(),
        "--listen".into(),
        format!("127.0.0.1:{port}").into(),
        "--kafka-brokers".into(),
        broker.addr.clone().into(),
        "--kafka-topic".into(),
        TOPIC.into(),
        "--peers".into(),
        peers.into(),
    ];
    if let Some(name) = static_name {
        args.extend(["--kafka-group-instance-id".into(), name.into()]);
    }
    Running::spawn(&args).0
}

fn write_lines(logs: &Path, from: usize, to: usize) {
    for p in 0..PODS {
        let lines: Vec<String> = (from..to)
            .map(|i| format!("INFO kafkatest pod {p} line {i}"))
            .collect();
        let lines: Vec<(&str, &str)> = lines.iter().map(|l| ("stdout", l.as_str())).collect();
        tests::append_cri(logs, "ks", &format!("pod-{p}"), "server", &lines);
    }
}

/// Lines of `pod` that a search through `running` finds (in every aggregator's index), and
/// whether the answer was partial (a peer did not answer).
fn count(running: &Running, pod: usize) -> (u64, bool) {
    let (status, body): (u16, Value) = running.get(&format!(
        "/api/v1/search?q=kafkatest&namespace=ks&pod=pod-{pod}&from=now-1h&limit=1"
    ));
    assert_eq!(status, 200, "{body}");
    (
        body["total"].as_u64().unwrap_or(0),
        body["partial"].as_bool().unwrap_or(true),
    )
}

/// Records in `running`'s own index.
fn indexed_here(running: &Running) -> u64 {
    let (_, body) = running.get("/readyz");
    body["index"]["records"].as_u64().unwrap_or(0)
}

/// Whether `running` owns `partitions` partitions of the topic now.
fn owns(running: &Running, partitions: u32) -> bool {
    let (_, metrics) = running.get_text("/metrics");
    metrics.contains(&format!(
        "infersight_kafka_partitions_assigned{{source=\"kafka\"}} {partitions}"
    ))
}

/// The metric `name` of `running` (summed over its label sets).
fn metric(running: &Running, name: &str) -> f64 {
    tests::metric_sum(&running.get_text("/metrics").1, name)
}

/// Lines of every pod found through `running`, when every aggregator answered.
fn total(running: &Running) -> Option<u64> {
    let counts: Vec<(u64, bool)> = (0..PODS).map(|p| count(running, p)).collect();
    (!counts.iter().any(|(_, partial)| *partial)).then(|| counts.iter().map(|(n, _)| n).sum())
}

/// The state of the one Kafka component among `/api/v1/status`'s `list` (`sources` or
/// `sinks`), and whether its detail names the broker that is away.
fn kafka_status(running: &Running, list: &str) -> (String, bool) {
    let (code, status) = running.get("/api/v1/status");
    assert_eq!(code, 200, "{status}");
    let kafka: Vec<&Value> = status[list]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["kind"] == "kafka")
        .collect();
    assert_eq!(kafka.len(), 1, "{status}");
    let detail = kafka[0]["detail"].as_str().unwrap_or_default();
    (
        kafka[0]["state"].as_str().unwrap_or_default().to_string(),
        ["brokers are down", "Connect", "Disconnected"]
            .iter()
            .any(|why| detail.contains(why)),
    )
}

#[test]
fn two_aggregators_behind_kafka_index_every_line_once_through_a_restart_of_each_and_of_the_broker()
{
    let tmp = tempfile::tempdir().expect("temp dir");
    // KEEP_KAFKA_TEST=1 keeps the directories (the broker's log among them) for a look.
    let (_cleanup, tmp_path) = if std::env::var_os("KEEP_KAFKA_TEST").is_some() {
        (None, tmp.keep())
    } else {
        let path = tmp.path().to_path_buf();
        (Some(tmp), path)
    };
    let logs = tmp_path.join("pods");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let mut broker = Broker::start(&tmp_path.join("broker"));
    broker.create_topic(TOPIC, 4);
    let (data_a, data_b) = (tmp_path.join("a"), tmp_path.join("b"));
    let (port_a, port_b) = (tests::free_port(), tests::free_port());
    // One peer list for both, as a StatefulSet has: each finds itself in it.
    let peers = format!("127.0.0.1:{port_a},127.0.0.1:{port_b}");
    // B joins first and leads the group.
    let b = aggregator(&broker, &data_b, port_b, &peers, Some("aggregator-b"));
    wait_until("B to own the partitions", Duration::from_secs(60), || {
        owns(&b, 4)
    });
    let a = aggregator(&broker, &data_a, port_a, &peers, None);
    wait_until("A to get its share", Duration::from_secs(60), || {
        owns(&a, 2)
    });

    const FIRST: usize = 3000;
    write_lines(&logs, 0, FIRST);
    let agent_args: Vec<OsString> = vec![
        "run".into(),
        "--preset".into(),
        "agent".into(),
        "--logs-dir".into(),
        logs.clone().into(),
        "--data-dir".into(),
        tmp_path.join("agent").into(),
        "--kafka-brokers".into(),
        broker.addr.clone().into(),
        "--kafka-topic".into(),
        TOPIC.into(),
        // Its API, for its /metrics (the agent preset serves none by default).
        "--listen".into(),
        format!("127.0.0.1:{}", tests::free_port()).into(),
    ];
    let (agent, _) = Running::spawn(&agent_args);

    // Mid-stream: A has indexed some, not all, and is stopped (it leaves the group).
    let wait = Duration::from_secs(120);
    wait_until("aggregator A to index something", wait, || {
        indexed_here(&a) > 0
    });
    let (status, stderr) = a.terminate(Duration::from_secs(30));
    assert!(status.success(), "A drains: {stderr}");
    write_lines(&logs, FIRST, FIRST + 1000);
    // With A down, B's answers say so (and still come).
    let (_, partial) = count(&b, 0);
    assert!(partial, "A is down: B's answer is partial");
    // B takes A's partitions over (a rebalance) and reads on.
    wait_until("B to own every partition", wait, || owns(&b, 4));
    // The broker is away for a while: the agent reads on, holds what it cannot send, and
    // says why; the aggregators wait.
    broker.stop();
    write_lines(&logs, FIRST + 1000, FIRST + 2000);
    wait_until("the agent to report the broker gone", wait, || {
        agent.stderr().contains("Connection refused")
    });
    // Reported in /metrics too, by the producer and by the surviving consumer.
    wait_until("the outage to be counted on both sides", wait, || {
        metric(&agent, "infersight_kafka_producer_errors_total") >= 1.0
            && metric(&b, "infersight_kafka_consumer_errors_total") >= 1.0
    });
    // And in /api/v1/status, where someone looks first: both sides failing, saying why.
    assert_eq!(kafka_status(&agent, "sinks"), ("failing".to_string(), true));
    assert_eq!(kafka_status(&b, "sources"), ("failing".to_string(), true));
    broker.start_again();
    let a = aggregator(&broker, &data_a, port_a, &peers, None);
    wait_until("A to get its share back", wait, || owns(&a, 2));

    // SIGKILL B while it indexes: batches in flight, offsets not committed, no goodbye to
    // the group. Restarted under the same static name, it takes its partitions back and
    // resumes from the offsets its index committed (nothing below them twice).
    let before = indexed_here(&b);
    write_lines(&logs, FIRST + 2000, FIRST + 4000);
    wait_until("B to index more", wait, || indexed_here(&b) > before);
    assert_eq!(b.kill().signal(), Some(9), "B was killed, not exited");
    let (_, partial) = count(&a, 0);
    assert!(partial, "B is down: A's answer is partial");
    let b = aggregator(&broker, &data_b, port_b, &peers, Some("aggregator-b"));
    const LINES: usize = FIRST + 4000;

    // Messages that are not records: counted and skipped, never a crash loop.
    broker.produce_raw(TOPIC, &[b"not json", b"{\"id\":42}", &[0xff, 0xfe, 0x00]]);
    let expected = (PODS * LINES) as u64;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let found = total(&a);
        if found.is_some_and(|n| n >= expected) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{found:?} of {expected} lines found\nA:\n{}\nB:\n{}",
            a.stderr(),
            b.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The bad messages may sit behind lines already indexed, in a partition of B's that
    // B, just restarted, has not taken back yet: every line can be found before they are
    // read.
    let malformed = || -> f64 {
        [&a, &b]
            .iter()
            .map(|r| metric(r, "infersight_kafka_malformed_total"))
            .sum()
    };
    wait_until("the malformed messages to be read", wait, || {
        malformed() >= 3.0
    });
    // Let anything doubled arrive before counting: the agent and both aggregators idle.
    std::thread::sleep(Duration::from_secs(3));
    let (here_a, here_b) = (indexed_here(&a), indexed_here(&b));
    assert!(
        here_a > 0 && here_b > 0,
        "both indexes hold a share ({here_a}, {here_b}): the searches below span two"
    );
    for p in 0..PODS {
        for (name, through) in [("A", &a), ("B", &b)] {
            assert_eq!(
                count(through, p),
                (LINES as u64, false),
                "pod-{p} through {name}: every line once across both indexes"
            );
        }
    }
    assert_eq!(malformed(), 3.0, "each malformed message counted once");
    // The agent preset packs a pod's records into messages of the binary form (the
    // aggregators read every record of them: the counts above).
    let (acked, messages) = (
        metric(&agent, "infersight_kafka_records_acked_total"),
        metric(&agent, "infersight_kafka_messages_acked_total"),
    );
    assert!(acked >= expected as f64, "{acked} records acknowledged");
    assert!(
        messages > 0.0 && messages * 4.0 < acked,
        "{messages} messages for {acked} records: packed"
    );
    // LLM figures: the aggregators count them from the records, and the agent exports only
    // what needs the lines' order (in flight), so a scrape of both does not double a sum.
    tests::append_cri(
        &logs,
        "ks",
        "vllm-0",
        "vllm",
        &[
            (
                "stdout",
                "INFO 01-17 03:11:25 async_llm_engine.py:436] Received request cmpl-1: prompt: None.",
            ),
            (
                "stdout",
                "INFO 01-17 03:11:26 async_llm_engine.py:134] Finished request cmpl-1.",
            ),
            (
                "stdout",
                "INFO 01-17 03:11:27 async_llm_engine.py:436] Received request cmpl-2: prompt: None.",
            ),
        ],
    );
    let received = || {
        [&a, &b]
            .iter()
            .map(|r| metric(r, "llm_requests_received_total"))
            .sum::<f64>()
    };
    wait_until("the aggregators to count the vLLM requests", wait, || {
        received() >= 2.0
    });
    let finished: f64 = [&a, &b]
        .iter()
        .map(|r| metric(r, "llm_requests_total"))
        .sum();
    assert_eq!((received(), finished), (2.0, 1.0));
    let agent_metrics = agent.get_text("/metrics").1;
    assert_eq!(tests::metric_sum(&agent_metrics, "llm_requests_total"), 0.0);
    assert_eq!(
        tests::metric_sum(&agent_metrics, "llm_requests_received_total"),
        0.0
    );
    assert_eq!(
        tests::metric_value(
            &agent_metrics,
            "llm_requests_in_flight{",
            &["pod=\"vllm-0\""]
        ),
        Some(1.0),
        "cmpl-2, on the agent"
    );
    // Records went through since the outage: neither side says it is failing any more.
    assert_eq!(kafka_status(&agent, "sinks").0, "ok");
    assert_eq!(kafka_status(&a, "sources").0, "ok");
    let (status, stderr) = agent.terminate(Duration::from_secs(30));
    assert!(status.success(), "the agent drains: {stderr}");
}
