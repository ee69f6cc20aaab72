//! Config → running pipeline: sources, transforms and sinks wired with bounded channels.
//!
//! Shutdown drains from the front: the sources stop reading, their channels close, each
//! transform finishes what it holds and closes its output, and the index sink commits what
//! it has (with the checkpoints) before it ends. A full channel slows the stage before it
//! (backpressure); nothing is dropped on the way.
//!
//! The API's listener ([`ApiHost`]) outlives a run: the caller keeps it across a failed
//! run's restart, and it answers for each run once that run is up.

use crate::config::{
    KafkaEncodingConfig, KafkaFormatConfig, KafkaKeyConfig, PipelineConfig, ReadFromConfig,
    ScrapeTargetConfig, ServerRule, SinkConfig, SourceConfig, TransformConfig,
};
use crate::self_metrics::PipelineMetrics;
use anyhow::{Context, anyhow};
use collector::Shutdown;
use collector::checkpoint_file::CheckpointFile;
use collector::files::{
    ContainerFilter, FileSource, FileSourceConfig, FileSourceMetrics, MultilineConfig, ReadFrom,
};
use collector::gpu::{ContainerPods, NvmlSource};
use collector::kafka::{
    KafkaOptions, KafkaSink, KafkaSinkOptions, KafkaSource, MessageEncoding, MessageFormat,
    MessageKey,
};
use collector::kube::{KubeError, KubeSource, KubeSourceConfig};
use collector::scrape::{ScrapeConfig, ScrapeSource, ScrapeTarget};
use indexer::{IndexSink, IndexStore, SinkOptions};
use model::{Attributes, Batch, Record, RecordKind};
use processor::metrics::LlmMetrics;
use processor::{InferenceLogProcessor, ServerAssignment};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Batches a channel holds before its sender waits.
const CHANNEL_CAPACITY: usize = 16;
/// Batches a Kafka sink publishes in one round trip to the broker at most (all that wait,
/// up to a channel's worth).
const KAFKA_BATCHES_PER_ROUND: usize = CHANNEL_CAPACITY;
/// Batches made into index documents that wait for the index sink at most: enough for the
/// documents of the ~0.2-0.5 s a commit holds the sink, few enough that documents (larger
/// than their records) do not pile up in memory.
const MADE_BATCHES: usize = 4;
/// How long a drain may take before we give up on it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The API's listener and the router answering on it. Bound by the first run that serves
/// an API and kept by the caller across the runs after it, so that the API does not go
/// down with a run that fails: in between, [`ApiHost::wait_for_restart`] answers.
pub struct ApiHost {
    addr: Option<SocketAddr>,
    slot: api::RouterSlot,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ApiHost {
    /// Listens on `listen`; until a run answers, every API call is told the pipeline starts.
    async fn bind(listen: &str, config: &PipelineConfig) -> anyhow::Result<ApiHost> {
        let listener = bind(listen).await?;
        let addr = listener.local_addr().ok();
        let starting = crate::self_metrics::PipelineDown::starting();
        let slot = api::RouterSlot::new(down_state(addr, config, starting));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(api::serve_slot(listener, slot.clone(), async {
            let _ = stopped.await;
        }));
        Ok(ApiHost {
            addr,
            slot,
            stop,
            task,
        })
    }

    /// While the pipeline waits to start again (at `next_try`) after a failure: health,
    /// `/metrics` and `/api/v1/status` say so, and searches answer 503 with why. The
    /// failed run's router, and with it its index, is let go.
    pub fn wait_for_restart(&self, config: &PipelineConfig, next_try: std::time::Instant) {
        let down = crate::self_metrics::PipelineDown::until(next_try);
        self.slot.answer(down_state(self.addr, config, down));
    }

    /// Stops listening once the requests under way are answered.
    pub async fn close(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the API server failed"),
            Err(e) => tracing::error!(error = %e, "the API server panicked"),
        }
    }
}

/// What the API answers from while no run of the pipeline does.
fn down_state(
    addr: Option<SocketAddr>,
    config: &PipelineConfig,
    down: crate::self_metrics::PipelineDown,
) -> api::ApiState {
    let down = Arc::new(down);
    api::ApiState {
        search: Arc::new(api::NoIndex::because(down.why())),
        token: api_token(config),
        live: None,
        metrics: down.clone(),
        status: down,
        instance: Arc::from(instance_name(addr).as_str()),
        peers: None,
    }
}

