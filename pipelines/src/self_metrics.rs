//! Infersight's own counters on `/metrics`: what each source read, merged, cut, sent and
//! got acknowledged, and the index's size and upkeep. This is the one place that knows both the sources' counters and the
//! API's exposition types.

use api::{
    ComponentState, ComponentStatus, MetricFamily, MetricKind, MetricsBackend, PipelineRestarts,
    Sample,
};
use collector::files::FileSourceMetrics;
use collector::gpu::{GpuTable, NvmlMetrics, NvmlStatus};
use collector::kafka::{KafkaSinkMetrics, KafkaSourceMetrics};
use collector::kube::{KubeSourceMetrics, KubeState, Replicas};
use collector::scrape::{EngineHistogram, ScrapeMetrics, ScrapeState};
use indexer::{IndexHealth, IndexStats, IndexStore};
use processor::metrics::{Histogram, Labels, LlmMetrics, Series};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Runs of the pipeline that failed after it had started and were started again, over
/// the process's life (each run has its own metrics; this one outlives them).
static PIPELINE_RESTARTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// When the last of those failed, and why: `/api/v1/status` says so, since a restart also
/// starts the API and the failed run's own state afresh.
static LAST_PIPELINE_FAILURE: std::sync::Mutex<Option<(std::time::Instant, String)>> =
    std::sync::Mutex::new(None);

/// Counts a failure of the running pipeline, which starts again, and keeps why.
pub(crate) fn pipeline_failed(why: String) {
    PIPELINE_RESTARTS.fetch_add(1, Relaxed);
    if let Ok(mut last) = LAST_PIPELINE_FAILURE.lock() {
        *last = Some((std::time::Instant::now(), why));
    }
}

/// The `files` sources' counters, by source id, the LLM metrics the processors derive, and
/// the index's size and upkeep.
pub struct PipelineMetrics {
    files: Vec<(String, Arc<FileSourceMetrics>)>,
    kube: Vec<(String, KubeState)>,
    nvml: Vec<(String, Arc<NvmlMetrics>, Arc<GpuTable>)>,
    scrape: Vec<(String, ScrapeState)>,
    kafka_sources: Vec<(String, Arc<KafkaSourceMetrics>)>,
    kafka_sinks: Vec<(String, Arc<KafkaSinkMetrics>)>,
    llm: Arc<LlmMetrics>,
    index: Option<IndexStore>,
    /// The id of the sink that writes `index`, for `/api/v1/status`.
    index_sink: Option<String>,
}

impl PipelineMetrics {
    /// Exposes the counters of these `files` sources, `llm` and the index.
    pub fn new(
        files: Vec<(String, Arc<FileSourceMetrics>)>,
        llm: Arc<LlmMetrics>,
        index: Option<IndexStore>,
    ) -> Self {
        PipelineMetrics {
            files,
            kube: Vec::new(),
            nvml: Vec::new(),
            scrape: Vec::new(),
            kafka_sources: Vec::new(),
            kafka_sinks: Vec::new(),
            llm,
            index,
            index_sink: None,
        }
    }

    /// Names the sink that writes the index, whose state `/api/v1/status` then shows.
    pub fn with_index_sink(mut self, id: Option<String>) -> Self {
        self.index_sink = id;
        self
    }

    /// Exposes the counters of these `kube` sources too, and the status of the pods and
    /// workloads they watch.
    pub fn with_kube(mut self, kube: Vec<(String, KubeState)>) -> Self {
        self.kube = kube;
        self
    }

    /// Exposes the counters of these Kafka sources and sinks too.
    pub fn with_kafka(
        mut self,
        sources: Vec<(String, Arc<KafkaSourceMetrics>)>,
        sinks: Vec<(String, Arc<KafkaSinkMetrics>)>,
    ) -> Self {
        self.kafka_sources = sources;
        self.kafka_sinks = sinks;
        self
    }

    /// Exposes the counters of these `gpu` and `scrape` sources too, the GPUs they read,
    /// and the servers' scraped latency histograms.
    pub fn with_gpus(
        mut self,
        nvml: Vec<(String, Arc<NvmlMetrics>, Arc<GpuTable>)>,
        scrape: Vec<(String, ScrapeState)>,
    ) -> Self {
        self.nvml = nvml;
        self.scrape = scrape;
        self
    }
}

type IndexField = fn(&IndexStats) -> u64;

/// `(name, help, kind, field)` of every index metric.
const INDEX: &[(&str, &str, MetricKind, IndexField)] = &[
    (
        "infersight_index_splits",
        "Splits (time-partitioned tantivy indexes) in the index.",
        MetricKind::Gauge,
        |s| s.splits,
    ),
    (
        "infersight_index_segments",
        "tantivy segments in the index, over all splits (what a search opens).",
        MetricKind::Gauge,
        |s| s.segments,
    ),
    (
        "infersight_index_records",
        "Records searchable in the index.",
        MetricKind::Gauge,
        |s| s.records,
    ),
    (
        "infersight_index_bytes",
        "Bytes the index takes on disk.",
        MetricKind::Gauge,
        |s| s.bytes,
    ),
    (
        "infersight_index_commits_total",
        "Index commits (records made durable and searchable, batches acknowledged).",
        MetricKind::Counter,
        |s| s.commits,
    ),
    (
        "infersight_index_records_committed_total",
        "Records committed to the index.",
        MetricKind::Counter,
        |s| s.records_committed,
    ),
    (
        "infersight_index_commit_failures_total",
        "Index commits that failed (their batches are read again; should stay 0).",
        MetricKind::Counter,
        |s| s.commit_failures,
    ),
    (
        "infersight_index_merges_total",
        "Merges of small splits.",
        MetricKind::Counter,
        |s| s.merges,
    ),
    (
        "infersight_index_merge_failures_total",
        "Split merges that failed (the splits stay as they were).",
        MetricKind::Counter,
        |s| s.merge_failures,
    ),
    (
        "infersight_index_splits_dropped_total",
        "Splits dropped by retention (age, size, or the disk's free-space floor).",
        MetricKind::Counter,
        |s| s.splits_dropped,
    ),
    (
        "infersight_index_splits_quarantined_total",
        "Splits that could not be opened and were moved to quarantine/ (should stay 0).",
        MetricKind::Counter,
        |s| s.splits_quarantined,
    ),
];

