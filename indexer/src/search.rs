//! The read path: a query, a time range and filters in; the newest matching records out.

use crate::{IndexError, IndexSchema};
use model::{Record, RecordKind, Timestamp};
use std::ops::Bound;
use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, Occur, PhrasePrefixQuery, Query, QueryParser, RangeQuery, TermQuery,
};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{Index, IndexReader, Order, TantivyDocument, Term};

/// The most hits one search returns; larger limits are capped (and the result says so).
pub const MAX_LIMIT: usize = 1000;

/// The windows (ns back from the newest time) in which the newest hits are looked for
/// first; the whole index comes last.
const NEWEST_WINDOWS: [i64; 3] = [
    15 * 60 * 1_000_000_000,
    2 * 3600 * 1_000_000_000,
    24 * 3600 * 1_000_000_000,
];

/// The shortest prefix a `word*` query may have, and how many terms it may expand to:
/// a prefix query's cost is bounded by both.
const MIN_PREFIX: usize = 3;
const MAX_PREFIX_EXPANSIONS: u32 = 1000;

/// Splits bare `word*` terms (no field, no quotes) off a query: tantivy's parser has no
/// plain prefix syntax, and its phrase prefix would split an id at its dashes. Returns the
/// rest of the query and the prefixes, which every hit must match.
fn split_prefix_words(query: &str) -> (String, Vec<String>) {
    let mut rest = Vec::new();
    let mut prefixes = Vec::new();
    let mut quoted = false;
    for word in query.split(' ') {
        let plain = !quoted
            && word.len() > 1
            && word.ends_with('*')
            && !word[..word.len() - 1]
                .contains(['*', ':', '"', '(', ')', '[', ']', '{', '}', '\\'])
            && !word.starts_with(['-', '+']);
        if word.matches('"').count() % 2 == 1 {
            quoted = !quoted;
        }
        if plain {
            prefixes.push(word[..word.len() - 1].to_string());
        } else {
            rest.push(word);
        }
    }
    (rest.join(" "), prefixes)
}

/// What to search for.
#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    /// tantivy query syntax over `body` and the exact fields (`k8s.pod.name:vllm-0`,
    /// `llm.e2e_ms:>5000`, `attributes.log.lines:12`, `chatcmpl-a26*`); empty or `*` matches
    /// everything.
    pub query: String,
    /// Earliest timestamp, inclusive.
    pub from: Option<Timestamp>,
    /// Latest timestamp, inclusive.
    pub to: Option<Timestamp>,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this pod.
    pub pod: Option<String>,
    /// Only this container.
    pub container: Option<String>,
    /// Only this kind of record.
    pub kind: Option<RecordKind>,
    /// Most hits to return (capped at [`MAX_LIMIT`]).
    pub limit: usize,
    /// Continue after the page that returned this cursor.
    pub after: Option<SearchCursor>,
}

/// Where a page of newest-first hits ended: the last hit's timestamp and how many hits with
/// exactly that timestamp were returned so far (many lines share a timestamp). Written as
/// `<nanos>-<count>` in URLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchCursor {
    /// Timestamp of the last hit returned, ns since the epoch.
    pub timestamp: i64,
    /// Hits at exactly `timestamp` returned so far.
    pub returned_at_timestamp: usize,
}

impl std::fmt::Display for SearchCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.timestamp, self.returned_at_timestamp)
    }
}

impl std::str::FromStr for SearchCursor {
    type Err = IndexError;

    fn from_str(s: &str) -> Result<Self, IndexError> {
        let bad = || IndexError::Query(format!("cursor `{s}` is not one this server gave out"));
        let (ts, n) = s.rsplit_once('-').ok_or_else(bad)?;
        Ok(SearchCursor {
            timestamp: ts.parse().map_err(|_| bad())?,
            returned_at_timestamp: n.parse().map_err(|_| bad())?,
        })
    }
}

/// What a search found.
#[derive(Clone, Debug)]
pub struct SearchResults {
    /// The newest matching records, newest first.
    pub hits: Vec<Record>,
    /// How many records match in all.
    pub total: usize,
    /// The limit that was applied.
    pub limit: usize,
    /// Whether the requested limit was above [`MAX_LIMIT`] and was lowered.
    pub limit_capped: bool,
    /// The cursor of the next page, when there may be one.
    pub next: Option<SearchCursor>,
}

/// Searches an index. Cheap to clone; each search sees the latest commit.
#[derive(Clone)]
pub struct LogSearcher {
    pub(crate) index: Index,
    pub(crate) schema: IndexSchema,
    pub(crate) reader: IndexReader,
}

impl LogSearcher {
    pub(crate) fn new(index: Index, schema: IndexSchema, reader: IndexReader) -> Self {
        LogSearcher {
            index,
            schema,
            reader,
        }
    }

