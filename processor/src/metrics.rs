//! The LLM metrics derived from records, per namespace, pod, model and server: request
//! counts by outcome, request duration, queue wait and time-per-output-token histograms,
//! token counters, error counts by type, and the engines' latest load.
//!
//! Names follow OpenTelemetry's GenAI conventions in Prometheus form where they exist
//! (`gen_ai_server_request_duration_seconds`, `gen_ai_server_time_per_output_token_seconds`)
//! and `llm_*` otherwise. Buckets are OpenTelemetry's advice for those instruments: request
//! duration 0.01 s … 81.92 s doubling (LLM requests span milliseconds to minutes), time per
//! output token 0.01 s … 2.5 s, time to first token 1 ms … 10 s (a chat user notices a
//! first token later than ~1 s, so the buckets are fine below it). Queue wait uses the
//! request-duration buckets.
//!
//! The registry is shared (`Arc`) between the processor that feeds it and whatever exports
//! it; it knows nothing about the exposition format.

use hashbrown::{Equivalent, HashMap};
use model::{Record, RecordKind, names};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// OpenTelemetry's advice for `gen_ai.server.request.duration`, seconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// OpenTelemetry's advice for `gen_ai.server.time_per_output_token`, seconds.
pub const TPOT_BUCKETS: [f64; 13] = [
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
];

/// OpenTelemetry's advice for `gen_ai.server.time_to_first_token`, seconds.
pub const TTFT_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Who a series is about: namespace, pod, model, server.
pub type Labels = [String; 4];

/// A histogram: counts per upper bound (cumulative when exported), sum and count.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Upper bounds.
    pub bounds: &'static [f64],
    /// Observations at or below each bound (not cumulative).
    pub counts: Vec<u64>,
    /// Sum of observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }
}

/// Everything measured for one label set.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Requests by outcome (finished, aborted, incomplete).
    pub requests: BTreeMap<&'static str, u64>,
    /// End-to-end request time, seconds.
    pub duration: Histogram,
    /// Queue wait, seconds.
    pub queue: Histogram,
    /// Time per output token, seconds.
    pub tpot: Histogram,
    /// Time to first token, seconds (logged or estimated; see `llm.ttft_source`).
    pub ttft: Histogram,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Error records by `error.type`.
    pub errors: BTreeMap<String, u64>,
    /// The latest engine gauges (`llm.running`, `llm.waiting`, `llm.kv_cache_pct`, …).
    pub engine: BTreeMap<&'static str, f64>,
    /// Inference calls' HTTP responses in the server's access log, by status class (`5xx`):
    /// the error rate of servers that log no request end.
    pub http_responses: BTreeMap<&'static str, u64>,
    /// Requests whose arrival was logged (`llm.event=request_received`: vLLM's and
    /// TensorRT-LLM's `Received request`): the arrival rate, also of servers that log no end.
    pub received: u64,
    /// Requests started and not yet ended (finished, aborted, timed out or evicted); `None`
    /// while none of these pods' containers has logged a request's end: vLLM v1 logs none
    /// without `--enable-log-outputs`, and counting its starts would only ever grow.
    pub in_flight: Option<i64>,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            requests: BTreeMap::new(),
            duration: Histogram::new(&DURATION_BUCKETS),
            queue: Histogram::new(&DURATION_BUCKETS),
            tpot: Histogram::new(&TPOT_BUCKETS),
            ttft: Histogram::new(&TTFT_BUCKETS),
            input_tokens: 0,
            output_tokens: 0,
            errors: BTreeMap::new(),
            engine: BTreeMap::new(),
            http_responses: BTreeMap::new(),
            received: 0,
            in_flight: None,
        }
    }
}

/// The registry.
#[derive(Debug, Default)]
pub struct LlmMetrics {
    /// Looked up by [`LabelsOf`], so that finding a record's series makes no strings (making
    /// the four label strings of every request and stats line was a sixteenth of the
    /// aggregator's thread that makes documents).
    series: Mutex<HashMap<Labels, Series>>,
    /// Open requests dropped because the table of open requests was full.
    pub requests_evicted: std::sync::atomic::AtomicU64,
    /// Requests of containers that log no request end, let go without a record.
    pub requests_unended: std::sync::atomic::AtomicU64,
}

