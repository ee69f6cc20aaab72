//! ResourceQuotas → `k8s_object` records when a namespace's hard limits or its use change
//! (a pod that cannot start because `requests.nvidia.com/gpu` is used up shows here before
//! anywhere else), and a table of hard and used per resource for `/metrics`.

use super::{NVIDIA_GPU, Object, last_written, quantity, resource_version};
use crate::table::{Change, ChangeTracker, StateTable};
use k8s_openapi::api::core::v1::ResourceQuota;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use model::{AttrValue, Attributes, Record, Severity, names};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One resource of a quota: its limit and its use, as numbers (cores, bytes, counts) and
/// as the API server wrote them (`64Gi`), for people.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuotaUse {
    /// The limit.
    pub hard: f64,
    /// What is used of it.
    pub used: f64,
    /// Both as written: `48Gi/64Gi`.
    pub text: String,
}

impl QuotaUse {
    /// Whether nothing more of it can be had (a zero limit, a deliberate ban, is not
    /// counted: it never was available).
    pub fn exhausted(&self) -> bool {
        self.hard > 0.0 && self.used >= self.hard
    }
}

/// A quota's resources by name (`requests.nvidia.com/gpu`, `limits.memory`, `pods`).
pub type QuotaRow = BTreeMap<String, QuotaUse>;

/// Every quota seen, by (namespace, name).
pub type QuotaTable = StateTable<(String, String), QuotaRow>;

fn row_of(quota: &ResourceQuota) -> QuotaRow {
    let status = quota.status.as_ref();
    let empty = BTreeMap::new();
    let hard = status.and_then(|s| s.hard.as_ref()).unwrap_or(&empty);
    let used = status.and_then(|s| s.used.as_ref()).unwrap_or(&empty);
    hard.iter()
        .filter_map(|(resource, h)| {
            let zero = Quantity("0".into());
            let u = used.get(resource).unwrap_or(&zero);
            Some((
                resource.clone(),
                QuotaUse {
                    hard: quantity::value(h)?,
                    used: quantity::value(u)?,
                    text: format!("{}/{}", u.0, h.0),
                },
            ))
        })
        .collect()
}

/// Turns watched quotas into records of what changed, and keeps the table current.
#[derive(Debug, Default)]
pub struct QuotaTracker(ChangeTracker<(String, String), QuotaRow>);

impl QuotaTracker {
    /// The table it keeps.
    pub fn table(&self) -> Arc<QuotaTable> {
        self.0.table()
    }

    /// The record of a change in `quota` (or of the quota itself, the first time).
    pub fn applied(&mut self, quota: &ResourceQuota) -> Option<Record> {
        let meta = &quota.metadata;
        let uid = meta.uid.as_deref()?;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let now = row_of(quota);
        if let Change::Unchanged =
            self.0
                .applied(uid, (namespace.clone(), name.clone()), now.clone())
        {
            return None;
        }
        let exhausted: Vec<&str> = now
            .iter()
            .filter(|(_, u)| u.exhausted())
            .map(|(r, _)| r.as_str())
            .collect();
        let figures: Vec<String> = now.iter().map(|(r, u)| format!("{r} {}", u.text)).collect();
        let mut body = format!("quota {name} in {namespace}: {} used", figures.join(", "));
        if !exhausted.is_empty() {
            body.push_str(&format!("; used up: {}", exhausted.join(", ")));
        }
        let mut resource = Attributes::new();
        resource.insert(names::K8S_NAMESPACE_NAME, namespace);
        let object = Object {
            kind: "ResourceQuota",
            uid,
            name: Some(&name),
        };
        let mut record = object.record(
            &format!("k8s-quota/{uid}"),
            resource_version(meta),
            last_written(meta),
            resource,
            body,
        );
        record.severity = Some(if exhausted.is_empty() {
            Severity::Info
        } else {
            Severity::Warn
        });
        let a = &mut record.attributes;
        if let Some(gpu) = now.get(&format!("requests.{NVIDIA_GPU}")) {
            a.insert(names::K8S_QUOTA_GPU_HARD, AttrValue::Float(gpu.hard));
            a.insert(names::K8S_QUOTA_GPU_USED, AttrValue::Float(gpu.used));
        }
        if !exhausted.is_empty() {
            a.insert(names::K8S_QUOTA_EXHAUSTED, exhausted.join(","));
        }
        Some(record)
    }

    /// A (re)list of the quotas starts.
    pub fn relisting(&mut self) {
        self.0.relisting();
    }

    /// The (re)list is complete: quotas it did not give are forgotten; how many.
    pub fn relisted(&mut self) -> usize {
        self.0.relisted().len()
    }

    /// Forgets a deleted quota (and takes it off the table).
    pub fn deleted(&mut self, quota: &ResourceQuota) {
        if let Some(uid) = &quota.metadata.uid {
            let key = (
                quota.metadata.namespace.clone().unwrap_or_default(),
                quota.metadata.name.clone().unwrap_or_default(),
            );
            self.0.deleted(uid, key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quota(rv: &str, gpus_used: &str) -> ResourceQuota {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "gpu-quota", "namespace": "llm-serving", "uid": "q-1",
                "resourceVersion": rv, "creationTimestamp": "2025-03-01T00:00:00Z"},
            "spec": {"hard": {"requests.nvidia.com/gpu": "8", "limits.memory": "1Ti"}},
            "status": {
                "hard": {"requests.nvidia.com/gpu": "8", "limits.memory": "1Ti"},
                "used": {"requests.nvidia.com/gpu": gpus_used, "limits.memory": "384Gi"}
            }
        }))
        .expect("a ResourceQuota")
    }

    #[test]
    fn a_used_up_gpu_quota_is_a_warning_with_its_figures() {
        let mut tracker = QuotaTracker::default();
        let first = tracker.applied(&quota("1", "6")).expect("first sight");
        assert_eq!(first.severity, Some(Severity::Info), "{}", first.body);
        assert!(
            first.body.contains("requests.nvidia.com/gpu 6/8"),
            "{}",
            first.body
        );
        assert!(tracker.applied(&quota("2", "6")).is_none(), "unchanged");
        let full = tracker.applied(&quota("3", "8")).expect("used up");
        assert_eq!(full.severity, Some(Severity::Warn));
        assert_eq!(
            full.attributes.get_str(names::K8S_QUOTA_EXHAUSTED),
            Some("requests.nvidia.com/gpu")
        );
        assert_eq!(
            full.attributes
                .get(names::K8S_QUOTA_GPU_USED)
                .and_then(|v| v.as_f64()),
            Some(8.0)
        );
        let table = tracker.table().snapshot();
        let memory = &table[0].1["limits.memory"];
        assert_eq!(memory.used, 384.0 * 1024f64.powi(3));
        assert_eq!(memory.hard, 1024f64.powi(4));
        tracker.deleted(&quota("4", "8"));
        assert!(tracker.table().snapshot().is_empty());
    }
}
