//! Throughput of the body tokenizer over the real log lines of `../shared/corpus/`:
//! `cargo bench -p indexer --bench tokenizer`. Prints the best of many short rounds (the
//! machine is noisy; the best is the run least disturbed), in MB/s and ns per token.

use std::time::Instant;
use tantivy::tokenizer::{TokenStream, Tokenizer};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/corpus/lines.jsonl"
);
const ROUNDS: usize = 200;
const REPEATS: usize = 100;

fn main() {
    let text = std::fs::read_to_string(CORPUS).expect("the corpus");
    let lines: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["line"].as_str().map(str::to_string))
        .collect();
    let bytes: usize = lines.iter().map(String::len).sum();
    let mut tokenizer = indexer::LogTokenizer::default();
    let mut tokens = 0usize;
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        tokens = 0;
        for _ in 0..REPEATS {
            for line in &lines {
                let mut stream = tokenizer.token_stream(line);
                while stream.advance() {
                    tokens += 1;
                }
            }
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    tokens /= REPEATS;
    println!(
        "{} lines, {bytes} bytes, {tokens} tokens: {:.0} MB/s, {:.1} ns per token (best of {ROUNDS})",
        lines.len(),
        (bytes * REPEATS) as f64 / 1e6 / best,
        best * 1e9 / (tokens * REPEATS) as f64
    );
}
