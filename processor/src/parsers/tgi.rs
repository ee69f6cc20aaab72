//! TGI and TEI request spans: `total_time="1.2s" validation_time="1.96844ms"
//! queue_time="49.382µs" inference_time="355.849981ms" time_per_token="14.827082ms"`, in the
//! plain format (`generate{…}`) and in `--json-output` (the same keys under `"span"`), each
//! with its own unit; and `max_new_tokens: Some(512)` from the request parameters.
//!
//! TGI logs no token count, but its `time_per_token` is `inference_time / generated_tokens`
//! (`router/src/server.rs`: a `Duration` divided by the count, which truncates to whole
//! nanoseconds), so the count of generated tokens is the ratio of the two, to within far
//! less than a token.

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
        let embeddings = has!(text, "text_embeddings") || has!(text, "embed{");
        record
            .attributes
            .insert(names::LLM_SERVER, if embeddings { "tei" } else { "tgi" });
        if !embeddings
            && record
                .attributes
                .get(names::GEN_AI_USAGE_OUTPUT_TOKENS)
                .is_none()
        {
            set_generated_tokens(record);
        }
    }
    any
}

/// `gen_ai.usage.output_tokens` as `inference_time / time_per_token`, when that is a whole
/// number of tokens up to the nanosecond TGI's division drops per token (else the line is
/// not TGI's: nothing is set).
fn set_generated_tokens(record: &mut Record) {
    let ms = |name| record.attributes.get(name).and_then(|v| v.as_f64());
    let (Some(inference), Some(per_token)) = (ms(names::LLM_INFERENCE_MS), ms(names::LLM_TPOT_MS))
    else {
        return;
    };
    if per_token <= 0.0 {
        return;
    }
    let ratio = inference / per_token;
    let tokens = ratio.round();
    // Each token's share lost to truncation is under 1 ns (1e-6 ms); the rest is float noise.
    let slack = tokens * 1e-6 / per_token + 1e-6;
    if tokens >= 1.0 && (ratio - tokens).abs() <= slack {
        record
            .attributes
            .insert(names::GEN_AI_USAGE_OUTPUT_TOKENS, tokens as i64);
    }
}

fn quoted_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let rest = &text[text.find(key)? + key.len()..];
    rest.split('"').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(line: &str) -> Record {
        let mut r = super::super::test_line(line);
        assert!(apply(line, &mut r), "{line}");
        r
    }

    #[test]
    fn the_generated_tokens_are_the_inference_time_over_the_time_per_token() {
        // From huggingface/text-generation-inference, as the corpus has it: 355.849981 ms
        // over 14.827082 ms is 24 tokens and 13 ns.
        let r = applied(
            r#"INFO generate{parameters=GenerateParameters { max_new_tokens: Some(512) } total_time="357.867572ms" validation_time="1.96844ms" queue_time="49.382µs" inference_time="355.849981ms" time_per_token="14.827082ms" seed="None"}: text_generation_router::server: router/src/server.rs:309: Success"#,
        );
        assert_eq!(
            r.attributes.get(names::GEN_AI_USAGE_OUTPUT_TOKENS),
            Some(&model::AttrValue::Int(24))
        );
        // Seconds against microseconds: 2,000 tokens of 1.234567 ms each, less 1,500 ns.
        let r = applied(
            r#"INFO generate{total_time="2.47s" inference_time="2.469132498s" time_per_token="1.234567ms"}: text_generation_router::server: Success"#,
        );
        assert_eq!(
            r.attributes.get(names::GEN_AI_USAGE_OUTPUT_TOKENS),
            Some(&model::AttrValue::Int(2000))
        );
    }

    #[test]
    fn no_token_count_where_the_times_are_not_a_whole_number_of_tokens_apart() {
        for line in [
            // 100 ms over 30 ms: 3.33 tokens is no TGI line.
            r#"INFO generate{total_time="101ms" inference_time="100ms" time_per_token="30ms"}: Success"#,
            // No time per token at all (an embedding, a failed request).
            r#"INFO generate{total_time="101ms" inference_time="100ms"}: Success"#,
            r#"INFO embed{total_time="3ms" inference_time="2ms" time_per_token="1ms"}: text_embeddings_router: Success"#,
        ] {
            let r = applied(line);
            assert_eq!(
                r.attributes.get(names::GEN_AI_USAGE_OUTPUT_TOKENS),
                None,
                "{line}"
            );
        }
    }
}