/// `(name, help, kind, field)` of a per-source counter.
type SourceMetric<M> = (&'static str, &'static str, MetricKind, fn(&M) -> &AtomicU64);

/// Every `kube` source metric.
const KUBE: &[SourceMetric<KubeSourceMetrics>] = &[
    (
        "infersight_kube_events_total",
        "Kubernetes event occurrences recorded (each once, through repeats and relists).",
        MetricKind::Counter,
        |m| &m.events,
    ),
    (
        "infersight_kube_object_changes_total",
        "Pod changes recorded (phase, restarts, waiting reasons).",
        MetricKind::Counter,
        |m| &m.object_changes,
    ),
    (
        "infersight_kube_watch_errors_total",
        "Failed watches or undecodable objects (retried with backoff).",
        MetricKind::Counter,
        |m| &m.watch_errors,
    ),
    (
        "infersight_kube_relists_total",
        "Full lists (the first of each watch, and each after 410 Expired).",
        MetricKind::Counter,
        |m| &m.relists,
    ),
];

/// Every `files` source metric.
const FILES: &[SourceMetric<FileSourceMetrics>] = &[
    (
        "infersight_files_watched",
        "Log files being tailed.",
        MetricKind::Gauge,
        |m| &m.files_watched,
    ),
    (
        "infersight_files_bytes_read_total",
        "Bytes read from log files.",
        MetricKind::Counter,
        |m| &m.bytes_read,
    ),
    (
        "infersight_files_lines_read_total",
        "Physical lines read from log files.",
        MetricKind::Counter,
        |m| &m.lines_read,
    ),
    (
        "infersight_files_partial_chunks_total",
        "Partial (P) chunks merged into longer lines.",
        MetricKind::Counter,
        |m| &m.partial_chunks,
    ),
    (
        "infersight_files_partial_flushed_total",
        "Lines emitted without their end (writer died mid-line, or a finished file ended inside a line).",
        MetricKind::Counter,
        |m| &m.partial_flushed,
    ),
    (
        "infersight_files_truncated_lines_total",
        "Lines cut at max_line_bytes.",
        MetricKind::Counter,
        |m| &m.truncated_lines,
    ),
    (
        "infersight_files_decode_errors_total",
        "Lines that were neither CRI nor docker json-file (kept raw).",
        MetricKind::Counter,
        |m| &m.decode_errors,
    ),
    (
        "infersight_files_read_errors_total",
        "Failed reads or directory scans (retried).",
        MetricKind::Counter,
        |m| &m.read_errors,
    ),
    (
        "infersight_files_multiline_joined_total",
        "Lines joined into a multi-line record beyond its first line.",
        MetricKind::Counter,
        |m| &m.multiline_joined,
    ),
    (
        "infersight_files_records_sent_total",
        "Records sent downstream.",
        MetricKind::Counter,
        |m| &m.records_sent,
    ),
    (
        "infersight_files_records_delivered_total",
        "Records every sink made durable; sent minus delivered is the checkpoint lag.",
        MetricKind::Counter,
        |m| &m.records_delivered,
    ),
    (
        "infersight_files_batches_not_delivered_total",
        "Batches dropped or rejected downstream (read again after a restart).",
        MetricKind::Counter,
        |m| &m.batches_not_delivered,
    ),
    (
        "infersight_files_recovered_from_gzip_total",
        "Files rotated and compressed while unread, resumed from their .gz.",
        MetricKind::Counter,
        |m| &m.files_recovered_from_gzip,
    ),
    (
        "infersight_files_lost_total",
        "Files read in part whose rest was deleted before it could be read (lines lost; should stay 0).",
        MetricKind::Counter,
        |m| &m.files_lost,
    ),
];

impl MetricsBackend for PipelineMetrics {
    fn families(&self) -> Vec<MetricFamily> {
        let mut families = per_source(FILES, &self.files);
        let counters: Vec<(String, Arc<KubeSourceMetrics>)> = self
            .kube
            .iter()
            .map(|(id, k)| (id.clone(), k.metrics.clone()))
            .collect();
        families.extend(per_source(KUBE, &counters));
        families.extend(workload_families(&self.kube));
        families.extend(pod_families(&self.kube));
        families.extend(capacity_families(&self.kube));
        families.extend(self.source_health_families());
        families.extend(per_source(KAFKA_SOURCE, &self.kafka_sources));
        families.extend(per_source(KAFKA_SINK, &self.kafka_sinks));
        families.extend(gpu_families(
            self.nvml
                .iter()
                .map(|(_, _, t)| t)
                .chain(self.scrape.iter().map(|(_, s)| &s.gpus)),
        ));
        families.extend(engine_histogram_families(&self.scrape));
        if let Some(index) = &self.index {
            let stats = index.stats();
            families.extend(INDEX.iter().map(|(name, help, kind, field)| MetricFamily {
                name,
                help,
                kind: *kind,
                samples: vec![Sample::new(vec![], field(&stats) as f64)],
            }));
            // To alert on before the index stops growing: free < floor.
            if let Some(disk) = index.health().disk {
                for (name, help, value) in [
                    (
                        "infersight_index_disk_free_bytes",
                        "Bytes free on the index's filesystem, as the disk floor last read them.",
                        disk.free_bytes,
                    ),
                    (
                        "infersight_index_disk_floor_bytes",
                        "Bytes min_free_disk_percent keeps free: under it, the index stops growing.",
                        disk.floor_bytes,
                    ),
                ] {
                    families.push(MetricFamily {
                        name,
                        help,
                        kind: MetricKind::Gauge,
                        samples: vec![Sample::new(vec![], value as f64)],
                    });
                }
            }
        }
        // A node agent's registry counts only what needs the lines' order (see
        // `LlmMetrics::in_flight_only`): the rest would be zeros.
        let agent = self.llm.counts_only_in_flight();
        families.extend(
            llm_families(&self.llm)
                .into_iter()
                .filter(|f| !agent || f.name == "llm_requests_in_flight"),
        );
        // A process-wide count, unlabelled.
        let counter = |name, help, n: &std::sync::atomic::AtomicU64| MetricFamily {
            name,
            help,
            kind: MetricKind::Counter,
            samples: vec![Sample::new(
                vec![],
                n.load(std::sync::atomic::Ordering::Relaxed) as f64,
            )],
        };
        families.push(counter(
            "infersight_requests_evicted_total",
            "Open requests dropped, their end unseen, because 20,000 were open (requests of containers that log no end go first).",
            &self.llm.requests_evicted,
        ));
        families.push(counter(
            "infersight_requests_unended_total",
            "Requests of containers that have logged no request end (vLLM v1 without --enable-log-outputs), let go after a minute without a record: not failures.",
            &self.llm.requests_unended,
        ));
        families.extend(pipeline_families(true));
        families
    }
}

