//! Issue 4's known-truth check through the whole pipeline: a generated workload of vLLM,
//! TGI and llama.cpp requests (known latencies, tokens, outcomes) is written as CRI log files,
//! the real binary reads, parses and indexes it, and `GET /metrics` must count exactly what
//! was generated, with histogram sums within 0.1%.

use std::io::Write;
use std::path::Path;
use std::time::Duration;
use tests::Running;

const START_NS: i64 = 1_795_000_000_000_000_000;

fn cri(ts_ns: i64, content: &str) -> String {
    format!(
        "{} stdout F {content}\n",
        model::Timestamp::from_unix_nanos(ts_ns).to_rfc3339()
    )
}

fn write(logs: &Path, pod: &str, text: &str) {
    let dir = logs.join(format!("llm_{pod}_uid-{pod}/server"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::File::create(dir.join("0.log"))
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

#[test]
fn metrics_over_http_equal_the_generated_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("pods");
    let (mut vllm, mut tgi, mut llama, mut trt) =
        (String::new(), String::new(), String::new(), String::new());
    let (mut vllm_sum, mut tgi_sum, mut llama_sum, mut aborted) = (0.0, 0.0, 0.0, 0u64);
    let (mut llama_ttft, mut llama_tpot, mut trt_sum) = (0.0, 0.0, 0.0);
    let (mut input, mut output) = (0u64, 0u64);
    let (mut tgi_tpot, mut tgi_output) = (0.0, 0u64);
    const N: i64 = 600;
    for i in 0..N {
        let t = START_NS + i * 50_000_000;
        // vLLM: Received, then Finished or Aborted `ms` later by the runtime's clock.
        let ms = 20 + (i * 7919) % 90_000;
        vllm.push_str(&cri(t, &format!("INFO 01-17 03:11:25 async_llm_engine.py:436] Received request cmpl-{i}: prompt: None, sampling_params: SamplingParams(n=1, max_tokens=64).")));
        let verb = if i % 10 == 0 { "Aborted" } else { "Finished" };
        aborted += u64::from(i % 10 == 0);
        vllm.push_str(&cri(
            t + ms * 1_000_000,
            &format!("INFO 01-17 03:11:26 async_llm_engine.py:134] {verb} request cmpl-{i}."),
        ));
        vllm_sum += ms as f64 / 1e3;
        // TGI: one success line. Its time per token is the inference time over the tokens
        // generated, to the nanosecond below (TGI divides a Duration by the count).
        let tokens = 1 + (i * 31) % 500;
        let per_token_ns = 14_800_000 + i * 1_234;
        let inference_ns = tokens * per_token_ns + i % tokens;
        let total = 1.0 + inference_ns as f64 / 1e6;
        tgi.push_str(&cri(t, &format!(r#"2024-05-01T12:00:00.1Z  INFO generate{{total_time="{total:.6}ms" validation_time="1.5ms" queue_time="49.5µs" inference_time="{:.6}ms" time_per_token="{:.6}ms"}}: text_generation_router::server: Success"#, inference_ns as f64 / 1e6, per_token_ns as f64 / 1e6)));
        tgi_sum += total / 1e3;
        tgi_tpot += per_token_ns as f64 / 1e9;
        tgi_output += tokens as u64;
        // llama.cpp: a task's timing block and its release.
        let (pin, pout) = (1 + (i * 31) % 4000, 1 + (i * 17) % 2000);
        let e2e = 50.25 + ((i * 13) % 120_000) as f64;
        let prefill = 10.5 + ((i * 37) % 3000) as f64;
        let per_token = 20.25 + (i % 50) as f64;
        for line in [
            format!(
                "slot update_slots: id  0 | task {i} | new prompt, n_ctx_slot = 4096, n_keep = 0, n_prompt_tokens = {pin}"
            ),
            format!(
                "slot print_timing: id  0 | task {i} | prompt eval time = {prefill:>10.2} ms / {pin:>5} tokens (    1.00 ms per token,   100.00 tokens per second)"
            ),
            format!(
                "slot print_timing: id  0 | task {i} |        eval time =    2303.87 ms / {pout:>5} tokens ( {per_token:>7.2} ms per token,    11.94 tokens per second)"
            ),
            format!(
                "slot print_timing: id  0 | task {i} |       total time = {e2e:>10.2} ms / {} tokens",
                pin + pout
            ),
            format!(
                "slot      release: id  0 | task {i} | stop processing: n_past = 1, truncated = 0"
            ),
        ] {
            llama.push_str(&cri(t + 1, &line));
        }
        llama_sum += e2e / 1e3;
        llama_ttft += prefill / 1e3;
        llama_tpot += per_token / 1e3;
        // TensorRT-LLM: received and response started, by the server's monotonic clock.
        let clock = 32_142.5 + i as f64 * 0.05;
        let span = 0.001 * (1 + (i * 53) % 5000) as f64;
        trt.push_str(&cri(
            t,
            &format!("[07/09/2025-23:07:49] [TRT-LLM] [I] Received request r-{i} at {clock:.9}"),
        ));
        trt.push_str(&cri(
            t + 1,
            &format!(
                "[07/09/2025-23:07:50] [TRT-LLM] [I] Response started r-{i} at {:.9}",
                clock + span
            ),
        ));
        trt_sum += span;
        input += pin as u64;
        output += pout as u64;
    }
    // SGLang logs no request at all: its tokens come from its decode batches' throughput,
    // each over the stretch since the one before (the first covers one not seen).
    let (mut sglang, mut generated) = (String::new(), 0.0);
    for j in 0..N / 10 {
        let tokens = (j * 7919 % 5000) as f64;
        sglang.push_str(&cri(
            START_NS + j * 10_000_000_000,
            &format!(
                "[2026-04-08 14:05:21 TP0] Decode batch, #running-req: 5, #token: 20800, token usage: 0.29, cuda graph: True, gen throughput (token/s): {:.2}, #queue-req: 0",
                tokens / 10.0
            ),
        ));
        if j > 0 {
            generated += tokens;
        }
    }
    // The writes end with a line each so that every last group closes without waiting.
    let last = START_NS + N * 50_000_000 + 200_000_000_000;
    for text in [&mut vllm, &mut tgi, &mut llama, &mut trt, &mut sglang] {
        text.push_str(&cri(last, "INFO 01-17 04:00:00 api_server.py:1] done"));
    }
    write(&logs, "vllm-0", &vllm);
    write(&logs, "tgi-0", &tgi);
    write(&logs, "llama-0", &llama);
    write(&logs, "trt-0", &trt);
    write(&logs, "sglang-0", &sglang);

    let app = Running::start(&logs, &tmp.path().join("data"), &[]);
    let total = |m: &str, pod: &str| {
        tests::metric_value(
            m,
            "llm_requests_total{",
            &[&format!("pod=\"{pod}\""), "outcome=\"finished\""],
        )
        .unwrap_or(0.0)
            + tests::metric_value(
                m,
                "llm_requests_total{",
                &[&format!("pod=\"{pod}\""), "outcome=\"aborted\""],
            )
            .unwrap_or(0.0)
    };
    let mut metrics = String::new();
    for _ in 0..600 {
        metrics = app.get_text("/metrics").1;
        let sglang_tokens = tests::metric_value(
            &metrics,
            "llm_engine_generated_tokens_total{",
            &["pod=\"sglang-0\""],
        );
        if ["vllm-0", "tgi-0", "llama-0", "trt-0"]
            .iter()
            .all(|p| total(&metrics, p) >= N as f64)
            && sglang_tokens.is_some_and(|t| t >= generated * (1.0 - 1e-3))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100)); // polling the API is what a user does
    }
    for pod in ["vllm-0", "tgi-0", "llama-0", "trt-0"] {
        assert_eq!(total(&metrics, pod), N as f64, "{pod}\n{metrics}");
    }
    assert_eq!(
        tests::metric_value(
            &metrics,
            "llm_requests_total{",
            &["pod=\"vllm-0\"", "outcome=\"aborted\""]
        ),
        Some(aborted as f64)
    );
    let close = |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() <= 1e-3 * want);
    for (pod, sum) in [
        ("vllm-0", vllm_sum),
        ("tgi-0", tgi_sum),
        ("llama-0", llama_sum),
        ("trt-0", trt_sum),
    ] {
        let got = tests::metric_value(
            &metrics,
            "gen_ai_server_request_duration_seconds_sum{",
            &[&format!("pod=\"{pod}\"")],
        );
        println!("{pod}: duration sum {got:?} s, truth {sum:.3} s");
        assert!(close(got, sum), "{pod}: {got:?} vs {sum}");
    }
    for (family, pod, sum) in [
        (
            "gen_ai_server_time_to_first_token_seconds",
            "llama-0",
            llama_ttft,
        ),
        (
            "gen_ai_server_time_to_first_token_seconds",
            "trt-0",
            trt_sum,
        ),
        (
            "gen_ai_server_time_per_output_token_seconds",
            "llama-0",
            llama_tpot,
        ),
        (
            "gen_ai_server_time_per_output_token_seconds",
            "tgi-0",
            tgi_tpot,
        ),
    ] {
        let pod_label = format!("pod=\"{pod}\"");
        let got = tests::metric_value(&metrics, &format!("{family}_sum{{"), &[&pod_label]);
        println!("{pod}: {family} sum {got:?} s, truth {sum:.3} s");
        assert!(close(got, sum), "{pod} {family}: {got:?} vs {sum}");
        let count = tests::metric_value(&metrics, &format!("{family}_count{{"), &[&pod_label]);
        assert_eq!(count, Some(N as f64), "{pod} {family}");
    }
    assert_eq!(
        tests::metric_value(
            &metrics,
            "llm_tokens_total{",
            &["pod=\"llama-0\"", "type=\"input\""]
        ),
        Some(input as f64)
    );
    assert_eq!(
        tests::metric_value(
            &metrics,
            "llm_tokens_total{",
            &["pod=\"llama-0\"", "type=\"output\""]
        ),
        Some(output as f64)
    );
    assert_eq!(
        tests::metric_value(
            &metrics,
            "llm_tokens_total{",
            &["pod=\"tgi-0\"", "type=\"output\""]
        ),
        Some(tgi_output as f64),
        "TGI's tokens, from its inference time and time per token"
    );
    assert_eq!(
        tests::metric_value(
            &metrics,
            "llm_tokens_total{",
            &["pod=\"tgi-0\"", "type=\"input\""]
        ),
        None,
        "TGI logs no prompt tokens: unknown, not 0"
    );
    assert_eq!(
        tests::metric_value(&metrics, "llm_requests_in_flight{", &["pod=\"vllm-0\""]),
        Some(0.0)
    );
    // Every logged arrival is a received request; TGI logs only whole requests, so its
    // in-flight count is not known, not zero.
    for pod in ["vllm-0", "trt-0"] {
        let received = tests::metric_value(
            &metrics,
            "llm_requests_received_total{",
            &[&format!("pod=\"{pod}\"")],
        );
        assert_eq!(received, Some(N as f64), "{pod}");
    }
    assert_eq!(
        tests::metric_value(&metrics, "llm_requests_in_flight{", &["pod=\"tgi-0\""]),
        None
    );
    let counted = tests::metric_value(
        &metrics,
        "llm_engine_generated_tokens_total{",
        &["pod=\"sglang-0\""],
    )
    .unwrap_or(0.0);
    assert!(
        (counted - generated).abs() <= generated * 1e-3,
        "SGLang's tokens: {counted} counted, {generated} generated"
    );
}
