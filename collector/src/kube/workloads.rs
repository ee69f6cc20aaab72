//! Deployments, StatefulSets and HorizontalPodAutoscalers → `k8s_object` records when their
//! replica counts change and when they are deleted (`k8s.object.deleted`), and a live table
//! of those counts (the "number of replicas" on `/metrics`): a scale-up that never became
//! ready, an HPA that wants more than it has, a Deployment someone deleted.

use super::{Object, k8s_time, last_written, object_checkpoint, object_entries, resource_version};
use crate::table::{Change, ChangeTracker, StateTable};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use model::{
    Attributes, Checkpoint, CheckpointSet, Record, RecordKind, Severity, Timestamp, names,
};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// The kinds of workload tracked.
const KINDS: [&str; 3] = [
    <Deployment as k8s_openapi::Resource>::KIND,
    <StatefulSet as k8s_openapi::Resource>::KIND,
    <HorizontalPodAutoscaler as k8s_openapi::Resource>::KIND,
];

/// What a workload's checkpoint key starts with: `workload/<kind>/<namespace>/<name>/<uid>`
/// (none of those can hold a `/`).
const CHECKPOINT_PREFIX: &str = "workload/";

/// The checkpoint of `record` when it is about a workload, of the source named `source`:
/// as for a pod ([`super::pods::checkpoint`]), while the workload exists its entry says the
/// index holds records of it; its deletion record removes the entry. A later run reads the
/// entries back ([`WorkloadTracker::resume`]) to tell which workloads went while it was not
/// watching. `None` for other records.
pub(crate) fn checkpoint(source: &str, record: &Record) -> Option<Checkpoint> {
    if record.kind != RecordKind::K8sObject {
        return None;
    }
    let kind = record.attributes.get_str(names::K8S_OBJECT_KIND)?;
    if !KINDS.contains(&kind) {
        return None;
    }
    let uid = record.attributes.get_str(names::K8S_OBJECT_UID)?;
    let name = record.attributes.get_str(names::K8S_OBJECT_NAME)?;
    let namespace = record
        .resource
        .get_str(names::K8S_NAMESPACE_NAME)
        .unwrap_or_default();
    let deleted = record.attributes.get(names::K8S_OBJECT_DELETED).is_some();
    Some(object_checkpoint(
        source,
        CHECKPOINT_PREFIX,
        &[kind, namespace, name, uid],
        record,
        deleted,
    ))
}

/// Replica counts of one workload. For an HPA: `desired` is what it asks for, `ready` what
/// its target has (`currentReplicas`), `available` its ceiling (`maxReplicas`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replicas {
    /// Wanted.
    pub desired: i64,
    /// Ready (or current, for an HPA).
    pub ready: i64,
    /// Available (or the ceiling, for an HPA).
    pub available: i64,
}

/// One workload as the tracker sees it, whatever its kind.
#[derive(Clone, Debug)]
pub struct WorkloadView {
    kind: &'static str,
    uid: String,
    namespace: String,
    name: String,
    version: u64,
    changed_at: Timestamp,
    /// When the API server marked it deleted, where it says.
    deleted_at: Option<Timestamp>,
    replicas: Replicas,
}

/// A workload kind the tracker understands: its kind and metadata are k8s-openapi's; only
/// where it keeps its replica counts is its own.
pub trait Workload: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta> {
    /// Its replica counts.
    fn replicas(&self) -> Replicas;

    /// The view the tracker keeps; `None` without a uid (which no API server sends).
    fn view(&self) -> Option<WorkloadView> {
        let meta = self.metadata();
        Some(WorkloadView {
            kind: Self::KIND,
            uid: meta.uid.clone()?,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            version: resource_version(meta),
            changed_at: last_written(meta),
            deleted_at: meta.deletion_timestamp.as_ref().map(|t| k8s_time(t.0)),
            replicas: self.replicas(),
        })
    }
}