/// The pipeline's restarts so far, while it runs again (`next_try`: `None`) or waits to.
fn restarts_so_far(next_try: Option<std::time::Instant>) -> Option<PipelineRestarts> {
    let last = LAST_PIPELINE_FAILURE.lock().ok()?.clone();
    let (at, why) = last?;
    Some(PipelineRestarts {
        count: PIPELINE_RESTARTS.load(Relaxed),
        last_failure: why,
        seconds_ago: at.elapsed().as_secs(),
        next_try_in_s: next_try.map(|t| {
            t.saturating_duration_since(std::time::Instant::now())
                .as_secs()
        }),
    })
}

/// The process-wide families, which outlive each run: its restarts, and whether it runs.
fn pipeline_families(running: bool) -> Vec<MetricFamily> {
    vec![
        MetricFamily {
            name: "infersight_pipeline_restarts_total",
            help: "Times the pipeline failed while running and was started again in this process (the log says why; e.g. the data disk was full).",
            kind: MetricKind::Counter,
            samples: vec![Sample::new(vec![], PIPELINE_RESTARTS.load(Relaxed) as f64)],
        },
        MetricFamily {
            name: "infersight_pipeline_running",
            help: "1 while the pipeline runs; 0 while it starts, or waits to start again after a failure (then /metrics has only this and the restarts; /api/v1/status says why).",
            kind: MetricKind::Gauge,
            samples: vec![Sample::new(vec![], f64::from(u8::from(running)))],
        },
    ]
}

/// What the API says while no run of the pipeline answers: the first one starting, or the
/// next one after a failure waiting to start. Its `/metrics` has the process's own
/// families, its status the restarts, and searches answer 503 with [`PipelineDown::why`].
pub(crate) struct PipelineDown {
    /// When the next run starts; `None`: the first is starting.
    next_try: Option<std::time::Instant>,
}

impl PipelineDown {
    /// The first run starting.
    pub(crate) fn starting() -> Self {
        PipelineDown { next_try: None }
    }

    /// Waiting for the run that starts at `next_try`, after a failure.
    pub(crate) fn until(next_try: std::time::Instant) -> Self {
        PipelineDown {
            next_try: Some(next_try),
        }
    }

    /// Why nothing can be searched now.
    pub(crate) fn why(&self) -> String {
        match self.next_try.and_then(|t| restarts_so_far(Some(t))) {
            Some(r) => format!(
                "the pipeline failed ({}); it starts again by itself, and searches answer once it runs (GET /api/v1/status says when it tries)",
                r.last_failure
            ),
            None => "the pipeline is starting; searches answer once it runs".into(),
        }
    }
}

impl MetricsBackend for PipelineDown {
    fn families(&self) -> Vec<MetricFamily> {
        pipeline_families(false)
    }
}

impl api::StatusBackend for PipelineDown {
    fn sources(&self) -> Vec<ComponentStatus> {
        Vec::new()
    }

    fn restarts(&self) -> Option<PipelineRestarts> {
        restarts_so_far(self.next_try)
    }
}

/// `(name, help, count)` of a workload replica gauge.
type ReplicaGauge = (&'static str, &'static str, fn(&Replicas) -> i64);

/// The workload replica gauges.
const REPLICAS: [ReplicaGauge; 3] = [
    (
        "k8s_workload_replicas_desired",
        "Replicas a Deployment or StatefulSet wants (an autoscaler: what it asks for).",
        |r| r.desired,
    ),
    (
        "k8s_workload_replicas_ready",
        "Replicas ready (an autoscaler: what its target has).",
        |r| r.ready,
    ),
    (
        "k8s_workload_replicas_available",
        "Replicas available (an autoscaler: its ceiling, maxReplicas).",
        |r| r.available,
    ),
];

fn workload_families(kube: &[(String, KubeState)]) -> Vec<MetricFamily> {
    let rows: Vec<_> = kube
        .iter()
        .flat_map(|(_, k)| k.workloads.snapshot())
        .collect();
    REPLICAS
        .iter()
        .map(|(name, help, count)| MetricFamily {
            name,
            help,
            kind: MetricKind::Gauge,
            samples: rows
                .iter()
                .map(|((kind, namespace, workload), replicas)| {
                    Sample::new(
                        vec![
                            ("namespace", namespace.clone()),
                            ("kind", kind.to_string()),
                            ("name", workload.clone()),
                        ],
                        count(replicas) as f64,
                    )
                })
                .collect(),
        })
        .collect()
}

