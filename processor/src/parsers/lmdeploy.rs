//! LMDeploy's request lines: `session_id=242, history_tokens=0, input_tokens=19,
//! max_new_tokens=512, …` and `prompt…, gen_config=EngineGenerationConfig(…,
//! max_new_tokens=512, …), prompt_token_id=[1, 3148, …]` (the prompt's size is the length
//! of that list).

use super::fields::value_after;
use super::fields::{find, has};
use model::{Record, names};

/// Sets token counts and limits; returns whether it set anything.
pub fn apply(text: &str, record: &mut Record) -> bool {
    if !has!(text, "_tokens=") && !has!(text, "prompt_token_id=[") {
        return false;
    }
    let mut any = false;
    for (key, name) in [
        ("input_tokens=", names::GEN_AI_USAGE_INPUT_TOKENS),
        ("max_new_tokens=", names::GEN_AI_REQUEST_MAX_TOKENS),
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
