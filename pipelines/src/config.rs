//! The pipeline config: TOML with `[sources.*]`, `[transforms.*]` and `[sinks.*]`, each
//! naming its `inputs`, checked as a whole so that `validate` reports every problem at once,
//! each with the file, the key and a hint.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The presets shipped inside the binary (`pipelines/presets/*.toml`).
pub const PRESETS: [(&str, &str); 3] = [
    ("local", include_str!("../presets/local.toml")),
    ("agent", include_str!("../presets/agent.toml")),
    ("aggregator", include_str!("../presets/aggregator.toml")),
];

/// The text of preset `name`.
pub fn preset(name: &str) -> Option<&'static str> {
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// One thing wrong with a config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key it concerns (`sources.pod_logs.poll_interval_ms`).
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Every problem of one config.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The file (or preset) the config came from.
    pub origin: String,
    /// What is wrong, in key order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {n} problem{} in the config",
            self.origin,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            let key = if p.key.is_empty() { "(file)" } else { &p.key };
            write!(f, "\n  - {key}: {}\n    hint: {}", p.message, p.hint)?;
        }
        Ok(())
    }
}

/// Settings given on the command line; they win over the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--logs-dir`: the directory of every `files` source.
    pub logs_dir: Option<PathBuf>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--api-token` (or `INFERSIGHT_API_TOKEN`).
    pub api_token: Option<String>,
    /// `--insecure-no-auth`.
    pub insecure_no_auth: bool,
    /// `--kube-api`: the API server of every `kube` source.
    pub kube_api: Option<String>,
    /// `--kube-node`: the node whose pods every `kube` source watches.
    pub kube_node: Option<String>,
    /// `--scrape`: endpoints every `scrape` source reads as well.
    pub scrape: Vec<String>,
    /// `--kafka-brokers`: the brokers of every Kafka source and sink.
    pub kafka_brokers: Option<String>,
    /// `--kafka-topic`: the topic of every Kafka source and sink.
    pub kafka_topic: Option<String>,
    /// `--kafka-group-instance-id`: the static member name of every Kafka source.
    pub kafka_group_instance_id: Option<String>,
    /// `--kafka-dead-letter-topic`: the dead-letter topic of every Kafka source.
    pub kafka_dead_letter_topic: Option<String>,
    /// `--peers`: more peer aggregators for the API.
    pub peers: Vec<String>,
    /// `--retention-hours`: the age limit of every index sink.
    pub retention_hours: Option<u64>,
    /// `--retention-mb`: the size limit of every index sink.
    pub retention_mb: Option<u64>,
}

/// A checked pipeline config.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Where the index (and later other state) lives.
    pub data_dir: PathBuf,
    /// The HTTP API, when configured.
    pub api: Option<ApiConfig>,
    /// Sources by id.
    pub sources: BTreeMap<String, SourceConfig>,
    /// Transforms by id.
    pub transforms: BTreeMap<String, TransformConfig>,
    /// Sinks by id.
    pub sinks: BTreeMap<String, SinkConfig>,
}

/// `[api]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// HOST:PORT to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The bearer token every `/api` and `/metrics` request must carry; none means no
    /// authentication, which is refused beyond loopback unless `insecure_no_auth`.
    #[serde(default)]
    pub token: Option<String>,
    /// Serve beyond loopback without a token (every log to anyone who can reach the port).
    #[serde(default)]
    pub insecure_no_auth: bool,
    /// The other aggregators every read endpoint asks as well (`HOST:PORT`, or
    /// `dns:NAME:PORT` for every address of a headless Service). They share the token.
    #[serde(default)]
    pub peers: Vec<String>,
    /// How long a peer has to answer before the answer is given without it (`partial`).
    #[serde(default = "default_peer_timeout_ms")]
    pub peer_timeout_ms: u64,
}

impl ApiConfig {
    fn at(listen: &str) -> Self {
        ApiConfig {
            listen: listen.to_string(),
            token: None,
            insecure_no_auth: false,
            peers: Vec::new(),
            peer_timeout_ms: default_peer_timeout_ms(),
        }
    }
}

fn default_peer_timeout_ms() -> u64 {
    3000
}

fn default_listen() -> String {
    "127.0.0.1:8470".into()
}

/// A source.
#[derive(Clone, Debug)]
pub enum SourceConfig {
    /// Container log files.
    Files(FilesSourceConfig),
    /// The Kubernetes API: events and pod changes.
    Kube(KubeSourceConfig),
    /// GPU snapshots from NVML on this node.
    Gpu(GpuSourceConfig),
    /// Prometheus endpoints: dcgm-exporter, inference servers' `/metrics`.
    Scrape(ScrapeSourceConfig),
    /// A Kafka topic, consumed in a group.
    Kafka(KafkaSourceConfig),
}

/// `type = "kafka"` (source).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// `HOST:PORT,…` (`--kafka-brokers` sets it too).
    pub brokers: String,
    /// The topic (`--kafka-topic` sets it too).
    pub topic: String,
    /// The consumer group every aggregator of one deployment shares.
    #[serde(default = "default_kafka_group")]
    pub group: String,
    /// This member's static name in the group (Kafka's `group.instance.id`; a StatefulSet
    /// pod's name): restarted, it takes its partitions back without a rebalance.
    #[serde(default)]
    pub group_instance_id: Option<String>,
    /// `record` (what Infersight's Kafka sink writes) or `raw` (log lines of other
    /// shippers: plain text, or JSON with `log`/`message` and `kubernetes`).
    #[serde(default)]
    pub format: KafkaFormatConfig,
    /// Where messages (or lines of JSON-lines messages) that are not records go, as read,
    /// with their topic, partition, offset, line and the reason in headers
    /// (`--kafka-dead-letter-topic` sets it too); without it they are counted and skipped.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
}