/// Pod phase, container restarts and waiting reasons, as kube-state-metrics shows them.
fn pod_families(kube: &[(String, KubeState)]) -> Vec<MetricFamily> {
    let rows: Vec<_> = kube.iter().flat_map(|(_, k)| k.pods.snapshot()).collect();
    let pod = |ns: &str, name: &str| vec![("namespace", ns.to_string()), ("pod", name.to_string())];
    let mut phase = Vec::new();
    let mut restarts = Vec::new();
    let mut waiting = Vec::new();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for ((ns, name), row) in &rows {
        if let Some(p) = &row.phase {
            let mut labels = pod(ns, name);
            labels.push(("phase", p.clone()));
            phase.push(Sample::new(labels, 1.0));
        }
        for (container, c) in &row.containers {
            let mut labels = pod(ns, name);
            labels.push(("container", container.clone()));
            restarts.push(Sample::new(labels.clone(), f64::from(c.restarts)));
            for (out, figures) in [(&mut requests, &c.requests), (&mut limits, &c.limits)] {
                for (resource, value) in figures {
                    let mut labels = labels.clone();
                    labels.push(("resource", resource.clone()));
                    out.push(Sample::new(labels, *value));
                }
            }
            if let Some(reason) = &c.waiting {
                labels.push(("reason", reason.clone()));
                waiting.push(Sample::new(labels, 1.0));
            }
        }
    }
    vec![
        MetricFamily {
            name: "k8s_pod_phase",
            help: "1 for each pod's current phase (Pending, Running, Succeeded, Failed, Unknown).",
            kind: MetricKind::Gauge,
            samples: phase,
        },
        MetricFamily {
            name: "k8s_container_restarts",
            help: "How many times each container has restarted.",
            kind: MetricKind::Gauge,
            samples: restarts,
        },
        MetricFamily {
            name: "k8s_container_waiting",
            help: "1 for each container that waits, with why (CrashLoopBackOff, ImagePullBackOff, ...).",
            kind: MetricKind::Gauge,
            samples: waiting,
        },
        MetricFamily {
            name: "k8s_container_resource_requests",
            help: "What each container requests, per resource (nvidia.com/gpu in devices, cpu in cores, memory in bytes).",
            kind: MetricKind::Gauge,
            samples: requests,
        },
        MetricFamily {
            name: "k8s_container_resource_limits",
            help: "Each container's limits, per resource, in the same units.",
            kind: MetricKind::Gauge,
            samples: limits,
        },
    ]
}

/// Nodes' GPUs and conditions, and quotas' hard limits and use.
fn capacity_families(kube: &[(String, KubeState)]) -> Vec<MetricFamily> {
    let (mut allocatable, mut capacity, mut conditions) = (Vec::new(), Vec::new(), Vec::new());
    for (node, row) in kube.iter().flat_map(|(_, k)| k.nodes.snapshot()) {
        let labels = vec![("node", node.clone())];
        allocatable.push(Sample::new(labels.clone(), row.gpu_allocatable));
        capacity.push(Sample::new(labels.clone(), row.gpu_capacity));
        for (condition, status) in &row.conditions {
            let mut labels = labels.clone();
            labels.push(("condition", condition.clone()));
            labels.push(("status", status.clone()));
            conditions.push(Sample::new(labels, 1.0));
        }
        let mut labels = labels;
        labels.push(("condition", "Unschedulable".into()));
        labels.push((
            "status",
            if row.unschedulable { "True" } else { "False" }.into(),
        ));
        conditions.push(Sample::new(labels, 1.0));
    }
    let mut quota = Vec::new();
    for ((namespace, name), row) in kube.iter().flat_map(|(_, k)| k.quotas.snapshot()) {
        for (resource, used) in &row {
            for (kind, value) in [("hard", used.hard), ("used", used.used)] {
                let labels = vec![
                    ("namespace", namespace.clone()),
                    ("resourcequota", name.clone()),
                    ("resource", resource.clone()),
                    ("type", kind.to_string()),
                ];
                quota.push(Sample::new(labels, value));
            }
        }
    }
    vec![
        MetricFamily {
            name: "k8s_node_gpu_allocatable",
            help: "GPUs (nvidia.com/gpu) each node offers to pods; fewer than its capacity when the device plugin finds one unhealthy.",
            kind: MetricKind::Gauge,
            samples: allocatable,
        },
        MetricFamily {
            name: "k8s_node_gpu_capacity",
            help: "GPUs each node has.",
            kind: MetricKind::Gauge,
            samples: capacity,
        },
        MetricFamily {
            name: "k8s_node_condition",
            help: "1 for each node condition's current status (Ready, MemoryPressure, ..., and Unschedulable when cordoned).",
            kind: MetricKind::Gauge,
            samples: conditions,
        },
        MetricFamily {
            name: "k8s_resourcequota",
            help: "Each quota's hard limit and use per resource (requests.nvidia.com/gpu in devices, memory in bytes, cpu in cores).",
            kind: MetricKind::Gauge,
            samples: quota,
        },
    ]
}

/// Every Kafka source metric.
const KAFKA_SOURCE: &[SourceMetric<KafkaSourceMetrics>] = &[
    (
        "infersight_kafka_messages_total",
        "Kafka messages consumed.",
        MetricKind::Counter,
        |m| &m.messages,
    ),
    (
        "infersight_kafka_bytes_total",
        "Bytes of Kafka messages consumed.",
        MetricKind::Counter,
        |m| &m.bytes,
    ),
    (
        "infersight_kafka_records_total",
        "Records read from Kafka messages (several a message when the agents pack them: JSON lines or the binary form).",
        MetricKind::Counter,
        |m| &m.records,
    ),
    (
        "infersight_kafka_malformed_total",
        "Kafka messages, or lines of JSON-lines messages, that were not records (counted and skipped).",
        MetricKind::Counter,
        |m| &m.malformed,
    ),
    (
        "infersight_kafka_dead_letters_total",
        "Malformed Kafka messages, or lines, published to the dead-letter topic.",
        MetricKind::Counter,
        |m| &m.dead_letters,
    ),
    (
        "infersight_kafka_dead_letter_failures_total",
        "Malformed Kafka messages, or lines, the dead-letter topic did not take in time (logged with partition and offset).",
        MetricKind::Counter,
        |m| &m.dead_letter_failures,
    ),
    (
        "infersight_kafka_already_indexed_total",
        "Kafka messages skipped because the index already holds them (a replay).",
        MetricKind::Counter,
        |m| &m.already_indexed,
    ),
    (
        "infersight_kafka_commits_total",
        "Offset commits to the consumer group.",
        MetricKind::Counter,
        |m| &m.commits,
    ),
    (
        "infersight_kafka_commit_failures_total",
        "Offset commits that failed (retried with the next).",
        MetricKind::Counter,
        |m| &m.commit_failures,
    ),
    (
        "infersight_kafka_partitions_assigned",
        "Partitions this aggregator owns now.",
        MetricKind::Gauge,
        |m| &m.partitions,
    ),
    (
        "infersight_kafka_consumer_lag_messages",
        "Messages in the partitions this aggregator owns that it has not read yet (librdkafka's consumer_lag, every 5 s): growing means the aggregators fall behind.",
        MetricKind::Gauge,
        |m| &m.lag,
    ),
    (
        "infersight_kafka_rebalances_total",
        "Partitions taken away in a rebalance.",
        MetricKind::Counter,
        |m| &m.rebalances,
    ),
    (
        "infersight_kafka_consumer_errors_total",
        "Client-wide errors the consumer (and its dead-letter producer) reported: a broker unreachable, all brokers down (it reconnects by itself; the log has the first of each kind and then one line a minute).",
        MetricKind::Counter,
        |m| &m.client_errors,
    ),
];

