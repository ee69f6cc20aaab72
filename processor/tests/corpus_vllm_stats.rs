//! Every vLLM engine-statistics line of the shared corpus (both formats, with and without
//! wrappers) must produce exactly the attributes its `contract` names.

use model::{AttrValue, Record, RecordId, Timestamp};
use processor::InferenceLogProcessor;
use serde_json::Value;
use std::sync::Arc;

mod common;
use common::corpus;

fn parse(line: &str) -> Record {
    let mut r = Record::log(
        RecordId(1),
        Timestamp::now(),
        Timestamp::now(),
        Arc::default(),
        line.to_string(),
    );
    InferenceLogProcessor::new().process(&mut r, &mut Vec::new());
    r
}

fn matches(actual: Option<&AttrValue>, expected: &Value) -> bool {
    match (actual, expected) {
        (Some(AttrValue::Int(a)), Value::Number(n)) if n.is_i64() => Some(*a) == n.as_i64(),
        (Some(AttrValue::Float(a)), Value::Number(n)) => {
            (a - n.as_f64().unwrap_or(f64::NAN)).abs() < 1e-6
        }
        (Some(AttrValue::Str(a)), Value::String(s)) => a == s,
        _ => false,
    }
}

#[test]
fn vllm_stats_lines_match_their_contract() {
    let lines: Vec<Value> = corpus()
        .into_iter()
        .filter(|l| {
            l["server"] == "vllm"
                && l["kind"] == "stats"
                && l["line"]
                    .as_str()
                    .unwrap()
                    .contains("Avg prompt throughput")
        })
        .collect();
    assert!(
        lines.len() >= 15,
        "expected the corpus's vLLM stats lines, found {}",
        lines.len()
    );
    let (mut v0, mut v1) = (0, 0);
    for l in &lines {
        let text = l["line"].as_str().unwrap();
        let r = parse(text);
        let contract = l["contract"].as_object().unwrap();
        for (key, want) in contract {
            if key == "severity_text" {
                assert_eq!(r.severity.map(|s| s.as_str()), want.as_str(), "{text}");
            } else {
                assert!(
                    matches(r.attributes.get(key), want),
                    "{key}: got {:?}, want {want} in {text}",
                    r.attributes.get(key)
                );
            }
        }
        assert_eq!(r.kind, model::RecordKind::EngineStats, "{text}");
        assert_eq!(r.attributes.get_str("llm.server"), Some("vllm"));
        if text.contains("Engine 000") {
            v1 += 1
        } else {
            v0 += 1
        }
    }
    assert!(
        v0 > 0 && v1 > 0,
        "both stats formats are covered (v0 {v0}, v1 {v1})"
    );
}

#[test]
fn vllm_lines_that_are_not_stats_stay_plain_logs() {
    for l in corpus()
        .into_iter()
        .filter(|l| l["server"] == "vllm" && l["kind"] != "stats")
    {
        let r = parse(l["line"].as_str().unwrap());
        assert_ne!(r.kind, model::RecordKind::EngineStats, "{}", l["line"]);
        assert!(r.attributes.get("llm.running").is_none());
    }
}