impl WorkloadView {
    /// The view of a workload the tracker remembers, as of `at` (its version `version`):
    /// for the records of its state and of its deletion found at a relist.
    fn remembered(
        uid: &str,
        (kind, namespace, name): &WorkloadKey,
        replicas: Replicas,
        version: u64,
        at: Timestamp,
    ) -> WorkloadView {
        WorkloadView {
            kind,
            uid: uid.to_string(),
            namespace: namespace.clone(),
            name: name.clone(),
            version,
            changed_at: at,
            deleted_at: None,
            replicas,
        }
    }
}

fn count(v: Option<i32>) -> i64 {
    i64::from(v.unwrap_or(0))
}

/// Deployments and StatefulSets keep their counts in fields of the same names (k8s-openapi
/// gives them no common trait to say so).
macro_rules! spec_and_status_replicas {
    ($($kind:ty),*) => {$(
        impl Workload for $kind {
            fn replicas(&self) -> Replicas {
                let status = self.status.as_ref();
                Replicas {
                    desired: count(self.spec.as_ref().and_then(|s| s.replicas).or(Some(1))),
                    ready: count(status.and_then(|s| s.ready_replicas)),
                    available: count(status.and_then(|s| s.available_replicas)),
                }
            }
        }
    )*};
}

spec_and_status_replicas!(Deployment, StatefulSet);

impl Workload for HorizontalPodAutoscaler {
    fn replicas(&self) -> Replicas {
        let status = self.status.as_ref();
        Replicas {
            desired: count(status.map(|s| s.desired_replicas)),
            ready: count(status.and_then(|s| s.current_replicas)),
            available: count(self.spec.as_ref().map(|s| s.max_replicas)),
        }
    }
}

