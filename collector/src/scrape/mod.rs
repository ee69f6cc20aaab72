//! The `scrape` source: reads Prometheus endpoints at an interval — dcgm-exporter for GPU
//! snapshots, inference servers' `/metrics` for what their logs do not say (time to first
//! token) — with one parser ([`exposition`]). A dcgm exposition becomes `gpu` records, a
//! server's becomes `engine_stats` records; the latest of both stays in tables for
//! `/metrics`.
//!
//! A target that is down, slow, or answers something that is not an exposition is counted,
//! said once (and again when it recovers), and scraped again next time; it never stops
//! the others.

mod dcgm;
mod engine;
pub mod exposition;

pub use dcgm::readings as gpu_readings;
pub use engine::{EngineFigures, EngineHistogram, EngineMemory};

use crate::Shutdown;
use crate::gpu::{GpuTable, note};
use crate::kube::PodMetadata;
use crate::table::StateTable;
use exposition::HistogramSeries;
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use model::{Attributes, Batch, Record, RecordId, RecordKind, Timestamp, names};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// An exposition larger than this is refused (dcgm-exporter's is tens of kilobytes; a
/// server with many models and buckets a few megabytes).
pub const MAX_EXPOSITION_BYTES: usize = 32 << 20;

/// One endpoint to scrape, and the pod it belongs to where that is known.
#[derive(Clone, Debug)]
pub struct ScrapeTarget {
    /// `http://10.1.2.3:8000/metrics`.
    pub url: String,
    /// Namespace, pod and container of the server, put on its records.
    pub resource: Attributes,
}

/// What to scrape, how often.
#[derive(Clone, Debug)]
pub struct ScrapeConfig {
    /// The endpoints.
    pub targets: Vec<ScrapeTarget>,
    /// Between scrapes.
    pub interval: Duration,
    /// For one scrape, connection included.
    pub timeout: Duration,
}

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The URL is not one.
    #[error("`{0}` is not an http:// URL")]
    BadUrl(String),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connection refused, reset, …
    #[error("cannot fetch: {0}")]
    Fetch(String),
    /// Not 200.
    #[error("answered HTTP {0}")]
    Status(u16),
    /// Too large, or not text.
    #[error("the answer {0}")]
    Body(String),
    /// Not an exposition.
    #[error("not a Prometheus exposition: {0}")]
    Exposition(#[from] exposition::ExpositionError),
}

/// What the source did, for `/metrics`.
#[derive(Debug, Default)]
pub struct ScrapeMetrics {
    /// Scrapes that returned an exposition.
    pub scrapes: AtomicU64,
    /// Scrapes that failed (down, timeout, HTTP error, malformed exposition).
    pub failures: AtomicU64,
    /// Records made.
    pub records: AtomicU64,
    /// The last error of each target that is failing now.
    failing: Mutex<BTreeMap<String, String>>,
}

impl ScrapeMetrics {
    /// Targets failing now, with why.
    pub fn failing(&self) -> BTreeMap<String, String> {
        self.failing_now().clone()
    }

