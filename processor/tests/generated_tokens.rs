//! Tokens generated, from the engines' throughput lines (vLLM v1 logs no request end, so
//! these are its only token figures): a generated stretch of work with known truth, over
//! two data-parallel engines of one pod and an SGLang pod, with idle pauses and jittered
//! logging intervals; the `llm.generated_tokens` of the lines must add up to the truth.

use model::{AttrValue, Attributes, Record, RecordId, Timestamp, names};
use processor::InferenceLogProcessor;
use std::sync::Arc;

mod common;
use common::{Rng, pod};

/// One engine's log: each line says the tokens since its previous line over that stretch
/// (as vLLM and SGLang compute it), printed with one decimal as they do.
struct Engine {
    resource: Arc<Attributes>,
    line: fn(f64) -> String,
    last: i64,
    /// Tokens generated after the engine's first line (the first covers a stretch no reader
    /// saw).
    truth: f64,
}

#[test]
fn generated_tokens_of_throughput_lines_add_up_to_the_tokens_generated() {
    let vllm = pod("vllm-0");
    let start = 1_795_000_000_000_000_000i64;
    let mut engines = [
        Engine {
            resource: vllm.clone(),
            line: |tps| {
                format!(
                    "INFO 04-08 14:05:21 [loggers.py:123] Engine 000: Avg prompt throughput: 12.0 tokens/s, Avg generation throughput: {tps:.1} tokens/s, Running: 3 reqs, Waiting: 0 reqs, GPU KV cache usage: 4.1%, Prefix cache hit rate: 0.0%"
                )
            },
            last: start,
            truth: 0.0,
        },
        Engine {
            resource: vllm,
            line: |tps| {
                format!(
                    "INFO 04-08 14:05:21 [loggers.py:123] Engine 001: Avg prompt throughput: 12.0 tokens/s, Avg generation throughput: {tps:.1} tokens/s, Running: 3 reqs, Waiting: 0 reqs, GPU KV cache usage: 4.1%, Prefix cache hit rate: 0.0%"
                )
            },
            last: start + 3_000_000_000,
            truth: 0.0,
        },
        Engine {
            resource: pod("sglang-0"),
            line: |tps| {
                format!(
                    "[2026-04-08 14:05:21 DP0 TP0] Decode batch, #running-req: 5, #token: 20800, token usage: 0.29, cuda graph: True, gen throughput (token/s): {tps:.2}, #queue-req: 0"
                )
            },
            last: start + 1_000_000_000,
            truth: 0.0,
        },
    ];
    let mut p = InferenceLogProcessor::new();
    let mut rng = Rng(0x70ce_0001_2345_6789);
    let mut counted = [0.0f64; 3];
    let mut n = 0;
    let mut emit = |p: &mut InferenceLogProcessor, e: &Engine, at: i64, text: String| -> f64 {
        n += 1;
        let mut r = Record::log(
            RecordId(n),
            Timestamp::from_unix_nanos(at),
            Timestamp::now(),
            e.resource.clone(),
            text,
        );
        p.process(&mut r, &mut Vec::new());
        assert_eq!(r.kind, model::RecordKind::EngineStats, "{}", r.body);
        r.attributes
            .get(names::LLM_GENERATED_TOKENS)
            .and_then(AttrValue::as_f64)
            .unwrap_or(0.0)
    };
    for (i, e) in engines.iter().enumerate() {
        // The first line of each: nothing before it was seen, so it counts nothing.
        assert_eq!(emit(&mut p, e, e.last, (e.line)(55.0)), 0.0);
        counted[i] = 0.0;
    }
    for _ in 0..2_000 {
        let i = rng.below(3);
        let e = &mut engines[i];
        // Mostly 5–15 s apart; now and then an idle pause of up to a minute.
        let stretch_ms = if rng.below(20) == 0 {
            rng.range(20_000, 60_000)
        } else {
            rng.range(5_000, 15_000)
        } as i64;
        let tokens = rng.range(0, 20_000) as f64;
        let at = e.last + stretch_ms * 1_000_000;
        let tps = tokens / (stretch_ms as f64 / 1e3);
        e.truth += tokens;
        e.last = at;
        let line = (e.line)(tps);
        counted[i] += emit(&mut p, e, at, line);
    }
    for (e, counted) in engines.iter().zip(counted) {
        // The printed throughput has one decimal (two for SGLang): within 0.1 %.
        let error = (counted - e.truth).abs() / e.truth;
        assert!(error < 1e-3, "counted {counted}, generated {}", e.truth);
    }
}
