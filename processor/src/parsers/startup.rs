//! The model a server was started with, from the line it logs when it starts: the one line
//! that names it for servers whose request and stats lines do not (vLLM, TGI, SGLang). The
//! processor gives it to the container's later lines (see `InferenceLogProcessor`), so the
//! figures of `/metrics` and the dashboard are per model.
//!
//! - vLLM: `Initializing a V1 LLM engine (v0.8.3) with config: model='…', …,
//!   served_model_name=…, …` (v0: `an LLM engine`);
//! - TGI: `text_generation_launcher: Args { model_id: "…", … }` (on one line, or pretty-printed
//!   over many, which the source joins into one record);
//! - SGLang: `server_args=ServerArgs(model_path='…', …, served_model_name='…', …)`;
//! - llama.cpp: `srv    load_model: loading model '/models/phi-3-mini-4k-instruct-q4.gguf'`
//!   (the path, as `llama-server` names the model in `/v1/models` unless given `--alias`,
//!   which it does not log).
//!
//! The name clients ask for (`served_model_name`) wins over the model's path.

use super::fields::{find, finder, has, value_after};
use memchr::memmem::Finder;
use model::{Record, names};

/// Sets `gen_ai.request.model`, `llm.server` and `llm.event=engine_config` if `text` is a
/// server's start line; returns whether it was one.
pub fn apply(text: &str, record: &mut Record) -> bool {
    // One scan rules out nearly every line.
    if !has!(text, "model") {
        return false;
    }
    let Some((server, model)) = vllm(text)
        .or_else(|| tgi(text))
        .or_else(|| sglang(text))
        .or_else(|| llamacpp(text))
    else {
        return false;
    };
    let a = &mut record.attributes;
    a.insert(names::GEN_AI_REQUEST_MODEL, model.to_string());
    a.insert(names::LLM_SERVER, server);
    a.insert(names::LLM_EVENT, "engine_config");
    true
}

/// The value of `key` in `config` (up to `,`, ` ` or `)`), quotes and brackets trimmed;
/// `None` when absent, empty or `None`.
fn named<'a>(config: &'a str, key: &Finder<'_>) -> Option<&'a str> {
    let v = value_after(config, key)?.trim_matches(['\'', '"', '[', ']']);
    (!v.is_empty() && v != "None").then_some(v)
}

fn vllm(text: &str) -> Option<(&'static str, &str)> {
    let at = find!(text, " LLM engine ")?;
    if !has!(&text[..at], "Initializing ") {
        return None;
    }
    let config = &text[at + find!(&text[at..], " with config: ")?..];
    let model = named(config, finder!("served_model_name="))
        .or_else(|| named(config, finder!("model=")))?;
    Some(("vllm", model))
}

fn tgi(text: &str) -> Option<(&'static str, &str)> {
    let at = find!(text, "text_generation_launcher: Args {")?;
    let rest = &text[at..];
    let value = &rest[find!(rest, "model_id: \"")? + "model_id: \"".len()..];
    let model = &value[..value.find('"')?];
    (!model.is_empty()).then_some(("tgi", model))
}

fn sglang(text: &str) -> Option<(&'static str, &str)> {
    let at = find!(text, "server_args=ServerArgs(")?;
    let config = &text[at..];
    let model = named(config, finder!("served_model_name="))
        .or_else(|| named(config, finder!("model_path=")))?;
    Some(("sglang", model))
}

