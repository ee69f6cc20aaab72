//! Connecting to the API server and running the watches.

use super::{
    EventRecorder, NodeTable, NodeTracker, PodMetadata, PodTable, PodTracker, QuotaTable,
    QuotaTracker, Workload, WorkloadTable, WorkloadTracker, WorkloadView, pods, workloads,
};
use crate::Shutdown;
use ::kube::runtime::WatchStreamExt;
use ::kube::runtime::watcher::{self, Event as Change};
use ::kube::{Api, Client};
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Node, Pod, ResourceQuota};
use model::{Batch, CheckpointSet, Record, Timestamp};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::sync::mpsc;

/// Why the Kubernetes source cannot start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// `--kube-api` is not a URL.
    #[error(
        "the Kubernetes API URL `{url}` is not valid: {reason} (give e.g. https://10.0.0.1:6443)"
    )]
    BadUrl {
        /// What was given.
        url: String,
        /// Why it is not a URL.
        reason: String,
    },
    /// No in-cluster service account and no kubeconfig.
    #[error(
        "no Kubernetes configuration: {0} (run in a pod with a service account, set KUBECONFIG, or give --kube-api)"
    )]
    NoConfig(String),
    /// The client could not be built from the configuration.
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[from] ::kube::Error),
}

/// Where and what to watch.
#[derive(Clone, Debug, Default)]
pub struct KubeSourceConfig {
    /// The API server's URL; `None` infers it (in-cluster service account, else kubeconfig).
    pub api_url: Option<String>,
    /// Only this node's pods (a node agent); `None` watches every pod (an aggregator).
    pub node_name: Option<String>,
}

/// What the source did, for `/metrics`.
#[derive(Debug, Default)]
pub struct KubeSourceMetrics {
    /// `k8s_event` records sent.
    pub events: AtomicU64,
    /// `k8s_object` records sent.
    pub object_changes: AtomicU64,
    /// Watch errors (a dropped connection, an HTTP error, an object that would not
    /// decode); the watcher backs off and carries on after each.
    pub watch_errors: AtomicU64,
    /// Full relists (the first list, and each after 410 Expired).
    pub relists: AtomicU64,
}

/// What a running source shows of itself and the cluster, for `/metrics`.
#[derive(Clone, Debug)]
pub struct KubeState {
    /// Its counters.
    pub metrics: Arc<KubeSourceMetrics>,
    /// The pods' status.
    pub pods: Arc<PodTable>,
    /// The workloads' replica counts.
    pub workloads: Arc<WorkloadTable>,
    /// The nodes' GPUs and conditions.
    pub nodes: Arc<NodeTable>,
    /// The quotas' hard limits and use.
    pub quotas: Arc<QuotaTable>,
}

/// Watches Events, Pods, workloads, Nodes and ResourceQuotas and sends what changed as
/// records.
pub struct KubeSource {
    /// Its name in the pipeline config, which its checkpoints go under.
    id: String,
    client: Client,
    config: KubeSourceConfig,
    metrics: Arc<KubeSourceMetrics>,
    workloads: WorkloadTracker,
    pods: PodTracker,
    nodes: NodeTracker,
    quotas: QuotaTracker,
    pod_metadata: Arc<PodMetadata>,
    /// A (re)list of the pods has just completed: their states are due.
    pods_listed: bool,
    /// The same for a list of workloads (of any kind).
    workloads_listed: bool,
    /// The entries of pods a run that watched other nodes left: let go with the first
    /// batch, not carried in every commit.
    forget: Vec<model::Checkpoint>,
}

/// How often every pod's whole state ([`PodTracker::state_records`]) and every workload's
/// replica counts ([`WorkloadTracker::state_records`]) are recorded, beside the records of
/// their changes.
const POD_STATE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// What the source watches, as (API group, resource): what its ClusterRole must grant
/// get/list/watch on, and nothing more.
pub const WATCHED_RESOURCES: [(&str, &str); 7] = [
    resource::<Event>(),
    resource::<Pod>(),
    resource::<Deployment>(),
    resource::<StatefulSet>(),
    resource::<HorizontalPodAutoscaler>(),
    resource::<Node>(),
    resource::<ResourceQuota>(),
];

const fn resource<K: k8s_openapi::Resource>() -> (&'static str, &'static str) {
    (K::GROUP, K::URL_PATH_SEGMENT)
}

