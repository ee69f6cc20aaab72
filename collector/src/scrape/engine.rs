//! Inference servers' own metrics (vLLM, SGLang, TGI; names in
//! `../shared/fixtures/engine-metrics.md`) mapped onto Infersight's: running and waiting
//! requests, KV-cache use, token throughput, and the latency histograms, time to first
//! token above all, which no server logs per request.

use super::exposition::{Exposition, HistogramSeries};
use std::collections::BTreeMap;

/// Where one server keeps each figure.
struct Engine {
    /// `llm.server`.
    server: &'static str,
    /// The label that names the model (`None`: the server serves one and does not say).
    model_label: Option<&'static str>,
    running: &'static [&'static str],
    waiting: &'static [&'static str],
    /// KV-cache use as a ratio, 0–1.
    kv_cache_ratio: &'static [&'static str],
    /// Counters of prompt and generated tokens (throughput is their rate).
    prompt_tokens: &'static [&'static str],
    generation_tokens: &'static [&'static str],
    /// Histograms, by Infersight's name for them.
    histograms: [(EngineHistogram, &'static [&'static str]); 4],
}

/// The latency histograms a server reports, by what they measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EngineHistogram {
    /// Time to first token.
    Ttft,
    /// Time between output tokens.
    InterToken,
    /// Time queued.
    Queue,
    /// End to end.
    E2e,
}

impl EngineHistogram {
    /// Its name on `/metrics`.
    pub fn metric(self) -> &'static str {
        match self {
            EngineHistogram::Ttft => "llm_engine_time_to_first_token_seconds",
            EngineHistogram::InterToken => "llm_engine_inter_token_latency_seconds",
            EngineHistogram::Queue => "llm_engine_queue_time_seconds",
            EngineHistogram::E2e => "llm_engine_e2e_request_latency_seconds",
        }
    }
}

const ENGINES: [Engine; 3] = [
    Engine {
        server: "vllm",
        model_label: Some("model_name"),
        running: &["vllm:num_requests_running"],
        waiting: &["vllm:num_requests_waiting"],
        kv_cache_ratio: &["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
        prompt_tokens: &["vllm:prompt_tokens_total"],
        generation_tokens: &["vllm:generation_tokens_total"],
        histograms: [
            (EngineHistogram::Ttft, &["vllm:time_to_first_token_seconds"]),
            (
                EngineHistogram::InterToken,
                &[
                    "vllm:inter_token_latency_seconds",
                    "vllm:time_per_output_token_seconds",
                ],
            ),
            (EngineHistogram::Queue, &["vllm:request_queue_time_seconds"]),
            (EngineHistogram::E2e, &["vllm:e2e_request_latency_seconds"]),
        ],
    },
    Engine {
        server: "sglang",
        model_label: Some("model_name"),
        running: &["sglang:num_running_reqs"],
        waiting: &["sglang:num_queue_reqs"],
        kv_cache_ratio: &["sglang:token_usage"],
        prompt_tokens: &["sglang:prompt_tokens_total"],
        generation_tokens: &["sglang:generation_tokens_total"],
        histograms: [
            (
                EngineHistogram::Ttft,
                &["sglang:time_to_first_token_seconds"],
            ),
            (
                EngineHistogram::InterToken,
                &["sglang:inter_token_latency_seconds"],
            ),
            (EngineHistogram::Queue, &["sglang:queue_time_seconds"]),
            (
                EngineHistogram::E2e,
                &["sglang:e2e_request_latency_seconds"],
            ),
        ],
    },
    Engine {
        server: "tgi",
        model_label: None,
        running: &["tgi_batch_current_size"],
        waiting: &["tgi_queue_size"],
        kv_cache_ratio: &[],
        prompt_tokens: &["tgi_request_input_length_sum"],
        generation_tokens: &["tgi_request_generated_tokens_sum"],
        histograms: [
            // TGI measures no time to first token.
            (EngineHistogram::Ttft, &[]),
            (
                EngineHistogram::InterToken,
                &["tgi_request_mean_time_per_token_duration"],
            ),
            (EngineHistogram::Queue, &["tgi_request_queue_duration"]),
            (EngineHistogram::E2e, &["tgi_request_duration"]),
        ],
    },
];

/// One model's figures from one scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineFigures {
    /// `vllm`, `sglang`, `tgi`.
    pub server: &'static str,
    /// The model, where the server names it.
    pub model: String,
    /// Requests running.
    pub running: Option<f64>,
    /// Requests waiting.
    pub waiting: Option<f64>,
    /// KV-cache use, 0–100.
    pub kv_cache_pct: Option<f64>,
    /// Prompt tokens per second since the last scrape.
    pub prompt_tps: Option<f64>,
    /// Generated tokens per second since the last scrape.
    pub generation_tps: Option<f64>,
    /// Tokens generated since the last scrape.
    pub generated_tokens: Option<f64>,
    /// Mean time to first token of the requests since the last scrape, ms.
    pub ttft_ms: Option<f64>,
    /// Its histograms as scraped (cumulative since the server started).
    pub histograms: Vec<(EngineHistogram, HistogramSeries)>,
}