    fn failing_now(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.failing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An engine histogram's key: namespace, pod, model, server, and which it is.
pub type EngineHistogramKey = (String, String, String, &'static str, EngineHistogram);

/// The latest scraped histograms of every server: what `/metrics` shows.
pub type EngineHistograms = StateTable<EngineHistogramKey, HistogramSeries>;

/// What a running source shows, for `/metrics`.
#[derive(Clone, Debug)]
pub struct ScrapeState {
    /// Its counters.
    pub metrics: Arc<ScrapeMetrics>,
    /// GPU readings from dcgm-exporters.
    pub gpus: Arc<GpuTable>,
    /// Servers' latency histograms.
    pub engines: Arc<EngineHistograms>,
}

/// Scrapes its targets at an interval.
pub struct ScrapeSource {
    config: ScrapeConfig,
    state: ScrapeState,
    client: Client<HttpConnector, String>,
    /// The pods to find annotated endpoints among, when discovery is on.
    discovery: Option<Arc<PodMetadata>>,
}

impl ScrapeSource {
    /// A source for `config`; nothing is fetched until [`ScrapeSource::run`].
    pub fn new(config: ScrapeConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.timeout));
        ScrapeSource {
            config,
            state: ScrapeState {
                metrics: Arc::default(),
                gpus: Arc::default(),
                engines: Arc::default(),
            },
            client: Client::builder(TokioExecutor::new()).build(connector),
            discovery: None,
        }
    }

    /// Scrapes, as well, every running pod of `pods` that asks to be scraped
    /// (`prometheus.io/scrape: "true"`), looked up again before each round.
    pub fn with_discovery(mut self, pods: Arc<PodMetadata>) -> Self {
        self.discovery = Some(pods);
        self
    }

    /// This round's targets: the configured ones, then the discovered ones not among them.
    fn targets(&self) -> Vec<ScrapeTarget> {
        let mut targets = self.config.targets.clone();
        for e in self
            .discovery
            .iter()
            .flat_map(|pods| pods.annotated_endpoints())
        {
            if targets.iter().any(|t| t.url == e.url) {
                continue;
            }
            let mut resource = Attributes::new();
            resource.insert(names::K8S_NAMESPACE_NAME, e.namespace);
            resource.insert(names::K8S_POD_NAME, e.pod);
            if let Some(c) = e.container {
                resource.insert(names::K8S_CONTAINER_NAME, c);
            }
            targets.push(ScrapeTarget {
                url: e.url,
                resource,
            });
        }
        targets
    }

    /// Its counters and tables.
    pub fn state(&self) -> ScrapeState {
        self.state.clone()
    }

    /// Scrapes until `shutdown` or until `out` is closed.
    pub async fn run(self, out: mpsc::Sender<Batch>, shutdown: Shutdown) {
        // By URL: discovered targets come and go.
        let mut memories: HashMap<String, EngineMemory> = HashMap::new();
        let mut tick = tokio::time::interval(self.config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.triggered() => return,
                _ = tick.tick() => {}
            }
            let targets = self.targets();
            memories.retain(|url, _| targets.iter().any(|t| &t.url == url));
            // A discovered target that went away is no longer failing.
            self.state
                .metrics
                .failing_now()
                .retain(|url, _| targets.iter().any(|t| &t.url == url));
            let fetched =
                futures_util::future::join_all(targets.iter().map(|t| self.fetch(&t.url))).await;
            let at = Timestamp::now();
            let mut records = Vec::new();
            for (target, result) in targets.iter().zip(fetched) {
                match result {
                    Ok(e) => {
                        self.recovered(&target.url);
                        self.state.metrics.scrapes.fetch_add(1, Relaxed);
                        let memory = memories.entry(target.url.clone()).or_default();
                        records.extend(self.records_of(target, &e, memory, at));
                    }
                    Err(e) => self.failed(&target.url, &e),
                }
            }
            if records.is_empty() {
                continue;
            }
            self.state
                .metrics
                .records
                .fetch_add(records.len() as u64, Relaxed);
            if out.send(Batch::new(records)).await.is_err() {
                return;
            }
        }
    }

    /// Fetches and parses one target's exposition.
    pub async fn fetch(&self, url: &str) -> Result<exposition::Exposition, ScrapeError> {
        let uri = check_url(url)?;
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, "text/plain;version=0.0.4")
            .body(String::new())
            .map_err(|e| ScrapeError::Fetch(e.to_string()))?;
        let timeout = self.config.timeout;
        let fetch = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| ScrapeError::Fetch(error_chain(&e)))?;
            if response.status() != http::StatusCode::OK {
                return Err(ScrapeError::Status(response.status().as_u16()));
            }
            let body = Limited::new(response.into_body(), MAX_EXPOSITION_BYTES)
                .collect()
                .await
                .map_err(|e| ScrapeError::Body(format!("could not be read in full: {e}")))?
                .to_bytes();
            String::from_utf8(body.to_vec())
                .map_err(|_| ScrapeError::Body("is not UTF-8 text".into()))
        };
        let text = tokio::time::timeout(timeout, fetch)
            .await
            .map_err(|_| ScrapeError::Timeout(timeout))??;
        Ok(exposition::parse(&text)?)
    }

    fn records_of(
        &self,
        target: &ScrapeTarget,
        e: &exposition::Exposition,
        memory: &mut EngineMemory,
        at: Timestamp,
    ) -> Vec<Record> {
        let mut out = Vec::new();
        let gpus = dcgm::readings(e);
        note(&self.state.gpus, at, &gpus);
        for reading in &gpus {
            let mut r = reading.record(at);
            r.attributes.insert(names::SCRAPE_URL, target.url.clone());
            out.push(r);
        }
        let seconds = at.unix_nanos() as f64 / 1e9;
        for figures in memory.figures(e, seconds) {
            let resource = &target.resource;
            let text = |k: &str| resource.get_str(k).unwrap_or("").to_string();
            for (which, h) in &figures.histograms {
                let key = (
                    text(names::K8S_NAMESPACE_NAME),
                    text(names::K8S_POD_NAME),
                    figures.model.clone(),
                    figures.server,
                    *which,
                );
                self.state.engines.set(key, Some(h.clone()));
            }
            out.push(engine_record(target, &figures, at));
        }
        out
    }

    fn failed(&self, url: &str, e: &ScrapeError) {
        self.state.metrics.failures.fetch_add(1, Relaxed);
        let message = e.to_string();
        let mut failing = self.state.metrics.failing_now();
        // Said once per new reason, not every interval.
        if failing.get(url) != Some(&message) {
            tracing::warn!(%url, error = %message, "scrape failed; trying again next interval");
            failing.insert(url.to_string(), message);
        }
    }

    fn recovered(&self, url: &str) {
        let mut failing = self.state.metrics.failing_now();
        if failing.remove(url).is_some() {
            tracing::info!(%url, "scrape works again");
        }
    }
}