/// Every Kafka sink metric.
const KAFKA_SINK: &[SourceMetric<KafkaSinkMetrics>] = &[
    (
        "infersight_kafka_records_acked_total",
        "Records the broker acknowledged.",
        MetricKind::Counter,
        |m| &m.records_acked,
    ),
    (
        "infersight_kafka_messages_acked_total",
        "Messages the broker acknowledged (fewer than records with JSON lines).",
        MetricKind::Counter,
        |m| &m.messages_acked,
    ),
    (
        "infersight_kafka_bytes_acked_total",
        "Bytes of the messages the broker acknowledged.",
        MetricKind::Counter,
        |m| &m.bytes_acked,
    ),
    (
        "infersight_kafka_resent_total",
        "Messages the producer failed to deliver and sent again.",
        MetricKind::Counter,
        |m| &m.resent,
    ),
    (
        "infersight_kafka_producer_errors_total",
        "Client-wide errors the producer reported: a broker unreachable, all brokers down (it reconnects and holds the batches meanwhile; the log has the first of each kind and then one line a minute).",
        MetricKind::Counter,
        |m| &m.client_errors,
    ),
    (
        "infersight_kafka_records_cut_total",
        "Records larger than a Kafka message may be (~1 MB), sent with their longest texts cut and flagged log.truncated.",
        MetricKind::Counter,
        |m| &m.records_cut,
    ),
    (
        "infersight_kafka_records_refused_total",
        "Records the brokers refused for good (over their message.max.bytes): logged and skipped so the records after them go on.",
        MetricKind::Counter,
        |m| &m.records_refused,
    ),
];

/// Every `scrape` source metric.
const SCRAPE: &[SourceMetric<ScrapeMetrics>] = &[
    (
        "infersight_scrape_total",
        "Scrapes that returned an exposition.",
        MetricKind::Counter,
        |m| &m.scrapes,
    ),
    (
        "infersight_scrape_failures_total",
        "Scrapes that failed: target down, timeout, HTTP error, or not an exposition (retried next interval).",
        MetricKind::Counter,
        |m| &m.failures,
    ),
    (
        "infersight_scrape_records_total",
        "gpu and engine_stats records made from scrapes.",
        MetricKind::Counter,
        |m| &m.records,
    ),
];

/// Every `gpu` source metric.
const NVML: &[SourceMetric<NvmlMetrics>] = &[
    (
        "infersight_gpu_snapshots_total",
        "NVML snapshots taken.",
        MetricKind::Counter,
        |m| &m.snapshots,
    ),
    (
        "infersight_gpu_device_errors_total",
        "GPUs that did not answer an NVML sample (their last reading stands).",
        MetricKind::Counter,
        |m| &m.device_errors,
    ),
];

impl PipelineMetrics {
    /// The GPU and scrape sources' counters, whether NVML is available, and how many
    /// scrape targets fail now.
    fn source_health_families(&self) -> Vec<MetricFamily> {
        let nvml: Vec<(String, Arc<NvmlMetrics>)> = self
            .nvml
            .iter()
            .map(|(id, m, _)| (id.clone(), m.clone()))
            .collect();
        let scrape: Vec<(String, Arc<ScrapeMetrics>)> = self
            .scrape
            .iter()
            .map(|(id, s)| (id.clone(), s.metrics.clone()))
            .collect();
        let mut families = per_source(NVML, &nvml);
        families.extend(per_source(SCRAPE, &scrape));
        families.push(MetricFamily {
            name: "infersight_gpu_nvml_available",
            help: "1 when NVML is loaded and sees GPUs, 0 when it is unavailable here (no driver library or no GPU; the log says why once).",
            kind: MetricKind::Gauge,
            samples: nvml
                .iter()
                .filter_map(|(id, m)| {
                    let up = match m.status() {
                        NvmlStatus::Starting => return None,
                        NvmlStatus::Available { .. } => 1.0,
                        NvmlStatus::Unavailable { .. } => 0.0,
                    };
                    Some(Sample::new(vec![("source", id.clone())], up))
                })
                .collect(),
        });
        families.push(MetricFamily {
            name: "infersight_scrape_targets_failing",
            help: "Scrape targets whose last scrape failed.",
            kind: MetricKind::Gauge,
            samples: scrape
                .iter()
                .map(|(id, m)| Sample::new(vec![("source", id.clone())], m.failing().len() as f64))
                .collect(),
        });
        families
    }
}