/// Replica counts of every workload seen, by (kind, namespace, name): what `/metrics`
/// shows.
pub type WorkloadTable = StateTable<(&'static str, String, String), Replicas>;

/// Turns watched workloads into records of replica changes, and keeps the table current.
/// One tracker per kind (each kind is its own watch, relisted on its own), one table.
#[derive(Debug, Default)]
pub struct WorkloadTracker {
    kinds: BTreeMap<&'static str, ChangeTracker<WorkloadKey, Replicas>>,
    table: Arc<WorkloadTable>,
    /// Uids known only from an earlier run's checkpoints, not listed yet: their replica
    /// counts are unknown.
    remembered: HashSet<String>,
}

/// (kind, namespace, name).
type WorkloadKey = (&'static str, String, String);

impl WorkloadTracker {
    /// The table it keeps.
    pub fn table(&self) -> Arc<WorkloadTable> {
        self.table.clone()
    }

    fn of_kind(&mut self, kind: &'static str) -> &mut ChangeTracker<WorkloadKey, Replicas> {
        self.kinds
            .entry(kind)
            .or_insert_with(|| ChangeTracker::sharing(self.table.clone()))
    }

    /// Remembers the workloads an earlier run of the source named `source` recorded (their
    /// checkpoints in `resume`), off the table: the first list of each kind then finds those
    /// deleted while nothing watched, and [`WorkloadTracker::relisted`] records their
    /// deletion. Returns how many it remembers.
    pub fn resume(&mut self, source: &str, resume: &CheckpointSet) -> usize {
        let mut remembered = 0;
        for [kind, namespace, name, uid] in object_entries(resume, source, CHECKPOINT_PREFIX) {
            let Some(kind) = KINDS.iter().copied().find(|k| *k == kind) else {
                continue;
            };
            let key = (kind, namespace.to_string(), name.to_string());
            self.of_kind(kind).remember(uid, key, Replicas::default());
            self.remembered.insert(uid.to_string());
            remembered += 1;
        }
        remembered
    }

    /// The record of a change in `w`'s replicas (or of `w` itself, the first time).
    pub fn applied(&mut self, w: WorkloadView) -> Option<Record> {
        self.remembered.remove(&w.uid);
        let key = (w.kind, w.namespace.clone(), w.name.clone());
        match self.of_kind(w.kind).applied(&w.uid, key, w.replicas) {
            Change::Unchanged => None,
            Change::New => Some(record(&w, None, "k8s-workload")),
            Change::From(before) => Some(record(&w, Some(before), "k8s-workload")),
        }
    }

    /// Forgets a deleted workload (and takes it off the table); the record of its deletion,
    /// dated when the API server marked it deleted (else now).
    pub fn deleted(&mut self, w: WorkloadView) -> Record {
        let key = (w.kind, w.namespace.clone(), w.name.clone());
        self.of_kind(w.kind).deleted(&w.uid, key);
        self.remembered.remove(&w.uid);
        let at = w.deleted_at.unwrap_or_else(Timestamp::now);
        deletion_record(&w, at, "was deleted", Some(w.replicas))
    }

    /// A (re)list of the workloads of `kind` starts.
    pub fn relisting(&mut self, kind: &'static str) {
        self.of_kind(kind).relisting();
    }

    /// The (re)list of `kind` is complete: its workloads it did not give were deleted while
    /// no watch was there to say so. They are forgotten, each with the record of its
    /// deletion, dated now (when it was found out).
    pub fn relisted(&mut self, kind: &'static str) -> Vec<Record> {
        let gone = self.of_kind(kind).relisted();
        gone.into_iter()
            .map(|(uid, key, replicas)| {
                let w = WorkloadView::remembered(&uid, &key, replicas, 0, Timestamp::now());
                // Known from an earlier run only: no counts it ever saw.
                let (how, had) = match self.remembered.remove(&uid) {
                    true => ("was deleted while Infersight was not watching (found gone when they were listed)", None),
                    false => ("was deleted (found gone when they were listed again)", Some(replicas)),
                };
                deletion_record(&w, w.changed_at, how, had)
            })
            .collect()
    }
}

/// How long one workload state record stands for (see [`WorkloadTracker::state_records`]).
const STATE_PERIOD_NS: i64 = 3600 * 1_000_000_000;

impl WorkloadTracker {
    /// Each workload's replica counts as of `now`, as records marked
    /// [`names::K8S_OBJECT_STATE`]: change records are dated when the change happened, so
    /// a Deployment unchanged for longer than the index keeps records would otherwise leave
    /// no trace. Every node agent watches the workloads and sends these, so each is dated at
    /// the start of `now`'s hour and has an id of its workload and that hour: the copies of
    /// one hour match and the index keeps one (the last), and a change within the hour is
    /// always newer than the hour's state.
    pub fn state_records(&self, now: Timestamp) -> Vec<Record> {
        let hour = now.unix_nanos().div_euclid(STATE_PERIOD_NS);
        let at = Timestamp::from_unix_nanos(hour * STATE_PERIOD_NS);
        self.kinds
            .values()
            .flat_map(|tracker| tracker.iter())
            // Known from an earlier run only: no counts to tell yet.
            .filter(|(uid, _, _)| !self.remembered.contains(*uid))
            .map(|(uid, key, replicas)| {
                let version = u64::try_from(hour).unwrap_or(0);
                let w = WorkloadView::remembered(uid, key, *replicas, version, at);
                let mut r = record(&w, None, "k8s-workload-state");
                r.attributes.insert(names::K8S_OBJECT_STATE, true);
                // A state repeats what a change said: the change is the warning.
                r.severity = Some(Severity::Info);
                r
            })
            .collect()
    }
}

/// The record that `w` is gone, with the replica counts it last `had` where known.
fn deletion_record(w: &WorkloadView, at: Timestamp, how: &str, had: Option<Replicas>) -> Record {
    let had = had.map_or_else(String::new, |r| {
        format!(" (had {} desired, {} ready)", r.desired, r.ready)
    });
    let mut record = about(
        w,
        &format!("k8s-workload/{}/deleted", w.uid),
        at,
        format!("{} {} {how}{had}", w.kind.to_lowercase(), w.name),
    );
    record.severity = Some(Severity::Info);
    record.attributes.insert(names::K8S_OBJECT_DELETED, true);
    record
}

/// A `k8s_object` record about `w` (its namespace, kind, name and uid), of `w`'s version.
fn about(w: &WorkloadView, source: &str, at: Timestamp, body: String) -> Record {
    let mut resource = Attributes::new();
    resource.insert(names::K8S_NAMESPACE_NAME, w.namespace.clone());
    let object = Object {
        kind: w.kind,
        uid: &w.uid,
        name: Some(&w.name),
    };
    object.record(source, w.version, at, resource, body)
}

/// The record of `w`'s replica counts (`before` them, on a change), with an id of `kind`
/// (`k8s-workload`, `k8s-workload-state`), its uid and its version.
fn record(w: &WorkloadView, before: Option<Replicas>, kind: &str) -> Record {
    let r = w.replicas;
    let mut body = match w.kind {
        "HorizontalPodAutoscaler" => format!(
            "autoscaler {}: wants {} replicas, has {} (at most {})",
            w.name, r.desired, r.ready, r.available
        ),
        kind => format!(
            "{} {}: {} desired, {} ready, {} available",
            kind.to_lowercase(),
            w.name,
            r.desired,
            r.ready,
            r.available
        ),
    };
    if let Some(b) = before {
        body.push_str(&format!(" (was {} desired, {} ready)", b.desired, b.ready));
    }
    let mut record = about(w, &format!("{kind}/{}", w.uid), w.changed_at, body);
    // Fewer ready than wanted is how a failed rollout or a pod that cannot be scheduled
    // shows at the workload (and, for an autoscaler, a scale-up not yet served).
    record.severity = Some(if r.ready < r.desired {
        Severity::Warn
    } else {
        Severity::Info
    });
    let a = &mut record.attributes;
    a.insert(names::K8S_REPLICAS_DESIRED, r.desired);
    a.insert(names::K8S_REPLICAS_READY, r.ready);
    a.insert(names::K8S_REPLICAS_AVAILABLE, r.available);
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(rv: &str, desired: i32, ready: i32) -> Deployment {
        named_deployment("vllm-mistral-7b", "d-1", rv, desired, ready)
    }

    fn named_deployment(name: &str, uid: &str, rv: &str, desired: i32, ready: i32) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "llm-serving",
                "uid": uid, "resourceVersion": rv,
                "creationTimestamp": "2025-03-04T09:00:00Z",
                "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                    "subresource": "status", "time": format!("2025-03-04T10:0{rv}:00Z")}]},
            "spec": {"replicas": desired, "selector": {}, "template": {}},
            "status": {"readyReplicas": ready, "availableReplicas": ready}
        }))
        .expect("a Deployment")
    }

    #[test]
    fn replica_changes_are_records_and_the_table_follows() {
        let mut tracker = WorkloadTracker::default();
        let first = tracker
            .applied(deployment("1", 2, 2).view().unwrap())
            .expect("first sight");
        assert_eq!(first.severity, Some(Severity::Info));
        assert!(
            tracker
                .applied(deployment("1", 2, 2).view().unwrap())
                .is_none(),
            "a relist resends it"
        );
        let scaled = tracker
            .applied(deployment("2", 4, 2).view().unwrap())
            .expect("a scale-up");
        assert_eq!(scaled.severity, Some(Severity::Warn), "{}", scaled.body);
        assert!(scaled.body.contains("was 2 desired"), "{}", scaled.body);
        assert_eq!(
            scaled
                .attributes
                .get(names::K8S_REPLICAS_DESIRED)
                .and_then(|v| v.as_f64()),
            Some(4.0)
        );
        assert_eq!(
            scaled.timestamp,
            Timestamp::parse_rfc3339("2025-03-04T10:02:00Z").unwrap()
        );
        let table = tracker.table().snapshot();
        assert_eq!(table.len(), 1);
        assert_eq!(
            table[0].1,
            Replicas {
                desired: 4,
                ready: 2,
                available: 2
            }
        );
        let gone = tracker.deleted(deployment("3", 4, 2).view().unwrap());
        assert!(tracker.table().snapshot().is_empty());
        // Its deletion is a record too: search finds when it went and what it had.
        assert_eq!(
            gone.attributes.get(names::K8S_OBJECT_DELETED),
            Some(&model::AttrValue::Bool(true))
        );
        assert_eq!(
            gone.attributes.get_str(names::K8S_OBJECT_NAME),
            Some("vllm-mistral-7b")
        );
        assert_eq!(
            gone.body,
            "deployment vllm-mistral-7b was deleted (had 4 desired, 2 ready)"
        );
        assert_ne!(gone.id, scaled.id);
    }

    #[test]
    fn a_workload_deleted_while_nothing_watched_is_found_gone_by_the_next_runs_list() {
        // The first run records two Deployments; their checkpoints are committed.
        let mut first = WorkloadTracker::default();
        let mut stored = CheckpointSet::default();
        for d in [
            named_deployment("llama", "d-1", "1", 2, 2),
            named_deployment("mistral", "d-2", "1", 3, 1),
        ] {
            let r = first.applied(d.view().unwrap()).expect("first sight");
            stored.update(&checkpoint("cluster", &r).expect("a workload's record has one"));
        }
        // The next run remembers both, tells no state of them before they are listed, and
        // its list gives only one.
        let mut next = WorkloadTracker::default();
        assert_eq!(next.resume("cluster", &stored), 2);
        assert_eq!(next.resume("another-source", &stored), 0);
        assert!(
            next.state_records(Timestamp::now()).is_empty(),
            "no counts to tell"
        );
        assert!(
            next.table().snapshot().is_empty(),
            "off the table until listed"
        );
        next.relisting("Deployment");
        next.applied(named_deployment("llama", "d-1", "1", 2, 2).view().unwrap());
        let gone = next.relisted("Deployment");
        assert_eq!(gone.len(), 1);
        assert_eq!(
            gone[0].body,
            "deployment mistral was deleted while Infersight was not watching (found gone when they were listed)",
            "no counts it never saw"
        );
        // Its deletion takes its entry out of the checkpoints.
        let done = checkpoint("cluster", &gone[0]).expect("a deletion has one");
        assert!(done.finished);
        assert_eq!(done.key, "workload/Deployment/llm-serving/mistral/d-2");
        assert_eq!(next.state_records(Timestamp::now()).len(), 1, "llama's");
    }

    #[test]
    fn each_hour_every_workload_has_one_state_whichever_agent_sends_it() {
        let (mut a, mut b) = (WorkloadTracker::default(), WorkloadTracker::default());
        for tracker in [&mut a, &mut b] {
            tracker.applied(deployment("1", 3, 2).view().unwrap());
        }
        let at = |t: &str| Timestamp::parse_rfc3339(t).unwrap();
        let (early, late) = (
            a.state_records(at("2025-03-05T10:05:00Z")),
            b.state_records(at("2025-03-05T10:55:00Z")),
        );
        assert_eq!(early.len(), 1);
        let (s, t) = (&early[0], &late[0]);
        // Two agents in one hour: one record for the index to keep.
        assert_eq!((s.id, s.timestamp), (t.id, t.timestamp));
        assert_eq!(s.timestamp, at("2025-03-05T10:00:00Z"));
        assert_eq!(
            s.attributes.get(names::K8S_OBJECT_STATE),
            Some(&model::AttrValue::Bool(true))
        );
        assert_eq!(
            s.attributes
                .get(names::K8S_REPLICAS_READY)
                .and_then(|v| v.as_f64()),
            Some(2.0)
        );
        assert_eq!(
            s.severity,
            Some(Severity::Info),
            "the change was the warning"
        );
        let next_hour = a.state_records(at("2025-03-05T11:00:00Z"));
        assert_ne!(next_hour[0].id, s.id);
        a.deleted(deployment("2", 3, 2).view().unwrap());
        assert!(a.state_records(at("2025-03-05T11:00:00Z")).is_empty());
    }

    #[test]
    fn a_workload_a_relist_no_longer_gives_is_recorded_as_deleted() {
        let mut tracker = WorkloadTracker::default();
        tracker.applied(deployment("1", 2, 2).view().unwrap());
        tracker.relisting("Deployment");
        let gone = tracker.relisted("Deployment");
        assert_eq!(gone.len(), 1);
        assert!(
            gone[0]
                .body
                .starts_with("deployment vllm-mistral-7b was deleted (found gone"),
            "{}",
            gone[0].body
        );
        assert_eq!(
            gone[0].attributes.get(names::K8S_OBJECT_DELETED),
            Some(&model::AttrValue::Bool(true))
        );
        assert!(tracker.table().snapshot().is_empty());
        tracker.relisting("Deployment");
        assert!(tracker.relisted("Deployment").is_empty(), "once");
    }
}
