//! Lines from no particular server: JSON objects (`{"level":"info","msg":…}`) and logfmt's
//! `model=` (Ollama's scheduler lines).

use super::fields::value_after;
use model::{Record, Severity, names};

/// Sets what a JSON or key=value line says; returns whether it set anything.
pub fn apply(text: &str, record: &mut Record) -> bool {
    let mut any = false;
    if text.starts_with('{') {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) {
            for key in ["level", "severity", "lvl", "levelname"] {
                if let Some(level) = map
                    .get(key)
                    .and_then(|v| v.as_str())
                    .and_then(Severity::from_level_word)
                {
                    record.severity = Some(level);
                    any = true;
                    break;
                }
            }
        }
        return any;
    }
    if !text.contains('=') {
        return false;
    }
    if let Some(model) = value_after(text, "model=").filter(|m| !m.is_empty()) {
        record.attributes.insert(
            names::GEN_AI_REQUEST_MODEL,
            model.trim_matches('"').to_string(),
        );
        any = true;
    }
    any
}