    /// Runs `request`. A query with a syntax error gives [`IndexError::Query`] naming it.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResults, IndexError> {
        let limit = request.limit.min(MAX_LIMIT);
        let query = self.build_query(request)?;
        let searcher = self.reader.searcher();
        // A later page: the hits at or before the cursor's timestamp, less the ones at
        // exactly that timestamp that were already returned (ties keep their order within
        // one index state).
        let (page_query, skip): (Box<dyn Query>, usize) = match request.after {
            None => (query.box_clone(), 0),
            Some(c) => (
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, query.box_clone()),
                    (
                        Occur::Must,
                        Box::new(RangeQuery::new(
                            Bound::Unbounded,
                            Bound::Included(Term::from_field_i64(
                                self.schema.timestamp,
                                c.timestamp,
                            )),
                        )),
                    ),
                ])),
                c.returned_at_timestamp,
            ),
        };
        let want = (limit + skip).max(1);
        // The newest hits are looked for in growing windows back from the newest possible
        // time: when a window holds enough of them, no older document can be among the
        // newest, and the rest of the index is never sorted (listing the newest 100 of 2M
        // records went from ~94 ms to ~6 ms). Windows that reach past `from` narrow nothing.
        let top_end = match request.after {
            Some(c) => Some(c.timestamp),
            None => self.newest_timestamp(&searcher),
        }
        .map(|t| request.to.map_or(t, |to| t.min(to.unix_nanos())));
        let windows: Vec<i64> = match top_end {
            Some(end) => NEWEST_WINDOWS
                .iter()
                .map(|w| end.saturating_sub(*w))
                .filter(|start| request.from.is_none_or(|f| *start > f.unix_nanos()))
                .collect(),
            None => Vec::new(),
        };
        let newest_first =
            || TopDocs::with_limit(want).order_by_fast_field::<i64>("timestamp", Order::Desc);
        let (top, total) = if windows.is_empty() && request.after.is_none() {
            searcher.search(&*page_query, &(newest_first(), Count))?
        } else {
            let total = searcher.search(&*query, &Count)?;
            let mut top = Vec::new();
            for start in windows.into_iter().map(Some).chain([None]) {
                let windowed: Box<dyn Query> = match start {
                    Some(start) => Box::new(BooleanQuery::new(vec![
                        (Occur::Must, page_query.box_clone()),
                        (
                            Occur::Must,
                            Box::new(RangeQuery::new(
                                Bound::Included(Term::from_field_i64(self.schema.timestamp, start)),
                                Bound::Unbounded,
                            )),
                        ),
                    ])),
                    None => page_query.box_clone(),
                };
                top = searcher.search(&*windowed, &newest_first())?;
                if top.len() >= want {
                    break;
                }
            }
            (top, total)
        };
        let mut skipped = 0;
        let mut hits = Vec::with_capacity(top.len().min(limit));
        let mut last: Option<(i64, usize)> = None;
        for (ts, address) in top {
            // Every document has a timestamp; the column is optional by type only.
            let ts = ts.unwrap_or(i64::MIN);
            if skipped < skip && request.after.is_some_and(|c| c.timestamp == ts) {
                skipped += 1;
                continue;
            }
            if hits.len() == limit {
                break;
            }
            hits.extend(self.stored_record(&searcher, address)?);
            last = Some(match last {
                Some((t, n)) if t == ts => (t, n + 1),
                _ => (ts, 1),
            });
        }
        let next = match last {
            Some((ts, n)) if hits.len() == limit && limit > 0 => Some(SearchCursor {
                timestamp: ts,
                returned_at_timestamp: n + match request.after {
                    Some(c) if c.timestamp == ts => c.returned_at_timestamp,
                    _ => 0,
                },
            }),
            _ => None,
        };
        Ok(SearchResults {
            hits,
            total,
            limit,
            limit_capped: request.limit > MAX_LIMIT,
            next,
        })
    }

    /// Every record about request `id`, oldest first (at most [`MAX_LIMIT`]): those whose
    /// `llm.request_id` is the id or vLLM v1's engine form of it (`<id>-<suffix>`), and
    /// every line that mentions the id whole (a router's access line, an error naming it),
    /// from any container.
    pub fn request_trace(&self, id: &str) -> Result<Vec<Record>, IndexError> {
        let id = id.trim();
        if id.is_empty() {
            return Err(IndexError::Query("an empty request id".into()));
        }
        let request_id = self
            .schema
            .attribute_exact
            .iter()
            .find(|(n, _)| *n == model::names::LLM_REQUEST_ID)
            .map(|(_, f)| *f)
            .ok_or_else(|| IndexError::Query("no request id field".into()))?;
        let mut suffixed = PhrasePrefixQuery::new_with_offset(vec![(
            0,
            Term::from_field_text(request_id, &format!("{id}-")),
        )]);
        suffixed.set_max_expansions(MAX_PREFIX_EXPANSIONS);
        let term = |field, text: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, text),
                IndexRecordOption::Basic,
            ))
        };
        let query = BooleanQuery::new(vec![
            (Occur::Should, term(request_id, id)),
            (Occur::Should, Box::new(suffixed)),
            (Occur::Should, term(self.schema.body, &id.to_lowercase())),
        ]);
        let searcher = self.reader.searcher();
        let top =
            TopDocs::with_limit(MAX_LIMIT).order_by_fast_field::<i64>("timestamp", Order::Asc);
        let mut records = Vec::new();
        for (_, address) in searcher.search(&query, &top)? {
            records.extend(self.stored_record(&searcher, address)?);
        }
        Ok(records)
    }

    /// Calls `visit` with every record matching `request` (its `limit` is ignored), in no
    /// particular order; returns how many matched. For exports and whole-index checks, not
    /// for interactive searches.
    pub fn scan(
        &self,
        request: &SearchRequest,
        mut visit: impl FnMut(Record),
    ) -> Result<usize, IndexError> {
        let query = self.build_query(request)?;
        let searcher = self.reader.searcher();
        let addresses = searcher.search(&*query, &DocSetCollector)?;
        for address in &addresses {
            if let Some(r) = self.stored_record(&searcher, *address)? {
                visit(r);
            }
        }
        Ok(addresses.len())
    }

    /// The newest timestamp in the index (the columns' maxima), if it holds anything.
    fn newest_timestamp(&self, searcher: &tantivy::Searcher) -> Option<i64> {
        searcher
            .segment_readers()
            .iter()
            .filter(|r| r.num_docs() > 0)
            .filter_map(|r| r.fast_fields().i64("timestamp").ok())
            .map(|c| c.max_value())
            .max()
    }

    /// The record stored for `address`; `None` (with a warning) when it cannot be read, so
    /// one damaged document does not fail a whole search.
    fn stored_record(
        &self,
        searcher: &tantivy::Searcher,
        address: tantivy::DocAddress,
    ) -> Result<Option<Record>, IndexError> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let json = doc
            .get_first(self.schema.record)
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let columns = searcher.segment_reader(address.segment_ord).fast_fields();
        let hi = columns.u64("id_hi")?.first(address.doc_id).unwrap_or(0);
        let lo = columns.u64("id_lo")?.first(address.doc_id).unwrap_or(0);
        let ts = columns.i64("timestamp")?.first(address.doc_id).unwrap_or(0);
        let id = model::RecordId((u128::from(hi) << 64) | u128::from(lo));
        Ok(
            match Record::from_content_json(json, id, Timestamp::from_unix_nanos(ts)) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an unreadable stored record");
                    None
                }
            },
        )
    }

    pub(crate) fn build_query(
        &self,
        request: &SearchRequest,
    ) -> Result<Box<dyn Query>, IndexError> {
        let (text, prefixes) = split_prefix_words(request.query.trim());
        let text = text.trim();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for prefix in prefixes {
            if prefix.chars().count() < MIN_PREFIX {
                return Err(IndexError::Query(format!(
                    "`{prefix}*`: a prefix needs at least {MIN_PREFIX} characters"
                )));
            }
            let term = Term::from_field_text(self.schema.body, &prefix.to_lowercase());
            let mut q = PhrasePrefixQuery::new_with_offset(vec![(0, term)]);
            q.set_max_expansions(MAX_PREFIX_EXPANSIONS);
            clauses.push((Occur::Must, Box::new(q)));
        }
        if !text.is_empty() && text != "*" {
            let mut parser = QueryParser::for_index(&self.index, vec![self.schema.body]);
            // People typing several words into a log search mean all of them.
            parser.set_conjunction_by_default();
            let q = parser.parse_query(text).map_err(|e| {
                // The strict parser only says that the query is wrong; the lenient one says
                // where.
                let (_, errors) = parser.parse_query_lenient(text);
                match errors.first() {
                    Some(where_) => IndexError::Query(format!("{where_} in `{text}`")),
                    None => IndexError::Query(format!("{e} in `{text}`")),
                }
            })?;
            clauses.push((Occur::Must, q));
        }
        if request.from.is_some() || request.to.is_some() {
            let bound = |t: Option<Timestamp>| match t {
                Some(t) => {
                    Bound::Included(Term::from_field_i64(self.schema.timestamp, t.unix_nanos()))
                }
                None => Bound::Unbounded,
            };
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(bound(request.from), bound(request.to))),
            ));
        }
        let exact = |field, value: &str| -> (Occur, Box<dyn Query>) {
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(field, value),
                    IndexRecordOption::Basic,
                )),
            )
        };
        let resource_field = |name: &str| {
            self.schema
                .resource_exact
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, f)| *f)
        };
        for (name, value) in [
            (model::names::K8S_NAMESPACE_NAME, &request.namespace),
            (model::names::K8S_POD_NAME, &request.pod),
            (model::names::K8S_CONTAINER_NAME, &request.container),
        ] {
            if let (Some(field), Some(v)) = (resource_field(name), value) {
                clauses.push(exact(field, v));
            }
        }
        if let Some(kind) = request.kind {
            clauses.push(exact(self.schema.kind, kind.as_str()));
        }
        Ok(match clauses.len() {
            0 => Box::new(AllQuery),
            1 => clauses
                .pop()
                .map(|(_, q)| q)
                .unwrap_or_else(|| Box::new(AllQuery)),
            _ => Box::new(BooleanQuery::new(clauses)),
        })
    }
}

#[cfg(test)]
mod tests;