/// `1xx` … `5xx` of an HTTP status code.
fn status_class(code: f64) -> Option<&'static str> {
    const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    let class = (code / 100.0).floor();
    (1.0..=5.0)
        .contains(&class)
        .then(|| CLASSES[class as usize - 1])
}

/// A record's labels, borrowed from it: hashes as [`Labels`] does (a slice of four strings)
/// and compares equal to the same four strings.
#[derive(Hash)]
struct LabelsOf<'a>([&'a str; 4]);

impl<'a> LabelsOf<'a> {
    fn of(record: &'a Record) -> Self {
        let r = |k: &str| record.resource_str(k).unwrap_or("");
        let a = |k: &str| record.attributes.get_str(k).unwrap_or("");
        LabelsOf([
            r(names::K8S_NAMESPACE_NAME),
            r(names::K8S_POD_NAME),
            a(names::GEN_AI_REQUEST_MODEL),
            a(names::LLM_SERVER),
        ])
    }
}

impl Equivalent<Labels> for LabelsOf<'_> {
    fn equivalent(&self, key: &Labels) -> bool {
        self.0.iter().zip(key).all(|(a, b)| *a == b.as_str())
    }
}

impl From<&LabelsOf<'_>> for Labels {
    fn from(labels: &LabelsOf<'_>) -> Self {
        labels.0.map(String::from)
    }
}

const ENGINE_GAUGES: [&str; 6] = [
    names::LLM_RUNNING,
    names::LLM_WAITING,
    names::LLM_KV_CACHE_PCT,
    names::LLM_PREFIX_CACHE_HIT_PCT,
    names::LLM_PROMPT_THROUGHPUT_TPS,
    names::LLM_GEN_THROUGHPUT_TPS,
];

