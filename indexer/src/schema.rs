//! The tantivy schema derived from the record model, and record → document.

use crate::time_range::TimeRange;
use crate::tokenizer::LogTokenizer;
use model::{AttrValue, Attributes, Record, names};
use tantivy::Term;
use tantivy::query::doc_predicate_query::{DocPredicateQuery, FunctionPredicate};
use tantivy::query::{BooleanQuery, Occur, RangeQuery};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, JsonObjectOptions, NumericOptions, STORED, Schema,
    TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, TantivyDocument};

/// The tokenizer of `body` ([`crate::tokenizer::LogTokenizer`]: lowercased, absurdly long
/// tokens dropped): `chatcmpl-a269fdcb` is one term and also `chatcmpl`, `a269fdcb`.
pub(crate) const LOG_TOKENIZER: &str = "infersight_log";

/// The timestamp column (ns since the epoch).
pub(crate) const TIMESTAMP: &str = "timestamp";

/// The column of the record id's source half (8 bytes, big-endian).
pub(crate) const ID_SOURCE: &str = "id_source";
/// The column of the record id's position half.
pub(crate) const ID_POSITION: &str = "id_position";

/// Resource fields indexed for exact match, and as fast columns for grouping.
pub(crate) const EXACT_RESOURCE_FIELDS: [&str; 4] = [
    names::K8S_NAMESPACE_NAME,
    names::K8S_POD_NAME,
    names::K8S_CONTAINER_NAME,
    names::K8S_NODE_NAME,
];
/// Attributes indexed for exact match, and (but for the request id) as fast columns for
/// grouping.
pub(crate) const EXACT_ATTRIBUTE_FIELDS: [&str; 6] = [
    names::LLM_SERVER,
    names::LLM_EVENT,
    names::LLM_REQUEST_ID,
    names::GEN_AI_REQUEST_MODEL,
    names::ERROR_TYPE,
    names::EXCEPTION_TYPE,
];
/// Numeric attributes, as f64 columns: ranges (`llm.e2e_ms:>5000`), percentiles, averages.
pub(crate) const NUMERIC_ATTRIBUTE_FIELDS: [&str; 20] = [
    names::LLM_E2E_MS,
    names::LLM_QUEUE_MS,
    names::LLM_VALIDATION_MS,
    names::LLM_INFERENCE_MS,
    names::LLM_PREFILL_MS,
    names::LLM_DECODE_MS,
    names::LLM_TTFT_MS,
    names::LLM_TPOT_MS,
    names::LLM_TOKENS_PER_S,
    names::GEN_AI_USAGE_INPUT_TOKENS,
    names::GEN_AI_USAGE_OUTPUT_TOKENS,
    names::GEN_AI_REQUEST_MAX_TOKENS,
    names::HTTP_RESPONSE_STATUS_CODE,
    names::LLM_RUNNING,
    names::LLM_WAITING,
    names::LLM_KV_CACHE_PCT,
    names::GPU_UTILIZATION_PCT,
    names::GPU_MEMORY_USED_BYTES,
    names::GPU_POWER_W,
    names::GPU_TEMPERATURE_C,
];
/// Attributes not indexed in the JSON field: the ones with a field of their own, and the
/// stack trace, which repeats the body.
fn indexed_elsewhere(name: &str) -> bool {
    EXACT_ATTRIBUTE_FIELDS.contains(&name)
        || NUMERIC_ATTRIBUTE_FIELDS.contains(&name)
        || name == names::EXCEPTION_STACKTRACE
}

