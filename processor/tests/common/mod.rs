//! Shared by the processor's tests and benches: the corpus and a seeded generator.

#![allow(dead_code)] // each test uses its part

use model::{AttrValue, Attributes, names};
use serde_json::Value;
use std::sync::Arc;

/// Every row of `../shared/corpus/lines.jsonl`.
pub fn corpus() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/lines.jsonl"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read the corpus at {path}: {e}"));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a corpus row is JSON"))
        .collect()
}

/// A small deterministic generator (xorshift64), so a failing run can be replayed.
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A value in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// The resource of container `server` of pod `name` in namespace `llm`.
pub fn pod(name: &str) -> Arc<Attributes> {
    Arc::new(
        [
            (names::K8S_NAMESPACE_NAME, AttrValue::from("llm")),
            (names::K8S_POD_NAME, AttrValue::from(name)),
            (names::K8S_POD_UID, AttrValue::from(format!("uid-{name}"))),
            (names::K8S_CONTAINER_NAME, AttrValue::from("server")),
        ]
        .into_iter()
        .collect(),
    )
}
