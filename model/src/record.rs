//! The one record type that flows through every stage.

use crate::{Attributes, RecordId, Timestamp};
use serde::ser::SerializeMap;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;

/// What a record is (DESIGN.md §3).
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A line a container wrote.
    #[default]
    Log,
    /// A Kubernetes event.
    K8sEvent,
    /// A Kubernetes object's status (pod, workload).
    K8sObject,
    /// A GPU snapshot.
    Gpu,
    /// A finished inference request, derived from its log lines.
    Request,
    /// A periodic engine statistics line (vLLM `Avg prompt throughput…`, SGLang batch lines).
    EngineStats,
}

impl RecordKind {
    /// Every kind, in declaration order.
    pub const ALL: [RecordKind; 6] = [
        RecordKind::Log,
        RecordKind::K8sEvent,
        RecordKind::K8sObject,
        RecordKind::Gpu,
        RecordKind::Request,
        RecordKind::EngineStats,
    ];

    /// The contract name (`log`, `k8s_event`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Log => "log",
            RecordKind::K8sEvent => "k8s_event",
            RecordKind::K8sObject => "k8s_object",
            RecordKind::Gpu => "gpu",
            RecordKind::Request => "request",
            RecordKind::EngineStats => "engine_stats",
        }
    }

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Normalised severity (DESIGN.md §3), with OpenTelemetry's severity numbers.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// TRACE (1).
    Trace,
    /// DEBUG (5).
    Debug,
    /// INFO (9).
    Info,
    /// WARN (13).
    Warn,
    /// ERROR (17).
    Error,
    /// FATAL (21).
    Fatal,
}

impl Severity {
    /// The normalised text (`INFO`, `WARN`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Trace => "TRACE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }

    /// OpenTelemetry's `SeverityNumber` for the first value of the range.
    pub fn number(self) -> u8 {
        match self {
            Severity::Trace => 1,
            Severity::Debug => 5,
            Severity::Info => 9,
            Severity::Warn => 13,
            Severity::Error => 17,
            Severity::Fatal => 21,
        }
    }

    /// Maps the level words servers print onto the normalised set: glog's `I/W/E/F`,
    /// Python's `WARNING`/`CRITICAL`, Go's `warn`, syslog's `notice`/`err`/`crit`/`emerg`,
    /// in any case. Unknown words give `None` rather than a guess.
    pub fn from_level_word(word: &str) -> Option<Self> {
        let w = word.trim();
        if w.len() > 11 {
            return None;
        }
        let mut buf = [0u8; 11];
        let upper = &mut buf[..w.len()];
        upper.copy_from_slice(w.as_bytes());
        upper.make_ascii_uppercase();
        Some(match &*upper {
            b"T" | b"TRACE" | b"TRC" => Severity::Trace,
            b"D" | b"DEBUG" | b"DBG" => Severity::Debug,
            b"I" | b"INFO" | b"INF" | b"NOTICE" | b"INFORMATION" => Severity::Info,
            b"W" | b"WARN" | b"WARNING" | b"WRN" => Severity::Warn,
            b"E" | b"ERROR" | b"ERR" => Severity::Error,
            b"F" | b"FATAL" | b"CRITICAL" | b"CRIT" | b"PANIC" | b"EMERG" | b"ALERT" => {
                Severity::Fatal
            }
            _ => return None,
        })
    }
}

/// The container stream a line was written to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One record (DESIGN.md §3), shaped after the OpenTelemetry log data model.
///
/// `resource` is shared behind an `Arc` because every line of a container carries the same
/// resource: the file source builds it once per file, not once per line. Change it with
/// [`Record::resource_mut`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    /// Stable id used for deduplication.
    pub id: RecordId,
    /// When it happened (from the line or event).
    pub timestamp: Timestamp,
    /// When Infersight read it.
    pub observed_timestamp: Timestamp,
    /// What it is.
    pub kind: RecordKind,
    /// Who wrote it: `k8s.*` names, `container.id`, pod labels.
    pub resource: Arc<Attributes>,
    /// Normalised severity, when the line states one.
    pub severity: Option<Severity>,
    /// stdout or stderr, for container lines.
    pub stream: Option<Stream>,
    /// The message.
    pub body: String,
    /// Typed attributes with the contract's names.
    pub attributes: Attributes,
}

