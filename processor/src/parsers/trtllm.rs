//! TensorRT-LLM: the request lines of `trtllm-serve` (`Received request <id> at <t>`,
//! `Response started <id> at <t>`, where `<t>` is the server's monotonic clock in seconds),
//! the executor's iteration statistics (the C++ JSON object `{"Active Request Count":1,
//! "Iteration Counter":200,…}` that Triton's backend logs, and the PyTorch backend's `iter =
//! 198, …, num_scheduled_requests: 10, states = {…}` line), and its logger prefixes
//! (`[TRT-LLM]`, `[TensorRT-LLM]`), which name the server.

use super::fields::{find, has};
use model::{Record, RecordKind, names};

/// Sets what a TensorRT-LLM line says; returns whether it was one.
pub fn apply(text: &str, record: &mut Record) -> bool {
    let tagged = has!(text, "[TRT-LLM]") || has!(text, "[TensorRT-LLM]");
    let mut any = tagged;
    if tagged {
        any |= request_line(text, record);
        any |= python_iteration(text, record);
    }
    if has!(text, "\"Iteration Counter\"") {
        any |= json_iteration(text, record);
    }
    if any {
        record.attributes.insert(names::LLM_SERVER, "trtllm");
    }
    any
}

/// `Received request <id> at <t>` and `Response started <id> at <t>`.
fn request_line(text: &str, record: &mut Record) -> bool {
    for (marker, event) in [
        ("Received request ", "request_received"),
        ("Response started ", "response_started"),
    ] {
        let Some(at) = text.find(marker) else {
            continue;
        };
        let mut words = text[at + marker.len()..].split(' ');
        let id = words.next().unwrap_or_default();
        if id.is_empty() {
            return false;
        }
        let a = &mut record.attributes;
        a.insert(names::LLM_REQUEST_ID, id.to_string());
        a.insert(names::LLM_EVENT, event);
        if words.next() == Some("at")
            && let Some(t) = words.next().and_then(|t| t.parse::<f64>().ok())
        {
            a.insert_f64(names::LLM_SERVER_CLOCK_S, t);
        }
        return true;
    }
    false
}

/// `iter = 198, …, num_scheduled_requests: 10, states = {'num_ctx_requests': 0, …}`.
fn python_iteration(text: &str, record: &mut Record) -> bool {
    if !has!(text, "iter = ") {
        return false;
    }
    let Some(at) = find!(text, "num_scheduled_requests: ") else {
        // Older versions and cut lines: an iteration line, but no load in it.
        return false;
    };
    let rest = &text[at + "num_scheduled_requests: ".len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let Ok(running) = rest[..digits].parse::<i64>() else {
        return false;
    };
    stats(record);
    record.attributes.insert(names::LLM_RUNNING, running);
    true
}

/// The executor's iteration statistics as one JSON object (possibly after a glog prefix).
fn json_iteration(text: &str, record: &mut Record) -> bool {
    let Some(start) = text.find('{') else {
        return false;
    };
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&text[start..]) else {
        // A cut or damaged object says nothing reliable.
        return false;
    };
    let num = |key: &str| map.get(key).and_then(serde_json::Value::as_f64);
    stats(record);
    let a = &mut record.attributes;
    if let Some(n) = num("Active Request Count") {
        a.insert(names::LLM_RUNNING, n as i64);
    }
    if let Some(n) = num("Queued Request Count") {
        a.insert(names::LLM_WAITING, n as i64);
    }
    if let (Some(used), Some(max)) = (num("Used KV cache blocks"), num("Max KV cache blocks"))
        && max > 0.0
    {
        a.insert_f64(names::LLM_KV_CACHE_PCT, used / max * 100.0);
    }
    true
}

fn stats(record: &mut Record) {
    record.kind = RecordKind::EngineStats;
    record.attributes.insert(names::LLM_EVENT, "stats");
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::AttrValue;

    fn parse(text: &str) -> Option<Record> {
        let mut r = crate::parsers::test_line(text);
        apply(text, &mut r).then_some(r)
    }

    #[test]
    fn request_lines_carry_the_server_clock() {
        let r = parse("[07/09/2025-23:07:50] [TRT-LLM] [I] Response started c1627587-927f-4717-bad4-7266c9960d32 at 32143.546522802").unwrap();
        assert_eq!(
            r.attributes.get_str(names::LLM_EVENT),
            Some("response_started")
        );
        assert_eq!(
            r.attributes.get(names::LLM_SERVER_CLOCK_S),
            Some(&AttrValue::Float(32143.546522802))
        );
        let r = parse("[TRT-LLM] [I] Received request abc at").unwrap();
        assert_eq!(r.attributes.get_str(names::LLM_REQUEST_ID), Some("abc"));
        assert_eq!(r.attributes.get(names::LLM_SERVER_CLOCK_S), None);
    }

    #[test]
    fn iteration_statistics_are_engine_stats() {
        let r = parse(r#"I1120 02:29:01.795279 42888 libtensorrtllm.cc:1009] {"Active Request Count":3,"Iteration Counter":200,"Max KV cache blocks":400,"Used KV cache blocks":100,"Queued Request Count":2}"#).unwrap();
        assert_eq!(r.kind, RecordKind::EngineStats);
        assert_eq!(
            r.attributes.get(names::LLM_RUNNING),
            Some(&AttrValue::Int(3))
        );
        assert_eq!(
            r.attributes.get(names::LLM_WAITING),
            Some(&AttrValue::Int(2))
        );
        assert_eq!(
            r.attributes.get(names::LLM_KV_CACHE_PCT),
            Some(&AttrValue::Float(25.0))
        );
        let r = parse("[04/28/2025-09:56:44] [TRT-LLM] [I] iter = 198, global_rank = 0, num_scheduled_requests: 10, states = {'num_ctx_requests': 0}").unwrap();
        assert_eq!(
            r.attributes.get(names::LLM_RUNNING),
            Some(&AttrValue::Int(10))
        );
        // Cut JSON: nothing but the server.
        let r = parse(
            r#"I1120 libtensorrtllm.cc:1009] {"Active Request Count":1,"Iteration Counter":2"#,
        );
        assert!(r.is_none());
    }
}
