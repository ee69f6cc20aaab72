//! GPU snapshots: what each GPU of a node is doing (utilisation, memory, power,
//! temperature) and which pod it serves. Two sources give them: NVML on the node
//! ([`NvmlSource`]) and a dcgm-exporter's `/metrics` (read by the `scrape` source). Either
//! way a snapshot becomes one `gpu` record per GPU, and the latest per GPU stays in a
//! [`GpuTable`] for `/metrics`.

mod attribution;
mod nvml;

pub use attribution::{ContainerPods, PodRef};
pub use nvml::{NvmlMetrics, NvmlSampler, NvmlSource, NvmlStatus};

use crate::table::StateTable;
use model::{AttrValue, Attributes, Record, RecordId, RecordKind, Timestamp, names};
use std::sync::Arc;

/// One GPU at one moment.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct GpuReading {
    /// Its uuid (`GPU-…`, or `MIG-…` for a MIG device).
    pub uuid: String,
    /// Its index on the node.
    pub index: u32,
    /// Its product name.
    pub model: String,
    /// Busy, percent of the sample period a kernel ran.
    pub utilization_pct: Option<f64>,
    /// Memory bandwidth busy, percent.
    pub memory_utilization_pct: Option<f64>,
    /// Memory in use, bytes.
    pub memory_used_bytes: Option<f64>,
    /// Memory in all, bytes.
    pub memory_total_bytes: Option<f64>,
    /// Power draw, watts.
    pub power_w: Option<f64>,
    /// Temperature, °C.
    pub temperature_c: Option<f64>,
    /// The node it is in.
    pub node: Option<String>,
    /// The pod it serves, where that is known.
    pub pod: Option<PodRef>,
    /// Compute processes on it: (pid, GPU memory in bytes).
    pub processes: Vec<(u32, u64)>,
    /// `nvml` or `dcgm`.
    pub source: &'static str,
}

impl GpuReading {
    /// Its `gpu` record as of `at`.
    pub fn record(&self, at: Timestamp) -> Record {
        let mut resource = Attributes::new();
        if let Some(node) = &self.node {
            resource.insert(names::K8S_NODE_NAME, node.clone());
        }
        if let Some(pod) = &self.pod {
            resource.insert(names::K8S_NAMESPACE_NAME, pod.namespace.clone());
            resource.insert(names::K8S_POD_NAME, pod.name.clone());
            if let Some(c) = &pod.container {
                resource.insert(names::K8S_CONTAINER_NAME, c.clone());
            }
        }
        let gib = |b: Option<f64>| b.map_or("?".to_string(), |b| format!("{:.1}", b / GIB));
        let body = format!(
            "GPU {} ({}): {} busy, {}/{} GiB memory{}",
            self.index,
            self.model,
            self.utilization_pct
                .map_or("?".to_string(), |u| format!("{u:.0}%")),
            gib(self.memory_used_bytes),
            gib(self.memory_total_bytes),
            self.pod
                .as_ref()
                .map(|p| format!(", serving {}/{}", p.namespace, p.name))
                .unwrap_or_default(),
        );
        let position = u64::try_from(at.unix_nanos()).unwrap_or(0);
        let mut record = Record::log(
            RecordId::from_source(format!("gpu/{}", self.uuid).as_bytes(), position),
            at,
            Timestamp::now(),
            Arc::new(resource),
            body,
        );
        record.kind = RecordKind::Gpu;
        let a = &mut record.attributes;
        a.insert(names::GPU_UUID, self.uuid.clone());
        a.insert(names::GPU_INDEX, AttrValue::Int(i64::from(self.index)));
        a.insert(names::GPU_MODEL, self.model.clone());
        a.insert(names::GPU_SOURCE, self.source);
        for (key, value) in [
            (names::GPU_UTILIZATION_PCT, self.utilization_pct),
            (
                names::GPU_MEMORY_UTILIZATION_PCT,
                self.memory_utilization_pct,
            ),
            (names::GPU_MEMORY_USED_BYTES, self.memory_used_bytes),
            (names::GPU_MEMORY_TOTAL_BYTES, self.memory_total_bytes),
            (names::GPU_POWER_W, self.power_w),
            (names::GPU_TEMPERATURE_C, self.temperature_c),
        ] {
            if let Some(v) = value {
                // A NaN from an exporter has no JSON form: left out.
                a.insert_f64(key, v);
            }
        }
        record
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The latest reading of every GPU seen, by uuid, with when it was taken: what `/metrics`
/// shows.
pub type GpuTable = StateTable<String, (Timestamp, GpuReading)>;

/// Notes `readings` taken at `at` in `table`.
pub fn note(table: &GpuTable, at: Timestamp, readings: &[GpuReading]) {
    for r in readings {
        table.set(r.uuid.clone(), Some((at, r.clone())));
    }
}