impl api::StatusBackend for PipelineMetrics {
    fn sources(&self) -> Vec<ComponentStatus> {
        let status = |id: &str, kind: &str, state, detail: String| ComponentStatus {
            id: id.to_string(),
            kind: kind.to_string(),
            state,
            detail,
        };
        let mut out = Vec::new();
        for (id, m) in &self.files {
            let detail = format!(
                "{} files tailed, {} lines read",
                m.files_watched.load(Relaxed),
                m.lines_read.load(Relaxed)
            );
            out.push(status(id, "files", ComponentState::Ok, detail));
        }
        for (id, k) in &self.kube {
            let m = &k.metrics;
            let detail = format!(
                "{} events, {} object changes, {} watch errors (retried)",
                m.events.load(Relaxed),
                m.object_changes.load(Relaxed),
                m.watch_errors.load(Relaxed)
            );
            out.push(status(id, "kube", ComponentState::Ok, detail));
        }
        for (id, m, _) in &self.nvml {
            let (state, detail) = match m.status() {
                NvmlStatus::Starting => (ComponentState::Starting, "loading NVML".to_string()),
                NvmlStatus::Available { gpus } => (
                    ComponentState::Ok,
                    format!("{gpus} GPUs, {} snapshots", m.snapshots.load(Relaxed)),
                ),
                NvmlStatus::Unavailable { reason } => (
                    ComponentState::Unavailable,
                    format!("NVML is unavailable: {reason}"),
                ),
            };
            out.push(status(id, "gpu", state, detail));
        }
        for (id, s) in &self.scrape {
            let failing = s.metrics.failing();
            let (state, detail) = if failing.is_empty() {
                (
                    ComponentState::Ok,
                    format!("{} scrapes", s.metrics.scrapes.load(Relaxed)),
                )
            } else {
                let why: Vec<String> = failing.iter().map(|(u, e)| format!("{u}: {e}")).collect();
                (ComponentState::Failing, why.join("; "))
            };
            out.push(status(id, "scrape", state, detail));
        }
        for (id, m) in &self.kafka_sources {
            let (partitions, records) = (m.partitions.load(Relaxed), m.records.load(Relaxed));
            let (state, detail) = kafka_state(
                &m.last_error,
                m.messages.load(Relaxed),
                |why| format!("{why}; it reconnects by itself; {records} records read"),
                || {
                    format!(
                        "{partitions} partitions owned, {} messages behind, {records} records read, {} malformed",
                        m.lag.load(Relaxed),
                        m.malformed.load(Relaxed)
                    )
                },
            );
            out.push(status(id, "kafka", state, detail));
        }
        out
    }

    fn restarts(&self) -> Option<PipelineRestarts> {
        restarts_so_far(None)
    }

    fn sinks(&self) -> Vec<ComponentStatus> {
        let index = match (&self.index_sink, &self.index) {
            (Some(id), Some(store)) => Some(index_status(id, &store.stats(), &store.health())),
            _ => None,
        };
        self.kafka_sinks
            .iter()
            .map(|(id, m)| {
                let records = m.records_acked.load(Relaxed);
                let (state, detail) = kafka_state(
                    &m.last_error,
                    m.messages_acked.load(Relaxed),
                    |why| {
                        format!(
                            "{why}; records are held until the brokers take them; {records} records published"
                        )
                    },
                    || {
                        format!(
                            "{records} records published, {} cut to fit, {} refused",
                            m.records_cut.load(Relaxed),
                            m.records_refused.load(Relaxed)
                        )
                    },
                );
                ComponentStatus {
                    id: id.clone(),
                    kind: "kafka".to_string(),
                    state,
                    detail,
                }
            })
            .chain(index)
            .collect()
    }
}

/// The index sink's state: failing while its commits fail or its disk is under the floor
/// (the index then stops growing, which an SRE must hear of before search misses history),
/// else how much it holds and how fresh it is.
fn index_status(id: &str, stats: &IndexStats, health: &IndexHealth) -> ComponentStatus {
    let (state, detail) = if let Some((ago, why)) = &health.failing {
        (
            ComponentState::Failing,
            format!(
                "commits fail: {why} ({} s ago); their batches are read again",
                ago.as_secs()
            ),
        )
    } else if let Some(disk) = health.disk.filter(|d| d.under_floor()) {
        (
            ComponentState::Failing,
            format!(
                "the disk has {} free of {}, under its floor of {} (min_free_disk_percent): the index does not grow, its oldest splits going as new ones come ({} dropped)",
                bytes_text(disk.free_bytes),
                bytes_text(disk.total_bytes),
                bytes_text(disk.floor_bytes),
                stats.splits_dropped
            ),
        )
    } else {
        let fresh = match health.since_commit {
            Some(ago) => format!("last commit {} s ago", ago.as_secs()),
            None => "no commit yet".to_string(),
        };
        (
            ComponentState::Ok,
            format!(
                "{} records, {} in {} splits; {fresh}",
                stats.records,
                bytes_text(stats.bytes),
                stats.splits
            ),
        )
    };
    ComponentStatus {
        id: id.to_string(),
        kind: "index".to_string(),
        state,
        detail,
    }
}

/// Bytes in words: `512 B`, `3.2 MB`, `1.5 GB` (decimal units, as `df -H` gives them).
fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A Kafka client's state: failing while its last error stands (`failing` says what
/// follows "ERROR (N s ago)"), else ok (`ok` says how it is doing).
fn kafka_state(
    last: &collector::kafka::LastClientError,
    progress: u64,
    failing: impl FnOnce(String) -> String,
    ok: impl FnOnce() -> String,
) -> (ComponentState, String) {
    match last.current(progress, KAFKA_ERROR_STANDS) {
        Some((ago, reason)) => (
            ComponentState::Failing,
            failing(format!("{reason} ({} s ago)", ago.as_secs())),
        ),
        None => (ComponentState::Ok, ok()),
    }
}

/// How long a Kafka client's last error says it is failing, when nothing went through
/// since: librdkafka repeats its errors every second or faster while they last, and a
/// sink whose messages are refused says so every round (~30 s for a missing topic), so an
/// error this old with none after it is over.
const KAFKA_ERROR_STANDS: std::time::Duration = std::time::Duration::from_secs(60);

