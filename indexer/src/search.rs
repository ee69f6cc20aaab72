//! The read path: a query, a time range and filters in; the newest matching records out.

use crate::query_text::query_of;
use crate::resource_filter::{ResourceFilter, ValueTest};
use crate::schema::NUMERIC_ATTRIBUTE_FIELDS;
use crate::splits::{Split, SplitSet};
use crate::{IndexError, IndexSchema};
use model::{Record, RecordKind, Timestamp};
use std::sync::Arc;
use tantivy::collector::{Collector, Count, DocSetCollector, TopDocs};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, EnableScoring, Occur, PhrasePrefixQuery, Query,
    QueryParser, QueryParserError, TermQuery,
};
use tantivy::schema::{FieldType, IndexRecordOption, Value};
use tantivy::tokenizer::TokenizerManager;
use tantivy::{DocAddress, Order, TantivyDocument, Term};

/// The most hits one search returns; larger limits are capped (and the result says so).
pub const MAX_LIMIT: usize = 1000;

/// The windows (ns back from the newest time) in which the newest hits are looked for
/// first; the whole range comes last. A window is tried only where it is at most half of
/// the range it narrows (a window as wide as the range only repeats the work).
const NEWEST_WINDOWS: [i64; 5] = [
    60 * 1_000_000_000,
    5 * 60 * 1_000_000_000,
    15 * 60 * 1_000_000_000,
    2 * 3600 * 1_000_000_000,
    24 * 3600 * 1_000_000_000,
];

/// The shortest prefix a `word*` query may have: a prefix query's cost is bounded by it.
const MIN_PREFIX: usize = 3;
/// The longest: its automaton grows with it (tantivy refuses one of ~1000 states).
const MAX_PREFIX: usize = 200;
/// How many request ids a trace's `id-…` prefix may expand to.
const MAX_PREFIX_EXPANSIONS: u32 = 1000;

/// Rewrites each prefix `word*` (on `body`) and `field:value*` (on an exact field) into the
/// anchored regex `field:/word.*/` that tantivy's parser matches terms with, in place, so
/// `a* OR b` keeps its meaning: the parser has no plain prefix syntax, its phrase prefix
/// splits an id at its dashes, needs two terms on an exact field, and `field:value*` is
/// otherwise a literal term that silently matches nothing. A `/regex/` the user writes is
/// refused (its cost has no bound); words in quotes are left alone.
fn prefixes_as_regexes(schema: &IndexSchema, query: &str) -> Result<String, IndexError> {
    let mut quoted = false;
    let mut words = Vec::new();
    for word in query.split(' ') {
        let was_quoted = quoted;
        if word.matches('"').count() % 2 == 1 {
            quoted = !quoted;
        }
        if was_quoted || word.contains('"') {
            words.push(word.to_string());
            continue;
        }
        let core = word.trim_start_matches(['+', '-', '(']);
        let lead = &word[..word.len() - core.len()];
        let core = core.trim_end_matches(')');
        let trail = &word[lead.len() + core.len()..];
        if core.starts_with('/') || core.contains(":/") {
            let quoted = match core.split_once(":/") {
                Some((field, value)) if !core.starts_with('/') => format!("{field}:\"/{value}\""),
                _ => format!("\"{core}\""),
            };
            return Err(IndexError::Query(format!(
                "`{word}`: a value that starts with `/` goes in quotes ({quoted}); regular \
                 expressions are not run, prefixes are (`k8s.pod.name:vllm-*`)"
            )));
        }
        let Some(prefix) = core.strip_suffix('*').filter(|p| !p.is_empty()) else {
            words.push(word.to_string());
            continue;
        };
        // `field:*` (the field is set) of a field that does not exist fails only when
        // searched, where it read as the index's fault.
        if let Some(field) = prefix.strip_suffix(':')
            && schema.schema.find_field(field).is_none()
        {
            return Err(IndexError::Query(format!(
                "Field does not exist: '{field}' in `{word}`{}",
                did_you_mean(schema, field)
            )));
        }
        let (field_name, value) = match prefix.split_once(':') {
            Some((field, value)) => (field, value),
            None => ("body", prefix),
        };
        if value.is_empty()
            || value.contains(['*', ':', '(', ')', '[', ']', '{', '}', '\\', '^', '~'])
        {
            words.push(word.to_string());
            continue;
        }
        let Some((field, path)) = schema.schema.find_field(field_name) else {
            // The parser names the unknown field.
            words.push(word.to_string());
            continue;
        };
        let entry = schema.schema.get_field_entry(field);
        if !path.is_empty()
            || !matches!(entry.field_type(), FieldType::Str(_))
            || !entry.is_indexed()
        {
            return Err(IndexError::Query(format!(
                "`{word}`: prefixes work on the message and the exact fields (`k8s.pod.name:vllm-*`), \
                 not on `{field_name}`; ask its value whole"
            )));
        }
        check_prefix_length(value)?;
        // The message's terms are lowercase; an exact field's are as logged.
        let value = if field == schema.body {
            value.to_lowercase()
        } else {
            value.to_string()
        };
        // The grammar ends a regex at `/` unless escaped.
        let pattern = prefix_pattern(&value).replace('/', "\\/");
        words.push(format!("{lead}{field_name}:/{pattern}/{trail}"));
    }
    Ok(words.join(" "))
}

