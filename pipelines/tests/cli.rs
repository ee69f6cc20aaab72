//! The command line as a user meets it: every mistake ends in one clear message and a
//! non-zero exit, never a panic or a backtrace.

use std::path::{Path, PathBuf};

/// The binary with `args` and `stdin` via the black-box helpers: (exit code, stdout, stderr).
fn infersight(args: &[&str], stdin: &str) -> (i32, String, String) {
    tests::run_cli(args, stdin)
}

fn assert_one_clear_error(code: i32, stderr: &str, needles: &[&str]) {
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.starts_with("infersight: error: "), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "missing {n:?} in:\n{stderr}");
    }
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(bad), "{stderr}");
    }
}

fn corpus() -> Vec<serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/lines.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn parse_prints_the_stats_attributes_of_both_vllm_formats() {
    for (marker, expect_prefix_hit) in [("Engine 000:", true), ("metrics.py", false)] {
        let line = corpus()
            .into_iter()
            .find(|l| {
                l["server"] == "vllm"
                    && l["kind"] == "stats"
                    && l["line"].as_str().unwrap().contains(marker)
            })
            .unwrap();
        let (code, out, err) =
            infersight(&["parse"], &format!("{}\n", line["line"].as_str().unwrap()));
        assert_eq!(code, 0, "{err}");
        let records: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), 1, "{out}");
        let attrs = &records[0]["attributes"];
        for (key, want) in line["contract"].as_object().unwrap() {
            if key == "severity_text" {
                assert_eq!(&records[0]["severity_text"], want);
            } else {
                let got = attrs[key].as_f64().unwrap_or(f64::NAN);
                assert!(
                    (got - want.as_f64().unwrap()).abs() < 1e-9,
                    "{key}: {got} vs {want}"
                );
            }
        }
        assert_eq!(
            attrs.get("llm.prefix_cache_hit_pct").is_some(),
            expect_prefix_hit
        );
        assert_eq!(records[0]["kind"], "engine_stats");
    }
}

#[test]
fn parse_reads_cri_framing_and_keeps_unknown_lines() {
    let input = "2025-03-04T09:20:01.1Z stdout P first half \n2025-03-04T09:20:01.2Z stdout F second half\nnot cri\n";
    let (code, out, _) = infersight(&["parse", "--format", "cri"], input);
    assert_eq!(code, 0);
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["body"], "first half second half");
    assert_eq!(records[0]["timestamp"], "2025-03-04T09:20:01.100000000Z");
    assert_eq!(records[1]["body"], "not cri");
    assert!(records[1]["attributes"]["log.decode_error"].is_string());
    let (code, _, err) = infersight(&["parse", "--server", "mystery"], "");
    assert_one_clear_error(code, &err, &["--server mystery", "vllm", "sglang"]);
    // A named server marks every line, even one no parser recognises.
    let (code, out, _) = infersight(&["parse", "--server", "sglang"], "plain line\n");
    assert_eq!(code, 0);
    let record: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(record["attributes"]["llm.server"], "sglang");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn validate_accepts_a_good_config_and_names_file_key_and_hint_for_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.toml",
        "[sources.logs]\ntype = \"files\"\n[transforms.p]\ntype = \"inference_logs\"\ninputs = [\"logs\"]\n[sinks.i]\ntype = \"index\"\ninputs = [\"p\"]\n",
    );
    let (code, out, err) = infersight(&["validate", "--config", good.to_str().unwrap()], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("valid (1 source, 1 transform, 1 sink)"),
        "{out}"
    );

    let bad = write(
        dir.path(),
        "bad.toml",
        "[sources.logs]\ntype = \"files\"\npoll_interval_ms = 5\n[sinks.i]\ntype = \"index\"\ninputs = [\"parse\"]\n",
    );
    let (code, _, err) = infersight(&["validate", "--config", bad.to_str().unwrap()], "");
    assert_one_clear_error(
        code,
        &err,
        &[
            "bad.toml",
            "3 problems",
            "sources.logs.poll_interval_ms",
            "sinks.i.inputs",
            "sources.logs: nothing reads its output",
            "hint: ",
        ],
    );
    let (code, _, err) = infersight(&["validate", "--config", "/no/such/file.toml"], "");
    assert_one_clear_error(code, &err, &["/no/such/file.toml"]);
}

#[test]
fn run_refuses_an_unreadable_logs_dir_and_a_busy_port_with_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, _, err) = infersight(
        &[
            "run",
            "--logs-dir",
            "/no/such/pods",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        "",
    );
    assert_one_clear_error(code, &err, &["/no/such/pods", "--logs-dir"]);

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().to_string();
    let logs = dir.path().join("pods");
    std::fs::create_dir_all(&logs).unwrap();
    let (code, _, err) = infersight(
        &[
            "run",
            "--logs-dir",
            logs.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &port,
        ],
        "",
    );
    assert_one_clear_error(code, &err, &[&port, "in use", "--listen"]);

    let (code, _, err) = infersight(&["run", "--preset", "aggregator"], "");
    // It serves beyond this machine: without a token it says how to give one.
    assert_one_clear_error(code, &err, &["api.token", "--api-token"]);
}

