//! What each simulated inference server prints, in the shapes of the real servers' lines
//! (see `shared/corpus/lines.jsonl`).

use super::simulator::Rng;
use model::{Stream, Timestamp};

/// A simulated server: what its container writes in one tick.
pub trait SimulatedServer: Send {
    /// The container's name in the pod.
    fn container(&self) -> &'static str;
    /// Appends the lines written at `now`.
    fn tick(&mut self, now: Timestamp, rng: &mut Rng, out: &mut Vec<(Stream, String)>);
}

/// `MM-DD hh:mm:ss` as Python's logging prints it in vLLM (no year, no zone).
fn month_day_time(now: Timestamp) -> String {
    let s = now.to_rfc3339();
    format!("{} {}", &s[5..10], &s[11..19])
}

/// The calls a server took this tick, by the x-request-id its sidecar logs them with.
pub type Calls = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// The model the simulated vLLM serves.
const VLLM_MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";

/// What the simulated vLLM's `/metrics` shows, shared with the demo's endpoint.
pub type VllmMetrics = std::sync::Arc<std::sync::Mutex<VllmMetricsState>>;

/// The simulated vLLM's counters, gauges and latency histograms: vLLM v1 logs no request's
/// timings, so its TTFT, queue time and latency are known only from here.
#[derive(Default)]
pub struct VllmMetricsState {
    running: u64,
    waiting: u64,
    kv_cache_ratio: f64,
    prompt_tokens: u64,
    generation_tokens: u64,
    /// Requests ended, by vLLM's finish reason (`stop`, `length`, `abort`, `error`).
    ended: [u64; 4],
    ttft: SimulatedHistogram,
    queue: SimulatedHistogram,
    e2e: SimulatedHistogram,
}

/// One histogram on vLLM's bounds (those of [`model::names`]' interval buckets).
#[derive(Default)]
struct SimulatedHistogram {
    /// Observations per bucket (not cumulative: made so when shown).
    counts: Vec<u64>,
    sum: f64,
}

impl SimulatedHistogram {
    fn observe(&mut self, bounds: &[(&str, f64)], seconds: f64) {
        self.counts.resize(bounds.len(), 0);
        let bucket = bounds
            .iter()
            .position(|(_, bound)| seconds <= *bound)
            .unwrap_or(bounds.len() - 1);
        self.counts[bucket] += 1;
        self.sum += seconds;
    }

    /// Its lines as vLLM's Prometheus client writes them, under `name`.
    fn write(&self, name: &str, bounds: &[(&str, f64)], out: &mut String) {
        let labels = format!("engine=\"0\",model_name=\"{VLLM_MODEL}\"");
        out.push_str(&format!("# TYPE {name} histogram\n"));
        let mut cumulative = 0;
        for (i, (_, bound)) in bounds.iter().enumerate() {
            cumulative += self.counts.get(i).copied().unwrap_or(0);
            let le = match bound.is_finite() {
                true => format!("{bound:?}"),
                false => "+Inf".to_string(),
            };
            out.push_str(&format!(
                "{name}_bucket{{engine=\"0\",le=\"{le}\",model_name=\"{VLLM_MODEL}\"}} {cumulative}.0\n"
            ));
        }
        out.push_str(&format!("{name}_count{{{labels}}} {cumulative}.0\n"));
        out.push_str(&format!("{name}_sum{{{labels}}} {:?}\n", self.sum));
    }
}

/// vLLM's finish reasons, as its `request_success_total` labels them.
const FINISH_REASONS: [&str; 4] = ["stop", "length", "abort", "error"];

impl VllmMetricsState {
    /// One request's times, in seconds, and how it ended (one of [`FINISH_REASONS`]).
    fn observe(&mut self, queued: f64, ttft: f64, e2e: f64, reason: &str) {
        if let Some(i) = FINISH_REASONS.iter().position(|r| *r == reason) {
            self.ended[i] += 1;
        }
        self.queue.observe(&model::names::LLM_QUEUE_BUCKETS, queued);
        self.ttft.observe(&model::names::LLM_TTFT_BUCKETS, ttft);
        self.e2e.observe(&model::names::LLM_E2E_BUCKETS, e2e);
    }

