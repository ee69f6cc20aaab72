//! Tokens generated, from the engines' throughput lines (vLLM v1 logs no request end, so
//! these are its only token figures). Generated logs with known truth, each engine logging
//! as its server does, busy and idle in turns:
//! - vLLM v1 (two data-parallel engines of one pod): every interval (10 s, jittered) the
//!   rate over that interval, at info level while busy and for one interval after; idle
//!   intervals at debug level, which a log reader never sees;
//! - SGLang: every so many decode steps the rate since its previous line, nothing while idle.
//!
//! The `llm.generated_tokens` of the lines must add up to the tokens generated.

use model::{AttrValue, Record, RecordId, Timestamp, names};
use processor::InferenceLogProcessor;

mod common;
use common::{Rng, pod};

fn vllm_line(engine: u32, tps: f64) -> String {
    format!(
        "INFO 04-08 14:05:21 [loggers.py:123] Engine {engine:03}: Avg prompt throughput: 12.0 tokens/s, Avg generation throughput: {tps:.1} tokens/s, Running: 3 reqs, Waiting: 0 reqs, GPU KV cache usage: 4.1%, Prefix cache hit rate: 0.0%"
    )
}

fn sglang_line(tps: f64) -> String {
    format!(
        "[2026-04-08 14:05:21 DP0 TP0] Decode batch, #running-req: 5, #token: 20800, token usage: 0.29, cuda graph: True, gen throughput (token/s): {tps:.2}, #queue-req: 0"
    )
}

/// Feeds lines to one processor and adds up their `llm.generated_tokens`.
struct Reader {
    processor: InferenceLogProcessor,
    n: u128,
}

impl Reader {
    fn read(&mut self, pod_name: &str, at: i64, text: String) -> f64 {
        self.n += 1;
        let mut r = Record::log(
            RecordId(self.n),
            Timestamp::from_unix_nanos(at),
            Timestamp::now(),
            pod(pod_name),
            text,
        );
        self.processor.process(&mut r, &mut Vec::new());
        assert_eq!(r.kind, model::RecordKind::EngineStats, "{}", r.body);
        r.attributes
            .get(names::LLM_GENERATED_TOKENS)
            .and_then(AttrValue::as_f64)
            .unwrap_or(0.0)
    }
}

const START: i64 = 1_795_000_000_000_000_000;

#[test]
fn vllm_v1_lines_add_up_to_the_tokens_generated_through_idle_pauses() {
    let mut reader = Reader {
        processor: InferenceLogProcessor::new(),
        n: 0,
    };
    let mut rng = Rng(0x70ce_0001_2345_6789);
    for engine in 0..2u32 {
        let (mut generated, mut counted) = (0.0, 0.0);
        let mut at = START + engine as i64 * 3_000_000_000;
        // The first line read covers an interval before the reader started.
        reader.read("vllm-0", at, vllm_line(engine, 55.0));
        let (mut busy, mut last_tps) = (true, 55.0);
        for _ in 0..3_000 {
            // vLLM sleeps the interval, then logs: a little over 10 s apart.
            let interval = 10_000_000_000 + rng.range(0, 300_000_000) as i64;
            at += interval;
            if rng.below(10) == 0 {
                busy = !busy;
            }
            let tokens = if busy {
                rng.range(1, 20_000) as f64
            } else {
                0.0
            };
            generated += tokens;
            let tps = tokens / (interval as f64 / 1e9);
            // At info level unless this rate and the last are both zero.
            if tps > 0.0 || last_tps > 0.0 {
                counted += reader.read("vllm-0", at, vllm_line(engine, tps));
            }
            last_tps = tps;
        }
        let error = (counted - generated).abs() / generated;
        assert!(
            error < 1e-3,
            "engine {engine}: counted {counted}, generated {generated}"
        );
    }
}

#[test]
fn sglang_lines_add_up_to_the_tokens_generated_through_idle_pauses() {
    let mut reader = Reader {
        processor: InferenceLogProcessor::new(),
        n: 0,
    };
    let mut rng = Rng(0x5617_0001_2345_6789);
    let mut at = START;
    reader.read("sglang-0", at, sglang_line(55.0));
    let (mut generated, mut counted) = (0.0, 0.0);
    for _ in 0..2_000 {
        // 40 decode steps: a second or a few; now and then an idle pause before them.
        let mut stretch = rng.range(500, 5_000) as i64 * 1_000_000;
        if rng.below(20) == 0 {
            stretch += rng.range(20_000, 300_000) as i64 * 1_000_000;
        }
        at += stretch;
        let tokens = rng.range(100, 5_000) as f64;
        generated += tokens;
        let tps = tokens / (stretch as f64 / 1e9);
        counted += reader.read("sglang-0", at, sglang_line(tps));
    }
    let error = (counted - generated).abs() / generated;
    assert!(error < 1e-3, "counted {counted}, generated {generated}");
}
