//! Records' binary form: many records of one Kafka message, compact and cheap to read.
//!
//! The JSON form (DESIGN.md §3) is what any tool reads; this form is for Infersight's own
//! agents and aggregators (the Kafka sink's `encoding = "binary"`), where JSON's text was a
//! sixth of the aggregator's CPU to read and a tenth of the agent's to write. A message is
//! [`BINARY_MAGIC`] and then records, each:
//!
//! | field | bytes |
//! | --- | --- |
//! | resource | varint: 0 and the resource's attributes, the first time in the message; else the n-th resource written in it (from 1) |
//! | id | 16, little-endian |
//! | timestamp | zigzag varint, ns since the epoch |
//! | observed timestamp | zigzag varint, ns after the timestamp |
//! | kind, severity, stream | 1 each (0: no severity, no stream) |
//! | body | string |
//! | attributes | varint count, then each: name (string), value |
//!
//! A string is a varint length and UTF-8; a value a tag (0 string, 1 integer as a zigzag
//! varint, 2 float as 8 bytes little-endian, 3 false, 4 true, 5 list: varint count and
//! strings). A reader takes a message whole or not at all: after a damaged byte nothing
//! says where the next record starts.

use crate::{AttrKey, AttrValue, Attributes, Record, RecordId, RecordKind, Severity, Stream};
use crate::{SharedResources, Timestamp, names};
use std::sync::{Arc, OnceLock};

/// The first bytes of a message in the binary form: a NUL (which starts no JSON text and
/// no log line), `ISB`, and the form's version.
pub const BINARY_MAGIC: [u8; 5] = *b"\0ISB\x01";

/// Whether `payload` is a message in the binary form (of any version).
pub fn is_binary(payload: &[u8]) -> bool {
    payload.starts_with(&BINARY_MAGIC[..4])
}

const SEVERITIES: [Severity; 6] = [
    Severity::Trace,
    Severity::Debug,
    Severity::Info,
    Severity::Warn,
    Severity::Error,
    Severity::Fatal,
];

const STR: u8 = 0;
const INT: u8 = 1;
const FLOAT: u8 = 2;
const FALSE: u8 = 3;
const TRUE: u8 = 4;
const LIST: u8 = 5;

/// A message in the binary form being written.
#[derive(Debug)]
pub struct BinaryMessage {
    bytes: Vec<u8>,
    records: u64,
    /// The resources written into it, in order; a record whose resource is one of them
    /// (the same `Arc`: a pod's records share one) refers to it instead.
    resources: Vec<Arc<Attributes>>,
}

impl Default for BinaryMessage {
    fn default() -> Self {
        BinaryMessage {
            bytes: BINARY_MAGIC.to_vec(),
            records: 0,
            resources: Vec::new(),
        }
    }
}