    /// The Prometheus text vLLM serves on `/metrics` (the figures Infersight reads).
    pub fn exposition(&self) -> String {
        let labels = format!("engine=\"0\",model_name=\"{VLLM_MODEL}\"");
        let mut out = String::new();
        for (name, kind, value) in [
            ("vllm:num_requests_running", "gauge", self.running as f64),
            ("vllm:num_requests_waiting", "gauge", self.waiting as f64),
            ("vllm:kv_cache_usage_perc", "gauge", self.kv_cache_ratio),
            (
                "vllm:prompt_tokens_total",
                "counter",
                self.prompt_tokens as f64,
            ),
            (
                "vllm:generation_tokens_total",
                "counter",
                self.generation_tokens as f64,
            ),
        ] {
            out.push_str(&format!(
                "# TYPE {name} {kind}\n{name}{{{labels}}} {value:?}\n"
            ));
        }
        let name = "vllm:request_success_total";
        out.push_str(&format!("# TYPE {name} counter\n"));
        for (reason, n) in FINISH_REASONS.iter().zip(self.ended) {
            out.push_str(&format!(
                "{name}{{{labels},finished_reason=\"{reason}\"}} {n}.0\n"
            ));
        }
        self.ttft.write(
            "vllm:time_to_first_token_seconds",
            &model::names::LLM_TTFT_BUCKETS,
            &mut out,
        );
        self.queue.write(
            "vllm:request_queue_time_seconds",
            &model::names::LLM_QUEUE_BUCKETS,
            &mut out,
        );
        self.e2e.write(
            "vllm:e2e_request_latency_seconds",
            &model::names::LLM_E2E_BUCKETS,
            &mut out,
        );
        out
    }
}

/// vLLM (v1 engine) behind its OpenAI-compatible API server.
#[derive(Default)]
pub struct Vllm {
    ticks: u64,
    running: u64,
    waiting: u64,
    /// Its calls, for its sidecar: vLLM names a request `chatcmpl-<x-request-id>`.
    calls: Calls,
    metrics: VllmMetrics,
}

impl Vllm {
    /// A vLLM whose calls its sidecar logs too, and whose `/metrics` `metrics` holds.
    pub fn new(calls: Calls, metrics: VllmMetrics) -> Self {
        Vllm {
            calls,
            metrics,
            ..Vllm::default()
        }
    }
}