fn default_kafka_group() -> String {
    "infersight-aggregators".into()
}

/// `format` of a Kafka source.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KafkaFormatConfig {
    /// Infersight records.
    #[default]
    Record,
    /// Other shippers' lines.
    Raw,
}

/// `type = "kafka"` (sink).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Upstream components.
    pub inputs: Vec<String>,
    /// `HOST:PORT,…` (`--kafka-brokers` sets it too).
    pub brokers: String,
    /// The topic (`--kafka-topic` sets it too).
    pub topic: String,
    /// What keys a message, and so orders it: `pod` (the default: one container's records
    /// in order), `namespace` or `node`.
    #[serde(default)]
    pub key: KafkaKeyConfig,
    /// `json` (the default: one record a message, readable by any Kafka tool) or
    /// `json_lines` (several records of one key a message, one a line: far fewer messages
    /// for the producer, the brokers and the consumers to handle) or `binary` (packed as
    /// `json_lines`, in a compact form only Infersight's Kafka source reads: what agents
    /// send aggregators, at a fraction of JSON's cost).
    #[serde(default)]
    pub encoding: KafkaEncodingConfig,
    /// With `json_lines` or `binary`, the most bytes a message takes before a new one is
    /// started.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
}

fn default_max_message_bytes() -> usize {
    collector::kafka::KafkaSinkOptions::default().max_message_bytes
}

/// `key` of a Kafka sink.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KafkaKeyConfig {
    /// The pod.
    #[default]
    Pod,
    /// The namespace.
    Namespace,
    /// The node.
    Node,
}

/// `encoding` of a Kafka sink.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KafkaEncodingConfig {
    /// One record a message.
    #[default]
    Json,
    /// Records of one key, one a line.
    JsonLines,
    /// Records of one key in Infersight's binary form.
    Binary,
}

/// `type = "gpu"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSourceConfig {
    /// Between snapshots, in milliseconds.
    #[serde(default = "default_gpu_interval_ms")]
    pub interval_ms: u64,
    /// The node the GPUs are in, put on their records (`--kube-node` sets it too).
    #[serde(default)]
    pub node_name: Option<String>,
    /// Where processes are (their cgroups name their containers).
    #[serde(default = "default_proc_root")]
    pub proc_root: PathBuf,
    /// The kubelet's container log links, which name each container's pod.
    #[serde(default = "default_containers_dir")]
    pub containers_dir: PathBuf,
}

fn default_gpu_interval_ms() -> u64 {
    5000
}
fn default_proc_root() -> PathBuf {
    "/proc".into()
}
fn default_containers_dir() -> PathBuf {
    "/var/log/containers".into()
}

/// `type = "scrape"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeSourceConfig {
    /// The endpoints (`--scrape URL` adds to them).
    #[serde(default)]
    pub targets: Vec<ScrapeTargetConfig>,
    /// Between scrapes, in milliseconds.
    #[serde(default = "default_gpu_interval_ms")]
    pub interval_ms: u64,
    /// For one scrape, in milliseconds.
    #[serde(default = "default_scrape_timeout_ms")]
    pub timeout_ms: u64,
    /// Also scrape running pods annotated `prometheus.io/scrape: "true"` (their
    /// `prometheus.io/port` and `prometheus.io/path`), as the first `kube` source sees them.
    #[serde(default = "yes")]
    pub discover: bool,
}

fn default_scrape_timeout_ms() -> u64 {
    4000
}

/// One endpoint: a URL, or a table with the pod it belongs to.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ScrapeTargetConfig {
    /// `"http://10.1.2.3:8000/metrics"`.
    Url(String),
    /// `{ url = "…", namespace = "…", pod = "…", container = "…" }`.
    Pod {
        /// The endpoint.
        url: String,
        /// The server's namespace.
        #[serde(default)]
        namespace: Option<String>,
        /// The server's pod.
        #[serde(default)]
        pod: Option<String>,
        /// The server's container.
        #[serde(default)]
        container: Option<String>,
    },
}

impl ScrapeTargetConfig {
    /// Its URL.
    pub fn url(&self) -> &str {
        match self {
            ScrapeTargetConfig::Url(url) | ScrapeTargetConfig::Pod { url, .. } => url,
        }
    }
}

/// `type = "kube"`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeSourceConfig {
    /// The API server's URL; without it, the in-cluster service account or kubeconfig, and
    /// no Kubernetes source when there is neither.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Watch only this node's pods (a node agent: the downward API's `spec.nodeName`);
    /// all pods without it.
    #[serde(default)]
    pub node_name: Option<String>,
}

/// `type = "files"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesSourceConfig {
    /// The kubelet's pod log directory.
    #[serde(default = "default_logs_dir")]
    pub logs_dir: PathBuf,
    /// How often to look for new bytes and files, in milliseconds.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Longest line kept, in bytes.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Where to start in files that exist at the very first start: `beginning` or `end`.
    #[serde(default)]
    pub read_from: ReadFromConfig,
    /// Docker's container directory (`/var/lib/docker/containers`), read as well when set.
    #[serde(default)]
    pub docker_dir: Option<PathBuf>,
    /// Globs over `<namespace>/<pod>/<container>` to read (all when empty).
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs over `<namespace>/<pod>/<container>` never to read.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// A line whose end never comes is emitted after this many milliseconds.
    #[serde(default = "default_partial_timeout_ms")]
    pub partial_timeout_ms: u64,
    /// Multi-line grouping (tracebacks, goroutine dumps, continuation lines).
    #[serde(default)]
    pub multiline: MultilineSection,
}