/// The bearer token the API requires, if any.
fn api_token(config: &PipelineConfig) -> Option<Arc<str>> {
    config
        .api
        .as_ref()
        .and_then(|a| a.token.as_deref())
        .map(Arc::from)
}

/// What the pipeline tells its caller once it runs.
#[derive(Clone, Debug)]
pub struct Ready {
    /// The API's actual address (a `:0` port resolved), when an API is configured.
    pub api_addr: Option<SocketAddr>,
}

/// Runs `config` until `shutdown` is triggered (or a component fails), then drains.
/// `on_ready` is called once everything is started. The API is served on `api`, bound here
/// by the first run that serves one; it goes on answering with this run's router after the
/// run ends, until the caller replaces it ([`ApiHost::wait_for_restart`]) or closes it.
pub async fn run(
    config: PipelineConfig,
    shutdown: Shutdown,
    api: &mut Option<ApiHost>,
    on_ready: impl FnOnce(Ready),
) -> anyhow::Result<()> {
    // Everything that can fail on a user mistake happens before anything starts.
    let store = open_index(&config)?;
    // Without an index (a node agent publishing to Kafka), checkpoints live in a file of
    // their own, which the Kafka sink keeps once the broker has the records.
    let mut checkpoint_file = None;
    let resume = match &store {
        Some(s) => s.committed_checkpoints()?,
        None => {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    config.data_dir.display()
                )
            })?;
            let file = CheckpointFile::open(config.data_dir.join("checkpoints.json"))?;
            let set = file.set().clone();
            checkpoint_file = Some(file);
            set
        }
    };
    let mut kafka_sources = Vec::new();
    let mut file_sources = Vec::new();
    let mut kube_configs = Vec::new();
    let mut nvml_sources = Vec::new();
    let mut scrape_sources = Vec::new();
    // The GPU join looks this far from a record: two snapshot intervals of the slowest
    // GPU source (past that, a snapshot says nothing about the record's moment).
    let mut snapshot_interval = Duration::ZERO;
    for (id, source) in &config.sources {
        let f = match source {
            SourceConfig::Files(f) => f,
            SourceConfig::Kube(k) => {
                kube_configs.push((id.clone(), k.clone()));
                continue;
            }
            SourceConfig::Kafka(k) => {
                let options = KafkaOptions {
                    brokers: k.brokers.clone(),
                    topic: k.topic.clone(),
                };
                let format = match k.format {
                    KafkaFormatConfig::Record => MessageFormat::Record,
                    KafkaFormatConfig::Raw => MessageFormat::Raw,
                };
                let source = KafkaSource::new(
                    id,
                    &options,
                    &k.group,
                    k.group_instance_id.as_deref(),
                    format,
                    &resume,
                )
                .and_then(|s| match &k.dead_letter_topic {
                    Some(topic) => s.with_dead_letter_topic(&options, topic),
                    None => Ok(s),
                })
                .with_context(|| format!("source `{id}`"))?;
                kafka_sources.push((id.clone(), source));
                continue;
            }
            SourceConfig::Gpu(g) => {
                let interval = Duration::from_millis(g.interval_ms);
                snapshot_interval = snapshot_interval.max(interval);
                let pods = ContainerPods::new(&g.proc_root, &g.containers_dir);
                nvml_sources.push((
                    id.clone(),
                    NvmlSource::new(interval, g.node_name.clone(), pods),
                ));
                continue;
            }
            SourceConfig::Scrape(c) => {
                let interval = Duration::from_millis(c.interval_ms);
                snapshot_interval = snapshot_interval.max(interval);
                let targets = c.targets.iter().map(scrape_target).collect();
                scrape_sources.push((
                    id.clone(),
                    ScrapeSource::new(ScrapeConfig {
                        targets,
                        interval,
                        timeout: Duration::from_millis(c.timeout_ms),
                    }),
                    c.discover,
                    c.targets.is_empty(),
                ));
                continue;
            }
        };
        let mut fc = FileSourceConfig::new(f.logs_dir.clone());
        fc.poll_interval = Duration::from_millis(f.poll_interval_ms);
        fc.max_line_bytes = f.max_line_bytes;
        fc.read_from = match f.read_from {
            ReadFromConfig::Beginning => ReadFrom::Beginning,
            ReadFromConfig::End => ReadFrom::End,
        };
        fc.docker_dir = f.docker_dir.clone();
        fc.partial_timeout = Duration::from_millis(f.partial_timeout_ms);
        fc.containers = ContainerFilter::new(&f.include, &f.exclude)
            .with_context(|| format!("sources.{id}.include/exclude"))?;
        let ml = &f.multiline;
        fc.multiline = ml.enabled.then(|| MultilineConfig {
            max_lines: ml.max_lines,
            max_bytes: ml.max_bytes,
            timeout: Duration::from_millis(ml.timeout_ms),
            window: Duration::from_millis(ml.window_ms),
        });
        fc.multiline_containers = ContainerFilter::new(&ml.include, &ml.exclude)
            .with_context(|| format!("sources.{id}.multiline.include/exclude"))?;
        let source = FileSource::new(id.clone(), fc, resume.clone())
            .with_context(|| format!("source `{id}`"))?;
        file_sources.push((id.clone(), source));
    }
    let mut index_sinks = Vec::new();
    let mut kafka_sinks = Vec::new();
    for (id, sink) in &config.sinks {
        let c = match sink {
            SinkConfig::Index(c) => c,
            SinkConfig::Kafka(k) => {
                let options = KafkaOptions {
                    brokers: k.brokers.clone(),
                    topic: k.topic.clone(),
                };
                let messages = KafkaSinkOptions {
                    key: match k.key {
                        KafkaKeyConfig::Pod => MessageKey::Pod,
                        KafkaKeyConfig::Namespace => MessageKey::Namespace,
                        KafkaKeyConfig::Node => MessageKey::Node,
                    },
                    encoding: match k.encoding {
                        KafkaEncodingConfig::Json => MessageEncoding::Json,
                        KafkaEncodingConfig::JsonLines => MessageEncoding::JsonLines,
                        KafkaEncodingConfig::Binary => MessageEncoding::Binary,
                    },
                    max_message_bytes: k.max_message_bytes,
                };
                let mut sink = KafkaSink::new(&options, messages, id)
                    .with_context(|| format!("sink `{id}`"))?;
                sink.check_topic();
                if let Some(file) = checkpoint_file.take() {
                    sink = sink.with_checkpoints(file);
                }
                kafka_sinks.push((id.clone(), sink));
                continue;
            }
        };
        let store = store
            .as_ref()
            .ok_or_else(|| anyhow!("sink `{id}` has no index"))?;
        let options = SinkOptions {
            commit_interval: Duration::from_millis(c.commit_interval_ms),
            commit_docs: c.commit_docs,
            memory_budget_bytes: c.memory_budget_mb * 1024 * 1024,
            indexing_threads: c.indexing_threads,
            retention: (c.retention_hours > 0)
                .then(|| Duration::from_secs(c.retention_hours * 3600)),
            retention_bytes: (c.retention_mb > 0).then(|| c.retention_mb.saturating_mul(1 << 20)),
            min_free_disk: (c.min_free_disk_percent > 0.0)
                .then_some(c.min_free_disk_percent / 100.0),
            split_docs: c.split_docs,
            split_age: Duration::from_secs(c.split_minutes * 60),
            segment_merge_max_docs: c.segment_merge_max_docs,
            ..SinkOptions::default()
        };
        index_sinks.push((
            id.clone(),
            store
                .sink(options)
                .with_context(|| format!("sink `{id}`"))?,
        ));
    }
    if let (Some(listen), None) = (&config.api, &*api) {
        *api = Some(ApiHost::bind(&listen.listen, &config).await?);
    }
    // Last: whether there is a cluster to watch is news, not a mistake, and must not come
    // before the message about one.
    let mut kube_sources = Vec::new();
    for (id, k) in &kube_configs {
        if let Some(source) = kube_source(id, k).await? {
            kube_sources.push((id.clone(), source.resuming(id, &resume)));
        }
    }

    let mut inboxes: BTreeMap<String, (mpsc::Sender<Batch>, mpsc::Receiver<Batch>)> =
        BTreeMap::new();
    for id in config.transforms.keys().chain(config.sinks.keys()) {
        inboxes.insert(id.clone(), mpsc::channel(CHANNEL_CAPACITY));
    }
    let mut tasks: JoinSet<(String, anyhow::Result<()>)> = JoinSet::new();
    let output = |producer: &str, tasks: &mut JoinSet<_>| -> mpsc::Sender<Batch> {
        let consumers: Vec<mpsc::Sender<Batch>> = inboxes
            .iter()
            .filter(|(id, _)| config.inputs_of(id).iter().any(|i| i == producer))
            .map(|(_, (tx, _))| tx.clone())
            .collect();
        fan_out(producer, consumers, tasks)
    };

    let mut source_metrics: Vec<(String, Arc<FileSourceMetrics>)> = Vec::new();
    let mut source_outputs = Vec::new();
    for (id, source) in file_sources {
        source_metrics.push((id.clone(), source.metrics()));
        source_outputs.push((id.clone(), source, output(&id, &mut tasks)));
    }
    let mut kube_states = Vec::new();
    // Log records are enriched from the first Kubernetes source's pods.
    let pod_metadata = kube_sources.first().map(|(_, s)| s.pod_metadata());
    for (id, source) in kube_sources {
        kube_states.push((id.clone(), source.state()));
        let (out, shutdown) = (output(&id, &mut tasks), shutdown.clone());
        tasks.spawn(async move {
            source.run(out, shutdown).await;
            (format!("source `{id}`"), Ok(()))
        });
    }
    let mut nvml_states = Vec::new();
    for (id, source) in nvml_sources {
        nvml_states.push((id.clone(), source.metrics(), source.table()));
        let (out, shutdown) = (output(&id, &mut tasks), shutdown.clone());
        // NVML calls block: the source has a thread of its own.
        spawn_source_thread(&mut tasks, id, move || source.run(out, shutdown))?;
    }
    let mut scrape_states = Vec::new();
    for (id, mut source, discover, no_targets) in scrape_sources {
        match (&pod_metadata, discover) {
            (Some(pods), true) => source = source.with_discovery(pods.clone()),
            _ if no_targets => {
                tracing::info!(source = %id, "no scrape targets and no pods to discover them from; the source is off");
                continue;
            }
            _ => {}
        }
        scrape_states.push((id.clone(), source.state()));
        let (out, shutdown) = (output(&id, &mut tasks), shutdown.clone());
        tasks.spawn(async move {
            source.run(out, shutdown).await;
            (format!("source `{id}`"), Ok(()))
        });
    }
    let mut kafka_source_metrics = Vec::new();
    for (id, source) in kafka_sources {
        kafka_source_metrics.push((id.clone(), source.metrics()));
        let (out, shutdown) = (output(&id, &mut tasks), shutdown.clone());
        // librdkafka's consumer and its rebalance callbacks block: a thread of its own.
        spawn_source_thread(&mut tasks, id, move || source.run(out, shutdown))?;
    }
    let mut transform_outputs = Vec::new();
    for (id, transform) in &config.transforms {
        transform_outputs.push((id.clone(), transform.clone(), output(id, &mut tasks)));
    }
    let mut receivers: BTreeMap<String, mpsc::Receiver<Batch>> =
        inboxes.into_iter().map(|(id, (_, rx))| (id, rx)).collect();

    let live = Arc::new(api::LiveTail::default());
    let index_sink_id = index_sinks.first().map(|(id, _)| id.clone());
    for (id, sink) in index_sinks {
        let rx = receivers
            .remove(&id)
            .ok_or_else(|| anyhow!("no inbox for `{id}`"))?;
        let live = live.clone();
        tasks.spawn(async move {
            let result = run_index_sink(sink, rx, live).await;
            (format!("sink `{id}`"), result)
        });
    }
    let mut kafka_sink_metrics = Vec::new();
    for (id, mut sink) in kafka_sinks {
        kafka_sink_metrics.push((id.clone(), sink.metrics()));
        let rx = receivers
            .remove(&id)
            .ok_or_else(|| anyhow!("no inbox for `{id}`"))?;
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let mut rx = rx;
            // Every batch waiting is published in the same round trip: the broker's
            // acknowledgement of one batch at a time capped the agent at ~25k records/s.
            while let Some(batch) = rx.recv().await {
                let mut batches = vec![batch];
                while batches.len() < KAFKA_BATCHES_PER_ROUND
                    && let Ok(more) = rx.try_recv()
                {
                    batches.push(more);
                }
                if !sink.send(batches, &shutdown).await {
                    break;
                }
            }
            let closed =
                tokio::task::spawn_blocking(move || sink.close(Duration::from_secs(10))).await;
            let result = closed.map_err(|_| anyhow!("the Kafka producer panicked closing"));
            (format!("sink `{id}`"), result)
        });
    }
    // A node agent (records to Kafka, no index) counts what only the reader of the lines'
    // order can; the aggregators count the rest from its records.
    let llm_metrics = Arc::new(
        match index_sink_id.is_none() && !kafka_sink_metrics.is_empty() {
            true => LlmMetrics::in_flight_only(),
            false => LlmMetrics::new(),
        },
    );
    for (id, transform, out) in transform_outputs {
        let rx = receivers
            .remove(&id)
            .ok_or_else(|| anyhow!("no inbox for `{id}`"))?;
        match transform {
            TransformConfig::InferenceLogs { servers, .. } => {
                let metrics = Arc::clone(&llm_metrics);
                let mut processor = InferenceLogProcessor::new().with_metrics(metrics);
                if !snapshot_interval.is_zero() {
                    processor = processor.with_gpu_join(snapshot_interval * 2);
                }
                if !servers.is_empty() {
                    processor = processor.with_assignment(server_assignment(&servers)?);
                }
                let enricher = pod_metadata.clone().map(PodEnricher::new);
                tasks.spawn(async move {
                    (
                        format!("transform `{id}`"),
                        run_inference_logs(rx, out, processor, enricher).await,
                    )
                });
            }
            TransformConfig::LlmMetrics { .. } => {
                let metrics = Arc::clone(&llm_metrics);
                tasks.spawn(async move {
                    let mut rx = rx;
                    let mut result = Ok(());
                    while let Some(batch) = rx.recv().await {
                        for r in &batch.records {
                            metrics.observe(r);
                        }
                        if out.send(batch).await.is_err() {
                            result = Err(OutputClosed.into());
                            break;
                        }
                    }
                    (format!("transform `{id}`"), result)
                });
            }
        }
    }
    for (id, source, out) in source_outputs {
        let shutdown = shutdown.clone();
        spawn_source_thread(&mut tasks, id, move || source.run(out, shutdown))?;
    }

    // The host exists exactly when the config serves an API (the same config every run).
    let api_addr = match api.as_ref() {
        Some(host) => {
            let addr = host.addr;
            // One object knows every source: it answers /metrics and /api/v1/status.
            let pipeline_metrics = Arc::new(
                PipelineMetrics::new(
                    source_metrics.clone(),
                    Arc::clone(&llm_metrics),
                    store.clone(),
                )
                .with_kube(kube_states)
                .with_gpus(nvml_states, scrape_states)
                .with_kafka(kafka_source_metrics, kafka_sink_metrics)
                .with_index_sink(index_sink_id),
            );
            let token = api_token(&config);
            let instance = instance_name(addr);
            let peers = match config.api.as_ref().filter(|a| !a.peers.is_empty()) {
                Some(a) => Some(Arc::new(api::Peers::new(
                    &a.peers,
                    &instance,
                    token.clone(),
                    Duration::from_millis(a.peer_timeout_ms),
                )?)),
                None => None,
            };
            if peers.is_some() {
                tracing::info!(
                    instance = %instance,
                    peers = ?config.api.as_ref().map(|a| &a.peers),
                    "searches also ask the peer aggregators"
                );
            }
            host.slot.answer(api::ApiState {
                // A node agent keeps no index: its API is for /metrics, health and status.
                search: match store.clone() {
                    Some(store) => Arc::new(api::LocalIndex::new(store)),
                    None => Arc::new(api::NoIndex::agent()),
                },
                token,
                live: Some(live.clone()),
                metrics: pipeline_metrics.clone(),
                status: pipeline_metrics,
                instance: Arc::from(instance.as_str()),
                peers,
            });
            addr
        }
        None => None,
    };
    on_ready(Ready { api_addr });

    let result = supervise(&mut tasks, &shutdown).await;
    // Its tail clients' streams end with it, and they follow the next run (or the API's
    // shutdown is not held open by them).
    live.close();
    for (id, m) in source_metrics {
        tracing::info!(
            source = %id,
            lines = m.lines_read.load(Relaxed),
            bytes = m.bytes_read.load(Relaxed),
            decode_errors = m.decode_errors.load(Relaxed),
            truncated = m.truncated_lines.load(Relaxed),
            batches_acknowledged = m.batches_delivered.load(Relaxed),
            batches_not_acknowledged = m.batches_not_delivered.load(Relaxed),
            "source totals"
        );
    }
    result
}