impl SimulatedServer for Vllm {
    fn container(&self) -> &'static str {
        "vllm"
    }

    fn tick(&mut self, now: Timestamp, rng: &mut Rng, out: &mut Vec<(Stream, String)>) {
        let t = month_day_time(now);
        let tag = "(APIServer pid=1)";
        if self.ticks == 0 {
            // The engine's start, the one line that names the model (the processor gives it
            // to the container's requests and stats).
            out.push((
                Stream::Stdout,
                format!(
                    "(EngineCore_0 pid=112) INFO {t} [core.py:74] Initializing a V1 LLM engine (v0.10.1.1) with config: model='{VLLM_MODEL}', speculative_config=None, tokenizer='{VLLM_MODEL}', skip_tokenizer_init=False, tokenizer_mode=auto, revision=None, trust_remote_code=False, dtype=torch.bfloat16, max_seq_len=8192, tensor_parallel_size=1, pipeline_parallel_size=1, quantization=None, enforce_eager=False, kv_cache_dtype=auto, seed=0, served_model_name={VLLM_MODEL}, enable_prefix_caching=True, chunked_prefill_enabled=True"
                ),
            ));
        }
        for _ in 0..rng.range(1, 3) {
            let header = rng.hex(16);
            let id = format!("chatcmpl-{header}");
            if let Ok(mut calls) = self.calls.lock() {
                calls.push(header);
            }
            let temperature = [0.0, 0.7, 1.0][rng.range(0, 2) as usize];
            out.push((
                Stream::Stdout,
                format!(
                    "{tag} INFO {t} [logger.py:49] Received request {id}: params: SamplingParams(n=1, presence_penalty=0.0, frequency_penalty=0.0, repetition_penalty=1.0, temperature={temperature}, top_p=0.95, top_k=0, min_p=0.0, seed=None, max_tokens={}), prompt_token_ids: None, lora_request: None.",
                    rng.range(64, 1024)
                ),
            ));
            let failed = rng.chance(0.03);
            let status = if failed {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            out.push((
                Stream::Stdout,
                format!("{tag} INFO:     10.42.0.{}:{} - \"POST /v1/chat/completions HTTP/1.1\" {status}", rng.range(2, 250), rng.range(30000, 60000)),
            ));
            // What only /metrics tells: its time queued (behind the waiting requests),
            // its first token (now and then seconds late), its time end to end; its tokens.
            let queued = self.waiting as f64 * rng.float(0.0, 0.4);
            let mut ttft = queued + rng.float(0.04, 0.3);
            if rng.chance(0.03) {
                ttft += rng.float(1.0, 6.0);
            }
            let generated = rng.range(50, 600);
            let e2e = ttft + generated as f64 * rng.float(0.015, 0.04);
            // Ended by its stop token, its max_tokens, a client gone (abort), or an error.
            let reason = match (failed, rng.chance(0.1), rng.chance(0.02)) {
                (true, _, _) => "error",
                (_, true, _) => "length",
                (_, _, true) => "abort",
                _ => "stop",
            };
            if let Ok(mut m) = self.metrics.lock() {
                m.observe(queued, ttft, e2e, reason);
                m.prompt_tokens += rng.range(100, 2000);
                m.generation_tokens += generated;
            }
        }
        self.running = (self.running + rng.range(0, 4))
            .saturating_sub(rng.range(0, 4))
            .min(32);
        self.waiting = (self.waiting + rng.range(0, 2))
            .saturating_sub(rng.range(0, 2))
            .min(16);
        self.ticks += 1;
        let kv_cache_pct = rng.float(5.0, 98.0);
        if let Ok(mut m) = self.metrics.lock() {
            (m.running, m.waiting, m.kv_cache_ratio) =
                (self.running, self.waiting, kv_cache_pct / 100.0);
        }
        // vLLM logs engine stats every 5 s by default; 4 ticks here keeps the demo lively.
        if self.ticks % 4 == 1 {
            out.push((
                Stream::Stdout,
                format!(
                    "{tag} INFO {t} [loggers.py:271] Engine 000: Avg prompt throughput: {:.1} tokens/s, Avg generation throughput: {:.1} tokens/s, Running: {} reqs, Waiting: {} reqs, GPU KV cache usage: {:.1}%, Prefix cache hit rate: {:.1}%",
                    rng.float(0.0, 3000.0),
                    rng.float(50.0, 1200.0),
                    self.running,
                    self.waiting,
                    kv_cache_pct,
                    rng.float(0.0, 60.0)
                ),
            ));
        }
        // Every 20 s (first about a second in), the engine dies of a CUDA OOM, logging the
        // traceback as vLLM v1 does: its prefix repeated on every line.
        if self.ticks % 40 == 2 {
            let p = format!("(EngineCore pid=112) ERROR {t} [core.py:1131]");
            for line in [
                "EngineCore encountered a fatal error.",
                "Traceback (most recent call last):",
                "  File \"/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py\", line 701, in run_engine_core",
                "    engine_core.run_busy_loop()",
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which 1.06 GiB is free.",
            ] {
                out.push((Stream::Stderr, format!("{p} {line}")));
            }
        }
        if rng.chance(0.02) {
            out.push((
                Stream::Stdout,
                format!(
                    "{tag} WARNING {t} [scheduler.py:1141] Sequence group {} is preempted by PreemptionMode.RECOMPUTE mode because there is not enough KV cache space. This can affect the end-to-end performance. Increase gpu_memory_utilization or tensor_parallel_size to provide more KV cache memory. total_num_cumulative_preemption={}",
                    rng.range(1, 999),
                    rng.range(1, 50)
                ),
            ));
        }
    }
}

/// Lines a server writes when a call it took ends, not when it began: a trace shows them
/// after the call's first line, and the call is in flight between.
#[derive(Default)]
struct WhenEnded(Vec<(Timestamp, Stream, String)>);

impl WhenEnded {
    fn at(&mut self, end: Timestamp, stream: Stream, line: String) {
        self.0.push((end, stream, line));
    }

