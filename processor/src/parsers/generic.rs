//! Lines from no particular server: JSON objects (`{"level":"info","msg":…}`) and logfmt
//! (`time=… level=INFO msg="…" request_id=… latency=1.2s status=200`), read under the key
//! names that logging libraries and gateways commonly use: level, request id, latency,
//! status, method, path, model.

use super::duration::parse_duration_ms;
use model::{AttrValue, Record, Severity, names};

const LEVEL_KEYS: [&str; 4] = ["level", "severity", "lvl", "levelname"];
const REQUEST_ID_KEYS: [&str; 5] = [
    "request_id",
    "requestId",
    "req_id",
    "x_request_id",
    "x-request-id",
];
/// Latencies whose key names the unit.
const LATENCY_MS_KEYS: [&str; 4] = [
    "latency_ms",
    "duration_ms",
    "elapsed_ms",
    "response_time_ms",
];
/// Latencies that carry their unit in the value (`"1.2s"`, `"350ms"`); a bare number under
/// these keys is ambiguous (seconds? ms?) and is not read.
const LATENCY_KEYS: [&str; 3] = ["latency", "duration", "elapsed"];
const STATUS_KEYS: [&str; 3] = ["status", "status_code", "statusCode"];

/// Sets what a JSON or key=value line says; returns whether it set anything.
pub fn apply(text: &str, record: &mut Record) -> bool {
    if text.starts_with('{') {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) else {
            return false;
        };
        return read_fields(record, |key| match map.get(key)? {
            serde_json::Value::String(s) => Some(Field::Text(s.clone())),
            serde_json::Value::Number(n) => n.as_f64().map(Field::Number),
            _ => None,
        });
    }
    // logfmt: every `key=value` whose key starts a word, read in one pass over the `=`s
    // (a lookup per key name would search the line twenty times).
    let b = text.as_bytes();
    if memchr::memchr(b'=', b).is_none() {
        return false;
    }
    // On the stack: most lines with a `=` are not logfmt, and those that are have few keys
    // (the first 16 are read).
    let mut pairs: [(&str, &str, bool); 16] = [("", "", false); 16];
    let mut n = 0;
    for eq in memchr::memchr_iter(b'=', b) {
        let start = b[..eq]
            .iter()
            .rposition(|&c| c == b' ')
            .map_or(0, |sp| sp + 1);
        let key = &text[start..eq];
        if key.is_empty() || key.contains('"') {
            continue;
        }
        let rest = &text[eq + 1..];
        let (value, quoted) = match rest.strip_prefix('"') {
            Some(q) => match q.find('"') {
                Some(end) => (&q[..end], true),
                None => continue,
            },
            None => (&rest[..rest.find(' ').unwrap_or(rest.len())], false),
        };
        if !value.is_empty() && n < pairs.len() {
            pairs[n] = (key, value, quoted);
            n += 1;
        }
    }
    if n == 0 {
        return false;
    }
    let pairs = &pairs[..n];
    read_fields(record, |key| {
        let (_, value, quoted) = pairs.iter().find(|(k, _, _)| *k == key)?;
        Some(match value.parse::<f64>() {
            Ok(n) if !quoted => Field::Number(n),
            _ => Field::Text(value.to_string()),
        })
    })
}

enum Field {
    Text(String),
    Number(f64),
}