/// The schema and its field handles.
#[derive(Clone, Debug)]
pub struct IndexSchema {
    pub(crate) schema: Schema,
    /// The record id's source half, as a column only: a dictionary column stores each
    /// source once per segment and a small ordinal per record. (An indexed unique id per
    /// record would be the largest term dictionary of the index, and the id is only looked
    /// up to replace a redelivered record, next to its timestamp.)
    pub(crate) id_source: Field,
    /// The record id's position half, as a column only: positions of the few sources of a
    /// segment pack into a few bytes.
    pub(crate) id_position: Field,
    pub(crate) timestamp: Field,
    pub(crate) observed: Field,
    pub(crate) kind: Field,
    pub(crate) severity: Field,
    pub(crate) stream: Field,
    pub(crate) body: Field,
    pub(crate) resource_exact: Vec<(&'static str, Field)>,
    pub(crate) attribute_exact: Vec<(&'static str, Field)>,
    pub(crate) attribute_numeric: Vec<(&'static str, Field)>,
    pub(crate) attributes: Field,
    /// The resource's JSON form, as a column only: a column stores each distinct value once
    /// per segment (a pod's resource is the same for all its records), where the stored
    /// record would repeat it in every document.
    pub(crate) resource: Field,
    pub(crate) record: Field,
}

impl IndexSchema {
    /// The schema of this version.
    pub fn new() -> Self {
        let mut b = Schema::builder();
        // Hits are ordered by time, never scored: no field keeps fieldnorms (a byte per
        // document and field).
        let exact = || {
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("raw")
                    .set_index_option(IndexRecordOption::Basic)
                    .set_fieldnorms(false),
            )
        };
        let id_source = b.add_bytes_field(ID_SOURCE, FAST);
        let id_position = b.add_u64_field(ID_POSITION, FAST);
        // Nanoseconds since the epoch; the column newest-first sorting and time ranges use.
        // Not indexed: tantivy answers ranges on a fast field from the column anyway, and a
        // term per distinct nanosecond was the index's largest dictionary.
        let timestamp = b.add_i64_field(TIMESTAMP, FAST);
        // When the collector read the record: close to `timestamp` and in order, which a
        // column packs into a few bits (as text in the stored record it took ~8 bytes).
        let observed = b.add_i64_field("observed", FAST);
        let kind = b.add_text_field("kind", exact() | FAST);
        let severity = b.add_text_field("severity_text", exact() | FAST);
        let stream = b.add_text_field("stream", exact());
        let body = b.add_text_field(
            "body",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(LOG_TOKENIZER)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions)
                    .set_fieldnorms(false),
            ),
        );
        let resource_exact = EXACT_RESOURCE_FIELDS
            .iter()
            .map(|&name| (name, b.add_text_field(name, exact() | FAST)))
            .collect();
        // A request id is looked up, never grouped by: no column (nearly every value is new,
        // so it would be a dictionary as large as the records).
        let attribute_exact = EXACT_ATTRIBUTE_FIELDS
            .iter()
            .map(|&name| match name {
                names::LLM_REQUEST_ID => (name, b.add_text_field(name, exact())),
                _ => (name, b.add_text_field(name, exact() | FAST)),
            })
            .collect();
        // Columns only, like the timestamp: ranges and aggregations read the column, and an
        // exact value is asked as a one-value range (see `search::numeric_terms_as_ranges`).
        let numeric = NumericOptions::default().set_fast();
        let attribute_numeric = NUMERIC_ATTRIBUTE_FIELDS
            .iter()
            .map(|&name| (name, b.add_f64_field(name, numeric.clone())))
            .collect();
        // Every other attribute, typed, under `attributes.<name>` (e.g. `attributes.log.lines:12`).
        let attributes = b.add_json_field(
            "attributes",
            JsonObjectOptions::default()
                .set_expand_dots_enabled()
                .set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer("raw")
                        .set_fieldnorms(false),
                ),
        );
        let resource = b.add_text_field("resource", TextOptions::default().set_fast("raw"));
        // The record's content form (without id, timestamp, resource), returned as the hit.
        let record = b.add_text_field("record", STORED);
        IndexSchema {
            schema: b.build(),
            id_source,
            id_position,
            timestamp,
            observed,
            kind,
            severity,
            stream,
            body,
            resource_exact,
            attribute_exact,
            attribute_numeric,
            attributes,
            resource,
            record,
        }
    }

    /// The tantivy schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    fn log_analyzer() -> TextAnalyzer {
        TextAnalyzer::from(LogTokenizer::default())
    }

    /// Registers the tokenizers the schema names; needed on every opened index.
    pub(crate) fn register_tokenizers(index: &Index) {
        index
            .tokenizers()
            .register(LOG_TOKENIZER, Self::log_analyzer());
    }

    /// tantivy's tokenizers and the schema's, for parsing queries over any split.
    pub(crate) fn tokenizers() -> tantivy::tokenizer::TokenizerManager {
        let manager = tantivy::tokenizer::TokenizerManager::default();
        manager.register(LOG_TOKENIZER, Self::log_analyzer());
        manager
    }

    /// Records with a timestamp in `[from, to]` (ns, inclusive), from the timestamp column
    /// through each segment's time blocks ([`crate::time_range`]).
    pub(crate) fn time_range(&self, from: Option<i64>, to: Option<i64>) -> DocPredicateQuery {
        TimeRange::query(from, to)
    }

    /// The query that finds the document of record `id` written at `timestamp`: the
    /// timestamp narrows it to a block or two, where the id's columns are compared.
    pub(crate) fn id_query(&self, id: model::RecordId, timestamp: i64) -> BooleanQuery {
        use std::ops::Bound::Included;
        let position = Term::from_field_u64(self.id_position, id.position());
        let source = id.source().to_be_bytes();
        let same_source = FunctionPredicate::from(move |segment: &tantivy::SegmentReader| {
            // The source's ordinal in this segment's dictionary, if it wrote there at all.
            let column = segment.fast_fields().bytes(ID_SOURCE)?;
            let wanted = match &column {
                Some(c) => c.dictionary().term_ord(source)?,
                None => None,
            };
            Ok(move |doc| match (&column, wanted) {
                (Some(c), Some(ord)) => c.term_ords(doc).next() == Some(ord),
                _ => false,
            })
        });
        BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(self.time_range(Some(timestamp), Some(timestamp))),
            ),
            (
                Occur::Must,
                Box::new(RangeQuery::new(
                    Included(position.clone()),
                    Included(position),
                )),
            ),
            (Occur::Must, Box::new(DocPredicateQuery::from(same_source))),
        ])
    }

    /// The document of `record`, whose resource's JSON form is `resource_json`.
    pub(crate) fn document(&self, record: &Record, resource_json: &str) -> TantivyDocument {
        let mut doc = TantivyDocument::new();
        doc.add_bytes(self.id_source, &record.id.source().to_be_bytes());
        doc.add_u64(self.id_position, record.id.position());
        doc.add_i64(self.timestamp, record.timestamp.unix_nanos());
        doc.add_i64(self.observed, record.observed_timestamp.unix_nanos());
        doc.add_text(self.kind, record.kind.as_str());
        if let Some(sev) = record.severity {
            doc.add_text(self.severity, sev.as_str());
        }
        if let Some(stream) = record.stream {
            doc.add_text(self.stream, stream.as_str());
        }
        doc.add_text(self.body, &record.body);
        for (name, field) in &self.resource_exact {
            if let Some(v) = record.resource.get_str(name) {
                doc.add_text(*field, v);
            }
        }
        for (name, field) in &self.attribute_exact {
            if let Some(v) = record.attributes.get_str(name) {
                doc.add_text(*field, v);
            }
        }
        for (name, field) in &self.attribute_numeric {
            if let Some(v) = record.attributes.get(name).and_then(AttrValue::as_f64) {
                doc.add_f64(*field, v);
            }
        }
        if record.attributes.iter().any(|(k, _)| !indexed_elsewhere(k)) {
            doc.add_field_value(self.attributes, &json_object(&record.attributes));
        }
        // The id, timestamp and resource are columns; storing them again would only cost
        // space.
        doc.add_text(self.resource, resource_json);
        doc.add_text(self.record, record.to_content_json());
        doc
    }
}

impl Default for IndexSchema {
    fn default() -> Self {
        Self::new()
    }
}

fn json_object(attrs: &Attributes) -> tantivy::schema::OwnedValue {
    use tantivy::schema::OwnedValue;
    let entries = attrs
        .iter()
        .filter(|(k, _)| !indexed_elsewhere(k))
        .map(|(k, v)| {
            let value = match v {
                AttrValue::Str(s) => OwnedValue::Str(s.clone()),
                AttrValue::Int(i) => OwnedValue::I64(*i),
                AttrValue::Float(f) => OwnedValue::F64(*f),
                AttrValue::Bool(b) => OwnedValue::Bool(*b),
                AttrValue::StrList(l) => {
                    OwnedValue::Array(l.iter().cloned().map(OwnedValue::Str).collect())
                }
            };
            (k.to_string(), value)
        })
        .collect();
    OwnedValue::Object(entries)
}
