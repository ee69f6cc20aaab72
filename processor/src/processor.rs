//! Applies the parsers to the records of a batch.

use crate::lifecycle::RequestTracker;
use crate::metrics::LlmMetrics;
use crate::parsers::{generic, http, llamacpp, lmdeploy, ray, sglang, tgi, triton, trtllm, vllm};
use crate::wrappers::{split_process_tag, strip_ansi};
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
    detected: HashMap<String, HashMap<String, String>>,
    /// A server named by the user for every line (`parse --server`).
    forced: Option<String>,
}

/// Pods whose containers' servers are remembered; beyond this the memory starts over (a
/// node runs far fewer pods).
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

    /// Feeds the LLM metrics of every processed record (and derived request) to `metrics`.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<LlmMetrics>) -> Self {
        self.requests = std::mem::take(&mut self.requests).with_metrics(metrics.clone());
        self.metrics = Some(metrics);
        self
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
        if record.kind != RecordKind::Log {
            return;
        }
        self.lines_seen += 1;
        if let Cow::Owned(clean) = strip_ansi(&record.body) {
            // Colour codes would split words in the index and show as garbage in the UI.
            record.body = clean;
            record.attributes.insert(names::LOG_ANSI_STRIPPED, true);
        }
        let body = std::mem::take(&mut record.body);
        let text = match split_process_tag(&body) {
            Some((tag, rest)) => {
                record
                    .attributes
                    .insert(names::LOG_PROCESS_TAG, tag.to_string());
                rest
            }
            None => body.as_str(),
        };
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
        recognised |= triton::apply(text, record);
        recognised |= generic::apply(text, record);
        record.body = body;
        self.remember_server(record);
        if errors::classify(record) {
            record.attributes.insert(names::LLM_EVENT, "error");
            recognised = true;
        }
        if recognised {
            self.lines_recognised += 1;
        }
        let before = emitted.len();
        self.requests.observe(record, emitted);
        if let Some(metrics) = &self.metrics {
            metrics.observe(record);
            for derived in &emitted[before..] {
                metrics.observe(derived);
            }
        }
    }

    /// A line a parser attributed to a server teaches which server the container runs;
    /// its lines that no parser claimed get that server too (or the forced one).
    fn remember_server(&mut self, record: &mut Record) {
        if let Some(server) = &self.forced {
            record.attributes.insert(names::LLM_SERVER, server.clone());
            return;
        }
        let uid = record.resource_str(names::K8S_POD_UID).unwrap_or("");
        let container = record.resource_str(names::K8S_CONTAINER_NAME).unwrap_or("");
        let known = self.detected.get(uid).and_then(|c| c.get(container));
        match record.attributes.get_str(names::LLM_SERVER) {
            Some(server) if known.map(String::as_str) != Some(server) => {
                if self.detected.len() >= MAX_DETECTED {
                    self.detected.clear();
                }
                self.detected
                    .entry(uid.to_string())
                    .or_default()
                    .insert(container.to_string(), server.to_string());
            }
            Some(_) => {}
            None => {
                if let Some(server) = known.cloned() {
                    record.attributes.insert(names::LLM_SERVER, server);
                }
            }
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
}