/// Runs a blocking source (`run`) on a thread of its own, named after it, and a task that
/// reports its end to the supervisor like any other component's.
fn spawn_source_thread(
    tasks: &mut JoinSet<(String, anyhow::Result<()>)>,
    id: String,
    run: impl FnOnce() + Send + 'static,
) -> anyhow::Result<()> {
    let thread = std::thread::Builder::new()
        .name(format!("source-{id}"))
        .spawn(run)
        .with_context(|| format!("cannot start the thread of source `{id}`"))?;
    tasks.spawn(async move {
        let joined = tokio::task::spawn_blocking(move || thread.join()).await;
        let result = match joined {
            Ok(Ok(())) => Ok(()),
            _ => Err(anyhow!("the thread of source `{id}` panicked")),
        };
        (format!("source `{id}`"), result)
    });
    Ok(())
}

/// A transform stopped because what it feeds had stopped: a consequence, never the cause,
/// of a pipeline's failure.
#[derive(Debug, thiserror::Error)]
#[error("its output closed")]
struct OutputClosed;

fn is_consequence(e: &anyhow::Error) -> bool {
    e.downcast_ref::<OutputClosed>().is_some()
}

/// Waits for every component; a failure stops the rest. Bounded once a stop was asked for.
/// The failure it returns is the first that was a cause: a sink that fails closes the
/// transforms' outputs, and they may well report before the sink does.
async fn supervise(
    tasks: &mut JoinSet<(String, anyhow::Result<()>)>,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let mut first_error: Option<anyhow::Error> = None;
    let deadline = async {
        shutdown.triggered().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                None => break,
                Some(Ok((_, Ok(())))) => {}
                Some(Ok((who, Err(e)))) => {
                    let e = e.context(format!("{who} failed"));
                    tracing::error!(error = format!("{e:#}"), "stopping the pipeline");
                    shutdown.trigger();
                    let replaces = match &first_error {
                        None => true,
                        Some(first) => is_consequence(first) && !is_consequence(&e),
                    };
                    if replaces {
                        first_error = Some(e);
                    }
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "a pipeline task panicked; stopping");
                    shutdown.trigger();
                    first_error.get_or_insert(anyhow!("a pipeline task panicked: {e}"));
                }
            },
            _ = &mut deadline => {
                tracing::error!(timeout = ?DRAIN_TIMEOUT, "the pipeline did not drain in time; exiting without it");
                tasks.abort_all();
                return Err(first_error.unwrap_or_else(|| anyhow!("drain timed out after {DRAIN_TIMEOUT:?}")));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn open_index(config: &PipelineConfig) -> anyhow::Result<Option<IndexStore>> {
    if !config
        .sinks
        .values()
        .any(|s| matches!(s, SinkConfig::Index(_)))
    {
        return Ok(None);
    }
    let path = config.data_dir.join("index");
    Ok(Some(IndexStore::open_or_create(&path)?))
}

async fn bind(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("`{listen}` is not an IP:PORT address (e.g. 127.0.0.1:8470)"))?;
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "the address is in use (is another infersight running?); choose another with --listen".to_string()
            }
            std::io::ErrorKind::PermissionDenied => "permission denied; ports below 1024 need privileges".to_string(),
            _ => e.to_string(),
        };
        anyhow!("cannot listen on {addr}: {why}")
    })
}

