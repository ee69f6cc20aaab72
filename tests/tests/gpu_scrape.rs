//! GPU snapshots and engine metrics through the real binary: a dcgm-exporter (the shared
//! fixture) and a vLLM `/metrics` served on loopback, scraped by `infersight run`; a vLLM
//! pod's requests get the figures of the GPU dcgm-exporter assigns to it; `/metrics` shows
//! per-pod GPU figures and the server's TTFT histogram; a scrape that answers garbage is
//! counted and the next one is read; without a GPU, NVML says so once.

use serde_json::Value;
use std::time::Duration;
use tests::Running;
use tests::fake_prom::FakeProm;

const NAMESPACE: &str = "llm-serving";
const POD: &str = "vllm-llama3-8b-6d8485c99f-vfdkm";

/// A vLLM exposition: `count` first tokens so far, `sum` seconds in all, `fast` of them
/// under 0.1 s and `medium` under 0.5 s (cumulative), token counters, and as many requests
/// ended, a quarter of them aborted.
fn vllm_metrics(count: u32, sum: f64, fast: u32, medium: u32, tokens: u32) -> String {
    let labels = r#"engine="0",model_name="llama""#;
    let aborted = count / 4;
    let stopped = count - aborted;
    format!(
        r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{{labels}}} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{{labels}}} 1.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{{{labels}}} 0.42
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{{{labels}}} {tokens}.0
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{{{labels},finished_reason="stop"}} {stopped}.0
vllm:request_success_total{{{labels},finished_reason="length"}} 0.0
vllm:request_success_total{{{labels},finished_reason="abort"}} {aborted}.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{{labels},le="0.1"}} {fast}.0
vllm:time_to_first_token_seconds_bucket{{{labels},le="0.5"}} {medium}.0
vllm:time_to_first_token_seconds_bucket{{{labels},le="+Inf"}} {count}.0
vllm:time_to_first_token_seconds_count{{{labels}}} {count}.0
vllm:time_to_first_token_seconds_sum{{{labels}}} {sum}
"#
    )
}

fn num(hit: &Value, key: &str) -> Option<f64> {
    hit["attributes"][key].as_f64()
}

