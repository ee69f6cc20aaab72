//! Applies the parsers to the records of a batch.

use crate::detect::server_signature;
use crate::gpu_join::GpuJoin;
use crate::lifecycle::RequestTracker;
use crate::metrics::LlmMetrics;
use crate::parsers::{
    generic, http, llamacpp, lmdeploy, ray, sglang, startup, tgi, triton, trtllm, vllm,
};
use crate::wrappers::{
    split_compose, split_journald, split_process_tag, split_ray_repeated, strip_ansi,
};
use crate::{errors, severity};
use model::{Batch, Record, RecordKind, names};
use std::borrow::Cow;
use std::collections::HashMap;

/// Turns container log records into records with the contract's attributes.
///
/// Holds state (counters now; per-container server detection and request lifecycles
/// later), so one instance serves one stream of records in order.
#[derive(Debug, Default)]
pub struct InferenceLogProcessor {
    lines_seen: u64,
    lines_recognised: u64,
    requests: RequestTracker,
    metrics: Option<std::sync::Arc<LlmMetrics>>,
    /// The server each container was recognised as (pod uid → container → server), so its
    /// other lines say which server wrote them too. Nested so that a lookup, done for every
    /// line, borrows the names instead of building a key.
    detected: HashMap<String, HashMap<String, usize>>,
    /// What is known of each container, indexed from `detected`.
    known: Vec<Known>,
    /// The resource of the previous line and its container's index: a batch holds runs of
    /// one container's lines (sharing one resource), which then need no lookup.
    last: Option<(std::sync::Arc<model::Attributes>, usize)>,
    /// A server named by the user for every line (`parse --server`).
    forced: Option<String>,
    /// The user's server per container (config), asked once per container.
    assignment: Option<ServerAssignment>,
    /// GPU snapshots seen, for requests and engine stats of the same pods.
    gpu: Option<GpuJoin>,
}

/// What is known of a container's server.
#[derive(Debug)]
struct Known {
    server: Option<String>,
    /// Named by the user (annotation, label or config): detection does not change it.
    pinned: bool,
    /// The model it serves, from the line its engine logs at start (vLLM): its request and
    /// stats lines do not name it, and without it every figure of the dashboard and of
    /// `/metrics` is `model=""`.
    model: Option<String>,
    /// When each of its engines last logged a generation throughput.
    throughput_at: Vec<ThroughputClock>,
}

/// One engine's throughput lines so far.
#[derive(Debug)]
struct ThroughputClock {
    /// `llm.engine_index` (0 where the line names none).
    engine: i64,
    /// When it last logged one, ns.
    last: i64,
    /// The shortest time between two of its lines (of at least a second), ns: about its
    /// logging interval, once it has logged two lines in a row.
    shortest: Option<i64>,
    /// The time between its latest two lines in a row (no pause between), ns: its logging
    /// interval as it runs now.
    interval: Option<i64>,
}

/// The user's choice of server for a container, by namespace, pod and container name (the
/// `servers` globs of the pipeline config); `None` leaves it to detection.
pub struct ServerAssignment(pub Box<AssignFn>);

/// `(namespace, pod, container)` → the server the user named.
pub type AssignFn = dyn Fn(&str, &str, &str) -> Option<&'static str> + Send;

impl std::fmt::Debug for ServerAssignment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerAssignment")
    }
}

/// The longest stretch a throughput line is taken to cover where it covers the time since
/// the line before (vLLM v0, SGLang): an idle pause between two is covered whole (their
/// engines log nothing while idle, and the next line's rate is over the pause too); a longer
/// gap is more likely lines this process did not see.
const MAX_THROUGHPUT_STRETCH_NANOS: i64 = 600 * 1_000_000_000;

/// vLLM v1's stats interval (`VLLM_LOG_STATS_INTERVAL`'s default), for an engine whose own
/// is not known yet.
const VLLM_V1_STATS_INTERVAL_NANOS: i64 = 10 * 1_000_000_000;

/// Containers whose servers are remembered; beyond this the memory starts over (a node
/// runs far fewer).
const MAX_DETECTED: usize = 10_000;

/// The servers the parsers know (the values of `llm.server`).
pub const SERVERS: [&str; 13] = [
    "vllm", "tgi", "tei", "sglang", "triton", "trtllm", "llamacpp", "ollama", "lmdeploy",
    "litellm", "ray", "bentoml", "json",
];