    /// The lines of the calls that ended by `now`, in the order they ended.
    fn due(&mut self, now: Timestamp, out: &mut Vec<(Stream, String)>) {
        let (mut ended, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|(end, _, _)| *end <= now);
        self.0 = pending;
        // Stable: a call's own lines keep their order.
        ended.sort_by_key(|(end, _, _)| *end);
        out.extend(ended.into_iter().map(|(_, stream, line)| (stream, line)));
    }
}

/// `now` plus `ms` milliseconds.
fn after_ms(now: Timestamp, ms: f64) -> Timestamp {
    now.saturating_add_nanos((ms * 1e6) as i64)
}

/// Istio's Envoy sidecar in front of vLLM: an access line per call in Istio's default
/// format, with the call's duration (vLLM v1 logs none of its own).
pub struct IstioProxy {
    /// The calls of the server behind it.
    calls: Calls,
    /// Envoy writes a call's line when it ends, stamped with its start.
    ended: WhenEnded,
}

impl IstioProxy {
    /// The sidecar of the server that takes `calls`.
    pub fn new(calls: Calls) -> Self {
        IstioProxy {
            calls,
            ended: WhenEnded::default(),
        }
    }
}

impl SimulatedServer for IstioProxy {
    fn container(&self) -> &'static str {
        "istio-proxy"
    }

    fn tick(&mut self, now: Timestamp, rng: &mut Rng, out: &mut Vec<(Stream, String)>) {
        // Envoy's START_TIME: milliseconds, UTC.
        let start = format!("{}Z", &now.to_rfc3339()[..23]);
        let calls = match self.calls.lock() {
            Ok(mut calls) => std::mem::take(&mut *calls),
            Err(_) => Vec::new(),
        };
        for header in calls {
            let (status, flags) = if rng.chance(0.03) {
                (503, "UC")
            } else {
                (200, "-")
            };
            let took = rng.range(300, 12_000);
            self.ended.at(
                after_ms(now, took as f64),
                Stream::Stdout,
                format!(
                    "[{start}] \"POST /v1/chat/completions HTTP/1.1\" {status} {flags} via_upstream - \"-\" {} {} {took} {} \"-\" \"OpenAI/Python 1.40.0\" \"{header}\" \"vllm-llama3-8b.llm-serving.svc.cluster.local:8000\" \"10.42.0.17:8000\" inbound|8000|| 127.0.0.6:{} 10.42.0.17:8000 10.42.0.{}:{} outbound_.8000_._.vllm-llama3-8b.llm-serving.svc.cluster.local default",
                    rng.range(200, 4_000),
                    rng.range(300, 9_000),
                    took.saturating_sub(2),
                    rng.range(30_000, 60_000),
                    rng.range(2, 250),
                    rng.range(30_000, 60_000),
                ),
            );
        }
        self.ended.due(now, out);
    }
}

/// Hugging Face text-generation-inference's router.
#[derive(Default)]
pub struct Tgi {
    started: bool,
}