/// The fields a user who wrote `name` (`pod`, `model`, `status`) may have meant: those with
/// a part (between dots and underscores) that begins with it; and any other attribute is
/// under `attributes.`. Empty when nothing fits.
fn did_you_mean(schema: &IndexSchema, name: &str) -> String {
    let name = name.to_lowercase();
    if name.is_empty() {
        return String::new();
    }
    let fits: Vec<&str> = schema
        .schema
        .fields()
        .map(|(_, entry)| entry.name())
        .filter(|field| {
            !UNSEARCHED_FIELDS.contains(field)
                && field
                    .split(['.', '_'])
                    .any(|part| part.starts_with(name.as_str()))
        })
        .take(4)
        .collect();
    match fits.as_slice() {
        [] => format!("; an attribute of that name is `attributes.{name}`"),
        fits => format!(
            "; did you mean {}? (or `attributes.{name}`)",
            fits.iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Fields kept for the index's own use (the record id's halves, the resource's JSON, the
/// stored record) or named by their path (`attributes.…`): never suggested.
const UNSEARCHED_FIELDS: [&str; 5] = [
    crate::schema::ID_SOURCE,
    crate::schema::ID_POSITION,
    "resource",
    "record",
    "attributes",
];

/// Refuses a prefix too short to bound its cost or too long for its automaton.
fn check_prefix_length(prefix: &str) -> Result<(), IndexError> {
    match prefix.chars().count() {
        n if n < MIN_PREFIX => Err(IndexError::Query(format!(
            "`{prefix}*`: a prefix needs at least {MIN_PREFIX} characters"
        ))),
        n if n > MAX_PREFIX => Err(IndexError::Query(format!(
            "a prefix of {n} characters: at most {MAX_PREFIX} (give a long value whole, without `*`)"
        ))),
        _ => Ok(()),
    }
}

/// The regex of the terms that begin with `prefix` (tantivy anchors it at both ends).
fn prefix_pattern(prefix: &str) -> String {
    format!("{}.*", regex_syntax::escape(prefix))
}

/// Rewrites `field:number` on a numeric column (not indexed: columns only) into the
/// one-value range `field:[number TO number]`, which tantivy answers from the column; the
/// parser would refuse the term. Words in quotes are left alone.
fn numeric_terms_as_ranges(query: &str) -> String {
    let mut quoted = false;
    let words: Vec<String> = query
        .split(' ')
        .map(|word| {
            let was_quoted = quoted;
            if word.matches('"').count() % 2 == 1 {
                quoted = !quoted;
            }
            if was_quoted {
                return word.to_string();
            }
            let (sign, rest) = match word.strip_prefix(['+', '-']) {
                Some(rest) => (&word[..1], rest),
                None => ("", word),
            };
            match rest.rsplit_once(':') {
                Some((field, value))
                    if NUMERIC_ATTRIBUTE_FIELDS.contains(&field)
                        && value.parse::<f64>().is_ok_and(f64::is_finite) =>
                {
                    format!("{sign}{field}:[{value} TO {value}]")
                }
                _ => word.to_string(),
            }
        })
        .collect();
    words.join(" ")
}

/// What to search for.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SearchRequest {
    /// tantivy query syntax over `body` and the exact fields (`k8s.pod.name:vllm-0`,
    /// `llm.e2e_ms:>5000`, `attributes.log.lines:12`, `chatcmpl-a26*`); empty or `*` matches
    /// everything.
    pub query: String,
    /// Earliest timestamp, inclusive.
    pub from: Option<Timestamp>,
    /// Latest timestamp, inclusive.
    pub to: Option<Timestamp>,
    /// Only this namespace; `name*` (3+ characters before the `*`): those that begin so,
    /// as for `pod` and `container`.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
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
    /// Splits whose time span overlaps the request's range (the others were not opened).
    pub splits_searched: usize,
    /// Of those, the splits whose hits were sorted (the rest were only counted: every
    /// record in them is older than the page).
    pub splits_sorted: usize,
}

/// Searches an index. Cheap to clone; each search sees the latest commit.
#[derive(Clone)]
pub struct LogSearcher {
    pub(crate) splits: Arc<SplitSet>,
    /// This version's schema; a split an older version wrote has its own.
    pub(crate) schema: Arc<IndexSchema>,
    pub(crate) tokenizers: TokenizerManager,
}

/// A hit: its timestamp, the split (index into the searched snapshot) and the document.
type Hit = (i64, usize, DocAddress);

impl LogSearcher {
    pub(crate) fn new(splits: Arc<SplitSet>) -> Self {
        LogSearcher {
            schema: splits.schema.clone(),
            splits,
            tokenizers: IndexSchema::tokenizers(),
        }
    }

    /// Runs `request`. A query with a syntax error gives [`IndexError::Query`] naming it.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResults, IndexError> {
        let limit = request.limit.min(MAX_LIMIT);
        let query = self.build_query(request)?;
        let from = request.from.map(Timestamp::unix_nanos);
        let to = request.to.map(Timestamp::unix_nanos);
        // A later page: the hits at or before the cursor's timestamp, less the ones at
        // exactly that timestamp that were already returned (ties keep their order within
        // one index state).
        let paged = |query: &dyn Query| -> Box<dyn Query> {
            match request.after {
                None => query.box_clone(),
                Some(c) => Box::new(BooleanQuery::new(vec![
                    (Occur::Must, query.box_clone()),
                    (
                        Occur::Must,
                        Box::new(self.schema.time_range(None, Some(c.timestamp))),
                    ),
                ])),
            }
        };
        let page_query = paged(&*query);
        let skip = request.after.map_or(0, |c| c.returned_at_timestamp);
        let page_end = match (request.after, to) {
            (Some(c), Some(t)) => Some(c.timestamp.min(t)),
            (Some(c), None) => Some(c.timestamp),
            (None, t) => t,
        };
        let want = (limit + skip).max(1);
        // Splits newest first: once `want` hits are newer than everything a split holds,
        // it (and every split after it) is only counted, never sorted.
        let splits = self.splits.overlapping(from, to);
        let mut searchers = Vec::with_capacity(splits.len());
        let mut top: Vec<Hit> = Vec::new();
        let mut total = 0;
        let mut splits_sorted = 0;
        for (i, split) in splits.iter().enumerate() {
            let own = self.own_query(split, |schema| self.query_for(schema, request));
            let own_page = own.as_deref().map(paged);
            let (query, page_query) = match (&own, &own_page) {
                (Some(q), Some(p)) => (&**q, &**p),
                _ => (&*query, &*page_query),
            };
            let searcher = split.reader.searcher();
            let stats = split.stats_seen_by(&searcher);
            let outranked =
                top.len() >= want && stats.max_ts.is_none_or(|newest| newest < top[want - 1].0);
            if outranked || !stats.overlaps(from, page_end) {
                total += search_within(&searcher, query, &Count, (from, to))?;
            } else {
                let end = stats.max_ts.map(|t| page_end.map_or(t, |e| t.min(e)));
                let (hits, count) = self.newest_in_split(
                    &searcher,
                    query,
                    page_query,
                    want,
                    (stats.min_ts, end),
                    request,
                )?;
                total += count;
                splits_sorted += 1;
                top.extend(hits.into_iter().map(|(ts, address)| (ts, i, address)));
                // Stable: ties stay in split order, then in each split's order.
                top.sort_by_key(|h| std::cmp::Reverse(h.0));
                top.truncate(want);
            }
            searchers.push(searcher);
        }
        let mut reader = HitReader::default();
        let mut skipped = 0;
        let mut hits = Vec::with_capacity(top.len().min(limit));
        let mut last: Option<(i64, usize)> = None;
        for (ts, split, address) in top {
            if skipped < skip && request.after.is_some_and(|c| c.timestamp == ts) {
                skipped += 1;
                continue;
            }
            if hits.len() == limit {
                break;
            }
            hits.extend(reader.read(split, &searchers[split], &splits[split], address)?);
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
            splits_searched: splits.len(),
            splits_sorted,
        })
    }

    /// The newest `want` hits of `page_query` in one split whose records span `span` (ns;
    /// the end already bounded by the page), and how many records match `query` there.
    ///
    /// The newest hits are looked for in growing windows back from the newest time: when a
    /// window holds enough of them, no older document can be among the newest, and the
    /// rest of the split is never sorted (listing the newest 100 of 2M records went from
    /// ~94 ms to ~6 ms). Windows that reach past `from` or the split's oldest record
    /// narrow nothing and are skipped.
    fn newest_in_split(
        &self,
        searcher: &tantivy::Searcher,
        query: &dyn Query,
        page_query: &dyn Query,
        want: usize,
        span: (Option<i64>, Option<i64>),
        request: &SearchRequest,
    ) -> Result<(Vec<(i64, DocAddress)>, usize), IndexError> {
        let (oldest, end) = span;
        let windows: Vec<i64> = match end {
            Some(end) => {
                // The oldest time a hit can have: the range's start or the split's oldest.
                let floor = match (request.from.map(Timestamp::unix_nanos), oldest) {
                    (Some(f), Some(o)) => Some(f.max(o)),
                    (f, o) => f.or(o),
                };
                NEWEST_WINDOWS
                    .iter()
                    .filter(|w| floor.is_none_or(|f| **w <= end.saturating_sub(f) / 2))
                    .map(|w| end.saturating_sub(*w))
                    .collect()
            }
            None => Vec::new(),
        };
        let newest_first = || {
            TopDocs::with_limit(want)
                .order_by_fast_field::<i64>(crate::schema::TIMESTAMP, Order::Desc)
        };
        // Every document has a timestamp; the column is optional by type only.
        let plain = |top: Vec<(Option<i64>, DocAddress)>| {
            top.into_iter()
                .map(|(ts, address)| (ts.unwrap_or(i64::MIN), address))
                .collect::<Vec<_>>()
        };
        let from = request.from.map(Timestamp::unix_nanos);
        let to = request.to.map(Timestamp::unix_nanos);
        if windows.is_empty() && request.after.is_none() {
            let (top, count) =
                search_within(searcher, page_query, &(newest_first(), Count), (from, to))?;
            return Ok((plain(top), count));
        }
        let count = search_within(searcher, query, &Count, (from, to))?;
        let mut top = Vec::new();
        for start in windows.into_iter().map(Some).chain([None]) {
            let windowed: Box<dyn Query> = match start {
                Some(start) => Box::new(BooleanQuery::new(vec![
                    (Occur::Must, page_query.box_clone()),
                    (
                        Occur::Must,
                        Box::new(self.schema.time_range(Some(start), None)),
                    ),
                ])),
                None => page_query.box_clone(),
            };
            top = search_within(searcher, &*windowed, &newest_first(), (start.or(from), end))?;
            if top.len() >= want {
                break;
            }
        }
        Ok((plain(top), count))
    }

    /// Every record about request `id`, oldest first (at most [`MAX_LIMIT`]): those whose
    /// `llm.request_id` is the id or vLLM v1's engine form of it (`<id>-<suffix>`), and
    /// every line that mentions the id whole (a router's access line, an error naming it),
    /// from any container; only those within the time range and namespace, pod and
    /// container filters of `within` (its query and kind must be empty).
    ///
    /// A number (llama.cpp's task ids, Triton's) names a request only in one server's run:
    /// it is matched in the request id field only, never in a line's text ("73 tokens"),
    /// and `within` should narrow it to the pod and a time around the line it came from.
    pub fn request_trace(
        &self,
        id: &str,
        within: &SearchRequest,
    ) -> Result<Vec<Record>, IndexError> {
        let id = id.trim();
        if id.is_empty() {
            return Err(IndexError::Query("an empty request id".into()));
        }
        if !matches!(within.query.trim(), "" | "*") || within.kind.is_some() {
            return Err(IndexError::Query(
                "a request trace is narrowed by time, namespace, pod and container only".into(),
            ));
        }
        let traced = |schema: &IndexSchema| -> Result<Box<dyn Query>, IndexError> {
            let trace = trace_query(schema, id);
            let scoped = within.from.is_some()
                || within.to.is_some()
                || within.namespace.is_some()
                || within.pod.is_some()
                || within.container.is_some();
            Ok(match scoped {
                true => Box::new(BooleanQuery::new(vec![
                    (Occur::Must, trace),
                    (Occur::Must, self.query_for(schema, within)?),
                ])),
                false => trace,
            })
        };
        let query = traced(&self.schema)?;
        let oldest_first = TopDocs::with_limit(MAX_LIMIT)
            .order_by_fast_field::<i64>(crate::schema::TIMESTAMP, Order::Asc);
        let mut searchers = Vec::new();
        let mut found: Vec<Hit> = Vec::new();
        let splits = self.splits.overlapping(
            within.from.map(Timestamp::unix_nanos),
            within.to.map(Timestamp::unix_nanos),
        );
        for (i, split) in splits.iter().enumerate() {
            let own = self.own_query(split, traced);
            let searcher = split.reader.searcher();
            for (ts, address) in
                searcher.search(own.as_deref().unwrap_or(&*query), &oldest_first)?
            {
                found.push((ts.unwrap_or(i64::MIN), i, address));
            }
            searchers.push(searcher);
        }
        found.sort_by_key(|h| h.0);
        found.truncate(MAX_LIMIT);
        let mut reader = HitReader::default();
        let mut records = Vec::with_capacity(found.len());
        for (_, split, address) in found {
            records.extend(reader.read(split, &searchers[split], &splits[split], address)?);
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
        let from = request.from.map(Timestamp::unix_nanos);
        let to = request.to.map(Timestamp::unix_nanos);
        let mut matched = 0;
        for split in self.splits.overlapping(from, to) {
            let own = self.own_query(&split, |schema| self.query_for(schema, request));
            let searcher = split.reader.searcher();
            let addresses = searcher.search(own.as_deref().unwrap_or(&*query), &DocSetCollector)?;
            let mut reader = HitReader::default();
            for address in &addresses {
                if let Some(r) = reader.read(0, &searcher, &split, *address)? {
                    visit(r);
                }
            }
            matched += addresses.len();
        }
        Ok(matched)
    }

    pub(crate) fn build_query(
        &self,
        request: &SearchRequest,
    ) -> Result<Box<dyn Query>, IndexError> {
        self.query_for(&self.schema, request)
    }

    /// The query of `request` over a split of `schema`.
    pub(crate) fn query_for(
        &self,
        schema: &IndexSchema,
        request: &SearchRequest,
    ) -> Result<Box<dyn Query>, IndexError> {
        build_query(schema, &self.tokenizers, request)
    }

    /// The query for `split` when it was written with another version's schema (`build`
    /// with its fields), else `None`: the query built for this version's schema serves it.
    /// A query this version accepts but the split cannot answer (it names a field added
    /// since) matches nothing there.
    pub(crate) fn own_query(
        &self,
        split: &Split,
        build: impl FnOnce(&IndexSchema) -> Result<Box<dyn Query>, IndexError>,
    ) -> Option<Box<dyn Query>> {
        if self.splits.has_current_schema(split) {
            return None;
        }
        Some(build(&split.schema).unwrap_or_else(|e| {
            tracing::debug!(split = split.id, error = %e, "a query an older split cannot answer");
            Box::new(EmptyQuery)
        }))
    }
}

/// What [`LogSearcher::request_trace`] looks for: records whose `llm.request_id` is `id`,
/// vLLM v1's engine form of it (`<id>-<suffix>`) or the x-request-id it was made of (a
/// proxy's line), and lines that mention `id` whole (only those in a split without a
/// request id field). A number is looked for in the request id field only.
fn trace_query(schema: &IndexSchema, id: &str) -> Box<dyn Query> {
    let term = |field, text: &str| -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, text),
            IndexRecordOption::Basic,
        ))
    };
    let request_id = schema
        .attribute_exact
        .iter()
        .find(|(n, _)| *n == model::names::LLM_REQUEST_ID)
        .map(|(_, f)| *f);
    if id.bytes().all(|b| b.is_ascii_digit()) {
        return match request_id {
            Some(field) => term(field, id),
            None => Box::new(EmptyQuery),
        };
    }
    let mut clauses = vec![(Occur::Should, term(schema.body, &id.to_lowercase()))];
    if let Some(request_id) = request_id {
        let mut suffixed = PhrasePrefixQuery::new_with_offset(vec![(
            0,
            Term::from_field_text(request_id, &format!("{id}-")),
        )]);
        suffixed.set_max_expansions(MAX_PREFIX_EXPANSIONS);
        clauses.push((Occur::Should, term(request_id, id)));
        clauses.push((Occur::Should, Box::new(suffixed)));
        // vLLM names a request `chatcmpl-<x-request-id>` (`cmpl-`, …) when the caller or a
        // proxy sends that header, and the proxy logs the bare header.
        if let Some((kind, header)) = id.split_once('-')
            && !kind.is_empty()
            && kind.bytes().all(|b| b.is_ascii_alphabetic())
            && !header.is_empty()
        {
            clauses.push((Occur::Should, term(request_id, header)));
        }
    }
    Box::new(BooleanQuery::new(clauses))
}

