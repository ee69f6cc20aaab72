//! Pods → `k8s_object` records when something an SRE cares about changes: the phase, a
//! container restart (with why its last run ended: `OOMKilled`, exit code 137), a container
//! starting to wait (`CrashLoopBackOff`, `ImagePullBackOff`) or running again, and the pod's
//! deletion (`k8s.pod.phase=Deleted`, so that the newest record about a pod says whether it
//! is still there).
//!
//! [`PodTracker`] keeps the last state seen per pod uid and reports only differences, so a
//! relist (after a dropped watch or 410 Expired) that resends unchanged pods reports
//! nothing. A record's id is the pod, the aspect and the object's resourceVersion, so a
//! tracker that forgot (a restart) names a resent change the same.

use super::quantity;
use super::{Object, k8s_time, object_checkpoint, object_entries, resource_version};
use crate::table::{Change, ChangeTracker, StateTable};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, ResourceRequirements};
use model::{
    AttrValue, Attributes, Checkpoint, CheckpointSet, Record, RecordKind, Severity, Timestamp,
    names,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What is known of one container: from its status, and what its spec asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerRow {
    /// How often it restarted.
    pub restarts: i32,
    /// Why it waits, if it does (`CrashLoopBackOff`).
    pub waiting: Option<String>,
    /// Resources it requests (`nvidia.com/gpu`, `cpu` in cores, `memory` in bytes).
    pub requests: BTreeMap<String, f64>,
    /// Its resource limits, in the same units.
    pub limits: BTreeMap<String, f64>,
    /// Why its last run ended (`OOMKilled`), if one did.
    pub last_terminated: Option<String>,
    /// Its last run's exit code, if one ended.
    pub last_exit_code: Option<i32>,
}

/// What is known of one pod: its phase and its containers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodStatusRow {
    /// `Running`, `Pending`, …
    pub phase: Option<String>,
    /// Its containers by name.
    pub containers: BTreeMap<String, ContainerRow>,
    /// The node it runs on, once scheduled.
    pub node: Option<String>,
}

/// The status of every pod seen, by (namespace, pod name).
pub type PodTable = StateTable<(String, String), PodStatusRow>;

impl PodStatusRow {
    fn of(pod: &Pod) -> Self {
        let status = pod.status.as_ref();
        let mut containers: BTreeMap<String, ContainerRow> = BTreeMap::new();
        for c in pod.spec.iter().flat_map(|s| &s.containers) {
            let (requests, limits) = resources(c.resources.as_ref());
            containers.insert(
                c.name.clone(),
                ContainerRow {
                    requests,
                    limits,
                    ..ContainerRow::default()
                },
            );
        }
        for c in status
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
        {
            let row = containers.entry(c.name.clone()).or_default();
            row.restarts = c.restart_count;
            row.waiting = waiting_reason(c);
            let terminated = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
            row.last_terminated = terminated.and_then(|t| t.reason.clone());
            row.last_exit_code = terminated.map(|t| t.exit_code);
        }
        PodStatusRow {
            phase: status.and_then(|s| s.phase.clone()),
            containers,
            node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        }
    }
}

/// A container's requests and limits, as numbers.
fn resources(r: Option<&ResourceRequirements>) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let numbers = |q: Option<&BTreeMap<String, _>>| {
        q.into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), quantity::value(v)?)))
            .collect()
    };
    (
        numbers(r.and_then(|r| r.requests.as_ref())),
        numbers(r.and_then(|r| r.limits.as_ref())),
    )
}

fn waiting_reason(c: &ContainerStatus) -> Option<String> {
    c.state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.clone())
}

/// What a pod's checkpoint key starts with: `pod/<namespace>/<name>/<uid>` (neither a
/// namespace nor a pod name can hold a `/`).
const CHECKPOINT_PREFIX: &str = "pod/";