impl BinaryMessage {
    /// A message with no record yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `record`, unless the message holds a record already and would then be longer
    /// than `limit` bytes (a first record always goes in). Whether it went in.
    pub fn push(&mut self, record: &Record, limit: usize) -> bool {
        let (len, resources) = (self.bytes.len(), self.resources.len());
        self.write(record);
        if self.records > 0 && self.bytes.len() > limit {
            self.bytes.truncate(len);
            self.resources.truncate(resources);
            return false;
        }
        self.records += 1;
        true
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The records in it.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Its bytes, to publish.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn write(&mut self, r: &Record) {
        match self
            .resources
            .iter()
            .position(|x| Arc::ptr_eq(x, &r.resource))
        {
            Some(i) => varint(&mut self.bytes, i as u64 + 1),
            None => {
                self.bytes.push(0);
                write_attributes(&mut self.bytes, &r.resource);
                self.resources.push(Arc::clone(&r.resource));
            }
        }
        let out = &mut self.bytes;
        out.extend_from_slice(&r.id.0.to_le_bytes());
        let ts = r.timestamp.unix_nanos();
        varint(out, zigzag(ts));
        varint(
            out,
            zigzag(r.observed_timestamp.unix_nanos().wrapping_sub(ts)),
        );
        out.push(
            RecordKind::ALL
                .iter()
                .position(|k| *k == r.kind)
                .unwrap_or(0) as u8,
        );
        out.push(r.severity.map_or(0, |s| {
            SEVERITIES.iter().position(|x| *x == s).unwrap_or(0) as u8 + 1
        }));
        out.push(match r.stream {
            None => 0,
            Some(Stream::Stdout) => 1,
            Some(Stream::Stderr) => 2,
        });
        string(out, &r.body);
        write_attributes(out, &r.attributes);
    }
}

fn write_attributes(out: &mut Vec<u8>, attributes: &Attributes) {
    varint(out, attributes.len() as u64);
    for (key, value) in attributes.iter() {
        string(out, key);
        match value {
            AttrValue::Str(s) => {
                out.push(STR);
                string(out, s);
            }
            AttrValue::Int(i) => {
                out.push(INT);
                varint(out, zigzag(*i));
            }
            AttrValue::Float(f) => {
                out.push(FLOAT);
                out.extend_from_slice(&f.to_le_bytes());
            }
            AttrValue::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
            AttrValue::StrList(items) => {
                out.push(LIST);
                varint(out, items.len() as u64);
                for item in items {
                    string(out, item);
                }
            }
        }
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// Why a message is not in the binary form, or where it is damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    /// It does not start with [`BINARY_MAGIC`]'s first four bytes.
    #[error("not Infersight's binary form (it does not start with NUL `ISB`)")]
    NotBinary,
    /// A later version of the form than this reader knows.
    #[error(
        "binary form version {0}, newer than this reader's {known}: upgrade the aggregators before the agents",
        known = BINARY_MAGIC[4]
    )]
    NewerVersion(u8),
    /// Record `record` (from 1) is damaged at byte `at` of the message.
    #[error("record {record}, byte {at}: {what}")]
    Damaged {
        /// The record, from 1.
        record: u64,
        /// The byte offset in the message.
        at: usize,
        /// What is wrong there.
        what: &'static str,
    },
}

/// Appends the records of `payload`, a message in the binary form, to `out`, sharing
/// resources (and attribute names) through `shared` as [`Record::from_json_sharing`] does.
/// A damaged message adds no record.
pub fn read_binary(
    payload: &[u8],
    shared: &mut SharedResources,
    out: &mut Vec<Record>,
) -> Result<(), BinaryError> {
    if !is_binary(payload) {
        return Err(BinaryError::NotBinary);
    }
    let version = payload.get(4).copied().unwrap_or(0);
    if version != BINARY_MAGIC[4] {
        return Err(BinaryError::NewerVersion(version));
    }
    let before = out.len();
    let mut reader = Reader {
        bytes: payload,
        at: BINARY_MAGIC.len(),
        record: 0,
        shared,
        resources: Vec::new(),
    };
    while reader.at < payload.len() {
        reader.record += 1;
        match reader.record() {
            Ok(r) => out.push(r),
            Err(e) => {
                out.truncate(before);
                return Err(e);
            }
        }
    }
    Ok(())
}

struct Reader<'a, 's> {
    bytes: &'a [u8],
    at: usize,
    record: u64,
    shared: &'s mut SharedResources,
    resources: Vec<Arc<Attributes>>,
}

