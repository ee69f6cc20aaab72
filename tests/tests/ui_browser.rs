//! The web UI in real headless Chromium (through chromedriver's WebDriver protocol), against
//! the real binary running the demo (live simulated vLLM, TGI and llama.cpp pods, with a
//! CUDA out-of-memory crash): search for a request id and open its trace; open an incident;
//! the dashboard renders non-empty charts; the header shows each source's state as
//! `/api/v1/status` gives it. And the live tail of the search page, against the `local`
//! pipeline on generated pod logs: newest on top and bounded, naming the peer it cannot
//! follow, saying when the server is gone and following again once it is back; with that
//! peer away, every page says its answer is partial. And the dashboard by pod, against a
//! loopback Kubernetes API server: a crash-looping pod's state and restarts beside its
//! figures. A screenshot of each page is saved under `target/ui-screenshots/` for review.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tests::{Running, append_cri};

const SETTLE: Duration = Duration::from_secs(60);
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one browser session; both end when this is dropped.
struct Browser {
    driver: Child,
    url: String,
    agent: ureq::Agent,
}

impl Browser {
    fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (scripts/test.sh installs Debian's chromium-driver)");
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build(),
        );
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + SETTLE;
        while agent
            .get(&format!("{base}/status"))
            .call()
            .map_or(true, |r| r.status() != 200)
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut browser = Browser {
            driver,
            url: base,
            agent,
        };
        let session = browser.call(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless", "--no-sandbox", "--disable-gpu",
                             "--disable-background-networking", "--disable-component-update",
                             "--disable-dev-shm-usage", "--window-size=1400,1000"]
                }
            }}}),
        );
        let id = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"))
            .to_string();
        browser.url = format!("{}/session/{id}", browser.url);
        // Finding an element waits for it (the pages fetch their data after loading).
        browser.call("POST", "/timeouts", json!({"implicit": 20_000}));
        browser
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.url);
        let response = match method {
            "GET" => self.agent.get(&url).call(),
            _ => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body.to_string()),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .expect("a WebDriver answer");
        let value: Value = serde_json::from_str(&text).expect("WebDriver JSON");
        let value = value["value"].clone();
        if value.get("error").is_some() {
            panic!("{method} {path}: {value}");
        }
        value
    }

    fn open(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    fn find(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        found[ELEMENT].as_str().expect("an element id").to_string()
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.call(
            "POST",
            "/elements",
            json!({"using": "css selector", "value": css}),
        );
        found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(str::to_string))
            .collect()
    }

    fn text(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn click(&self, element: &str) {
        self.call("POST", &format!("/element/{element}/click"), json!({}));
    }

    fn type_into(&self, element: &str, text: &str) {
        self.call("POST", &format!("/element/{element}/clear"), json!({}));
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        );
    }

    fn script(&self, body: &str) -> Value {
        self.call("POST", "/execute/sync", json!({"script": body, "args": []}))
    }

    /// Waits until `script` returns true.
    fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + SETTLE;
        while self.script(script) != Value::Bool(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.call("GET", "/screenshot", Value::Null);
        let bytes = decode_base64(png.as_str().expect("base64 PNG"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &bytes).expect("write the screenshot");
        assert!(bytes.starts_with(b"\x89PNG"), "{name}: not a PNG");
        println!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.url).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (a screenshot's PNG): small enough not to need a crate.
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// `target/ui-screenshots` of this workspace.
fn screenshot_dir() -> PathBuf {
    tests::binary()
        .parent()
        .and_then(|p| p.parent())
        .map(|target| target.join("ui-screenshots"))
        .expect("the target directory")
}

#[test]
fn the_ui_finds_a_request_explains_a_crash_and_charts_the_llm_figures() {
    let demo_started = Instant::now();
    let (demo, _) = Running::spawn(&["demo".into(), "--listen".into(), "127.0.0.1:0".into()]);
    // The demo's first requests and its CUDA OOM crash, through the API.
    let request = demo.wait_for(
        "/api/v1/search?q=%22Received%20request%22%20chatcmpl*&limit=1",
        SETTLE,
        |b| b["total"].as_u64().unwrap_or(0) > 0,
    );
    let id = request["hits"][0]["attributes"]["llm.request_id"]
        .as_str()
        .expect("a vLLM request id")
        .to_string();
    demo.wait_for("/api/v1/incidents", SETTLE, |b| {
        b["incidents"].as_array().is_some_and(|i| !i.is_empty())
    });

    let browser = Browser::start();
    // Search for the request id, then open its trace.
    browser.open(&format!("{}/#/search", demo.base_url));
    let q = browser.find("#q");
    browser.type_into(q.as_str(), &id);
    browser.click(&browser.find("#search-form button[type=submit]"));
    let link = browser.find(&format!("a.trace-link[href='#/request/{id}']"));
    browser.wait_until(
        "hits with the id highlighted",
        "return document.querySelectorAll('#results tr.hit mark').length > 0",
    );
    browser.screenshot("search");
    // The header: every source (and Kafka sink) of `/api/v1/status`, in its state.
    let (_, status) = demo.get("/api/v1/status");
    let expected: Vec<String> = ["sources", "sinks"]
        .iter()
        .flat_map(|list| status[list].as_array().cloned().unwrap_or_default())
        .map(|c| {
            format!(
                "{} {}",
                c["id"].as_str().unwrap_or_default(),
                c["state"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert!(!expected.is_empty(), "{status}");
    browser.wait_until(
        "the header's sources",
        "return document.querySelectorAll('#health .component').length > 0",
    );
    let shown = browser.script(
        "return [...document.querySelectorAll('#health .component')].map((e) => e.dataset.id + ' ' + e.classList[1])",
    );
    let shown: Vec<String> = shown
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert_eq!(shown, expected, "the header shows each source's state");
    browser.click(&link);
    let title = browser.find("#request-title");
    assert!(browser.text(&title).contains(&id));
    browser.wait_until(
        "the timeline",
        "return document.querySelectorAll('#timeline tr').length >= 1",
    );
    let summary = browser.text(&browser.find("#request-summary"));
    assert!(summary.contains("vllm"), "{summary}");
    // Its sidecar's line of the call, by the x-request-id vLLM made the id of.
    demo.wait_for(&format!("/api/v1/requests/{id}"), SETTLE, |trace| {
        trace["containers"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c.as_str().is_some_and(|c| c.ends_with("/istio-proxy")))
        })
    });
    // Seen again, the call's status answers for the end vLLM v1 does not log.
    browser.open(&format!("{}/#/incidents", demo.base_url));
    browser.open(&format!("{}/#/request/{id}", demo.base_url));
    browser.wait_until(
        "the summary with the sidecar's status",
        "return document.getElementById('request-summary')?.textContent.includes('answered (HTTP ')",
    );
    browser.screenshot("request");

    // A llama.cpp task number names a request only in one run of its pod: its link asks
    // the trace within the pod and the hour around the line, and the trace holds that
    // task's lines only, not every line that says "73 tokens" or 10.42.0.73.
    demo.wait_for("/api/v1/search?q=launch_slot_&limit=1", SETTLE, |b| {
        b["total"].as_u64().unwrap_or(0) > 0
    });
    browser.open(&format!("{}/#/search?q=launch_slot_", demo.base_url));
    let link = browser.find("a.trace-link[href*='pod=llamacpp-phi3-0'][href*='from=']");
    let task = browser.text(&link).trim_start_matches("trace ").to_string();
    browser.click(&link);
    browser.wait_until(
        "the task's timeline",
        "return document.querySelectorAll('#timeline tr').length >= 1",
    );
    let scope = browser.text(&browser.find("#request-scope"));
    assert!(scope.contains("pod llamacpp-phi3-0"), "{scope}");
    let bodies = browser.script(
        "return [...document.querySelectorAll('#timeline td.body')].map((e) => e.textContent)",
    );
    for body in bodies.as_array().into_iter().flatten() {
        let body = body.as_str().unwrap_or_default();
        assert!(
            body.contains(&format!("task {task} |")) || body.contains(&format!("request {task} ")),
            "task {task}'s trace holds another line: {body}"
        );
    }

    // Open the incident of the crash.
    browser.open(&format!("{}/#/incidents?range=24h", demo.base_url));
    let incident = browser.find(".incident");
    let text = browser.text(&incident);
    assert!(
        text.contains("cuda_oom") && text.contains("CUDA out of memory"),
        "{text}"
    );
    browser.click(&browser.find(".incident details summary"));
    browser.wait_until(
        "the incident's triggers",
        "return document.querySelector('.incident details').open",
    );
    assert!(browser.text(&incident).contains("Triggers"));
    browser.screenshot("incidents");

    // The dashboard: a row per pod with requests, and charts with data.
    browser.open(&format!("{}/#/dashboard?range=15m", demo.base_url));
    browser.find("#summary tr.group");
    browser.wait_until(
        "charts with data",
        "return document.querySelectorAll('.chart canvas').length >= 6 && document.querySelectorAll('.chart[data-nonzero=true]').length >= 3",
    );
    let rows = browser.find_all("#summary tr.group");
    assert!(rows.len() >= 3, "a row per pod");
    // The demo's vLLM v1 logs no request end: the requests chart counts its requests by its
    // /metrics (per slice of the range), not by logged ends alone.
    browser.wait_until(
        "requests charted with the scraped server's",
        "return [...document.querySelectorAll('.chart')].some((c) => c.querySelector('h4').textContent.startsWith('requests/s') && c.querySelector('h4').textContent.includes('/metrics') && c.dataset.nonzero === 'true')",
    );
    // The demo has no GPU: its GPU chart says why it is empty instead of looking broken,
    // and the charts with figures say nothing of the kind.
    let empty = browser.script(
        "return [...document.querySelectorAll('.chart')].filter((c) => c.querySelector('.chart-empty')).map((c) => c.querySelector('h4').textContent + ': ' + c.querySelector('.chart-empty').textContent)",
    );
    assert_eq!(
        empty,
        json!([
            "GPU utilization % (avg): no GPU figures in this range: no NVML or dcgm-exporter source gave any (see the header)"
        ])
    );
    // The demo began a minute or so ago: its rates are per second of that, not of the 15
    // minutes asked (which made them read a fifteenth of the load), and the page says so.
    let note = browser.text(&browser.find("#rates-note"));
    assert!(note.contains("the index holds of this range"), "{note}");
    // The charts cover that part too: not 15 minutes with the data in the last one.
    assert!(note.contains("the charts show that part"), "{note}");
    let charts_from = browser.script("return document.getElementById('charts').dataset.from");
    let charts_from = charts_from.as_str().unwrap_or_default();
    let (_, summary_of_page) = demo.get("/api/v1/llm/summary?from=now-15m");
    let data_from = summary_of_page["data_from"].as_str().unwrap_or_default();
    assert!(
        !charts_from.is_empty() && charts_from[..19] == data_from[..19],
        "the charts begin where the data does: {charts_from} against {data_from}"
    );
    let llama = browser.script(
        "const row = [...document.querySelectorAll('#summary tr.group')].find((r) => r.cells[0].textContent.startsWith('llamacpp')); return row ? [row.querySelector('td.requests').textContent, row.querySelector('td.rps').textContent, row.querySelector('td.running').textContent] : null",
    );
    let cell = |i: usize| {
        llama[i]
            .as_str()
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(cell(0) > 0.0, "the llama.cpp pod's requests: {llama}");
    let seconds = cell(0) / cell(1).max(1e-3);
    assert!(
        seconds < demo_started.elapsed().as_secs_f64() + 5.0,
        "the llama.cpp pod's requests / rps = {seconds} s: {llama}"
    );
    // llama.cpp logs no count of running requests: its concurrency is the time its tasks
    // took per second (Little's law), and the cell says so.
    let running = llama[2].as_str().unwrap_or_default();
    let in_flight = running
        .strip_suffix(" (in flight)")
        .and_then(|n| n.parse::<f64>().ok());
    assert!(
        in_flight.is_some_and(|n| n > 0.0),
        "the llama.cpp pod's running: {llama}"
    );
    // The simulated vLLM logs arrivals and no ends, as vLLM v1 does: its load shows as
    // arrivals.
    let vllm_cell = |class: &str| {
        let text = browser.script(&format!(
            "const row = [...document.querySelectorAll('#summary tr.group')].find((r) => r.cells[0].textContent.startsWith('vllm')); return row ? row.querySelector('td.{class}').textContent : null"
        ));
        text.as_str().unwrap_or_default().to_string()
    };
    // The figure of a cell that says where it comes from (`12.5 (engine)`).
    let figure = |text: &str, source: &str| -> f64 {
        text.strip_suffix(source)
            .and_then(|t| t.parse().ok())
            .unwrap_or(0.0)
    };
    let arrivals = vllm_cell("arrivals");
    assert!(
        figure(&arrivals, "") > 0.0,
        "the vLLM pod's arrivals/s: {arrivals}"
    );
    // … its ended requests, which it logs none of, from its /metrics counters …
    let requests = vllm_cell("requests");
    assert!(
        figure(&requests, " (scraped)") >= 1.0,
        "the vLLM pod's requests: {requests}"
    );
    assert!(
        figure(&vllm_cell("rps"), " (scraped)") > 0.0,
        "the vLLM pod's rps: {}",
        vllm_cell("rps")
    );
    // … but its error rate from its access lines, what its clients saw fail.
    let rate = vllm_cell("error-rate");
    assert!(
        rate.ends_with("% (HTTP 5xx)"),
        "the vLLM pod's error rate: {rate}"
    );
    // … and its tokens/s from its engine's throughput lines.
    let tokens = vllm_cell("tokens");
    assert!(
        figure(&tokens, " (engine)") > 0.0,
        "the vLLM pod's tokens/s: {tokens}"
    );
    // … and its latency from its Istio sidecar's access lines.
    let latency = vllm_cell("latency-p95");
    assert!(
        (300.0..=12_000.0 * 1.01).contains(&figure(&latency, " (HTTP)")),
        "the vLLM pod's p95 latency: {latency}"
    );
    browser.screenshot("dashboard");
}

/// The `local` pipeline on `logs`, listening on `port`, with one peer that is not there.
fn start_with_dead_peer(
    logs: &std::path::Path,
    data: &std::path::Path,
    port: u16,
    dead: u16,
) -> Running {
    let mut args = tests::run_args(logs, data, port);
    args.extend(["--peers".into(), format!("127.0.0.1:{dead}").into()]);
    Running::spawn(&args).0
}

/// The texts of the live rows, top first.
fn live_rows(browser: &Browser) -> Vec<String> {
    browser
        .script("return [...document.querySelectorAll('#results tr.live td.body')].map((e) => e.textContent)")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_live_tail_keeps_the_newest_lines_names_the_peer_it_misses_and_follows_again_after_a_restart()
{
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let (logs, data) = (tmp.path().join("pods"), tmp.path().join("data"));
    std::fs::create_dir_all(&logs).expect("the logs directory");
    let (port, dead) = (tests::free_port(), tests::free_port());
    let app = start_with_dead_peer(&logs, &data, port, dead);
    let browser = Browser::start();
    browser.open(&format!(
        "{}/#/search?live=1&range=15m&q=tailmark",
        app.base_url
    ));
    browser.wait_until(
        "the tail to open",
        "return document.getElementById('tail-state')?.className === 'live'",
    );
    browser.wait_until(
        "the peer that is not there, named",
        &format!("return !!document.querySelector(\"#tail-peers .peer.unavailable[data-peer='127.0.0.1:{dead}']\")"),
    );
    // The search itself is partial, and says so.
    browser.find(&format!("#partial .peer[data-peer='127.0.0.1:{dead}']"));

    // More lines than the tail keeps: the newest 500 stay, newest on top.
    let lines: Vec<String> = (0..600).map(|i| format!("tailmark line {i:04}")).collect();
    let written: Vec<(&str, &str)> = lines.iter().map(|l| ("stdout", l.as_str())).collect();
    append_cri(&logs, "llm-serving", "vllm-0", "vllm", &written);
    browser.wait_until(
        "the newest line on top",
        "const top = document.querySelector('#results tr.live td.body'); return !!top && top.textContent === 'tailmark line 0599'",
    );
    let expected: Vec<String> = lines.iter().rev().take(500).cloned().collect();
    assert_eq!(
        live_rows(&browser),
        expected,
        "the newest 500 lines, newest first"
    );
    let state = browser.text(&browser.find("#tail-state"));
    assert!(
        state.contains("600 new") && state.contains("newest 500"),
        "{state}"
    );
    browser.screenshot("tail");

    // Committed (so the restart does not read them again), then the server dies.
    app.wait_for("/api/v1/search?q=tailmark&from=now-15m", SETTLE, |b| {
        b["total"].as_u64() == Some(600)
    });
    app.kill();
    browser.wait_until(
        "the tail to say it is lost",
        "return document.getElementById('tail-state')?.className === 'lost'",
    );
    assert!(browser.text(&browser.find("#tail-state")).contains("lost"));

    // Back on the same address: the tail follows again, and says what it may have missed.
    let app = start_with_dead_peer(&logs, &data, port, dead);
    browser.wait_until(
        "the tail to follow again",
        "const s = document.getElementById('tail-state'); return s?.className === 'live' && s.textContent.includes('again')",
    );
    append_cri(
        &logs,
        "llm-serving",
        "vllm-0",
        "vllm",
        &[("stdout", "tailmark line 0600")],
    );
    browser.wait_until(
        "the line written after the restart, on top",
        "return document.querySelector('#results tr.live td.body')?.textContent === 'tailmark line 0600'",
    );
    let rows = live_rows(&browser);
    assert_eq!(rows.len(), 500, "still bounded");
    assert_eq!(
        rows[1], "tailmark line 0599",
        "nothing read twice after the restart"
    );

    // The other pages say their answers are partial too.
    for page in ["incidents?range=15m", "dashboard?range=15m"] {
        browser.open(&format!("{}/#/{page}", app.base_url));
        let note =
            browser.text(&browser.find(&format!("#partial .peer[data-peer='127.0.0.1:{dead}']")));
        assert_eq!(note, format!("127.0.0.1:{dead}"), "{page}");
    }
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_crash_looping_pods_state_beside_its_figures() {
    use tests::fake_kube::{Answer, FakeApi, Script, fixture, line, list, with_version};
    // The fixture's vLLM pod, then OOMKilled once and backing off (a loopback API server);
    // and its replica, crash-looping since before it logged anything.
    let pods = fixture("k8s-pods.json");
    let (pod, mut replica) = (pods[0].clone(), pods[1].clone());
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let (name, namespace, uid) = (
        text(&pod["metadata"]["name"]),
        text(&pod["metadata"]["namespace"]),
        text(&pod["metadata"]["uid"]),
    );
    let now = format!("{}Z", &tests::cri_now()[..19]);
    let mut crashing = with_version(pod.clone(), 919_400);
    let status = &mut crashing["status"]["containerStatuses"][0];
    status["restartCount"] = json!(1);
    status["state"] = json!({"waiting": {"reason": "CrashLoopBackOff"}});
    status["lastState"] = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled",
        "startedAt": now, "finishedAt": now}});
    // Its last run ended just now (a change is dated by the pod's own times).
    replica["status"]["containerStatuses"][0]["lastState"] = json!({"terminated":
        {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}});
    let mut script = Script::default();
    script.answers.insert(
        "/api/v1/pods",
        std::collections::VecDeque::from([
            Answer::List(list("PodList", "919377", vec![pod, replica.clone()])),
            Answer::Watch {
                lines: vec![line("MODIFIED", &crashing)],
                close: false,
            },
        ]),
    );
    // Its Deployment wants two replicas and has one ready; twelve others have all theirs.
    let deployment = |name: &str, wanted: i64, ready: i64| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": &namespace, "uid": format!("d-{name}"),
                "resourceVersion": "7", "creationTimestamp": now},
            "spec": {"replicas": wanted, "selector": {}, "template": {}},
            "status": {"readyReplicas": ready, "availableReplicas": ready}})
    };
    let mut deployments = vec![deployment("vllm-llama3", 2, 1)];
    deployments.extend((0..12).map(|i| deployment(&format!("web-{i}"), 1, 1)));
    script.answers.insert(
        "/apis/apps/v1/deployments",
        std::collections::VecDeque::from([
            Answer::List(list("DeploymentList", "7", deployments)),
            Answer::Watch {
                lines: vec![],
                close: false,
            },
        ]),
    );
    let api = FakeApi::start(script).await;
    let url = api.url.clone();
    tokio::task::spawn_blocking(move || {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let (logs, data) = (tmp.path().join("pods"), tmp.path().join("data"));
        // Its engine took requests before it died: a row of figures for the pod.
        tests::append_cri(
            &logs,
            &namespace,
            &name,
            "vllm",
            &[(
                "stdout",
                "INFO 03-04 09:14:21 [logger.py:39] Received request cmpl-1: prompt: None.",
            )],
        );
        // `append_cri` names the pod directory `<ns>_<pod>_uid-<pod>`; the kubelet's has the
        // pod's uid, which is how records find their pod's metadata.
        let dir = |u: &str| logs.join(format!("{namespace}_{name}_{u}"));
        std::fs::rename(dir(&format!("uid-{name}")), dir(&uid)).expect("the kubelet's name");
        // An Ollama pod beside it, known only by its access lines: its latency is theirs.
        let gin = |status: u16, took: &str| {
            format!("[GIN] 2025/02/10 - 11:20:29 | {status} | {took} |       10.42.0.7 | POST     \"/api/chat\"")
        };
        tests::append_cri(
            &logs,
            &namespace,
            "ollama-0",
            "ollama",
            &[
                ("stdout", &gin(200, "1.5s")),
                ("stdout", &gin(200, "2.5s")),
                ("stdout", &gin(500, "35.684791792s")),
            ],
        );
        let app = Running::start(&logs, &data, &["--kube-api", &url]);
        app.wait_for("/api/v1/pods", SETTLE, |b| {
            b["pods"].as_array().is_some_and(|p| p.len() == 2)
        });
        app.wait_for("/api/v1/workloads", SETTLE, |b| {
            b["workloads"].as_array().is_some_and(|w| w.len() == 13)
        });
        app.wait_for(
            "/api/v1/llm/summary?from=now-15m&group_by=pod",
            SETTLE,
            |b| {
                b["groups"].as_array().is_some_and(|g| {
                    g.iter().any(|g| g["group"] == name.as_str())
                        && g.iter().any(|g| g["http_responses"] == 3)
                })
            },
        );
        let browser = Browser::start();
        browser.open(&format!("{}/#/dashboard?range=15m", app.base_url));
        let row = format!(
            "[...document.querySelectorAll('#summary tr.group')].find((r) => r.cells[0].textContent === '{name}')"
        );
        browser.wait_until(
            "the pod's row with its state",
            &format!("const row = {row}; return !!row && row.querySelector('td.pod-state').textContent === 'CrashLoopBackOff'"),
        );
        let cells = browser.script(&format!(
            "const row = {row}; const s = row.querySelector('td.pod-state'); return [s.className, s.title, row.querySelector('td.restarts').textContent]"
        ));
        assert_eq!(
            cells,
            json!([
                "pod-state warn",
                "last run of vllm ended: OOMKilled, exit code 137",
                "1"
            ])
        );
        // The replica has no figures, and a row all the same: it is the one in trouble.
        let replica = text(&replica["metadata"]["name"]);
        let row = format!(
            "[...document.querySelectorAll('#summary tr.troubled')].find((r) => r.cells[0].textContent === '{replica}')"
        );
        let cells = browser.script(&format!(
            "const row = {row}; return row ? [row.querySelector('td.pod-state').textContent, row.querySelector('td.restarts').textContent, row.cells.length] : null"
        ));
        let columns = browser.script("return document.querySelector('#summary tr').cells.length");
        assert_eq!(cells, json!(["CrashLoopBackOff", "6", columns]));
        // Ollama's row: its calls and their latency, from its access lines.
        let ollama = browser.script(
            "const row = [...document.querySelectorAll('#summary tr.group')].find((r) => r.cells[0].textContent === 'ollama-0'); return row ? [row.querySelector('td.latency-p50').textContent, row.querySelector('td.rps').textContent, row.querySelector('td.requests').textContent] : null",
        );
        let p50 = ollama[0].as_str().and_then(|t| t.strip_suffix(" (HTTP)"));
        let p50: f64 = p50.and_then(|t| t.parse().ok()).unwrap_or(0.0);
        assert!((p50 - 2500.0).abs() <= 2500.0 * 0.02, "Ollama's p50: {ollama}");
        assert!(
            ollama[1].as_str().is_some_and(|t| t.ends_with(" (HTTP)")),
            "Ollama's calls/s: {ollama}"
        );
        assert_eq!(ollama[2], "3 (HTTP)", "Ollama's calls");
        // The Deployment short of what it wants, in warning colour.
        let replicas = browser.script(
            "const w = document.querySelector('#workloads .workload[data-name=\"vllm-llama3\"]'); return w ? [w.textContent, w.className] : null",
        );
        assert_eq!(
            replicas,
            json!(["deployment vllm-llama3: 1/2 ready", "workload warn"])
        );
        // The healthy many are counted, not listed.
        let line = browser.text(&browser.find("#workloads"));
        assert!(
            line.ends_with("12 more with every replica ready") && !line.contains("web-"),
            "{line}"
        );
        browser.screenshot("dashboard-pods");
    })
    .await
    .expect("the browser checks");
}