/// The checkpoint key that says which pods a run watched: its position is a hash of the
/// node it was limited to (`--kube-node`), or of `*` for all. The pods one run recorded are
/// checked for deletion by the next only where both watched the same pods: else every pod
/// of the other nodes would read as deleted.
const SCOPE_KEY: &str = "pods-scope";

fn scope_hash(node: Option<&str>) -> u64 {
    xxhash_rust::xxh3::xxh3_64(node.unwrap_or("*").as_bytes())
}

/// The checkpoint that says the source named `source` watches the pods of `node` (all
/// where `None`).
pub(crate) fn scope_checkpoint(source: &str, node: Option<&str>) -> Checkpoint {
    Checkpoint {
        source: source.to_string(),
        key: SCOPE_KEY.to_string(),
        position: scope_hash(node),
        finished: false,
    }
}

/// Whether the run that left `resume` watched other pods than a run limited to `node`
/// does (a run of before this check left no scope: taken as the same).
pub(crate) fn scope_changed(source: &str, resume: &CheckpointSet, node: Option<&str>) -> bool {
    resume
        .of_source(source)
        .find(|(key, _)| *key == SCOPE_KEY)
        .is_some_and(|(_, scope)| scope != scope_hash(node))
}

/// The pods' entries of the run that left `resume`, each finished: where that run watched
/// other pods, they are let go (a pod listed again gets its entry back).
pub(crate) fn forgotten(source: &str, resume: &CheckpointSet) -> Vec<Checkpoint> {
    resume
        .of_source(source)
        .filter(|(key, _)| key.starts_with(CHECKPOINT_PREFIX))
        .map(|(key, position)| Checkpoint {
            source: source.to_string(),
            key: key.to_string(),
            position,
            finished: true,
        })
        .collect()
}

/// The checkpoint of `record` when it is a pod's, of the source named `source`: while the
/// pod exists its entry says that the index holds records of it (at the pod's
/// resourceVersion); its deletion record removes the entry. A later run reads the entries
/// back ([`PodTracker::resume`]) to tell which pods went while it was not watching, which
/// no list or watch says. `None` for other records.
pub(crate) fn checkpoint(source: &str, record: &Record) -> Option<Checkpoint> {
    if record.kind != RecordKind::K8sObject
        || record.attributes.get_str(names::K8S_OBJECT_KIND) != Some("Pod")
    {
        return None;
    }
    let uid = record.resource.get_str(names::K8S_POD_UID)?;
    let namespace = record
        .resource
        .get_str(names::K8S_NAMESPACE_NAME)
        .unwrap_or_default();
    let name = record
        .resource
        .get_str(names::K8S_POD_NAME)
        .unwrap_or_default();
    let deleted = record.attributes.get_str(names::K8S_POD_PHASE) == Some("Deleted");
    Some(object_checkpoint(
        source,
        CHECKPOINT_PREFIX,
        &[namespace, name, uid],
        record,
        deleted,
    ))
}

/// Turns watched pods into records of what changed.
#[derive(Debug, Default)]
pub struct PodTracker {
    pods: ChangeTracker<(String, String), PodStatusRow>,
}

