//! The tantivy schema derived from the record model, and record → document.

use crate::time_range::TimeRange;
use crate::tokenizer::LogTokenizer;
use model::{AttrValue, Record, names};
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

/// The column of each record's resource, in its JSON form.
pub(crate) const RESOURCE: &str = "resource";

/// The column of the record id's source half (8 bytes, big-endian).
pub(crate) const ID_SOURCE: &str = "id_source";
/// The column of the record id's position half.
pub(crate) const ID_POSITION: &str = "id_position";

/// Resource fields matched exactly. They have neither columns nor postings of their own:
/// grouping by one and filtering on one both read the `resource` column, which holds each
/// container's resource once per segment (four more columns were 4 % of the index and a sixth
/// of the indexing thread's column work; their postings 0.6–0.8 µs of its ~6.7 µs per record).
/// They are in the schema, indexed but never given a value, so that the query parser knows
/// them; [`crate::resource_filter`] answers them.
pub(crate) const EXACT_RESOURCE_FIELDS: [&str; 4] = [
    names::K8S_NAMESPACE_NAME,
    names::K8S_POD_NAME,
    names::K8S_CONTAINER_NAME,
    names::K8S_NODE_NAME,
];
/// Attributes indexed for exact match; those of [`GROUPED_ATTRIBUTE_FIELDS`] also as columns.
pub(crate) const EXACT_ATTRIBUTE_FIELDS: [&str; 6] = [
    names::LLM_SERVER,
    names::LLM_EVENT,
    names::LLM_REQUEST_ID,
    names::GEN_AI_REQUEST_MODEL,
    names::ERROR_TYPE,
    names::EXCEPTION_TYPE,
];
/// The exact attributes that can be grouped by, with a column each. A request id is looked
/// up, never grouped by (nearly every value is new, so its column would be a dictionary as
/// large as the records); an event is searched and counted, not grouped by, and is on most
/// records.
pub(crate) const GROUPED_ATTRIBUTE_FIELDS: [&str; 4] = [
    names::LLM_SERVER,
    names::GEN_AI_REQUEST_MODEL,
    names::ERROR_TYPE,
    names::EXCEPTION_TYPE,
];
/// How many numeric columns there are: the figures and every kept histogram's buckets.
const NUMERIC_COUNT: usize = NUMERIC_FIGURES.len() + interval_bucket_count();

const fn interval_bucket_count() -> usize {
    let (mut n, mut i) = (0, 0);
    while i < names::LLM_INTERVAL_HISTOGRAMS.len() {
        n += names::LLM_INTERVAL_HISTOGRAMS[i].0.len();
        i += 1;
    }
    n
}
/// Every numeric attribute with a column: the figures, then the counts of a scraped
/// server's requests by bucket of its histograms ([`names::LLM_INTERVAL_HISTOGRAMS`]),
/// which sum to a histogram over any range and group.
pub(crate) const NUMERIC_ATTRIBUTE_FIELDS: [&str; NUMERIC_COUNT] = numeric_attribute_fields();

const fn numeric_attribute_fields() -> [&'static str; NUMERIC_COUNT] {
    let mut out = [""; NUMERIC_COUNT];
    let mut n = 0;
    while n < NUMERIC_FIGURES.len() {
        out[n] = NUMERIC_FIGURES[n];
        n += 1;
    }
    let mut grid = 0;
    while grid < names::LLM_INTERVAL_HISTOGRAMS.len() {
        let buckets = names::LLM_INTERVAL_HISTOGRAMS[grid].0;
        let mut i = 0;
        while i < buckets.len() {
            out[n] = buckets[i].0;
            n += 1;
            i += 1;
        }
        grid += 1;
    }
    out
}

/// Numeric attributes, as f64 columns: ranges (`llm.e2e_ms:>5000`), percentiles, averages.
pub(crate) const NUMERIC_FIGURES: [&str; 28] = [
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
    names::LLM_PROMPT_THROUGHPUT_TPS,
    names::LLM_GEN_THROUGHPUT_TPS,
    names::LLM_GENERATED_TOKENS,
    names::LLM_REQUESTS_ENDED,
    names::LLM_REQUESTS_FAILED,
    names::GPU_UTILIZATION_PCT,
    names::GPU_MEMORY_USED_BYTES,
    names::GPU_POWER_W,
    names::GPU_TEMPERATURE_C,
    names::LLM_TTFT_TOTAL_MS,
    names::LLM_QUEUE_TOTAL_MS,
    names::LLM_E2E_TOTAL_MS,
];
/// Where an attribute goes in a document, when not in the JSON field.
#[derive(Clone, Copy, Debug)]
enum AttributeSlot {
    /// The field `attribute_exact[i]`.
    Exact(usize),
    /// The field `attribute_numeric[i]`.
    Numeric(usize),
    /// Not indexed: the stack trace repeats the body.
    Left,
}