#[test]
fn while_a_full_disk_keeps_the_pipeline_from_starting_again_the_ui_says_it_is_down_and_why() {
    if !tests::tmpfs::is_root() {
        eprintln!("not run: mounting a tmpfs as the data disk needs root (CI runs as root)");
        return;
    }
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let logs = tmp.path().join("pods");
    // Room for the empty index and a commit or two, not for these lines.
    let Some(disk) = tests::tmpfs::Tmpfs::mount(&tmp.path().join("data"), "2m") else {
        return;
    };
    // Ids that do not compress (each a term of its own): more than the disk holds.
    let mut rng = tests::workload::Rng(0x5eed);
    let lines: Vec<String> = (0..40_000)
        .map(|i| {
            let ids: Vec<String> = (0..4).map(|_| format!("{:016x}", rng.next_u64())).collect();
            format!("INFO request {i:06} served, trace {}", ids.join(" "))
        })
        .collect();
    let written: Vec<(&str, &str)> = lines.iter().map(|l| ("stdout", l.as_str())).collect();
    std::fs::create_dir_all(&logs).expect("the logs directory");
    let port = tests::free_port();
    let app = Running::spawn(&tests::run_args(&logs, &disk.0, port)).0;
    // Written once it runs (lines older than its first start are not read).
    append_cri(&logs, "llm-serving", "vllm-0", "vllm", &written);
    // The API outlives the failed run, and says it waits to start again.
    app.wait_until("the pipeline to wait to start again", SETTLE, || {
        app.try_get("/api/v1/status")
            .is_some_and(|(_, status)| status["restarts"]["next_try_in_s"].is_u64())
    });
    let browser = Browser::start();
    browser.open(&format!("{}/#/search?q=served&range=15m", app.base_url));
    browser.wait_until(
        "the header to say the pipeline is down",
        "return !!document.querySelector('#health [data-id=restarts]')?.textContent.startsWith('pipeline down, starts again in')",
    );
    let why = browser.script("return document.querySelector('#health [data-id=restarts]').title");
    assert!(
        why.as_str()
            .is_some_and(|w| w.contains("No space left on device") || w.contains("MiB free")),
        "the failure on hover: {why}"
    );
    // The search says why it has no answer, rather than failing to connect.
    let error = browser.text(&browser.find("#status .error"));
    assert!(error.contains("starts again by itself"), "{error}");
    browser.screenshot("pipeline-down");

    // Space freed: it runs again, and the header, refreshed every 2 s meanwhile, says so.
    disk.resize("256m");
    browser.wait_until(
        "the header to say the pipeline restarted",
        "return !!document.querySelector('#health [data-id=restarts]')?.textContent.startsWith('pipeline restarted')",
    );
    browser.find("#health [data-id=pod_logs]");
    drop(app);
}
