//! vLLM: the logger prefix, and the periodic engine statistics line in both formats.
//!
//! - v0 (`metrics.py`): `INFO 02-28 21:48:18 metrics.py:161] Avg prompt throughput: 0.0
//!   tokens/s, …, Running: 2 reqs, Swapped: 0 reqs, Pending: 3 reqs, GPU KV cache usage:
//!   82.1%, CPU KV cache usage: 0.0%` (some versions end with a `.`).
//! - v1 (`loggers.py`): `INFO 06-16 10:03:14 [loggers.py:87] Engine 000: Avg prompt
//!   throughput: …, Running: 10 reqs, Waiting: 4 reqs, GPU KV cache usage: 57.9%, Prefix
//!   cache hit rate: 40.5%`.

use super::fields::{find, finder, has, value_after};
use memchr::memmem::Finder;
use model::{Record, RecordKind, Severity, names};
use std::sync::LazyLock;

/// The parts of a vLLM logger line: `LEVEL MM-DD hh:mm:ss [file.py:N] message` (newer) or
/// `LEVEL MM-DD hh:mm:ss file.py:N] message` (older).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VllmLine<'a> {
    /// The level, normalised.
    pub severity: Severity,
    /// `file.py:N`.
    pub source: &'a str,
    /// What follows the prefix.
    pub message: &'a str,
}

/// Reads the vLLM logger prefix; `None` when the line does not have it.
pub fn split_prefix(text: &str) -> Option<VllmLine<'_>> {
    let (level, rest) = text.split_once(' ')?;
    if !matches!(level, "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL") {
        return None;
    }
    let severity = Severity::from_level_word(level)?;
    let b = rest.as_bytes();
    // "MM-DD hh:mm:ss "
    let shape = b"00-00 00:00:00 ";
    if b.len() < shape.len()
        || !b.iter().zip(shape).all(|(c, s)| {
            if *s == b'0' {
                c.is_ascii_digit()
            } else {
                c == s
            }
        })
    {
        return None;
    }
    let rest = &rest[shape.len()..];
    let rest = rest.strip_prefix('[').unwrap_or(rest);
    let (source, message) = rest
        .split_once("] ")
        .or_else(|| rest.strip_suffix(']').map(|s| (s, "")))?;
    let (file, line) = source.rsplit_once(':')?;
    if file.is_empty()
        || file.contains(' ')
        || line.is_empty()
        || !line.bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    Some(VllmLine {
        severity,
        source,
        message,
    })
}

/// One engine statistics line. A field is `None` when the line lacks it or its value is
/// damaged; no value is ever guessed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineStats {
    /// `Engine 000:` of v1; `None` for v0.
    pub engine_index: Option<i64>,
    /// Avg prompt throughput, tokens/s.
    pub prompt_throughput_tps: Option<f64>,
    /// Avg generation throughput, tokens/s.
    pub gen_throughput_tps: Option<f64>,
    /// Running requests.
    pub running: Option<i64>,
    /// Waiting (v1) or Pending (v0) requests.
    pub waiting: Option<i64>,
    /// Swapped requests (v0 only).
    pub swapped: Option<i64>,
    /// GPU KV cache usage, percent.
    pub kv_cache_pct: Option<f64>,
    /// Prefix cache hit rate, percent (v1 only).
    pub prefix_cache_hit_pct: Option<f64>,
}

/// Reads the statistics message (what follows the logger prefix).
pub fn parse_stats(message: &str) -> Option<EngineStats> {
    let mut stats = EngineStats::default();
    let mut msg = message;
    if let Some(rest) = msg.strip_prefix("Engine ") {
        let (index, rest) = rest.split_once(": ")?;
        stats.engine_index = Some(index.parse().ok()?);
        msg = rest;
    }
    if !msg.starts_with("Avg prompt throughput:") {
        return None;
    }
    let msg = msg.trim_end().trim_end_matches('.');
    for field in msg.split(", ") {
        let Some((label, value)) = field.split_once(": ") else {
            continue;
        };
        match label {
            "Avg prompt throughput" => {
                stats.prompt_throughput_tps = number_with_unit(value, " tokens/s")
            }
            "Avg generation throughput" => {
                stats.gen_throughput_tps = number_with_unit(value, " tokens/s")
            }
            "Running" => stats.running = count_with_unit(value, " reqs"),
            "Waiting" | "Pending" => stats.waiting = count_with_unit(value, " reqs"),
            "Swapped" => stats.swapped = count_with_unit(value, " reqs"),
            "GPU KV cache usage" => stats.kv_cache_pct = number_with_unit(value, "%"),
            "Prefix cache hit rate" => stats.prefix_cache_hit_pct = number_with_unit(value, "%"),
            _ => {}
        }
    }
    Some(stats)
}

/// A number followed by exactly its unit. Requiring the unit is what keeps a line cut in the
/// middle of a value (`Running: 1` of `Running: 18 reqs`) from yielding a wrong number.
fn number_with_unit(value: &str, unit: &str) -> Option<f64> {
    let v: f64 = value.strip_suffix(unit)?.parse().ok()?;
    v.is_finite().then_some(v)
}

fn count_with_unit(value: &str, unit: &str) -> Option<i64> {
    value.strip_suffix(unit)?.parse().ok()
}

