//! Infersight's transforms: recognise what inference servers print and turn it into typed
//! attributes with the contract's names (DESIGN.md §3).
//!
//! Owns: wrapper stripping ([`wrappers`]), the level of a line's prefix ([`severity`]), one
//! parser per server under [`parsers`], error classification, request lifecycles
//! ([`lifecycle`]), the LLM metrics registry ([`metrics`]), and the [`InferenceLogProcessor`]
//! that applies them to records. Multi-line grouping happens before, in the source, where
//! checkpoints can account for it. Which server a container runs is learned from its lines
//! (a parser's, or a signature in [`detect`]) and remembered per container. Requests and
//! engine stats get their pod's GPU figures from the `gpu` records passing by
//! ([`gpu_join`]).
//!
//! Must not know about: files, sockets, tokio, the index or HTTP. Everything here is pure
//! functions and small state machines over [`model::Record`]s, so it can be tested line by
//! line and run anywhere in a pipeline.

pub mod detect;
mod errors;
pub mod gpu_join;
pub mod lifecycle;
pub mod metrics;
pub mod parsers;
mod processor;
pub mod severity;
pub mod wrappers;

/// The corpus reader and generator the integration tests share, for unit tests too.
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod test_common;

pub use processor::{InferenceLogProcessor, SERVERS, ServerAssignment};
