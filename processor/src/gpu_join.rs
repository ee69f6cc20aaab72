//! Joins a request (or an engine's stats) with what its pod's GPUs were doing at that
//! moment: the `gpu` records of the pod's GPUs nearest the record's timestamp, within a
//! gap (two snapshot intervals: past that a snapshot says nothing about the moment).
//!
//! A pod with several GPUs (tensor parallelism) gets one figure per attribute: utilisation
//! averaged, memory and power summed, temperature the hottest, and `gpu.count` saying how
//! many. GPU records are grouped into one snapshot by their timestamp, which a source gives
//! every GPU of one sampling.

use model::{AttrValue, Record, RecordKind, Timestamp, names};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// One GPU in a snapshot.
#[derive(Clone, Debug, Default)]
struct Gpu {
    uuid: String,
    model: Option<String>,
    utilization_pct: Option<f64>,
    memory_used_bytes: Option<f64>,
    memory_total_bytes: Option<f64>,
    power_w: Option<f64>,
    temperature_c: Option<f64>,
}

/// A pod's GPUs at one moment.
#[derive(Debug)]
struct Snapshot {
    at: Timestamp,
    gpus: Vec<Gpu>,
    /// The attributes a record joined with it gets, made on first use: many requests join
    /// one snapshot.
    figures: Option<Vec<(&'static str, AttrValue)>>,
}

impl Snapshot {
    fn figures(&mut self) -> &[(&'static str, AttrValue)] {
        let gpus = &self.gpus;
        self.figures.get_or_insert_with(|| {
            let values = |f: fn(&Gpu) -> Option<f64>| gpus.iter().filter_map(f).collect::<Vec<_>>();
            let sum = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>());
            let utilization = values(|g| g.utilization_pct);
            let mut out: Vec<(&'static str, AttrValue)> = [
                (
                    names::GPU_UTILIZATION_PCT,
                    sum(utilization.clone()).map(|s| s / utilization.len() as f64),
                ),
                (
                    names::GPU_MEMORY_USED_BYTES,
                    sum(values(|g| g.memory_used_bytes)),
                ),
                (
                    names::GPU_MEMORY_TOTAL_BYTES,
                    sum(values(|g| g.memory_total_bytes)),
                ),
                (names::GPU_POWER_W, sum(values(|g| g.power_w))),
                (
                    names::GPU_TEMPERATURE_C,
                    values(|g| g.temperature_c).into_iter().reduce(f64::max),
                ),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k, AttrValue::Float(v.filter(|v| v.is_finite())?))))
            .collect();
            let uuids: Vec<&str> = gpus.iter().map(|g| g.uuid.as_str()).collect();
            out.push((names::GPU_UUID, uuids.join(",").into()));
            out.push((names::GPU_COUNT, AttrValue::Int(gpus.len() as i64)));
            if let Some(model) = gpus.iter().find_map(|g| g.model.clone()) {
                out.push((names::GPU_MODEL, model.into()));
            }
            out
        })
    }
}

/// The recent GPU snapshots of each pod, and the join.
#[derive(Debug)]
pub struct GpuJoin {
    max_gap_ns: i64,
    /// By namespace, then pod: looked up by borrowed names, so a join allocates nothing.
    pods: HashMap<String, HashMap<String, VecDeque<Snapshot>>>,
    joined: u64,
    missed: u64,
}

/// Snapshots kept per pod: at the default 5 s interval, 10 minutes, enough for records that
/// arrive late from a slow file.
const KEPT: usize = 120;

impl GpuJoin {
    /// A join that uses snapshots at most `max_gap` from a record.
    pub fn new(max_gap: Duration) -> Self {
        GpuJoin {
            max_gap_ns: i64::try_from(max_gap.as_nanos()).unwrap_or(i64::MAX),
            pods: HashMap::new(),
            joined: 0,
            missed: 0,
        }
    }

    /// (records given GPU figures, records of a known pod that had no snapshot near enough).
    pub fn counts(&self) -> (u64, u64) {
        (self.joined, self.missed)
    }

    /// Notes a `gpu` record (others are ignored). A GPU that serves no pod is not kept.
    pub fn observe(&mut self, record: &Record) {
        if record.kind != RecordKind::Gpu {
            return;
        }
        let Some((namespace, pod)) = pod_of(record) else {
            return;
        };
        let a = &record.attributes;
        let num = |k: &str| a.get(k).and_then(AttrValue::as_f64);
        let gpu = Gpu {
            uuid: a.get_str(names::GPU_UUID).unwrap_or("").to_string(),
            model: a.get_str(names::GPU_MODEL).map(str::to_string),
            utilization_pct: num(names::GPU_UTILIZATION_PCT),
            memory_used_bytes: num(names::GPU_MEMORY_USED_BYTES),
            memory_total_bytes: num(names::GPU_MEMORY_TOTAL_BYTES),
            power_w: num(names::GPU_POWER_W),
            temperature_c: num(names::GPU_TEMPERATURE_C),
        };
        let snapshots = self
            .pods
            .entry(namespace.to_string())
            .or_default()
            .entry(pod.to_string())
            .or_default();
        // Sources send in time order; one that is late slots in where it belongs.
        let at = record.timestamp;
        let i = snapshots.partition_point(|s| s.at < at);
        match snapshots.get_mut(i) {
            Some(s) if s.at == at => {
                s.gpus.retain(|g| g.uuid != gpu.uuid);
                s.gpus.push(gpu);
                s.figures = None;
            }
            _ => {
                snapshots.insert(
                    i,
                    Snapshot {
                        at,
                        gpus: vec![gpu],
                        figures: None,
                    },
                );
                if snapshots.len() > KEPT {
                    snapshots.pop_front();
                }
            }
        }
    }