/// `searcher.search(query, collector)` over only the segments that hold records in `span`
/// (ns, inclusive, either end open), for a `query` that matches nothing outside it: the
/// others would only be opened (their columns parsed) to find nothing, and in a split of
/// many segments that was much of a 15-minute search.
fn search_within<C: Collector>(
    searcher: &tantivy::Searcher,
    query: &dyn Query,
    collector: &C,
    span: (Option<i64>, Option<i64>),
) -> Result<C::Fruit, IndexError> {
    let scoring = if collector.requires_scoring() {
        EnableScoring::enabled_from_searcher(searcher)
    } else {
        EnableScoring::disabled_from_searcher(searcher)
    };
    let weight = query.weight(scoring)?;
    let (from, to) = (span.0.unwrap_or(i64::MIN), span.1.unwrap_or(i64::MAX));
    let mut fruits = Vec::new();
    for (ord, segment) in searcher.segment_readers().iter().enumerate() {
        if span != (None, None) {
            match crate::time_range::segment_span(segment)? {
                Some((lo, hi)) if hi >= from && lo <= to => {}
                _ => continue,
            }
        }
        fruits.push(collector.collect_segment(&*weight, ord as u32, segment)?);
    }
    Ok(collector.merge_fruits(fruits)?)
}

/// Reads stored records of one search, opening each segment's columns once: opening a
/// column parses its block index, and doing it for every hit was most of a search's time.
#[derive(Default)]
struct HitReader {
    segments: std::collections::HashMap<(usize, u32), SegmentColumns>,
}

