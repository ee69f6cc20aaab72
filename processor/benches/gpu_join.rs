//! The cost of the GPU join per record (issue 8): 200 pods with 2 GPUs each and 10 minutes
//! of 5 s snapshots held, then requests of those pods joined with the nearest snapshot.
//!
//! `cargo bench -p processor --bench gpu_join`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use model::{AttrValue, Attributes, Record, RecordId, RecordKind, Timestamp, names};
use processor::gpu_join::GpuJoin;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const PODS: usize = 200;
const START: i64 = 1_795_000_000_000_000_000;

fn pod(i: usize) -> Arc<Attributes> {
    let mut a = Attributes::new();
    a.insert(names::K8S_NAMESPACE_NAME, "llm-serving");
    a.insert(names::K8S_POD_NAME, format!("vllm-{i}"));
    Arc::new(a)
}

fn record(kind: RecordKind, resource: Arc<Attributes>, at: i64, n: u64) -> Record {
    let mut r = Record::log(
        RecordId::from_source(b"bench", n),
        Timestamp::from_unix_nanos(at),
        Timestamp::from_unix_nanos(at),
        resource,
        String::new(),
    );
    r.kind = kind;
    r
}

fn join(c: &mut Criterion) {
    let pods: Vec<_> = (0..PODS).map(pod).collect();
    let mut join = GpuJoin::new(Duration::from_secs(10));
    let mut n = 0;
    for step in 0..120i64 {
        for (i, p) in pods.iter().enumerate() {
            for gpu in 0..2 {
                n += 1;
                let mut g = record(RecordKind::Gpu, p.clone(), START + step * 5_000_000_000, n);
                g.attributes
                    .insert(names::GPU_UUID, format!("GPU-{i}-{gpu}"));
                g.attributes.insert(
                    names::GPU_UTILIZATION_PCT,
                    AttrValue::Float(50.0 + gpu as f64),
                );
                g.attributes
                    .insert(names::GPU_MEMORY_USED_BYTES, AttrValue::Float(7.0e10));
                join.observe(&g);
            }
        }
    }
    let requests: Vec<Record> = (0..10_000u64)
        .map(|i| {
            let at = START + (i as i64 % 600) * 1_000_000_000 + 123_456_789;
            record(RecordKind::Request, pods[i as usize % PODS].clone(), at, i)
        })
        .collect();
    let mut g = c.benchmark_group("gpu_join");
    g.throughput(Throughput::Elements(requests.len() as u64));
    g.bench_function("enrich_10k_requests", |b| {
        b.iter_batched(
            || requests.clone(),
            |mut batch| {
                for r in &mut batch {
                    black_box(join.enrich(r));
                }
                batch
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, join);
criterion_main!(benches);