impl SimulatedServer for Tgi {
    fn container(&self) -> &'static str {
        "text-generation-inference"
    }

    fn tick(&mut self, now: Timestamp, rng: &mut Rng, out: &mut Vec<(Stream, String)>) {
        // tracing-subscriber's timestamp: microseconds and a Z.
        let ts = &now.to_rfc3339()[..26];
        if !self.started {
            self.started = true;
            // The launcher's arguments: the one line that names the model.
            out.push((
                Stream::Stdout,
                format!(
                    "{ts}Z  INFO text_generation_launcher: Args {{ model_id: \"mistralai/Mistral-7B-Instruct-v0.3\", revision: None, validation_workers: 2, sharded: None, num_shard: None, quantize: None, max_concurrent_requests: 128, max_input_tokens: None, max_total_tokens: None, hostname: \"0.0.0.0\", port: 80 }}"
                ),
            ));
        }
        for _ in 0..rng.range(0, 2) {
            let tokens = rng.range(16, 512);
            let per_token_ms = rng.float(8.0, 40.0);
            let inference_ms = per_token_ms * tokens as f64;
            let queue_us = rng.float(20.0, 900.0);
            let validation_ms = rng.float(0.5, 3.0);
            let total_ms = inference_ms + validation_ms + queue_us / 1000.0;
            out.push((
                Stream::Stdout,
                format!(
                    "{ts}Z  INFO generate{{parameters=GenerateParameters {{ best_of: None, temperature: None, repetition_penalty: None, frequency_penalty: None, top_k: None, top_p: None, typical_p: None, do_sample: false, max_new_tokens: Some({tokens}), return_full_text: None, stop: [], truncate: None, watermark: false, details: false, decoder_input_details: false, seed: None, top_n_tokens: None, grammar: None }} total_time=\"{}\" validation_time=\"{validation_ms:.6}ms\" queue_time=\"{queue_us:.3}µs\" inference_time=\"{}\" time_per_token=\"{per_token_ms:.6}ms\" seed=\"None\"}}: text_generation_router::server: router/src/server.rs:309: Success",
                    go_duration_ms(total_ms),
                    go_duration_ms(inference_ms),
                ),
            ));
        }
        if rng.chance(0.02) {
            out.push((
                Stream::Stderr,
                format!(
                    "{ts}Z ERROR text_generation_launcher: Method Decode encountered an error."
                ),
            ));
        }
    }
}

/// TGI prints durations in the unit that reads best: `357.867572ms`, `1.2s`.
fn go_duration_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.6}s", ms / 1000.0)
    } else {
        format!("{ms:.6}ms")
    }
}

/// llama.cpp's `llama-server`.
#[derive(Default)]
pub struct LlamaCpp {
    task: u64,
    started: bool,
    /// A task's timings and release are logged when it ends.
    ended: WhenEnded,
}

impl SimulatedServer for LlamaCpp {
    fn container(&self) -> &'static str {
        "llama-server"
    }

    fn tick(&mut self, now: Timestamp, rng: &mut Rng, out: &mut Vec<(Stream, String)>) {
        self.ended.due(now, out);
        if !self.started {
            // The line that names the model (the processor gives it to the container's tasks).
            self.started = true;
            out.push((
                Stream::Stderr,
                "srv    load_model: loading model '/models/Phi-3-mini-4k-instruct-q4.gguf'"
                    .to_string(),
            ));
        }
        if !rng.chance(0.6) {
            return;
        }
        let task = self.task;
        self.task += 1;
        // `--parallel 4`: four slots, a task in each.
        let slot = task % 4;
        let prompt_tokens = rng.range(8, 400);
        let gen_tokens = rng.range(16, 300);
        let prompt_ms = prompt_tokens as f64 * rng.float(0.5, 4.0);
        let eval_ms = gen_tokens as f64 * rng.float(10.0, 30.0);
        out.push((
            Stream::Stderr,
            format!("slot launch_slot_: id  {slot} | task {task} | processing task"),
        ));
        let end = after_ms(now, prompt_ms + eval_ms);
        for line in [
            format!(
                "slot print_timing: id  {slot} | task {task} | prompt eval time = {prompt_ms:>10.2} ms / {prompt_tokens:>5} tokens ({:>8.2} ms per token, {:>8.2} tokens per second)",
                prompt_ms / prompt_tokens as f64,
                prompt_tokens as f64 * 1000.0 / prompt_ms
            ),
            format!(
                "slot print_timing: id  {slot} | task {task} |        eval time = {eval_ms:>10.2} ms / {gen_tokens:>5} tokens ({:>8.2} ms per token, {:>8.2} tokens per second)",
                eval_ms / gen_tokens as f64,
                gen_tokens as f64 * 1000.0 / eval_ms
            ),
            format!(
                "slot print_timing: id  {slot} | task {task} |       total time = {:>10.2} ms / {:>5} tokens",
                prompt_ms + eval_ms,
                prompt_tokens + gen_tokens
            ),
            format!(
                "slot      release: id  {slot} | task {task} | stop processing: n_tokens = {}, truncated = 0",
                prompt_tokens + gen_tokens
            ),
            "srv  log_server_r: request: POST /v1/chat/completions 127.0.0.1 200".to_string(),
        ] {
            self.ended.at(end, Stream::Stderr, line);
        }
    }
}