/// `[sources.<id>.multiline]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineSection {
    /// Group lines at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Most lines in one record.
    #[serde(default = "default_ml_max_lines")]
    pub max_lines: usize,
    /// Most bytes in one record.
    #[serde(default = "default_ml_max_bytes")]
    pub max_bytes: usize,
    /// A group that got no line for this long is emitted (milliseconds).
    #[serde(default = "default_ml_timeout_ms")]
    pub timeout_ms: u64,
    /// Loose continuation lines join within this many milliseconds of the line before.
    #[serde(default = "default_ml_window_ms")]
    pub window_ms: u64,
    /// Globs over `<namespace>/<pod>/<container>` whose lines are grouped (all when empty).
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs over `<namespace>/<pod>/<container>` whose lines are never grouped.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl Default for MultilineSection {
    fn default() -> Self {
        MultilineSection {
            enabled: true,
            max_lines: default_ml_max_lines(),
            max_bytes: default_ml_max_bytes(),
            timeout_ms: default_ml_timeout_ms(),
            window_ms: default_ml_window_ms(),
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_partial_timeout_ms() -> u64 {
    5000
}
fn default_ml_max_lines() -> usize {
    1000
}
fn default_ml_max_bytes() -> usize {
    512 * 1024
}
fn default_ml_timeout_ms() -> u64 {
    1000
}
fn default_ml_window_ms() -> u64 {
    100
}

/// `read_from` of the `files` source.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReadFromConfig {
    /// Read what existing files hold (nothing is missed).
    #[default]
    Beginning,
    /// Only what is written after the first start.
    End,
}

fn default_logs_dir() -> PathBuf {
    "/var/log/pods".into()
}
fn default_poll_interval_ms() -> u64 {
    250
}
fn default_max_line_bytes() -> usize {
    1024 * 1024
}

/// A transform.
#[derive(Clone, Debug)]
pub enum TransformConfig {
    /// Recognise inference-server lines.
    InferenceLogs {
        /// Upstream components.
        inputs: Vec<String>,
        /// Servers named by the user, first match wins; other containers are detected.
        servers: Vec<ServerRule>,
    },
    /// Count the LLM metrics of records parsed upstream (an aggregator behind agents).
    LlmMetrics {
        /// Upstream components.
        inputs: Vec<String>,
    },
}

/// `[[transforms.<id>.servers]]`: the containers matching `containers` run `server`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerRule {
    /// A glob over `<namespace>/<pod>/<container>` (`*` stops at `/`).
    pub containers: String,
    /// One of `processor::SERVERS`.
    pub server: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InferenceLogsConfig {
    inputs: Vec<String>,
    #[serde(default)]
    servers: Vec<ServerRule>,
}

/// A sink.
#[derive(Clone, Debug)]
pub enum SinkConfig {
    /// The tantivy index under `data_dir`.
    Index(IndexSinkConfig),
    /// A Kafka topic.
    Kafka(KafkaSinkConfig),
}

/// `type = "index"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSinkConfig {
    /// Upstream components.
    pub inputs: Vec<String>,
    /// Commit (make searchable and acknowledge) at least this often, in milliseconds.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// Commit as soon as this many records are pending.
    #[serde(default = "default_commit_docs")]
    pub commit_docs: usize,
    /// tantivy's indexing memory budget in MiB.
    #[serde(default = "default_memory_budget_mb")]
    pub memory_budget_mb: usize,
    /// tantivy indexing threads; 0 (the default) is one per core, at most 4 and at most
    /// one per 16 MiB of the memory budget.
    #[serde(default)]
    pub indexing_threads: usize,
    /// Delete records older than this many hours; 0 keeps everything.
    #[serde(default)]
    pub retention_hours: u64,
    /// Drop the oldest splits while the index is larger than this many MiB; 0 sets no
    /// bound.
    #[serde(default)]
    pub retention_mb: u64,
    /// Drop the oldest splits while less than this share (in %) of the index's filesystem
    /// is free, so that the index never fills its disk (a full one stops every commit, and
    /// on a node's disk the kubelet evicts pods under 10 % free); 0 keeps no floor. Under
    /// it, the index gives back its own growth and stops growing; it is not emptied for
    /// others' files.
    #[serde(default = "default_min_free_disk_percent")]
    pub min_free_disk_percent: f64,
    /// Seal the active split (and start a new one) at this many records...
    #[serde(default = "default_split_docs")]
    pub split_docs: u64,
    /// ...or after this many minutes of writing to it.
    #[serde(default = "default_split_minutes")]
    pub split_minutes: u64,
    /// Within a split, only segments of at most this many records are merged (fewer,
    /// larger segments search faster; merging a busy aggregator's per-commit segments
    /// again took ~15 % of its CPU).
    #[serde(default = "default_segment_merge_max_docs")]
    pub segment_merge_max_docs: u32,
}

fn default_segment_merge_max_docs() -> u32 {
    indexer::SinkOptions::default().segment_merge_max_docs
}

fn default_min_free_disk_percent() -> f64 {
    15.0
}

fn default_split_docs() -> u64 {
    2_000_000
}
fn default_split_minutes() -> u64 {
    60
}

fn default_commit_interval_ms() -> u64 {
    1000
}
fn default_commit_docs() -> usize {
    100_000
}
fn default_memory_budget_mb() -> usize {
    64
}

// ---- raw forms, as written -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<PathBuf>,
    api: Option<toml::Value>,
    #[serde(default)]
    sources: BTreeMap<String, toml::Value>,
    #[serde(default)]
    transforms: BTreeMap<String, toml::Value>,
    #[serde(default)]
    sinks: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RawSource {
    Files(Box<FilesSourceConfig>),
    Kube(KubeSourceConfig),
    Gpu(GpuSourceConfig),
    Scrape(ScrapeSourceConfig),
    Kafka(KafkaSourceConfig),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RawTransform {
    InferenceLogs(InferenceLogsConfig),
    LlmMetrics(LlmMetricsConfig),
}

/// `type = "llm_metrics"`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LlmMetricsConfig {
    inputs: Vec<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RawSink {
    Index(IndexSinkConfig),
    Kafka(KafkaSinkConfig),
}

impl PipelineConfig {
    /// Reads and checks a config. `origin` names the file in messages.
    pub fn load(origin: &str, text: &str, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        // Ids of components that failed to parse: they count as present, so one mistake does
        // not also show up as "no component called …" wherever it is used.
        let mut broken = BTreeSet::new();
        if let Some(config) = Self::parse(text, overrides, &mut problems, &mut broken) {
            config.check(&broken, &mut problems);
            if problems.is_empty() {
                return Ok(config);
            }
        }
        problems.sort_by(|a, b| a.key.cmp(&b.key));
        problems.dedup();
        Err(ConfigError {
            origin: origin.to_string(),
            problems,
        })
    }

    fn parse(
        text: &str,
        overrides: &Overrides,
        problems: &mut Vec<Problem>,
        broken: &mut BTreeSet<String>,
    ) -> Option<Self> {
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let (key, hint) = match e.message() {
                    m if m.starts_with("unknown field") => (
                        String::new(),
                        "top-level keys are data_dir, [api], [sources.*], [transforms.*], [sinks.*]".to_string(),
                    ),
                    _ => (String::new(), "fix the TOML syntax at the line shown".to_string()),
                };
                problems.push(Problem {
                    key,
                    message: e.to_string().trim().replace('\n', "\n    "),
                    hint,
                });
                return None;
            }
        };
        let api = raw.api.and_then(|v| {
            typed::<ApiConfig>(v, "api", no_tag, "[api] takes `listen = \"HOST:PORT\"`, `token = \"…\"`, `insecure_no_auth = true|false`, `peers = [\"HOST:PORT\"]` and `peer_timeout_ms`", problems)
        });
        let mut sources = BTreeMap::new();
        for (id, value) in raw.sources {
            let key = format!("sources.{id}");
            let hint = "a source needs `type` = \"files\", \"kube\", \"gpu\" or \"scrape\" (kafka comes later)";
            match typed::<RawSource>(value, &key, locate_in_source, hint, problems) {
                Some(RawSource::Files(c)) => {
                    sources.insert(id.clone(), SourceConfig::Files(*c));
                }
                Some(RawSource::Kube(c)) => {
                    sources.insert(id.clone(), SourceConfig::Kube(c));
                }
                Some(RawSource::Gpu(c)) => {
                    sources.insert(id.clone(), SourceConfig::Gpu(c));
                }
                Some(RawSource::Scrape(c)) => {
                    sources.insert(id.clone(), SourceConfig::Scrape(c));
                }
                Some(RawSource::Kafka(c)) => {
                    sources.insert(id.clone(), SourceConfig::Kafka(c));
                }
                None => {}
            }
            if !sources.contains_key(&id) {
                broken.insert(id);
            }
        }
        let mut transforms = BTreeMap::new();
        for (id, value) in raw.transforms {
            let key = format!("transforms.{id}");
            let hint = "a transform needs `type` = \"inference_logs\" or \"llm_metrics\" and `inputs` = [\"<source>\"]";
            match typed::<RawTransform>(value, &key, locate_in_transform, hint, problems) {
                Some(RawTransform::InferenceLogs(c)) => {
                    transforms.insert(
                        id,
                        TransformConfig::InferenceLogs {
                            inputs: c.inputs,
                            servers: c.servers,
                        },
                    );
                }
                Some(RawTransform::LlmMetrics(c)) => {
                    transforms.insert(id, TransformConfig::LlmMetrics { inputs: c.inputs });
                }
                None => {
                    broken.insert(id);
                }
            }
        }
        let mut sinks = BTreeMap::new();
        for (id, value) in raw.sinks {
            let key = format!("sinks.{id}");
            let hint = "a sink needs `type` = \"index\" or \"kafka\" and `inputs` = [\"<source or transform>\"]";
            match typed::<RawSink>(value, &key, locate_in_sink, hint, problems) {
                Some(RawSink::Index(c)) => {
                    sinks.insert(id.clone(), SinkConfig::Index(c));
                }
                Some(RawSink::Kafka(c)) => {
                    sinks.insert(id.clone(), SinkConfig::Kafka(c));
                }
                None => {}
            }
            if !sinks.contains_key(&id) {
                broken.insert(id);
            }
        }
        let mut config = PipelineConfig {
            data_dir: raw.data_dir.unwrap_or_else(|| "./data".into()),
            api,
            sources,
            transforms,
            sinks,
        };
        config.apply(overrides);
        Some(config)
    }

    fn apply(&mut self, o: &Overrides) {
        if let Some(d) = &o.data_dir {
            self.data_dir = d.clone();
        }
        if let Some(l) = &o.listen {
            self.api.get_or_insert_with(|| ApiConfig::at(l)).listen = l.clone();
        }
        if let Some(api) = &mut self.api {
            if o.api_token.is_some() {
                api.token = o.api_token.clone();
            }
            api.insecure_no_auth |= o.insecure_no_auth;
            api.peers.extend(o.peers.iter().cloned());
        }
        for source in self.sources.values_mut() {
            match source {
                SourceConfig::Files(f) => {
                    if let Some(dir) = &o.logs_dir {
                        f.logs_dir = dir.clone();
                    }
                }
                SourceConfig::Kube(k) => {
                    if o.kube_api.is_some() {
                        k.api_url = o.kube_api.clone();
                    }
                    if o.kube_node.is_some() {
                        k.node_name = o.kube_node.clone();
                    }
                }
                SourceConfig::Gpu(g) => {
                    if o.kube_node.is_some() {
                        g.node_name = o.kube_node.clone();
                    }
                }
                SourceConfig::Scrape(c) => {
                    c.targets
                        .extend(o.scrape.iter().cloned().map(ScrapeTargetConfig::Url));
                }
                SourceConfig::Kafka(k) => {
                    if let Some(b) = &o.kafka_brokers {
                        k.brokers = b.clone();
                    }
                    if let Some(t) = &o.kafka_topic {
                        k.topic = t.clone();
                    }
                    if o.kafka_group_instance_id.is_some() {
                        k.group_instance_id = o.kafka_group_instance_id.clone();
                    }
                    if o.kafka_dead_letter_topic.is_some() {
                        k.dead_letter_topic = o.kafka_dead_letter_topic.clone();
                    }
                }
            }
        }
        for sink in self.sinks.values_mut() {
            match sink {
                SinkConfig::Kafka(k) => {
                    if let Some(b) = &o.kafka_brokers {
                        k.brokers = b.clone();
                    }
                    if let Some(t) = &o.kafka_topic {
                        k.topic = t.clone();
                    }
                }
                SinkConfig::Index(c) => {
                    if let Some(hours) = o.retention_hours {
                        c.retention_hours = hours;
                    }
                    if let Some(mb) = o.retention_mb {
                        c.retention_mb = mb;
                    }
                }
            }
        }
    }

    /// The inputs of a transform or sink.
    pub fn inputs_of(&self, id: &str) -> &[String] {
        match self.transforms.get(id) {
            Some(TransformConfig::InferenceLogs { inputs, .. })
            | Some(TransformConfig::LlmMetrics { inputs }) => return inputs,
            None => {}
        }
        match self.sinks.get(id) {
            Some(SinkConfig::Index(c)) => &c.inputs,
            Some(SinkConfig::Kafka(c)) => &c.inputs,
            None => &[],
        }
    }

    fn check(&self, broken: &BTreeSet<String>, problems: &mut Vec<Problem>) {
        let mut p = |key: String, message: String, hint: &str| {
            problems.push(Problem {
                key,
                message,
                hint: hint.to_string(),
            })
        };
        let sections = [
            ("sources", self.sources.keys().collect::<Vec<_>>()),
            ("transforms", self.transforms.keys().collect()),
            ("sinks", self.sinks.keys().collect()),
        ];
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (section, ids) in &sections {
            for id in ids {
                if id.is_empty()
                    || !id
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                {
                    p(
                        format!("{section}.{id}"),
                        "component ids may hold only letters, digits, `_` and `-`".into(),
                        "rename the table",
                    );
                }
                if let Some(other) = seen.insert(id.as_str(), section) {
                    p(
                        format!("{section}.{id}"),
                        format!("the id `{id}` is also used in [{other}]"),
                        "give every component a distinct id so `inputs` are unambiguous",
                    );
                }
            }
        }
        if self.sources.is_empty() && broken.is_empty() {
            p(
                "sources".into(),
                "no source is configured".into(),
                "add e.g. [sources.pod_logs] with type = \"files\"",
            );
        }
        if self.sinks.is_empty() && broken.is_empty() {
            p(
                "sinks".into(),
                "no sink is configured".into(),
                "add e.g. [sinks.index] with type = \"index\" and inputs",
            );
        }
        let producers: BTreeSet<&str> = self
            .sources
            .keys()
            .chain(self.transforms.keys())
            .map(String::as_str)
            .collect();
        let known = |id: &str| producers.contains(id) || broken.contains(id);
        let mut consumed: BTreeSet<&str> = BTreeSet::new();
        for (section, id) in self
            .transforms
            .keys()
            .map(|id| ("transforms", id))
            .chain(self.sinks.keys().map(|id| ("sinks", id)))
        {
            let inputs = self.inputs_of(id);
            if inputs.is_empty() {
                p(
                    format!("{section}.{id}.inputs"),
                    "no inputs".into(),
                    "list the ids of the sources or transforms it reads",
                );
            }
            for input in inputs {
                consumed.insert(input);
                if input == id {
                    p(
                        format!("{section}.{id}.inputs"),
                        "a component cannot read its own output".into(),
                        "remove it from its inputs",
                    );
                } else if self.sinks.contains_key(input) {
                    p(
                        format!("{section}.{id}.inputs"),
                        format!("`{input}` is a sink and produces nothing"),
                        "inputs name sources or transforms",
                    );
                } else if !known(input) {
                    let known: Vec<&str> = producers
                        .iter()
                        .copied()
                        .chain(broken.iter().map(String::as_str))
                        .collect();
                    p(
                        format!("{section}.{id}.inputs"),
                        format!("no source or transform is called `{input}`"),
                        &format!(
                            "known ids: {}",
                            if known.is_empty() {
                                "none".into()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                }
            }
        }
        // A broken consumer's inputs are unknown, so "unread" could be wrong then.
        for id in producers.iter().filter(|_| broken.is_empty()) {
            if !consumed.contains(id) {
                let section = if self.sources.contains_key(*id) {
                    "sources"
                } else {
                    "transforms"
                };
                p(
                    format!("{section}.{id}"),
                    "nothing reads its output".into(),
                    "add it to a sink's or transform's inputs, or remove it",
                );
            }
        }
        if let Some(cycle_at) = self.find_transform_cycle() {
            p(
                format!("transforms.{cycle_at}.inputs"),
                "transforms feed each other in a cycle".into(),
                "break the cycle",
            );
        }
        if let Some(api) = &self.api {
            if let Err(e) = api::Peers::new(&api.peers, "", None, Duration::from_secs(1)) {
                p(
                    "api.peers".into(),
                    e.to_string(),
                    "list the other aggregators, e.g. [\"dns:infersight-aggregator:8470\"] for a headless Service",
                );
            }
            if api.peer_timeout_ms == 0 || api.peer_timeout_ms > 60_000 {
                p(
                    "api.peer_timeout_ms".into(),
                    format!(
                        "{} ms is not a timeout a search can wait",
                        api.peer_timeout_ms
                    ),
                    "give 100 to 60000 ms; 3000 is the default",
                );
            }
            if api.listen.parse::<SocketAddr>().is_err() {
                p(
                    "api.listen".into(),
                    format!("`{}` is not an IP:PORT address", api.listen),
                    "e.g. 127.0.0.1:8470 (loopback) or 0.0.0.0:8470 (all interfaces)",
                );
            }
            if let Ok(addr) = api.listen.parse::<SocketAddr>()
                && !addr.ip().is_loopback()
                && api.token.is_none()
                && !api.insecure_no_auth
            {
                p(
                    "api.token".into(),
                    format!(
                        "the API would serve every log on {addr}, beyond this machine, to anyone"
                    ),
                    "set --api-token (or INFERSIGHT_API_TOKEN, or api.token), or pass --insecure-no-auth if the network is yours",
                );
            }
            if let Some(token) = &api.token
                && (token.len() < 16 || token.chars().any(char::is_whitespace))
            {
                p(
                    "api.token".into(),
                    "the token is shorter than 16 characters or has spaces".into(),
                    "use a long random token, e.g. the output of `openssl rand -hex 32`",
                );
            }
            // Without an index (a node agent) the API serves /metrics, health and status;
            // only peers make no sense there: it has no shard to share.
            if !self
                .sinks
                .values()
                .any(|s| matches!(s, SinkConfig::Index(_)))
                && !api.peers.is_empty()
                && broken.is_empty()
            {
                p(
                    "api.peers".into(),
                    "peers share their indexes, and this pipeline has no index sink".into(),
                    "remove api.peers (and --peers), or add an index sink",
                );
            }
        }
        let index_sinks: Vec<&String> = self
            .sinks
            .iter()
            .filter(|(_, s)| matches!(s, SinkConfig::Index(_)))
            .map(|(id, _)| id)
            .collect();
        if index_sinks.len() > 1 {
            p(
                format!("sinks.{}", index_sinks[1]),
                "more than one index sink".into(),
                "one data_dir holds one index; list every input in a single index sink",
            );
        }
        for (id, transform) in &self.transforms {
            let TransformConfig::InferenceLogs { servers, .. } = transform else {
                continue;
            };
            for (i, rule) in servers.iter().enumerate() {
                if let Err(e) = collector::files::check_pattern(&rule.containers) {
                    p(
                        format!("transforms.{id}.servers[{i}].containers"),
                        e.to_string(),
                        "globs name <namespace>/<pod>/<container>, e.g. \"llm-serving/vllm-*/*\"",
                    );
                }
                if !processor::SERVERS.contains(&rule.server.as_str()) {
                    p(
                        format!("transforms.{id}.servers[{i}].server"),
                        format!("`{}` is not a server Infersight knows", rule.server),
                        &format!("use one of {}", processor::SERVERS.join(", ")),
                    );
                }
            }
        }
        for (id, source) in &self.sources {
            let f = match source {
                SourceConfig::Files(f) => f,
                SourceConfig::Kube(k) => {
                    if let Some(url) = &k.api_url
                        && !(url.starts_with("http://") || url.starts_with("https://"))
                    {
                        p(
                            format!("sources.{id}.api_url"),
                            format!("`{url}` is not an http(s) URL"),
                            "give the API server's URL, e.g. https://10.0.0.1:6443",
                        );
                    }
                    continue;
                }
                SourceConfig::Kafka(k) => {
                    check_kafka(&format!("sources.{id}"), &k.brokers, &k.topic, &mut p);
                    if let Some(dead) = &k.dead_letter_topic {
                        let key = format!("sources.{id}.dead_letter_topic");
                        if !is_topic_name(dead) {
                            p(
                                key,
                                format!("`{dead}` is not a Kafka topic name"),
                                TOPIC_NAME_HINT,
                            );
                        } else if *dead == k.topic {
                            p(
                                key,
                                format!(
                                    "`{dead}` is the topic this source reads: its dead letters would come back to it"
                                ),
                                "name another topic, e.g. `<topic>-dead-letters`",
                            );
                        }
                    }
                    continue;
                }
                SourceConfig::Gpu(g) => {
                    if !(100..=3_600_000).contains(&g.interval_ms) {
                        p(
                            format!("sources.{id}.interval_ms"),
                            format!("{} is out of range", g.interval_ms),
                            "use 100 to 3600000 (default 5000)",
                        );
                    }
                    continue;
                }
                SourceConfig::Scrape(c) => {
                    for (i, t) in c.targets.iter().enumerate() {
                        if let Err(e) = collector::scrape::check_url(t.url()) {
                            p(
                                format!("sources.{id}.targets[{i}]"),
                                e.to_string(),
                                "give the endpoint, e.g. http://10.1.2.3:9400/metrics",
                            );
                        }
                    }
                    if !(100..=3_600_000).contains(&c.interval_ms) {
                        p(
                            format!("sources.{id}.interval_ms"),
                            format!("{} is out of range", c.interval_ms),
                            "use 100 to 3600000 (default 5000)",
                        );
                    }
                    if !(100..=600_000).contains(&c.timeout_ms) {
                        p(
                            format!("sources.{id}.timeout_ms"),
                            format!("{} is out of range", c.timeout_ms),
                            "use 100 to 600000 (default 4000)",
                        );
                    }
                    continue;
                }
            };
            if f.logs_dir.as_os_str().is_empty() {
                p(
                    format!("sources.{id}.logs_dir"),
                    "empty".into(),
                    "the kubelet writes pod logs to /var/log/pods",
                );
            }
            if !(10..=60_000).contains(&f.poll_interval_ms) {
                p(
                    format!("sources.{id}.poll_interval_ms"),
                    format!("{} is out of range", f.poll_interval_ms),
                    "use 10 to 60000 (default 250)",
                );
            }
            if !(1024..=64 * 1024 * 1024).contains(&f.max_line_bytes) {
                p(
                    format!("sources.{id}.max_line_bytes"),
                    format!("{} is out of range", f.max_line_bytes),
                    "use 1024 to 67108864 (default 1048576)",
                );
            }
            if !(10..=600_000).contains(&f.partial_timeout_ms) {
                p(
                    format!("sources.{id}.partial_timeout_ms"),
                    format!("{} is out of range", f.partial_timeout_ms),
                    "use 10 to 600000 (default 5000)",
                );
            }
            let globs = [
                ("include", &f.include),
                ("exclude", &f.exclude),
                ("multiline.include", &f.multiline.include),
                ("multiline.exclude", &f.multiline.exclude),
            ];
            for (field, patterns) in globs {
                for (i, pattern) in patterns.iter().enumerate() {
                    if let Err(e) = collector::files::check_pattern(pattern) {
                        p(
                            format!("sources.{id}.{field}[{i}]"),
                            e.to_string(),
                            "globs name <namespace>/<pod>/<container>, e.g. \"llm-*/*/*\" or \"*/*/istio-proxy\"",
                        );
                    }
                }
            }
            let ml = &f.multiline;
            let ranges = [
                ("max_lines", ml.max_lines as u64, 2, 100_000, "1000"),
                ("max_bytes", ml.max_bytes as u64, 1024, 64 << 20, "524288"),
                ("timeout_ms", ml.timeout_ms, 10, 600_000, "1000"),
                ("window_ms", ml.window_ms, 0, 60_000, "100"),
            ];
            for (field, value, lo, hi, default) in ranges {
                if !(lo..=hi).contains(&value) {
                    p(
                        format!("sources.{id}.multiline.{field}"),
                        format!("{value} is out of range"),
                        &format!("use {lo} to {hi} (default {default})"),
                    );
                }
            }
        }
        for (id, sink) in &self.sinks {
            let c = match sink {
                SinkConfig::Index(c) => c,
                SinkConfig::Kafka(k) => {
                    check_kafka(&format!("sinks.{id}"), &k.brokers, &k.topic, &mut p);
                    // Kafka's default message.max.bytes is 1 MB (1,048,588 with overhead).
                    if !(1024..=1_000_000).contains(&k.max_message_bytes) {
                        p(
                            format!("sinks.{id}.max_message_bytes"),
                            format!("{} is out of range", k.max_message_bytes),
                            "use 1024 to 1000000, under the brokers' message.max.bytes (default 262144)",
                        );
                    }
                    continue;
                }
            };
            if !(10..=600_000).contains(&c.commit_interval_ms) {
                p(
                    format!("sinks.{id}.commit_interval_ms"),
                    format!("{} is out of range", c.commit_interval_ms),
                    "use 10 to 600000 (default 1000)",
                );
            }
            if c.commit_docs == 0 {
                p(
                    format!("sinks.{id}.commit_docs"),
                    "must be at least 1".into(),
                    "default 100000",
                );
            }
            if !(16..=4096).contains(&c.memory_budget_mb) {
                p(
                    format!("sinks.{id}.memory_budget_mb"),
                    format!("{} is out of range", c.memory_budget_mb),
                    "use 16 to 4096 (default 64)",
                );
            }
            if c.indexing_threads > 64 {
                p(
                    format!("sinks.{id}.indexing_threads"),
                    format!("{} is out of range", c.indexing_threads),
                    "use 0 (one per core, up to 4) or 1 to 64",
                );
            }
            if c.retention_hours > 876_000 {
                p(
                    format!("sinks.{id}.retention_hours"),
                    format!("{} is out of range", c.retention_hours),
                    "use 0 (keep everything) to 876000 (100 years), e.g. 168 for a week",
                );
            }
            if !(0.0..=90.0).contains(&c.min_free_disk_percent) {
                p(
                    format!("sinks.{id}.min_free_disk_percent"),
                    format!("{} is out of range", c.min_free_disk_percent),
                    "use 0 (no floor) to 90 (default 15: above the kubelet's 10 % eviction threshold)",
                );
            }
            if !(1_000..=100_000_000).contains(&c.split_docs) {
                p(
                    format!("sinks.{id}.split_docs"),
                    format!("{} is out of range", c.split_docs),
                    "use 1000 to 100000000 (default 2000000)",
                );
            }
            if !(1..=10_080).contains(&c.split_minutes) {
                p(
                    format!("sinks.{id}.split_minutes"),
                    format!("{} is out of range", c.split_minutes),
                    "use 1 to 10080 (a week; default 60)",
                );
            }
            if c.segment_merge_max_docs == 0 {
                p(
                    format!("sinks.{id}.segment_merge_max_docs"),
                    "must be at least 1".into(),
                    "default 20000; larger merges more (faster searches, more CPU)",
                );
            }
        }
    }

    fn find_transform_cycle(&self) -> Option<&str> {
        // Depth-first search over transform → transform edges; 1 = on the stack, 2 = done.
        fn visit<'a>(
            cfg: &'a PipelineConfig,
            id: &'a str,
            state: &mut BTreeMap<&'a str, u8>,
        ) -> Option<&'a str> {
            match state.get(id) {
                Some(1) => return Some(id),
                Some(_) => return None,
                None => {}
            }
            state.insert(id, 1);
            for input in cfg.inputs_of(id) {
                if cfg.transforms.contains_key(input)
                    && let Some(at) = visit(cfg, input, state)
                {
                    return Some(at);
                }
            }
            state.insert(id, 2);
            None
        }
        let mut state = BTreeMap::new();
        self.transforms
            .keys()
            .find_map(|id| visit(self, id, &mut state))
    }
}

/// A broker list of `HOST:PORT` entries and a topic Kafka accepts.
fn check_kafka(key: &str, brokers: &str, topic: &str, p: &mut impl FnMut(String, String, &str)) {
    let bad = brokers.split(',').map(str::trim).find(|b| {
        b.rsplit_once(':')
            .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
    });
    if let Some(b) = bad {
        p(
            format!("{key}.brokers"),
            format!("`{b}` is not HOST:PORT"),
            "list the brokers as HOST:PORT,HOST:PORT (or give --kafka-brokers)",
        );
    }
    if !is_topic_name(topic) {
        p(
            format!("{key}.topic"),
            format!("`{topic}` is not a Kafka topic name"),
            TOPIC_NAME_HINT,
        );
    }
}

/// What [`is_topic_name`] allows, as a config problem's fix.
const TOPIC_NAME_HINT: &str = "use letters, digits, `.`, `_` and `-` (at most 249)";

/// Whether Kafka takes `topic` as a topic's name.
fn is_topic_name(topic: &str) -> bool {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    !topic.is_empty() && topic.len() <= 249 && topic.chars().all(legal)
}

/// Deserialises one table, turning a failure into a problem at the exact key.
/// Where in a component's table (its `type` left out) deserializing `T` fails, if it does
/// at a field: serde keeps no path inside an internally tagged enum, the struct of the
/// component's own type does.
fn failing_path<T: DeserializeOwned>(value: &toml::Value) -> Option<String> {
    let mut table = value.as_table()?.clone();
    table.remove("type");
    let e = serde_path_to_error::deserialize::<_, T>(toml::Value::Table(table)).err()?;
    let path = e.path().to_string();
    (path != "." && !path.is_empty() && !path.contains('?')).then_some(path)
}

/// The `type` a component's table names.
fn tag(value: &toml::Value) -> Option<&str> {
    value.get("type")?.as_str()
}

/// For a table that is no tagged enum: serde keeps the path itself.
fn no_tag(_: &toml::Value) -> Option<String> {
    None
}

fn locate_in_source(value: &toml::Value) -> Option<String> {
    match tag(value)? {
        "files" => failing_path::<FilesSourceConfig>(value),
        "kube" => failing_path::<KubeSourceConfig>(value),
        "gpu" => failing_path::<GpuSourceConfig>(value),
        "scrape" => failing_path::<ScrapeSourceConfig>(value),
        "kafka" => failing_path::<KafkaSourceConfig>(value),
        _ => None,
    }
}

fn locate_in_transform(value: &toml::Value) -> Option<String> {
    match tag(value)? {
        "inference_logs" => failing_path::<InferenceLogsConfig>(value),
        "llm_metrics" => failing_path::<LlmMetricsConfig>(value),
        _ => None,
    }
}

fn locate_in_sink(value: &toml::Value) -> Option<String> {
    match tag(value)? {
        "index" => failing_path::<IndexSinkConfig>(value),
        "kafka" => failing_path::<KafkaSinkConfig>(value),
        _ => None,
    }
}

/// What a value of the type serde `expected` is, in a config's words.
fn expected_in_words(message: &str) -> Option<&'static str> {
    let expected = message.rsplit_once("expected ")?.1.trim();
    Some(match expected {
        "usize" | "u64" | "u32" | "u16" | "u8" => "a whole number, 0 or more, without quotes",
        "i64" | "i32" => "a whole number, without quotes",
        "f64" | "f32" => "a number, without quotes",
        "a boolean" => "true or false, without quotes",
        "a string" => "a string in quotes",
        "a sequence" => "a list: [\"a\", \"b\"]",
        _ => return None,
    })
}

