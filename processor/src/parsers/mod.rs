//! One parser per inference server. Each reads the server's own line (wrappers already
//! removed) and sets attributes on the record; a line it does not recognise is left alone.

pub mod vllm;