struct SegmentColumns {
    id_source: Option<tantivy::columnar::BytesColumn>,
    id_position: Column<u64>,
    timestamp: Column<i64>,
    observed: Column<i64>,
    resource: Option<StrColumn>,
    /// Parsed resources by their ordinal in the column (a pod's records share one).
    resources: std::collections::HashMap<u64, Arc<model::Attributes>>,
}

impl HitReader {
    /// The record stored for `address` in `split`, number `ordinal` of the searched
    /// snapshot; `None` (with a warning) when it cannot be read, so one damaged document
    /// does not fail a whole search.
    fn read(
        &mut self,
        ordinal: usize,
        searcher: &tantivy::Searcher,
        split: &Split,
        address: DocAddress,
    ) -> Result<Option<Record>, IndexError> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let json = doc
            .get_first(split.schema.record)
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let c = match self.segments.entry((ordinal, address.segment_ord)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let columns = searcher.segment_reader(address.segment_ord).fast_fields();
                e.insert(SegmentColumns {
                    id_source: columns.bytes(crate::schema::ID_SOURCE)?,
                    id_position: columns.u64(crate::schema::ID_POSITION)?,
                    timestamp: columns.i64(crate::schema::TIMESTAMP)?,
                    observed: columns.i64("observed")?,
                    resource: columns.str(crate::schema::RESOURCE)?,
                    resources: Default::default(),
                })
            }
        };
        let doc_id = address.doc_id;
        let mut source = Vec::with_capacity(8);
        if let Some(col) = &c.id_source
            && let Some(ord) = col.term_ords(doc_id).next()
        {
            col.ord_to_bytes(ord, &mut source)
                .map_err(|e| IndexError::Tantivy(e.into()))?;
        }
        let source = <[u8; 8]>::try_from(source.as_slice()).map_or(0, u64::from_be_bytes);
        let position = c.id_position.first(doc_id).unwrap_or(0);
        let ts = c.timestamp.first(doc_id).unwrap_or(0);
        let observed = c.observed.first(doc_id).unwrap_or(ts);
        let id = model::RecordId::from_parts(source, position);
        let resource = match c
            .resource
            .as_ref()
            .and_then(|col| Some((col, col.term_ords(doc_id).next()?)))
        {
            Some((col, ord)) => match c.resources.get(&ord) {
                Some(r) => r.clone(),
                None => {
                    let mut text = String::new();
                    col.ord_to_str(ord, &mut text)
                        .map_err(|e| IndexError::Tantivy(e.into()))?;
                    let parsed = match serde_json::from_str::<model::Attributes>(&text) {
                        Ok(r) => Arc::new(r),
                        Err(e) => {
                            tracing::warn!(error = %e, "a stored record's resource is unreadable");
                            Arc::default()
                        }
                    };
                    c.resources.insert(ord, parsed.clone());
                    parsed
                }
            },
            None => Arc::default(),
        };
        Ok(
            match Record::from_content_json(
                json,
                model::KeptApart {
                    id,
                    timestamp: Timestamp::from_unix_nanos(ts),
                    observed_timestamp: Timestamp::from_unix_nanos(observed),
                    resource,
                },
            ) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an unreadable stored record");
                    None
                }
            },
        )
    }
}

