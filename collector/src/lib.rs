//! Infersight's sources: they turn the outside world into [`model::Record`]s.
//!
//! Owns: one module per source (`files`, `kube`, `gpu`, `scrape`, `kafka` with its sink), each
//! with its discovery, decoding and checkpointing, the tables of current state some of
//! them keep for `/metrics` ([`table`]), the checkpoint file of index-less pipelines
//! ([`checkpoint_file`]), and the [`Shutdown`] signal sources obey.
//!
//! Must not know about: what inference servers print (that is `processor`), how records are
//! stored or served (`indexer`, `api`), or how a pipeline is configured (`pipelines`). A
//! source reads, decodes the container runtime's framing, attaches where a record came from,
//! and sends [`model::Batch`]es; it never interprets the message.

pub mod checkpoint_file;
pub mod files;
pub mod gpu;
pub mod kafka;
pub mod kube;
pub mod scrape;
mod shutdown;
pub mod table;

pub use shutdown::Shutdown;
