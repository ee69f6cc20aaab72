//! GPU snapshots from NVML, the driver's own library (what `nvidia-smi` reads). NVML is
//! loaded at run time: where the driver library or a GPU is missing, the source says so
//! once (a log line, its status, a metric) and stops, and the rest of the pipeline runs on.
//! Calls block (tens of milliseconds per device when persistence mode is off), so sampling
//! runs on its own thread, never on the async runtime.

use super::{ContainerPods, GpuReading, GpuTable, note};
use crate::Shutdown;
use model::{Batch, Timestamp};
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::{Device, Nvml};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Whether NVML can be used here.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NvmlStatus {
    /// Not tried yet.
    Starting,
    /// Loaded, with this many GPUs.
    Available {
        /// GPUs found.
        gpus: u32,
    },
    /// No driver library, no GPU, or no permission: why.
    Unavailable {
        /// NVML's own words.
        reason: String,
    },
}

/// What the NVML source did, for `/metrics` and the status endpoint.
#[derive(Debug, Default)]
pub struct NvmlMetrics {
    /// Snapshots taken.
    pub snapshots: AtomicU64,
    /// Devices that failed to answer a sample (the last good reading is kept).
    pub device_errors: AtomicU64,
    status: Mutex<Option<NvmlStatus>>,
}

impl NvmlMetrics {
    /// Whether NVML is available, unavailable (and why), or not tried yet.
    pub fn status(&self) -> NvmlStatus {
        let status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.clone().unwrap_or(NvmlStatus::Starting)
    }

    fn set_status(&self, s: NvmlStatus) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
    }
}

/// NVML, initialised once, and what is needed to read every GPU of the node.
pub struct NvmlSampler {
    nvml: Nvml,
    pods: ContainerPods,
}

impl NvmlSampler {
    /// Loads NVML; the error says why it cannot be used here.
    pub fn init(pods: ContainerPods) -> Result<Self, String> {
        let nvml = Nvml::init().map_err(|e| e.to_string())?;
        Ok(NvmlSampler { nvml, pods })
    }

    /// GPUs NVML sees.
    pub fn device_count(&self) -> Result<u32, String> {
        self.nvml.device_count().map_err(|e| e.to_string())
    }

    /// A reading of every GPU (and MIG device), and how many devices failed to answer.
    pub fn sample(&self) -> (Vec<GpuReading>, u64) {
        let mut readings = Vec::new();
        let mut failed = 0;
        let count = self.nvml.device_count().unwrap_or(0);
        for index in 0..count {
            let Ok(device) = self.nvml.device_by_index(index) else {
                failed += 1;
                continue;
            };
            match read(&device, index) {
                Some(r) => readings.push(r),
                None => {
                    failed += 1;
                    continue;
                }
            }
            // MIG: each instance is its own device to the pods that get one.
            if device.mig_mode().is_ok_and(|m| m.current == 1) {
                let slots = device.mig_device_count().unwrap_or(0);
                for slot in 0..slots {
                    if let Ok(mig) = device.mig_device_by_index(slot)
                        && let Some(r) = read(&mig, index)
                    {
                        readings.push(r);
                    }
                }
            }
        }
        let pids: Vec<u32> = readings
            .iter()
            .flat_map(|r| r.processes.iter().map(|p| p.0))
            .collect();
        let pods = self.pods.pods_of(&pids);
        for r in &mut readings {
            // A GPU shared by pods is attributed to the one using most of its memory.
            r.pod = r
                .processes
                .iter()
                .filter_map(|(pid, used)| Some((used, pods.get(pid)?)))
                .max_by_key(|(used, _)| **used)
                .map(|(_, pod)| pod.clone());
        }
        (readings, failed)
    }
}

/// One device's reading; `None` where it cannot even say who it is (fallen off the bus).
fn read(device: &Device, index: u32) -> Option<GpuReading> {
    let uuid = device.uuid().ok()?;
    let memory = device.memory_info().ok();
    let utilization = device.utilization_rates().ok();
    let processes = device
        .running_compute_processes()
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let used = match p.used_gpu_memory {
                UsedGpuMemory::Used(b) => b,
                UsedGpuMemory::Unavailable => 0,
            };
            (p.pid, used)
        })
        .collect();
    Some(GpuReading {
        uuid,
        index,
        model: device.name().unwrap_or_default(),
        utilization_pct: utilization.as_ref().map(|u| f64::from(u.gpu)),
        memory_utilization_pct: utilization.as_ref().map(|u| f64::from(u.memory)),
        memory_used_bytes: memory.as_ref().map(|m| m.used as f64),
        memory_total_bytes: memory.as_ref().map(|m| m.total as f64),
        // NVML reports milliwatts.
        power_w: device.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
        temperature_c: device
            .temperature(TemperatureSensor::Gpu)
            .ok()
            .map(f64::from),
        node: None,
        pod: None,
        processes,
        source: "nvml",
    })
}

/// Samples every GPU of the node at an interval and sends one `gpu` record per GPU.
pub struct NvmlSource {
    interval: Duration,
    node: Option<String>,
    pods: ContainerPods,
    metrics: Arc<NvmlMetrics>,
    table: Arc<GpuTable>,
}

impl NvmlSource {
    /// Samples every `interval`; records name `node` (the node agent's own).
    pub fn new(interval: Duration, node: Option<String>, pods: ContainerPods) -> Self {
        NvmlSource {
            interval,
            node,
            pods,
            metrics: Arc::default(),
            table: Arc::default(),
        }
    }

    /// Its counters and status.
    pub fn metrics(&self) -> Arc<NvmlMetrics> {
        self.metrics.clone()
    }

    /// The latest reading of each GPU.
    pub fn table(&self) -> Arc<GpuTable> {
        self.table.clone()
    }

    /// Samples until `shutdown` or until `out` is closed. Blocks: run it on its own thread.
    pub fn run(self, out: mpsc::Sender<Batch>, shutdown: Shutdown) {
        let sampler = match NvmlSampler::init(self.pods.clone()) {
            Ok(s) => s,
            Err(reason) => {
                tracing::warn!(
                    %reason,
                    "NVML is unavailable: no GPU snapshots from this node's driver (a dcgm-exporter scrape can still give them)"
                );
                self.metrics.set_status(NvmlStatus::Unavailable { reason });
                return;
            }
        };
        let gpus = sampler.device_count().unwrap_or(0);
        tracing::info!(gpus, interval = ?self.interval, "NVML GPU snapshots");
        self.metrics.set_status(NvmlStatus::Available { gpus });
        loop {
            let at = Timestamp::now();
            let (mut readings, failed) = sampler.sample();
            for r in &mut readings {
                r.node.clone_from(&self.node);
            }
            self.metrics.snapshots.fetch_add(1, Relaxed);
            if failed > 0 {
                self.metrics.device_errors.fetch_add(failed, Relaxed);
                tracing::warn!(
                    failed,
                    "GPUs did not answer NVML; their last readings stand"
                );
            }
            note(&self.table, at, &readings);
            let records = readings.iter().map(|r| r.record(at)).collect::<Vec<_>>();
            if !records.is_empty() && out.blocking_send(Batch::new(records)).is_err() {
                return;
            }
            // A nudge (meant for other sources) may end a wait early: wait out the rest.
            let next = std::time::Instant::now() + self.interval;
            while let Some(left) = next.checked_duration_since(std::time::Instant::now()) {
                if left.is_zero() || shutdown.wait_timeout(left) {
                    break;
                }
            }
            if shutdown.is_triggered() {
                return;
            }
        }
    }
}
