//! Ray Serve's replica access lines: `<deployment> <replica> <request id> -- CALL llm_config
//! OK 2.7ms` (or `-- POST /v1/chat 200 12.5ms`).

use super::fields::has;
use model::{Record, names};
use regex::Regex;
use std::sync::LazyLock;

static ACCESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\S+) -- (?:CALL \S+|[A-Z]+ \S+) (?:OK|ERROR|\d{3}) ([\d.]+)ms")
        .expect("valid regex")
});

/// Sets the request id and latency of an access line; returns whether it was one.
pub fn apply(text: &str, record: &mut Record) -> bool {
    if !has!(text, " -- ") {
        return false;
    }
    let Some(c) = ACCESS.captures(text) else {
        return false;
    };
    record
        .attributes
        .insert(names::LLM_REQUEST_ID, c[1].to_string());
    if let Ok(ms) = c[2].parse::<f64>() {
        record.attributes.insert_f64(names::LLM_E2E_MS, ms);
    }
    record.attributes.insert(names::LLM_SERVER, "ray");
    true
}