impl Record {
    /// A `log` record with no attributes yet.
    pub fn log(
        id: RecordId,
        timestamp: Timestamp,
        observed_timestamp: Timestamp,
        resource: Arc<Attributes>,
        body: String,
    ) -> Self {
        Record {
            id,
            timestamp,
            observed_timestamp,
            kind: RecordKind::Log,
            resource,
            severity: None,
            stream: None,
            body,
            attributes: Attributes::new(),
        }
    }

    /// A `log` record whose body is `bytes` as written by a container: invalid UTF-8 is
    /// kept (replaced by U+FFFD) and flagged `log.invalid_utf8`, never dropped.
    pub fn log_from_bytes(
        id: RecordId,
        timestamp: Timestamp,
        observed_timestamp: Timestamp,
        resource: Arc<Attributes>,
        bytes: Vec<u8>,
    ) -> Self {
        match String::from_utf8(bytes) {
            Ok(body) => Record::log(id, timestamp, observed_timestamp, resource, body),
            Err(e) => {
                let body = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let mut r = Record::log(id, timestamp, observed_timestamp, resource, body);
                r.attributes.insert(crate::names::LOG_INVALID_UTF8, true);
                r
            }
        }
    }

    /// The resource, copied first if other records share it.
    pub fn resource_mut(&mut self) -> &mut Attributes {
        Arc::make_mut(&mut self.resource)
    }

    /// The value of a resource attribute when it is a string.
    pub fn resource_str(&self, key: &str) -> Option<&str> {
        self.resource.get_str(key)
    }

    /// The record's JSON form on one line (the form of API hits, `parse` output and Kafka
    /// messages).
    pub fn to_json(&self) -> String {
        // Serialising our own types to a String cannot fail: every map key is a string and
        // non-finite floats are refused at insertion.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Appends the JSON form ([`Record::to_json`]'s, byte for byte) to `out`, with the
    /// resource's JSON from `resources`: a writer of many records (a Kafka sink) serialises
    /// each pod's resource once.
    pub fn write_json(&self, out: &mut Vec<u8>, resources: &mut ResourceJsons) {
        let resource = resources.json(&self.resource);
        // Cannot fail, as in `to_json`; writing to a Vec cannot either.
        let _ = serde_json::to_writer(out, &WithResource(self, resource));
    }

    /// Reads a record from its JSON form.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The JSON form without the fields of [`KeptApart`], for a store that keeps those
    /// apart (the index holds them as columns: the id's 16 random bytes do not compress,
    /// timestamps compress as numbers in order and not as text, and a pod's resource is the
    /// same for all its records).
    pub fn to_content_json(&self) -> String {
        let mut out = Vec::new();
        self.write_content_json(&mut out);
        // Only UTF-8 is written.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends [`Record::to_content_json`]'s form to `out`: a writer of many documents (the
    /// index) reuses one buffer instead of growing a new one for each. Written by hand, the
    /// same bytes as serde_json would write (tested), because serde_json's escaping of the
    /// body and attribute strings, a byte at a time, was a third of making a document.
    pub fn write_content_json(&self, out: &mut Vec<u8>) {
        use crate::json_text::write_str;
        out.extend_from_slice(b"{\"kind\":");
        write_str(out, self.kind.as_str());
        if let Some(sev) = self.severity {
            out.extend_from_slice(b",\"severity_text\":");
            write_str(out, sev.as_str());
            out.extend_from_slice(b",\"severity_number\":");
            let _ = serde_json::to_writer(&mut *out, &sev.number());
        }
        if let Some(stream) = self.stream {
            out.extend_from_slice(b",\"stream\":");
            write_str(out, stream.as_str());
        }
        out.extend_from_slice(b",\"body\":");
        write_str(out, &self.body);
        out.extend_from_slice(b",\"attributes\":");
        self.attributes.write_json(out);
        out.push(b'}');
    }

    /// The resource's JSON form (an object), as [`Record::to_content_json`] leaves it out.
    pub fn resource_json(&self) -> String {
        serde_json::to_string(&*self.resource).unwrap_or_default()
    }

    /// Reads a record from its JSON form as [`Record::from_json`] does, but gives it the
    /// resource `shared` already holds for the same resource JSON instead of a copy of its
    /// own: a reader of many records (a Kafka consumer) decodes each pod's resource once,
    /// and the records of one pod share it as they did where they were made.
    pub fn from_json_sharing(
        json: &str,
        shared: &mut SharedResources,
    ) -> Result<Self, serde_json::Error> {
        let w: RecordWire<RawResource<'_>> = serde_json::from_str(json)?;
        let (id, timestamp) = w.id_and_timestamp()?;
        let resource = shared.resource(w.resource.0)?;
        Ok(w.into_record_with(id, timestamp, resource))
    }

    /// Reads a record from [`Record::to_content_json`]'s form and the fields kept apart.
    pub fn from_content_json(json: &str, apart: KeptApart) -> Result<Self, serde_json::Error> {
        let w: RecordWire<Attributes> = serde_json::from_str(json)?;
        let mut r = w.into_record(apart.id, apart.timestamp);
        r.observed_timestamp = apart.observed_timestamp;
        r.resource = apart.resource;
        Ok(r)
    }

    /// Every field but `id` and `timestamp` (and `observed_timestamp` and `resource` unless
    /// `whole` gives the resource's form), in the order of the JSON form.
    fn serialize_fields<M: SerializeMap, R: serde::Serialize + ?Sized>(
        &self,
        m: &mut M,
        whole: Option<&R>,
    ) -> Result<(), M::Error> {
        if whole.is_some() {
            m.serialize_entry("observed_timestamp", &self.observed_timestamp)?;
        }
        m.serialize_entry("kind", &self.kind)?;
        if let Some(sev) = self.severity {
            m.serialize_entry("severity_text", &sev)?;
            m.serialize_entry("severity_number", &sev.number())?;
        }
        if let Some(stream) = self.stream {
            m.serialize_entry("stream", &stream)?;
        }
        m.serialize_entry("body", &self.body)?;
        if let Some(resource) = whole {
            m.serialize_entry("resource", resource)?;
        }
        m.serialize_entry("attributes", &self.attributes)
    }
}

/// A record's JSON form, with its resource written as `R` gives it (decoded, or a JSON
/// text made once for many records).
struct WithResource<'a, R: ?Sized>(&'a Record, &'a R);

impl<R: serde::Serialize + ?Sized> serde::Serialize for WithResource<'_, R> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.0.id)?;
        m.serialize_entry("timestamp", &self.0.timestamp)?;
        self.0.serialize_fields(&mut m, Some(self.1))?;
        m.end()
    }
}