/// One sender for `producer`'s output: the consumer's own inbox when there is one consumer,
/// else a channel whose batches are copied to each (they share the batch's finalizers, so the
/// source hears back only when every consumer is done).
fn fan_out(
    producer: &str,
    mut consumers: Vec<mpsc::Sender<Batch>>,
    tasks: &mut JoinSet<(String, anyhow::Result<()>)>,
) -> mpsc::Sender<Batch> {
    if consumers.len() == 1 {
        return consumers.remove(0);
    }
    let (tx, mut rx) = mpsc::channel::<Batch>(CHANNEL_CAPACITY);
    let name = format!("fan-out of `{producer}`");
    tasks.spawn(async move {
        while let Some(batch) = rx.recv().await {
            let Some((last, rest)) = consumers.split_last() else {
                continue;
            };
            for c in rest {
                let _ = c.send(batch.clone()).await;
            }
            let _ = last.send(batch).await;
        }
        (name, Ok(()))
    });
    tx
}

/// The user's `servers` rules as the processor asks for them: the first rule whose glob
/// matches `<namespace>/<pod>/<container>` names the server.
fn server_assignment(rules: &[ServerRule]) -> anyhow::Result<ServerAssignment> {
    let mut compiled = Vec::new();
    for rule in rules {
        let glob = collector::files::check_pattern(&rule.containers)?;
        let server = processor::SERVERS
            .iter()
            .find(|s| **s == rule.server)
            .ok_or_else(|| anyhow!("unknown server `{}`", rule.server))?;
        compiled.push((glob.compile_matcher(), *server));
    }
    Ok(ServerAssignment(Box::new(
        move |namespace, pod, container| {
            let path = format!("{namespace}/{pod}/{container}");
            compiled
                .iter()
                .find(|(glob, _)| glob.is_match(&path))
                .map(|(_, server)| *server)
        },
    )))
}