#[test]
fn search_without_an_index_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = infersight(
        &["search", "kv", "--data-dir", dir.path().to_str().unwrap()],
        "",
    );
    assert_one_clear_error(code, &err, &["no index", "infersight run"]);
}

#[test]
fn parse_reads_docker_json_file_framing() {
    let input = concat!(
        r#"{"log":"part one, ","stream":"stdout","time":"2025-03-04T09:20:01.000104213Z"}"#,
        "\n",
        r#"{"log":"part two\n","stream":"stdout","time":"2025-03-04T09:20:01.000104214Z"}"#,
        "\n{\"log\": broken\n",
    );
    let (code, out, _) = infersight(&["parse", "--format", "docker"], input);
    assert_eq!(code, 0);
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{out}");
    assert_eq!(records[0]["body"], "part one, part two");
    assert_eq!(records[0]["stream"], "stdout");
    assert_eq!(records[0]["timestamp"], "2025-03-04T09:20:01.000104213Z");
    assert!(records[1]["attributes"]["log.decode_error"].is_string());
}

#[test]
fn parse_makes_one_record_of_each_corpus_traceback_group() {
    // The groups whose lines are a whole traceback with the message that logged it.
    for group in ["tgi-1661-tb", "vllm-2281-tb", "vllm-club3090-16-tb"] {
        let lines: Vec<String> = corpus()
            .into_iter()
            .filter(|l| l["group"] == group)
            .map(|l| l["line"].as_str().unwrap().to_string())
            .collect();
        // Skip what precedes the logged error (an access line, an unrelated engine error).
        let start = lines
            .iter()
            .position(|l| l.contains("Traceback"))
            .expect("a traceback head")
            - 1;
        let input: String = lines[start..].iter().map(|l| format!("{l}\n")).collect();
        let (code, out, err) = infersight(&["parse"], &input);
        assert_eq!(code, 0, "{err}");
        let records: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), 1, "{group}: {out}");
        assert_eq!(
            records[0]["attributes"]["log.lines"],
            (lines.len() - start) as i64,
            "{group}"
        );
        assert_eq!(
            records[0]["attributes"]["error.type"], "traceback",
            "{group}"
        );
    }
}

#[test]
fn search_request_prints_a_requests_records_from_every_pod_oldest_first() {
    use model::{AttrValue, Attributes, Batch, Record, RecordId, Timestamp, names};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store = indexer::IndexStore::open_or_create(&dir.path().join("index")).unwrap();
    let mut sink = store.sink(indexer::SinkOptions::default()).unwrap();
    let line = |pod: &str, secs: i64, body: &str, id: Option<&str>| {
        let resource: Attributes = [(names::K8S_POD_NAME, AttrValue::from(pod))]
            .into_iter()
            .collect();
        let ts = Timestamp::from_unix_nanos(1_795_000_000_000_000_000 + secs * 1_000_000_000);
        let mut r = Record::log(
            RecordId::from_source(body.as_bytes(), 0),
            ts,
            ts,
            Arc::new(resource),
            body.to_string(),
        );
        if let Some(id) = id {
            r.attributes.insert(names::LLM_REQUEST_ID, id.to_string());
        }
        r
    };
    sink.add(Batch::new(vec![
        line("vllm-0", 5, "Finished request cmpl-7.", Some("cmpl-7")),
        line("router-0", 1, "routing cmpl-7 to vllm-0", None),
        line(
            "vllm-0",
            2,
            "Received request cmpl-7: params",
            Some("cmpl-7"),
        ),
        line(
            "vllm-0",
            3,
            "Received request cmpl-8: params",
            Some("cmpl-8"),
        ),
        // llama.cpp's task 73 in two pods (and a line that only says 73).
        line(
            "llama-0",
            10,
            "slot launch_slot_: id  0 | task 73",
            Some("73"),
        ),
        line(
            "llama-1",
            4000,
            "slot launch_slot_: id  1 | task 73",
            Some("73"),
        ),
        line("llama-0", 11, "eval time = 73.17 ms /    73 tokens", None),
    ]))
    .unwrap();
    sink.close().unwrap();
    let (code, out, err) = infersight(
        &[
            "search",
            "cmpl-7",
            "--request",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let bodies: Vec<&str> = out
        .lines()
        .map(|l| l.split_once(" - ").map_or(l, |(_, b)| b))
        .collect();
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().next().unwrap().contains("router-0"), "{out}");
    assert!(bodies[2].ends_with("Finished request cmpl-7."), "{out}");
    assert!(err.contains("3 records of request cmpl-7"), "{err}");
    assert!(!err.contains("note:"), "{err}");

    // A number: its id field only, every pod's, and a note to narrow it by time.
    let data = dir.path().to_str().unwrap();
    let (code, out, err) = infersight(&["search", "73", "--request", "--data-dir", data], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(err.contains("note: 73 is a number"), "{err}");
    let at = |secs: i64| {
        Timestamp::from_unix_nanos(1_795_000_000_000_000_000 + secs * 1_000_000_000).to_rfc3339()
    };
    let (from, to) = (at(0), at(1800));
    let args = [
        "search",
        "73",
        "--request",
        "--from",
        &from,
        "--to",
        &to,
        "--data-dir",
        data,
    ];
    let (code, out, err) = infersight(&args, "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("llama-0") && !err.contains("note:"),
        "{out}{err}"
    );
}