    /// Gives `record` its pod's GPU figures nearest its timestamp; `true` if it got them.
    pub fn enrich(&mut self, record: &mut Record) -> bool {
        let Some(snapshots) =
            pod_of(record).and_then(|(ns, pod)| self.pods.get_mut(ns)?.get_mut(pod))
        else {
            return false;
        };
        let at = record.timestamp.unix_nanos();
        let i = snapshots.partition_point(|s| s.at.unix_nanos() < at);
        let distance = |j: usize| snapshots.get(j).map(|s| (s.at.unix_nanos() - at).abs());
        let nearest = [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|j| Some((j, distance(j)?)))
            .min_by_key(|(_, d)| *d)
            .filter(|(_, d)| *d <= self.max_gap_ns);
        let Some((j, _)) = nearest else {
            self.missed += 1;
            return false;
        };
        let snapshot = &mut snapshots[j];
        let offset_ms = (snapshot.at.unix_nanos() - at) / 1_000_000;
        let a = &mut record.attributes;
        for (key, value) in snapshot.figures() {
            a.insert(*key, value.clone());
        }
        a.insert(names::GPU_SNAPSHOT_OFFSET_MS, AttrValue::Int(offset_ms));
        self.joined += 1;
        true
    }
}

fn pod_of(record: &Record) -> Option<(&str, &str)> {
    Some((
        record.resource_str(names::K8S_NAMESPACE_NAME)?,
        record.resource_str(names::K8S_POD_NAME)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Attributes, RecordId};
    use std::sync::Arc;

    fn pod() -> Arc<Attributes> {
        let mut a = Attributes::new();
        a.insert(names::K8S_NAMESPACE_NAME, "llm");
        a.insert(names::K8S_POD_NAME, "vllm-0");
        Arc::new(a)
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_nanos(1_764_000_000_000_000_000 + seconds * 1_000_000_000)
    }

    fn gpu(seconds: i64, uuid: &str, util: f64, used_gib: f64) -> Record {
        let mut r = Record::log(
            RecordId::from_source(uuid.as_bytes(), seconds as u64),
            at(seconds),
            at(seconds),
            pod(),
            String::new(),
        );
        r.kind = RecordKind::Gpu;
        r.attributes.insert(names::GPU_UUID, uuid);
        r.attributes
            .insert(names::GPU_MODEL, "NVIDIA H100 80GB HBM3");
        r.attributes
            .insert(names::GPU_UTILIZATION_PCT, AttrValue::Float(util));
        r.attributes.insert(
            names::GPU_MEMORY_USED_BYTES,
            AttrValue::Float(used_gib * 1024.0 * 1024.0 * 1024.0),
        );
        r.attributes.insert(
            names::GPU_TEMPERATURE_C,
            AttrValue::Float(40.0 + util / 10.0),
        );
        r
    }

    fn request(seconds: i64) -> Record {
        let mut r = Record::log(
            RecordId::from_source(b"req", seconds as u64),
            at(seconds),
            at(seconds),
            pod(),
            "request finished".into(),
        );
        r.kind = RecordKind::Request;
        r
    }

    #[test]
    fn a_request_gets_the_nearest_snapshot_of_its_pods_gpus_within_the_gap() {
        let mut join = GpuJoin::new(Duration::from_secs(10));
        for (t, util) in [(0, 20.0), (5, 90.0), (10, 30.0)] {
            join.observe(&gpu(t, "GPU-a", util, 70.0));
            join.observe(&gpu(t, "GPU-b", util / 2.0, 60.0));
        }
        let mut r = request(6);
        assert!(join.enrich(&mut r));
        let num = |r: &Record, k: &str| r.attributes.get(k).and_then(AttrValue::as_f64);
        assert_eq!(
            num(&r, names::GPU_UTILIZATION_PCT),
            Some(67.5),
            "mean of 90 and 45"
        );
        assert_eq!(num(&r, names::GPU_COUNT), Some(2.0));
        assert_eq!(
            num(&r, names::GPU_MEMORY_USED_BYTES),
            Some(130.0 * 1024.0 * 1024.0 * 1024.0),
            "summed"
        );
        assert_eq!(num(&r, names::GPU_TEMPERATURE_C), Some(49.0), "the hottest");
        assert_eq!(num(&r, names::GPU_SNAPSHOT_OFFSET_MS), Some(-1000.0));
        assert_eq!(r.attributes.get_str(names::GPU_UUID), Some("GPU-a,GPU-b"));

        let mut late = request(21);
        assert!(!join.enrich(&mut late), "11 s from the last snapshot");
        assert!(late.attributes.get(names::GPU_UTILIZATION_PCT).is_none());
        let mut other = request(6);
        other.resource = Arc::new(Attributes::new());
        assert!(!join.enrich(&mut other), "no pod, no GPUs");
        assert_eq!(join.counts(), (1, 1));
    }
}