async fn run_inference_logs(
    mut rx: mpsc::Receiver<Batch>,
    out: mpsc::Sender<Batch>,
    mut processor: InferenceLogProcessor,
    mut enricher: Option<PodEnricher>,
) -> anyhow::Result<()> {
    while let Some(mut batch) = rx.recv().await {
        // First: the pod's annotations can name the server the processor then parses for.
        if let Some(enricher) = &mut enricher {
            enricher.enrich(&mut batch.records);
        }
        processor.process_batch(&mut batch);
        if out.send(batch).await.is_err() {
            return Err(OutputClosed.into());
        }
    }
    let (seen, recognised) = processor.counts();
    tracing::info!(seen, recognised, "inference_logs transform totals");
    Ok(())
}

async fn run_index_sink(
    mut sink: IndexSink,
    mut rx: mpsc::Receiver<Batch>,
    live: Arc<api::LiveTail>,
) -> anyhow::Result<()> {
    // Documents are made on a thread of their own: a commit holds the index writer until
    // tantivy's indexing threads have finished their segments (~0.4 s a commit at 70k
    // records/s), and meanwhile the next batches' documents get made. A batch's
    // checkpoints travel with its documents, so they still land in the commit that holds
    // them.
    let (made_tx, mut made) = mpsc::channel(MADE_BATCHES);
    let mut maker = sink.document_maker();
    let maker = std::thread::Builder::new()
        .name("index-documents".into())
        .spawn(move || {
            while let Some(batch) = rx.blocking_recv() {
                live.publish(&batch.records);
                if made_tx.blocking_send(maker.make(batch)).is_err() {
                    break;
                }
            }
        })
        .context("cannot start the thread that makes index documents")?;
    // tantivy blocks (adding documents, committing); block_in_place keeps the runtime's
    // other tasks moving on the other workers meanwhile.
    loop {
        let wait = sink.time_to_commit();
        tokio::select! {
            documents = made.recv() => match documents {
                Some(documents) => {
                    tokio::task::block_in_place(|| sink.add_documents(documents))?;
                    if sink.commit_due() {
                        tokio::task::block_in_place(|| sink.commit())?;
                    }
                }
                None => break,
            },
            _ = tokio::time::sleep(wait), if sink.has_pending() => {
                tokio::task::block_in_place(|| sink.commit())?;
            }
        }
    }
    // The maker has stopped, as its output closed. (On an error above it is left to stop
    // at its next batch or when its input closes: the pipeline shuts down on a sink's
    // error.)
    if tokio::task::block_in_place(|| maker.join()).is_err() {
        return Err(anyhow!("the thread that makes index documents panicked"));
    }
    let committed = tokio::task::block_in_place(|| sink.close())?;
    tracing::info!(records = committed, "index sink closed");
    Ok(())
}

