//! The subcommands other than `demo`.

use crate::config::{self, Overrides, PipelineConfig};
use crate::topology;
use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};
use collector::Shutdown;
use collector::files::{
    CriLine, DockerLine, MultilineConfig, MultilineStream, PartialLineMerger, decode_cri,
    decode_docker_json,
};
use indexer::{IndexStore, SearchRequest};
use model::{Record, RecordId, Timestamp, names};
use processor::InferenceLogProcessor;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `infersight run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// A pipeline config file (TOML).
    #[arg(long, conflicts_with = "preset")]
    pub config: Option<PathBuf>,
    /// A built-in preset.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    #[command(flatten)]
    pub overrides: OverrideArgs,
}

/// Settings that override the config file.
#[derive(Args, Debug, Default, Clone)]
pub struct OverrideArgs {
    /// The kubelet's pod log directory [default: /var/log/pods].
    #[arg(long)]
    pub logs_dir: Option<PathBuf>,
    /// Where the index and state live [default: ./data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// API address, IP:PORT [default: 127.0.0.1:8470].
    #[arg(long)]
    pub listen: Option<String>,
    /// Bearer token the API requires [default: $INFERSIGHT_API_TOKEN, else none].
    #[arg(long)]
    pub api_token: Option<String>,
    /// Serve the API beyond loopback without a token.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// The Kubernetes API server's URL [default: in-cluster service account, else
    /// kubeconfig, else no Kubernetes source].
    #[arg(long)]
    pub kube_api: Option<String>,
    /// Watch only this node's pods (a node agent; in a DaemonSet, `$(NODE_NAME)` from the
    /// downward API) [default: every pod].
    #[arg(long)]
    pub kube_node: Option<String>,
    /// A Prometheus endpoint to read (dcgm-exporter, or a vLLM/SGLang/TGI `/metrics`);
    /// repeat for more.
    #[arg(long, value_name = "URL")]
    pub scrape: Vec<String>,
    /// Kafka brokers, HOST:PORT,… (the agent's sink and the aggregator's source).
    #[arg(long)]
    pub kafka_brokers: Option<String>,
    /// The Kafka topic of the records [default: infersight-records].
    #[arg(long)]
    pub kafka_topic: Option<String>,
    /// This aggregator's static name in the Kafka consumer group (in a StatefulSet,
    /// `$(POD_NAME)`): restarted, it takes its own partitions back without a rebalance.
    #[arg(long)]
    pub kafka_group_instance_id: Option<String>,
    /// A topic for the Kafka messages (or lines) that are not records, as read, with their
    /// origin and the reason in headers [default: counted and skipped].
    #[arg(long, value_name = "TOPIC")]
    pub kafka_dead_letter_topic: Option<String>,
    /// The other aggregators every search also asks: HOST:PORT, or dns:NAME:PORT for every
    /// address of a headless Service; comma-separated or repeated [default: $INFERSIGHT_PEERS].
    #[arg(long, value_name = "PEER")]
    pub peers: Vec<String>,
    /// Delete records older than this many hours from the index; 0 keeps all [default: the
    /// config's `retention_hours`, else 0].
    #[arg(long, value_name = "HOURS", value_parser = clap::value_parser!(u64).range(0..=876_000))]
    pub retention_hours: Option<u64>,
    /// Drop the index's oldest splits while it is larger than this many MiB; 0 sets no
    /// bound [default: the config's `retention_mb`, else 0]. Apart from it, the index stops
    /// growing while less than 15 % of the disk is free (`min_free_disk_percent`).
    #[arg(long, value_name = "MIB")]
    pub retention_mb: Option<u64>,
}

impl From<OverrideArgs> for Overrides {
    fn from(a: OverrideArgs) -> Self {
        Overrides {
            logs_dir: a.logs_dir,
            data_dir: a.data_dir,
            listen: a.listen,
            api_token: a
                .api_token
                .or_else(|| std::env::var("INFERSIGHT_API_TOKEN").ok())
                .filter(|t| !t.is_empty()),
            insecure_no_auth: a.insecure_no_auth,
            kube_api: a.kube_api,
            kube_node: a.kube_node.filter(|n| !n.is_empty()),
            scrape: a.scrape,
            kafka_brokers: a.kafka_brokers,
            kafka_topic: a.kafka_topic,
            kafka_group_instance_id: a.kafka_group_instance_id.filter(|i| !i.is_empty()),
            kafka_dead_letter_topic: a.kafka_dead_letter_topic.filter(|t| !t.is_empty()),
            peers: match a.peers.is_empty() {
                true => std::env::var("INFERSIGHT_PEERS")
                    .ok()
                    .filter(|p| !p.trim().is_empty())
                    .into_iter()
                    .collect(),
                false => a.peers,
            },
            retention_hours: a.retention_hours,
            retention_mb: a.retention_mb,
        }
    }
}

/// The built-in presets.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Preset {
    /// Files → parse → index → API, in one process.
    Local,
    /// Files → parse → Kafka (one per node).
    Agent,
    /// Kafka → parse → index → API.
    Aggregator,
}

impl Preset {
    fn name(self) -> &'static str {
        match self {
            Preset::Local => "local",
            Preset::Agent => "agent",
            Preset::Aggregator => "aggregator",
        }
    }
}

/// Loads `--config FILE`, or the preset (default `local`), with the overrides applied.
pub fn load_config(
    file: Option<&Path>,
    preset: Option<Preset>,
    overrides: Overrides,
) -> anyhow::Result<PipelineConfig> {
    let (origin, text) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the config file {}", path.display()))?;
            (path.display().to_string(), text)
        }
        None => {
            let name = preset.unwrap_or(Preset::Local).name();
            let text = config::preset(name).ok_or_else(|| anyhow!("no preset `{name}`"))?;
            (format!("preset `{name}`"), text.to_string())
        }
    };
    Ok(PipelineConfig::load(&origin, &text, &overrides)?)
}

/// `infersight run`.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_deref(), args.preset, args.overrides.into())?;
    run_pipeline(config, Shutdown::new(), |ready| {
        match ready.api_addr {
            Some(addr) => println!("infersight: listening on http://{addr}"),
            // An agent serves no API; it still says when it runs.
            None => println!("infersight: running"),
        }
    })
}

/// Runs a pipeline on a fresh runtime until Ctrl-C / SIGTERM or `shutdown` is triggered.
pub fn run_pipeline(
    config: PipelineConfig,
    shutdown: Shutdown,
    on_ready: impl FnOnce(topology::Ready),
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        tokio::spawn(stop_on_signal(shutdown.clone()));
        let mut on_ready = Some(on_ready);
        let mut failures_in_a_row = 0u32;
        let mut ran_before = false;
        // The API's listener, bound by the first run and kept across restarts.
        let mut api = None;
        loop {
            // Each run has its own stop signal: a failing run stops itself, not the process.
            let run_stop = Shutdown::new();
            let forward = tokio::spawn({
                let (process, run) = (shutdown.clone(), run_stop.clone());
                async move {
                    process.triggered().await;
                    run.trigger();
                }
            });
            let mut started = false;
            let started_at = std::time::Instant::now();
            let result = topology::run(config.clone(), run_stop, &mut api, |ready| {
                started = true;
                match on_ready.take() {
                    Some(f) => {
                        let _ = std::io::stdout().flush();
                        f(ready);
                        let _ = std::io::stdout().flush();
                    }
                    None => tracing::info!("the pipeline runs again"),
                }
            })
            .await;
            forward.abort();
            let error = match result {
                // A failure before the pipeline first ran (config, a port in use, a locked
                // index) or while stopping is the operator's to see: exit with it. Once it
                // ran, a start that fails (the index cannot be opened on a full disk) is
                // retried like any other failure.
                Err(e) if (started || ran_before) && !shutdown.is_triggered() => e,
                done => {
                    if let Some(api) = api.take() {
                        api.close().await;
                    }
                    return done;
                }
            };
            ran_before = true;
            // A failure while running (the data disk full, an index write refused) loses
            // nothing: what was not committed was not acknowledged, and the sources read it
            // again. Start again, backing off while it keeps failing.
            if started_at.elapsed() > std::time::Duration::from_secs(60) {
                failures_in_a_row = 0;
            }
            failures_in_a_row += 1;
            let backoff = std::time::Duration::from_secs(1 << failures_in_a_row.min(5));
            crate::self_metrics::pipeline_failed(format!("{error:#}"));
            tracing::error!(
                error = format!("{error:#}"),
                restart_in = ?backoff,
                "the pipeline failed while running; nothing uncommitted was acknowledged, so it starts again and reads on from the last commit"
            );
            // Meanwhile the API answers, saying so; the failed run's index is let go.
            if let Some(api) = &api {
                api.wait_for_restart(&config, std::time::Instant::now() + backoff);
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.triggered() => {
                    if let Some(api) = api.take() {
                        api.close().await;
                    }
                    return Err(error);
                }
            }
        }
    })
}

/// The first SIGINT/SIGTERM drains the pipeline; a second one exits at once.
async fn stop_on_signal(shutdown: Shutdown) {
    #[cfg(unix)]
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; Ctrl-C still works");
            return;
        }
    };
    for attempt in 0.. {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        if attempt == 0 {
            tracing::info!("stopping: draining the pipeline (signal again to exit at once)");
            shutdown.trigger();
        } else {
            eprintln!("infersight: exiting without draining");
            std::process::exit(130);
        }
    }
}

/// `infersight parse`.
#[derive(Args, Debug)]
pub struct ParseArgs {
    /// How each stdin line is framed.
    #[arg(long, value_enum, default_value = "raw")]
    pub format: LineFormat,
    /// Which server wrote the lines: `auto` recognises them (and remembers a container's
    /// server for its other lines); a name marks every line as that server's.
    #[arg(long, default_value = "auto")]
    pub server: String,
}

/// Framing of input lines.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LineFormat {
    /// The server's own line.
    Raw,
    /// A CRI container-log line (`<ts> <stream> <P|F> <content>`).
    Cri,
    /// A docker json-file line.
    Docker,
}

/// `infersight parse`: stdin lines → JSON records on stdout.
pub fn parse(args: ParseArgs) -> anyhow::Result<()> {
    if args.server != "auto" && !processor::SERVERS.contains(&args.server.as_str()) {
        bail!(
            "--server {}: unknown; use auto or one of {}",
            args.server,
            processor::SERVERS.join(", ")
        );
    }
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut processor = InferenceLogProcessor::new();
    if args.server != "auto" {
        processor = processor.with_server(&args.server);
    }
    let mut merger = PartialLineMerger::new(1024 * 1024);
    let resource = Arc::new(model::Attributes::new());
    let mut emitted = Vec::new();
    // A traceback or a message with continuation lines becomes one record, as in `run`.
    let mut groups =
        MultilineStream::new(MultilineConfig::default(), args.format == LineFormat::Raw);
    let mut emit =
        |record: Option<Record>, position: u64, out: &mut dyn Write| -> anyhow::Result<()> {
            let complete = match record {
                Some(record) => groups.push(record, position),
                None => groups.finish(),
            };
            for mut record in complete {
                processor.process(&mut record, &mut emitted);
                writeln!(out, "{}", record.to_json())?;
                for derived in emitted.drain(..) {
                    writeln!(out, "{}", derived.to_json())?;
                }
            }
            Ok(())
        };
    for (n, line) in stdin.split(b'\n').enumerate() {
        let mut line = line.context("cannot read stdin")?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let now = Timestamp::now();
        let id = RecordId::from_source(b"stdin", n as u64);
        let record = match args.format {
            LineFormat::Raw => Some(text_record(id, now, None, &line, resource.clone())),
            LineFormat::Cri | LineFormat::Docker => match decode_container_line(args.format, &line)
            {
                Ok(cri) => merger.push(&cri.as_cri(), n as u64).map(|whole| {
                    let id = RecordId::from_source(b"stdin", whole.position);
                    let mut r = text_record(
                        id,
                        whole.timestamp,
                        Some(now),
                        &whole.content,
                        resource.clone(),
                    );
                    r.stream = Some(whole.stream);
                    if whole.truncated {
                        r.attributes.insert(names::LOG_TRUNCATED, true);
                    }
                    r
                }),
                Err(e) => {
                    let mut r = text_record(id, now, None, &line, resource.clone());
                    r.attributes.insert(names::LOG_DECODE_ERROR, e);
                    Some(r)
                }
            },
        };
        if let Some(record) = record {
            emit(Some(record), n as u64, &mut out)?;
        }
    }
    for whole in merger.flush() {
        let id = RecordId::from_source(b"stdin", whole.position);
        let mut r = text_record(id, whole.timestamp, None, &whole.content, resource.clone());
        r.stream = Some(whole.stream);
        emit(Some(r), whole.position, &mut out)?;
    }
    emit(None, 0, &mut out)?;
    out.flush().context("cannot write stdout")?;
    Ok(())
}

/// A CRI or docker line, decoded to the shape the partial-line merger takes.
enum ContainerLine<'a> {
    Cri(CriLine<'a>),
    Docker(DockerLine<'a>),
}

impl ContainerLine<'_> {
    fn as_cri(&self) -> CriLine<'_> {
        match self {
            ContainerLine::Cri(c) => c.clone(),
            ContainerLine::Docker(d) => d.as_cri(),
        }
    }
}

fn decode_container_line(format: LineFormat, line: &[u8]) -> Result<ContainerLine<'_>, String> {
    match format {
        LineFormat::Docker => decode_docker_json(line)
            .map(ContainerLine::Docker)
            .map_err(|e| e.to_string()),
        _ => decode_cri(line)
            .map(ContainerLine::Cri)
            .map_err(|e| e.to_string()),
    }
}

fn text_record(
    id: RecordId,
    ts: Timestamp,
    observed: Option<Timestamp>,
    bytes: &[u8],
    resource: Arc<model::Attributes>,
) -> Record {
    Record::log_from_bytes(id, ts, observed.unwrap_or(ts), resource, bytes.to_vec())
}

/// `infersight search`.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// The query (tantivy syntax over the message and the exact fields; `*` for all).
    pub query: String,
    /// Earliest time: RFC 3339 or relative (now-15m, now-2h, now-7d).
    #[arg(long)]
    pub from: Option<String>,
    /// Latest time.
    #[arg(long)]
    pub to: Option<String>,
    /// The data directory of an earlier `run`.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Most hits to print.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print each hit as its JSON record instead of a readable line.
    #[arg(long)]
    pub json: bool,
    /// The query is a request id: print every record of that request, from every
    /// container, oldest first.
    #[arg(long)]
    pub request: bool,
}

/// `infersight search`: the read path, directly on a data dir.
pub fn search(args: SearchArgs) -> anyhow::Result<()> {
    let now = Timestamp::now();
    let time = |name: &str, v: &Option<String>| -> anyhow::Result<Option<Timestamp>> {
        v.as_deref()
            .map(|s| Timestamp::parse_expression(s, now).with_context(|| format!("--{name}")))
            .transpose()
    };
    let request = SearchRequest {
        query: args.query.clone(),
        from: time("from", &args.from)?,
        to: time("to", &args.to)?,
        limit: args.limit,
        ..Default::default()
    };
    let store = IndexStore::open_existing(&args.data_dir.join("index"))?;
    if args.request {
        // `--from`/`--to` narrow it: a number (a llama.cpp task) names a request only in
        // one run of one server.
        let within = SearchRequest {
            query: String::new(),
            ..request.clone()
        };
        let trace = store.searcher().request_trace(&args.query, &within)?;
        print_hits(&trace, args.json)?;
        eprintln!("{} records of request {}", trace.len(), args.query);
        let pods: std::collections::BTreeSet<&str> = trace
            .iter()
            .filter_map(|r| r.resource_str(model::names::K8S_POD_NAME))
            .collect();
        if args.query.trim().bytes().all(|b| b.is_ascii_digit()) && pods.len() > 1 {
            eprintln!(
                "note: {} is a number, which names a request only within one run of one server, and these records are of {} pods: narrow them with --from/--to around the line you started from",
                args.query.trim(),
                pods.len()
            );
        }
        return Ok(());
    }
    let results = store.searcher().search(&request)?;
    print_hits(&results.hits, args.json)?;
    let capped = if results.limit_capped {
        " (limit capped)"
    } else {
        ""
    };
    eprintln!(
        "{} of {} matching records{capped}",
        results.hits.len(),
        results.total
    );
    Ok(())
}

/// Prints records as JSON lines or as `time ns/pod/container severity body`.
fn print_hits(hits: &[model::Record], json: bool) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for hit in hits {
        if json {
            writeln!(out, "{}", hit.to_json())?;
        } else {
            let who = [
                names::K8S_NAMESPACE_NAME,
                names::K8S_POD_NAME,
                names::K8S_CONTAINER_NAME,
            ]
            .map(|k| hit.resource_str(k).unwrap_or("-"))
            .join("/");
            let sev = hit.severity.map_or("-", |s| s.as_str());
            writeln!(out, "{} {who} {sev} {}", hit.timestamp, hit.body)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `infersight validate --config FILE`.
pub fn validate(file: &Path) -> anyhow::Result<()> {
    let config = load_config(Some(file), None, Overrides::default())?;
    println!(
        "{}: valid ({} source{}, {} transform{}, {} sink{})",
        file.display(),
        config.sources.len(),
        plural(config.sources.len()),
        config.transforms.len(),
        plural(config.transforms.len()),
        config.sinks.len(),
        plural(config.sinks.len()),
    );
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `infersight gpu-check`: the NVML source alone.
#[derive(Args, Debug)]
pub struct GpuCheckArgs {
    /// How long to sample.
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Between snapshots, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
}

/// Samples every GPU through NVML for a while and prints each snapshot as one JSON line
/// (with how long it took), to hold up against `nvidia-smi`. Fails, saying why, where NVML
/// is unavailable.
pub fn gpu_check(args: GpuCheckArgs) -> anyhow::Result<()> {
    use collector::gpu::{ContainerPods, NvmlSampler};
    let sampler = match NvmlSampler::init(ContainerPods::default()) {
        Ok(s) => s,
        Err(reason) => {
            println!(
                "{}",
                serde_json::json!({"nvml": "unavailable", "reason": reason})
            );
            bail!("NVML is unavailable here: {reason}");
        }
    };
    let gpus = sampler.device_count().map_err(|e| anyhow!(e))?;
    println!("{}", serde_json::json!({"nvml": "available", "gpus": gpus}));
    let interval = std::time::Duration::from_millis(args.interval_ms.max(10));
    let end = std::time::Instant::now() + std::time::Duration::from_secs(args.seconds);
    let mut out = std::io::stdout().lock();
    while std::time::Instant::now() < end {
        let started = std::time::Instant::now();
        let (readings, failed) = sampler.sample();
        let took = started.elapsed();
        let line = serde_json::json!({
            "at": Timestamp::now().to_rfc3339(),
            "sample_ms": took.as_secs_f64() * 1e3,
            "devices_failed": failed,
            "gpus": readings,
        });
        writeln!(out, "{line}")?;
        out.flush()?;
        std::thread::sleep(interval.saturating_sub(took));
    }
    Ok(())
}