impl<'a> Reader<'a, '_> {
    fn damaged(&self, what: &'static str) -> BinaryError {
        BinaryError::Damaged {
            record: self.record,
            at: self.at,
            what,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BinaryError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.damaged("cut short"))?;
        let bytes: &'a [u8] = self.bytes;
        let b = &bytes[self.at..end];
        self.at = end;
        Ok(b)
    }

    fn byte(&mut self) -> Result<u8, BinaryError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, BinaryError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.damaged("a number longer than 10 bytes"))
    }

    fn str(&mut self) -> Result<&'a str, BinaryError> {
        let len = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        let at = self.at;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| BinaryError::Damaged {
            record: self.record,
            at,
            what: "a text that is not UTF-8",
        })
    }

    fn record(&mut self) -> Result<Record, BinaryError> {
        let resource = match self.varint()? {
            0 => {
                let from = self.at;
                let attributes = self.attributes()?;
                let resource = self
                    .shared
                    .share_binary(&self.bytes[from..self.at], attributes);
                self.resources.push(Arc::clone(&resource));
                resource
            }
            n => usize::try_from(n - 1)
                .ok()
                .and_then(|i| self.resources.get(i))
                .cloned()
                .ok_or_else(|| self.damaged("a resource not written before"))?,
        };
        let id = RecordId(u128::from_le_bytes(
            self.take(16)?.try_into().unwrap_or_default(),
        ));
        let ts = unzigzag(self.varint()?);
        let observed = ts.wrapping_add(unzigzag(self.varint()?));
        let kind = *RecordKind::ALL
            .get(usize::from(self.byte()?))
            .ok_or_else(|| self.damaged("an unknown kind"))?;
        let severity = match self.byte()? {
            0 => None,
            n => Some(
                *SEVERITIES
                    .get(usize::from(n) - 1)
                    .ok_or_else(|| self.damaged("an unknown severity"))?,
            ),
        };
        let stream = match self.byte()? {
            0 => None,
            1 => Some(Stream::Stdout),
            2 => Some(Stream::Stderr),
            _ => return Err(self.damaged("an unknown stream")),
        };
        let body = self.str()?.to_owned();
        let attributes = self.attributes()?;
        Ok(Record {
            id,
            timestamp: Timestamp::from_unix_nanos(ts),
            observed_timestamp: Timestamp::from_unix_nanos(observed),
            kind,
            resource,
            severity,
            stream,
            body,
            attributes,
        })
    }

    fn attributes(&mut self) -> Result<Attributes, BinaryError> {
        let n = self.varint()?;
        // Each attribute takes two bytes at least: a count past that is damage, not a
        // reason to reserve memory.
        if n > (self.bytes.len() - self.at) as u64 / 2 {
            return Err(self.damaged("more attributes than bytes left"));
        }
        // Gathered, then built at once: the writer wrote them in name order, which
        // `Attributes` checks in one pass and keeps, where inserting one by one searched
        // for each name's place.
        let mut attributes = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let key = self.key()?;
            let value = match self.byte()? {
                STR => AttrValue::Str(self.str()?.to_owned()),
                INT => AttrValue::Int(unzigzag(self.varint()?)),
                FLOAT => {
                    let f = f64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default());
                    if !f.is_finite() {
                        return Err(self.damaged("a float that is not finite"));
                    }
                    AttrValue::Float(f)
                }
                FALSE => AttrValue::Bool(false),
                TRUE => AttrValue::Bool(true),
                LIST => {
                    let n = self.varint()?;
                    // Each item takes a byte at least: a count past the bytes left is damage,
                    // not a reason to reserve memory.
                    if n > (self.bytes.len() - self.at) as u64 {
                        return Err(self.damaged("a list longer than the message"));
                    }
                    let mut items = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        items.push(self.str()?.to_owned());
                    }
                    AttrValue::StrList(items)
                }
                _ => return Err(self.damaged("an unknown value type")),
            };
            attributes.push((key, value));
        }
        Ok(attributes.into_iter().collect())
    }

    /// An attribute's name: the contract's constant when it is one (most are), so that
    /// reading it allocates nothing.
    fn key(&mut self) -> Result<AttrKey, BinaryError> {
        // Looked up by its bytes first: a contract name needs no UTF-8 check (a quarter of
        // the reader's time went to checking short texts).
        let len = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        let at = self.at;
        let bytes = self.take(len)?;
        if let Some(known) = contract_name(bytes) {
            return Ok(AttrKey::Borrowed(known));
        }
        match std::str::from_utf8(bytes) {
            Ok(name) => Ok(AttrKey::Owned(name.to_owned())),
            Err(_) => Err(BinaryError::Damaged {
                record: self.record,
                at,
                what: "a text that is not UTF-8",
            }),
        }
    }
}

