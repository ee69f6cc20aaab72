//! Parse-stage throughput (issue 4): the processor over the corpus mix (target ≥ 500k
//! lines/s on one core) and over lines from no known server (target ≥ 2M lines/s).
//!
//! `cargo bench -p processor --bench parse`; criterion reports elements (lines) per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use model::{Record, RecordId, Timestamp};
use processor::InferenceLogProcessor;
use std::hint::black_box;
use std::sync::Arc;

#[path = "../tests/common/mod.rs"]
mod common;

fn corpus_lines() -> Vec<String> {
    common::corpus()
        .into_iter()
        .filter_map(|v| v["line"].as_str().map(String::from))
        .collect()
}

/// Application lines no inference server writes: a web app's plain and JSON logs.
fn unknown_lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 3 {
            0 => format!(
                "user {i} signed in from the mobile app after {} retries",
                i % 7
            ),
            1 => format!("cache warmed: {} entries in {} buckets", i * 3, i % 64),
            _ => format!("job {i:08x} done; next run scheduled in {}s", i % 600),
        })
        .collect()
}

fn bench(c: &mut Criterion, name: &str, lines: &[String]) {
    // One container's lines share its resource, as the file source sends them.
    let resource = Arc::default();
    let records: Vec<Record> = lines
        .iter()
        .map(|l| {
            Record::log(
                RecordId(1),
                Timestamp::now(),
                Timestamp::now(),
                Arc::clone(&resource),
                l.clone(),
            )
        })
        .collect();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function(name, |b| {
        let mut processor = InferenceLogProcessor::new();
        let mut emitted = Vec::new();
        b.iter_batched(
            || records.clone(),
            |mut batch| {
                for r in &mut batch {
                    processor.process(black_box(r), &mut emitted);
                }
                emitted.clear();
                batch
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn parse(c: &mut Criterion) {
    let corpus = corpus_lines();
    println!("corpus mix: {} lines", corpus.len());
    bench(c, "corpus_mix", &corpus);
    bench(c, "no_known_server", &unknown_lines(10_000));
}

criterion_group!(benches, parse);
criterion_main!(benches);