fn key(pod: &Pod) -> (String, String) {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

impl PodTracker {
    /// Records of what changed in `pod` since it was last seen; for a pod not seen before,
    /// its phase and any container that has restarted or waits.
    pub fn applied(&mut self, pod: &Pod) -> Vec<Record> {
        let Some(uid) = pod.metadata.uid.clone() else {
            return Vec::new();
        };
        let now = PodStatusRow::of(pod);
        let before = match self.pods.applied(&uid, key(pod), now.clone()) {
            Change::Unchanged => return Vec::new(),
            Change::New => None,
            Change::From(b) => Some(b),
        };
        let before = before.as_ref();
        let mut out = Vec::new();
        let base = pod_resource(pod);
        let version = resource_version(&pod.metadata);
        let changed_at = status_time(pod);
        let name = pod.metadata.name.clone().unwrap_or_default();
        if before.map(|b| &b.phase) != Some(&now.phase)
            && let Some(phase) = &now.phase
        {
            let mut r = object_record(
                &uid,
                "phase",
                version,
                changed_at,
                base.clone(),
                format!("pod {name} is {phase}"),
            );
            r.severity = Some(match phase.as_str() {
                "Failed" | "Unknown" => Severity::Error,
                _ => Severity::Info,
            });
            r.attributes.insert(names::K8S_POD_PHASE, phase.clone());
            out.push(r);
        }
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        for c in statuses.into_iter().flatten() {
            let seen = before.and_then(|b| b.containers.get(&c.name));
            let current = &now.containers[&c.name];
            let mut resource = base.clone();
            resource.insert(names::K8S_CONTAINER_NAME, c.name.clone());
            if current.restarts > seen.map_or(0, |s| s.restarts) {
                out.push(restart_record(
                    &uid,
                    version,
                    &name,
                    c,
                    resource.clone(),
                    changed_at,
                ));
            }
            if current.waiting != seen.and_then(|s| s.waiting.clone())
                && (seen.is_some() || current.waiting.is_some())
            {
                out.push(waiting_record(
                    &uid, version, &name, c, resource, changed_at,
                ));
            }
        }
        for r in &mut out {
            if let Some(phase) = &now.phase {
                r.attributes.insert(names::K8S_POD_PHASE, phase.clone());
            }
        }
        out
    }

    /// Forgets a deleted pod; its record says it is gone.
    pub fn deleted(&mut self, pod: &Pod) -> Option<Record> {
        let uid = pod.metadata.uid.as_ref()?;
        self.pods.deleted(uid, key(pod));
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let at = pod
            .metadata
            .deletion_timestamp
            .as_ref()
            .map_or_else(Timestamp::now, |t| k8s_time(t.0));
        Some(deletion_record(
            uid,
            resource_version(&pod.metadata),
            at,
            pod_resource(pod),
            format!("pod {name} was deleted"),
        ))
    }

    /// Remembers the pods that an earlier run of the source named `source` recorded (its pods'
    /// checkpoints in `resume`), off the table: the first list then finds those
    /// deleted while nothing watched, and [`PodTracker::relisted`] records their deletion.
    /// Returns how many it remembers.
    pub fn resume(&mut self, source: &str, resume: &CheckpointSet) -> usize {
        let mut remembered = 0;
        for [namespace, name, uid] in object_entries(resume, source, CHECKPOINT_PREFIX) {
            let key = (namespace.to_string(), name.to_string());
            self.pods.remember(uid, key, PodStatusRow::default());
            remembered += 1;
        }
        remembered
    }

    /// Each pod's whole state as of `now`, as records marked [`names::K8S_OBJECT_STATE`]:
    /// one for the pod (its phase) and one per container (restarts, why it waits, how its
    /// last run ended). Change records are dated when the change happened, so a pod that
    /// has run unchanged for longer than the index keeps records would otherwise vanish
    /// from `/api/v1/pods`; these, made every hour (and with each change, so that the
    /// newest state never says less than the newest change), keep its state within reach.
    /// Pods only remembered from an earlier run (not listed yet) have no state to tell.
    pub fn state_records(&self, now: Timestamp) -> Vec<Record> {
        self.pods
            .iter()
            .flat_map(|(uid, key, row)| state_of(uid, key, row, now))
            .collect()
    }

    /// The state records of the pod `uid` as of `now` (see [`PodTracker::state_records`]).
    pub fn state_records_of(&self, uid: &str, now: Timestamp) -> Vec<Record> {
        self.pods
            .get(uid)
            .map_or_else(Vec::new, |(key, row)| state_of(uid, key, row, now))
    }

    /// A (re)list of the pods starts.
    pub fn relisting(&mut self) {
        self.pods.relisting();
    }

    /// The (re)list is complete: pods it did not give were deleted while the watch was
    /// away. Each is forgotten and gets the record of its deletion (timed now, when it was
    /// found out), with its uid.
    pub fn relisted(&mut self) -> Vec<(String, Record)> {
        self.pods
            .relisted()
            .into_iter()
            .map(|(uid, (namespace, name), _)| {
                let mut resource = Attributes::new();
                resource.insert(names::K8S_NAMESPACE_NAME, namespace);
                resource.insert(names::K8S_POD_NAME, name.clone());
                resource.insert(names::K8S_POD_UID, uid.clone());
                let r = deletion_record(
                    &uid,
                    0,
                    Timestamp::now(),
                    resource,
                    format!("pod {name} was deleted (found gone when the pods were listed again)"),
                );
                (uid, r)
            })
            .collect()
    }

    /// Pods remembered.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    /// The status table it keeps.
    pub fn table(&self) -> Arc<PodTable> {
        self.pods.table()
    }

    /// Whether no pod is remembered.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }
}

/// When the pod's status last changed, as far as the object says: the latest condition
/// transition, container start or finish, or pod start. Taken from the object rather than
/// the clock so that a record made again from the same object (a relist after a restart)
/// is the same record, which the index then keeps once.
fn status_time(pod: &Pod) -> Timestamp {
    let Some(status) = pod.status.as_ref() else {
        return pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or_else(Timestamp::now, |t| k8s_time(t.0));
    };
    let conditions = status
        .conditions
        .iter()
        .flatten()
        .filter_map(|c| c.last_transition_time.as_ref());
    let containers = status.container_statuses.iter().flatten().flat_map(|c| {
        [c.state.as_ref(), c.last_state.as_ref()]
            .into_iter()
            .flatten()
            .flat_map(|s| {
                [
                    s.running.as_ref().and_then(|r| r.started_at.as_ref()),
                    s.terminated.as_ref().and_then(|t| t.finished_at.as_ref()),
                ]
            })
            .flatten()
    });
    conditions
        .chain(containers)
        .chain(status.start_time.as_ref())
        .chain(pod.metadata.creation_timestamp.as_ref())
        .map(|t| k8s_time(t.0))
        .max()
        .unwrap_or_else(Timestamp::now)
}

/// The resource of a pod's records: its namespace, name, uid and node.
fn pod_resource(pod: &Pod) -> Attributes {
    let mut a = Attributes::new();
    if let Some(ns) = &pod.metadata.namespace {
        a.insert(names::K8S_NAMESPACE_NAME, ns.clone());
    }
    if let Some(name) = &pod.metadata.name {
        a.insert(names::K8S_POD_NAME, name.clone());
    }
    if let Some(uid) = &pod.metadata.uid {
        a.insert(names::K8S_POD_UID, uid.clone());
    }
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
        a.insert(names::K8S_NODE_NAME, node);
    }
    a
}

