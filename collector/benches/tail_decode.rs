//! Throughput of the files source on CRI lines of ~200 bytes (issue 3):
//! - `decode`: the CRI decoder alone over lines in memory (target ≥ 250 MB/s on one core);
//! - `tail+decode`: the real source reading a 20 MB file from disk (page cache) into records;
//! - `tail+decode+multiline`: the same with multi-line grouping on (the default).
//!
//! `cargo bench -p collector --bench tail_decode`; criterion prints MB/s (bytes) and the
//! time per iteration, from which lines/s follows (the line count is printed too).

use collector::files::{FileSource, FileSourceConfig, MultilineConfig, decode_cri};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use model::CheckpointSet;
use std::hint::black_box;
use tokio::sync::mpsc;

/// Realistic vLLM lines, ~200 bytes each with the CRI prefix.
fn lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 3 {
            0 => format!(
                "2026-11-27T20:41:{:02}.{:09}Z stdout F (APIServer pid=1) INFO 11-27 20:41:07 [logger.py:49] Received request chatcmpl-{i:016x}: params: SamplingParams(n=1, temperature=0.7, top_p=0.95)",
                i % 60,
                i
            ),
            1 => format!(
                "2026-11-27T20:41:{:02}.{:09}Z stdout F (APIServer pid=1) INFO:     10.42.0.{}:{} - \"POST /v1/chat/completions HTTP/1.1\" 200 OK, served in 1.23s by engine 0",
                i % 60,
                i,
                i % 250,
                30000 + i % 30000
            ),
            _ => format!(
                "2026-11-27T20:41:{:02}.{:09}Z stdout F (APIServer pid=1) INFO 11-27 20:41:07 [loggers.py:271] Engine 000: Avg prompt throughput: 1254.4 tokens/s, Running: 10 reqs",
                i % 60,
                i
            ),
        })
        .collect()
}

fn decode(c: &mut Criterion) {
    let lines = lines(100_000);
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    println!(
        "decode: {} lines, {:.1} bytes/line",
        lines.len(),
        bytes as f64 / lines.len() as f64
    );
    let mut g = c.benchmark_group("cri");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("decode", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(decode_cri(black_box(l.as_bytes())).ok());
            }
        })
    });
    g.finish();
}

fn tail_and_decode(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("llm_vllm-0_uid-0/vllm/0.log");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    let lines = lines(100_000);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, &text).expect("write");
    println!(
        "tail+decode: {} lines, {} bytes per iteration",
        lines.len(),
        text.len()
    );
    let mut g = c.benchmark_group("files");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(20);
    for (name, multiline) in [
        ("tail+decode", None),
        ("tail+decode+multiline", Some(MultilineConfig::default())),
    ] {
        let config = FileSourceConfig {
            multiline,
            ..FileSourceConfig::new(dir.path().into())
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut source =
                    FileSource::new("bench", config.clone(), CheckpointSet::new()).expect("source");
                let (tx, mut rx) = mpsc::channel(1024);
                let mut records = 0usize;
                loop {
                    let again = source.poll(&tx).expect("open channel");
                    while let Ok(batch) = rx.try_recv() {
                        records += batch.records.len();
                    }
                    if !again {
                        break;
                    }
                }
                // With grouping, the last line waits for a line or the timeout that
                // would close it.
                let open = usize::from(config.multiline.is_some());
                assert_eq!(records + open, lines.len());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decode, tail_and_decode);
criterion_main!(benches);
