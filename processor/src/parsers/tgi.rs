//! TGI and TEI request spans: `total_time="1.2s" validation_time="1.96844ms"
//! queue_time="49.382µs" inference_time="355.849981ms" time_per_token="14.827082ms"`, in the
//! plain format (`generate{…}`) and in `--json-output` (the same keys under `"span"`), each
//! with its own unit; and `max_new_tokens: Some(512)` from the request parameters.

use super::duration::parse_duration_ms;
use super::fields::{find, has};
use model::{Record, names};

const SPAN_FIELDS: [(&str, &str); 5] = [
    ("total_time", names::LLM_E2E_MS),
    ("validation_time", names::LLM_VALIDATION_MS),
    ("queue_time", names::LLM_QUEUE_MS),
    ("inference_time", names::LLM_INFERENCE_MS),
    ("time_per_token", names::LLM_TPOT_MS),
];

/// Sets the span timings if `text` has them; returns whether it did.
pub fn apply(text: &str, record: &mut Record) -> bool {
    if !has!(text, "_time") {
        return false;
    }
    let mut any = false;
    for (key, name) in SPAN_FIELDS {
        // `total_time="1.2s"` (plain) or `"total_time":"1.2s"` (JSON).
        let value = quoted_after(text, &format!("{key}=\""))
            .or_else(|| quoted_after(text, &format!("\"{key}\":\"")));
        if let Some(ms) = value.and_then(parse_duration_ms) {
            any |= record.attributes.insert_f64(name, ms);
        }
    }
    if any
        && let Some(n) = find!(text, "max_new_tokens: Some(")
            .map(|i| &text[i + "max_new_tokens: Some(".len()..])
            .and_then(|rest| rest.split(')').next())
            .and_then(|n| n.parse::<i64>().ok())
    {
        record
            .attributes
            .insert(names::GEN_AI_REQUEST_MAX_TOKENS, n);
    }
    if any {
        let server = if has!(text, "text_embeddings") || has!(text, "embed{") {
            "tei"
        } else {
            "tgi"
        };
        record.attributes.insert(names::LLM_SERVER, server);
    }
    any
}

fn quoted_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let rest = &text[text.find(key)? + key.len()..];
    rest.split('"').next()
}
