//! Request lifecycles: a request's start, progress and end lines joined into one
//! `kind:"request"` record with its timings and token counts (DESIGN.md §3).
//!
//! - vLLM: `Received request <id>` opens (with `max_tokens`, `temperature`), `Finished` /
//!   `Aborted request` or `Generated response … (streaming complete)` closes. v1 logs the
//!   engine's id with a suffix (`chatcmpl-a269…-a8a65d16`); both forms find the request.
//! - llama.cpp: the task id; the timing block's lines add prefill/decode times and token
//!   counts and its `total time`; the slot's release (`stop processing`) closes.
//! - TGI/TEI: one `Success` line holds everything, so it is a finished request at once.
//!
//! Requests are kept per container (a request id is only unique there). Memory is bounded:
//! at most `max_open` (20,000) requests wait; the oldest is evicted (and counted) beyond that, and a
//! request that sees no end within `timeout` is emitted as `request_incomplete`.
//!
//! Only where a container has logged a request's normal end. vLLM v1 logs `Received request`
//! and, without `--enable-log-outputs`, no end at all (an `Aborted request` only for the
//! aborted): there every request would time out as a false `request_incomplete` warning and
//! count in flight for ten minutes. Until a container logs a finish its requests are not
//! counted in flight, are kept only `unended_timeout` (a minute: long enough to meet the
//! first finish of a server that does log them), are the first evicted when the table is
//! full (a busy vLLM v1 must not push out the requests of a llama.cpp beside it), and are
//! dropped quietly (counted as `unended`).

use crate::metrics::LlmMetrics;
use model::{Attributes, Record, RecordKind, Severity, Timestamp, names};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Limits of the open-request table.
#[derive(Clone, Debug)]
pub struct LifecycleLimits {
    /// Most requests waiting for their end. An open request costs about 2 KiB; 20,000 is
    /// more than a node's engines hold at once (vLLM's default `max_num_seqs` is 256 running
    /// per engine, plus its queue), and bounds the table near 40 MiB.
    pub max_open: usize,
    /// A request open this long (by its lines' timestamps) is emitted as incomplete.
    pub timeout_nanos: i64,
    /// A request of a container that has logged no request's end is kept this long.
    pub unended_timeout_nanos: i64,
}

impl Default for LifecycleLimits {
    fn default() -> Self {
        LifecycleLimits {
            max_open: 20_000,
            timeout_nanos: 10 * 60 * 1_000_000_000,
            unended_timeout_nanos: 60 * 1_000_000_000,
        }
    }
}

/// Fields copied from a request's lines into its record.
const CARRIED: [&str; 14] = [
    names::GEN_AI_REQUEST_MODEL,
    names::GEN_AI_REQUEST_MAX_TOKENS,
    names::GEN_AI_REQUEST_TEMPERATURE,
    names::GEN_AI_USAGE_INPUT_TOKENS,
    names::GEN_AI_USAGE_OUTPUT_TOKENS,
    names::LLM_PREFILL_MS,
    names::LLM_DECODE_MS,
    names::LLM_TOKENS_PER_S,
    names::LLM_QUEUE_MS,
    names::LLM_VALIDATION_MS,
    names::LLM_INFERENCE_MS,
    names::LLM_TPOT_MS,
    names::LLM_TTFT_MS,
    names::LLM_TTFT_SOURCE,
];

type Key = (Arc<str>, String);

struct Open {
    first: Record,
    attributes: Attributes,
    /// The server's clock at the start (TensorRT-LLM), for exact differences.
    clock_s: Option<f64>,
    /// Counted in flight (its container had logged a finish when it began).
    in_flight: bool,
}

/// The open requests and what was evicted.
#[derive(Default)]
pub struct RequestTracker {
    limits: LifecycleLimits,
    metrics: Option<Arc<LlmMetrics>>,
    open: HashMap<Key, Open>,
    /// Starts of requests of containers that log ends, oldest first (stale ones included:
    /// see [`is_current`]).
    order: VecDeque<(Key, Timestamp)>,
    /// Starts of requests of containers that have logged no end yet, oldest first.
    order_unended: VecDeque<(Key, Timestamp)>,
    evicted: u64,
    /// Containers that log requests' normal ends, with the time of the last one.
    finishing: HashMap<Arc<str>, Timestamp>,
    /// `finishing`'s size after its last pruning.
    finishing_pruned: usize,
    /// Requests of containers that log no end, dropped at the timeout.
    unended: u64,
}

