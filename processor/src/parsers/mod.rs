//! One parser per inference server. Each reads the server's own line (wrappers already
//! removed) and sets attributes on the record; a line it does not recognise is left alone.

pub mod duration;
pub mod fields;
pub mod generic;
pub mod http;
pub mod llamacpp;
pub mod lmdeploy;
pub mod ray;
pub mod sglang;
pub mod startup;
pub mod tgi;
pub mod triton;
pub mod trtllm;
pub mod vllm;

/// A log record holding `text` alone, for the parsers' tests.
#[cfg(test)]
pub(crate) fn test_line(text: &str) -> model::Record {
    model::Record::log(
        model::RecordId(1),
        model::Timestamp::now(),
        model::Timestamp::now(),
        std::sync::Arc::default(),
        text.to_string(),
    )
}