fn typed<T: DeserializeOwned>(
    value: toml::Value,
    key: &str,
    locate: fn(&toml::Value) -> Option<String>,
    hint: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let copy = value.clone();
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let message = inner.trim().to_string();
            // serde does not track the path inside internally tagged enums (`type = …`):
            // the field is taken from the message where serde names it, else found by the
            // struct of the component's type.
            let named_field = ["unknown field `", "missing field `"]
                .iter()
                .find_map(|p| message.strip_prefix(p))
                .and_then(|rest| rest.split('`').next());
            let (full_key, field_known) = if let Some(field) = named_field {
                (format!("{key}.{field}"), false)
            } else if path != "." && !path.is_empty() && !path.contains('?') {
                (format!("{key}.{path}"), true)
            } else if message.contains("variant") {
                (format!("{key}.type"), false)
            } else if let Some(path) = locate(&copy) {
                (format!("{key}.{path}"), true)
            } else {
                (key.to_string(), false)
            };
            // A value of the wrong kind: say what the key takes, not what the component is.
            let hint = match (field_known, expected_in_words(&message)) {
                (true, Some(words)) => format!("`{full_key}` takes {words}"),
                _ => hint.to_string(),
            };
            problems.push(Problem {
                key: full_key,
                message,
                hint,
            });
            None
        }
    }
}

#[cfg(test)]
mod tests;
