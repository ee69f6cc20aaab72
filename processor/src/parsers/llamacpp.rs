//! llama.cpp's server: slot/task lines (`slot update_slots: id  0 | task 12 | …`, the task is
//! the request id), the timing block (`prompt eval time = 789.03 ms / 27 tokens (…, 34.22
//! tokens per second)`, `eval time = …`, `total time = …`, also as `llama_perf_context_print:`
//! and the older `print_timings` form), and prompt sizes (`n_prompt_tokens = 10846`,
//! `task.n_tokens = 14892`).

use super::fields::has;
use model::{Record, names};
use regex::Regex;
use std::sync::LazyLock;

static TIMING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(prompt eval|eval|total) time\s*=\s*([\d.]+) ms(?: /\s*(\d+) (?:tokens|runs))?(?:\s*\(\s*([\d.]+) ms per token,\s*([\d.]+) tokens per second\))?",
    )
    .expect("valid regex")
});

/// Sets what a llama.cpp line says; returns whether it was one.
pub fn apply(text: &str, record: &mut Record) -> bool {
    let mut any = false;
    if let Some(task) = has!(text, " task ")
        .then(|| field_after(text, " task "))
        .flatten()
        .filter(|t| {
            t.trim_start_matches('-')
                .bytes()
                .all(|b| b.is_ascii_digit())
                && !t.is_empty()
        })
    {
        record
            .attributes
            .insert(names::LLM_REQUEST_ID, task.to_string());
        any = true;
    }
    if (has!(text, " time ") || has!(text, " time="))
        && let Some(c) = TIMING.captures(text)
    {
        let ms: Option<f64> = c[2].parse().ok();
        let tokens: Option<i64> = c.get(3).and_then(|m| m.as_str().parse().ok());
        let per_token: Option<f64> = c.get(4).and_then(|m| m.as_str().parse().ok());
        let tps: Option<f64> = c.get(5).and_then(|m| m.as_str().parse().ok());
        let a = &mut record.attributes;
        match &c[1] {
            "prompt eval" => {
                if let Some(ms) = ms {
                    a.insert_f64(names::LLM_PREFILL_MS, ms);
                }
                if let Some(n) = tokens {
                    a.insert(names::GEN_AI_USAGE_INPUT_TOKENS, n);
                }
            }
            "eval" => {
                if let Some(ms) = ms {
                    a.insert_f64(names::LLM_DECODE_MS, ms);
                }
                if let Some(n) = tokens {
                    a.insert(names::GEN_AI_USAGE_OUTPUT_TOKENS, n);
                }
                if let Some(tps) = tps {
                    a.insert_f64(names::LLM_TOKENS_PER_S, tps);
                }
                if let Some(ms) = per_token {
                    a.insert_f64(names::LLM_TPOT_MS, ms);
                }
            }
            _ => {
                if let Some(ms) = ms {
                    a.insert_f64(names::LLM_E2E_MS, ms);
                }
            }
        }
        any = true;
    }
    if !has!(text, "_tokens = ") {
        return finish(any, record);
    }
    for key in ["n_prompt_tokens = ", "task.n_tokens = "] {
        if let Some(n) = field_after(text, key).and_then(|v| v.parse::<i64>().ok()) {
            record
                .attributes
                .insert(names::GEN_AI_USAGE_INPUT_TOKENS, n);
            any = true;
        }
    }
    finish(any, record)
}

fn finish(any: bool, record: &mut Record) -> bool {
    if any {
        record.attributes.insert(names::LLM_SERVER, "llamacpp");
    }
    any
}

/// The token after `key` (up to a space, comma or `|`), e.g. the `12` of `| task 12 |`.
fn field_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let rest = &text[text.find(key)? + key.len()..];
    let end = rest.find([' ', ',', '|']).unwrap_or(rest.len());
    let value = &rest[..end];
    (!value.is_empty()).then_some(value)
}