/// Each GPU's latest figures, labelled with its node, index, uuid, model and the pod it
/// serves.
fn gpu_families<'a>(tables: impl Iterator<Item = &'a Arc<GpuTable>>) -> Vec<MetricFamily> {
    type Figure = fn(&collector::gpu::GpuReading) -> Option<f64>;
    const FIGURES: [(&str, &str, Figure); 5] = [
        (
            "gpu_utilization_percent",
            "Percent of the last sample period a kernel ran on the GPU.",
            |r| r.utilization_pct,
        ),
        ("gpu_memory_used_bytes", "GPU memory in use.", |r| {
            r.memory_used_bytes
        }),
        ("gpu_memory_total_bytes", "GPU memory in all.", |r| {
            r.memory_total_bytes
        }),
        ("gpu_power_watts", "GPU power draw.", |r| r.power_w),
        ("gpu_temperature_celsius", "GPU temperature.", |r| {
            r.temperature_c
        }),
    ];
    let readings: Vec<_> = tables.flat_map(|t| t.snapshot()).collect();
    FIGURES
        .iter()
        .map(|(name, help, figure)| MetricFamily {
            name,
            help,
            kind: MetricKind::Gauge,
            samples: readings
                .iter()
                .filter_map(|(_, (_, r))| {
                    let pod = r.pod.as_ref();
                    let labels = vec![
                        ("node", r.node.clone().unwrap_or_default()),
                        ("gpu", r.index.to_string()),
                        ("uuid", r.uuid.clone()),
                        ("model", r.model.clone()),
                        (
                            "namespace",
                            pod.map(|p| p.namespace.clone()).unwrap_or_default(),
                        ),
                        ("pod", pod.map(|p| p.name.clone()).unwrap_or_default()),
                        (
                            "container",
                            pod.and_then(|p| p.container.clone()).unwrap_or_default(),
                        ),
                    ];
                    Some(Sample::new(labels, figure(r)?))
                })
                .collect(),
        })
        .collect()
}

/// The servers' own latency histograms as scraped, per namespace, pod, model and server.
fn engine_histogram_families(scrape: &[(String, ScrapeState)]) -> Vec<MetricFamily> {
    let rows: Vec<_> = scrape
        .iter()
        .flat_map(|(_, s)| s.engines.snapshot())
        .collect();
    [
        (
            EngineHistogram::Ttft,
            "Time to first token as the server measures it (scraped from its /metrics).",
        ),
        (
            EngineHistogram::InterToken,
            "Time between output tokens as the server measures it (scraped).",
        ),
        (
            EngineHistogram::Queue,
            "Time requests waited in the server's queue (scraped).",
        ),
        (
            EngineHistogram::E2e,
            "End-to-end request latency as the server measures it (scraped).",
        ),
    ]
    .into_iter()
    .map(|(which, help)| {
        let mut samples = Vec::new();
        for ((namespace, pod, model, server, w), h) in &rows {
            if *w != which {
                continue;
            }
            let labels = vec![
                ("namespace", namespace.clone()),
                ("pod", pod.clone()),
                ("model", model.clone()),
                ("server", server.to_string()),
            ];
            for (bound, count) in &h.buckets {
                let mut l = labels.clone();
                let le = if bound.is_infinite() {
                    "+Inf".to_string()
                } else {
                    bound.to_string()
                };
                l.push(("le", le));
                samples.push(Sample {
                    suffix: "_bucket",
                    labels: l,
                    value: *count,
                });
            }
            samples.push(Sample {
                suffix: "_sum",
                labels: labels.clone(),
                value: h.sum,
            });
            samples.push(Sample {
                suffix: "_count",
                labels,
                value: h.count,
            });
        }
        MetricFamily {
            name: which.metric(),
            help,
            kind: MetricKind::Histogram,
            samples,
        }
    })
    .collect()
}

/// One family per metric of `table`, one sample per source.
fn per_source<M>(table: &[SourceMetric<M>], sources: &[(String, Arc<M>)]) -> Vec<MetricFamily> {
    table
        .iter()
        .map(|(name, help, kind, field)| MetricFamily {
            name,
            help,
            kind: *kind,
            samples: sources
                .iter()
                .map(|(id, m)| {
                    Sample::new(vec![("source", id.clone())], field(m).load(Relaxed) as f64)
                })
                .collect(),
        })
        .collect()
}

/// `(name, help, attribute)` of the engine gauges (the latest stats line per label set).
const ENGINE: [(&str, &str, &str); 6] = [
    (
        "llm_engine_running_requests",
        "Requests running in the engine.",
        model::names::LLM_RUNNING,
    ),
    (
        "llm_engine_waiting_requests",
        "Requests queued in the engine.",
        model::names::LLM_WAITING,
    ),
    (
        "llm_engine_kv_cache_usage_percent",
        "GPU KV-cache usage, 0-100.",
        model::names::LLM_KV_CACHE_PCT,
    ),
    (
        "llm_engine_prefix_cache_hit_percent",
        "Prefix-cache hit rate, 0-100.",
        model::names::LLM_PREFIX_CACHE_HIT_PCT,
    ),
    (
        "llm_engine_prompt_throughput_tokens_per_second",
        "Prompt (prefill) throughput.",
        model::names::LLM_PROMPT_THROUGHPUT_TPS,
    ),
    (
        "llm_engine_generation_throughput_tokens_per_second",
        "Generation (decode) throughput.",
        model::names::LLM_GEN_THROUGHPUT_TPS,
    ),
];

fn base(labels: &Labels) -> Vec<(&'static str, String)> {
    vec![
        ("namespace", labels[0].clone()),
        ("pod", labels[1].clone()),
        ("model", labels[2].clone()),
        ("server", labels[3].clone()),
    ]
}

fn with(labels: &Labels, key: &'static str, value: String) -> Vec<(&'static str, String)> {
    let mut l = base(labels);
    l.push((key, value));
    l
}

fn histogram_samples(labels: &Labels, h: &Histogram) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut cumulative = 0;
    for (bound, n) in h.bounds.iter().zip(&h.counts) {
        cumulative += n;
        out.push(Sample {
            suffix: "_bucket",
            labels: with(labels, "le", bound.to_string()),
            value: cumulative as f64,
        });
    }
    out.push(Sample {
        suffix: "_bucket",
        labels: with(labels, "le", "+Inf".into()),
        value: h.count as f64,
    });
    out.push(Sample {
        suffix: "_sum",
        labels: base(labels),
        value: h.sum,
    });
    out.push(Sample {
        suffix: "_count",
        labels: base(labels),
        value: h.count as f64,
    });
    out
}

/// Which histogram of a series a family exports.
type HistogramOf = fn(&Series) -> &Histogram;

