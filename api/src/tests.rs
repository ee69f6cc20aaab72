//! The router against a real on-disk index.

use super::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use indexer::{IndexStore, SinkOptions};
use model::{AttrValue, Attributes, Batch, Record, RecordId, RecordKind, Timestamp, names};
use serde_json::{Value, json};
use tower::ServiceExt;

fn app_with(lines: &[(&str, &str)]) -> (tempfile::TempDir, Router) {
    let now = Timestamp::now();
    let records = lines
        .iter()
        .enumerate()
        .map(|(i, (pod, body))| {
            let resource: Attributes = [(names::K8S_POD_NAME, AttrValue::from(*pod))]
                .into_iter()
                .collect();
            let ts = now.saturating_add_nanos(-(i as i64) * 1_000_000_000);
            Record::log(
                RecordId::from_source(b"t", i as u64),
                ts,
                ts,
                Arc::new(resource),
                body.to_string(),
            )
        })
        .collect();
    app_with_records(records)
}

fn app_with_records(records: Vec<Record>) -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    sink.add(Batch::new(records)).unwrap();
    sink.commit().unwrap();
    let state = ApiState {
        search: Arc::new(crate::LocalIndex::new(store.clone())),
        token: None,
        live: None,
        metrics: Arc::new(crate::NoMetrics),
        status: Arc::new(crate::NoStatus),
        instance: Arc::from("test:1"),
        peers: None,
    };
    (dir, router(state))
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn search_returns_hits_newest_first_with_the_contract_shape() {
    let (_dir, app) = app_with(&[
        ("vllm-0", "newest kv line"),
        ("tgi-0", "older kv line"),
        ("tgi-0", "unrelated"),
    ]);
    let (status, body) = get(&app, "/api/v1/search?q=kv&from=now-15m").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 2);
    assert_eq!(body["hits"][0]["body"], "newest kv line");
    assert_eq!(body["hits"][0]["resource"]["k8s.pod.name"], "vllm-0");
    assert_eq!(body["hits"][1]["body"], "older kv line");
    assert!(body["next_cursor"].is_null());

    let (_, by_pod) = get(&app, "/api/v1/search?q=*&pod=tgi-0").await;
    assert_eq!(by_pod["total"], 2);
    let (_, future) = get(&app, "/api/v1/search?from=now%2B1h").await;
    assert_eq!(future["total"], 0);
    let (_, first) = get(&app, "/api/v1/search?q=*&limit=1").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (_, second) = get(&app, &format!("/api/v1/search?q=*&limit=1&cursor={cursor}")).await;
    assert_eq!(second["total"], first["total"]);
    assert_ne!(second["hits"][0]["id"], first["hits"][0]["id"]);
    let (_, capped) = get(&app, "/api/v1/search?limit=5000").await;
    assert_eq!(capped["limit"], indexer::MAX_LIMIT);
    assert!(capped["warnings"][0].as_str().unwrap().contains("5000"));
}

#[tokio::test]
async fn user_mistakes_are_400_with_a_json_explanation() {
    let (_dir, app) = app_with(&[("p", "x")]);
    for (uri, needle) in [
        ("/api/v1/search?from=yesterday", "from"),
        ("/api/v1/search?to=now-", "to"),
        ("/api/v1/search?from=now&to=now-1h", "swap"),
        ("/api/v1/search?limit=-3", "limit"),
        ("/api/v1/search?kind=banana", "engine_stats"),
        ("/api/v1/search?q=body:(oops", "invalid query"),
        ("/api/v1/search?cursor=abc", "cursor"),
    ] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"], "bad_request");
        assert!(
            body["detail"].as_str().unwrap().contains(needle),
            "{uri}: {body}"
        );
    }
    let (status, body) = get(&app, "/api/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn healthz_answers() {
    let (_dir, app) = app_with(&[]);
    let (status, body) = get(&app, "/healthz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
}

/// A record of `pod` (container `server`) `secs_ago` seconds ago.
fn at(n: u64, pod: &str, secs_ago: i64, kind: RecordKind, body: &str) -> Record {
    let resource: Attributes = [
        (names::K8S_NAMESPACE_NAME, AttrValue::from("llm")),
        (names::K8S_POD_NAME, AttrValue::from(pod)),
        (names::K8S_CONTAINER_NAME, AttrValue::from("server")),
    ]
    .into_iter()
    .collect();
    let ts = Timestamp::now().saturating_add_nanos(-secs_ago * 1_000_000_000);
    let mut r = Record::log(
        RecordId::from_source(b"api", n),
        ts,
        ts,
        Arc::new(resource),
        body.to_string(),
    );
    r.kind = kind;
    r
}

/// Two models' requests (one failed), engine stats, and a router line, in the last minutes.
pub(crate) fn llm_records() -> Vec<Record> {
    let mut records = Vec::new();
    for (i, (model, e2e, ttft, out, event)) in [
        ("llama3", 100.0, 20.0, 50, "request_finished"),
        ("llama3", 200.0, 40.0, 100, "request_finished"),
        ("llama3", 900.0, 80.0, 10, "request_aborted"),
        ("qwen", 1000.0, 300.0, 30, "request_finished"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("chatcmpl-{i:04}");
        let mut r = at(
            i as u64,
            "vllm-0",
            60 + i as i64,
            RecordKind::Request,
            &format!("request {id} {event}"),
        );
        r.attributes.insert(names::LLM_REQUEST_ID, id.clone());
        r.attributes.insert(names::LLM_EVENT, event);
        r.attributes.insert(names::LLM_SERVER, "vllm");
        r.attributes.insert(names::GEN_AI_REQUEST_MODEL, model);
        r.attributes.insert_f64(names::LLM_E2E_MS, e2e);
        r.attributes.insert_f64(names::LLM_TTFT_MS, ttft);
        r.attributes
            .insert(names::GEN_AI_USAGE_OUTPUT_TOKENS, out as i64);
        records.push(r);
        let mut received = at(
            100 + i as u64,
            "vllm-0",
            62 + i as i64,
            RecordKind::Log,
            &format!("Received request {id}: prompt: 'hi'"),
        );
        received
            .attributes
            .insert(names::LLM_REQUEST_ID, id.clone());
        received
            .attributes
            .insert(names::LLM_EVENT, "request_received");
        received
            .attributes
            .insert(names::GEN_AI_REQUEST_MODEL, model);
        records.push(received);
        records.push(at(
            200 + i as u64,
            "router-0",
            63 + i as i64,
            RecordKind::Log,
            &format!("proxying {id} to vllm-0"),
        ));
    }
    let mut gpu = at(400, "vllm-0", 61, RecordKind::Gpu, "GPU 0: 87% busy");
    gpu.attributes.insert_f64(names::GPU_UTILIZATION_PCT, 87.0);
    records.push(gpu);
    for (i, running) in [4i64, 8].into_iter().enumerate() {
        let mut r = at(
            300 + i as u64,
            "vllm-0",
            30 + i as i64,
            RecordKind::EngineStats,
            "Running: n reqs",
        );
        r.attributes.insert(names::GEN_AI_REQUEST_MODEL, "llama3");
        r.attributes.insert(names::LLM_RUNNING, running);
        records.push(r);
    }
    records
}

#[tokio::test]
async fn a_request_trace_gathers_the_lifecycle_timings_and_every_container() {
    let (_dir, app) = app_with_records(llm_records());
    let (status, body) = get(&app, "/api/v1/requests/chatcmpl-0001").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["request_id"], "chatcmpl-0001");
    assert_eq!(body["summary"]["model"], "llama3");
    assert_eq!(body["summary"]["outcome"], "request_finished");
    assert_eq!(body["summary"]["figures"]["e2e_ms"], 200.0);
    assert_eq!(body["summary"]["figures"]["output_tokens"], 100.0);
    assert_eq!(body["lifecycle"].as_array().unwrap().len(), 1);
    assert_eq!(body["lines"].as_array().unwrap().len(), 3);
    assert_eq!(
        body["containers"],
        serde_json::json!(["llm/router-0/server", "llm/vllm-0/server"])
    );
    assert_eq!(
        body["gpu"]["attributes"]["gpu.utilization_pct"], 87.0,
        "the serving pod's GPU snapshot nearest the end: {}",
        body["gpu"]
    );
    let (status, body) = get(&app, "/api/v1/requests/chatcmpl-9999").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("chatcmpl-9999"));

    // Narrowed to one pod and a time range (as the UI asks a llama.cpp task number).
    let (status, body) = get(
        &app,
        "/api/v1/requests/chatcmpl-0001?pod=vllm-0&from=now-1h",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["containers"], serde_json::json!(["llm/vllm-0/server"]));
    let (status, body) = get(&app, "/api/v1/requests/chatcmpl-0001?from=now-1s").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "its records are older: {body}"
    );
    let (status, body) = get(&app, "/api/v1/requests/chatcmpl-0001?q=oops").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn the_histogram_counts_per_interval_with_the_search_filters() {
    let (_dir, app) = app_with_records(llm_records());
    let (status, body) = get(&app, "/api/v1/histogram?q=*&from=now-10m&interval=1m").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["interval"], "1m");
    assert_eq!(body["interval_ms"], 60_000);
    assert_eq!(body["total"], 15);
    let counted: u64 = body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 15);
    let (_, routers) = get(&app, "/api/v1/histogram?pod=router-0&from=now-10m").await;
    assert_eq!(routers["total"], 4);
    assert_eq!(routers["interval"], "5s", "10 minutes in at most 120 bars");
    for (uri, needle) in [
        ("/api/v1/histogram?interval=5x", "interval"),
        ("/api/v1/histogram?interval=0s", "above zero"),
        ("/api/v1/histogram?from=now-30d&interval=1s", "buckets"),
    ] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains(needle),
            "{uri}: {body}"
        );
    }
}