/// The state records of one pod (see [`PodTracker::state_records`]).
fn state_of(
    uid: &str,
    (namespace, name): &(String, String),
    row: &PodStatusRow,
    now: Timestamp,
) -> Vec<Record> {
    // A state is of its moment: each is a record of its own.
    let at = u64::try_from(now.unix_nanos()).unwrap_or_default();
    let Some(phase) = &row.phase else {
        return Vec::new();
    };
    let mut resource = Attributes::new();
    resource.insert(names::K8S_NAMESPACE_NAME, namespace.clone());
    resource.insert(names::K8S_POD_NAME, name.clone());
    resource.insert(names::K8S_POD_UID, uid.to_string());
    if let Some(node) = &row.node {
        resource.insert(names::K8S_NODE_NAME, node.clone());
    }
    let restarts: i32 = row.containers.values().map(|c| c.restarts).sum();
    let mut states = vec![object_record(
        uid,
        "state",
        at,
        now,
        resource.clone(),
        format!("pod {name} is {phase} ({restarts} restarts) now"),
    )];
    for (container, c) in &row.containers {
        let mut resource = resource.clone();
        resource.insert(names::K8S_CONTAINER_NAME, container.clone());
        // Without a waiting reason, a container runs only if its pod does (a pod not yet
        // scheduled has containers with no status at all).
        let doing = match (&c.waiting, phase.as_str()) {
            (Some(reason), _) => format!("waiting: {reason}"),
            (None, "Running") => "running".to_string(),
            (None, _) => "not waiting".to_string(),
        };
        let mut r = object_record(
            uid,
            &format!("state/{container}"),
            at,
            now,
            resource,
            format!(
                "container {container} of pod {name} is {doing} ({} restarts) now",
                c.restarts
            ),
        );
        let a = &mut r.attributes;
        a.insert(
            names::K8S_CONTAINER_RESTART_COUNT,
            AttrValue::Int(i64::from(c.restarts)),
        );
        if let Some(reason) = &c.waiting {
            a.insert(names::K8S_CONTAINER_WAITING_REASON, reason.clone());
        }
        if let Some(reason) = &c.last_terminated {
            a.insert(names::K8S_CONTAINER_LAST_TERMINATED_REASON, reason.clone());
        }
        if let Some(code) = c.last_exit_code {
            a.insert(
                names::K8S_CONTAINER_LAST_TERMINATED_EXIT_CODE,
                AttrValue::Int(i64::from(code)),
            );
        }
        states.push(r);
    }
    for r in &mut states {
        r.severity = Some(Severity::Info);
        let a = &mut r.attributes;
        a.insert(names::K8S_OBJECT_STATE, true);
        a.insert(names::K8S_OBJECT_NAME, name.clone());
        a.insert(names::K8S_POD_PHASE, phase.clone());
    }
    states
}