/// A scrape target as the source takes it: its pod, where the config names one, goes on
/// its records.
fn scrape_target(t: &ScrapeTargetConfig) -> ScrapeTarget {
    let mut resource = Attributes::new();
    if let ScrapeTargetConfig::Pod {
        namespace,
        pod,
        container,
        ..
    } = t
    {
        for (key, value) in [
            (model::names::K8S_NAMESPACE_NAME, namespace),
            (model::names::K8S_POD_NAME, pod),
            (model::names::K8S_CONTAINER_NAME, container),
        ] {
            if let Some(v) = value {
                resource.insert(key, v.clone());
            }
        }
    }
    ScrapeTarget {
        url: t.url().to_string(),
        resource,
    }
}

/// The `kube` source `id` as configured; `None` (and a note in the log) when it names no API
/// server and neither a service account nor a kubeconfig says where one is.
async fn kube_source(
    id: &str,
    config: &crate::config::KubeSourceConfig,
) -> anyhow::Result<Option<KubeSource>> {
    let wanted = KubeSourceConfig {
        api_url: config.api_url.clone(),
        node_name: config.node_name.clone(),
    };
    match KubeSource::connect(wanted).await {
        Ok(source) => Ok(Some(source)),
        Err(KubeError::NoConfig(why)) if config.api_url.is_none() => {
            tracing::info!(source = %id, "no Kubernetes source: {why}");
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("source `{id}`")),
    }
}