fn time_of(v: &Value) -> Timestamp {
    Timestamp::parse_rfc3339(v.as_str().expect("a time")).expect("RFC 3339")
}

/// The seconds a summary's rates are taken over, checked to be where its data begins
/// (the oldest record) to now.
fn rate_seconds(body: &Value) -> f64 {
    let seconds = body["rate_seconds"].as_f64().expect("rate_seconds");
    let begins = time_of(&body["data_from"]);
    let since = (Timestamp::now().unix_nanos() - begins.unix_nanos()) as f64 / 1e9;
    assert!(
        seconds <= since && seconds > since - 30.0,
        "{seconds} s, data from {begins:?}"
    );
    seconds
}

#[tokio::test]
async fn rates_are_taken_over_the_part_of_the_range_the_index_holds() {
    let requests = |first: u64, secs_ago: i64| {
        (0..6).map(move |i| {
            let mut r = at(
                first + i,
                "vllm-0",
                secs_ago,
                RecordKind::Request,
                "request finished",
            );
            r.attributes.insert(names::LLM_EVENT, "request_finished");
            r.attributes.insert_f64(names::LLM_E2E_MS, 100.0);
            r
        })
    };
    let summary = |app: Router, query: String| async move {
        let (status, body) = get(&app, &format!("/api/v1/llm/summary?group_by=pod&{query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let rps = body["groups"][0]["rps"].as_f64().expect("rps");
        (
            body["rate_seconds"].as_f64().expect("rate_seconds"),
            rps,
            body,
        )
    };
    // Infersight started two minutes ago: the last hour's rate is per second of those two
    // minutes, not of the hour (a new install's dashboard read 1/30 of the load).
    let (_dir, app) = app_with_records(requests(0, 120).collect());
    let (seconds, rps, body) = summary(app.clone(), "from=now-1h".into()).await;
    assert!((120.0..130.0).contains(&seconds), "{body}");
    assert!((rps - 6.0 / seconds).abs() < 1e-9, "{body}");
    assert!(
        time_of(&body["data_from"]) > time_of(&body["from"]),
        "{body}"
    );
    // An index older than the range: the whole range. A range reaching past now ends now.
    let old = requests(10, 7200).chain(requests(20, 120)).collect();
    let (_dir, app) = app_with_records(old);
    let (seconds, rps, body) = summary(app.clone(), "from=now-1h".into()).await;
    assert!((seconds - 3600.0).abs() < 1e-6, "{body}");
    assert!((rps - 6.0 / 3600.0).abs() < 1e-9, "{body}");
    assert_eq!(body["data_from"], body["from"]);
    let now = Timestamp::now();
    let hour = 3_600_000_000_000;
    let (from, to) = (
        now.saturating_add_nanos(-hour),
        now.saturating_add_nanos(hour),
    );
    let (seconds, _, body) = summary(app, format!("from={from}&to={to}")).await;
    assert!((3600.0..3630.0).contains(&seconds), "{body}");
}

/// An HTTP access line of `pod` 30 s ago (`event`: `access`, `proxy_access`, `probe`), with
/// its status and, where the server logs one, the call's duration.
fn call_line(
    n: u64,
    pod: &str,
    body: &str,
    event: &'static str,
    status: i64,
    ms: Option<f64>,
) -> Record {
    let mut r = at(n, pod, 30, RecordKind::Log, body);
    r.attributes.insert(names::LLM_EVENT, event);
    r.attributes
        .insert(names::HTTP_RESPONSE_STATUS_CODE, status);
    if let Some(ms) = ms {
        r.attributes
            .insert(names::LLM_E2E_MS, model::AttrValue::Float(ms));
    }
    r
}

#[tokio::test]
async fn a_server_that_logs_no_request_end_has_an_error_rate_from_its_access_lines() {
    // vLLM v1: arrivals and access lines, no ends; a probe failing does not count.
    let mut records = Vec::new();
    for (i, (path, status, event)) in [
        ("/v1/chat/completions", 200, "access"),
        ("/v1/chat/completions", 200, "access"),
        ("/v1/chat/completions", 200, "access"),
        ("/v1/chat/completions", 503, "access"),
        ("/health", 500, "probe"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = call_line(
            i as u64,
            "vllm-1",
            &format!("\"POST {path} HTTP/1.1\" {status}"),
            event,
            status,
            None,
        );
        r.attributes.insert(names::URL_PATH, path);
        records.push(r);
    }
    // Its Envoy sidecar logs two of those calls again, with their durations: counted as
    // calls once, from the server's own lines, and timed by the proxy.
    for (i, ms) in [(20, 800.0), (21, 1200.0)] {
        records.push(call_line(
            i,
            "vllm-1",
            "[…] \"POST /v1/chat/completions HTTP/1.1\" 200 - via_upstream",
            "proxy_access",
            200,
            Some(ms),
        ));
    }
    // Its tokens, from its throughput lines and from a scrape of its /metrics over the
    // same stretch: one engine, counted once (the larger count).
    for (i, tokens, logged) in [(10, 1200, true), (11, 600, true), (12, 1500, false)] {
        let mut r = at(i, "vllm-1", 20, RecordKind::EngineStats, "Engine 000: …");
        r.stream = logged.then_some(model::Stream::Stdout);
        r.attributes.insert(names::LLM_EVENT, "stats");
        r.attributes
            .insert(names::LLM_GENERATED_TOKENS, tokens as i64);
        records.push(r);
    }
    let (_dir, app) = app_with_records(records);
    let (status, body) = get(&app, "/api/v1/llm/summary?from=now-10m&group_by=pod").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pod = &body["groups"][0];
    assert_eq!(pod["group"], "vllm-1", "{body}");
    assert_eq!(
        (pod["requests"].as_u64(), pod["error_rate"].as_f64()),
        (Some(0), None)
    );
    assert_eq!(
        (pod["http_responses"].as_u64(), pod["http_errors"].as_u64()),
        (Some(4), Some(1)),
        "{pod}"
    );
    assert_eq!(pod["http_error_rate"].as_f64(), Some(0.25));
    assert_eq!(
        pod["http_latency_ms"]["avg"].as_f64(),
        Some(1000.0),
        "{pod}"
    );
    assert_eq!(pod["output_tokens_per_s"].as_f64(), Some(0.0));
    let engine = pod["engine_output_tokens_per_s"].as_f64().unwrap();
    assert!(
        (engine - 1800.0 / rate_seconds(&body)).abs() < 1e-9,
        "{pod}"
    );
}

#[tokio::test]
async fn times_no_line_logs_come_from_scraped_histograms_and_logged_ones_win() {
    // vllm-1 (vLLM v1) logs no request timings; tgi-0 logs them. Both are scraped: each
    // scrape counts the interval's requests per bucket.
    type Buckets<'a> = &'a [(&'static str, f64)];
    let scrape = |n: u64, pod: &str, ttft: Buckets, queue: Buckets| {
        let mut r = at(n, pod, 30, RecordKind::EngineStats, "vllm: 3 running");
        r.attributes.insert(names::LLM_EVENT, "stats");
        for (bucket, count) in ttft.iter().chain(queue) {
            r.attributes.insert_f64(*bucket, *count);
        }
        r
    };
    let mut records = vec![
        // vllm-1: 3 first tokens in (60, 80] ms and 1 in (250, 500] ms over two scrapes.
        scrape(
            1,
            "vllm-1",
            // With their total; the queue times' total is left out (a scrape of an older
            // version kept none).
            &[("llm.ttft_bucket_80ms", 2.0), ("llm.ttft_total_ms", 140.0)],
            &[("llm.queue_bucket_300ms", 2.0)],
        ),
        scrape(
            2,
            "vllm-1",
            &[
                ("llm.ttft_bucket_80ms", 1.0),
                ("llm.ttft_bucket_500ms", 1.0),
                ("llm.ttft_total_ms", 470.0),
            ],
            &[("llm.queue_bucket_300ms", 2.0)],
        ),
        // tgi-0's scrapes say seconds; its lines say 100 ms.
        scrape(
            3,
            "tgi-0",
            &[("llm.ttft_bucket_5s", 4.0)],
            &[("llm.queue_bucket_2s", 4.0)],
        ),
    ];
    // Their counters' requests: vllm-1's 4 ended, 1 failed; tgi-0's 9, whose lines win.
    for (i, ended, failed) in [(0, 2.0, 0.0), (1, 2.0, 1.0), (2, 9.0, 3.0)] {
        let a = &mut records[i].attributes;
        a.insert_f64(names::LLM_REQUESTS_ENDED, ended);
        a.insert_f64(names::LLM_REQUESTS_FAILED, failed);
    }
    for i in 0..4 {
        let mut r = at(10 + i, "tgi-0", 20, RecordKind::Request, "request finished");
        r.attributes.insert_f64(names::LLM_TTFT_MS, 100.0);
        r.attributes.insert_f64(names::LLM_QUEUE_MS, 5.0);
        records.push(r);
    }
    let (_dir, app) = app_with_records(records);
    let (status, body) = get(&app, "/api/v1/llm/summary?from=now-10m&group_by=pod").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pod = |name: &str| {
        body["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["group"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {body}"))
    };
    let vllm = pod("vllm-1");
    assert_eq!(vllm["ttft_source"], "scraped", "{vllm}");
    let p50 = vllm["ttft_ms"]["p50"].as_f64().unwrap();
    assert!((p50 - (60.0 + 20.0 * 2.0 / 3.0)).abs() < 1e-6, "{vllm}");
    assert_eq!(vllm["ttft_ms"]["avg"].as_f64(), Some(610.0 / 4.0), "{vllm}");
    assert_eq!(vllm["queue_source"], "scraped");
    assert_eq!(vllm["queue_ms"]["avg"], Value::Null, "no total: no mean");
    assert!(
        (vllm["queue_ms"]["p50"].as_f64().unwrap() - 150.0).abs() < 1e-6,
        "{vllm}"
    );
    assert_eq!(
        vllm["latency_source"],
        Value::Null,
        "no end-to-end buckets scraped"
    );
    assert_eq!(vllm["requests_source"], "scraped", "{vllm}");
    assert_eq!(
        (&vllm["requests"], &vllm["errors"]),
        (&Value::from(4), &Value::from(1))
    );
    assert_eq!(vllm["error_rate"].as_f64(), Some(0.25));
    let rps = vllm["rps"].as_f64().unwrap();
    assert!((rps - 4.0 / rate_seconds(&body)).abs() < 1e-9, "{vllm}");
    let tgi = pod("tgi-0");
    assert_eq!(
        (&tgi["ttft_source"], &tgi["queue_source"]),
        (&Value::from("logged"), &Value::from("logged"))
    );
    assert_eq!(tgi["ttft_ms"]["avg"].as_f64(), Some(100.0), "{tgi}");
    assert_eq!(tgi["requests_source"], "logged", "{tgi}");
    assert_eq!(
        (&tgi["requests"], &tgi["errors"]),
        (&Value::from(4), &Value::from(0))
    );
}

#[tokio::test]
async fn a_server_known_only_by_its_access_lines_has_their_latency_and_rate() {
    // Ollama: one `[GIN]` line per call, with its duration; no request records.
    let mut records = Vec::new();
    for (i, ms) in [100.0, 200.0, 300.0, 4000.0].into_iter().enumerate() {
        records.push(call_line(
            i as u64,
            "ollama-0",
            "[GIN] 2025/02/10 - 11:20:29 | 200 | … | POST \"/api/chat\"",
            "access",
            200,
            Some(ms),
        ));
    }
    let (_dir, app) = app_with_records(records);
    let (status, body) = get(&app, "/api/v1/llm/summary?from=now-10m&group_by=pod").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pod = &body["groups"][0];
    assert_eq!(pod["requests"], 0, "{pod}");
    assert!(pod["latency_ms"]["avg"].is_null());
    assert_eq!(
        pod["http_latency_ms"]["avg"].as_f64(),
        Some(1150.0),
        "{pod}"
    );
    let p50 = pod["http_latency_ms"]["p50"].as_f64().unwrap_or(0.0);
    assert!((p50 - 200.0).abs() < 200.0 * 0.02, "{pod}");
    let rps = pod["http_rps"].as_f64().unwrap_or(0.0);
    assert!((rps - 4.0 / rate_seconds(&body)).abs() < 1e-9, "{pod}");
}

#[tokio::test]
async fn a_server_known_only_by_its_proxy_has_the_proxys_calls_counted() {
    // A server behind an Envoy sidecar that logs no access line of its own: its calls are
    // the sidecar's, counted and failed from its lines (one of them 503), not just timed.
    let mut records = Vec::new();
    for (i, (status, ms)) in [(200, 900.0), (503, 30_000.0), (200, 1500.0)]
        .into_iter()
        .enumerate()
    {
        records.push(call_line(
            i as u64,
            "sglang-0",
            "[…] \"POST /v1/chat/completions HTTP/1.1\" … via_upstream",
            "proxy_access",
            status,
            Some(ms),
        ));
    }
    let (_dir, app) = app_with_records(records);
    let (status, body) = get(&app, "/api/v1/llm/summary?from=now-10m&group_by=pod").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pod = &body["groups"][0];
    assert_eq!(
        (pod["http_responses"].as_u64(), pod["http_errors"].as_u64()),
        (Some(3), Some(1)),
        "{pod}"
    );
    let rps = pod["http_rps"].as_f64().unwrap_or(0.0);
    assert!((rps - 3.0 / rate_seconds(&body)).abs() < 1e-9, "{pod}");
    assert_eq!(pod["http_latency_ms"]["avg"].as_f64(), Some(10_800.0));
    let in_flight = pod["in_flight_avg"].as_f64().unwrap_or(0.0);
    assert!(
        (in_flight - 32.4 / rate_seconds(&body)).abs() < 1e-9,
        "its calls' durations: {pod}"
    );
}

#[tokio::test]
async fn the_llm_summary_gives_rates_percentiles_errors_and_load_per_model() {
    let (_dir, app) = app_with_records(llm_records());
    let (status, body) = get(&app, "/api/v1/llm/summary?from=now-10m").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["group_by"], "model");
    let groups = body["groups"].as_array().unwrap();
    let llama = groups.iter().find(|g| g["group"] == "llama3").unwrap();
    assert_eq!(llama["requests"], 3);
    assert_eq!(llama["errors"], 1);
    assert!((llama["error_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    let per_s = |n: f64| n / rate_seconds(&body);
    assert!((llama["rps"].as_f64().unwrap() - per_s(3.0)).abs() < 1e-9);
    assert!((llama["latency_ms"]["avg"].as_f64().unwrap() - 400.0).abs() < 1e-9);
    let p50 = llama["latency_ms"]["p50"].as_f64().unwrap();
    assert!((p50 - 200.0).abs() < 5.0, "p50 {p50}");
    assert!((llama["ttft_ms"]["avg"].as_f64().unwrap() - 140.0 / 3.0).abs() < 1e-9);
    assert!((llama["output_tokens_per_s"].as_f64().unwrap() - per_s(160.0)).abs() < 1e-9);
    assert_eq!(llama["running_avg"], 6.0);
    // Little's law: three requests of 1.2 s in all, per second of the data.
    let in_flight = llama["in_flight_avg"].as_f64().unwrap_or(0.0);
    assert!((in_flight - per_s(1.2)).abs() < 1e-9, "{llama}");
    let qwen = groups.iter().find(|g| g["group"] == "qwen").unwrap();
    assert_eq!(
        (qwen["requests"].as_u64(), qwen["errors"].as_u64()),
        (Some(1), Some(0))
    );
    // Arrivals count apart from ended requests: vLLM v1 logs only arrivals.
    assert_eq!(
        (llama["received"].as_u64(), qwen["received"].as_u64()),
        (Some(3), Some(1))
    );
    assert!((llama["received_rps"].as_f64().unwrap() - per_s(3.0)).abs() < 1e-9);
    let (_, by_pod) = get(&app, "/api/v1/llm/summary?from=now-10m&group_by=pod").await;
    assert_eq!(by_pod["groups"][0]["group"], "vllm-0");
    assert_eq!(by_pod["groups"][0]["requests"], 4);
    let (status, body) = get(&app, "/api/v1/llm/summary?group_by=color").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("model, pod"));
}

#[tokio::test]
async fn readyz_reports_the_index() {
    let (_dir, app) = app_with(&[("p", "x"), ("p", "y")]);
    let (status, body) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["index"]["records"], 2);
    assert_eq!(body["index"]["splits"], 1);
}

#[tokio::test]
async fn with_a_token_the_api_and_metrics_need_it_and_probes_do_not() {
    let (dir, _) = app_with(&[("p", "x")]);
    let store = IndexStore::open_existing(dir.path()).unwrap();
    let app = router(ApiState {
        search: Arc::new(crate::LocalIndex::new(store)),
        metrics: Arc::new(crate::NoMetrics),
        status: Arc::new(crate::NoStatus),
        token: Some(Arc::from("0123456789abcdef")),
        live: None,
        instance: Arc::from("test:1"),
        peers: None,
    });
    let call = |uri: &str, token: Option<&str>| {
        let mut request = Request::get(uri);
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        app.clone().oneshot(request.body(Body::empty()).unwrap())
    };
    for uri in ["/api/v1/search?q=x", "/metrics", "/api/v1/llm/summary"] {
        let none = call(uri, None).await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(none.headers()["www-authenticate"], "Bearer");
        let wrong = call(uri, Some("0123456789abcdeX")).await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{uri}");
        let right = call(uri, Some("0123456789abcdef")).await.unwrap();
        assert_eq!(right.status(), StatusCode::OK, "{uri}");
    }
    for uri in ["/healthz", "/readyz"] {
        assert_eq!(
            call(uri, None).await.unwrap().status(),
            StatusCode::OK,
            "{uri}"
        );
    }
}

/// Checks `value` against `schema` (the subset of JSON Schema utoipa writes: `$ref`, `type`
/// with `null`, `properties`, `required`, `items`, `oneOf`, `allOf`, `additionalProperties`);
/// returns what does not fit, with its path.
fn schema_violations(doc: &Value, schema: &Value, value: &Value, path: &str) -> Vec<String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return schema_violations(doc, &doc["components"]["schemas"][name], value, path);
    }
    if let Some(parts) = schema["allOf"].as_array() {
        // A flattened struct: the value must fit every part.
        return parts
            .iter()
            .flat_map(|part| schema_violations(doc, part, value, path))
            .collect();
    }
    if let Some(options) = schema["oneOf"].as_array() {
        return match options
            .iter()
            .any(|o| schema_violations(doc, o, value, path).is_empty())
        {
            true => vec![],
            false => vec![format!("{path}: fits none of oneOf")],
        };
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let fits = |t: &str| match t {
        "null" => value.is_null(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    };
    if !types.is_empty() && !types.iter().any(|t| fits(t)) {
        return vec![format!("{path}: {value} is not {types:?}")];
    }
    let mut found = Vec::new();
    if let (Some(object), Some(properties)) = (value.as_object(), schema["properties"].as_object())
    {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                found.push(format!("{path}.{name}: required but missing"));
            }
        }
        for (name, v) in object {
            match properties.get(name) {
                Some(s) => found.extend(schema_violations(doc, s, v, &format!("{path}.{name}"))),
                None if schema["additionalProperties"] == Value::Bool(false) => {
                    found.push(format!("{path}.{name}: not in the schema"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(schema)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            found.extend(schema_violations(
                doc,
                schema,
                item,
                &format!("{path}[{i}]"),
            ));
        }
    }
    found
}

#[tokio::test]
async fn the_openapi_document_covers_every_endpoint_and_real_answers_fit_it() {
    let (_dir, app) = app_with_records(llm_records());
    let (status, doc) = get(&app, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (uri, path, code) in [
        ("/api/v1/search?q=*&limit=2", "/api/v1/search", "200"),
        ("/api/v1/search?limit=x", "/api/v1/search", "400"),
        ("/api/v1/histogram?from=now-10m", "/api/v1/histogram", "200"),
        (
            "/api/v1/requests/chatcmpl-0002",
            "/api/v1/requests/{request_id}",
            "200",
        ),
        (
            "/api/v1/requests/nope",
            "/api/v1/requests/{request_id}",
            "404",
        ),
        (
            "/api/v1/llm/summary?from=now-10m",
            "/api/v1/llm/summary",
            "200",
        ),
        ("/api/v1/incidents?from=now-1h", "/api/v1/incidents", "200"),
        ("/api/v1/pods?from=now-1h", "/api/v1/pods", "200"),
        ("/api/v1/workloads", "/api/v1/workloads", "200"),
        ("/healthz", "/healthz", "200"),
        ("/readyz", "/readyz", "200"),
    ] {
        let operation = &doc["paths"][path]["get"];
        assert!(operation.is_object(), "{path} is not documented");
        let (status, body) = get(&app, uri).await;
        assert_eq!(status.as_str(), code, "{uri}: {body}");
        let schema = &operation["responses"][code]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{path} documents no {code} body");
        let violations = schema_violations(&doc, schema, &body, "$");
        assert!(violations.is_empty(), "{uri}: {violations:#?}");
    }
    assert!(doc["paths"]["/metrics"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/tail"]["get"].is_object());
    // The check can fail: a page without hits and with a text total does not fit.
    let search = &doc["paths"]["/api/v1/search"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    let wrong = serde_json::json!({"total": "many", "limit": 1, "next_cursor": null});
    let violations = schema_violations(&doc, search, &wrong, "$");
    assert!(
        violations.iter().any(|v| v.contains("$.hits")),
        "{violations:?}"
    );
    assert!(
        violations.iter().any(|v| v.contains("$.total")),
        "{violations:?}"
    );
}

/// A workload's record as the `kube` source writes it: `kind` `name` in namespace `llm`,
/// `secs_ago`, with its replica counts, or its deletion.
fn workload_record(
    n: u64,
    kind: &str,
    name: &str,
    secs_ago: i64,
    replicas: Option<(i64, i64, i64)>,
    state: bool,
) -> Record {
    let mut r = at(n, "", secs_ago, RecordKind::K8sObject, "workload");
    r.resource = Arc::new(
        [(names::K8S_NAMESPACE_NAME, AttrValue::from("llm"))]
            .into_iter()
            .collect(),
    );
    let a = &mut r.attributes;
    a.insert(names::K8S_OBJECT_KIND, kind);
    a.insert(names::K8S_OBJECT_NAME, name);
    a.insert(names::K8S_OBJECT_UID, format!("{kind}/{name}"));
    match replicas {
        Some((desired, ready, available)) => {
            a.insert(names::K8S_REPLICAS_DESIRED, desired);
            a.insert(names::K8S_REPLICAS_READY, ready);
            a.insert(names::K8S_REPLICAS_AVAILABLE, available);
        }
        None => a.insert(names::K8S_OBJECT_DELETED, true),
    }
    if state {
        a.insert(names::K8S_OBJECT_STATE, true);
    }
    r
}

#[tokio::test]
async fn workloads_show_their_newest_replica_counts_and_deleted_ones_are_gone() {
    let records = vec![
        // vllm: its hourly state, then a scale-up not yet ready.
        workload_record(1, "Deployment", "vllm", 3000, Some((2, 2, 2)), true),
        workload_record(2, "Deployment", "vllm", 120, Some((3, 2, 2)), false),
        // Its autoscaler wants more than it has.
        workload_record(
            3,
            "HorizontalPodAutoscaler",
            "vllm",
            100,
            Some((3, 2, 8)),
            false,
        ),
        // tgi: deleted after its last state.
        workload_record(4, "StatefulSet", "tgi", 2000, Some((1, 1, 1)), true),
        workload_record(5, "StatefulSet", "tgi", 60, None, false),
        // old: nothing in the last three hours (its source stopped, or it went unseen).
        workload_record(6, "Deployment", "old", 4 * 3600, Some((1, 1, 1)), true),
        // sglang: deleted 90 s ago; an agent's hourly state, dated at the hour's start,
        // came after the deletion was asked for. The deletion wins.
        workload_record(8, "Deployment", "sglang", 90, None, false),
        workload_record(9, "Deployment", "sglang", 30, Some((2, 2, 2)), true),
        // mistral: deleted, then made again under its name (a new uid): shown.
        workload_record(10, "Deployment", "mistral", 600, None, false),
        {
            let mut again =
                workload_record(11, "Deployment", "mistral", 300, Some((1, 0, 0)), false);
            again
                .attributes
                .insert(names::K8S_OBJECT_UID, "Deployment/mistral/2");
            again
        },
        // A pod's change is not a workload.
        pod_change(7, "vllm-0", None, 30, &[]),
    ];
    let (_dir, app) = app_with_records(records);
    let (status, body) = get(&app, "/api/v1/workloads").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let shown: Vec<(String, String, i64, i64)> = body["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .map(|w| {
            (
                w["kind"].as_str().unwrap_or_default().to_string(),
                w["name"].as_str().unwrap_or_default().to_string(),
                w["desired"].as_i64().unwrap_or(-1),
                w["ready"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("Deployment".to_string(), "mistral".to_string(), 1, 0),
            ("Deployment".to_string(), "vllm".to_string(), 3, 2),
            (
                "HorizontalPodAutoscaler".to_string(),
                "vllm".to_string(),
                3,
                2
            ),
        ],
        "{body}"
    );
    assert_eq!(body["workloads"][0]["namespace"], "llm");
    let (status, body) = get(&app, "/api/v1/workloads?q=vllm").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// A pod's change record as the `kube` source writes it: about pod `pod` (uid `pod-uid`),
/// `secs_ago`, of its container `container` when given, with `attrs`.
fn pod_change(
    n: u64,
    pod: &str,
    container: Option<&str>,
    secs_ago: i64,
    attrs: &[(&'static str, model::AttrValue)],
) -> Record {
    let mut r = at(n, pod, secs_ago, RecordKind::K8sObject, "pod change");
    let mut resource: Attributes = [
        (names::K8S_NAMESPACE_NAME, AttrValue::from("llm")),
        (names::K8S_POD_NAME, AttrValue::from(pod)),
        (names::K8S_POD_UID, AttrValue::from(format!("{pod}-uid"))),
        (names::K8S_NODE_NAME, AttrValue::from("gpu-node-1")),
    ]
    .into_iter()
    .collect();
    if let Some(c) = container {
        resource.insert(names::K8S_CONTAINER_NAME, c);
    }
    r.resource = Arc::new(resource);
    r.attributes.insert(names::K8S_OBJECT_KIND, "Pod");
    for (k, v) in attrs {
        r.attributes.insert(*k, v.clone());
    }
    r
}

#[tokio::test]
async fn pods_show_their_newest_state_and_deleted_ones_are_gone() {
    use model::AttrValue as V;
    let phase = |p: &str| (names::K8S_POD_PHASE, V::from(p));
    let restarts = |n: i64| (names::K8S_CONTAINER_RESTART_COUNT, V::Int(n));
    let records = vec![
        // vllm-0: running, then OOMKilled three times and now backing off.
        pod_change(1, "vllm-0", None, 3000, &[phase("Running")]),
        pod_change(
            2,
            "vllm-0",
            Some("vllm"),
            600,
            &[
                phase("Running"),
                restarts(3),
                (
                    names::K8S_CONTAINER_LAST_TERMINATED_REASON,
                    V::from("OOMKilled"),
                ),
                (names::K8S_CONTAINER_LAST_TERMINATED_EXIT_CODE, V::Int(137)),
            ],
        ),
        pod_change(
            3,
            "vllm-0",
            Some("vllm"),
            590,
            &[
                phase("Running"),
                restarts(3),
                (
                    names::K8S_CONTAINER_WAITING_REASON,
                    V::from("CrashLoopBackOff"),
                ),
            ],
        ),
        // tgi-0: backed off once, then ran again.
        pod_change(
            4,
            "tgi-0",
            Some("tgi"),
            500,
            &[
                phase("Running"),
                restarts(1),
                (
                    names::K8S_CONTAINER_WAITING_REASON,
                    V::from("CrashLoopBackOff"),
                ),
            ],
        ),
        pod_change(
            5,
            "tgi-0",
            Some("tgi"),
            400,
            &[phase("Running"), restarts(1)],
        ),
        // old-0: replaced by a rollout.
        pod_change(6, "old-0", None, 900, &[phase("Running")]),
        pod_change(7, "old-0", None, 800, &[phase("Deleted")]),
    ];
    let (_dir, app) = app_with_records(records);
    let (status, body) = get(&app, "/api/v1/pods?from=now-2h").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pods = body["pods"].as_array().unwrap();
    let names: Vec<&str> = pods.iter().filter_map(|p| p["pod"].as_str()).collect();
    assert_eq!(
        names,
        ["tgi-0", "vllm-0"],
        "the deleted pod is gone: {body}"
    );
    let (tgi, vllm) = (&pods[0], &pods[1]);
    assert_eq!(
        (&vllm["phase"], &vllm["restarts"], &vllm["node"]),
        (&json!("Running"), &json!(3), &json!("gpu-node-1"))
    );
    assert_eq!(
        vllm["containers"],
        json!([{"name": "vllm", "restarts": 3, "waiting": "CrashLoopBackOff",
                "last_termination": "OOMKilled", "last_exit_code": 137}])
    );
    assert_eq!(
        tgi["containers"],
        json!([{"name": "tgi", "restarts": 1}]),
        "running again: no longer waiting"
    );
    let (status, _) = get(&app, "/api/v1/pods?q=oom").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_pods_hourly_state_stands_where_its_changes_left_with_retention() {
    use model::AttrValue as V;
    let phase = |p: &str| (names::K8S_POD_PHASE, V::from(p));
    let restarts = |n: i64| (names::K8S_CONTAINER_RESTART_COUNT, V::Int(n));
    let state = (names::K8S_OBJECT_STATE, V::Bool(true));
    let waiting = (
        names::K8S_CONTAINER_WAITING_REASON,
        V::from("CrashLoopBackOff"),
    );
    let records = vec![
        // sglang-0: its last changes left with retention; of those before, one said it ran
        // again. Its state of this hour tells it waits, and why its last run ended.
        pod_change(
            7,
            "sglang-0",
            Some("sglang"),
            900,
            &[phase("Running"), restarts(1)],
        ),
        pod_change(1, "sglang-0", None, 300, &[phase("Running"), state.clone()]),
        pod_change(
            2,
            "sglang-0",
            Some("sglang"),
            300,
            &[
                phase("Running"),
                state.clone(),
                restarts(2),
                waiting.clone(),
                (
                    names::K8S_CONTAINER_LAST_TERMINATED_REASON,
                    V::from("Error"),
                ),
                (names::K8S_CONTAINER_LAST_TERMINATED_EXIT_CODE, V::Int(1)),
            ],
        ),
        // llama-0: backing off long ago; its newer state says it runs and never ended.
        pod_change(
            3,
            "llama-0",
            Some("llama"),
            900,
            &[phase("Running"), restarts(1), waiting.clone()],
        ),
        pod_change(
            4,
            "llama-0",
            Some("llama"),
            100,
            &[phase("Running"), state.clone(), restarts(1)],
        ),
        // mistral-0: a change after its state is newer news.
        pod_change(
            5,
            "mistral-0",
            Some("mistral"),
            1000,
            &[phase("Running"), state, restarts(0)],
        ),
        pod_change(
            6,
            "mistral-0",
            Some("mistral"),
            100,
            &[phase("Running"), restarts(1), waiting],
        ),
    ];
    let (_dir, app) = app_with_records(records);
    let (status, body) = get(&app, "/api/v1/pods?from=now-2h").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let containers: Vec<&Value> = body["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["containers"][0])
        .collect();
    assert_eq!(
        containers,
        [
            &json!({"name": "llama", "restarts": 1}),
            &json!({"name": "mistral", "restarts": 1, "waiting": "CrashLoopBackOff"}),
            &json!({"name": "sglang", "restarts": 2, "waiting": "CrashLoopBackOff",
                "last_termination": "Error", "last_exit_code": 1}),
        ],
        "{body}"
    );
}

/// A vLLM pod that ran out of GPU memory, was OOMKilled and restarted in a loop, and a TGI
/// pod with an unrelated traceback later.
fn crash_records() -> Vec<Record> {
    let mut records = Vec::new();
    let container = |r: &mut Record, c: &str| {
        let mut resource = (*r.resource).clone();
        resource.insert(names::K8S_CONTAINER_NAME, c);
        r.resource = Arc::new(resource);
    };
    for i in 0..5 {
        let mut r = at(
            i,
            "vllm-0",
            300 - i as i64 * 20,
            RecordKind::Log,
            &format!("serving line {i}"),
        );
        container(&mut r, "vllm");
        records.push(r);
    }
    let mut oom = at(
        10,
        "vllm-0",
        190,
        RecordKind::Log,
        "Traceback (most recent call last):\n  File \"x.py\"\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB",
    );
    container(&mut oom, "vllm");
    oom.attributes.insert(names::ERROR_TYPE, "cuda_oom");
    oom.attributes
        .insert(names::EXCEPTION_TYPE, "torch.OutOfMemoryError");
    oom.attributes.insert(
        names::EXCEPTION_MESSAGE,
        "CUDA out of memory. Tried to allocate 20.00 MiB",
    );
    records.push(oom);
    for (n, secs, reason, kind, body) in [
        (
            20,
            180,
            "OOMKilling",
            "Warning",
            "Memory cgroup out of memory: Killed process 4242 (python3)",
        ),
        (
            21,
            170,
            "BackOff",
            "Warning",
            "Back-off restarting failed container vllm",
        ),
        (
            22,
            160,
            "BackOff",
            "Warning",
            "Back-off restarting failed container vllm",
        ),
        (
            23,
            100,
            "Pulled",
            "Normal",
            "Container image already present on machine",
        ),
    ] {
        let mut e = at(n, "vllm-0", secs, RecordKind::K8sEvent, body);
        e.resource = Arc::new(
            [
                (names::K8S_NAMESPACE_NAME, AttrValue::from("llm")),
                (names::K8S_POD_NAME, AttrValue::from("vllm-0")),
            ]
            .into_iter()
            .collect(),
        );
        e.attributes.insert(names::K8S_EVENT_REASON, reason);
        e.attributes.insert(names::K8S_EVENT_TYPE, kind);
        records.push(e);
    }
    let mut traceback = at(
        30,
        "tgi-0",
        50,
        RecordKind::Log,
        "Traceback (most recent call last):\nKeyError: 'x'",
    );
    traceback.attributes.insert(names::ERROR_TYPE, "traceback");
    records.push(traceback);
    records.push(at(31, "tgi-0", 40, RecordKind::Log, "request served"));
    records
}

#[tokio::test]
async fn incidents_group_a_crash_with_its_events_and_last_lines() {
    let (_dir, app) = app_with_records(crash_records());
    let (status, body) = get(&app, "/api/v1/incidents?from=now-1h").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let incidents = body["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 2, "{body:#}");
    let (tgi, vllm) = (&incidents[0], &incidents[1]);
    assert_eq!(tgi["pod"], "tgi-0", "newest first");
    assert_eq!(tgi["kind"], "traceback");
    assert!(
        tgi["summary"].as_str().unwrap().contains("KeyError"),
        "{tgi}"
    );
    assert_eq!(vllm["pod"], "vllm-0");
    assert_eq!(vllm["container"], "vllm");
    assert_eq!(vllm["kind"], "oom_killed", "the worst of what happened");
    let summary = vllm["summary"].as_str().unwrap();
    assert!(
        summary.contains("1× OOMKilling") && summary.contains("2× BackOff"),
        "{summary}"
    );
    let bodies = |key: &str| -> Vec<String> {
        vllm[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["body"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        bodies("triggers").len(),
        4,
        "the CUDA OOM, the OOMKilling, two BackOffs"
    );
    assert!(bodies("triggers")[0].contains("CUDA out of memory"));
    assert_eq!(
        bodies("events").len(),
        4,
        "every event of the pod around it, Normal too"
    );
    assert_eq!(
        bodies("last_lines"),
        (0..5)
            .map(|i| format!("serving line {i}"))
            .collect::<Vec<_>>(),
        "the container's lines before it, oldest first"
    );
    let (_, one_pod) = get(&app, "/api/v1/incidents?from=now-1h&pod=tgi-0").await;
    assert_eq!(one_pod["incidents"].as_array().unwrap().len(), 1);
    let (status, _) = get(&app, "/api/v1/incidents?q=oops").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn without_an_index_searches_say_where_to_ask_and_health_still_answers() {
    let app = router(ApiState {
        search: Arc::new(crate::NoIndex::agent()),
        token: None,
        live: None,
        metrics: Arc::new(crate::NoMetrics),
        status: Arc::new(crate::NoStatus),
        instance: Arc::from("agent:1"),
        peers: None,
    });
    for uri in [
        "/api/v1/search?q=x",
        "/api/v1/histogram?q=x",
        "/api/v1/requests/chatcmpl-1",
        "/api/v1/llm/summary",
        "/api/v1/incidents",
    ] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}: {body}");
        assert!(
            body["detail"].as_str().unwrap_or("").contains("aggregator"),
            "{uri}: {body}"
        );
    }
    let (status, body) = get(&app, "/readyz").await;
    assert_eq!((status, &body["index"]), (StatusCode::OK, &Value::Null));
    let (status, _) = get(&app, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

/// A pipeline waiting to start again after a failure.
struct Restarting;

impl crate::StatusBackend for Restarting {
    fn sources(&self) -> Vec<crate::ComponentStatus> {
        Vec::new()
    }

    fn restarts(&self) -> Option<crate::PipelineRestarts> {
        Some(crate::PipelineRestarts {
            count: 1,
            last_failure: "sink `index` failed: No space left on device".into(),
            seconds_ago: 0,
            next_try_in_s: Some(4),
        })
    }
}

#[tokio::test]
async fn a_router_slot_answers_from_the_state_it_holds_now_and_says_when_the_pipeline_is_down() {
    let state = |why: &str, status: Arc<dyn crate::StatusBackend>| ApiState {
        search: Arc::new(crate::NoIndex::because(why)),
        token: None,
        live: None,
        metrics: Arc::new(crate::NoMetrics),
        status,
        instance: Arc::from("aggregator:1"),
        peers: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let slot = crate::RouterSlot::new(state("the pipeline is starting", Arc::new(crate::NoStatus)));
    tokio::spawn(crate::serve_slot(
        listener,
        slot.clone(),
        std::future::pending(),
    ));
    let get = |uri: &'static str| crate::peer_tests::http_get(addr, uri);
    let (status, body) = get("/api/v1/search?q=x").await;
    assert_eq!(status, 503);
    assert!(
        body["detail"].as_str().unwrap_or("").contains("starting"),
        "{body}"
    );
    assert_eq!(get("/readyz").await.0, 200);

    // The run failed: the same listener answers from what replaced it.
    slot.answer(state(
        "the pipeline failed; it starts again by itself",
        Arc::new(Restarting),
    ));
    let (_, body) = get("/api/v1/search?q=x").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("starts again"),
        "{body}"
    );
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "restarting");
    assert_eq!(body["next_try_in_s"], 4);
    assert!(
        body["last_failure"]
            .as_str()
            .unwrap_or("")
            .contains("No space left")
    );
    let (_, status) = get("/api/v1/status").await;
    assert_eq!(status["restarts"]["next_try_in_s"], 4, "{status}");
    assert_eq!(get("/healthz").await.0, 200, "the process is up");
}

#[tokio::test]
async fn a_long_lived_pods_many_states_crowd_out_no_other_pod() {
    use model::AttrValue as V;
    let running = (names::K8S_POD_PHASE, V::from("Running"));
    let state = (names::K8S_OBJECT_STATE, V::Bool(true));
    // busy-0's state every minute for two weeks: more records than a pod list reads.
    let mut records: Vec<Record> = (0..21_000u64)
        .map(|m| {
            pod_change(
                100 + m,
                "busy-0",
                None,
                60 * m as i64,
                &[running.clone(), state.clone()],
            )
        })
        .collect();
    // quiet-0 changed once, three weeks ago.
    records.push(pod_change(
        1,
        "quiet-0",
        None,
        21 * 86_400,
        std::slice::from_ref(&running),
    ));
    let (_dir, app) = app_with_records(records);
    let (status, body) = get(&app, "/api/v1/pods").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["pod"].as_str())
        .collect();
    assert_eq!(names, ["busy-0", "quiet-0"], "{body}");
    assert_eq!(body["truncated"], false);
}
