//! A generated workload with known truth (issue 4): thousands of requests in vLLM, TGI and
//! llama.cpp formats, with known latencies, queue waits, tokens and errors, go through the
//! processor; the LLM metrics must count exactly what was generated, and histogram sums must
//! be within 0.1% of the truth.

use model::{Attributes, Record, RecordId, Timestamp};
use processor::InferenceLogProcessor;
use processor::metrics::LlmMetrics;
use std::sync::Arc;

mod common;
use common::{Rng, pod};

#[derive(Default)]
struct Truth {
    requests: u64,
    aborted: u64,
    duration_s: f64,
    queue_s: f64,
    output_tokens: u64,
    input_tokens: u64,
    cuda_oom: u64,
}

#[test]
fn metrics_equal_the_generated_truth() {
    let metrics = Arc::new(LlmMetrics::new());
    let mut p = InferenceLogProcessor::new().with_metrics(Arc::clone(&metrics));
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut n = 0u128;
    let mut t0 = 1_795_000_000_000_000_000i64;
    let mut line =
        |p: &mut InferenceLogProcessor, resource: &Arc<Attributes>, ts: i64, text: String| {
            n += 1;
            let mut r = Record::log(
                RecordId(n),
                Timestamp::from_unix_nanos(ts),
                Timestamp::now(),
                Arc::clone(resource),
                text,
            );
            r.stream = Some(model::Stream::Stdout);
            p.process(&mut r, &mut Vec::new());
        };
    let (vllm, tgi, llama) = (pod("vllm-0"), pod("tgi-0"), pod("llama-0"));
    let mut truth = [Truth::default(), Truth::default(), Truth::default()];
    for i in 0..3000u64 {
        t0 += 10_000_000;
        match i % 3 {
            0 => {
                // vLLM: received, then finished or aborted `ms` later (by the line clock).
                let ms = rng.range(20, 90_000) as i64;
                let id = format!("cmpl-{i:016x}");
                line(
                    &mut p,
                    &vllm,
                    t0,
                    format!(
                        "INFO 01-17 03:11:25 async_llm_engine.py:436] Received request {id}: prompt: None, sampling_params: SamplingParams(n=1, temperature=0.7, max_tokens=256)."
                    ),
                );
                let aborted = rng.next().is_multiple_of(10);
                let verb = if aborted { "Aborted" } else { "Finished" };
                line(
                    &mut p,
                    &vllm,
                    t0 + ms * 1_000_000,
                    format!("INFO 01-17 03:11:26 async_llm_engine.py:134] {verb} request {id}."),
                );
                let t = &mut truth[0];
                t.requests += 1;
                t.aborted += u64::from(aborted);
                t.duration_s += ms as f64 / 1e3;
            }
            1 => {
                // TGI: one success line with its span timings in mixed units.
                let total_ms = rng.range(5, 60_000) as f64 + 0.123456;
                let queue_us = rng.range(10, 5_000_000) as f64 + 0.5;
                line(
                    &mut p,
                    &tgi,
                    t0,
                    format!(
                        r#"2024-05-01T12:00:00.1Z  INFO generate{{total_time="{total_ms}ms" validation_time="1.5ms" queue_time="{queue_us}µs" inference_time="{}ms" time_per_token="14.8ms"}}: text_generation_router::server: Success"#,
                        total_ms - 1.0
                    ),
                );
                let t = &mut truth[1];
                t.requests += 1;
                t.duration_s += total_ms / 1e3;
                t.queue_s += queue_us / 1e6;
                if i % 30 == 1 {
                    line(&mut p, &tgi, t0 + 1, "2024-05-01T12:00:00.2Z ERROR text_generation_launcher: Method Decode encountered an error: CUDA out of memory. Tried to allocate 2.00 GiB".to_string());
                    t.cuda_oom += 1;
                }
            }
            _ => {
                // llama.cpp: the timing block of one task.
                let task = i;
                let (pin, pout) = (rng.range(1, 4000), rng.range(1, 2000));
                let total = rng.range(50, 120_000) as f64 + 0.25;
                line(
                    &mut p,
                    &llama,
                    t0,
                    format!(
                        "slot update_slots: id  0 | task {task} | new prompt, n_ctx_slot = 4096, n_keep = 0, n_prompt_tokens = {pin}"
                    ),
                );
                line(
                    &mut p,
                    &llama,
                    t0 + 1,
                    format!(
                        "slot print_timing: id  0 | task {task} | prompt eval time =     915.13 ms / {pin:>5} tokens (   17.94 ms per token,    55.73 tokens per second)"
                    ),
                );
                line(
                    &mut p,
                    &llama,
                    t0 + 2,
                    format!(
                        "slot print_timing: id  0 | task {task} |        eval time =   2303.87 ms / {pout:>5} tokens (   83.78 ms per token,    11.94 tokens per second)"
                    ),
                );
                line(
                    &mut p,
                    &llama,
                    t0 + 3,
                    format!(
                        "slot print_timing: id  0 | task {task} |       total time = {total:>10.2} ms / {} tokens",
                        pin + pout
                    ),
                );
                line(
                    &mut p,
                    &llama,
                    t0 + 4,
                    format!(
                        "slot      release: id  0 | task {task} | stop processing: n_past = 1, truncated = 0"
                    ),
                );
                let t = &mut truth[2];
                t.requests += 1;
                t.duration_s += (total * 100.0).round() / 100.0 / 1e3;
                t.input_tokens += pin;
                t.output_tokens += pout;
            }
        }
    }
    // One request still running at the end.
    line(
        &mut p,
        &vllm,
        t0 + 1,
        "INFO 01-17 03:11:25 async_llm_engine.py:436] Received request cmpl-last: prompt: None."
            .to_string(),
    );
    let snapshot = metrics.snapshot();
    let in_flight: Vec<(String, i64)> = snapshot
        .iter()
        .filter_map(|(labels, s)| Some((labels[1].clone(), s.in_flight?)))
        .filter(|(_, n)| *n != 0)
        .collect();
    assert_eq!(
        in_flight,
        [("vllm-0".to_string(), 1)],
        "only the last request is in flight"
    );
    let series = |pod: &str| {
        snapshot
            .iter()
            .find(|(labels, s)| labels[1] == pod && !s.requests.is_empty())
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| panic!("no series for {pod}"))
    };
    let close = |got: f64, want: f64| (got - want).abs() <= 1e-3 * want;
    for (pod, t) in ["vllm-0", "tgi-0", "llama-0"].iter().zip(&truth) {
        let s = series(pod);
        let finished = s.requests.get("finished").copied().unwrap_or(0);
        let aborted = s.requests.get("aborted").copied().unwrap_or(0);
        println!(
            "{pod}: {finished} finished, {aborted} aborted; duration sum {:.3} s (truth {:.3})",
            s.duration.sum, t.duration_s
        );
        assert_eq!(
            (finished + aborted, aborted),
            (t.requests, t.aborted),
            "{pod}"
        );
        assert_eq!(s.duration.count, t.requests, "{pod}");
        assert!(
            close(s.duration.sum, t.duration_s),
            "{pod}: {} vs {}",
            s.duration.sum,
            t.duration_s
        );
        assert_eq!(
            (s.input_tokens, s.output_tokens),
            (t.input_tokens, t.output_tokens),
            "{pod}"
        );
        if t.queue_s > 0.0 {
            assert!(
                close(s.queue.sum, t.queue_s),
                "{pod}: queue {} vs {}",
                s.queue.sum,
                t.queue_s
            );
        }
    }
    let oom: u64 = snapshot
        .iter()
        .filter(|(labels, _)| labels[1] == "tgi-0")
        .filter_map(|(_, s)| s.errors.get("cuda_oom"))
        .sum();
    assert_eq!(oom, truth[1].cuda_oom);
}