/// Adds what the Kubernetes source knows of a log record's pod to its resource. A pod's
/// records share one resource, so the enriched one is made once per resource and pod
/// version, not per record.
struct PodEnricher {
    pods: Arc<collector::kube::PodMetadata>,
    /// By the address of the resource a source gave (kept alive here, so the address is
    /// not reused): the pod version it was enriched at, and the result.
    made: HashMap<usize, (Arc<Attributes>, u64, Arc<Attributes>)>,
}

impl PodEnricher {
    /// Resources kept; past this the cache starts over (pods come and go).
    const CACHED: usize = 4096;

    fn new(pods: Arc<collector::kube::PodMetadata>) -> Self {
        PodEnricher {
            pods,
            made: HashMap::new(),
        }
    }

    fn enrich(&mut self, records: &mut [Record]) {
        for r in records.iter_mut().filter(|r| r.kind == RecordKind::Log) {
            let Some(version) = r
                .resource
                .get_str(model::names::K8S_POD_UID)
                .and_then(|uid| self.pods.version(uid))
            else {
                continue;
            };
            let key = Arc::as_ptr(&r.resource) as usize;
            match self.made.get(&key) {
                Some((_, v, enriched)) if *v == version => r.resource = enriched.clone(),
                _ => {
                    let Some(enriched) = self.pods.enrich(&r.resource) else {
                        continue;
                    };
                    if self.made.len() >= Self::CACHED {
                        self.made.clear();
                    }
                    let enriched = Arc::new(enriched);
                    let original = std::mem::replace(&mut r.resource, enriched.clone());
                    self.made.insert(key, (original, version, enriched));
                }
            }
        }
    }
}