impl std::fmt::Debug for RequestTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RequestTracker({} open, {} evicted)",
            self.open.len(),
            self.evicted
        )
    }
}

impl RequestTracker {
    /// A tracker with `limits`.
    pub fn new(limits: LifecycleLimits) -> Self {
        RequestTracker {
            limits,
            ..Default::default()
        }
    }

    /// Counts requests in flight in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<LlmMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Tells the metrics that `open` is no longer in flight, if it was counted there.
    fn ended(&self, open: &Open) {
        if let (Some(m), true) = (&self.metrics, open.in_flight) {
            m.in_flight_ended(&open.first);
        }
    }

    /// Requests evicted because too many were open.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Requests of containers that have logged no request's end, dropped at the timeout
    /// rather than reported incomplete.
    pub fn unended(&self) -> u64 {
        self.unended
    }

    /// Remembers that the container `scope` logs requests' normal ends. Containers come and
    /// go (a restarted pod is a new uid): the ones with no finish for a day are forgotten
    /// whenever the map has doubled, so it stays near the containers that are alive.
    fn finishes_in(&mut self, scope: &Arc<str>, at: Timestamp) {
        if let Some(last) = self.finishing.get_mut(scope) {
            *last = at;
            return;
        }
        self.finishing.insert(Arc::clone(scope), at);
        if self.finishing.len() > 2 * self.finishing_pruned + 1024 {
            const DAY_NANOS: i64 = 24 * 3600 * 1_000_000_000;
            self.finishing
                .retain(|_, last| at.unix_nanos().saturating_sub(last.unix_nanos()) < DAY_NANOS);
            self.finishing_pruned = self.finishing.len();
        }
    }

    /// Requests waiting for their end.
    pub fn open(&self) -> usize {
        self.open.len()
    }

    /// Looks at a parsed record; finished (or timed-out) requests are appended to `out`.
    pub fn observe(&mut self, record: &Record, out: &mut Vec<Record>) {
        let server = record.attributes.get_str(names::LLM_SERVER).unwrap_or("");
        let event = record.attributes.get_str(names::LLM_EVENT).unwrap_or("");
        // A normal end (not an abort: vLLM v1 logs those and no other) says this container's
        // requests end in a line; known before the timeout below judges its open requests.
        let finishes = matches!(event, "request_finished" | "response" | "response_started")
            || (server == "llamacpp" && record.body.contains("stop processing"));
        let finished_in = (finishes && record.attributes.get(names::LLM_REQUEST_ID).is_some())
            .then(|| scope(record));
        if let Some(scope) = &finished_in {
            self.finishes_in(scope, record.timestamp);
        }
        self.expire(record.timestamp, out);
        // TGI/TEI: the whole request in one line.
        if record.attributes.get(names::LLM_INFERENCE_MS).is_some()
            && record.attributes.get(names::LLM_E2E_MS).is_some()
            && record.attributes.get(names::LLM_REQUEST_ID).is_none()
        {
            out.push(request_record(
                record,
                record,
                record.attributes.clone(),
                "finished",
            ));
            return;
        }
        let Some(id) = record.attributes.get_str(names::LLM_REQUEST_ID) else {
            return;
        };
        let scope = finished_in.unwrap_or_else(|| scope(record));
        match (server, event) {
            (_, "request_received") => self.start(scope, id.to_string(), record),
            (_, "response_started") => {
                // TensorRT-LLM logs when a response starts, and nothing when it ends: for a
                // non-streamed request (the usual API call) that is the whole response, so
                // it ends the request; its time to first token is the same span.
                if let Some(open) = self.take(&scope, id) {
                    let clock = record.attributes.get(names::LLM_SERVER_CLOCK_S);
                    let span = match (open.clock_s, clock.and_then(|v| v.as_f64())) {
                        (Some(a), Some(b)) if b >= a => Some((b - a) * 1e3),
                        _ => None,
                    };
                    let mut r = finish(open, record, "finished");
                    let a = &mut r.attributes;
                    if let Some(ms) = span {
                        a.insert_f64(names::LLM_E2E_MS, ms);
                    }
                    if let Some(ms) = a.get(names::LLM_E2E_MS).cloned() {
                        a.insert(names::LLM_TTFT_MS, ms);
                        a.insert(names::LLM_TTFT_SOURCE, "logged");
                    }
                    out.push(r);
                }
            }
            (_, "request_finished") | (_, "request_aborted") | (_, "response") => {
                let outcome = if event == "request_aborted" {
                    "aborted"
                } else {
                    "finished"
                };
                if let Some(open) = self.take(&scope, id) {
                    out.push(finish(open, record, outcome));
                }
            }
            ("llamacpp", _) if id != "-1" => {
                // The slot is released (`stop processing`) after the timing block: that
                // ends the task. A release of a task never seen opens nothing.
                let ends = record.body.contains("stop processing");
                let key = (scope, id.to_string());
                if !self.open.contains_key(&key) {
                    if ends {
                        return;
                    }
                    self.start(key.0.clone(), key.1.clone(), record);
                }
                if let Some(open) = self.open.get_mut(&key) {
                    carry(&record.attributes, &mut open.attributes);
                    // `total time` is the task's own end-to-end time.
                    if let Some(e2e) = record.attributes.get(names::LLM_E2E_MS) {
                        open.attributes.insert(names::LLM_E2E_MS, e2e.clone());
                    }
                }
                if ends && let Some(open) = self.take(&key.0, &key.1) {
                    out.push(finish(open, record, "finished"));
                }
            }
            _ => {}
        }
    }

