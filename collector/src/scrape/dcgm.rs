//! dcgm-exporter's figures as GPU readings. dcgm-exporter labels each GPU with its uuid,
//! index, model and node, and, when it runs with Kubernetes mapping (the default in the
//! GPU operator), with the namespace, pod and container it is assigned to: that is the
//! attribution, no `/proc` needed.

use super::exposition::{Exposition, Sample};
use crate::gpu::{GpuReading, PodRef};
use std::collections::BTreeMap;

const MIB: f64 = 1024.0 * 1024.0;

/// The readings of every GPU the exposition describes, on the node dcgm-exporter runs on
/// (its `Hostname` label); none where it is not dcgm-exporter's.
pub fn readings(e: &Exposition) -> Vec<GpuReading> {
    let mut gpus: BTreeMap<String, GpuReading> = BTreeMap::new();
    let field = |name: &str| e.family(name).map(|f| f.samples.as_slice()).unwrap_or(&[]);
    let mut fb_free: BTreeMap<String, f64> = BTreeMap::new();
    let mut fb_reserved: BTreeMap<String, f64> = BTreeMap::new();
    for (name, apply) in FIELDS {
        for s in field(name) {
            let Some(key) = device_key(s) else { continue };
            let reading = gpus.entry(key).or_insert_with(|| identify(s));
            apply(reading, s.value);
        }
    }
    for (name, into) in [
        ("DCGM_FI_DEV_FB_FREE", &mut fb_free),
        ("DCGM_FI_DEV_FB_RESERVED", &mut fb_reserved),
    ] {
        for s in field(name) {
            if let Some(key) = device_key(s) {
                into.insert(key, s.value * MIB);
            }
        }
    }
    for (key, reading) in gpus.iter_mut() {
        // dcgm-exporter gives used and free (and, newer, reserved): total is their sum.
        if let (Some(used), Some(free)) = (reading.memory_used_bytes, fb_free.get(key)) {
            reading.memory_total_bytes =
                Some(used + free + fb_reserved.get(key).copied().unwrap_or(0.0));
        }
    }
    gpus.into_values().collect()
}

/// What each dcgm field sets.
type Apply = fn(&mut GpuReading, f64);

const FIELDS: [(&str, Apply); 5] = [
    ("DCGM_FI_DEV_GPU_UTIL", |r, v| r.utilization_pct = Some(v)),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", |r, v| {
        r.memory_utilization_pct = Some(v)
    }),
    ("DCGM_FI_DEV_FB_USED", |r, v| {
        r.memory_used_bytes = Some(v * MIB)
    }),
    ("DCGM_FI_DEV_POWER_USAGE", |r, v| r.power_w = Some(v)),
    ("DCGM_FI_DEV_GPU_TEMP", |r, v| r.temperature_c = Some(v)),
];

/// A device's key: its uuid, and its MIG instance where it is one.
fn device_key(s: &Sample) -> Option<String> {
    let uuid = s.label("UUID")?;
    Some(match s.label("GPU_I_ID") {
        Some(instance) if !instance.is_empty() => format!("{uuid}/{instance}"),
        _ => uuid.to_string(),
    })
}

fn identify(s: &Sample) -> GpuReading {
    let label = |k: &str| s.label(k).filter(|v| !v.is_empty());
    let pod = match (label("namespace"), label("pod")) {
        (Some(namespace), Some(name)) => Some(PodRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
            container: label("container").map(str::to_string),
        }),
        _ => None,
    };
    let uuid = s.label("UUID").unwrap_or_default();
    GpuReading {
        uuid: match label("GPU_I_ID") {
            Some(instance) => format!("{uuid}/{instance}"),
            None => uuid.to_string(),
        },
        index: label("gpu").and_then(|g| g.parse().ok()).unwrap_or(0),
        model: label("modelName").unwrap_or_default().to_string(),
        node: label("Hostname").map(str::to_string),
        pod,
        source: "dcgm",
        ..GpuReading::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::exposition::parse;

    #[test]
    fn the_fixtures_two_gpus_with_the_vllm_pods_one_attributed() {
        let path = format!(
            "{}/../../shared/fixtures/dcgm-sample.prom",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("the fixture");
        let gpus = readings(&parse(&text).expect("valid"));
        assert_eq!(gpus.len(), 2);
        let busy = gpus.iter().find(|r| r.index == 0).expect("gpu 0");
        assert_eq!(busy.node.as_deref(), Some("gpu-node-1"));
        assert_eq!(busy.uuid, "GPU-c4529c8d-69c4-b61d-e0bc-7b2460096005");
        assert_eq!(busy.model, "NVIDIA H100 80GB HBM3");
        assert_eq!(busy.utilization_pct, Some(87.0));
        assert_eq!(busy.memory_used_bytes, Some(73802.0 * MIB));
        assert_eq!(busy.memory_total_bytes, Some((73802.0 + 7203.0) * MIB));
        assert_eq!(busy.power_w, Some(412.368));
        assert_eq!(busy.temperature_c, Some(52.0));
        assert_eq!(
            busy.pod
                .as_ref()
                .map(|p| (p.namespace.as_str(), p.name.as_str())),
            Some(("llm-serving", "vllm-llama3-8b-6d8485c99f-vfdkm"))
        );
        let idle = gpus.iter().find(|r| r.index == 1).expect("gpu 1");
        assert_eq!(idle.pod, None, "an unassigned GPU serves no pod");
        assert_eq!(idle.utilization_pct, Some(0.0));
    }
}