/// `url` as a URI the source can fetch: `http://` (exporters and servers inside a cluster
/// speak plain HTTP; TLS would need a CA to trust, which no target has asked for yet).
pub fn check_url(url: &str) -> Result<http::Uri, ScrapeError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| ScrapeError::BadUrl(url.to_string()))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(ScrapeError::BadUrl(url.to_string()));
    }
    Ok(uri)
}

/// Every cause of a client error, joined: hyper's own message alone is "client error".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The `engine_stats` record of one model's figures.
fn engine_record(target: &ScrapeTarget, f: &EngineFigures, at: Timestamp) -> Record {
    let mut parts = Vec::new();
    if let Some(r) = f.running {
        parts.push(format!("{r} running"));
    }
    if let Some(w) = f.waiting {
        parts.push(format!("{w} waiting"));
    }
    if let Some(k) = f.kv_cache_pct {
        parts.push(format!("KV cache {k:.1}%"));
    }
    if let Some(t) = f.generation_tps {
        parts.push(format!("{t:.1} tokens/s generated"));
    }
    if let Some(t) = f.ttft_ms {
        parts.push(format!("time to first token {t:.1} ms"));
    }
    if let Some(n) = f.requests_ended {
        let failed = f.requests_failed.unwrap_or(0.0);
        parts.push(format!("{n} requests ended ({failed} failed)"));
    }
    let body = format!(
        "{} {}: {}",
        f.server,
        if f.model.is_empty() {
            "(model not named)"
        } else {
            &f.model
        },
        parts.join(", ")
    );
    let position = u64::try_from(at.unix_nanos()).unwrap_or(0);
    let mut record = Record::log(
        RecordId::from_source(
            format!("scrape/{}/{}/{}", target.url, f.server, f.model).as_bytes(),
            position,
        ),
        at,
        Timestamp::now(),
        Arc::new(target.resource.clone()),
        body,
    );
    record.kind = RecordKind::EngineStats;
    let a = &mut record.attributes;
    a.insert(names::LLM_SERVER, f.server);
    a.insert(names::LLM_EVENT, "stats");
    a.insert(names::SCRAPE_URL, target.url.clone());
    if !f.model.is_empty() {
        a.insert(names::GEN_AI_REQUEST_MODEL, f.model.clone());
    }
    for (key, value) in [
        (names::LLM_RUNNING, f.running),
        (names::LLM_WAITING, f.waiting),
        (names::LLM_KV_CACHE_PCT, f.kv_cache_pct),
        (names::LLM_PROMPT_THROUGHPUT_TPS, f.prompt_tps),
        (names::LLM_GEN_THROUGHPUT_TPS, f.generation_tps),
        (
            names::LLM_GENERATED_TOKENS,
            f.generated_tokens.map(f64::round),
        ),
        (names::LLM_TTFT_MS, f.ttft_ms),
        (names::LLM_REQUESTS_ENDED, f.requests_ended),
        (names::LLM_REQUESTS_FAILED, f.requests_failed),
    ] {
        if let Some(v) = value {
            a.insert_f64(key, v);
        }
    }
    if f.ttft_ms.is_some() {
        a.insert(names::LLM_TTFT_SOURCE, "scraped");
    }
    for interval in &f.intervals {
        let grid = interval.which.interval_grid().unwrap_or_default();
        for ((name, _), count) in grid.iter().zip(&interval.counts) {
            if *count > 0.0 {
                a.insert_f64(*name, *count);
            }
        }
        if let (Some(name), Some(total)) = (interval.which.interval_total(), interval.total_ms) {
            a.insert_f64(name, total);
        }
    }
    record
}
