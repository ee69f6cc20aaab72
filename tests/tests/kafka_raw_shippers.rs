//! A team that already ships its pods' logs to Kafka points Infersight at that topic
//! (issue 9): an aggregator-shaped pipeline (`format = "raw"` Kafka source → inference-log
//! parsing → index) reads what Fluent Bit, Vector and Filebeat publish, and plain lines.
//! Real vLLM lines from the shared corpus, wrapped in each shipper's JSON, are found by
//! their pod, at the shipper's time of the line, with the request id the parser takes
//! from them.

use serde_json::{Value, json};
use std::ffi::OsString;
use std::time::Duration;
use tests::Running;
use tests::tansu::Broker;

const TOPIC: &str = "shipped-logs";

/// Real vLLM lines that name a request, with the request id each must give.
fn vllm_request_lines(n: usize) -> Vec<(String, String)> {
    let lines: Vec<(String, String)> = tests::corpus()
        .into_iter()
        .filter(|l| l["server"] == "vllm" && l["kind"] == "request_start")
        .filter_map(|l| {
            let id = l["contract"]["llm.request_id"].as_str()?.to_string();
            Some((l["line"].as_str()?.to_string(), id))
        })
        .filter(|(line, _)| !line.contains('\u{1b}'))
        .take(n)
        .collect();
    assert_eq!(lines.len(), n, "{n} vLLM request lines in the corpus");
    lines
}

#[test]
fn lines_other_shippers_publish_are_found_by_pod_at_their_own_time_and_parsed() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(&tmp.path().join("broker"));
    broker.create_topic(TOPIC, 1);

    let lines = vllm_request_lines(3);
    // Each shipper's form, with its own time of the line (an hour ago, as a backfill or a
    // lagging shipper would publish it) and its pod on a node.
    let hour_ago = model::Timestamp::now().saturating_add_nanos(-3_600_000_000_000);
    let seconds = hour_ago.unix_nanos() as f64 / 1e9;
    let rfc3339 = hour_ago.to_rfc3339();
    let fluent_bit = json!({
        "@timestamp": seconds, "log": format!("{}\n", lines[0].0), "stream": "stdout",
        "kubernetes": {"namespace_name": "llm", "pod_name": "vllm-fb", "pod_id": "uid-fb",
                       "container_name": "vllm", "host": "gpu-node-1"}
    });
    let vector = json!({
        "timestamp": rfc3339, "message": lines[1].0, "stream": "stdout",
        "source_type": "kubernetes_logs",
        "kubernetes": {"pod_namespace": "llm", "pod_name": "vllm-vector", "pod_uid": "uid-v",
                       "container_name": "vllm", "pod_node_name": "gpu-node-2"}
    });
    let filebeat = json!({
        "@timestamp": rfc3339, "message": lines[2].0, "stream": "stdout",
        "log": {"offset": 1234, "file": {"path": "/var/log/containers/x.log"}},
        "kubernetes": {"namespace": "llm", "pod": {"name": "vllm-filebeat", "uid": "uid-f"},
                       "container": {"name": "vllm"}, "node": {"name": "gpu-node-3"}}
    });
    let (fluent_bit, vector, filebeat) = (
        fluent_bit.to_string(),
        vector.to_string(),
        filebeat.to_string(),
    );
    broker.produce_raw(
        TOPIC,
        &[
            fluent_bit.as_bytes(),
            vector.as_bytes(),
            filebeat.as_bytes(),
            b"a plain line from a shipper that adds nothing",
        ],
    );

    let config = tmp.path().join("raw.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[api]
listen = "127.0.0.1:0"

[sources.shipped]
type = "kafka"
brokers = "{}"
topic = "{TOPIC}"
group = "infersight-raw"
format = "raw"

[transforms.parse]
type = "inference_logs"
inputs = ["shipped"]

[sinks.index]
type = "index"
inputs = ["parse"]
"#,
            broker.addr
        ),
    )
    .expect("write the config");
    let args: Vec<OsString> = vec![
        "run".into(),
        "--config".into(),
        config.into(),
        "--data-dir".into(),
        tmp.path().join("data").into(),
    ];
    let (aggregator, _) = Running::spawn(&args);
    aggregator.wait_for(
        "/api/v1/search?q=*&from=now-2h&kind=log",
        Duration::from_secs(60),
        |b| b["total"].as_u64() == Some(4),
    );

    for ((line, request_id), (pod, node)) in lines.iter().zip([
        ("vllm-fb", "gpu-node-1"),
        ("vllm-vector", "gpu-node-2"),
        ("vllm-filebeat", "gpu-node-3"),
    ]) {
        // Found by its pod, an hour back (the shipper's time, not when it was published).
        let (status, found) = aggregator.get(&format!(
            "/api/v1/search?q=*&namespace=llm&pod={pod}&from=now-2h&to=now-30m&kind=log"
        ));
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["total"], 1, "{pod}: {found}");
        let hit = &found["hits"][0];
        assert_eq!(hit["body"], line.as_str(), "{hit}");
        assert_eq!(hit["resource"]["k8s.node.name"], node, "{hit}");
        assert_eq!(hit["resource"]["k8s.container.name"], "vllm", "{hit}");
        let at = model::Timestamp::parse_rfc3339(hit["timestamp"].as_str().unwrap_or_default())
            .expect("a timestamp");
        let off_ns = (at.unix_nanos() - hour_ago.unix_nanos()).abs();
        assert!(off_ns < 1_000_000, "{pod}: {hit} against {rfc3339}");
        // And parsed as the vLLM line it is.
        assert_eq!(
            hit["attributes"]["llm.request_id"],
            Value::from(request_id.as_str()),
            "{hit}"
        );
    }
}