/// Reads the common keys through `get`; returns whether any was found.
fn read_fields(record: &mut Record, get: impl Fn(&str) -> Option<Field>) -> bool {
    let mut any = false;
    if let Some(level) = LEVEL_KEYS.iter().find_map(|k| match get(k)? {
        Field::Text(s) => Severity::from_level_word(&s),
        Field::Number(_) => None,
    }) {
        record.severity = Some(level);
        any = true;
    }
    let a = &mut record.attributes;
    // What a server's own parser set stands: `key=value` text inside its line (vLLM's engine
    // start holds `model='…',`) is not the line's fields.
    let mut set = |key: &'static str, value: AttrValue| {
        if a.get(key).is_none() {
            a.insert(key, value);
            any = true;
        }
    };
    if let Some(id) = REQUEST_ID_KEYS.iter().find_map(|k| match get(k)? {
        Field::Text(s) if !s.is_empty() => Some(s),
        Field::Number(n) if n.fract() == 0.0 => Some(format!("{n}")),
        _ => None,
    }) {
        set(names::LLM_REQUEST_ID, AttrValue::from(id));
    }
    let latency = LATENCY_MS_KEYS
        .iter()
        .find_map(|k| match get(k)? {
            Field::Number(n) => Some(n),
            Field::Text(s) => s.parse().ok(),
        })
        .or_else(|| {
            LATENCY_KEYS.iter().find_map(|k| match get(k)? {
                Field::Text(s) => parse_duration_ms(&s),
                Field::Number(_) => None,
            })
        });
    if let Some(ms) = latency.filter(|ms| ms.is_finite() && *ms >= 0.0) {
        set(names::LLM_E2E_MS, AttrValue::Float(ms));
    }
    if let Some(status) = STATUS_KEYS.iter().find_map(|k| {
        let n = match get(k)? {
            Field::Number(n) => n,
            Field::Text(s) => s.parse().ok()?,
        };
        (n.fract() == 0.0 && (100.0..600.0).contains(&n)).then_some(n as i64)
    }) {
        set(names::HTTP_RESPONSE_STATUS_CODE, AttrValue::Int(status));
    }
    if let Some(Field::Text(method)) = get("method")
        && !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase())
    {
        set(names::HTTP_REQUEST_METHOD, AttrValue::from(method));
    }
    if let Some(Field::Text(path)) = get("path").or_else(|| get("url.path"))
        && path.starts_with('/')
    {
        set(names::URL_PATH, AttrValue::from(path));
    }
    if let Some(Field::Text(model)) = get("model")
        && !model.is_empty()
    {
        set(names::GEN_AI_REQUEST_MODEL, AttrValue::from(model));
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Record {
        let mut r = crate::parsers::test_line(text);
        apply(text, &mut r);
        r
    }

    #[test]
    fn json_and_logfmt_fields_under_common_keys() {
        let r = parse(
            r#"{"level":"warn","msg":"slow","request_id":"abc-1","latency_ms":1234.5,"status":503,"method":"POST","path":"/v1/chat/completions","model":"llama3"}"#,
        );
        let a = &r.attributes;
        assert_eq!(r.severity, Some(Severity::Warn));
        assert_eq!(a.get_str(names::LLM_REQUEST_ID), Some("abc-1"));
        assert_eq!(a.get(names::LLM_E2E_MS), Some(&AttrValue::Float(1234.5)));
        assert_eq!(
            a.get(names::HTTP_RESPONSE_STATUS_CODE),
            Some(&AttrValue::Int(503))
        );
        assert_eq!(a.get_str(names::URL_PATH), Some("/v1/chat/completions"));
        assert_eq!(a.get_str(names::GEN_AI_REQUEST_MODEL), Some("llama3"));

        let r = parse(
            r#"time=2025-01-01T00:00:00Z level=INFO msg="request done" request_id=7f3 latency=1.5s status=200 method=GET path=/health"#,
        );
        let a = &r.attributes;
        assert_eq!(r.severity, Some(Severity::Info));
        assert_eq!(a.get_str(names::LLM_REQUEST_ID), Some("7f3"));
        assert_eq!(a.get(names::LLM_E2E_MS), Some(&AttrValue::Float(1500.0)));
        assert_eq!(
            a.get(names::HTTP_RESPONSE_STATUS_CODE),
            Some(&AttrValue::Int(200))
        );
        assert_eq!(a.get_str(names::HTTP_REQUEST_METHOD), Some("GET"));
    }

    #[test]
    fn ambiguous_or_damaged_values_are_not_read() {
        // A bare number under `latency` has no unit; a status of 42 is no HTTP status;
        // a key inside another key or a cut object is not the key.
        let r = parse(r#"{"latency":12,"status":42,"my_request_id":"x"}"#);
        assert!(r.attributes.is_empty(), "{:?}", r.attributes);
        let r = parse(r#"{"request_id":"abc","latency_ms":1"#);
        assert!(r.attributes.is_empty());
        let r = parse("ollama model=llama3 xrequest_id=1 latency=fast");
        assert_eq!(r.attributes.get_str(names::LLM_REQUEST_ID), None);
        assert_eq!(r.attributes.get(names::LLM_E2E_MS), None);
        assert_eq!(
            r.attributes.get_str(names::GEN_AI_REQUEST_MODEL),
            Some("llama3")
        );
    }
}
