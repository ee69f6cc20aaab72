//! LMDeploy's request lines: `session_id=242, history_tokens=0, input_tokens=19,
//! max_new_tokens=512, …` and `prompt…, gen_config=EngineGenerationConfig(…,
//! max_new_tokens=512, …), prompt_token_id=[1, 3148, …]` (the prompt's size is the length
//! of that list). The session id is the request id (`session_id=242`, and TurboMind's
//! `[ProcessInferRequests] Request for 242 received.`), so a search for it finds the
//! request's lines; LMDeploy logs no end of a request, so no lifecycle is opened for it.

use super::fields::{find, finder, has, value_after};
use model::{Record, names};

/// Sets token counts and limits; returns whether it set anything.
pub fn apply(text: &str, record: &mut Record) -> bool {
    if let Some(id) = find!(text, "Request for ")
        .filter(|_| has!(text, "[ProcessInferRequests]"))
        .map(|i| &text[i + "Request for ".len()..])
        .and_then(|rest| rest.strip_suffix(" received."))
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
    {
        record
            .attributes
            .insert(names::LLM_REQUEST_ID, id.to_string());
        record.attributes.insert(names::LLM_SERVER, "lmdeploy");
        return true;
    }
    if !has!(text, "_tokens=") && !has!(text, "prompt_token_id=[") {
        return false;
    }
    let mut any = false;
    if let Some(id) = value_after(text, finder!("session_id="))
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
    {
        record
            .attributes
            .insert(names::LLM_REQUEST_ID, id.to_string());
        any = true;
    }
    for (key, name) in [
        (finder!("input_tokens="), names::GEN_AI_USAGE_INPUT_TOKENS),
        (finder!("max_new_tokens="), names::GEN_AI_REQUEST_MAX_TOKENS),
    ] {
        if let Some(n) = value_after(text, key).and_then(|v| v.parse::<i64>().ok()) {
            record.attributes.insert(name, n);
            any = true;
        }
    }
    if let Some(ids) = find!(text, "prompt_token_id=[")
        .map(|i| &text[i + "prompt_token_id=[".len()..])
        .and_then(|rest| rest.split_once(']'))
        .map(|(ids, _)| ids)
    {
        // Only a list we can see whole is counted: a cut paste has no `]`.
        let n = ids.split(',').filter(|s| !s.trim().is_empty()).count();
        record
            .attributes
            .insert(names::GEN_AI_USAGE_INPUT_TOKENS, n as i64);
        any = true;
    }
    if any {
        record.attributes.insert(names::LLM_SERVER, "lmdeploy");
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_is_the_request_id() {
        for text in [
            "2024-06-17 04:42:39,358 - lmdeploy - INFO - session_id=242, history_tokens=0, input_tokens=19, max_new_tokens=512, seq_start=True",
            "[TM][INFO] [ProcessInferRequests] Request for 242 received.",
        ] {
            let mut r = crate::parsers::test_line(text);
            assert!(apply(text, &mut r));
            assert_eq!(r.attributes.get_str(names::LLM_REQUEST_ID), Some("242"));
            assert_eq!(r.attributes.get_str(names::LLM_EVENT), None, "no lifecycle");
        }
    }
}