    fn start(&mut self, scope: Arc<str>, id: String, record: &Record) {
        // Full: the requests least likely to see an end go first.
        while self.open.len() >= self.limits.max_open {
            let Some((key, started)) = self
                .order_unended
                .pop_front()
                .or_else(|| self.order.pop_front())
            else {
                break;
            };
            if is_current(&self.open, &key, started)
                && let Some(open) = self.open.remove(&key)
            {
                self.ended(&open);
                self.evicted += 1;
                if let Some(m) = &self.metrics {
                    m.requests_evicted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // Finished requests' entries would otherwise stay until the timeout: every request
        // of the last ten minutes (at 1,000 requests/s, 600,000 of them) instead of the
        // open ones. Dropping them whenever they outnumber the open ones keeps it amortised.
        if self.order.len() + self.order_unended.len() > 2 * self.open.len() + 1024 {
            let open = &self.open;
            self.order
                .retain(|(key, started)| is_current(open, key, *started));
            self.order_unended
                .retain(|(key, started)| is_current(open, key, *started));
        }
        let mut attributes = Attributes::new();
        carry(&record.attributes, &mut attributes);
        let in_flight = self.finishing.contains_key(&scope);
        let key = (scope, id);
        // The same id started again (a client retry, a replay): the newer start wins.
        if let Some(old) = self.open.remove(&key) {
            self.ended(&old);
        }
        if let (Some(m), true) = (&self.metrics, in_flight) {
            m.in_flight_started(record);
        }
        let order = match in_flight {
            true => &mut self.order,
            false => &mut self.order_unended,
        };
        order.push_back((key.clone(), record.timestamp));
        self.open.insert(
            key,
            Open {
                first: light_copy(record),
                attributes,
                clock_s: record
                    .attributes
                    .get(names::LLM_SERVER_CLOCK_S)
                    .and_then(|v| v.as_f64()),
                in_flight,
            },
        );
    }

    /// The open request `id`, found under its own id or, for vLLM v1's suffixed engine id
    /// (`<id>-<8 hex>`), under the id without the suffix.
    fn take(&mut self, scope: &Arc<str>, id: &str) -> Option<Open> {
        let key = (Arc::clone(scope), id.to_string());
        let open = self.open.remove(&key).or_else(|| {
            let base = id.rsplit_once('-').and_then(|(base, suffix)| {
                (suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_hexdigit())).then_some(base)
            })?;
            self.open.remove(&(Arc::clone(scope), base.to_string()))
        })?;
        self.ended(&open);
        Some(open)
    }

    /// Emits requests open longer than the timeout, as incomplete; drops those of
    /// containers that log no end after the shorter `unended_timeout`.
    fn expire(&mut self, now: Timestamp, out: &mut Vec<Record>) {
        let unended_timeout = self.limits.unended_timeout_nanos;
        while let Some((key, started)) =
            pop_expired(&mut self.order_unended, &self.open, now, unended_timeout)
        {
            if self.finishing.contains_key(&key.0) {
                // Started before its container's first finish: it may still end, and is
                // timed like the others from now on (late in `order`, so a little later).
                self.order.push_back((key, started));
                continue;
            }
            if self.open.remove(&key).is_some() {
                if self.unended == 0 {
                    tracing::info!(
                        container = %key.0,
                        "requests of this container end in no log line (vLLM v1 logs none without --enable-log-outputs): they count as received, not in flight, and are not timed"
                    );
                }
                self.unended += 1;
                if let Some(m) = &self.metrics {
                    m.requests_unended.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        while let Some((key, _)) =
            pop_expired(&mut self.order, &self.open, now, self.limits.timeout_nanos)
        {
            if let Some(open) = self.open.remove(&key) {
                self.ended(&open);
                let mut r = request_record(&open.first, &open.first, open.attributes, "incomplete");
                r.attributes.remove(names::LLM_E2E_MS);
                r.severity = Some(Severity::Warn);
                out.push(r);
            }
        }
    }
}

/// The oldest start in `order` that is `timeout` old at `now` and still its request's start
/// (the stale entries before it are dropped); `None` once the oldest is younger.
fn pop_expired(
    order: &mut VecDeque<(Key, Timestamp)>,
    open: &HashMap<Key, Open>,
    now: Timestamp,
    timeout: i64,
) -> Option<(Key, Timestamp)> {
    while let Some((_, started)) = order.front() {
        if now.unix_nanos().saturating_sub(started.unix_nanos()) < timeout {
            return None;
        }
        let (key, started) = order.pop_front()?;
        if is_current(open, &key, started) {
            return Some((key, started));
        }
    }
    None
}

/// Whether an `order` entry (`key` started at `started`) is still the open request's
/// start: a finished request leaves its entry behind, and a restarted one a stale one.
fn is_current(open: &HashMap<Key, Open>, key: &Key, started: Timestamp) -> bool {
    open.get(key).is_some_and(|o| o.first.timestamp == started)
}

/// What an open request keeps of its first line: its identity, time, resource and the
/// attributes a request record uses, not the body (a vLLM `Received request` line with its
/// sampling parameters is ~500 bytes; a node can have many thousand requests open).
fn light_copy(record: &Record) -> Record {
    let mut attributes = Attributes::new();
    for key in [
        names::LLM_REQUEST_ID,
        names::LLM_SERVER,
        names::GEN_AI_REQUEST_MODEL,
    ] {
        if let Some(v) = record.attributes.get(key) {
            attributes.insert(key, v.clone());
        }
    }
    Record {
        id: record.id,
        timestamp: record.timestamp,
        observed_timestamp: record.observed_timestamp,
        kind: record.kind,
        resource: Arc::clone(&record.resource),
        severity: record.severity,
        stream: record.stream,
        body: String::new(),
        attributes,
    }
}

fn scope(record: &Record) -> Arc<str> {
    let uid = record.resource_str(names::K8S_POD_UID).unwrap_or("");
    let container = record.resource_str(names::K8S_CONTAINER_NAME).unwrap_or("");
    format!("{uid}/{container}").into()
}

fn carry(from: &Attributes, to: &mut Attributes) {
    for key in CARRIED {
        if let Some(v) = from.get(key) {
            to.insert(key, v.clone());
        }
    }
}

fn finish(open: Open, last: &Record, outcome: &str) -> Record {
    let mut attributes = open.attributes;
    carry(&last.attributes, &mut attributes);
    let mut r = request_record(&open.first, last, attributes, outcome);
    if r.attributes.get(names::LLM_E2E_MS).is_none() {
        let ms = (last.timestamp.unix_nanos() - open.first.timestamp.unix_nanos()) as f64 / 1e6;
        r.attributes.insert_f64(names::LLM_E2E_MS, ms.max(0.0));
    }
    // The first token comes when prompt processing ends: llama.cpp logs that time but not
    // the wait for a slot before it, so it is an estimate from below.
    if r.attributes.get(names::LLM_TTFT_MS).is_none()
        && let Some(prefill) = r.attributes.get(names::LLM_PREFILL_MS).cloned()
    {
        r.attributes.insert(names::LLM_TTFT_MS, prefill);
        r.attributes.insert(names::LLM_TTFT_SOURCE, "estimated");
    }
    r
}

/// The `request` record of a request that began with `first` and ended with `last`.
fn request_record(
    first: &Record,
    last: &Record,
    mut attributes: Attributes,
    outcome: &str,
) -> Record {
    if let Some(v) = last.attributes.get(names::LLM_E2E_MS) {
        attributes.insert(names::LLM_E2E_MS, v.clone());
    }
    for key in [names::LLM_REQUEST_ID, names::LLM_SERVER] {
        if let Some(v) = first
            .attributes
            .get(key)
            .or_else(|| last.attributes.get(key))
        {
            attributes.insert(key, v.clone());
        }
    }
    let event = match outcome {
        "aborted" => "request_aborted",
        "incomplete" => "request_incomplete",
        _ => "request_finished",
    };
    attributes.insert(names::LLM_EVENT, event);
    let id = attributes
        .get_str(names::LLM_REQUEST_ID)
        .unwrap_or("")
        .to_string();
    Record {
        id: last.id.derive(b"request"),
        timestamp: first.timestamp,
        observed_timestamp: last.observed_timestamp,
        kind: RecordKind::Request,
        resource: Arc::clone(&last.resource),
        severity: Some(Severity::Info),
        stream: None,
        body: if id.is_empty() {
            format!("request {outcome}")
        } else {
            format!("request {id} {outcome}")
        },
        attributes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{AttrValue, RecordId};

    /// Runs `lines` (seconds, text) through a processor; returns the request records.
    fn requests(lines: &[(i64, &str)]) -> Vec<Record> {
        let mut p = crate::InferenceLogProcessor::new();
        let mut out = Vec::new();
        for (i, (secs, text)) in lines.iter().enumerate() {
            let mut r = Record::log(
                RecordId(i as u128),
                Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + secs * 1_000_000_000),
                Timestamp::now(),
                Arc::default(),
                text.to_string(),
            );
            p.process(&mut r, &mut out);
        }
        out
    }

    #[test]
    fn a_vllm_request_from_received_to_finished_with_the_v1_suffix() {
        let got = requests(&[
            (
                0,
                "(APIServer pid=1) INFO 02-13 11:33:33 [logger.py:49] Received request chatcmpl-a269fdcb7c6ce890: params: SamplingParams(n=1, temperature=0.7, top_p=0.95, max_tokens=100), prompt_token_ids: None.",
            ),
            (
                0,
                "(APIServer pid=1) INFO 02-13 11:33:33 [async_llm.py:382] Added request chatcmpl-a269fdcb7c6ce890-a8a65d16.",
            ),
            (
                7,
                "(APIServer pid=1) INFO 02-13 11:33:40 [logger.py:71] Generated response chatcmpl-a269fdcb7c6ce890-a8a65d16 (streaming complete): output: 'Hello!', finish_reason: stop",
            ),
        ]);
        assert_eq!(got.len(), 1);
        let r = &got[0];
        assert_eq!(r.kind, RecordKind::Request);
        assert_eq!(
            r.attributes.get_str(names::LLM_REQUEST_ID),
            Some("chatcmpl-a269fdcb7c6ce890")
        );
        assert_eq!(
            r.attributes.get(names::LLM_E2E_MS),
            Some(&AttrValue::Float(7000.0))
        );
        assert_eq!(
            r.attributes.get(names::GEN_AI_REQUEST_MAX_TOKENS),
            Some(&AttrValue::Int(100))
        );
        assert_eq!(
            r.attributes.get_str(names::LLM_EVENT),
            Some("request_finished")
        );
    }

    #[test]
    fn llama_cpp_timing_block_completes_its_task() {
        let got = requests(&[
            (
                0,
                "slot update_slots: id  0 | task 7 | new prompt, n_ctx_slot = 4096, n_keep = 0, n_prompt_tokens = 51",
            ),
            (
                1,
                "slot print_timing: id  0 | task 7 | prompt eval time =     915.13 ms /    51 tokens (   17.94 ms per token,    55.73 tokens per second)",
            ),
            (
                24,
                "slot print_timing: id  0 | task 7 |        eval time =   23038.87 ms /   275 tokens (   83.78 ms per token,    11.94 tokens per second)",
            ),
            (
                24,
                "slot print_timing: id  0 | task 7 |       total time =   23954.00 ms /   326 tokens",
            ),
            (
                24,
                "slot      release: id  0 | task 7 | stop processing: n_past = 325, truncated = 0",
            ),
            // The release of a task never seen starts nothing.
            (
                25,
                "slot      release: id  0 | task 8 | stop processing: n_past = 1, truncated = 0",
            ),
        ]);
        assert_eq!(got.len(), 1);
        let a = &got[0].attributes;
        assert_eq!(a.get(names::LLM_E2E_MS), Some(&AttrValue::Float(23954.0)));
        assert_eq!(
            a.get(names::GEN_AI_USAGE_INPUT_TOKENS),
            Some(&AttrValue::Int(51))
        );
        assert_eq!(
            a.get(names::GEN_AI_USAGE_OUTPUT_TOKENS),
            Some(&AttrValue::Int(275))
        );
        assert_eq!(
            a.get(names::LLM_PREFILL_MS),
            Some(&AttrValue::Float(915.13))
        );
        assert_eq!(a.get(names::LLM_TTFT_MS), Some(&AttrValue::Float(915.13)));
        assert_eq!(a.get_str(names::LLM_TTFT_SOURCE), Some("estimated"));
        assert_eq!(a.get(names::LLM_TPOT_MS), Some(&AttrValue::Float(83.78)));
    }

    #[test]
    fn a_tensorrt_llm_request_is_timed_by_the_server_clock() {
        let got = requests(&[
            (
                0,
                "[07/09/2025-23:07:49] [TRT-LLM] [I] Received request c1627587 at 32142.770581067",
            ),
            (
                0,
                "[07/09/2025-23:07:49] [TRT-LLM] [I] Received request 6cf19bd4 at 32142.771139221",
            ),
            (
                1,
                "[07/09/2025-23:07:50] [TRT-LLM] [I] Response started c1627587 at 32143.546522802",
            ),
            // A second chunk of a streamed response: its request has ended already.
            (
                2,
                "[07/09/2025-23:07:51] [TRT-LLM] [I] Response started c1627587 at 32144.0",
            ),
        ]);
        assert_eq!(got.len(), 1);
        let a = &got[0].attributes;
        assert_eq!(a.get_str(names::LLM_REQUEST_ID), Some("c1627587"));
        assert_eq!(a.get_str(names::LLM_SERVER), Some("trtllm"));
        let ms = a.get(names::LLM_TTFT_MS).and_then(|v| v.as_f64()).unwrap();
        assert!((ms - 775.941581).abs() < 1e-3, "{ms}");
        assert_eq!(a.get(names::LLM_E2E_MS), a.get(names::LLM_TTFT_MS));
        assert_eq!(a.get_str(names::LLM_TTFT_SOURCE), Some("logged"));
    }

    #[test]
    fn a_tgi_success_line_is_a_request_and_unfinished_ones_time_out_or_are_evicted() {
        let got = requests(&[(
            0,
            r#"2024-05-01T12:00:00.1Z  INFO generate{total_time="357.867572ms" validation_time="1.96844ms" queue_time="49.382µs" inference_time="355.849981ms" time_per_token="14.827082ms"}: text_generation_router::server: Success"#,
        )]);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].attributes.get(names::LLM_QUEUE_MS),
            Some(&AttrValue::Float(0.049382))
        );

        // A container that logs its requests' ends (vLLM v0's `Finished request`).
        let got = requests(&[
            (
                0,
                "INFO 01-17 03:11:25 async_llm_engine.py:436] Received request cmpl-0: prompt: None, sampling_params: SamplingParams(n=1, max_tokens=5).",
            ),
            (
                0,
                "INFO 01-17 03:11:25 async_llm_engine.py:110] Finished request cmpl-0.",
            ),
            (
                0,
                "INFO 01-17 03:11:25 async_llm_engine.py:436] Received request cmpl-1: prompt: None, sampling_params: SamplingParams(n=1, max_tokens=5).",
            ),
            (
                601,
                "INFO 01-17 03:21:26 metrics.py:161] Avg prompt throughput: 0.0 tokens/s",
            ),
        ]);
        let events: Vec<_> = got
            .iter()
            .map(|r| r.attributes.get_str(names::LLM_EVENT))
            .collect();
        assert_eq!(
            events,
            [Some("request_finished"), Some("request_incomplete")]
        );

        let mut t = RequestTracker::new(LifecycleLimits {
            max_open: 2,
            ..Default::default()
        });
        let mut out = Vec::new();
        for i in 0..5 {
            let mut r = Record::log(
                RecordId(i),
                Timestamp::from_unix_nanos(0),
                Timestamp::now(),
                Arc::default(),
                String::new(),
            );
            r.attributes.insert(names::LLM_REQUEST_ID, format!("r{i}"));
            r.attributes.insert(names::LLM_EVENT, "request_received");
            t.observe(&r, &mut out);
        }
        assert_eq!((t.open(), t.evicted()), (2, 3));
    }

    fn event(id: &str, event: &str, secs: i64) -> Record {
        let mut r = Record::log(
            RecordId(0),
            Timestamp::from_unix_nanos(secs * 1_000_000_000),
            Timestamp::now(),
            Arc::default(),
            String::new(),
        );
        r.attributes.insert(names::LLM_REQUEST_ID, id.to_string());
        r.attributes.insert(names::LLM_EVENT, event);
        r
    }

    #[test]
    fn finished_requests_leave_nothing_behind_and_a_restarted_one_keeps_its_new_start() {
        let mut t = RequestTracker::default();
        let mut out = Vec::new();
        // 100k requests in 100 s (well inside the ten-minute timeout), each finished.
        for i in 0..100_000 {
            let id = format!("r{i}");
            t.observe(&event(&id, "request_received", i / 1000), &mut out);
            t.observe(&event(&id, "request_finished", i / 1000), &mut out);
        }
        assert_eq!((t.open(), out.len()), (0, 100_000));
        assert!(
            t.order.len() + t.order_unended.len() <= 1024,
            "{} start entries kept for 0 open requests",
            t.order.len() + t.order_unended.len()
        );

        // In a container that logs ends: started at 0 s and again at 300 s, at 601 s it has
        // been open 301 s, not 601.
        let mut t = RequestTracker::default();
        let mut out = Vec::new();
        t.observe(&event("first", "request_received", 0), &mut out);
        t.observe(&event("first", "request_finished", 0), &mut out);
        out.clear();
        t.observe(&event("again", "request_received", 0), &mut out);
        t.observe(&event("again", "request_received", 300), &mut out);
        t.observe(&event("other", "request_received", 601), &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(t.open(), 2);
        t.observe(&event("other", "request_finished", 901), &mut out);
        let incomplete: Vec<_> = out
            .iter()
            .filter(|r| r.attributes.get_str(names::LLM_EVENT) == Some("request_incomplete"))
            .collect();
        assert_eq!(
            incomplete.len(),
            1,
            "timed out once, from its new start: {out:?}"
        );
    }

    #[test]
    fn requests_of_a_container_that_logs_no_end_are_not_in_flight_and_never_incomplete() {
        let metrics = Arc::new(LlmMetrics::new());
        let mut t = RequestTracker::default().with_metrics(Arc::clone(&metrics));
        let mut out = Vec::new();
        let in_flight = || {
            metrics
                .snapshot()
                .into_values()
                .next()
                .and_then(|s| s.in_flight)
        };
        // vLLM v1: starts, and an abort, but no request's normal end.
        for i in 0..50 {
            t.observe(&event(&format!("r{i}"), "request_received", i), &mut out);
        }
        t.observe(&event("r0", "request_aborted", 50), &mut out);
        assert_eq!(in_flight(), None, "unknown, not growing");
        // Ten minutes on: the abort is a request; the others are no false warnings, and
        // were let go after a minute.
        t.observe(&event("late", "request_received", 1000), &mut out);
        let events: Vec<_> = out
            .iter()
            .map(|r| r.attributes.get_str(names::LLM_EVENT))
            .collect();
        assert_eq!(events, [Some("request_aborted")]);
        assert_eq!((t.unended(), t.open()), (49, 1));
        assert_eq!(
            metrics.requests_unended.load(Ordering::Relaxed),
            49,
            "on /metrics"
        );

        // Once it logs a finish, its requests are in flight until they end, and one that
        // sees no end times out as incomplete.
        out.clear();
        t.observe(&event("late", "request_finished", 1001), &mut out);
        t.observe(&event("a", "request_received", 1002), &mut out);
        t.observe(&event("b", "request_received", 1002), &mut out);
        assert_eq!(in_flight(), Some(2));
        t.observe(&event("a", "request_finished", 1003), &mut out);
        assert_eq!(t.open(), 1, "b");
        assert_eq!(in_flight(), Some(1));
        t.observe(&event("c", "request_received", 1700), &mut out);
        let events: Vec<_> = out
            .iter()
            .map(|r| r.attributes.get_str(names::LLM_EVENT))
            .collect();
        assert_eq!(
            events,
            [
                Some("request_finished"),
                Some("request_finished"),
                Some("request_incomplete")
            ]
        );
        assert_eq!(in_flight(), Some(1), "only c is in flight");
        assert_eq!(t.unended(), 49);
    }

    /// A request of `container`'s pod (a scope of its own).
    fn event_in(container: &str, id: &str, event: &str, secs: i64) -> Record {
        let mut r = self::event(id, event, secs);
        r.resource = Arc::new(
            [(names::K8S_CONTAINER_NAME, AttrValue::from(container))]
                .into_iter()
                .collect(),
        );
        r
    }

    #[test]
    fn a_full_table_lets_go_of_requests_that_may_never_end_first() {
        let metrics = Arc::new(LlmMetrics::new());
        let mut t = RequestTracker::new(LifecycleLimits {
            max_open: 10,
            ..Default::default()
        })
        .with_metrics(Arc::clone(&metrics));
        let mut out = Vec::new();
        // llama.cpp-like: logs ends; one long request open.
        t.observe(&event_in("llama", "t0", "request_received", 0), &mut out);
        t.observe(&event_in("llama", "t0", "request_finished", 1), &mut out);
        t.observe(&event_in("llama", "t1", "request_received", 2), &mut out);
        // vLLM v1-like beside it: many starts, never an end.
        for i in 0..50 {
            t.observe(
                &event_in("vllm", &format!("v{i}"), "request_received", 3),
                &mut out,
            );
        }
        assert_eq!(t.open(), 10);
        assert_eq!(
            metrics.requests_evicted.load(Ordering::Relaxed),
            41,
            "on /metrics"
        );
        out.clear();
        t.observe(&event_in("llama", "t1", "request_finished", 30), &mut out);
        assert_eq!(out.len(), 1, "the long request kept its end: {out:?}");
        assert_eq!(out[0].attributes.get_str(names::LLM_REQUEST_ID), Some("t1"));
    }
}