impl InferenceLogProcessor {
    /// A processor with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Says that every line comes from `server` (one of [`SERVERS`]) instead of detecting it.
    pub fn with_server(mut self, server: &str) -> Self {
        self.forced = Some(server.to_string());
        self
    }

    /// Lets the user name containers' servers: asked once for each new container, after the
    /// pod's `infersight.io/server` annotation or label, before detection.
    pub fn with_assignment(mut self, assignment: ServerAssignment) -> Self {
        self.assignment = Some(assignment);
        self
    }

    /// Feeds the LLM metrics of every processed record (and derived request) to `metrics`.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<LlmMetrics>) -> Self {
        self.requests = std::mem::take(&mut self.requests).with_metrics(metrics.clone());
        self.metrics = Some(metrics);
        self
    }

    /// Gives requests and engine stats their pod's GPU figures from the `gpu` records that
    /// pass through, nearest in time within `max_gap`.
    pub fn with_gpu_join(mut self, max_gap: std::time::Duration) -> Self {
        self.gpu = Some(GpuJoin::new(max_gap));
        self
    }

    /// (records given GPU figures, records of a pod with GPUs but no snapshot near enough).
    pub fn gpu_join_counts(&self) -> (u64, u64) {
        self.gpu.as_ref().map_or((0, 0), GpuJoin::counts)
    }

    /// Processes every record of `batch` in place; records derived along the way (finished
    /// requests, later) are appended after them.
    pub fn process_batch(&mut self, batch: &mut Batch) {
        let mut emitted = Vec::new();
        for record in &mut batch.records {
            self.process(record, &mut emitted);
        }
        batch.records.append(&mut emitted);
    }

    /// Processes one record: removes wrappers from the body and sets what its server's line
    /// says. Records that are not container log lines pass through untouched.
    pub fn process(&mut self, record: &mut Record, emitted: &mut Vec<Record>) {
        match record.kind {
            RecordKind::Log => {}
            RecordKind::Gpu => {
                if let Some(join) = &mut self.gpu {
                    join.observe(record);
                }
                return;
            }
            // Scraped from a server's /metrics: already typed, only joined and counted.
            RecordKind::EngineStats => {
                if let Some(join) = &mut self.gpu {
                    join.enrich(record);
                }
                if let Some(metrics) = &self.metrics {
                    metrics.observe(record);
                }
                return;
            }
            _ => return,
        }
        self.lines_seen += 1;
        if let Cow::Owned(clean) = strip_ansi(&record.body) {
            // Colour codes would split words in the index and show as garbage in the UI.
            record.body = clean;
            record.attributes.insert(names::LOG_ANSI_STRIPPED, true);
        }
        let body = std::mem::take(&mut record.body);
        let text = self.unwrap(&body, record);
        let mut recognised = false;
        if let Some(line) = vllm::split_prefix(text) {
            vllm::apply(&line, record);
            recognised = true;
        } else if let Some(level) = severity::detect_level(text) {
            record.severity = Some(level);
        }
        // Each parser checks a cheap marker first, so a line from no known server costs a
        // few substring searches.
        recognised |= http::apply(text, record)
            || sglang::apply(text, record)
            || tgi::apply(text, record)
            || trtllm::apply(text, record)
            || vllm::apply_request(text, record)
            || llamacpp::apply(text, record)
            || ray::apply(text, record)
            || lmdeploy::apply(text, record);
        // Which container wrote it, once for the line (what is known of the container is
        // read and taught below). A start line is looked for only while the container's
        // model is unknown and its server may log one: a scan less for nearly every line.
        let index = self.container_of(record);
        let known = &self.known[index];
        if known.model.is_none()
            && matches!(
                known.server.as_deref(),
                None | Some("vllm" | "tgi" | "sglang" | "llamacpp")
            )
        {
            recognised |= startup::apply(text, record);
        }
        recognised |= triton::apply(text, record);
        recognised |= generic::apply(text, record);
        self.remember_server(record, text, index);
        record.body = body;
        if errors::classify(record) {
            record.attributes.insert(names::LLM_EVENT, "error");
            recognised = true;
        }
        self.remember_model(record, index);
        if record.kind == RecordKind::EngineStats {
            self.count_generated_tokens(record, index);
        }
        if recognised {
            self.lines_recognised += 1;
        }
        let before = emitted.len();
        self.requests.observe(record, emitted);
        if let Some(join) = &mut self.gpu {
            if record.kind != RecordKind::Log {
                join.enrich(record);
            }
            for derived in &mut emitted[before..] {
                join.enrich(derived);
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics.observe(record);
            for derived in &emitted[before..] {
                metrics.observe(derived);
            }
        }
    }

    /// The server's own line inside `body`: journald, docker compose and process prefixes
    /// (the innermost tag is kept as `log.process_tag`) and Ray's repeat suffix removed.
    fn unwrap<'a>(&self, body: &'a str, record: &mut Record) -> &'a str {
        let mut text = body;
        let mut tag = None;
        for split in [split_journald, split_compose, split_process_tag] {
            if let Some((t, rest)) = split(text) {
                tag = Some(t);
                text = rest;
            }
        }
        if let Some(tag) = tag {
            record
                .attributes
                .insert(names::LOG_PROCESS_TAG, tag.to_string());
        }
        if let Some((rest, n)) = split_ray_repeated(text) {
            record.attributes.insert(names::LOG_REPEATED, n);
            text = rest;
        }
        text
    }

    /// The container's start line names the model it serves ([`startup`]), else its command
    /// line does (`k8s.container.model`); its later lines that mean something (request,
    /// stats, access and error lines: those with an `llm.event`, TGI's whole requests, and
    /// any line of a request, such as llama.cpp's `processing task`, whose labels its
    /// in-flight gauge takes) get it, unless they name one.
    fn remember_model(&mut self, record: &mut Record, index: usize) {
        let event = record.attributes.get_str(names::LLM_EVENT);
        if event.is_none()
            && record.attributes.get(names::LLM_E2E_MS).is_none()
            && record.attributes.get(names::LLM_REQUEST_ID).is_none()
        {
            return;
        }
        let learned = event == Some("engine_config");
        let known = &mut self.known[index];
        match (
            record.attributes.get_str(names::GEN_AI_REQUEST_MODEL),
            &known.model,
        ) {
            (Some(model), _) if learned => known.model = Some(model.to_string()),
            (None, Some(model)) => {
                let model = model.clone();
                record.attributes.insert(names::GEN_AI_REQUEST_MODEL, model);
            }
            // Its start line was not read (the agent started after the pod): the model its
            // command line names, from the pod's metadata.
            (None, None) => {
                if let Some(model) = record.resource_str(names::K8S_CONTAINER_MODEL) {
                    let model = model.to_string();
                    known.model = Some(model.clone());
                    record.attributes.insert(names::GEN_AI_REQUEST_MODEL, model);
                } else if event == Some("proxy_access")
                    && let Some(model) = self.model_beside(record, index)
                {
                    // A sidecar serves no model: its calls are those of the pod's server.
                    record.attributes.insert(names::GEN_AI_REQUEST_MODEL, model);
                }
            }
            _ => {}
        }
    }

    /// The model the other containers of `record`'s pod serve, when they serve one.
    fn model_beside(&self, record: &Record, index: usize) -> Option<String> {
        let containers = self
            .detected
            .get(record.resource_str(names::K8S_POD_UID)?)?;
        let mut models = containers
            .values()
            .filter(|&&i| i != index)
            .filter_map(|&i| self.known.get(i)?.model.as_deref());
        let model = models.next()?;
        models.all(|m| m == model).then(|| model.to_string())
    }

    /// Sets `llm.generated_tokens` on a stats line with a generation throughput: the
    /// throughput times the stretch it covers. vLLM v0 and SGLang divide the tokens since
    /// their previous line by the time since it, so the stretch is that time (at most
    /// [`MAX_THROUGHPUT_STRETCH_NANOS`]). vLLM v1 (`Engine 000:`) starts over every interval
    /// whether it logs or not (an idle engine logs at debug level): its line covers the time
    /// since the line before when that was the interval before, else one interval. The
    /// first line of an engine covers a stretch not seen and gets none.
    fn count_generated_tokens(&mut self, record: &mut Record, index: usize) {
        let Some(tps) = record
            .attributes
            .get(names::LLM_GEN_THROUGHPUT_TPS)
            .and_then(model::AttrValue::as_f64)
        else {
            return;
        };
        let engine_index = match record.attributes.get(names::LLM_ENGINE_INDEX) {
            Some(model::AttrValue::Int(i)) => Some(*i),
            _ => None,
        };
        let per_interval =
            engine_index.is_some() && record.attributes.get_str(names::LLM_SERVER) == Some("vllm");
        let engine = engine_index.unwrap_or(0);
        let now = record.timestamp.unix_nanos();
        let clocks = &mut self.known[index].throughput_at;
        let Some(clock) = clocks.iter_mut().find(|c| c.engine == engine) else {
            clocks.push(ThroughputClock {
                engine,
                last: now,
                shortest: None,
                interval: None,
            });
            return;
        };
        let gap = now - clock.last;
        if gap < 0 {
            return;
        }
        clock.last = now;
        let stretch = if per_interval {
            // The line right after the one before covers the time between them; after a
            // pause (lines at debug level in between), one interval.
            let shortest = clock.shortest.unwrap_or(VLLM_V1_STATS_INTERVAL_NANOS);
            if gap <= shortest + shortest / 2 {
                clock.interval = Some(gap);
                gap
            } else {
                clock.interval.unwrap_or(VLLM_V1_STATS_INTERVAL_NANOS)
            }
        } else {
            gap.min(MAX_THROUGHPUT_STRETCH_NANOS)
        };
        if gap >= 1_000_000_000 {
            clock.shortest = Some(clock.shortest.map_or(gap, |s| s.min(gap)));
        }
        record.attributes.insert_f64(
            names::LLM_GENERATED_TOKENS,
            (tps * stretch as f64 / 1e9).round(),
        );
    }

    /// The index in `known` of the container that wrote `record`: a batch holds runs of one
    /// container's lines, so mostly the previous line's.
    fn container_of(&mut self, record: &Record) -> usize {
        match &self.last {
            Some((resource, index)) if std::sync::Arc::ptr_eq(resource, &record.resource) => *index,
            _ => {
                let index = self.container_index(record);
                self.last = Some((std::sync::Arc::clone(&record.resource), index));
                index
            }
        }
    }

    /// A line a parser attributed to a server teaches which server the container runs;
    /// its lines that no parser claimed get that server too. A server the user named (`parse
    /// --server`, the pod's annotation or label, the config) is every line's.
    fn remember_server(&mut self, record: &mut Record, text: &str, index: usize) {
        if let Some(server) = &self.forced {
            record.attributes.insert(names::LLM_SERVER, server.clone());
            return;
        }
        let known = &self.known[index];
        let known_server = known.server.as_deref();
        if known_server.is_none()
            && record.attributes.get(names::LLM_SERVER).is_none()
            && let Some(server) =
                server_signature(text, record.attributes.get_str(names::LOG_PROCESS_TAG))
        {
            // Only while the container's server is unknown: a signature teaches it once.
            record.attributes.insert(names::LLM_SERVER, server);
        }
        let said = record.attributes.get_str(names::LLM_SERVER);
        let keep_known = known.pinned
            // Ollama runs llama.cpp and Triton runs TensorRT-LLM: the engine's lines in
            // such a container are the serving server's.
            || matches!(
                (known_server, said),
                (Some("ollama"), Some("llamacpp")) | (Some("triton"), Some("trtllm"))
            )
            || said.is_none();
        if keep_known {
            if let Some(server) = known_server
                && said != Some(server)
            {
                record
                    .attributes
                    .insert(names::LLM_SERVER, server.to_string());
            }
        } else if let Some(server) = said
            && known_server != Some(server)
        {
            self.known[index].server = Some(server.to_string());
        }
    }

    /// The index in `known` of the container that wrote `record`, added on first sight.
    fn container_index(&mut self, record: &Record) -> usize {
        let uid = record.resource_str(names::K8S_POD_UID).unwrap_or("");
        let container = record.resource_str(names::K8S_CONTAINER_NAME).unwrap_or("");
        if let Some(index) = self.detected.get(uid).and_then(|c| c.get(container)) {
            return *index;
        }
        if self.known.len() >= MAX_DETECTED {
            self.detected.clear();
            self.known.clear();
        }
        let known = self.first_sight(record);
        self.known.push(known);
        let index = self.known.len() - 1;
        self.detected
            .entry(uid.to_string())
            .or_default()
            .insert(container.to_string(), index);
        index
    }

    /// What the user says of a container seen for the first time.
    fn first_sight(&self, record: &Record) -> Known {
        let by_pod = [
            names::K8S_POD_ANNOTATION_PREFIX,
            names::K8S_POD_LABEL_PREFIX,
        ]
        .iter()
        .find_map(|prefix| {
            let key = format!("{prefix}{}", names::SERVER_ANNOTATION);
            record.resource_str(&key).map(str::to_string)
        });
        let by_config = || {
            let a = self.assignment.as_ref()?;
            let r = |k| record.resource_str(k).unwrap_or("");
            (a.0)(
                r(names::K8S_NAMESPACE_NAME),
                r(names::K8S_POD_NAME),
                r(names::K8S_CONTAINER_NAME),
            )
            .map(str::to_string)
        };
        match by_pod.or_else(by_config) {
            Some(server) => Known {
                server: Some(server),
                pinned: true,
                model: None,
                throughput_at: Vec::new(),
            },
            None => Known {
                server: None,
                pinned: false,
                model: None,
                throughput_at: Vec::new(),
            },
        }
    }

    /// Requests waiting for their end, and requests evicted because too many were open.
    pub fn open_requests(&self) -> (usize, u64) {
        (self.requests.open(), self.requests.evicted())
    }

    /// Lines seen and lines a parser recognised.
    pub fn counts(&self) -> (u64, u64) {
        (self.lines_seen, self.lines_recognised)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{AttrValue, Attributes, RecordId, Timestamp};
    use std::sync::Arc;

    fn line(resource: &Arc<Attributes>, text: &str) -> Record {
        Record::log(
            RecordId(1),
            Timestamp::now(),
            Timestamp::now(),
            Arc::clone(resource),
            text.into(),
        )
    }

    #[test]
    fn a_sidecars_calls_are_of_the_model_its_pods_server_serves() {
        let container = |uid: &str, name: &str| -> Arc<Attributes> {
            Arc::new(
                [
                    (names::K8S_POD_UID, AttrValue::from(uid)),
                    (names::K8S_CONTAINER_NAME, AttrValue::from(name)),
                ]
                .into_iter()
                .collect(),
            )
        };
        let mut p = InferenceLogProcessor::new();
        let mut model_of = |resource: &Arc<Attributes>, text: &str| {
            let mut r = line(resource, text);
            p.process(&mut r, &mut Vec::new());
            r.attributes
                .get_str(names::GEN_AI_REQUEST_MODEL)
                .map(str::to_string)
        };
        let start = |model: &str| {
            format!(
                "(EngineCore_0 pid=1) INFO 04-17 23:05:00 [core.py:61] Initializing a V1 LLM engine (v0.8.3) with config: model='{model}', speculative_config=None, seed=None"
            )
        };
        let call = r#"[2026-02-24T14:23:15.456Z] "POST /v1/chat/completions HTTP/1.1" 200 - via_upstream - "-" 156 91 4521 4519 "-" "python-requests/2.31.0" "f47ac10b" "vllm:8000" "10.244.3.12:8000" inbound|8000|| - - - - default"#;
        // Pod a: one vLLM and its sidecar.
        model_of(&container("a", "vllm"), &start("llama3"));
        assert_eq!(
            model_of(&container("a", "istio-proxy"), call),
            Some("llama3".into())
        );
        // Pod b: two servers of two models; the sidecar's calls could be either's.
        model_of(&container("b", "vllm-1"), &start("llama3"));
        model_of(&container("b", "vllm-2"), &start("qwen"));
        assert_eq!(model_of(&container("b", "istio-proxy"), call), None);
        // Pod c: no server with a model.
        assert_eq!(model_of(&container("c", "istio-proxy"), call), None);
    }

    #[test]
    fn a_container_recognised_once_marks_its_other_lines() {
        let container = |uid: &str| -> Arc<Attributes> {
            Arc::new(
                [
                    (names::K8S_POD_UID, AttrValue::from(uid)),
                    (names::K8S_CONTAINER_NAME, AttrValue::from("server")),
                ]
                .into_iter()
                .collect(),
            )
        };
        let (a, b) = (container("a"), container("b"));
        let mut p = InferenceLogProcessor::new();
        let mut out = Vec::new();
        let mut plain_b = line(&b, "loading weights");
        p.process(&mut plain_b, &mut out);
        assert_eq!(
            plain_b.attributes.get_str(names::LLM_SERVER),
            None,
            "not known yet"
        );
        let mut stats = line(
            &a,
            "[2026-04-05 20:02:51] Decode batch, #running-req: 3, token usage: 0.08, #queue-req: 0",
        );
        p.process(&mut stats, &mut out);
        let mut plain_a = line(&a, "loading weights");
        p.process(&mut plain_a, &mut out);
        assert_eq!(
            plain_a.attributes.get_str(names::LLM_SERVER),
            Some("sglang")
        );
        let mut other = line(&b, "loading weights");
        p.process(&mut other, &mut out);
        assert_eq!(
            other.attributes.get_str(names::LLM_SERVER),
            None,
            "per container"
        );
    }

    #[test]
    fn a_vllm_engine_start_names_the_model_of_its_containers_requests_and_stats() {
        let container = |uid: &str| -> Arc<Attributes> {
            Arc::new(
                [
                    (names::K8S_POD_UID, AttrValue::from(uid)),
                    (names::K8S_CONTAINER_NAME, AttrValue::from("vllm")),
                ]
                .into_iter()
                .collect(),
            )
        };
        let (a, b) = (container("a"), container("b"));
        // Started before the agent: its start line is not read, its command line is known.
        let mut c = (*container("c")).clone();
        c.insert(names::K8S_CONTAINER_MODEL, "mistral-7b");
        let c = Arc::new(c);
        let mut p = InferenceLogProcessor::new();
        let mut out = Vec::new();
        let mut process = |resource: &Arc<Attributes>, text: &str| {
            let mut r = line(resource, text);
            p.process(&mut r, &mut out);
            r
        };
        let start = process(
            &a,
            "(EngineCore_0 pid=2095613) INFO 04-17 23:05:00 [core.py:61] Initializing a V1 LLM engine (v0.8.3) with config: model='/mnt/models/Qwen2.5-7B-Instruct', speculative_config=None, seed=None, served_model_name=qwen2.5-7b, num_scheduler_steps=1",
        );
        assert_eq!(
            start.attributes.get_str(names::LLM_EVENT),
            Some("engine_config")
        );
        let model = |r: &Record| {
            r.attributes
                .get_str(names::GEN_AI_REQUEST_MODEL)
                .map(str::to_string)
        };
        let received = process(
            &a,
            "(APIServer pid=1) INFO 04-17 23:06:00 [logger.py:49] Received request chatcmpl-1: params: SamplingParams(n=1, max_tokens=10), prompt_token_ids: None.",
        );
        let stats = process(
            &a,
            "(APIServer pid=1) INFO 04-17 23:06:01 [loggers.py:271] Engine 000: Avg prompt throughput: 1.0 tokens/s, Avg generation throughput: 2.0 tokens/s, Running: 1 reqs, Waiting: 0 reqs, GPU KV cache usage: 1.0%, Prefix cache hit rate: 0.0%",
        );
        let plain = process(
            &a,
            "(APIServer pid=1) INFO:     Waiting for application startup.",
        );
        let other = process(
            &b,
            "(APIServer pid=1) INFO 04-17 23:06:00 [logger.py:49] Received request chatcmpl-2: params: SamplingParams(n=1, max_tokens=10), prompt_token_ids: None.",
        );
        let from_args = process(
            &c,
            "(APIServer pid=1) INFO 04-17 23:06:00 [logger.py:49] Received request chatcmpl-3: params: SamplingParams(n=1, max_tokens=10), prompt_token_ids: None.",
        );
        assert_eq!(
            [&received, &stats, &plain, &other, &from_args].map(model),
            [
                Some("qwen2.5-7b".into()),
                Some("qwen2.5-7b".into()),
                None,
                None,
                Some("mistral-7b".into())
            ],
            "the lines that mean something, of that container only"
        );
    }

    #[test]
    fn a_llamacpp_servers_model_load_names_the_model_of_its_tasks() {
        let server: Arc<Attributes> = Arc::new(
            [
                (names::K8S_POD_UID, AttrValue::from("l")),
                (names::K8S_CONTAINER_NAME, AttrValue::from("llama-server")),
            ]
            .into_iter()
            .collect(),
        );
        let metrics = Arc::new(crate::metrics::LlmMetrics::new());
        let mut p = InferenceLogProcessor::new().with_metrics(Arc::clone(&metrics));
        let mut out = Vec::new();
        let mut lines = Vec::new();
        for text in [
            // A task line of an earlier run teaches the server before its model is told.
            "slot      release: id  0 | task 3 | stop processing: n_tokens = 52, truncated = 0",
            "srv    load_model: loading model '/models/Phi-3-mini-4k-instruct-q4.gguf'",
            "slot launch_slot_: id  0 | task 7 | processing task",
            "slot print_timing: id  0 | task 7 | prompt eval time =     120.50 ms /    12 tokens (   10.04 ms per token,    99.59 tokens per second)",
            "slot print_timing: id  0 | task 7 |        eval time =    2303.87 ms /    40 tokens (   57.60 ms per token,    17.36 tokens per second)",
            "slot print_timing: id  0 | task 7 |       total time =    2424.37 ms /    52 tokens",
            "slot      release: id  0 | task 7 | stop processing: n_tokens = 52, truncated = 0",
            "slot launch_slot_: id  0 | task 8 | processing task",
        ] {
            let mut r = line(&server, text);
            p.process(&mut r, &mut out);
            lines.push(r);
        }
        // Task 8 is in flight under the model, as its end will be counted: not under "".
        let in_flight: Vec<_> = metrics
            .snapshot()
            .into_iter()
            .filter_map(|(labels, s)| Some((labels[2].clone(), s.in_flight?)))
            .collect();
        assert_eq!(
            in_flight,
            [("/models/Phi-3-mini-4k-instruct-q4.gguf".to_string(), 1)]
        );
        assert_eq!(
            lines[1].attributes.get_str(names::LLM_SERVER),
            Some("llamacpp")
        );
        let request = out
            .iter()
            .find(|r| r.kind == model::RecordKind::Request)
            .unwrap_or_else(|| panic!("the task is a request: {out:?}"));
        assert_eq!(
            request.attributes.get_str(names::GEN_AI_REQUEST_MODEL),
            Some("/models/Phi-3-mini-4k-instruct-q4.gguf")
        );
        assert_eq!(
            request.attributes.get(names::GEN_AI_USAGE_OUTPUT_TOKENS),
            Some(&AttrValue::Int(40))
        );
    }

    #[test]
    fn a_server_named_by_annotation_or_config_beats_detection() {
        let pod = |uid: &str, extra: Option<(&'static str, &'static str)>| -> Arc<Attributes> {
            let mut a: Attributes = [
                (names::K8S_POD_UID, AttrValue::from(uid)),
                (names::K8S_NAMESPACE_NAME, AttrValue::from("llm")),
                (names::K8S_POD_NAME, AttrValue::from(uid)),
                (names::K8S_CONTAINER_NAME, AttrValue::from("server")),
            ]
            .into_iter()
            .collect();
            if let Some((k, v)) = extra {
                a.insert(k, v);
            }
            Arc::new(a)
        };
        let annotated = pod(
            "a",
            Some(("k8s.pod.annotation.infersight.io/server", "ollama")),
        );
        let configured = pod("ollama-1", None);
        let detected = pod("b", None);
        let mut p = InferenceLogProcessor::new().with_assignment(ServerAssignment(Box::new(
            |_: &str, pod: &str, _: &str| pod.starts_with("ollama-").then_some("ollama"),
        )));
        let mut out = Vec::new();
        let llama =
            "slot print_timing: id  0 | task 7 | prompt eval time = 915.13 ms /    51 tokens";
        for (resource, want) in [
            (&annotated, "ollama"),
            (&configured, "ollama"),
            (&detected, "llamacpp"),
        ] {
            let mut r = line(resource, llama);
            p.process(&mut r, &mut out);
            assert_eq!(r.attributes.get_str(names::LLM_SERVER), Some(want));
            let mut plain = line(resource, "loading weights");
            p.process(&mut plain, &mut out);
            assert_eq!(plain.attributes.get_str(names::LLM_SERVER), Some(want));
        }
        // Detected Ollama keeps its embedded llama.cpp's lines.
        let c = pod("c", None);
        let mut gin = line(
            &c,
            r#"[GIN] 2025/02/10 - 11:20:29 | 200 | 35.684791792s |       127.0.0.1 | POST     "/api/chat""#,
        );
        p.process(&mut gin, &mut out);
        let mut timing = line(&c, llama);
        p.process(&mut timing, &mut out);
        assert_eq!(timing.attributes.get_str(names::LLM_SERVER), Some("ollama"));
    }
}
