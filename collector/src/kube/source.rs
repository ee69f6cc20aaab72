//! Connecting to the API server and running the watches.

use super::{
    EventRecorder, PodMetadata, PodTable, PodTracker, Workload, WorkloadTable, WorkloadTracker,
    WorkloadView,
};
use crate::Shutdown;
use ::kube::runtime::WatchStreamExt;
use ::kube::runtime::watcher::{self, Event as Change};
use ::kube::{Api, Client};
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Pod};
use model::{Batch, Record};
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
}

/// Watches Events, Pods and workloads and sends what changed as records.
pub struct KubeSource {
    client: Client,
    config: KubeSourceConfig,
    metrics: Arc<KubeSourceMetrics>,
    workloads: WorkloadTracker,
    pods: PodTracker,
    pod_metadata: Arc<PodMetadata>,
}

/// One item of the merged watch streams (boxed: a pod is a couple of kilobytes).
enum Watched {
    Event(Box<Result<Change<Event>, watcher::Error>>),
    Pod(Box<Result<Change<Pod>, watcher::Error>>),
    Workload(Box<Result<Change<Option<WorkloadView>>, watcher::Error>>),
}

/// A workload watch's item as the tracker's view of it.
fn workload_item<K: Workload>(item: Result<Change<K>, watcher::Error>) -> Watched {
    Watched::Workload(Box::new(item.map(|change| match change {
        Change::Apply(k) => Change::Apply(k.view()),
        Change::InitApply(k) => Change::InitApply(k.view()),
        Change::Delete(k) => Change::Delete(k.view()),
        Change::Init => Change::Init,
        Change::InitDone => Change::InitDone,
    })))
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
            client,
            config,
            metrics: Arc::default(),
            workloads: WorkloadTracker::default(),
            pods: PodTracker::default(),
            pod_metadata: Arc::default(),
        }
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
        }
    }

    /// Watches until `shutdown` or until `out` is closed. Errors of the API server (it went
    /// away, answered 500, sent something malformed) are counted and logged, and the
    /// watcher retries with backoff: they never stop the source.
    pub async fn run(mut self, out: mpsc::Sender<Batch>, shutdown: Shutdown) {
        let events = watcher::watcher(
            Api::<Event>::all(self.client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .map(|item| Watched::Event(Box::new(item)));
        let pod_config = match &self.config.node_name {
            Some(node) => watcher::Config::default().fields(&format!("spec.nodeName={node}")),
            None => watcher::Config::default(),
        };
        let pods = watcher::watcher(Api::<Pod>::all(self.client.clone()), pod_config)
            .default_backoff()
            .map(|item| Watched::Pod(Box::new(item)));
        let deployments = watcher::watcher(
            Api::<Deployment>::all(self.client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .map(workload_item);
        let stateful_sets = watcher::watcher(
            Api::<StatefulSet>::all(self.client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .map(workload_item);
        let autoscalers = watcher::watcher(
            Api::<HorizontalPodAutoscaler>::all(self.client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .map(workload_item);
        let mut merged = std::pin::pin!(futures_util::stream::select_all([
            events.boxed(),
            pods.boxed(),
            deployments.boxed(),
            stateful_sets.boxed(),
            autoscalers.boxed(),
        ]));
        let mut recorder = EventRecorder::default();
        loop {
            let item = tokio::select! {
                _ = shutdown.triggered() => break,
                item = merged.next() => item,
            };
            let Some(item) = item else { break };
            let (records, listed) = self.records_of(item, &mut recorder);
            if records.is_empty() {
                continue;
            }
            let mut batch = Batch::new(records);
            if listed {
                // What a (re)list shows may be what an earlier run already indexed (this
                // run remembers nothing of it): the sink replaces its copy instead of
                // keeping two. Ids and timestamps come from the objects, so they match.
                batch.redelivered = batch.records.iter().map(|r| r.id).collect();
            }
            if out.send(batch).await.is_err() {
                break;
            }
        }
    }

    fn records_of(&mut self, item: Watched, recorder: &mut EventRecorder) -> (Vec<Record>, bool) {
        let m = &self.metrics;
        let (records, counter, listed) = match item {
            Watched::Event(item) => match *item {
                Ok(Change::Apply(e)) => {
                    (recorder.applied(&e).into_iter().collect(), &m.events, false)
                }
                Ok(Change::InitApply(e)) => {
                    (recorder.applied(&e).into_iter().collect(), &m.events, true)
                }
                Ok(Change::Delete(e)) => {
                    recorder.deleted(&e);
                    return (Vec::new(), false);
                }
                Ok(change) => return (self.listing(&change), false),
                Err(e) => return (self.failed(&e), false),
            },
            Watched::Pod(item) => match *item {
                Ok(Change::Apply(p)) => {
                    self.pod_metadata.update(&p);
                    (self.pods.applied(&p), &m.object_changes, false)
                }
                Ok(Change::InitApply(p)) => {
                    self.pod_metadata.update(&p);
                    (self.pods.applied(&p), &m.object_changes, true)
                }
                Ok(Change::Delete(p)) => {
                    self.pod_metadata.deleted(&p);
                    self.pods.deleted(&p);
                    return (Vec::new(), false);
                }
                Ok(change) => return (self.listing(&change), false),
                Err(e) => return (self.failed(&e), false),
            },
            Watched::Workload(item) => match *item {
                Ok(Change::Apply(Some(w))) => (
                    self.workloads.applied(w).into_iter().collect(),
                    &m.object_changes,
                    false,
                ),
                Ok(Change::InitApply(Some(w))) => (
                    self.workloads.applied(w).into_iter().collect(),
                    &m.object_changes,
                    true,
                ),
                Ok(Change::Delete(Some(w))) => {
                    self.workloads.deleted(w);
                    return (Vec::new(), false);
                }
                Ok(change) => return (self.listing(&change), false),
                Err(e) => return (self.failed(&e), false),
            },
        };
        counter.fetch_add(records.len() as u64, Relaxed);
        (records, listed)
    }

    /// The start or end of a (re)list: counted, nothing to record.
    fn listing<K>(&self, change: &Change<K>) -> Vec<Record> {
        if matches!(change, Change::Init) {
            self.metrics.relists.fetch_add(1, Relaxed);
        }
        Vec::new()
    }

    /// A failed watch: counted and logged; the watcher backs off and retries.
    fn failed(&self, e: &watcher::Error) -> Vec<Record> {
        self.metrics.watch_errors.fetch_add(1, Relaxed);
        tracing::warn!(error = %e, "Kubernetes watch failed; retrying with backoff");
        Vec::new()
    }
}