impl serde::Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WithResource(self, &*self.resource).serialize(s)
    }
}

/// The fields [`Record::to_content_json`] leaves to the store.
#[derive(Clone, Debug)]
pub struct KeptApart {
    /// The record's id.
    pub id: RecordId,
    /// When the line was written.
    pub timestamp: Timestamp,
    /// When the collector read it.
    pub observed_timestamp: Timestamp,
    /// Where it comes from.
    pub resource: Arc<Attributes>,
}

/// Resources' JSON forms, each made once: the records of one pod share their resource's
/// `Arc`, which is the key (held, so that its address is not reused for another).
#[derive(Debug, Default)]
pub struct ResourceJsons {
    by_arc: HashMap<usize, (Arc<Attributes>, Box<RawValue>)>,
}

/// Distinct resources [`ResourceJsons`] keeps at most; past it, it starts again.
const RESOURCE_JSONS: usize = 4096;

impl ResourceJsons {
    /// The JSON form of `resource` (an object; as [`Record::resource_json`]).
    pub fn json(&mut self, resource: &Arc<Attributes>) -> &RawValue {
        let key = Arc::as_ptr(resource) as usize;
        if self.by_arc.len() >= RESOURCE_JSONS && !self.by_arc.contains_key(&key) {
            self.by_arc.clear();
        }
        let (_, raw) = self.by_arc.entry(key).or_insert_with(|| {
            // Cannot fail, as in `to_json` (string keys, finite numbers).
            let raw = serde_json::value::to_raw_value(&**resource).unwrap_or_default();
            (Arc::clone(resource), raw)
        });
        raw
    }
}

/// Resources read by [`Record::from_json_sharing`], by their JSON text, and by
/// [`crate::read_binary`], by their bytes in the binary form.
#[derive(Debug, Default)]
pub struct SharedResources {
    by_json: HashMap<Box<str>, Arc<Attributes>>,
    by_binary: HashMap<Box<[u8]>, Arc<Attributes>>,
    empty: Arc<Attributes>,
}

/// Distinct resources [`SharedResources`] keeps at most (a cluster's containers, with
/// room); past it, it starts again.
const SHARED_RESOURCES: usize = 16_384;