/// The tantivy query of `request`: its query text (with `word*` prefixes and numeric
/// `field:number` terms rewritten), time range and filters.
pub(crate) fn build_query(
    schema: &IndexSchema,
    tokenizers: &TokenizerManager,
    request: &SearchRequest,
) -> Result<Box<dyn Query>, IndexError> {
    let text = prefixes_as_regexes(schema, &numeric_terms_as_ranges(request.query.trim()))?;
    let text = text.trim();
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if !text.is_empty() && text != "*" {
        let mut parser =
            QueryParser::new(schema.schema.clone(), vec![schema.body], tokenizers.clone());
        // People typing several words into a log search mean all of them.
        parser.set_conjunction_by_default();
        // Only the regexes `prefixes_as_regexes` writes: it refuses the user's own.
        parser.allow_regexes();
        // Errors quote the query as the user wrote it, not as rewritten.
        let asked = request.query.trim();
        // Built clause by clause (`crate::query_text`), which also makes
        // `-k8s.container.name:istio-proxy` alone mean everything but those.
        let q = query_of(&parser, text, Occur::Must).map_err(|e| {
            // The strict parser says only the first mistake it met, and of a syntax error
            // only that the query is wrong; the lenient one lists each, a syntax error with
            // where it is. "Only excluding terms" follows from a clause it left out for
            // another mistake, which is the one to name.
            let (_, errors) = parser.parse_query_lenient(text);
            let first = errors
                .iter()
                .find(|e| !matches!(e, QueryParserError::AllButQueryForbidden))
                .unwrap_or(&e);
            let said = match first {
                // tantivy 0.27 displays it as "Only excluding terms given".
                QueryParserError::ExpectedFloat(why) => {
                    format!("Expected a number ({why}): the timings, tokens, status and engine and GPU figures are numbers")
                }
                QueryParserError::FieldDoesNotExist(field) => {
                    return IndexError::Query(format!(
                        "{first} in `{asked}`{}",
                        did_you_mean(schema, field)
                    ));
                }
                other => other.to_string(),
            };
            IndexError::Query(format!("{said} in `{asked}`"))
        })?;
        // What tantivy accepts to parse but not to run (a range on an attribute under
        // `attributes.`, a set of values of a column-only field) fails here, as the user's
        // mistake, not later as the index's.
        if let Err(e) = q.weight(EnableScoring::disabled_from_schema(&schema.schema)) {
            let why = e.to_string();
            return Err(IndexError::Query(if why.contains("RangeQuery on JSON") {
                format!(
                    "`{asked}`: attributes under `attributes.` are matched exactly; ranges work \
                     on the numeric fields (llm.e2e_ms:>5000, http.response.status_code:[500 TO 599])"
                )
            } else {
                format!("{why} in `{asked}`")
            }));
        }
        clauses.push((Occur::Must, q));
    }
    if request.from.is_some() || request.to.is_some() {
        clauses.push((
            Occur::Must,
            Box::new(schema.time_range(
                request.from.map(Timestamp::unix_nanos),
                request.to.map(Timestamp::unix_nanos),
            )),
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
    for (name, value) in [
        (model::names::K8S_NAMESPACE_NAME, &request.namespace),
        (model::names::K8S_POD_NAME, &request.pod),
        (model::names::K8S_CONTAINER_NAME, &request.container),
    ] {
        let Some(value) = value else { continue };
        // A filter box's `vllm-*` is the pods whose names begin so.
        let test = match value.strip_suffix('*') {
            Some(prefix) => {
                check_prefix_length(prefix)?;
                ValueTest::Prefix(prefix.to_string())
            }
            None => ValueTest::Is(value.clone()),
        };
        if let Some(filter) = ResourceFilter::new(name, test) {
            clauses.push((Occur::Must, Box::new(filter.query())));
        }
    }
    if let Some(kind) = request.kind {
        clauses.push(exact(schema.kind, kind.as_str()));
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

#[cfg(test)]
pub(crate) mod tests;
