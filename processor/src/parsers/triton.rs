//! Triton (and TensorRT-LLM behind it): request ids and model names from the glog lines
//! (`[request id: G-5e5fc60c] prepared: … model: pyannote_diarization, …`, `request id:
//! Thread Num: 2, Iter: 0, Fourth, model: my_model`, `successfully loaded 'stamp_slice'`).
//! TensorRT-LLM's own lines are `trtllm`'s.

use super::fields::find;
use model::{Record, names};

/// Sets what a Triton line says; returns whether it set anything.
pub fn apply(text: &str, record: &mut Record) -> bool {
    let mut any = false;
    if let Some(at) = find!(text, "request id: ") {
        let rest = &text[at + "request id: ".len()..];
        // `[request id: X]`, or `request id: X, model: M` where X may hold commas.
        let id = match find!(rest, ", model: ") {
            Some(end) if !rest[..end].contains(']') => &rest[..end],
            _ => rest.split([']', ',']).next().unwrap_or_default(),
        };
        if !id.is_empty() {
            record
                .attributes
                .insert(names::LLM_REQUEST_ID, id.to_string());
            any = true;
        }
    }
    let model = find!(text, ", model: ")
        .map(|i| &text[i + ", model: ".len()..])
        .and_then(|rest| rest.split(',').next())
        .or_else(|| {
            find!(text, "successfully loaded '")
                .map(|i| &text[i + "successfully loaded '".len()..])
                .and_then(|rest| rest.split('\'').next())
        });
    if let Some(model) = model.filter(|m| !m.is_empty()) {
        record
            .attributes
            .insert(names::GEN_AI_REQUEST_MODEL, model.to_string());
        any = true;
    }
    any
}