/// The contract's constant spelled `name`, if any.
fn contract_name(name: &[u8]) -> Option<&'static str> {
    static NAMES: OnceLock<foldhash::HashMap<&'static [u8], &'static str>> = OnceLock::new();
    NAMES
        .get_or_init(|| names::ALL.into_iter().map(|n| (n.as_bytes(), n)).collect())
        .get(name)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn resource(pod: &str) -> Arc<Attributes> {
        Arc::new(
            [
                (names::K8S_POD_NAME, AttrValue::from(pod)),
                (names::K8S_CONTAINER_RESTART_COUNT, AttrValue::Int(3)),
            ]
            .into_iter()
            .collect(),
        )
    }

    fn record(resource: &Arc<Attributes>, n: u64) -> Record {
        let ts = Timestamp::from_unix_nanos(1_764_275_000_123_456_789 + n as i64);
        let mut r = Record::log(
            RecordId::from_source(b"binary-test", n),
            ts,
            ts.saturating_add_nanos(-5),
            Arc::clone(resource),
            format!("line {n} ✓ \"quoted\"\n"),
        );
        r.kind = RecordKind::Request;
        r.severity = Some(Severity::Warn);
        r.stream = Some(Stream::Stderr);
        r.attributes.insert(names::LLM_SERVER, "vllm");
        r.attributes.insert(names::LLM_RUNNING, -7i64);
        r.attributes.insert_f64(names::LLM_E2E_MS, 0.0);
        r.attributes
            .insert_f64(names::GEN_AI_REQUEST_TEMPERATURE, 0.7);
        r.attributes.insert("team.custom", true);
        r.attributes.insert(
            names::GEN_AI_RESPONSE_FINISH_REASONS,
            AttrValue::StrList(vec!["stop".into(), String::new()]),
        );
        r
    }

    fn message(records: &[Record]) -> Vec<u8> {
        let mut m = BinaryMessage::new();
        for r in records {
            assert!(m.push(r, usize::MAX));
        }
        assert_eq!(m.records(), records.len() as u64);
        m.into_bytes()
    }

    #[test]
    fn records_read_back_equal_sharing_their_resources_and_names() {
        let (a, b) = (resource("vllm-0"), resource("vllm-1"));
        let mut records: Vec<Record> = (0..4)
            .map(|n| record(if n % 2 == 0 { &a } else { &b }, n))
            .collect();
        records[3] = Record::log(
            RecordId(u128::MAX),
            Timestamp::from_unix_nanos(i64::MIN),
            Timestamp::from_unix_nanos(i64::MAX),
            Arc::new(Attributes::new()),
            String::new(),
        );
        let bytes = message(&records);
        assert!(is_binary(&bytes));
        let mut shared = SharedResources::default();
        let mut out = Vec::new();
        read_binary(&bytes, &mut shared, &mut out).unwrap();
        assert_eq!(out, records);
        assert!(Arc::ptr_eq(&out[0].resource, &out[2].resource));
        // A second message of the same pod shares the first's resource too.
        let mut again = Vec::new();
        read_binary(&message(&records[..1]), &mut shared, &mut again).unwrap();
        assert!(Arc::ptr_eq(&again[0].resource, &out[0].resource));
        let key = out[0]
            .attributes
            .iter()
            .find(|(k, _)| *k == names::LLM_SERVER)
            .unwrap()
            .0;
        let constant = contract_name(names::LLM_SERVER.as_bytes()).unwrap();
        assert!(
            std::ptr::eq(key, constant),
            "a contract name is read as its constant"
        );
    }

    #[test]
    fn a_message_over_its_limit_takes_no_more_records_but_always_a_first() {
        let a = resource("vllm-0");
        let mut m = BinaryMessage::new();
        assert!(m.push(&record(&a, 0), 10));
        let one = m.len();
        assert!(!m.push(&record(&a, 1), one + 10));
        assert_eq!((m.len(), m.records()), (one, 1));
        assert!(m.push(&record(&a, 1), usize::MAX));
        // The second refers to the first's resource: shorter by the resource's bytes.
        assert!(m.len() - one < one - BINARY_MAGIC.len());
    }

    #[test]
    fn damage_anywhere_is_an_error_naming_the_record_and_adds_nothing() {
        let a = resource("vllm-0");
        let bytes = message(&[record(&a, 0), record(&a, 1)]);
        let mut shared = SharedResources::default();
        let mut out = vec![record(&a, 9)];
        // Cut at every length: each is refused, but at the first record's end.
        let first_end = message(&[record(&a, 0)]).len();
        for len in BINARY_MAGIC.len() + 1..bytes.len() {
            let r = read_binary(&bytes[..len], &mut shared, &mut out);
            assert_eq!(r.is_ok(), len == first_end, "cut at {len}: {r:?}");
            assert_eq!(out.len(), if len == first_end { 2 } else { 1 });
            out.truncate(1);
        }
        let mut bad = bytes.clone();
        let body_at = bytes.windows(4).position(|w| w == b"line").unwrap();
        bad[body_at] = 0xff;
        let err = read_binary(&bad, &mut shared, &mut out).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("record 1, byte {body_at}: a text that is not UTF-8")
        );
        assert_eq!(out.len(), 1);
        let mut newer = bytes.clone();
        newer[4] = 2;
        assert_eq!(
            read_binary(&newer, &mut shared, &mut out),
            Err(BinaryError::NewerVersion(2))
        );
        assert_eq!(
            read_binary(b"{\"id\":1}", &mut shared, &mut out),
            Err(BinaryError::NotBinary)
        );
        let mut nan = bytes.clone();
        let f = nan
            .windows(8)
            .position(|w| w == 0.7f64.to_le_bytes())
            .unwrap();
        nan[f..f + 8].copy_from_slice(&f64::NAN.to_le_bytes());
        assert!(
            read_binary(&nan, &mut shared, &mut out)
                .unwrap_err()
                .to_string()
                .contains("not finite")
        );
    }

    #[test]
    fn any_byte_changed_anywhere_reads_or_is_refused_without_a_panic() {
        let (a, b) = (resource("vllm-0"), resource("tgi-1"));
        let bytes = message(&[record(&a, 0), record(&b, 1), record(&a, 2)]);
        let mut shared = SharedResources::default();
        let mut out = Vec::new();
        let mut refused = 0;
        for at in 0..bytes.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut changed = bytes.clone();
                changed[at] = value;
                out.clear();
                match read_binary(&changed, &mut shared, &mut out) {
                    Ok(()) => assert!(!out.is_empty(), "byte {at} = {value:#x}"),
                    Err(_) => {
                        refused += 1;
                        assert!(out.is_empty(), "byte {at} = {value:#x} added records")
                    }
                }
            }
        }
        // Most changes land in lengths, tags and text, which the reader must notice.
        assert!(
            refused > bytes.len(),
            "{refused} of {} refused",
            bytes.len() * 5
        );
    }

    #[test]
    fn every_contract_name_is_in_the_list_readers_use() {
        // The value of every `pub const NAME: &str = "…"` (wrapped or not) in names.rs.
        let defined: HashSet<&str> = include_str!("names.rs")
            .split("pub const ")
            .filter_map(|c| c.split_once(": &str =")?.1.trim_start().strip_prefix('"'))
            .filter_map(|v| v.split_once('"').map(|(v, _)| v))
            .collect();
        let listed: HashSet<&str> = names::ALL.into_iter().collect();
        assert_eq!(listed.len(), names::ALL.len(), "no name twice");
        assert_eq!(defined, listed);
    }
}
