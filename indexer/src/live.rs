//! Matching records that are not in the index yet (live tail) with the very query language
//! of the index: the records are indexed into a throwaway in-memory segment and searched,
//! so a tail and a search never disagree about what a query means.

use crate::search::{SearchRequest, build_query};
use crate::{IndexError, IndexSchema};
use model::Record;
use tantivy::collector::DocSetCollector;
use tantivy::directory::RamDirectory;
use tantivy::query::Query;

/// The in-memory segment's indexing budget (tantivy's smallest).
const BUDGET: usize = 15_000_000;

/// A search request applied to records in memory. Build one per tail client.
pub struct LiveFilter {
    schema: IndexSchema,
    query: Box<dyn Query>,
    /// Whether the request matches everything (then no segment is built).
    everything: bool,
}

impl LiveFilter {
    /// Checks `request` (a query mistake is [`IndexError::Query`]); its limit, cursor and
    /// time range are ignored: a tail shows what arrives.
    pub fn new(request: &SearchRequest) -> Result<Self, IndexError> {
        let schema = IndexSchema::new();
        let mut request = request.clone();
        request.from = None;
        request.to = None;
        request.after = None;
        let everything = matches!(request.query.trim(), "" | "*")
            && request.namespace.is_none()
            && request.pod.is_none()
            && request.container.is_none()
            && request.kind.is_none();
        let query = build_query(&schema, &IndexSchema::tokenizers(), &request)?;
        Ok(LiveFilter {
            schema,
            query,
            everything,
        })
    }

    /// The indexes of the records in `records` that match, in order.
    pub fn matching(&self, records: &[Record]) -> Result<Vec<usize>, IndexError> {
        if self.everything || records.is_empty() {
            return Ok((0..records.len()).collect());
        }
        let mut writer = tantivy::IndexBuilder::new()
            .schema(self.schema.schema.clone())
            .tokenizers(IndexSchema::tokenizers())
            .single_segment_index_writer(RamDirectory::create(), BUDGET)?;
        for record in records {
            writer.add_document(self.schema.document(
                record,
                &record.resource_json(),
                &mut Vec::new(),
            ))?;
        }
        let index = writer.finalize()?;
        IndexSchema::register_tokenizers(&index);
        let searcher = index.reader()?.searcher();
        let mut found: Vec<usize> = searcher
            .search(&*self.query, &DocSetCollector)?
            .into_iter()
            .map(|address| address.doc_id as usize)
            .collect();
        found.sort_unstable();
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::tests::record;

    #[test]
    fn live_records_match_as_they_would_in_the_index() {
        let records = vec![
            record(1, "vllm-0", 1, "Received request chatcmpl-a269fdcb"),
            record(2, "tgi-0", 2, "CUDA out of memory"),
            record(3, "vllm-0", 3, "Finished request chatcmpl-a269fdcb."),
        ];
        let filter = |query: &str, pod: Option<&str>| {
            LiveFilter::new(&SearchRequest {
                query: query.into(),
                pod: pod.map(str::to_string),
                ..SearchRequest::default()
            })
            .unwrap()
            .matching(&records)
            .unwrap()
        };
        assert_eq!(filter("chatcmpl-a269fdcb", None), [0, 2]);
        assert_eq!(filter("chatcmpl-a26*", None), [0, 2]);
        assert_eq!(filter("\"out of memory\"", None), [1]);
        assert_eq!(filter("*", Some("vllm-0")), [0, 2]);
        assert_eq!(filter("", None), [0, 1, 2]);
        assert!(
            LiveFilter::new(&SearchRequest {
                query: "body:(oops".into(),
                ..SearchRequest::default()
            })
            .is_err()
        );
    }
}
