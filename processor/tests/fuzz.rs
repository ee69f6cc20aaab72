//! Robustness (issue 4): arbitrary bytes and mutated corpus lines through the processor
//! must never panic, and what it keeps must stay bounded. Deterministic (a seeded
//! generator; the seed is printed) and time-boxed: `FUZZ_SECONDS` (default 20) sets how long;
//! run it for longer by hand, e.g. `FUZZ_SECONDS=600 cargo test --release -p processor
//! --test fuzz -- --nocapture`. `FUZZ_SEED` replays a run.

use model::{Record, RecordId, Timestamp};
use processor::InferenceLogProcessor;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::Rng;

fn corpus() -> Vec<Vec<u8>> {
    common::corpus()
        .into_iter()
        .filter_map(|v| v["line"].as_str().map(|s| s.as_bytes().to_vec()))
        .collect()
}

/// Bytes that matter to the parsers: delimiters, digits, units, multi-byte characters.
const INTERESTING: &[&[u8]] = &[
    b" ",
    b"=",
    b"\"",
    b":",
    b"] ",
    b"[",
    b"|",
    b",",
    b".",
    b"0",
    b"9",
    b"-1",
    b"\xc2\xb5s",
    b"ms",
    b"e308",
    b"NaN",
    b"\xff",
    b"\xe2\x82",
    b"\n",
    b"\x1b[31m",
    b"Traceback (most recent call last):",
    b"Decode batch, ",
    b"[GIN] ",
    b" HTTP/1.1\" ",
    b"| task ",
    b"total_time=\"",
    b"request id: ",
];

fn mutate(rng: &mut Rng, line: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(line.len() + 1);
        match rng.below(6) {
            0 => line.truncate(at),
            1 if !line.is_empty() => {
                let i = rng.below(line.len());
                line[i] = rng.next() as u8;
            }
            2 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                line.splice(at..at, piece.iter().copied());
            }
            3 if !line.is_empty() => {
                let end = (at + rng.below(16)).min(line.len());
                line.drain(at..end);
            }
            4 => {
                let copy = line[at..].to_vec();
                line.extend_from_slice(&copy);
            }
            _ => line.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
        }
    }
}

#[test]
fn arbitrary_and_mutated_lines_never_panic() {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Timestamp::now().unix_nanos() as u64 | 1);
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    println!("FUZZ_SEED={seed} FUZZ_SECONDS={seconds}");
    let mut rng = Rng(seed);
    let corpus = corpus();
    let mut processor = InferenceLogProcessor::new();
    let mut emitted = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runs = 0u64;
    while Instant::now() < deadline {
        for _ in 0..256 {
            let mut line = if rng.below(4) == 0 {
                (0..rng.below(300)).map(|_| rng.next() as u8).collect()
            } else {
                corpus[rng.below(corpus.len())].clone()
            };
            mutate(&mut rng, &mut line);
            let input_len = line.len();
            let mut record = Record::log_from_bytes(
                RecordId(runs as u128),
                Timestamp::now(),
                Timestamp::now(),
                Arc::default(),
                line,
            );
            processor.process(&mut record, &mut emitted);
            // Nothing grows out of proportion to its input.
            let kept: usize = record
                .attributes
                .iter()
                .map(|(k, v)| k.len() + format!("{v:?}").len())
                .sum();
            assert!(
                kept <= 4 * input_len + 1024,
                "attributes of {kept} bytes from a {input_len}-byte line (seed {seed})"
            );
            emitted.clear();
            runs += 1;
        }
    }
    println!("{runs} lines without a panic");
    assert!(runs > 0);
}
