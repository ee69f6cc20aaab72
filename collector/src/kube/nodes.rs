//! Nodes → `k8s_object` records when what a node can give changes: its allocatable GPUs (a
//! GPU the device plugin finds unhealthy drops out of them), its conditions (NotReady,
//! MemoryPressure, a node-problem-detector condition), being cordoned; and a table of the
//! same for `/metrics`. Heartbeats, which rewrite a node every few minutes, change none of
//! this and so record nothing.

use super::{NVIDIA_GPU, Object, last_written, quantity, resource_version};
use crate::table::{Change, ChangeTracker, StateTable};
use k8s_openapi::api::core::v1::Node;
use model::{AttrValue, Attributes, Record, Severity, names};
use std::sync::Arc;

/// What is known of one node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeRow {
    /// GPUs it offers to pods.
    pub gpu_allocatable: f64,
    /// GPUs it has.
    pub gpu_capacity: f64,
    /// Its conditions as (type, status), by type.
    pub conditions: Vec<(String, String)>,
    /// Cordoned: no new pods are scheduled on it.
    pub unschedulable: bool,
}

impl NodeRow {
    fn of(node: &Node) -> Self {
        let status = node.status.as_ref();
        let gpus = |q: Option<&std::collections::BTreeMap<String, _>>| {
            q.and_then(|q| q.get(NVIDIA_GPU))
                .and_then(quantity::value)
                .unwrap_or(0.0)
        };
        let mut conditions: Vec<(String, String)> = status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .map(|c| (c.type_.clone(), c.status.clone()))
            .collect();
        conditions.sort();
        NodeRow {
            gpu_allocatable: gpus(status.and_then(|s| s.allocatable.as_ref())),
            gpu_capacity: gpus(status.and_then(|s| s.capacity.as_ref())),
            conditions,
            unschedulable: node
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false),
        }
    }

    /// Its Ready condition's status (`Unknown` when it has none yet).
    pub fn ready(&self) -> &str {
        self.conditions
            .iter()
            .find(|(t, _)| t == "Ready")
            .map_or("Unknown", |(_, s)| s.as_str())
    }

    /// What is wrong with it: every condition other than Ready that is True (that is how
    /// the kubelet and node-problem-detector report a problem), and being cordoned.
    pub fn problems(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .conditions
            .iter()
            .filter(|(t, s)| t != "Ready" && s == "True")
            .map(|(t, _)| t.as_str())
            .collect();
        if self.unschedulable {
            out.push("Unschedulable");
        }
        out
    }

    fn summary(&self) -> String {
        let mut parts = vec![if self.ready() == "True" {
            "Ready".to_string()
        } else {
            format!("not Ready ({})", self.ready())
        }];
        parts.extend(self.problems().iter().map(|p| p.to_string()));
        format!(
            "{}, {} GPUs allocatable of {}",
            parts.join(", "),
            self.gpu_allocatable,
            self.gpu_capacity
        )
    }
}

/// What is known of every node seen, by name.
pub type NodeTable = StateTable<String, NodeRow>;

/// Turns watched nodes into records of what changed, and keeps the table current.
#[derive(Debug, Default)]
pub struct NodeTracker(ChangeTracker<String, NodeRow>);

impl NodeTracker {
    /// The table it keeps.
    pub fn table(&self) -> Arc<NodeTable> {
        self.0.table()
    }

    /// The record of a change in `node` (or of the node itself, the first time).
    pub fn applied(&mut self, node: &Node) -> Option<Record> {
        let uid = node.metadata.uid.as_deref()?;
        let name = node.metadata.name.clone().unwrap_or_default();
        let now = NodeRow::of(node);
        let before = match self.0.applied(uid, name.clone(), now.clone()) {
            Change::Unchanged => return None,
            Change::New => None,
            Change::From(b) => Some(b),
        };
        let mut body = format!("node {name}: {}", now.summary());
        if let Some(b) = &before {
            body.push_str(&format!(" (was {})", b.summary()));
        }
        let mut resource = Attributes::new();
        resource.insert(names::K8S_NODE_NAME, name.clone());
        let object = Object {
            kind: "Node",
            uid,
            name: Some(&name),
        };
        let mut record = object.record(
            &format!("k8s-node/{uid}"),
            resource_version(&node.metadata),
            last_written(&node.metadata),
            resource,
            body,
        );
        let problems = now.problems();
        let lost_gpus = before
            .as_ref()
            .is_some_and(|b| now.gpu_allocatable < b.gpu_allocatable);
        record.severity = Some(if now.ready() != "True" {
            Severity::Error
        } else if !problems.is_empty() || lost_gpus {
            Severity::Warn
        } else {
            Severity::Info
        });
        let a = &mut record.attributes;
        a.insert(names::K8S_NODE_READY, now.ready());
        if !problems.is_empty() {
            a.insert(names::K8S_NODE_PROBLEMS, problems.join(","));
        }
        a.insert(
            names::K8S_NODE_GPU_ALLOCATABLE,
            AttrValue::Float(now.gpu_allocatable),
        );
        a.insert(
            names::K8S_NODE_GPU_CAPACITY,
            AttrValue::Float(now.gpu_capacity),
        );
        Some(record)
    }