impl SharedResources {
    /// The resource whose JSON is `raw` (none: an empty one).
    fn resource(&mut self, raw: Option<&RawValue>) -> Result<Arc<Attributes>, serde_json::Error> {
        let Some(raw) = raw else {
            return Ok(self.empty.clone());
        };
        if let Some(known) = self.by_json.get(raw.get()) {
            return Ok(known.clone());
        }
        let resource: Arc<Attributes> = Arc::new(serde_json::from_str(raw.get())?);
        if self.by_json.len() >= SHARED_RESOURCES {
            self.by_json.clear();
        }
        self.by_json.insert(raw.get().into(), resource.clone());
        Ok(resource)
    }

    /// The resource read before from the same `bytes` (its binary form), or `read`, kept
    /// for the next time.
    pub(crate) fn share_binary(&mut self, bytes: &[u8], read: Attributes) -> Arc<Attributes> {
        if let Some(known) = self.by_binary.get(bytes) {
            return known.clone();
        }
        if self.by_binary.len() >= SHARED_RESOURCES {
            self.by_binary.clear();
        }
        let resource = Arc::new(read);
        self.by_binary.insert(bytes.into(), resource.clone());
        resource
    }
}

/// A record's resource as its JSON text, decoded (or not) by [`SharedResources`]. Unlike
/// `Option<&RawValue>`, a `null` resource is kept as text, so it is refused as in
/// [`Record::from_json`].
#[derive(Default)]
struct RawResource<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for RawResource<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(d).map(|raw| RawResource(Some(raw)))
    }
}

/// The wire shape; `severity_number` is accepted but derived from `severity_text`. `id` and
/// `timestamp` are required of the JSON form and absent from the content form. The
/// resource is decoded (`R` = [`Attributes`]) or kept as text for [`SharedResources`].
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(bound(deserialize = "R: serde::Deserialize<'de> + Default"))]
struct RecordWire<R> {
    #[serde(default)]
    id: Option<RecordId>,
    #[serde(default)]
    timestamp: Option<Timestamp>,
    #[serde(default)]
    observed_timestamp: Option<Timestamp>,
    #[serde(default)]
    kind: RecordKind,
    #[serde(default)]
    severity_text: Option<Severity>,
    #[serde(default)]
    #[allow(dead_code)]
    severity_number: Option<u8>,
    #[serde(default)]
    stream: Option<Stream>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    resource: R,
    #[serde(default)]
    attributes: Attributes,
}

impl<'de> serde::Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = RecordWire::<Attributes>::deserialize(d)?;
        let (id, timestamp) = w.id_and_timestamp()?;
        Ok(w.into_record(id, timestamp))
    }
}

impl RecordWire<Attributes> {
    fn into_record(mut self, id: RecordId, timestamp: Timestamp) -> Record {
        let resource = Arc::new(std::mem::take(&mut self.resource));
        self.into_record_with(id, timestamp, resource)
    }
}

impl<R> RecordWire<R> {
    /// The id and timestamp the JSON form requires (the content form has neither).
    fn id_and_timestamp<E: serde::de::Error>(&self) -> Result<(RecordId, Timestamp), E> {
        let id = self.id.ok_or_else(|| E::missing_field("id"))?;
        let timestamp = self
            .timestamp
            .ok_or_else(|| E::missing_field("timestamp"))?;
        Ok((id, timestamp))
    }

    /// The record, with `resource` in place of the wire's.
    fn into_record_with(
        self,
        id: RecordId,
        timestamp: Timestamp,
        resource: Arc<Attributes>,
    ) -> Record {
        Record {
            id,
            timestamp,
            observed_timestamp: self.observed_timestamp.unwrap_or(timestamp),
            kind: self.kind,
            resource,
            severity: self.severity_text,
            stream: self.stream,
            body: self.body,
            attributes: self.attributes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AttrValue, names};

    fn sample() -> Record {
        let resource: Attributes = [
            (names::K8S_NAMESPACE_NAME, AttrValue::from("llm")),
            (names::K8S_POD_NAME, AttrValue::from("vllm-0")),
            (names::K8S_CONTAINER_RESTART_COUNT, AttrValue::Int(2)),
        ]
        .into_iter()
        .collect();
        let mut r = Record::log(
            RecordId::from_source(b"f", 7),
            Timestamp::parse_rfc3339("2026-11-27T20:41:07.512Z").unwrap(),
            Timestamp::parse_rfc3339("2026-11-27T20:41:07.9Z").unwrap(),
            Arc::new(resource),
            "Engine 000: Avg prompt throughput: 0.0 tokens/s \"quoted\" ü".into(),
        );
        r.kind = RecordKind::EngineStats;
        r.severity = Some(Severity::Info);
        r.stream = Some(Stream::Stdout);
        r.attributes.insert(names::LLM_SERVER, "vllm");
        r.attributes.insert(names::LLM_RUNNING, 10i64);
        r.attributes.insert_f64(names::LLM_KV_CACHE_PCT, 57.9);
        r.attributes
            .insert_f64(names::LLM_PROMPT_THROUGHPUT_TPS, 0.0);
        r
    }

    #[test]
    fn json_form_matches_the_contract() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(v["timestamp"], "2026-11-27T20:41:07.512000000Z");
        assert_eq!(v["kind"], "engine_stats");
        assert_eq!(v["severity_text"], "INFO");
        assert_eq!(v["severity_number"], 9);
        assert_eq!(v["stream"], "stdout");
        assert_eq!(v["resource"]["k8s.pod.name"], "vllm-0");
        assert_eq!(v["resource"]["k8s.container.restart_count"], 2);
        assert_eq!(v["attributes"]["llm.running"], 10);
        assert_eq!(v["attributes"]["llm.kv_cache_pct"], 57.9);
        assert_eq!(v["id"].as_str().unwrap().len(), 32);
    }

