//! Infersight's index: tantivy, with the write path and the read path kept apart.
//!
//! Owns: the index schema derived from the record model ([`IndexSchema`]), opening an index
//! directory ([`IndexStore`]), the write path ([`IndexSink`]: add batches, commit documents
//! together with source checkpoints, then acknowledge; [`DocumentMaker`] makes a batch's
//! documents on another thread while the sink commits) and the read path ([`LogSearcher`]:
//! query, time range, filters, newest first, a search-after cursor).
//!
//! The read path also answers request traces ([`LogSearcher::request_trace`]), date
//! histograms and per-group percentiles ([`LogSearcher::histogram`],
//! [`LogSearcher::field_stats`]) from columns; the write path applies retention by age.
//!
//! The index is a set of time-partitioned splits (one tantivy index each): a time range opens only the
//! splits it overlaps; retention (by age and by bytes) drops whole splits; small splits are
//! merged in the background; a split that cannot be opened is quarantined alone.
//!
//! Must not know about: HTTP, the CLI, where records come from.

mod aggregate;
mod documents;
mod error;
mod live;
mod query_text;
mod resource_filter;
mod schema;
mod search;
mod segment_cache;
mod splits;
mod store;
mod time_range;
mod tokenizer;
mod writer;

pub use aggregate::{
    FieldStatsPartial, GroupStats, HistogramBucket, MAX_BUCKETS, MAX_GROUPS, MISSING_GROUP,
    StatsQuestion,
};
pub use documents::{DocumentBatch, DocumentMaker};
pub use error::IndexError;
pub use live::LiveFilter;
pub use schema::IndexSchema;
pub use search::{LogSearcher, MAX_LIMIT, SearchCursor, SearchRequest, SearchResults};
pub use store::{DiskReading, IndexHealth, IndexStats, IndexStore};
pub use tokenizer::LogTokenizer;
pub use writer::{IndexSink, SinkOptions};