/// Applies a vLLM line to `record`: severity, `llm.server`, and for a statistics line the
/// engine gauges with `kind = engine_stats`. Returns whether the line was vLLM's.
pub fn apply(line: &VllmLine<'_>, record: &mut Record) {
    record.severity = Some(line.severity);
    record.attributes.insert(names::LLM_SERVER, "vllm");
    let Some(stats) = parse_stats(line.message) else {
        return;
    };
    record.kind = RecordKind::EngineStats;
    record.attributes.insert(names::LLM_EVENT, "stats");
    let a = &mut record.attributes;
    if let Some(v) = stats.engine_index {
        a.insert(names::LLM_ENGINE_INDEX, v);
    }
    for (key, v) in [
        (
            names::LLM_PROMPT_THROUGHPUT_TPS,
            stats.prompt_throughput_tps,
        ),
        (names::LLM_GEN_THROUGHPUT_TPS, stats.gen_throughput_tps),
        (names::LLM_KV_CACHE_PCT, stats.kv_cache_pct),
        (names::LLM_PREFIX_CACHE_HIT_PCT, stats.prefix_cache_hit_pct),
    ] {
        if let Some(v) = v {
            a.insert_f64(key, v);
        }
    }
    for (key, v) in [
        (names::LLM_RUNNING, stats.running),
        (names::LLM_WAITING, stats.waiting),
        (names::LLM_SWAPPED, stats.swapped),
    ] {
        if let Some(v) = v {
            a.insert(key, v);
        }
    }
}

/// Request lines: `Received request <id>: … SamplingParams(…, temperature=0.7, …,
/// max_tokens=100, …)`, `Added request <id>.`, `Finished request <id>.`, `Aborted request
/// <id>.`, `Generated response <id> …`, and the preemption warning `Sequence group <n> is
/// preempted`. They appear with and without the logger prefix (a wrapper may replace it), so
/// they are looked for in the whole text. Returns whether `text` was one.
pub fn apply_request(text: &str, record: &mut Record) -> bool {
    /// Each event's marker, looked for in this order (the first found names the event).
    const EVENTS: [(&str, &str); 6] = [
        ("Received request ", "request_received"),
        ("Added request ", "request_added"),
        ("Finished request ", "request_finished"),
        ("Aborted request ", "request_aborted"),
        ("Generated response ", "response"),
        ("Sequence group ", "preempted"),
    ];
    // Built once: `str::find` set up a new searcher for each marker of each line.
    static MARKERS: LazyLock<[Finder<'static>; 6]> =
        LazyLock::new(|| EVENTS.map(|(marker, _)| Finder::new(marker)));
    if !has!(text, " request ")
        && !has!(text, "Generated response ")
        && !has!(text, "Sequence group ")
    {
        return false;
    }
    for ((marker, event), finder) in EVENTS.into_iter().zip(MARKERS.iter()) {
        let Some(at) = finder.find(text.as_bytes()) else {
            continue;
        };
        let rest = &text[at + marker.len()..];
        let id = rest
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .trim_end_matches('.');
        if id.is_empty() || (event == "preempted" && !has!(rest, " is preempted")) {
            continue;
        }
        let a = &mut record.attributes;
        a.insert(names::LLM_REQUEST_ID, id.to_string());
        a.insert(names::LLM_EVENT, event);
        if event == "request_received"
            && let Some(params) = find!(rest, "SamplingParams(").map(|i| &rest[i..])
        {
            if let Some(t) =
                value_after(params, finder!("temperature=")).and_then(|v| v.parse::<f64>().ok())
            {
                a.insert_f64(names::GEN_AI_REQUEST_TEMPERATURE, t);
            }
            if let Some(n) =
                value_after(params, finder!("max_tokens=")).and_then(|v| v.parse::<i64>().ok())
            {
                a.insert(names::GEN_AI_REQUEST_MAX_TOKENS, n);
            }
        }
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_prefix_styles() {
        let v1 = split_prefix("INFO 06-16 10:03:14 [loggers.py:87] Engine 000: x").unwrap();
        assert_eq!(
            (v1.severity, v1.source, v1.message),
            (Severity::Info, "loggers.py:87", "Engine 000: x")
        );
        let v0 = split_prefix("WARNING 02-28 21:48:18 metrics.py:161] Avg").unwrap();
        assert_eq!(
            (v0.severity, v0.source, v0.message),
            (Severity::Warn, "metrics.py:161", "Avg")
        );
        for not_vllm in [
            "INFO:     Started server process [1]",
            "INFO 06-16 10:03 [loggers.py:87] x",
            "Info 06-16 10:03:14 [loggers.py:87] x",
            "INFO 06-16 10:03:14 no source here",
            "INFO 06-16 10:03:14 [loggers.py:x] y",
        ] {
            assert_eq!(split_prefix(not_vllm), None, "{not_vllm}");
        }
    }

    #[test]
    fn a_value_cut_short_is_not_guessed() {
        let s = parse_stats("Avg prompt throughput: 1254.4 tokens/s, Avg generation throughput: 29.2 tokens/s, Running: 1").unwrap();
        assert_eq!(s.prompt_throughput_tps, Some(1254.4));
        assert_eq!(
            s.running, None,
            "a truncated `Running: 18 reqs` must not become 1"
        );
        assert_eq!(
            parse_stats("Engine x: Avg prompt throughput: 1.0 tokens/s"),
            None
        );
        assert_eq!(parse_stats("Received request chatcmpl-1"), None);
        let nan = parse_stats("Avg prompt throughput: NaN tokens/s").unwrap();
        assert_eq!(nan.prompt_throughput_tps, None);
    }
}