fn deletion_record(
    uid: &str,
    version: u64,
    at: Timestamp,
    resource: Attributes,
    body: String,
) -> Record {
    let mut r = object_record(uid, "deleted", version, at, resource, body);
    r.severity = Some(Severity::Info);
    r.attributes.insert(names::K8S_POD_PHASE, "Deleted");
    r
}

fn object_record(
    uid: &str,
    aspect: &str,
    version: u64,
    timestamp: Timestamp,
    resource: Attributes,
    body: String,
) -> Record {
    let pod = Object {
        kind: "Pod",
        uid,
        name: None,
    };
    pod.record(
        &format!("k8s-pod/{uid}/{aspect}"),
        version,
        timestamp,
        resource,
        body,
    )
}

fn restart_record(
    uid: &str,
    version: u64,
    pod: &str,
    c: &ContainerStatus,
    resource: Attributes,
    changed_at: Timestamp,
) -> Record {
    let terminated = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let reason = terminated.and_then(|t| t.reason.clone());
    let exit_code = terminated.map(|t| t.exit_code);
    let when = terminated
        .and_then(|t| t.finished_at.as_ref())
        .map_or(changed_at, |t| k8s_time(t.0));
    let mut body = format!(
        "container {} of pod {pod} restarted ({} restarts)",
        c.name, c.restart_count
    );
    match (&reason, exit_code) {
        (Some(reason), Some(code)) => body.push_str(&format!(": {reason}, exit code {code}")),
        (Some(reason), None) => body.push_str(&format!(": {reason}")),
        (None, Some(code)) => body.push_str(&format!(": exit code {code}")),
        (None, None) => {}
    }
    let mut r = object_record(
        uid,
        &format!("restart/{}", c.name),
        version,
        when,
        resource,
        body,
    );
    let a = &mut r.attributes;
    a.insert(names::K8S_OBJECT_NAME, pod.to_string());
    a.insert(
        names::K8S_CONTAINER_RESTART_COUNT,
        AttrValue::Int(i64::from(c.restart_count)),
    );
    if let Some(code) = exit_code {
        a.insert(
            names::K8S_CONTAINER_LAST_TERMINATED_EXIT_CODE,
            AttrValue::Int(i64::from(code)),
        );
    }
    r.severity = Some(match reason.as_deref() {
        Some("Completed") => Severity::Warn,
        _ => Severity::Error,
    });
    if let Some(reason) = reason {
        if reason == "OOMKilled" {
            a.insert(names::ERROR_TYPE, "oom_killed");
        }
        a.insert(names::K8S_CONTAINER_LAST_TERMINATED_REASON, reason);
    }
    r
}

