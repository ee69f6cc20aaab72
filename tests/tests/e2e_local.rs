//! The local pipeline end to end: container log files in the kubelet layout → the real
//! binary → HTTP search; then a clean SIGTERM, offline search, and a restart that resumes
//! from its checkpoints without indexing anything twice.

use serde_json::Value;
use std::time::Duration;
use tests::{EventStream, Running, append_cri, run_cli};

const SETTLE: Duration = Duration::from_secs(30);

/// A real vLLM v1 stats line and a real TGI success line from the shared corpus.
fn corpus_line(server: &str, contains: &str) -> String {
    tests::corpus()
        .into_iter()
        .filter(|l| l["server"] == server)
        .map(|l| l["line"].as_str().unwrap_or_default().to_string())
        .find(|l| l.contains(contains) && !l.contains('\u{1b}'))
        .unwrap_or_else(|| panic!("no {server} line with {contains:?} in the corpus"))
}

fn total(body: &Value) -> u64 {
    body["total"].as_u64().unwrap_or(0)
}

#[test]
fn lines_written_to_pod_logs_are_searchable_over_http_and_survive_a_restart_once() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("pods");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&logs).unwrap();
    let stats = corpus_line("vllm", "Engine 000: Avg prompt throughput");
    let tgi = corpus_line("tgi", "total_time=");
    append_cri(
        &logs,
        "llm-serving",
        "vllm-0",
        "vllm",
        &[("stdout", &stats), ("stderr", "plain engine line")],
    );
    append_cri(&logs, "llm-serving", "tgi-0", "tgi", &[("stdout", &tgi)]);

    let app = Running::start(&logs, &data, &[]);
    // Three lines, plus the request record TGI's success line makes.
    let all = app.wait_for("/api/v1/search?q=*&from=now-15m", SETTLE, |b| total(b) == 4);
    // TGI's success line is a whole request: it also becomes a `request` record.
    let request = app.wait_for("/api/v1/search?q=*&kind=request", SETTLE, |b| total(b) == 1);
    let attrs = &request["hits"][0]["attributes"];
    assert_eq!(attrs["llm.event"], "request_finished", "{request}");
    assert!(attrs["llm.e2e_ms"].is_f64(), "{request}");
    let pods: std::collections::BTreeSet<&str> = all["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["resource"]["k8s.pod.name"].as_str())
        .collect();
    assert_eq!(pods.into_iter().collect::<Vec<_>>(), ["tgi-0", "vllm-0"]);
    for hit in all["hits"].as_array().unwrap() {
        assert_eq!(hit["resource"]["k8s.namespace.name"], "llm-serving");
        assert!(hit["resource"]["k8s.container.name"].is_string());
    }

    let (status, engine) = app.get("/api/v1/search?q=kv&kind=engine_stats");
    assert_eq!(status, 200);
    assert_eq!(total(&engine), 1, "{engine}");
    let attrs = &engine["hits"][0]["attributes"];
    assert_eq!(attrs["llm.server"], "vllm");
    assert!(
        attrs["llm.running"].is_i64() && attrs["llm.kv_cache_pct"].is_f64(),
        "{attrs}"
    );

    // Live tail: a matching line appended now arrives as an event, before its commit;
    // others do not.
    let mut tail = EventStream::open(
        &app.base_url,
        "/api/v1/tail?q=%22tail%20probe%22&pod=vllm-0",
    );
    assert!(tail.next(SETTLE).is_some_and(|(name, _)| name == "ready"));
    let written = std::time::Instant::now();
    append_cri(
        &logs,
        "llm-serving",
        "vllm-0",
        "vllm",
        &[
            ("stdout", "not for the tail"),
            ("stdout", "a tail probe line"),
        ],
    );
    let event = tail
        .wait_for("record", "tail probe", SETTLE)
        .expect("the tail shows the new line");
    println!(
        "tail: the line arrived {:?} after it was written",
        written.elapsed()
    );
    let record: Value = serde_json::from_str(&event).unwrap();
    assert_eq!(record["body"], "a tail probe line");
    assert_eq!(record["resource"]["k8s.pod.name"], "vllm-0");
    drop(tail);

    // A line appended while running shows up too.
    append_cri(
        &logs,
        "llm-serving",
        "vllm-0",
        "vllm",
        &[("stdout", "fresh line after start")],
    );
    app.wait_for("/api/v1/search?q=%22fresh%20line%22", SETTLE, |b| {
        total(b) == 1
    });

    // The source's own counters are on /metrics, in the Prometheus text format.
    let (status, metrics) = app.get_text("/metrics");
    assert_eq!(status, 200);
    let value = |name: &str| -> f64 {
        let prefix = format!("{name}{{source=\"pod_logs\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    assert_eq!(value("infersight_files_lines_read_total"), 6.0);
    assert_eq!(value("infersight_files_watched"), 2.0);
    assert!(value("infersight_files_records_delivered_total") >= 3.0);
    assert_eq!(value("infersight_files_lost_total"), 0.0);
    assert!(metrics.contains("# TYPE infersight_files_lines_read_total counter"));
    // The index's size and upkeep.
    let index = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    assert_eq!(index("infersight_index_splits"), 1.0);
    assert!(index("infersight_index_segments") >= 1.0);
    assert!(index("infersight_index_records") >= 6.0);
    assert!(index("infersight_index_bytes") > 0.0);
    assert!(index("infersight_index_commits_total") >= 1.0);
    assert_eq!(index("infersight_index_splits_quarantined_total"), 0.0);
    // And the LLM metrics derived from the lines: TGI's request, vLLM's engine load.
    let series = |name: &str, needles: &[&str]| tests::metric_value(&metrics, name, needles);
    assert_eq!(
        series(
            "llm_requests_total{",
            &["pod=\"tgi-0\"", "server=\"tgi\"", "outcome=\"finished\""]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        series(
            "gen_ai_server_request_duration_seconds_count{",
            &["pod=\"tgi-0\""]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        series(
            "llm_engine_running_requests{",
            &["pod=\"vllm-0\"", "server=\"vllm\""]
        )
        .is_some(),
        "{metrics}"
    );

    let (status, bad) = app.get("/api/v1/search?from=yesterday");
    assert_eq!(status, 400);
    assert!(bad["detail"].as_str().unwrap_or_default().contains("from"));

    let (exit, stderr) = app.terminate(Duration::from_secs(30));
    assert!(
        exit.success(),
        "SIGTERM should drain and exit 0; stderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Offline search reads what the run committed.
    let data_arg = data.to_str().unwrap();
    let (code, out, err) = run_cli(&["search", "kv", "--data-dir", data_arg], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("vllm-0") && out.contains("GPU KV cache usage"),
        "{out}"
    );

    // A restart resumes from the committed checkpoints: the earlier lines are not indexed
    // again. The line appended now is the event that shows the restarted reader caught up.
    append_cri(
        &logs,
        "llm-serving",
        "tgi-0",
        "tgi",
        &[("stdout", "written while stopped")],
    );
    let again = Running::start(&logs, &data, &[]);
    again.wait_for(
        "/api/v1/search?q=%22written%20while%20stopped%22",
        SETTLE,
        |b| total(b) == 1,
    );
    let (_, everything) = again.get("/api/v1/search?q=*");
    assert_eq!(
        total(&everything),
        8,
        "each line exactly once after the restart: {everything}"
    );
    let (_, requests) = again.get("/api/v1/search?q=*&kind=request");
    assert_eq!(total(&requests), 1, "the request once too: {requests}");
}
