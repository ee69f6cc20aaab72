//! The cost of a GPU snapshot as the scrape source takes one (issue 8): a dcgm-exporter
//! exposition for a full 8-GPU node (the shared fixture's two GPUs, repeated) parsed,
//! turned into readings and into `gpu` records; and a vLLM `/metrics` with its latency
//! histograms parsed and mapped. NVML's own cost needs a GPU: `scripts/gpu-check.sh`
//! prints `sample_ms` for every snapshot.
//!
//! `cargo bench -p collector --bench gpu_snapshot`

use collector::scrape::EngineMemory;
use collector::scrape::exposition::parse;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// The fixture's lines for GPUs 0 and 1, repeated as GPUs 0–7 of one node.
fn dcgm_node(gpus: usize) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/dcgm-sample.prom"
    );
    let fixture = std::fs::read_to_string(path).expect("the dcgm fixture");
    let mut out = String::new();
    for line in fixture.lines() {
        if line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        for i in (0..gpus).step_by(2) {
            let gpu = if line.contains("gpu=\"0\"") { i } else { i + 1 };
            let renamed = line
                .replacen("gpu=\"0\"", &format!("gpu=\"{gpu}\""), 1)
                .replacen("gpu=\"1\"", &format!("gpu=\"{gpu}\""), 1)
                .replacen("UUID=\"GPU-", &format!("UUID=\"GPU-{gpu:02}"), 1);
            out.push_str(&renamed);
            out.push('\n');
        }
    }
    out
}

/// A vLLM exposition: gauges, counters and four histograms of 20-odd buckets, two models.
fn vllm() -> String {
    let mut out = String::new();
    for model in ["llama-3-8b", "mistral-7b"] {
        let l = format!("engine=\"0\",model_name=\"{model}\"");
        out.push_str(&format!("vllm:num_requests_running{{{l}}} 12.0\nvllm:num_requests_waiting{{{l}}} 3.0\nvllm:kv_cache_usage_perc{{{l}}} 0.61\nvllm:prompt_tokens_total{{{l}}} 123456.0\nvllm:generation_tokens_total{{{l}}} 654321.0\n"));
        for family in [
            "vllm:time_to_first_token_seconds",
            "vllm:inter_token_latency_seconds",
            "vllm:request_queue_time_seconds",
            "vllm:e2e_request_latency_seconds",
        ] {
            out.push_str(&format!("# TYPE {family} histogram\n"));
            let mut cumulative = 0;
            for (i, le) in [
                0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
            ]
            .iter()
            .enumerate()
            {
                cumulative += i * 3;
                out.push_str(&format!(
                    "{family}_bucket{{{l},le=\"{le}\"}} {cumulative}.0\n"
                ));
            }
            out.push_str(&format!(
                "{family}_bucket{{{l},le=\"+Inf\"}} {cumulative}.0\n{family}_count{{{l}}} {cumulative}.0\n{family}_sum{{{l}}} 1234.5\n"
            ));
        }
    }
    out
}

fn snapshot(c: &mut Criterion) {
    let node = dcgm_node(8);
    let mut g = c.benchmark_group("gpu_snapshot");
    g.throughput(Throughput::Bytes(node.len() as u64));
    g.bench_function("dcgm_8_gpus_parse", |b| {
        b.iter(|| black_box(parse(black_box(&node)).expect("valid")))
    });
    let now = model::Timestamp::now();
    g.bench_function("dcgm_8_gpus_parse_readings_records", |b| {
        b.iter(|| {
            let e = parse(black_box(&node)).expect("valid");
            let readings = collector::scrape::gpu_readings(&e);
            assert_eq!(readings.len(), 8);
            black_box(readings.iter().map(|r| r.record(now)).collect::<Vec<_>>())
        })
    });
    let text = vllm();
    g.throughput(Throughput::Bytes(text.len() as u64));
    let mut memory = EngineMemory::default();
    let mut at = 0.0;
    g.bench_function("vllm_2_models_parse_and_map", |b| {
        b.iter(|| {
            at += 5.0;
            let e = parse(black_box(&text)).expect("valid");
            black_box(memory.figures(&e, at))
        })
    });
    g.finish();
}

criterion_group!(benches, snapshot);
criterion_main!(benches);