    #[test]
    fn json_round_trip_is_lossless() {
        let r = sample();
        let back = Record::from_json(&r.to_json()).unwrap();
        assert_eq!(back, r);
        let minimal = Record::from_json(
            r#"{"id":"0000000000000000000000000000002a","timestamp":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(minimal.kind, RecordKind::Log);
        assert_eq!(minimal.observed_timestamp, minimal.timestamp);
    }

    #[test]
    fn writing_with_resource_jsons_gives_the_json_form_byte_for_byte() {
        let mut resources = ResourceJsons::default();
        let a = sample();
        let mut b = sample();
        b.body = "another line".into();
        b.resource = Arc::clone(&a.resource);
        let mut c = sample();
        c.resource = Arc::new(Attributes::new());
        let mut out = Vec::new();
        for r in [&a, &b, &c, &a] {
            out.clear();
            r.write_json(&mut out, &mut resources);
            assert_eq!(String::from_utf8(out.clone()).unwrap(), r.to_json());
        }
        // Past its bound it starts again, and still writes each resource right.
        let many: Vec<Record> = (0..=RESOURCE_JSONS)
            .map(|i| {
                let mut r = sample();
                let mut resource = Attributes::new();
                resource.insert(names::K8S_POD_NAME, format!("vllm-{i}"));
                r.resource = Arc::new(resource);
                r
            })
            .collect();
        for r in many.iter().chain([&a]) {
            out.clear();
            r.write_json(&mut out, &mut resources);
            assert_eq!(String::from_utf8(out.clone()).unwrap(), r.to_json());
        }
        assert!(resources.by_arc.len() <= RESOURCE_JSONS);
    }

    #[test]
    fn reading_with_shared_resources_gives_the_same_records_sharing_one_resource() {
        let mut shared = SharedResources::default();
        let a = sample();
        let mut b = sample();
        b.id = RecordId::from_source(b"f", 8);
        let mut no_resource = sample();
        no_resource.resource = Arc::new(Attributes::new());
        let json = no_resource.to_json().replacen(",\"resource\":{}", "", 1);
        assert!(!json.contains("resource"));
        let read: Vec<Record> = [a.to_json(), b.to_json(), no_resource.to_json(), json]
            .iter()
            .map(|j| Record::from_json_sharing(j, &mut shared).expect("record"))
            .collect();
        assert_eq!(read, vec![a, b, no_resource.clone(), no_resource.clone()]);
        assert!(Arc::ptr_eq(&read[0].resource, &read[1].resource));
        // What `from_json` refuses, this refuses too.
        let base = sample().to_json();
        for bad in [
            base.replacen("\"body\"", "\"bdy\"", 1),
            base.replacen("\"k8s.pod.name\":\"vllm-0\"", "\"k8s.pod.name\":null", 1),
            base.replacen("\"id\"", "\"ids\"", 1),
        ] {
            assert!(Record::from_json(&bad).is_err(), "{bad}");
            assert!(
                Record::from_json_sharing(&bad, &mut shared).is_err(),
                "{bad}"
            );
        }
        let null_resource =
            no_resource
                .to_json()
                .replacen("\"resource\":{}", "\"resource\":null", 1);
        assert!(null_resource.contains("\"resource\":null"));
        assert!(Record::from_json(&null_resource).is_err());
        assert!(Record::from_json_sharing(&null_resource, &mut shared).is_err());
    }

    #[test]
    fn json_with_unknown_fields_or_bad_values_is_refused() {
        let base = sample().to_json();
        let unknown = base.replacen("\"body\"", "\"bdy\"", 1);
        assert!(Record::from_json(&unknown).is_err());
        let bad_kind = base.replacen("engine_stats", "engine", 1);
        assert!(Record::from_json(&bad_kind).is_err());
    }

    #[test]
    fn invalid_utf8_is_kept_and_flagged() {
        let r = Record::log_from_bytes(
            RecordId(1),
            Timestamp::MIN,
            Timestamp::MIN,
            Arc::default(),
            b"a\xffb".to_vec(),
        );
        assert_eq!(r.body, "a\u{fffd}b");
        assert_eq!(
            r.attributes.get(names::LOG_INVALID_UTF8),
            Some(&AttrValue::Bool(true))
        );
        let ok = Record::log_from_bytes(
            RecordId(1),
            Timestamp::MIN,
            Timestamp::MIN,
            Arc::default(),
            b"ok".to_vec(),
        );
        assert!(ok.attributes.is_empty());
    }

    #[test]
    fn level_words_normalise() {
        assert_eq!(Severity::from_level_word("WARNING"), Some(Severity::Warn));
        assert_eq!(Severity::from_level_word("critical"), Some(Severity::Fatal));
        assert_eq!(Severity::from_level_word("E"), Some(Severity::Error));
        assert_eq!(Severity::from_level_word("info"), Some(Severity::Info));
        assert_eq!(Severity::from_level_word("Engine"), None);
        assert_eq!(Severity::from_level_word("a-very-long-word"), None);
    }

    #[test]
    fn the_content_form_written_by_hand_is_serde_jsons_byte_for_byte() {
        // serde_json's own writing of the content form: the oracle.
        struct Content<'a>(&'a Record);
        impl serde::Serialize for Content<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                self.0.serialize_fields(&mut m, None::<&Attributes>)?;
                m.end()
            }
        }
        let base = sample();
        let mut records = Vec::new();
        for kind in RecordKind::ALL {
            for severity in [None, Some(Severity::Trace), Some(Severity::Fatal)] {
                for stream in [None, Some(Stream::Stdout), Some(Stream::Stderr)] {
                    let mut r = base.clone();
                    (r.kind, r.severity, r.stream) = (kind, severity, stream);
                    records.push(r);
                }
            }
        }
        let mut odd = base.clone();
        odd.body = "tab\there \"quoted\" back\\slash \u{1} ctrl, é 日本 🚀 \r\n".into();
        odd.attributes = [
            ("str", AttrValue::from("a\u{7}b\"c")),
            ("k\"ey\n", AttrValue::from("v")),
            ("int", AttrValue::Int(i64::MIN)),
            ("float", AttrValue::Float(-0.0)),
            ("big", AttrValue::Float(1.5e300)),
            ("small", AttrValue::Float(0.1)),
            ("yes", AttrValue::Bool(true)),
            ("no", AttrValue::Bool(false)),
            (
                "list",
                AttrValue::StrList(vec!["x\\".into(), String::new(), "é".into()]),
            ),
            ("empty", AttrValue::StrList(Vec::new())),
        ]
        .into_iter()
        .collect();
        records.push(odd);
        let mut bare = base.clone();
        bare.attributes = Attributes::default();
        bare.body = String::new();
        records.push(bare);
        for r in &records {
            let serde = serde_json::to_string(&Content(r)).unwrap();
            assert_eq!(r.to_content_json(), serde);
        }
    }

    #[test]
    fn the_content_form_leaves_ids_timestamps_and_resource_to_the_store() {
        let r = sample();
        let content = r.to_content_json();
        assert!(!content.contains("\"id\"") && !content.contains("\"timestamp\""));
        assert!(!content.contains("\"resource\"") && !content.contains("observed"));
        let resource: Attributes = serde_json::from_str(&r.resource_json()).unwrap();
        let apart = KeptApart {
            id: r.id,
            timestamp: r.timestamp,
            observed_timestamp: r.observed_timestamp,
            resource: Arc::new(resource),
        };
        assert_eq!(Record::from_content_json(&content, apart).unwrap(), r);
        let err = Record::from_json(&content).unwrap_err();
        assert!(err.to_string().contains("missing field `id`"), "{err}");
    }
}