/// Where each exact and numeric attribute goes, by name.
fn attribute_slots(
    exact: &[(&'static str, Field)],
    numeric: &[(&'static str, Field)],
) -> foldhash::HashMap<&'static str, AttributeSlot> {
    exact
        .iter()
        .enumerate()
        .map(|(i, &(name, _))| (name, AttributeSlot::Exact(i)))
        .chain(
            numeric
                .iter()
                .enumerate()
                .map(|(i, &(name, _))| (name, AttributeSlot::Numeric(i))),
        )
        .chain([(names::EXCEPTION_STACKTRACE, AttributeSlot::Left)])
        .collect()
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
    pub(crate) attribute_exact: Vec<(&'static str, Field)>,
    pub(crate) attribute_numeric: Vec<(&'static str, Field)>,
    /// The attributes that do not go to the JSON field, by name: a document is made in one
    /// pass over the record's few attributes rather than a lookup of each of the schema's
    /// 29 names in every record. foldhash: SipHash made these lookups an eighth of the
    /// thread that makes documents, and the keys are the schema's own names.
    attribute_slots: foldhash::HashMap<&'static str, AttributeSlot>,
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
        // Searched, never grouped by; a hit reads both from the stored record.
        let kind = b.add_text_field("kind", exact());
        let severity = b.add_text_field("severity_text", exact());
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
        for name in EXACT_RESOURCE_FIELDS {
            b.add_text_field(name, exact());
        }
        let attribute_exact: Vec<_> = EXACT_ATTRIBUTE_FIELDS
            .iter()
            .map(|&name| match GROUPED_ATTRIBUTE_FIELDS.contains(&name) {
                true => (name, b.add_text_field(name, exact() | FAST)),
                false => (name, b.add_text_field(name, exact())),
            })
            .collect();
        // Columns only, like the timestamp: ranges and aggregations read the column, and an
        // exact value is asked as a one-value range (see `search::numeric_terms_as_ranges`).
        let numeric = NumericOptions::default().set_fast();
        let attribute_numeric: Vec<_> = NUMERIC_ATTRIBUTE_FIELDS
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
        let resource = b.add_text_field(RESOURCE, TextOptions::default().set_fast("raw"));
        // The record's content form (without id, timestamp, resource), returned as the hit.
        let record = b.add_text_field("record", STORED);
        let attribute_slots = attribute_slots(&attribute_exact, &attribute_numeric);
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
            attribute_exact,
            attribute_numeric,
            attribute_slots,
            attributes,
            resource,
            record,
        }
    }

    /// This version's fields as `split` (a split's own schema) has them, for reading a split
    /// an older version wrote: each field is found by name, so fields added or removed
    /// since move none of the others. Exact and numeric fields the split lacks are left
    /// out (what asks for them finds nothing there); a field every search needs that is
    /// missing or of another type is an error naming it.
    pub(crate) fn for_split(&self, split: &Schema) -> Result<IndexSchema, String> {
        let same = |field: Field| -> Result<Field, String> {
            let name = self.schema.get_field_name(field);
            let found = split
                .get_field(name)
                .map_err(|_| format!("it has no `{name}` field"))?;
            let want = self.schema.get_field_entry(field).field_type().value_type();
            let has = split.get_field_entry(found).field_type().value_type();
            if has != want {
                return Err(format!("its `{name}` field holds {has:?}, not {want:?}"));
            }
            Ok(found)
        };
        let present = |fields: &[(&'static str, Field)]| -> Vec<(&'static str, Field)> {
            fields
                .iter()
                .filter_map(|&(name, field)| same(field).ok().map(|f| (name, f)))
                .collect()
        };
        let attribute_exact = present(&self.attribute_exact);
        let attribute_numeric = present(&self.attribute_numeric);
        Ok(IndexSchema {
            schema: split.clone(),
            id_source: same(self.id_source)?,
            id_position: same(self.id_position)?,
            timestamp: same(self.timestamp)?,
            observed: same(self.observed)?,
            kind: same(self.kind)?,
            severity: same(self.severity)?,
            stream: same(self.stream)?,
            body: same(self.body)?,
            attribute_slots: attribute_slots(&attribute_exact, &attribute_numeric),
            attribute_exact,
            attribute_numeric,
            attributes: same(self.attributes)?,
            resource: same(self.resource)?,
            record: same(self.record)?,
        })
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

    /// The document of `record`, whose resource's JSON form is `resource_json`; `content`
    /// is a buffer for the stored record's JSON, reused from document to document.
    pub(crate) fn document(
        &self,
        record: &Record,
        resource_json: &str,
        content: &mut Vec<u8>,
    ) -> TantivyDocument {
        content.clear();
        record.write_content_json(content);
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
        // Values are added in field order, which tantivy's sort of a document's fields
        // (on the indexing thread) then finds already done.
        let mut exact = [None; EXACT_ATTRIBUTE_FIELDS.len()];
        let mut numeric = [None; NUMERIC_ATTRIBUTE_FIELDS.len()];
        // The attributes without a slot, gathered in the same pass (no second lookup).
        let mut others = Vec::new();
        for (name, value) in record.attributes.iter() {
            match self.attribute_slots.get(name) {
                Some(AttributeSlot::Exact(i)) => exact[*i] = value.as_str(),
                Some(AttributeSlot::Numeric(i)) => numeric[*i] = value.as_f64(),
                Some(AttributeSlot::Left) => {}
                None => others.push((name, value)),
            }
        }
        for ((_, field), value) in self.attribute_exact.iter().zip(exact) {
            if let Some(v) = value {
                doc.add_text(*field, v);
            }
        }
        for ((_, field), value) in self.attribute_numeric.iter().zip(numeric) {
            if let Some(v) = value {
                doc.add_f64(*field, v);
            }
        }
        if !others.is_empty() {
            doc.add_field_value(self.attributes, &json_object(others));
        }
        // The id, timestamp and resource are columns; storing them again would only cost
        // space.
        doc.add_text(self.resource, resource_json);
        // `write_content_json` writes UTF-8 only, so this never stores an empty record.
        doc.add_text(
            self.record,
            std::str::from_utf8(content).unwrap_or_default(),
        );
        doc
    }
}

/// The attributes without a field of their own, as the JSON field's object.
fn json_object(attrs: Vec<(&str, &AttrValue)>) -> tantivy::schema::OwnedValue {
    use tantivy::schema::OwnedValue;
    let entries = attrs
        .into_iter()
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

impl Default for IndexSchema {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Attributes, RecordId, Timestamp};
    use std::sync::Arc;

    #[test]
    fn every_numeric_column_has_a_name_of_its_own() {
        let mut names: Vec<&str> = NUMERIC_ATTRIBUTE_FIELDS.to_vec();
        assert!(names.iter().all(|n| !n.is_empty()));
        assert!(
            names.contains(&"llm.e2e_bucket_inf"),
            "the last grid's last bucket"
        );
        names.sort();
        names.dedup();
        assert_eq!(names.len(), NUMERIC_ATTRIBUTE_FIELDS.len());
    }
    use tantivy::schema::OwnedValue;

    fn field_values(doc: &TantivyDocument, field: Field) -> Vec<OwnedValue> {
        doc.get_all(field).map(OwnedValue::from).collect()
    }

    /// A log record of line `position` of a pod's file, without attributes yet.
    fn log_record(position: u64, body: &str) -> Record {
        Record::log(
            RecordId::from_source(b"pod.log", position),
            Timestamp::from_unix_nanos(1_000),
            Timestamp::from_unix_nanos(2_000),
            Arc::new(Attributes::new()),
            body.into(),
        )
    }

    #[test]
    fn each_attribute_goes_to_its_own_field_or_else_to_the_json_field() {
        let schema = IndexSchema::new();
        let mut record = log_record(7, "Traceback: CUDA out of memory");
        let a = &mut record.attributes;
        a.insert(names::LLM_SERVER, "vllm");
        // An exact field given a number has no place: neither its field nor the JSON one.
        a.insert(names::LLM_EVENT, 3i64);
        a.insert_f64(names::LLM_E2E_MS, 812.5);
        a.insert(names::GEN_AI_USAGE_OUTPUT_TOKENS, 40i64);
        a.insert(names::LOG_LINES, 12i64);
        a.insert(names::URL_PATH, "/v1/completions");
        a.insert(names::EXCEPTION_STACKTRACE, "Traceback: CUDA out of memory");

        let doc = schema.document(&record, "{}", &mut Vec::new());
        let field = |name: &str| schema.schema.get_field(name).expect("field");
        assert_eq!(
            field_values(&doc, field(names::LLM_SERVER)),
            vec![OwnedValue::Str("vllm".into())]
        );
        assert!(field_values(&doc, field(names::LLM_EVENT)).is_empty());
        assert_eq!(
            field_values(&doc, field(names::LLM_E2E_MS)),
            vec![OwnedValue::F64(812.5)]
        );
        assert_eq!(
            field_values(&doc, field(names::GEN_AI_USAGE_OUTPUT_TOKENS)),
            vec![OwnedValue::F64(40.0)]
        );
        assert!(field_values(&doc, field(names::LLM_REQUEST_ID)).is_empty());
        let json = field_values(&doc, schema.attributes);
        let [OwnedValue::Object(entries)] = json.as_slice() else {
            panic!("one JSON object expected, got {json:?}");
        };
        let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, [names::LOG_LINES, names::URL_PATH]);
        // The fields come in field order, as tantivy sorts them.
        let order: Vec<u32> = doc.field_values().map(|(f, _)| f.field_id()).collect();
        assert!(order.is_sorted(), "fields out of order: {order:?}");
    }

    #[test]
    fn a_record_with_only_indexed_attributes_has_no_json_field() {
        let schema = IndexSchema::new();
        let mut record = log_record(8, "request finished");
        record
            .attributes
            .insert(names::LLM_REQUEST_ID, "chatcmpl-1");
        record.attributes.insert_f64(names::LLM_TTFT_MS, 41.0);
        let doc = schema.document(&record, "{}", &mut Vec::new());
        assert!(field_values(&doc, schema.attributes).is_empty());
        assert_eq!(
            field_values(
                &doc,
                schema.schema.get_field(names::LLM_REQUEST_ID).expect("id")
            ),
            vec![OwnedValue::Str("chatcmpl-1".into())]
        );
    }
}