/// One item of the merged watch streams (boxed: a pod is a couple of kilobytes).
enum Watched {
    Event(Box<Result<Change<Event>, watcher::Error>>),
    Pod(Box<Result<Change<Pod>, watcher::Error>>),
    /// With the kind of the watch: its (re)lists replace only that kind's workloads.
    Workload(
        &'static str,
        Box<Result<Change<Option<WorkloadView>>, watcher::Error>>,
    ),
    Node(Box<Result<Change<Node>, watcher::Error>>),
    Quota(Box<Result<Change<ResourceQuota>, watcher::Error>>),
}

/// What a watch item asks of a tracker.
enum Step<K> {
    /// Note this object; `true` when it comes from a (re)list.
    Applied(K, bool),
    /// Forget it.
    Deleted(K),
    /// A (re)list starts: what it gives is all there is.
    Listing,
    /// The (re)list is complete: what it did not give is gone.
    Listed,
    /// Nothing to record (an error).
    Nothing,
}

/// A workload watch's item as the tracker's view of it.
fn workload_item<K: Workload>(item: Result<Change<K>, watcher::Error>) -> Watched {
    Watched::Workload(
        K::KIND,
        Box::new(item.map(|change| match change {
            Change::Apply(k) => Change::Apply(k.view()),
            Change::InitApply(k) => Change::InitApply(k.view()),
            Change::Delete(k) => Change::Delete(k.view()),
            Change::Init => Change::Init,
            Change::InitDone => Change::InitDone,
        })),
    )
}

impl KubeSource {
    /// Connects as `config` says; nothing is requested until [`KubeSource::run`].
    pub async fn connect(config: KubeSourceConfig) -> Result<Self, KubeError> {
        let kube_config = match &config.api_url {
            Some(url) => {
                let uri = url
                    .parse()
                    .map_err(|e: http::uri::InvalidUri| KubeError::BadUrl {
                        url: url.clone(),
                        reason: e.to_string(),
                    })?;
                ::kube::Config::new(uri)
            }
            None => ::kube::Config::infer()
                .await
                .map_err(|e| KubeError::NoConfig(e.to_string()))?,
        };
        Ok(Self::with_client(Client::try_from(kube_config)?, config))
    }

    /// A source over an existing client.
    pub fn with_client(client: Client, config: KubeSourceConfig) -> Self {
        KubeSource {
            id: "kube".to_string(),
            client,
            config,
            metrics: Arc::default(),
            workloads: WorkloadTracker::default(),
            pods: PodTracker::default(),
            nodes: NodeTracker::default(),
            quotas: QuotaTracker::default(),
            pod_metadata: Arc::default(),
            pods_listed: false,
            workloads_listed: false,
            forget: Vec::new(),
        }
    }

    /// Names the source `id` (its checkpoints go under that name) and picks up where the
    /// run that left `resume` stopped: the pods and workloads that run recorded are
    /// remembered, so that its first lists find those deleted meanwhile and record their
    /// deletion. Without it, a pod deleted while Infersight was down would stay Running in
    /// `/api/v1/pods`, and a deleted Deployment short of replicas on the dashboard.
    pub fn resuming(mut self, id: &str, resume: &CheckpointSet) -> Self {
        self.id = id.to_string();
        let node = self.config.node_name.as_deref();
        let pods = if pods::scope_changed(id, resume, node) {
            tracing::info!(
                source = id,
                node = node.unwrap_or("(all)"),
                "the last run watched the pods of another node (--kube-node changed): its pods are not checked for deletion"
            );
            self.forget = pods::forgotten(id, resume);
            0
        } else {
            self.pods.resume(id, resume)
        };
        let workloads = self.workloads.resume(id, resume);
        if pods + workloads > 0 {
            tracing::info!(
                source = id,
                pods,
                workloads,
                "checking whether the pods and workloads recorded before still exist"
            );
        }
        self
    }

    /// The metadata of the pods it watches, for enriching their log records.
    pub fn pod_metadata(&self) -> Arc<PodMetadata> {
        self.pod_metadata.clone()
    }

    /// Its counters and the tables it keeps of the cluster.
    pub fn state(&self) -> KubeState {
        KubeState {
            metrics: self.metrics.clone(),
            pods: self.pods.table(),
            workloads: self.workloads.table(),
            nodes: self.nodes.table(),
            quotas: self.quotas.table(),
        }
    }

    /// A watch of every `K` `config` selects, retrying with kube's default backoff.
    fn watch<K>(
        &self,
        config: watcher::Config,
    ) -> impl futures_util::Stream<Item = Result<Change<K>, watcher::Error>> + Send + 'static
    where
        K: ::kube::Resource<DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + 'static,
    {
        watcher::watcher(Api::<K>::all(self.client.clone()), config).default_backoff()
    }