fn llamacpp(text: &str) -> Option<(&'static str, &str)> {
    let at = find!(text, "load_model: loading model '")?;
    let rest = &text[at + "load_model: loading model '".len()..];
    let model = &rest[..rest.find('\'')?];
    (!model.is_empty()).then_some(("llamacpp", model))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_line_names_the_served_model_else_the_model() {
        // Real start lines (vLLM: ramalama#912, kserve#4470, rust-lang/www.rust-lang.org#2107,
        // vllm#790; TGI, SGLang and llama.cpp: their users' issues and logs), shortened after
        // the fields read.
        for (line, expected) in [
            (
                "(EngineCore_0 pid=1) INFO 04-04 16:30:36 [core.py:61] Initializing a V1 LLM engine (v0.8.3.dev244+g8b3a4a17e) with config: model='google/gemma-3-1b-it', speculative_config=None, tokenizer='google/gemma-3-1b-it', seed=None, served_model_name=google/gemma-3-1b-it, num_scheduler_steps=1",
                Some(("vllm", "google/gemma-3-1b-it")),
            ),
            (
                "INFO 05-14 17:44:22 [llm_engine.py:240] Initializing a V0 LLM engine (v0.8.5.post1) with config: model='Qwen/Qwen3-14B', speculative_config=None, seed=None, served_model_name=Qwen/Qwen3-14B, num_scheduler_steps=1",
                Some(("vllm", "Qwen/Qwen3-14B")),
            ),
            (
                "INFO 01-14 03:08:50 llm_engine.py:234] Initializing an LLM engine (v0.6.6) with config: model='/workspace/models/models--Qwen--Qwen2-0.5B', speculative_config=None, seed=0, served_model_name=llama3-405b-instruct, num_scheduler_steps=1",
                Some(("vllm", "llama3-405b-instruct")),
            ),
            (
                "INFO 08-18 10:33:52 llm_engine.py:70] Initializing an LLM engine with config: model='/home/EvilCalf/PULSE/PULSE-7bv5/', tokenizer='/home/EvilCalf/PULSE/PULSE-7bv5/', seed=0)",
                Some(("vllm", "/home/EvilCalf/PULSE/PULSE-7bv5/")),
            ),
            (
                r#"2025-07-24T04:40:27.376225Z  INFO text_generation_launcher: Args { model_id: "google/gemma-3-27b-it", revision: None, validation_workers: 2, sharded: None }"#,
                Some(("tgi", "google/gemma-3-27b-it")),
            ),
            (
                "2024-09-03T04:36:57.491823Z  INFO text_generation_launcher: Args {\n    model_id: \"meta-llama/Meta-Llama-3.1-8B-Instruct\",\n    revision: None,\n    validation_workers: 2,",
                Some(("tgi", "meta-llama/Meta-Llama-3.1-8B-Instruct")),
            ),
            (
                "[2026-02-26 05:19:58] server_args=ServerArgs(model_path='zai-org/GLM-5-FP8', tokenizer_path='zai-org/GLM-5-FP8', tokenizer_mode='auto', served_model_name='glm-5', load_format='auto')",
                Some(("sglang", "glm-5")),
            ),
            (
                "[2026-08-28 21:19:23] server_args=ServerArgs(model_path='RadixArk/Qwen3.8-Flash-Next-NVFP4', revision='7b71922')",
                Some(("sglang", "RadixArk/Qwen3.8-Flash-Next-NVFP4")),
            ),
            (
                "srv    load_model: loading model '/home/bjorn/.cache/llama.cpp/bartowski_Qwen_Qwen3-14B-GGUF_Qwen_Qwen3-14B-Q8_0.gguf'",
                Some((
                    "llamacpp",
                    "/home/bjorn/.cache/llama.cpp/bartowski_Qwen_Qwen3-14B-GGUF_Qwen_Qwen3-14B-Q8_0.gguf",
                )),
            ),
            (
                "0.00.031.313 I srv    load_model: loading model 'models/Qwen3.8-27B-GGUF/Qwen3.8-27B-UD-Q4_K_XL.gguf'",
                Some((
                    "llamacpp",
                    "models/Qwen3.8-27B-GGUF/Qwen3.8-27B-UD-Q4_K_XL.gguf",
                )),
            ),
            ("Initializing the scheduler with model=x", None),
            ("srv    load_model: loading model '", None),
            ("loading model weights took 12.3 GiB", None),
        ] {
            let mut r = super::super::test_line(line);
            let found = apply(line, &mut r).then(|| {
                (
                    r.attributes.get_str(names::LLM_SERVER).unwrap_or_default(),
                    r.attributes
                        .get_str(names::GEN_AI_REQUEST_MODEL)
                        .unwrap_or_default(),
                )
            });
            assert_eq!(found, expected, "{line}");
        }
    }
}