fn llm_families(llm: &LlmMetrics) -> Vec<MetricFamily> {
    let snapshot = llm.snapshot();
    let family = |name, help, kind, f: &dyn Fn(&Labels, &Series) -> Vec<Sample>| MetricFamily {
        name,
        help,
        kind,
        samples: snapshot.iter().flat_map(|(l, s)| f(l, s)).collect(),
    };
    let mut families = vec![
        family(
            "llm_requests_total",
            "Requests by outcome (finished, aborted, incomplete).",
            MetricKind::Counter,
            &|l, s| {
                s.requests
                    .iter()
                    .map(|(outcome, n)| {
                        Sample::new(with(l, "outcome", outcome.to_string()), *n as f64)
                    })
                    .collect()
            },
        ),
        family(
            "llm_tokens_total",
            "Tokens of finished requests, by type (input, output); a type no request of the series told is left out (TGI logs no prompt tokens, vLLM v1 no request end: see llm_engine_generated_tokens_total), not shown as 0.",
            MetricKind::Counter,
            &|l, s| {
                [("input", s.input_tokens), ("output", s.output_tokens)]
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(kind, n)| Sample::new(with(l, "type", kind.into()), n as f64))
                    .collect()
            },
        ),
        family(
            "llm_errors_total",
            "Error records by error.type.",
            MetricKind::Counter,
            &|l, s| {
                s.errors
                    .iter()
                    .map(|(t, n)| Sample::new(with(l, "error_type", t.clone()), *n as f64))
                    .collect()
            },
        ),
    ];
    let histograms: [(&'static str, &'static str, HistogramOf); 4] = [
        (
            "gen_ai_server_request_duration_seconds",
            "End-to-end request duration.",
            |s| &s.duration,
        ),
        (
            "llm_request_queue_wait_seconds",
            "Time a request waited before the engine took it.",
            |s| &s.queue,
        ),
        (
            "gen_ai_server_time_per_output_token_seconds",
            "Time per output token after the first.",
            |s| &s.tpot,
        ),
        (
            "gen_ai_server_time_to_first_token_seconds",
            "Time to the first output token (logged, or estimated from prompt processing; llm.ttft_source on the request records says which).",
            |s| &s.ttft,
        ),
    ];
    for (name, help, histogram) in histograms {
        families.push(family(name, help, MetricKind::Histogram, &|l, s| {
            let h = histogram(s);
            if h.count > 0 {
                histogram_samples(l, h)
            } else {
                Vec::new()
            }
        }));
    }
    families.push(family(
        "llm_http_responses_total",
        "Inference calls' HTTP responses in the server's access log (probes and scrapes left out), by status class: the error rate of servers that log no request end (vLLM v1).",
        MetricKind::Counter,
        &|l, s| {
            s.http_responses
                .iter()
                .map(|(class, n)| Sample::new(with(l, "code_class", class.to_string()), *n as f64))
                .collect()
        },
    ));
    families.push(family(
        "llm_requests_received_total",
        "Requests whose arrival the server logged (vLLM's and TensorRT-LLM's `Received request`): the arrival rate, also of servers that log no end.",
        MetricKind::Counter,
        &|l, s| match s.received {
            0 => Vec::new(),
            n => vec![Sample::new(base(l), n as f64)],
        },
    ));
    families.push(family(
        "llm_engine_generated_tokens_total",
        "Tokens the engines generated, by their throughput log lines (vLLM's, SGLang's; llm.generated_tokens): the token rate of servers that log no request end (vLLM v1).",
        MetricKind::Counter,
        &|l, s| {
            let n = s.engine_generated_tokens;
            if n > 0.0 {
                vec![Sample::new(base(l), n)]
            } else {
                Vec::new()
            }
        },
    ));
    families.push(family(
        "llm_requests_in_flight",
        "Requests started and not yet ended, on the node agent that reads their lines; absent for servers that log no end (vLLM v1 without --enable-log-outputs: see llm_engine_running_requests).",
        MetricKind::Gauge,
        &|l, s| {
            s.in_flight
                .map(|n| vec![Sample::new(base(l), n as f64)])
                .unwrap_or_default()
        },
    ));
    for (name, help, key) in ENGINE {
        families.push(family(name, help, MetricKind::Gauge, &|l, s| {
            s.engine
                .get(key)
                .map(|v| vec![Sample::new(base(l), *v)])
                .unwrap_or_default()
        }));
    }
    families.retain(|f| !f.samples.is_empty());
    families
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexer::DiskReading;
    use std::time::Duration;

    #[test]
    fn the_index_sink_fails_while_commits_fail_or_its_disk_is_under_the_floor() {
        let stats = IndexStats {
            records: 236_000,
            bytes: 34_018_347,
            splits: 9,
            splits_dropped: 9,
            ..IndexStats::default()
        };
        let roomy = DiskReading {
            free_bytes: 300_000_000,
            total_bytes: 400_000_000,
            floor_bytes: 60_000_000,
        };
        let mut health = IndexHealth {
            since_commit: Some(Duration::from_millis(800)),
            failing: None,
            disk: Some(roomy),
        };
        let ok = index_status("index", &stats, &health);
        assert_eq!((ok.kind.as_str(), ok.state), ("index", ComponentState::Ok));
        assert_eq!(
            ok.detail,
            "236000 records, 34.0 MB in 9 splits; last commit 0 s ago"
        );
        health.disk = Some(DiskReading {
            free_bytes: 31_000_000,
            ..roomy
        });
        let under = index_status("index", &stats, &health);
        assert_eq!(under.state, ComponentState::Failing);
        assert_eq!(
            under.detail,
            "the disk has 31.0 MB free of 400.0 MB, under its floor of 60.0 MB (min_free_disk_percent): the index does not grow, its oldest splits going as new ones come (9 dropped)"
        );
        health.failing = Some((Duration::from_secs(3), "No space left on device".into()));
        let failing = index_status("index", &stats, &health);
        assert_eq!(failing.state, ComponentState::Failing);
        assert!(
            failing
                .detail
                .starts_with("commits fail: No space left on device (3 s ago)"),
            "{}",
            failing.detail
        );
        assert_eq!(bytes_text(999), "999 B");
        assert_eq!(bytes_text(1_500_000_000), "1.5 GB");
    }
}
