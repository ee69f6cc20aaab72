//! SGLang's scheduler lines: `Prefill batch, #new-seq: 1, …, token usage: 0.08, #running-req:
//! 31, #queue-req: 0, …, input throughput (token/s): 559.53` and `Decode batch. …, gen
//! throughput (token/s): 1635.11, …`, in both punctuation styles (`batch,` and `batch.`).
//! `token usage` is a 0–1 fraction of the KV cache and becomes `llm.kv_cache_pct` (0–100);
//! hybrid models' `full token usage`/`swa token usage` are other pools and are left out.

use super::fields::find;
use model::{Record, RecordKind, names};

/// Every `#…` counter SGLang prints in these lines.
const KNOWN_COUNTERS: [&str; 9] = [
    "#new-seq",
    "#new-token",
    "#cached-token",
    "#running-req",
    "#queue-req",
    "#token",
    "#pending-token",
    "#full token",
    "#swa token",
];

/// Sets the engine fields if `text` holds a batch line; returns whether it did.
pub fn apply(text: &str, record: &mut Record) -> bool {
    let Some(at) = find!(text, "Decode batch").or_else(|| find!(text, "Prefill batch")) else {
        return false;
    };
    let fields = &text[at..];
    let Some(fields) = fields.find(['.', ',']).map(|i| &fields[i + 1..]) else {
        return false;
    };
    // Read every field first: a damaged line sets nothing at all.
    let mut found: Vec<(&'static str, model::AttrValue)> = Vec::new();
    for pair in fields.split(", ") {
        let Some((key, value)) = pair.trim().split_once(": ") else {
            continue;
        };
        let key = key.trim();
        if key.starts_with('#') && !KNOWN_COUNTERS.contains(&key) {
            // A counter SGLang never prints: the line was damaged (columns cut in a paste).
            return false;
        }
        let value = value.trim().trim_end_matches([',', '%']);
        let (name, scale) = match key {
            "#running-req" => (names::LLM_RUNNING, None),
            "#queue-req" => (names::LLM_WAITING, None),
            "token usage" => (names::LLM_KV_CACHE_PCT, Some(100.0)),
            "cache hit rate" => (names::LLM_PREFIX_CACHE_HIT_PCT, Some(1.0)),
            "gen throughput (token/s)" => (names::LLM_GEN_THROUGHPUT_TPS, Some(1.0)),
            "input throughput (token/s)" => (names::LLM_PROMPT_THROUGHPUT_TPS, Some(1.0)),
            _ => continue,
        };
        let parsed = match scale {
            None => value.parse::<i64>().ok().map(model::AttrValue::Int),
            Some(scale) => value
                .parse::<f64>()
                .ok()
                .map(|x| x * scale)
                .filter(|x| x.is_finite())
                .map(model::AttrValue::Float),
        };
        if let Some(v) = parsed {
            found.push((name, v));
        }
    }
    let any = !found.is_empty();
    for (name, value) in found {
        record.attributes.insert(name, value);
    }
    if any {
        record.kind = RecordKind::EngineStats;
        record.attributes.insert(names::LLM_SERVER, "sglang");
        record.attributes.insert(names::LLM_EVENT, "stats");
        if let Some(rank) = data_parallel_rank(&text[..at]) {
            record.attributes.insert(names::LLM_ENGINE_INDEX, rank);
        }
    }
    any
}

/// The data-parallel rank in a scheduler's log prefix (`[2026-04-08 14:05:21 DP1 TP0]`):
/// each rank is an engine of its own, logging its own batches and throughput.
fn data_parallel_rank(prefix: &str) -> Option<i64> {
    let after = &prefix[prefix.rfind(" DP")? + 3..];
    let digits = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    after[..digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_parallel_rank_is_its_engine_and_a_tensor_parallel_rank_is_not() {
        let index = |line: &str| {
            let mut r = Record::default();
            assert!(apply(line, &mut r), "{line}");
            r.attributes.get(names::LLM_ENGINE_INDEX).cloned()
        };
        let decode = "Decode batch, #running-req: 5, #token: 20800, token usage: 0.29, gen throughput (token/s): 144.95, #queue-req: 0";
        assert_eq!(
            index(&format!("[2026-04-08 14:05:21 DP3 TP0] {decode}")),
            Some(model::AttrValue::Int(3))
        );
        assert_eq!(index(&format!("[2026-04-08 14:05:21 TP1] {decode}")), None);
        assert_eq!(index(&format!("[2026-04-08 14:05:21] {decode}")), None);
    }
}