fn waiting_record(
    uid: &str,
    version: u64,
    pod: &str,
    c: &ContainerStatus,
    resource: Attributes,
    changed_at: Timestamp,
) -> Record {
    let waiting = waiting_reason(c);
    let body = match &waiting {
        Some(reason) => format!("container {} of pod {pod} is waiting: {reason}", c.name),
        None => format!("container {} of pod {pod} is no longer waiting", c.name),
    };
    let mut r = object_record(
        uid,
        &format!("waiting/{}", c.name),
        version,
        changed_at,
        resource,
        body,
    );
    r.attributes.insert(names::K8S_OBJECT_NAME, pod.to_string());
    r.attributes.insert(
        names::K8S_CONTAINER_RESTART_COUNT,
        AttrValue::Int(i64::from(c.restart_count)),
    );
    r.severity = Some(match waiting.as_deref() {
        Some("CrashLoopBackOff" | "ImagePullBackOff" | "ErrImagePull" | "CreateContainerError") => {
            Severity::Warn
        }
        _ => Severity::Info,
    });
    if let Some(reason) = waiting {
        r.attributes
            .insert(names::K8S_CONTAINER_WAITING_REASON, reason);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::tests::fixture_pods;
    use std::collections::HashSet;

    #[test]
    fn a_crash_looping_pod_reports_its_oom_kill_and_back_off_once() {
        let pods = fixture_pods();
        let (healthy, crashing) = (&pods[0], &pods[1]);
        let mut tracker = PodTracker::default();
        let first = tracker.applied(healthy);
        assert_eq!(first.len(), 1, "a healthy pod: its phase only: {first:?}");
        assert_eq!(
            first[0].attributes.get_str(names::K8S_POD_PHASE),
            Some("Running")
        );
        assert!(tracker.applied(healthy).is_empty(), "resent unchanged");

        let records = tracker.applied(crashing);
        let restart = records
            .iter()
            .find(|r| r.attributes.get_str(names::ERROR_TYPE) == Some("oom_killed"))
            .unwrap_or_else(|| panic!("an OOM kill among {records:?}"));
        assert_eq!(
            restart
                .attributes
                .get_str(names::K8S_CONTAINER_LAST_TERMINATED_REASON),
            Some("OOMKilled")
        );
        assert!(restart.body.contains("OOMKilled"), "{}", restart.body);
        assert_eq!(restart.severity, Some(Severity::Error));
        assert!(
            records.iter().any(
                |r| r.attributes.get_str(names::K8S_CONTAINER_WAITING_REASON)
                    == Some("CrashLoopBackOff")
            ),
            "{records:?}"
        );
        assert!(tracker.applied(crashing).is_empty(), "a relist resends it");
        let again = PodTracker::default().applied(crashing);
        assert!(
            again.iter().any(|r| r.id == restart.id),
            "a tracker that forgot names the same change the same"
        );

        // Deleted: one record says so, and the pod is forgotten.
        let gone = tracker.deleted(healthy).expect("a record of the deletion");
        assert_eq!(
            gone.attributes.get_str(names::K8S_POD_PHASE),
            Some("Deleted")
        );
        assert_eq!(
            gone.resource_str(names::K8S_POD_NAME),
            healthy.metadata.name.as_deref()
        );
        assert_eq!(tracker.len(), 1, "only the crashing pod is remembered");
    }

    #[test]
    fn a_later_run_finds_the_pods_an_earlier_one_recorded_and_deleted_meanwhile() {
        let pods = fixture_pods();
        let (kept, gone) = (&pods[0], &pods[1]);
        let mut earlier = PodTracker::default();
        let mut stored = CheckpointSet::new();
        for r in earlier.applied(kept).iter().chain(&earlier.applied(gone)) {
            stored.update(&checkpoint("cluster", r).expect("a pod's record has one"));
        }
        assert_eq!(stored.of_source("cluster").count(), 2, "{stored:?}");

        // The later run, started from those checkpoints, sees the first list give one pod.
        let mut later = PodTracker::default();
        assert_eq!(
            later.resume("other", &stored),
            0,
            "another source's are not its"
        );
        assert_eq!(later.resume("cluster", &stored), 2);
        assert!(
            later.table().snapshot().is_empty(),
            "unseen pods are not shown"
        );
        later.relisting();
        let seen_again = later.applied(kept);
        let ids = |rs: &[Record]| rs.iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(&seen_again),
            ids(&PodTracker::default().applied(kept)),
            "a remembered pod is recorded as a new one (the index keeps one copy)"
        );
        let deleted = later.relisted();
        assert_eq!(deleted.len(), 1, "{deleted:?}");
        let (uid, record) = &deleted[0];
        assert_eq!(Some(uid.as_str()), gone.metadata.uid.as_deref());
        assert_eq!(
            record.resource_str(names::K8S_POD_NAME),
            gone.metadata.name.as_deref()
        );
        let done = checkpoint("cluster", record).expect("a deletion has one");
        assert!(done.finished, "the deletion ends the pod's entry");
        stored.update(&done);
        assert_eq!(stored.of_source("cluster").count(), 1, "{stored:?}");
        assert_eq!(later.len(), 1);
    }

    #[test]
    fn pods_of_a_run_that_watched_other_nodes_are_not_taken_for_deleted() {
        let mut stored = CheckpointSet::new();
        assert!(
            !scope_changed("cluster", &stored, Some("gpu-1")),
            "a run of before the scope was kept: as before"
        );
        // A run that watched every node, then one limited to its own (`--kube-node`): the
        // pods of the other nodes are not in its lists, and not gone either.
        stored.update(&scope_checkpoint("cluster", None));
        assert!(!scope_changed("cluster", &stored, None));
        assert!(scope_changed("cluster", &stored, Some("gpu-1")));
        stored.update(&scope_checkpoint("cluster", Some("gpu-1")));
        assert!(!scope_changed("cluster", &stored, Some("gpu-1")));
        assert!(scope_changed("cluster", &stored, Some("gpu-2")));
        assert!(
            !scope_changed("other", &stored, Some("gpu-2")),
            "another source's"
        );
        assert_eq!(
            PodTracker::default().resume("cluster", &stored),
            0,
            "no pod of it"
        );
        // The pods' entries of such a run are let go, not carried in every commit.
        let pods = fixture_pods();
        for r in PodTracker::default().applied(&pods[0]) {
            stored.update(&checkpoint("cluster", &r).expect("a pod's record has one"));
        }
        assert_eq!(
            stored.of_source("cluster").count(),
            2,
            "the pod and the scope"
        );
        for c in forgotten("cluster", &stored) {
            assert!(c.finished);
            stored.update(&c);
        }
        let left: Vec<&str> = stored.of_source("cluster").map(|(k, _)| k).collect();
        assert_eq!(left, [SCOPE_KEY]);
    }

    #[test]
    fn each_pods_whole_state_is_told_without_raising_incidents() {
        let pods = fixture_pods();
        let (healthy, crashing) = (&pods[0], &pods[1]);
        let mut tracker = PodTracker::default();
        tracker.applied(healthy);
        tracker.applied(crashing);
        // A pod only remembered from an earlier run has no state to tell yet.
        let mut remembered = CheckpointSet::new();
        remembered.update(&Checkpoint {
            source: "cluster".into(),
            key: "pod/llm/gone-0/uid-gone".into(),
            position: 1,
            finished: false,
        });
        tracker.resume("cluster", &remembered);
        let now = Timestamp::from_unix_nanos(1_795_000_000_000_000_000);
        let states = tracker.state_records(now);
        let of = |pod: &Pod| -> Vec<&Record> {
            states
                .iter()
                .filter(|r| r.resource_str(names::K8S_POD_UID) == pod.metadata.uid.as_deref())
                .collect()
        };
        let containers = |pod: &Pod| pod.spec.as_ref().map_or(0, |s| s.containers.len());
        assert_eq!(of(healthy).len(), 1 + containers(healthy));
        assert_eq!(of(crashing).len(), 1 + containers(crashing));
        assert_eq!(states.len(), of(healthy).len() + of(crashing).len());
        for r in &states {
            assert_eq!(
                r.attributes.get(names::K8S_OBJECT_STATE),
                Some(&AttrValue::Bool(true))
            );
            assert_eq!(r.timestamp, now);
            assert!(
                r.attributes.get_str(names::K8S_POD_PHASE).is_some(),
                "{r:?}"
            );
            assert_eq!(r.attributes.get(names::ERROR_TYPE), None, "not an incident");
            assert!(checkpoint("cluster", r).is_some_and(|c| !c.finished));
        }
        let container = of(crashing)
            .into_iter()
            .find(|r| r.resource_str(names::K8S_CONTAINER_NAME).is_some())
            .expect("the crashing container's state");
        let a = &container.attributes;
        assert_eq!(
            a.get_str(names::K8S_CONTAINER_WAITING_REASON),
            Some("CrashLoopBackOff")
        );
        assert_eq!(
            a.get_str(names::K8S_CONTAINER_LAST_TERMINATED_REASON),
            Some("OOMKilled")
        );
        assert_eq!(
            a.get(names::K8S_CONTAINER_LAST_TERMINATED_EXIT_CODE),
            Some(&AttrValue::Int(137))
        );
        assert!(
            matches!(a.get(names::K8S_CONTAINER_RESTART_COUNT), Some(AttrValue::Int(n)) if *n > 0)
        );
        assert!(container.resource_str(names::K8S_NODE_NAME).is_some());
        // A pod not yet scheduled: its containers have no status, and do not run.
        let mut pending = healthy.clone();
        pending.metadata.uid = Some("uid-pending".into());
        pending.metadata.name = Some("pending-0".into());
        if let Some(status) = pending.status.as_mut() {
            status.phase = Some("Pending".into());
            status.container_statuses = None;
        }
        tracker.applied(&pending);
        let bodies: Vec<String> = tracker
            .state_records_of("uid-pending", now)
            .into_iter()
            .filter(|r| r.resource_str(names::K8S_CONTAINER_NAME).is_some())
            .map(|r| r.body)
            .collect();
        assert!(
            !bodies.is_empty() && bodies.iter().all(|b| b.contains(" is not waiting (")),
            "{bodies:?}"
        );
        // A state is of its moment: one told later is a record of its own.
        let ids = |rs: &[Record]| rs.iter().map(|r| r.id).collect::<HashSet<_>>();
        let later = Timestamp::from_unix_nanos(now.unix_nanos() + 1);
        assert!(ids(&tracker.state_records(later)).is_disjoint(&ids(&states)));
        assert_eq!(ids(&states).len(), states.len());
        assert_eq!(
            ids(&tracker
                .state_records_of(crashing.metadata.uid.as_deref().unwrap_or_default(), now)),
            of(crashing).iter().map(|r| r.id).collect(),
            "one pod's alone"
        );
    }
}
