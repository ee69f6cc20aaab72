//! The Kubernetes source: watches the API server with `kube`'s watcher (list, then watch
//! from the list's resourceVersion, relist on 410 Expired, back off on errors) and turns
//! what it sees into records: `k8s_event` for Events ([`EventRecorder`]), `k8s_object` for
//! pod changes ([`PodTracker`]), workload replica changes ([`WorkloadTracker`]), node
//! GPUs and conditions ([`NodeTracker`]) and quota use ([`QuotaTracker`]); each tracker
//! also keeps the table of current state that `/metrics` shows.
//!
//! Never reads meaning into an event's message: reason, type and the object it is about
//! say what happened; the message is the record's body, for people.

mod events;
mod metadata;
mod nodes;
mod pods;
mod quantity;
mod quotas;
mod source;
mod workloads;

pub use events::EventRecorder;
pub use metadata::{AnnotatedEndpoint, DELETED_POD_GRACE, PodMetadata};
pub use nodes::{NodeRow, NodeTable, NodeTracker};
pub use pods::{ContainerRow, PodStatusRow, PodTable, PodTracker};
pub use quotas::{QuotaRow, QuotaTable, QuotaTracker, QuotaUse};
pub use source::{
    KubeError, KubeSource, KubeSourceConfig, KubeSourceMetrics, KubeState, WATCHED_RESOURCES,
};
pub use workloads::{Replicas, Workload, WorkloadTable, WorkloadTracker, WorkloadView};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use model::{
    Attributes, Checkpoint, CheckpointSet, Record, RecordId, RecordKind, Timestamp, names,
};
use std::sync::Arc;

/// The checkpoint entry that says the index holds records of one object (a pod, a
/// workload), at `record`'s version: `<prefix><part>/<part>/…`, where no part can hold a
/// `/`. The object's deletion `finished` it. A later run reads the entries back
/// ([`object_entries`]) to tell which objects went while it was not watching, which no
/// list or watch says.
fn object_checkpoint(
    source: &str,
    prefix: &str,
    parts: &[&str],
    record: &Record,
    finished: bool,
) -> Checkpoint {
    Checkpoint {
        source: source.to_string(),
        key: format!("{prefix}{}", parts.join("/")),
        position: record.id.position(),
        finished,
    }
}

/// The parts of the entries [`object_checkpoint`] made under `prefix` for the source named
/// `source`; entries of another shape are passed over.
fn object_entries<'a, const N: usize>(
    resume: &'a CheckpointSet,
    source: &'a str,
    prefix: &'a str,
) -> impl Iterator<Item = [&'a str; N]> + 'a {
    resume.of_source(source).filter_map(move |(key, _)| {
        let parts: Vec<&str> = key.strip_prefix(prefix)?.splitn(N, '/').collect();
        parts.try_into().ok()
    })
}

/// The extended resource NVIDIA's device plugin offers GPUs as.
const NVIDIA_GPU: &str = "nvidia.com/gpu";

/// A Kubernetes timestamp as ours (ns since the epoch, saturating far outside ±292 years).
fn k8s_time(t: k8s_openapi::jiff::Timestamp) -> Timestamp {
    let nanos = t.as_nanosecond();
    Timestamp::from_unix_nanos(nanos.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// When the object was last written, as far as it says (its managed fields' times, else
/// its creation): taken from the object so that a record made again from the same version
/// (a relist after a restart) is the same record.
fn last_written(meta: &ObjectMeta) -> Timestamp {
    meta.managed_fields
        .iter()
        .flatten()
        .filter_map(|f| f.time.as_ref())
        .chain(meta.creation_timestamp.as_ref())
        .map(|t| k8s_time(t.0))
        .max()
        .unwrap_or_else(Timestamp::now)
}

/// The object's resourceVersion as a number, which tells one version's records from
/// another's: etcd revisions are numbers; anything else (the API promises nothing) is
/// hashed, which still tells versions apart.
fn resource_version(meta: &ObjectMeta) -> u64 {
    let rv = meta.resource_version.as_deref().unwrap_or("");
    rv.parse()
        .unwrap_or_else(|_| xxhash_rust::xxh3::xxh3_64(rv.as_bytes()))
}

/// What a `k8s_object` record is about.
struct Object<'a> {
    /// `Pod`, `Deployment`, `Node`, …
    kind: &'static str,
    uid: &'a str,
    /// Left out where the resource names it already (a pod's).
    name: Option<&'a str>,
}

impl Object<'_> {
    /// A `k8s_object` record about it. `source` and `version` make its id, so a change
    /// recorded again from the same object version (a relist after a restart) is the same
    /// record.
    fn record(
        &self,
        source: &str,
        version: u64,
        at: Timestamp,
        resource: Attributes,
        body: String,
    ) -> Record {
        let mut r = Record::log(
            RecordId::from_source(source.as_bytes(), version),
            at,
            Timestamp::now(),
            Arc::new(resource),
            body,
        );
        r.kind = RecordKind::K8sObject;
        let a = &mut r.attributes;
        a.insert(names::K8S_OBJECT_KIND, self.kind);
        if let Some(name) = self.name {
            a.insert(names::K8S_OBJECT_NAME, name.to_string());
        }
        a.insert(names::K8S_OBJECT_UID, self.uid.to_string());
        r
    }
}

/// The resource of a record about the object `o` refers to: its namespace, and its name as
/// a pod's or a node's.
fn object_ref_resource(o: &ObjectReference) -> Attributes {
    let mut a = Attributes::new();
    if let Some(ns) = &o.namespace {
        a.insert(names::K8S_NAMESPACE_NAME, ns.clone());
    }
    match (o.kind.as_deref(), &o.name) {
        (Some("Pod"), Some(name)) => {
            a.insert(names::K8S_POD_NAME, name.clone());
            if let Some(uid) = &o.uid {
                a.insert(names::K8S_POD_UID, uid.clone());
            }
        }
        (Some("Node"), Some(name)) => {
            a.insert(names::K8S_NODE_NAME, name.clone());
        }
        _ => {}
    }
    a
}

#[cfg(test)]
pub(crate) mod tests {
    use k8s_openapi::api::core::v1::{Event, Pod};

    fn fixture(name: &str) -> Vec<serde_json::Value> {
        let path = format!(
            "{}/../../shared/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The fixture's core/v1 events (the events.k8s.io/v1 one is left out).
    pub(crate) fn fixture_events() -> Vec<Event> {
        fixture("k8s-events.json")
            .into_iter()
            .filter(|v| v["apiVersion"] == "v1")
            .map(|v| serde_json::from_value(v).expect("a core/v1 Event"))
            .collect()
    }

    /// The fixture's pods: a healthy vLLM pod, then one in CrashLoopBackOff after OOMKilled.
    pub(crate) fn fixture_pods() -> Vec<Pod> {
        fixture("k8s-pods.json")
            .into_iter()
            .map(|v| serde_json::from_value(v).expect("a Pod"))
            .collect()
    }
}