/// One model's counters at one scrape.
#[derive(Debug)]
struct Counters {
    /// When, in seconds.
    at: f64,
    prompt_tokens: Option<f64>,
    generated_tokens: Option<f64>,
    ttft_sum: f64,
    ttft_count: f64,
}

/// What a target said last time: counters, for rates and interval means.
#[derive(Debug, Default)]
pub struct EngineMemory {
    last: BTreeMap<(&'static str, String), Counters>,
}

impl EngineMemory {
    /// The figures of every model of every server the exposition is from, `at` (seconds).
    pub fn figures(&mut self, e: &Exposition, at: f64) -> Vec<EngineFigures> {
        let mut out = Vec::new();
        for engine in &ENGINES {
            let models = models(e, engine);
            for model in models {
                let pick = |names: &[&str]| value(e, names, engine.model_label, &model);
                let mut f = EngineFigures {
                    server: engine.server,
                    model: model.clone(),
                    running: pick(engine.running),
                    waiting: pick(engine.waiting),
                    kv_cache_pct: pick(engine.kv_cache_ratio).map(|r| r * 100.0),
                    ..EngineFigures::default()
                };
                for (which, names) in &engine.histograms {
                    if let Some(h) = histogram(e, names, engine.model_label, &model) {
                        f.histograms.push((*which, h));
                    }
                }
                let prompt = pick(engine.prompt_tokens);
                let generated = pick(engine.generation_tokens);
                let ttft = f
                    .histograms
                    .iter()
                    .find(|(w, _)| *w == EngineHistogram::Ttft)
                    .map_or((0.0, 0.0), |(_, h)| (h.sum, h.count));
                let key = (engine.server, model.clone());
                if let Some(before) = self.last.get(&key) {
                    let dt = at - before.at;
                    // A counter that went down is a restarted server: no rate this time.
                    let rate = |now: Option<f64>, before: &Option<f64>| match (now, before) {
                        (Some(n), Some(b)) if dt > 0.0 && n >= *b => Some((n - b) / dt),
                        _ => None,
                    };
                    f.prompt_tps = rate(prompt, &before.prompt_tokens);
                    f.generation_tps = rate(generated, &before.generated_tokens);
                    f.generated_tokens = f.generation_tps.map(|r| r * dt);
                    let (ds, dc) = (ttft.0 - before.ttft_sum, ttft.1 - before.ttft_count);
                    if dc > 0.0 && ds >= 0.0 {
                        f.ttft_ms = Some(ds / dc * 1e3);
                    }
                }
                let now = Counters {
                    at,
                    prompt_tokens: prompt,
                    generated_tokens: generated,
                    ttft_sum: ttft.0,
                    ttft_count: ttft.1,
                };
                self.last.insert(key, now);
                out.push(f);
            }
        }
        out
    }
}

/// The models a server's metrics name (one, unnamed, for a server that does not say).
fn models(e: &Exposition, engine: &Engine) -> Vec<String> {
    let prefix = match engine.server {
        "tgi" => "tgi_",
        other => other,
    };
    let samples = e
        .families
        .iter()
        .filter(|f| f.name.starts_with(prefix))
        .flat_map(|f| &f.samples);
    let mut models: Vec<String> = match engine.model_label {
        Some(label) => samples
            .filter_map(|s| s.label(label).map(str::to_string))
            .collect(),
        None => samples.take(1).map(|_| String::new()).collect(),
    };
    models.sort();
    models.dedup();
    models
}

/// The value of the first of `names` the exposition has, for `model` (summed over its
/// other labels: engines, ranks).
fn value(e: &Exposition, names: &[&str], label: Option<&str>, model: &str) -> Option<f64> {
    names.iter().find_map(|name| {
        let mut found = false;
        let sum: f64 = e
            .families
            .iter()
            .flat_map(|f| &f.samples)
            .filter(|s| s.name == *name && label.is_none_or(|l| s.label(l) == Some(model)))
            .inspect(|_| found = true)
            .map(|s| s.value)
            .sum();
        found.then_some(sum)
    })
}

/// The first of `names` the exposition has as a histogram of `model`.
fn histogram(
    e: &Exposition,
    names: &[&str],
    label: Option<&str>,
    model: &str,
) -> Option<HistogramSeries> {
    names.iter().find_map(|name| {
        e.family(name)?
            .histograms()
            .into_iter()
            .find(|h| label.is_none_or(|l| h.label(l) == Some(model)))
    })
}
