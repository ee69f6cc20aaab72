//! The corpus contract score (issue 4): every line of `../shared/corpus/lines.jsonl` goes
//! through the processor, and each field its `contract` names is compared with what the
//! processor set (`severity_text` with the record's severity, the rest with attributes;
//! numbers with a relative tolerance of 1e-6). Lines with an empty contract are damaged or
//! carry nothing of the contract: no value of the contract's namespaces may be set for them.
//!
//! The score is printed per server (`cargo test -p processor --test corpus_contract --
//! --nocapture`). The floor below only ever rises: it is the score reached so far, so a
//! change that loses fields fails here. The target is 98%.

use model::{AttrValue, Record, RecordId, Timestamp};
use processor::InferenceLogProcessor;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The share of contract fields matched so far (ratchet; the issue asks for 0.98).
const FLOOR: f64 = 0.99;

/// Attribute namespaces of the contract: a value in one of them that the contract does not
/// name is invented.
const CONTRACT_PREFIXES: [&str; 5] = ["llm.", "gen_ai.", "http.", "url.", "client."];
/// Classification, not values: saying which server wrote a line is not inventing.
const CLASSIFICATION: [&str; 2] = ["llm.server", "llm.event"];

mod common;
use common::corpus;

fn matches(actual: Option<&AttrValue>, expected: &Value) -> bool {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
    match (actual, expected) {
        (Some(AttrValue::Int(a)), Value::Number(n)) => {
            n.as_f64().is_some_and(|b| close(*a as f64, b))
        }
        (Some(AttrValue::Float(a)), Value::Number(n)) => n.as_f64().is_some_and(|b| close(*a, b)),
        (Some(AttrValue::Str(a)), Value::String(s)) => a == s,
        (Some(AttrValue::Bool(a)), Value::Bool(b)) => a == b,
        _ => false,
    }
}

#[derive(Default)]
struct Score {
    fields: usize,
    matched: usize,
    invented: usize,
    lines: usize,
}

#[test]
fn corpus_lines_match_their_contract() {
    let mut processor = InferenceLogProcessor::new();
    let mut per_server: BTreeMap<String, Score> = BTreeMap::new();
    let mut misses: Vec<String> = Vec::new();
    let mut inventions: Vec<String> = Vec::new();
    for row in corpus() {
        let line = row["line"].as_str().unwrap();
        let server = row["server"].as_str().unwrap().to_string();
        let mut record = Record::log(
            RecordId(1),
            Timestamp::now(),
            Timestamp::now(),
            Arc::default(),
            line.to_string(),
        );
        processor.process(&mut record, &mut Vec::new());
        let contract = row["contract"].as_object().cloned().unwrap_or_default();
        let score = per_server.entry(server.clone()).or_default();
        score.lines += 1;
        for (key, expected) in &contract {
            score.fields += 1;
            let ok = if key == "severity_text" {
                record.severity.map(|s| s.as_str()) == expected.as_str()
            } else {
                matches(record.attributes.get(key), expected)
            };
            if ok {
                score.matched += 1;
            } else {
                let got = if key == "severity_text" {
                    format!("{:?}", record.severity)
                } else {
                    format!("{:?}", record.attributes.get(key))
                };
                misses.push(format!(
                    "{server}: {key} = {expected}, got {got}: {line:.120}"
                ));
            }
        }
        for (key, value) in record.attributes.iter() {
            let in_contract = CONTRACT_PREFIXES.iter().any(|p| key.starts_with(p))
                && !CLASSIFICATION.contains(&key);
            // A line with an empty contract is damaged or carries nothing of the contract:
            // any value set for it was invented. (Lines with a contract may carry more facts
            // than it names, such as vLLM's engine index.)
            if in_contract && contract.is_empty() {
                score.invented += 1;
                inventions.push(format!("{server}: invented {key} = {value:?}: {line:.120}"));
            }
        }
    }
    let (mut fields, mut matched, mut invented) = (0, 0, 0);
    println!("server         lines  fields  matched  score  invented");
    for (server, s) in &per_server {
        println!(
            "{server:<14} {:>5}  {:>6}  {:>7}  {:>4.0}%  {:>8}",
            s.lines,
            s.fields,
            s.matched,
            100.0 * s.matched as f64 / s.fields.max(1) as f64,
            s.invented
        );
        fields += s.fields;
        matched += s.matched;
        invented += s.invented;
    }
    let total = matched as f64 / fields as f64;
    println!(
        "all: {matched}/{fields} = {:.1}%, {invented} invented",
        100.0 * total
    );
    for m in inventions.iter().chain(misses.iter()).take(400) {
        println!("  {m}");
    }
    assert!(total >= FLOOR, "score {total:.3} fell below {FLOOR}");
    assert_eq!(invented, 0, "attributes invented (see the misses above)");
}