    /// Watches until `shutdown` or until `out` is closed. Errors of the API server (it went
    /// away, answered 500, sent something malformed) are counted and logged, and the
    /// watcher retries with backoff: they never stop the source. Each kind is its own
    /// watch, so one that is slow or failing holds up none of the others.
    pub async fn run(mut self, out: mpsc::Sender<Batch>, shutdown: Shutdown) {
        let all = watcher::Config::default;
        // A node agent cares about its own node and the pods on it; an aggregator about all.
        let (pods, nodes) = match &self.config.node_name {
            Some(node) => (
                all().fields(&format!("spec.nodeName={node}")),
                all().fields(&format!("metadata.name={node}")),
            ),
            None => (all(), all()),
        };
        let streams = [
            self.watch(all())
                .map(|i| Watched::Event(Box::new(i)))
                .boxed(),
            self.watch(pods).map(|i| Watched::Pod(Box::new(i))).boxed(),
            self.watch::<Deployment>(all()).map(workload_item).boxed(),
            self.watch::<StatefulSet>(all()).map(workload_item).boxed(),
            self.watch::<HorizontalPodAutoscaler>(all())
                .map(workload_item)
                .boxed(),
            self.watch(nodes)
                .map(|i| Watched::Node(Box::new(i)))
                .boxed(),
            self.watch(all())
                .map(|i| Watched::Quota(Box::new(i)))
                .boxed(),
        ];
        let mut merged = std::pin::pin!(futures_util::stream::select_all(streams));
        let mut recorder = EventRecorder::default();
        let mut states = tokio::time::interval_at(
            tokio::time::Instant::now() + POD_STATE_INTERVAL,
            POD_STATE_INTERVAL,
        );
        states.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut records = tokio::select! {
                _ = shutdown.triggered() => break,
                item = merged.next() => match item {
                    Some(item) => self.records_of(item, &mut recorder).0,
                    None => break,
                },
                _ = states.tick() => {
                    let mut states = self.pod_states();
                    states.extend(self.workload_states());
                    states
                }
            };
            // A (re)list's changes are dated by the objects' own times: a pod or Deployment
            // unchanged for weeks gets a record of weeks ago. Its state as of now goes
            // beside them.
            if std::mem::take(&mut self.pods_listed) {
                records.extend(self.pod_states());
            }
            if std::mem::take(&mut self.workloads_listed) {
                records.extend(self.workload_states());
            }
            if records.is_empty() {
                continue;
            }
            // What is let go comes first: a pod this run lists again gets its entry back
            // in the same batch.
            let checkpoints = std::mem::take(&mut self.forget)
                .into_iter()
                .chain(records.iter().filter_map(|r| {
                    pods::checkpoint(&self.id, r).or_else(|| workloads::checkpoint(&self.id, r))
                }))
                .chain([pods::scope_checkpoint(
                    &self.id,
                    self.config.node_name.as_deref(),
                )])
                .collect();
            let mut batch = Batch::new(records);
            batch.checkpoints = checkpoints;
            // Every record here may already be indexed: what a (re)list shows, an earlier
            // run may have indexed (this run remembers nothing of it), and behind Kafka
            // every node agent publishes its own copy of the cluster-wide events, workloads
            // and quotas. Ids and timestamps come from the objects, so the copies match and
            // the index keeps one: each replaces the last.
            batch.redelivered = batch.records.iter().map(|r| r.id).collect();
            if out.send(batch).await.is_err() {
                break;
            }
        }
    }

    /// Every workload's replica counts as of now, counted as `k8s_object` records sent.
    fn workload_states(&self) -> Vec<Record> {
        let states = self.workloads.state_records(Timestamp::now());
        self.metrics
            .object_changes
            .fetch_add(states.len() as u64, Relaxed);
        states
    }

    /// Every pod's state as of now, counted as `k8s_object` records sent.
    fn pod_states(&self) -> Vec<Record> {
        let states = self.pods.state_records(Timestamp::now());
        let sent = states.len() as u64;
        self.metrics.object_changes.fetch_add(sent, Relaxed);
        states
    }

    fn records_of(&mut self, item: Watched, recorder: &mut EventRecorder) -> (Vec<Record>, bool) {
        let mut is_event = false;
        let (records, listed): (Vec<Record>, bool) = match item {
            Watched::Event(item) => {
                is_event = true;
                match self.step(*item) {
                    Step::Applied(e, listed) => {
                        (recorder.applied(&e).into_iter().collect(), listed)
                    }
                    Step::Deleted(e) => {
                        recorder.deleted(&e);
                        (Vec::new(), false)
                    }
                    // Events are not state: one that is gone has only expired.
                    Step::Listing | Step::Listed | Step::Nothing => (Vec::new(), false),
                }
            }
            Watched::Pod(item) => match self.step(*item) {
                Step::Applied(p, listed) => {
                    self.pod_metadata.update(&p);
                    let mut records = self.pods.applied(&p);
                    // A change is dated by the pod's status, which may be a little before
                    // the state last told: the state goes again, newest, so that it never
                    // says less than the change.
                    if !records.is_empty() && !listed {
                        let uid = p.metadata.uid.as_deref().unwrap_or_default();
                        records.extend(self.pods.state_records_of(uid, Timestamp::now()));
                    }
                    (records, listed)
                }
                Step::Deleted(p) => {
                    self.pod_metadata.deleted(&p);
                    (self.pods.deleted(&p).into_iter().collect(), false)
                }
                Step::Listing => {
                    self.pods.relisting();
                    (Vec::new(), false)
                }
                Step::Listed => {
                    self.pods_listed = true;
                    let gone = self.pods.relisted();
                    for (uid, _) in &gone {
                        self.pod_metadata.deleted_uid(uid);
                    }
                    self.gone("pods", gone.len());
                    (gone.into_iter().map(|(_, r)| r).collect(), false)
                }
                Step::Nothing => (Vec::new(), false),
            },
            Watched::Workload(kind, item) => match self.step(*item) {
                Step::Applied(Some(w), listed) => {
                    (self.workloads.applied(w).into_iter().collect(), listed)
                }
                Step::Deleted(Some(w)) => (vec![self.workloads.deleted(w)], false),
                Step::Listing => {
                    self.workloads.relisting(kind);
                    (Vec::new(), false)
                }
                Step::Listed => {
                    self.workloads_listed = true;
                    let gone = self.workloads.relisted(kind);
                    self.gone(kind, gone.len());
                    (gone, false)
                }
                _ => (Vec::new(), false),
            },
            Watched::Node(item) => match self.step(*item) {
                Step::Applied(n, listed) => (self.nodes.applied(&n).into_iter().collect(), listed),
                Step::Deleted(n) => {
                    self.nodes.deleted(&n);
                    (Vec::new(), false)
                }
                Step::Listing => {
                    self.nodes.relisting();
                    (Vec::new(), false)
                }
                Step::Listed => {
                    let gone = self.nodes.relisted();
                    self.gone("nodes", gone);
                    (Vec::new(), false)
                }
                Step::Nothing => (Vec::new(), false),
            },
            Watched::Quota(item) => match self.step(*item) {
                Step::Applied(q, listed) => (self.quotas.applied(&q).into_iter().collect(), listed),
                Step::Deleted(q) => {
                    self.quotas.deleted(&q);
                    (Vec::new(), false)
                }
                Step::Listing => {
                    self.quotas.relisting();
                    (Vec::new(), false)
                }
                Step::Listed => {
                    let gone = self.quotas.relisted();
                    self.gone("resource quotas", gone);
                    (Vec::new(), false)
                }
                Step::Nothing => (Vec::new(), false),
            },
        };
        let m = &self.metrics;
        let counter = if is_event {
            &m.events
        } else {
            &m.object_changes
        };
        counter.fetch_add(records.len() as u64, Relaxed);
        (records, listed)
    }

    /// What a watch item asks for; the start of a (re)list and errors are counted here.
    fn step<K>(&self, item: Result<Change<K>, watcher::Error>) -> Step<K> {
        match item {
            Ok(Change::Apply(k)) => Step::Applied(k, false),
            Ok(Change::InitApply(k)) => Step::Applied(k, true),
            Ok(Change::Delete(k)) => Step::Deleted(k),
            Ok(Change::Init) => {
                self.metrics.relists.fetch_add(1, Relaxed);
                Step::Listing
            }
            Ok(Change::InitDone) => Step::Listed,
            Err(e) => {
                self.failed(&e);
                Step::Nothing
            }
        }
    }

    /// Says what a relist found deleted while no watch was there to say so.
    fn gone(&self, what: &str, count: usize) {
        if count > 0 {
            tracing::info!(
                count,
                kind = what,
                "deleted while the watch was away: found gone when listed again"
            );
        }
    }

    /// A failed watch: counted and logged; the watcher backs off and retries.
    fn failed(&self, e: &watcher::Error) {
        self.metrics.watch_errors.fetch_add(1, Relaxed);
        tracing::warn!(error = %e, "Kubernetes watch failed; retrying with backoff");
    }
}
