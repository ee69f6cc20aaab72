//! Applies the parsers to the records of a batch.

use crate::lifecycle::RequestTracker;
use crate::metrics::LlmMetrics;
use crate::parsers::{generic, http, llamacpp, lmdeploy, ray, sglang, tgi, triton, vllm};
use crate::wrappers::{split_process_tag, strip_ansi};
use crate::{errors, severity};
use model::{Batch, Record, RecordKind, names};
use std::borrow::Cow;

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
}

impl InferenceLogProcessor {
    /// A processor with no history.
    pub fn new() -> Self {
        Self::default()
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
            || vllm::apply_request(text, record)
            || llamacpp::apply(text, record)
            || ray::apply(text, record)
            || lmdeploy::apply(text, record);
        recognised |= triton::apply(text, record);
        recognised |= generic::apply(text, record);
        record.body = body;
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

    /// Requests waiting for their end, and requests evicted because too many were open.
    pub fn open_requests(&self) -> (usize, u64) {
        (self.requests.open(), self.requests.evicted())
    }

    /// Lines seen and lines a parser recognised.
    pub fn counts(&self) -> (u64, u64) {
        (self.lines_seen, self.lines_recognised)
    }
}