impl LlmMetrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts what `record` reports: a finished request, an engine stats line, an error.
    pub fn observe(&self, record: &Record) {
        // Counted from the record, not the request tracker: an aggregator behind agents sees
        // the records only.
        let event = record.attributes.get_str(names::LLM_EVENT);
        let received = event == Some("request_received");
        let response_class = match event {
            Some("access") => record
                .attributes
                .get(names::HTTP_RESPONSE_STATUS_CODE)
                .and_then(|v| v.as_f64())
                .and_then(status_class),
            _ => None,
        };
        let relevant = record.kind == RecordKind::Request
            || record.kind == RecordKind::EngineStats
            || received
            || response_class.is_some()
            || record.attributes.get(names::ERROR_TYPE).is_some();
        if !relevant {
            return;
        }
        let Ok(mut all) = self.series.lock() else {
            return;
        };
        let s = all.entry_ref(&LabelsOf::of(record)).or_default();
        let num = |key: &str| record.attributes.get(key).and_then(|v| v.as_f64());
        if received {
            s.received += 1;
        }
        if let Some(class) = response_class {
            *s.http_responses.entry(class).or_default() += 1;
        }
        match record.kind {
            RecordKind::Request => {
                let outcome = match record.attributes.get_str(names::LLM_EVENT) {
                    Some("request_aborted") => "aborted",
                    Some("request_incomplete") => "incomplete",
                    _ => "finished",
                };
                *s.requests.entry(outcome).or_default() += 1;
                if let Some(ms) = num(names::LLM_E2E_MS) {
                    s.duration.observe(ms / 1e3);
                }
                if let Some(ms) = num(names::LLM_QUEUE_MS) {
                    s.queue.observe(ms / 1e3);
                }
                if let Some(ms) = num(names::LLM_TPOT_MS) {
                    s.tpot.observe(ms / 1e3);
                }
                if let Some(ms) = num(names::LLM_TTFT_MS) {
                    s.ttft.observe(ms / 1e3);
                }
                if let Some(n) = num(names::GEN_AI_USAGE_INPUT_TOKENS) {
                    s.input_tokens += n as u64;
                }
                if let Some(n) = num(names::GEN_AI_USAGE_OUTPUT_TOKENS) {
                    s.output_tokens += n as u64;
                }
            }
            RecordKind::EngineStats => {
                for key in ENGINE_GAUGES {
                    if let Some(v) = num(key) {
                        s.engine.insert(key, v);
                    }
                }
            }
            _ => {}
        }
        if let Some(kind) = record.attributes.get_str(names::ERROR_TYPE) {
            *s.errors.entry(kind.to_string()).or_default() += 1;
        }
    }

    /// A request began with `first` in a container that logs requests' ends (so that
    /// [`LlmMetrics::in_flight_ended`] will follow).
    pub fn in_flight_started(&self, first: &Record) {
        if let Ok(mut all) = self.series.lock() {
            let s = all.entry_ref(&LabelsOf::of(first)).or_default();
            s.in_flight = Some(s.in_flight.unwrap_or(0) + 1);
        }
    }

    /// A request counted in flight ended; `first` is the line that began it, so both sides
    /// count under the same labels.
    pub fn in_flight_ended(&self, first: &Record) {
        if let Ok(mut all) = self.series.lock() {
            let s = all.entry_ref(&LabelsOf::of(first)).or_default();
            s.in_flight = Some((s.in_flight.unwrap_or(0) - 1).max(0));
        }
    }

    /// A copy of every series, for export.
    pub fn snapshot(&self) -> BTreeMap<Labels, Series> {
        self.series
            .lock()
            .map(|all| all.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{AttrValue, Attributes, RecordId, Timestamp};
    use std::hash::BuildHasher;
    use std::sync::Arc;

    fn request(pod: &str, model: &str) -> Record {
        let resource: Attributes = [
            (names::K8S_NAMESPACE_NAME, AttrValue::from("llm")),
            (names::K8S_POD_NAME, AttrValue::from(pod)),
        ]
        .into_iter()
        .collect();
        let mut r = Record::log(
            RecordId::from_source(b"metrics-test", 0),
            Timestamp::now(),
            Timestamp::now(),
            Arc::new(resource),
            "done".into(),
        );
        r.kind = RecordKind::Request;
        r.attributes.insert(names::GEN_AI_REQUEST_MODEL, model);
        r.attributes.insert(names::LLM_SERVER, "vllm");
        r
    }

    #[test]
    fn borrowed_labels_hash_and_compare_as_the_owned_ones() {
        let record = request("vllm-0", "llama");
        let borrowed = LabelsOf::of(&record);
        let owned = Labels::from(&borrowed);
        assert_eq!(owned, ["llm", "vllm-0", "llama", "vllm"].map(String::from));
        let hasher = hashbrown::DefaultHashBuilder::default();
        assert_eq!(hasher.hash_one(&borrowed), hasher.hash_one(&owned));
        assert!(borrowed.equivalent(&owned));
        let other = request("vllm-1", "llama");
        assert!(!LabelsOf::of(&other).equivalent(&owned));
    }

    #[test]
    fn records_with_the_same_labels_count_in_one_series() {
        let metrics = LlmMetrics::new();
        for pod in ["vllm-0", "vllm-1", "vllm-0"] {
            metrics.observe(&request(pod, "llama"));
        }
        metrics.in_flight_started(&request("vllm-1", "llama"));
        let mut received = request("vllm-0", "llama");
        received.kind = RecordKind::Log;
        received
            .attributes
            .insert(names::LLM_EVENT, "request_received");
        metrics.observe(&received);
        for (status, event) in [(503, "access"), (200, "access"), (500, "probe")] {
            let mut access = request("vllm-0", "llama");
            access.kind = RecordKind::Log;
            access.attributes.insert(names::LLM_EVENT, event);
            access
                .attributes
                .insert(names::HTTP_RESPONSE_STATUS_CODE, status as i64);
            metrics.observe(&access);
        }
        let classes: Vec<_> = metrics
            .snapshot()
            .into_values()
            .flat_map(|s| s.http_responses)
            .collect();
        assert_eq!(classes, [("2xx", 1), ("5xx", 1)], "probes left out");
        let snapshot = metrics.snapshot();
        let counts: Vec<(&str, u64, u64, Option<i64>)> = snapshot
            .iter()
            .map(|(labels, s)| {
                let finished = s.requests.get("finished").copied().unwrap_or(0);
                (labels[1].as_str(), finished, s.received, s.in_flight)
            })
            .collect();
        assert_eq!(counts, [("vllm-0", 2, 1, None), ("vllm-1", 1, 0, Some(1))]);
    }
}