    /// A (re)list of the nodes starts.
    pub fn relisting(&mut self) {
        self.0.relisting();
    }

    /// The (re)list is complete: nodes it did not give are forgotten; how many.
    pub fn relisted(&mut self) -> usize {
        self.0.relisted().len()
    }

    /// Forgets a deleted node (and takes it off the table).
    pub fn deleted(&mut self, node: &Node) {
        if let Some(uid) = &node.metadata.uid {
            let name = node.metadata.name.clone().unwrap_or_default();
            self.0.deleted(uid, name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(rv: &str, ready: &str, memory_pressure: &str, gpus: &str, heartbeat: &str) -> Node {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "gpu-node-3", "uid": "n-3", "resourceVersion": rv,
                "creationTimestamp": "2025-03-01T00:00:00Z"},
            "spec": {},
            "status": {
                "capacity": {"cpu": "96", "memory": "1056Gi", "nvidia.com/gpu": "8"},
                "allocatable": {"cpu": "95500m", "memory": "1040Gi", "nvidia.com/gpu": gpus},
                "conditions": [
                    {"type": "MemoryPressure", "status": memory_pressure,
                     "lastHeartbeatTime": heartbeat, "lastTransitionTime": "2025-03-01T00:00:00Z"},
                    {"type": "Ready", "status": ready,
                     "lastHeartbeatTime": heartbeat, "lastTransitionTime": "2025-03-01T00:00:00Z"}
                ]
            }
        }))
        .expect("a Node")
    }

    #[test]
    fn heartbeats_say_nothing_and_lost_gpus_pressure_and_not_ready_say_so() {
        let mut tracker = NodeTracker::default();
        let first = tracker
            .applied(&node("1", "True", "False", "8", "2025-03-04T10:00:00Z"))
            .expect("first sight");
        assert_eq!(first.severity, Some(Severity::Info), "{}", first.body);
        assert_eq!(
            first
                .attributes
                .get(names::K8S_NODE_GPU_ALLOCATABLE)
                .and_then(|v| v.as_f64()),
            Some(8.0)
        );
        assert!(
            tracker
                .applied(&node("2", "True", "False", "8", "2025-03-04T10:05:00Z"))
                .is_none(),
            "a heartbeat changes nothing that matters"
        );
        let lost = tracker
            .applied(&node("3", "True", "False", "7", "2025-03-04T10:05:00Z"))
            .expect("a GPU gone");
        assert_eq!(lost.severity, Some(Severity::Warn), "{}", lost.body);
        assert!(lost.body.contains("was Ready, 8 GPUs"), "{}", lost.body);
        let pressure = tracker
            .applied(&node("4", "True", "True", "7", "2025-03-04T10:05:00Z"))
            .expect("memory pressure");
        assert_eq!(
            pressure.attributes.get_str(names::K8S_NODE_PROBLEMS),
            Some("MemoryPressure")
        );
        let down = tracker
            .applied(&node("5", "Unknown", "True", "7", "2025-03-04T10:05:00Z"))
            .expect("the kubelet stopped reporting");
        assert_eq!(down.severity, Some(Severity::Error));
        assert_eq!(
            down.attributes.get_str(names::K8S_NODE_READY),
            Some("Unknown")
        );
        let table = tracker.table().snapshot();
        assert_eq!(table.len(), 1);
        assert_eq!(table[0].1.ready(), "Unknown");
        assert_eq!(table[0].1.gpu_capacity, 8.0);
        tracker.deleted(&node("6", "Unknown", "True", "7", "2025-03-04T10:05:00Z"));
        assert!(tracker.table().snapshot().is_empty());
    }
}