#[test]
fn dcgm_and_vllm_scrapes_become_gpu_figures_on_requests_and_metrics() {
    let dcgm = std::fs::read_to_string(tests::shared_dir().join("fixtures/dcgm-sample.prom"))
        .expect("the dcgm fixture");
    let prom = FakeProm::start(vec![
        ("/metrics", vec![dcgm]),
        (
            "/vllm",
            vec![
                vllm_metrics(5, 1.25, 3, 4, 2000),
                // A proxy in the way: not an exposition. Counted; the next scrape is read.
                "<html><body>502 Bad Gateway</body></html>\n".to_string(),
                vllm_metrics(9, 1.65, 6, 8, 2600),
            ],
        ),
    ]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let (logs, data) = (tmp.path().join("pods"), tmp.path().join("data"));
    std::fs::create_dir_all(&logs).expect("logs dir");
    let config = tmp.path().join("infersight.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "{data}"
[api]
listen = "127.0.0.1:0"
[sources.pod_logs]
type = "files"
logs_dir = "{logs}"
[sources.gpu]
type = "gpu"
interval_ms = 500
[sources.metrics]
type = "scrape"
interval_ms = 500
targets = [
  "{url}/metrics",
  {{ url = "{url}/vllm", namespace = "{NAMESPACE}", pod = "{POD}", container = "vllm" }},
]
[transforms.parse]
type = "inference_logs"
inputs = ["pod_logs", "gpu", "metrics"]
[sinks.index]
type = "index"
inputs = ["parse"]
"#,
            data = data.display(),
            logs = logs.display(),
            url = prom.url,
        ),
    )
    .expect("the config");
    let (running, _) = Running::spawn(&["run".into(), "--config".into(), config.into()]);
    let wait = Duration::from_secs(60);

    // GPU 0 serves the vLLM pod (dcgm-exporter's labels say so).
    let gpus = running.wait_for(
        &format!("/api/v1/search?kind=gpu&pod={POD}&q=*"),
        wait,
        |b| b["total"].as_u64() >= Some(1),
    );
    let gpu = &gpus["hits"][0];
    assert_eq!(num(gpu, "gpu.utilization_pct"), Some(87.0), "{gpu}");
    assert_eq!(
        num(gpu, "gpu.memory.used_bytes"),
        Some(73802.0 * 1024.0 * 1024.0)
    );
    assert_eq!(gpu["resource"]["k8s.node.name"], "gpu-node-1");

    // Its requests, logged after a snapshot exists, carry that GPU's figures.
    tests::append_cri(
        &logs,
        NAMESPACE,
        POD,
        "vllm",
        &[
            (
                "stdout",
                "INFO 01-17 03:11:25 async_llm_engine.py:436] Received request cmpl-7: prompt: None, sampling_params: SamplingParams(n=1, max_tokens=64).",
            ),
            (
                "stdout",
                "INFO 01-17 03:11:26 async_llm_engine.py:134] Finished request cmpl-7.",
            ),
        ],
    );
    let requests = running.wait_for("/api/v1/search?kind=request&q=*", wait, |b| {
        b["total"].as_u64() >= Some(1)
    });
    let request = &requests["hits"][0];
    assert_eq!(num(request, "gpu.utilization_pct"), Some(87.0), "{request}");
    assert_eq!(num(request, "gpu.count"), Some(1.0));
    assert_eq!(
        request["attributes"]["gpu.uuid"],
        "GPU-c4529c8d-69c4-b61d-e0bc-7b2460096005"
    );

    // The server's own TTFT: the mean of the 4 first tokens between the good scrapes
    // (0.4 s over 4), across the one that failed.
    let stats = running.wait_for(
        "/api/v1/search?kind=engine_stats&q=*&limit=100",
        wait,
        |b| {
            b["hits"]
                .as_array()
                .is_some_and(|hits| hits.iter().any(|h| num(h, "llm.ttft_ms").is_some()))
        },
    );
    let with_ttft = stats["hits"]
        .as_array()
        .and_then(|hits| hits.iter().find(|h| num(h, "llm.ttft_ms").is_some()))
        .expect("a stats record with a TTFT")
        .clone();
    let ttft = num(&with_ttft, "llm.ttft_ms").unwrap_or_default();
    assert!((ttft - 100.0).abs() < 1e-6, "{with_ttft}");
    assert_eq!(with_ttft["attributes"]["llm.ttft_source"], "scraped");
    // The tokens generated between the two good scrapes, from the counter.
    assert_eq!(num(&with_ttft, "llm.generated_tokens"), Some(600.0));
    assert_eq!(num(&with_ttft, "llm.kv_cache_pct"), Some(42.0));
    assert_eq!(with_ttft["resource"]["k8s.pod.name"], POD);
    assert_eq!(
        num(&with_ttft, "gpu.utilization_pct"),
        Some(87.0),
        "joined too"
    );

    // The 4 first tokens by bucket (3 within 0.1 s, 1 within 0.5 s), spread over vLLM's
    // bounds; the summary reads its TTFT percentiles from them, as histogram_quantile
    // would from the server's own buckets: the median two thirds into the first 100 ms.
    let bucket = |name: &str| num(&with_ttft, name).unwrap_or(0.0);
    let counted: f64 = model::names::LLM_TTFT_BUCKETS
        .iter()
        .map(|(name, _)| bucket(name))
        .sum();
    assert!((counted - 4.0).abs() < 1e-9, "{with_ttft}");
    assert!((bucket("llm.ttft_bucket_500ms") - 0.625).abs() < 1e-9);
    assert!(
        (bucket("llm.ttft_total_ms") - 400.0).abs() < 1e-6,
        "{with_ttft}"
    );
    let (_, summary) = running.get("/api/v1/llm/summary?from=now-15m");
    let llama = summary["groups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["group"] == "llama"))
        .unwrap_or_else(|| panic!("the scraped model's group: {summary}"));
    assert_eq!(llama["ttft_source"], "scraped", "{llama}");
    let ttft = |p: &str| llama["ttft_ms"][p].as_f64().unwrap_or(f64::NAN);
    assert!((ttft("p50") - 200.0 / 3.0).abs() < 1e-6, "{llama}");
    assert!((ttft("p95") - 420.0).abs() < 1e-6, "{llama}");
    assert!(
        (ttft("avg") - 100.0).abs() < 1e-6,
        "the histogram's sum: {llama}"
    );
    // It logs no request ends: its requests are its counters', 4 between the good scrapes
    // (3 stopped, 1 aborted: failed), over the summary's rate seconds.
    assert_eq!(llama["requests_source"], "scraped", "{llama}");
    assert_eq!(llama["requests"], 4, "{llama}");
    assert_eq!(llama["errors"], 1, "{llama}");
    assert_eq!(llama["error_rate"], 0.25, "{llama}");
    let rate_s = summary["rate_seconds"].as_f64().unwrap_or(f64::NAN);
    let rps = llama["rps"].as_f64().unwrap_or(f64::NAN);
    assert!((rps - 4.0 / rate_s).abs() < 1e-9, "{summary}");
    assert_eq!(
        num(&with_ttft, "llm.requests_ended"),
        Some(4.0),
        "{with_ttft}"
    );
    assert_eq!(num(&with_ttft, "llm.requests_failed"), Some(1.0));

    let (_, metrics) = running.get_text("/metrics");
    let pod = format!("pod=\"{POD}\"");
    assert_eq!(
        tests::metric_value(
            &metrics,
            "gpu_utilization_percent",
            &["gpu=\"0\"", &pod, "node=\"gpu-node-1\""]
        ),
        Some(87.0),
        "{metrics}"
    );
    assert_eq!(
        tests::metric_value(
            &metrics,
            "gpu_memory_total_bytes",
            &["gpu=\"1\"", "pod=\"\""]
        ),
        Some((81004.0 + 1.0) * 1024.0 * 1024.0)
    );
    assert_eq!(
        tests::metric_value(
            &metrics,
            "llm_engine_time_to_first_token_seconds_bucket",
            &[&pod, "model=\"llama\"", "server=\"vllm\"", "le=\"0.1\""]
        ),
        Some(6.0)
    );
    assert_eq!(
        tests::metric_value(
            &metrics,
            "llm_engine_time_to_first_token_seconds_count",
            &[&pod]
        ),
        Some(9.0)
    );
    assert_eq!(
        tests::metric_value(&metrics, "llm_engine_running_requests", &[&pod]),
        Some(3.0),
        "scraped gauges feed the engine metrics"
    );
    assert_eq!(
        tests::metric_value(
            &metrics,
            "infersight_scrape_failures_total",
            &["source=\"metrics\""]
        ),
        Some(1.0)
    );
    assert!(prom.served("/vllm") >= 3);
    let stderr = running.stderr();
    assert_eq!(
        stderr
            .matches("not a Prometheus exposition: line 1")
            .count(),
        1,
        "said once: {stderr}"
    );
    let (_, status) = running.get("/api/v1/status");
    let source = |id: &str| {
        status["sources"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("{id} in {status}"))
    };
    assert_eq!(source("metrics")["state"], "ok", "recovered: {status}");
    assert_eq!(source("pod_logs")["kind"], "files");
    if !std::path::Path::new("/dev/nvidiactl").exists() {
        let gpu = source("gpu");
        assert_eq!(gpu["state"], "unavailable", "{status}");
        assert!(
            gpu["detail"].as_str().is_some_and(|d| d.contains("NVML")),
            "says why: {gpu}"
        );
        assert_eq!(
            tests::metric_value(
                &metrics,
                "infersight_gpu_nvml_available",
                &["source=\"gpu\""]
            ),
            Some(0.0)
        );
        assert_eq!(
            stderr.matches("NVML is unavailable").count(),
            1,
            "said once: {stderr}"
        );
    }
    let (status, _) = running.terminate(Duration::from_secs(30));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_annotated_for_scraping_is_found_through_the_kube_source_and_scraped() {
    use std::collections::VecDeque;
    use tests::fake_kube::{Answer, FakeApi, Script, fixture, list};
    let prom = FakeProm::start(vec![("/stats", vec![vllm_metrics(5, 1.25, 3, 4, 2000)])]);
    let port = prom.url.rsplit(':').next().expect("a port").to_string();
    let mut pod = fixture("k8s-pods.json")[0].clone();
    let name = pod["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_string();
    pod["metadata"]["annotations"]["prometheus.io/scrape"] = "true".into();
    pod["metadata"]["annotations"]["prometheus.io/port"] = port.into();
    pod["metadata"]["annotations"]["prometheus.io/path"] = "/stats".into();
    pod["status"]["podIP"] = "127.0.0.1".into();
    let mut script = Script::default();
    script.answers.insert(
        "/api/v1/pods",
        VecDeque::from([Answer::List(list("PodList", "5", vec![pod]))]),
    );
    let api = FakeApi::start(script).await;
    let url = api.url.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let tmp = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(tmp.path().join("pods")).expect("logs dir");
        let running = Running::start(
            &tmp.path().join("pods"),
            &tmp.path().join("data"),
            &["--kube-api", &url],
        );
        let stats = running.wait_for(
            &format!("/api/v1/search?kind=engine_stats&pod={name}&q=*"),
            Duration::from_secs(60),
            |b| b["total"].as_u64() >= Some(1),
        );
        let (_, metrics) = running.get_text("/metrics");
        let (_, status) = running.get("/api/v1/status");
        drop(tmp);
        (stats, metrics, status, name)
    });
    let (stats, metrics, status, name) = tokio::time::timeout(Duration::from_secs(120), checked)
        .await
        .expect("a guard, not a wait")
        .expect("the checks ran");
    let hit = &stats["hits"][0];
    assert_eq!(num(hit, "llm.running"), Some(3.0), "{hit}");
    assert_eq!(
        hit["resource"]["k8s.namespace.name"], "llm-serving",
        "{hit}"
    );
    // The annotation's port is not one a container declares: no container is named.
    assert!(hit["resource"]["k8s.container.name"].is_null(), "{hit}");
    assert!(
        hit["attributes"]["scrape.url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:") && u.ends_with("/stats"))
    );
    assert_eq!(
        tests::metric_value(
            &metrics,
            "llm_engine_time_to_first_token_seconds_count",
            &[&format!("pod=\"{name}\"")]
        ),
        Some(5.0),
        "{metrics}"
    );
    assert!(status.to_string().contains("\"scrape\""), "{status}");
}