/// This server's name among aggregators: its host name (a StatefulSet pod's is stable) and
/// API port, so that two on one machine differ and a restart keeps the name (and the
/// cursors given out before it).
fn instance_name(addr: Option<std::net::SocketAddr>) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "infersight".into());
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .collect();
    format!("{host}:{}", addr.map_or(0, |a| a.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failure_is_reported_by_its_cause_not_by_the_transform_it_closed() {
        fn failure(transform: bool) -> (String, anyhow::Result<()>) {
            match transform {
                true => ("transform `parse`".into(), Err(OutputClosed.into())),
                false => (
                    "sink `index`".into(),
                    Err(anyhow!("No space left on device")),
                ),
            }
        }
        // Either order of finishing: the second task ends only after the first has sent.
        for transform_first in [true, false] {
            let (done, first_done) = tokio::sync::oneshot::channel();
            let mut tasks = JoinSet::new();
            tasks.spawn(async move {
                let _ = done.send(());
                failure(transform_first)
            });
            tasks.spawn(async move {
                let _ = first_done.await;
                failure(!transform_first)
            });
            let err = supervise(&mut tasks, &Shutdown::new()).await.unwrap_err();
            assert_eq!(
                format!("{err:#}"),
                "sink `index` failed: No space left on device",
                "the transform finishing first: {transform_first}"
            );
        }
    }

    #[test]
    fn the_first_matching_server_rule_names_the_server() {
        let rule = |containers: &str, server: &str| ServerRule {
            containers: containers.into(),
            server: server.into(),
        };
        let assign =
            server_assignment(&[rule("llm/ollama-*/*", "ollama"), rule("llm/*/*", "vllm")])
                .unwrap();
        assert_eq!((assign.0)("llm", "ollama-0", "server"), Some("ollama"));
        assert_eq!((assign.0)("llm", "chat-7b", "server"), Some("vllm"));
        assert_eq!((assign.0)("other", "chat-7b", "server"), None);
        assert!(server_assignment(&[rule("*/*/*", "nope")]).is_err());
    }
}
