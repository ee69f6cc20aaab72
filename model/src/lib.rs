//! The record model every Infersight crate shares (DESIGN.md §3 and §4).
//!
//! Owns: the one [`Record`] type and its stable JSON form, typed attribute values, the
//! contract's attribute names ([`names`]), timestamps, stable record ids, and the
//! [`Batch`] that carries records between stages together with its acknowledgement
//! ([`Finalizers`]) and source [`Checkpoint`]s.
//!
//! Must not know about: files, the network, tokio, tantivy or HTTP. Everything here is
//! plain data and pure functions so that every other crate can depend on it.

mod attr;
mod batch;
mod id;
mod json_text;
pub mod names;
mod record;
mod record_binary;
mod time;

pub use attr::{AttrKey, AttrValue, Attributes};
pub use batch::{Batch, BatchStatus, Checkpoint, CheckpointSet, Finalizers};
pub use id::RecordId;
pub use record::{KeptApart, Record, RecordKind, ResourceJsons, Severity, SharedResources, Stream};
pub use record_binary::{BINARY_MAGIC, BinaryError, BinaryMessage, is_binary, read_binary};
pub use time::{TimeError, Timestamp};
