//! Publishing records to Kafka.

use super::client_errors::{ClientErrors, ErrorSink, LastClientError};
use super::{KafkaError, KafkaOptions, client_config, message_key};
use crate::Shutdown;
use crate::checkpoint_file::CheckpointFile;
use model::{Batch, BatchStatus};
use rdkafka::ClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The header that marks a record an earlier run may already have published: the consumer
/// tells its sinks to replace their copy rather than keep two.
pub(super) const REDELIVERED_HEADER: &str = "infersight-redelivered";

/// Which field of a record keys its message. Kafka puts one key's messages in one partition,
/// in order, so the key is the unit of ordering (and of spread over partitions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MessageKey {
    /// The pod (its uid, else namespace/name): one container's records stay in order, and
    /// a node's pods spread over the partitions.
    #[default]
    Pod,
    /// The namespace: all of a namespace's records in order, in fewer partitions.
    Namespace,
    /// The node: all of a node's records in order, one partition per node.
    Node,
}

/// How records are written into messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MessageEncoding {
    /// One record a message, in its JSON form (DESIGN.md §3): what any Kafka tool reads.
    #[default]
    Json,
    /// Several records of one key a message, each in its JSON form on a line of its own
    /// (newline-delimited JSON), up to [`KafkaSinkOptions::max_message_bytes`]. Producer,
    /// broker and consumer each pay per message, not per record; a consumer that splits
    /// the payload at newlines reads the same records. Infersight's Kafka source reads both.
    JsonLines,
    /// Several records of one key a message, as [`MessageEncoding::JsonLines`] packs them,
    /// in Infersight's binary form (`model::BinaryMessage`): for Infersight's own
    /// aggregators, which read it at about half JSON's cost and get it in under half the
    /// bytes. Other consumers cannot read it; aggregators must be upgraded to a version
    /// that reads it before the agents write it.
    Binary,
}

/// How the sink writes its messages.
#[derive(Clone, Copy, Debug)]
pub struct KafkaSinkOptions {
    /// Which field keys a message.
    pub key: MessageKey,
    /// Records per message.
    pub encoding: MessageEncoding,
    /// With [`MessageEncoding::JsonLines`] or [`MessageEncoding::Binary`], a message is
    /// closed before it grows past this (a record larger than it goes alone). Kafka refuses
    /// messages over its `message.max.bytes` (1 MB by default).
    pub max_message_bytes: usize,
}

impl Default for KafkaSinkOptions {
    fn default() -> Self {
        KafkaSinkOptions {
            key: MessageKey::Pod,
            encoding: MessageEncoding::Json,
            max_message_bytes: 256 * 1024,
        }
    }
}

/// The producer's `message.max.bytes` (librdkafka's default, set all the same since the
/// cut below depends on it): librdkafka refuses, at once, a message larger than this. The
/// brokers' own default, 1,048,588, is a little larger.
const PRODUCER_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// The most bytes of JSON a record may take: what the producer takes, less room for the
/// key, headers and framing. A larger record goes with its longest texts cut
/// ([`fit_record`]), never held forever.
const MAX_RECORD_BYTES: usize = PRODUCER_MESSAGE_MAX_BYTES - 16 * 1024;

/// One message to publish.
struct Message {
    key: String,
    payload: Vec<u8>,
    /// Its records may already have been published by an earlier run.
    redelivered: bool,
    records: u64,
}

/// The messages of `records`, in order per key: one per record, or (JSON lines) one per
/// key and redelivery mark until it is full.
///
/// A record larger than [`MAX_RECORD_BYTES`] is cut to fit ([`fit_record`]) and counted in
/// `cut`.
fn encode(
    records: &[model::Record],
    redelivered: &HashSet<model::RecordId>,
    options: &KafkaSinkOptions,
    resources: &mut model::ResourceJsons,
    cut: &mut u64,
) -> Vec<Message> {
    if options.encoding == MessageEncoding::Binary {
        return encode_binary(records, redelivered, options, cut);
    }
    let mut messages: Vec<Message> = Vec::new();
    // JSON lines: the message still taking records, per key, of new records and of
    // redelivered ones.
    let mut open: [HashMap<String, usize>; 2] = Default::default();
    let packing = options.encoding == MessageEncoding::JsonLines;
    let mut line = Vec::new();
    for record in records {
        let key = message_key(record, options.key);
        let again = redelivered.contains(&record.id);
        line.clear();
        record.write_json(&mut line, resources);
        if line.len() > MAX_RECORD_BYTES
            && let Some((_, json)) = fit_record(record, MAX_RECORD_BYTES, resources)
        {
            line = json;
            *cut += 1;
        }
        if packing && let Some(&i) = open[usize::from(again)].get(&key) {
            let m = &mut messages[i];
            if m.payload.len() + 1 + line.len() <= options.max_message_bytes {
                m.payload.push(b'\n');
                m.payload.extend_from_slice(&line);
                m.records += 1;
                continue;
            }
        }
        if packing {
            open[usize::from(again)].insert(key.clone(), messages.len());
        }
        messages.push(Message {
            key,
            payload: std::mem::take(&mut line),
            redelivered: again,
            records: 1,
        });
    }
    messages
}

/// [`encode`]'s binary form: the same messages, each a [`model::BinaryMessage`].
fn encode_binary(
    records: &[model::Record],
    redelivered: &HashSet<model::RecordId>,
    options: &KafkaSinkOptions,
    cut: &mut u64,
) -> Vec<Message> {
    // In the order they were started, as `encode` sends them.
    let mut messages: Vec<(String, bool, model::BinaryMessage)> = Vec::new();
    let mut open: [HashMap<String, usize>; 2] = Default::default();
    let mut fit_resources = model::ResourceJsons::default();
    for record in records {
        let key = message_key(record, options.key);
        let again = redelivered.contains(&record.id);
        if let Some(&i) = open[usize::from(again)].get(&key)
            && messages[i].2.push(record, options.max_message_bytes)
        {
            continue;
        }
        let mut m = model::BinaryMessage::new();
        m.push(record, usize::MAX);
        // The binary form is never longer than the JSON form, which `fit_record` fits.
        if m.len() > MAX_RECORD_BYTES
            && let Some((fitted, _)) = fit_record(record, MAX_RECORD_BYTES, &mut fit_resources)
        {
            m = model::BinaryMessage::new();
            m.push(&fitted, usize::MAX);
            *cut += 1;
        }
        open[usize::from(again)].insert(key.clone(), messages.len());
        messages.push((key, again, m));
    }
    messages
        .into_iter()
        .map(|(key, redelivered, m)| Message {
            key,
            redelivered,
            records: m.records(),
            payload: m.into_bytes(),
        })
        .collect()
}

/// `record` with its JSON form within `limit` bytes, and that form: its longest texts (the body, string
/// attributes such as a stack trace) cut down to one length, as far as needed, and the
/// record flagged `log.truncated`, as the files source flags a line it cuts. `None` if it
/// cannot be made to fit (what is over the limit is not text).
fn fit_record(
    record: &model::Record,
    limit: usize,
    resources: &mut model::ResourceJsons,
) -> Option<(model::Record, Vec<u8>)> {
    let mut record = record.clone();
    record.attributes.insert(model::names::LOG_TRUNCATED, true);
    let mut out = Vec::new();
    // One pass mostly does; what a text's escapes made a cut fall short of, the next
    // makes up.
    for _ in 0..16 {
        out.clear();
        record.write_json(&mut out, resources);
        if out.len() <= limit {
            return Some((record, out));
        }
        // Each text's name (None for the body) and its length as JSON (escapes count).
        let texts: Vec<(Option<String>, usize)> = record
            .attributes
            .iter()
            .filter_map(|(k, v)| Some((Some(k.to_string()), json_len(v.as_str()?))))
            .chain([(None, json_len(&record.body))])
            .collect();
        let lengths: Vec<usize> = texts.iter().map(|(_, len)| *len).collect();
        let level = cut_level(&lengths, out.len() - limit + 64)?;
        for (key, len) in texts.into_iter().filter(|(_, len)| *len > level) {
            match key {
                None => cut_text(&mut record.body, len, level),
                Some(key) => {
                    let mut text = record.attributes.get_str(&key)?.to_string();
                    cut_text(&mut text, len, level);
                    record.attributes.insert(key, text);
                }
            }
        }
    }
    None
}

/// The length as JSON of a string (quotes and escapes included).
fn json_len(text: &str) -> usize {
    serde_json::to_string(text).map_or(text.len(), |j| j.len())
}

/// The length every text longer than it is cut to, so that `lengths` lose `excess` in
/// all, the longest first (none is cut below another's full length unless all above it
/// are). `None` when all of them together are shorter than `excess`.
fn cut_level(lengths: &[usize], excess: usize) -> Option<usize> {
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let total: usize = sorted.iter().sum();
    if total < excess {
        return None;
    }
    // With the k longest cut to `level`, they lose sum(k longest) - k * level.
    let mut above = 0;
    for (k, &len) in sorted.iter().enumerate() {
        above += len;
        let next = sorted.get(k + 1).copied().unwrap_or(0);
        let kept = above - excess.min(above);
        let level = kept / (k + 1);
        if level >= next {
            return Some(level);
        }
    }
    Some(0)
}

/// Cuts `text`, `json_len` long as JSON, to about `level` bytes of JSON: the same share of
/// its bytes, at a character's start.
fn cut_text(text: &mut String, json_len: usize, level: usize) {
    let keep = (text.len() as u128 * level as u128 / json_len.max(1) as u128) as usize;
    let end = text.floor_char_boundary(keep.min(text.len().saturating_sub(1)));
    text.truncate(end);
}

/// Whether the brokers (or librdkafka) will never take this message as it is: sending it
/// again would hold the sink, and every node's logs behind it, forever.
fn refused_for_good(error: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as Code;
    matches!(
        error.rdkafka_error_code(),
        Some(Code::MessageSizeTooLarge | Code::InvalidMessageSize | Code::InvalidRecord)
    )
}

/// What the sink did, for `/metrics`.
#[derive(Debug, Default)]
pub struct KafkaSinkMetrics {
    /// Records the broker acknowledged.
    pub records_acked: AtomicU64,
    /// Messages the broker acknowledged (fewer than records with JSON lines).
    pub messages_acked: AtomicU64,
    /// Bytes of those records' messages.
    pub bytes_acked: AtomicU64,
    /// Batches acknowledged to their sources.
    pub batches_acked: AtomicU64,
    /// Messages the producer could not deliver and that were sent again.
    pub resent: AtomicU64,
    /// Client-wide errors librdkafka reported (a broker unreachable, all brokers down).
    pub client_errors: AtomicU64,
    /// The last of them, while no message was acknowledged since.
    pub last_error: LastClientError,
    /// Records larger than a message may be, sent with their longest texts cut.
    pub records_cut: AtomicU64,
    /// Records the brokers refused for good (a message over their size limit): logged and
    /// skipped, so the records after them go on.
    pub records_refused: AtomicU64,
}

impl KafkaSinkMetrics {
    /// Where its client errors go, with its progress (messages acknowledged) as it is now.
    fn errors(&self) -> ErrorSink<'_> {
        ErrorSink {
            count: &self.client_errors,
            last: &self.last_error,
            progress: self.messages_acked.load(Relaxed),
        }
    }
}

/// The producer's context: librdkafka's client-wide errors land in the sink's counters.
struct SinkContext {
    metrics: Arc<KafkaSinkMetrics>,
    errors: ClientErrors,
}

impl ClientContext for SinkContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.errors.report(self.metrics.errors(), &error, reason);
    }
}

/// Publishes every record of a batch and acknowledges the batch once the broker has.
pub struct KafkaSink {
    producer: FutureProducer<SinkContext>,
    topic: String,
    options: KafkaSinkOptions,
    /// A pod's records share its resource: its JSON is made once, not once a record.
    resources: model::ResourceJsons,
    metrics: Arc<KafkaSinkMetrics>,
    checkpoints: Option<CheckpointFile>,
    last_flush: Instant,
}

impl KafkaSink {
    /// A producer for `options`, named `id` to the broker, writing messages as `messages`
    /// says.
    pub fn new(
        options: &KafkaOptions,
        messages: KafkaSinkOptions,
        id: &str,
    ) -> Result<Self, KafkaError> {
        let metrics = Arc::<KafkaSinkMetrics>::default();
        let producer: FutureProducer<SinkContext> =
            client_config(options, &format!("infersight-{id}"))
                // Exactly once into the log: the broker drops a retried message it already has.
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("compression.type", "lz4")
                .set("message.max.bytes", PRODUCER_MESSAGE_MAX_BYTES.to_string())
                .set("linger.ms", "5")
                .set("batch.num.messages", "10000")
                .set("queue.buffering.max.messages", "1000000")
                // Never give up on a message: a broker that is away is waited for (the sources
                // slow down), and a message given up and sent again could be doubled.
                .set("message.timeout.ms", "0")
                .create_with_context(SinkContext {
                    metrics: metrics.clone(),
                    errors: ClientErrors::new("producer"),
                })
                .map_err(|e| KafkaError::client(options, e))?;
        Ok(KafkaSink {
            producer,
            topic: options.topic.clone(),
            options: messages,
            resources: model::ResourceJsons::default(),
            metrics,
            checkpoints: None,
            last_flush: Instant::now(),
        })
    }

    /// Asks the brokers, off the caller's thread, whether they have the topic, and says
    /// so in the log at once when they do not: until it exists (created, or auto-created
    /// by brokers that allow it) the producer holds every message, and the sources wait.
    pub fn check_topic(&self) {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        let metrics = self.metrics.clone();
        let spawned = std::thread::Builder::new()
            .name("kafka-topic-check".into())
            .spawn(move || {
                match super::topic_error(producer.client(), &topic, Duration::from_secs(10)) {
                    Ok(None) => {}
                    Ok(Some(error)) => {
                        tracing::error!(
                            %topic, ?error,
                            "the brokers do not have the topic; create it (as many partitions as aggregators, at least): until then nothing is published and reading waits"
                        );
                        metrics.errors().keep_last(&format!(
                            "the brokers do not have topic {topic} ({error:?})"
                        ));
                    }
                    Err(e) => tracing::warn!(
                        %topic, error = %e,
                        "cannot ask the brokers about the topic (they may be away); publishing waits for them"
                    ),
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot check the Kafka topic");
        }
    }

    /// Keeps the sources' checkpoints in `file` once their records are acknowledged (a
    /// pipeline without an index has nowhere else to keep them).
    pub fn with_checkpoints(mut self, file: CheckpointFile) -> Self {
        self.checkpoints = Some(file);
        self
    }

    /// Its counters.
    pub fn metrics(&self) -> Arc<KafkaSinkMetrics> {
        self.metrics.clone()
    }

    /// Publishes `batches` in one round trip to the broker (a batch waits for its
    /// acknowledgements, so publishing them one at a time would cap the rate at a batch
    /// per round trip). `true` once the broker acknowledged every record: each batch's
    /// sources hear `Delivered`, in order. `false` if `shutdown` came first: they hear
    /// `Dropped` and send the records again after a restart.
    ///
    /// A record too large for a message goes cut to fit. A message the brokers refuse for
    /// good (over their own, smaller, size limit) is split into its records, and a record
    /// refused alone is logged, counted and skipped: holding it would hold the node's logs.
    pub async fn send(&mut self, batches: Vec<Batch>, shutdown: &Shutdown) -> bool {
        let mut messages: Vec<Message> = Vec::new();
        let mut cut = 0;
        for batch in &batches {
            let redelivered: HashSet<_> = batch.redelivered.iter().copied().collect();
            messages.extend(encode(
                &batch.records,
                &redelivered,
                &self.options,
                &mut self.resources,
                &mut cut,
            ));
        }
        if cut > 0 {
            self.metrics.records_cut.fetch_add(cut, Relaxed);
            tracing::warn!(
                records = cut,
                limit_bytes = MAX_RECORD_BYTES,
                "records larger than a Kafka message may be are sent with their longest texts cut (flagged log.truncated)"
            );
        }
        let mut pending: Vec<usize> = (0..messages.len()).collect();
        while !pending.is_empty() {
            let mut futures = Vec::with_capacity(pending.len());
            // Messages refused for good, by the producer at once or by the brokers.
            let mut too_large = Vec::new();
            for &i in &pending {
                let m = &messages[i];
                let mut record = FutureRecord::to(&self.topic)
                    .key(&m.key)
                    .payload(&m.payload);
                if m.redelivered {
                    record = record.headers(OwnedHeaders::new().insert(Header {
                        key: REDELIVERED_HEADER,
                        value: Some("1"),
                    }));
                }
                let future = loop {
                    match self.producer.send_result(record) {
                        Ok(f) => break Some(f),
                        Err((e, _)) if refused_for_good(&e) => break None,
                        // The producer's queue is full: it drains as the broker acknowledges.
                        Err((_, back)) => {
                            record = back;
                            if shutdown.is_triggered() {
                                return false;
                            }
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                };
                match future {
                    Some(future) => futures.push((i, future)),
                    None => too_large.push(i),
                }
            }
            let results = futures_util::future::join_all(
                futures
                    .into_iter()
                    .map(|(i, f)| async move { (i, f.await) }),
            )
            .await;
            pending.clear();
            let mut refused = None;
            for (i, result) in results {
                match result {
                    Ok(Ok(_)) => {
                        let m = &messages[i];
                        self.metrics.records_acked.fetch_add(m.records, Relaxed);
                        self.metrics.messages_acked.fetch_add(1, Relaxed);
                        self.metrics
                            .bytes_acked
                            .fetch_add(m.payload.len() as u64, Relaxed);
                    }
                    Ok(Err((e, _))) if refused_for_good(&e) => too_large.push(i),
                    Ok(Err((e, _))) => {
                        refused.get_or_insert(e);
                        self.metrics.resent.fetch_add(1, Relaxed);
                        pending.push(i);
                    }
                    // The producer went away under it: only at shutdown.
                    Err(_) => return false,
                }
            }
            for i in too_large {
                for single in self.after_refusal(&messages[i]) {
                    pending.push(messages.len());
                    messages.push(single);
                }
            }
            if let Some(error) = refused {
                self.metrics
                    .errors()
                    .keep_last(&format!("Kafka did not take messages: {error}"));
                // One line a round, not one a message: a topic the brokers lack refuses
                // every message of every round.
                tracing::warn!(
                    %error, topic = %self.topic, messages = pending.len(),
                    "Kafka did not take messages; sending them again"
                );
            }
            if !pending.is_empty() {
                if shutdown.is_triggered() {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        for mut batch in batches {
            if let Some(file) = &mut self.checkpoints {
                file.update(&batch.checkpoints);
            }
            self.metrics.batches_acked.fetch_add(1, Relaxed);
            batch.finalizers.mark(BatchStatus::Delivered);
        }
        if self.checkpoints.is_some() && self.last_flush.elapsed() >= Duration::from_secs(1) {
            self.flush_checkpoints();
        }
        true
    }

    /// What to send instead of `m`, which Kafka refuses for good: its records a message
    /// each when it packs several; nothing when it is one record (counted, logged and
    /// skipped, so that the records after it go on).
    fn after_refusal(&self, m: &Message) -> Vec<Message> {
        if m.records > 1 && model::is_binary(&m.payload) {
            let mut records = Vec::new();
            // Our own message: it reads back.
            let _ = model::read_binary(&m.payload, &mut Default::default(), &mut records);
            return records
                .iter()
                .map(|r| {
                    let mut single = model::BinaryMessage::new();
                    single.push(r, usize::MAX);
                    Message {
                        key: m.key.clone(),
                        payload: single.into_bytes(),
                        redelivered: m.redelivered,
                        records: 1,
                    }
                })
                .collect();
        }
        if m.records > 1 {
            return m
                .payload
                .split(|&b| b == b'\n')
                .map(|line| Message {
                    key: m.key.clone(),
                    payload: line.to_vec(),
                    redelivered: m.redelivered,
                    records: 1,
                })
                .collect();
        }
        self.metrics.records_refused.fetch_add(1, Relaxed);
        tracing::error!(
            topic = %self.topic, key = %m.key, bytes = m.payload.len(),
            "Kafka refuses this record for good (larger than the brokers' message.max.bytes?); it is skipped, the records after it go on"
        );
        Vec::new()
    }

    /// Waits (up to `within`) for what is still queued and stores the checkpoints.
    pub fn close(mut self, within: Duration) {
        if let Err(e) = self.producer.flush(within) {
            tracing::warn!(error = %e, "Kafka producer closed with messages unacknowledged (their sources send them again)");
        }
        self.flush_checkpoints();
    }

    fn flush_checkpoints(&mut self) {
        if let Some(file) = &mut self.checkpoints {
            if let Err(e) = file.flush() {
                // The sources re-send from the older checkpoint after a restart, marked as
                // redelivered: late, not lost.
                tracing::warn!(error = %e, "cannot store the checkpoints");
            }
            self.last_flush = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{AttrValue, Attributes, Record, RecordId, Timestamp, names};

    fn record(pod: &str, n: u64) -> Record {
        let resource: Attributes = [
            (names::K8S_NAMESPACE_NAME, "llm"),
            (names::K8S_POD_NAME, pod),
            (names::K8S_NODE_NAME, "gpu-node-1"),
        ]
        .into_iter()
        .collect();
        Record::log(
            RecordId::from_source(pod.as_bytes(), n),
            Timestamp::from_unix_nanos(1_764_000_000_000_000_000),
            Timestamp::from_unix_nanos(1_764_000_000_000_000_000),
            Arc::new(resource),
            format!("line {n}"),
        )
    }

    /// The records of a message, in either packed form.
    fn lines(m: &Message) -> Vec<Record> {
        if model::is_binary(&m.payload) {
            let mut records = Vec::new();
            model::read_binary(&m.payload, &mut Default::default(), &mut records).expect("records");
            return records;
        }
        m.payload
            .split(|b| *b == b'\n')
            .map(|l| Record::from_json(std::str::from_utf8(l).expect("utf-8")).expect("record"))
            .collect()
    }

    #[test]
    fn json_is_one_record_a_message_keyed_by_pod() {
        let records = vec![record("a", 0), record("b", 1), record("a", 2)];
        let m = encode(
            &records,
            &HashSet::new(),
            &KafkaSinkOptions::default(),
            &mut model::ResourceJsons::default(),
            &mut 0,
        );
        assert_eq!(m.len(), 3);
        let keys: Vec<&str> = m.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["llm/a", "llm/b", "llm/a"]);
        assert_eq!(lines(&m[1]), vec![records[1].clone()]);
    }

    #[test]
    fn json_lines_and_binary_pack_each_key_in_order_apart_from_redeliveries_and_within_the_size() {
        let records: Vec<Record> = (0..10)
            .map(|n| record(if n % 2 == 0 { "a" } else { "b" }, n))
            .collect();
        let mut three = model::BinaryMessage::new();
        for r in &records[..3] {
            three.push(r, usize::MAX);
        }
        let json = 3 * records[0].to_json().len() + 2;
        for (encoding, limit) in [
            (MessageEncoding::JsonLines, json),
            (MessageEncoding::Binary, three.len()),
        ] {
            packs_each_key_in_order(&records, encoding, limit);
        }
    }

    /// `records` (ten, of pods a and b in turn on one node) packed by node with `encoding`,
    /// `limit` taking three of them.
    fn packs_each_key_in_order(records: &[Record], encoding: MessageEncoding, limit: usize) {
        let again: HashSet<RecordId> = [records[8].id].into_iter().collect();
        let options = KafkaSinkOptions {
            key: MessageKey::Node,
            encoding,
            max_message_bytes: limit,
        };
        let m = encode(
            records,
            &again,
            &options,
            &mut model::ResourceJsons::default(),
            &mut 0,
        );
        // Node key: one key; three records fit a message; the redelivered one goes alone.
        let got: Vec<(Vec<u64>, bool)> = m
            .iter()
            .map(|m| {
                assert_eq!(m.key, "gpu-node-1");
                let ids = lines(m).iter().map(|r| r.id.position()).collect();
                (ids, m.redelivered)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (vec![0, 1, 2], false),
                (vec![3, 4, 5], false),
                (vec![6, 7, 9], false),
                (vec![8], true),
            ]
        );
        assert!(
            m.iter()
                .all(|m| m.payload.len() <= options.max_message_bytes)
        );
        assert_eq!(m.iter().map(|m| m.records).sum::<u64>(), 10);
        let by_pod = KafkaSinkOptions {
            key: MessageKey::Pod,
            ..options
        };
        let keys: Vec<String> = encode(
            &records[..4],
            &HashSet::new(),
            &by_pod,
            &mut model::ResourceJsons::default(),
            &mut 0,
        )
        .into_iter()
        .map(|m| m.key)
        .collect();
        assert_eq!(keys, ["llm/a", "llm/b"]);
    }

    #[test]
    fn a_record_larger_than_a_message_goes_alone_with_its_longest_texts_cut_and_flagged() {
        for encoding in [MessageEncoding::JsonLines, MessageEncoding::Binary] {
            goes_alone_cut_and_flagged(encoding);
        }
    }

    fn goes_alone_cut_and_flagged(encoding: MessageEncoding) {
        let small = record("a", 0);
        let mut big = record("a", 1);
        // A body of 1.2 MB (two-byte characters, so a cut must fall between them) and a
        // stack trace of 0.9 MB as JSON (150k escaped control characters).
        big.body = "é".repeat(600_000);
        big.attributes
            .insert(names::EXCEPTION_STACKTRACE, "\u{1}".repeat(150_000));
        let records = vec![small.clone(), big.clone(), record("a", 2)];
        let options = KafkaSinkOptions {
            encoding,
            ..KafkaSinkOptions::default()
        };
        let mut cut = 0;
        let m = encode(
            &records,
            &HashSet::new(),
            &options,
            &mut model::ResourceJsons::default(),
            &mut cut,
        );
        assert_eq!(cut, 1);
        let sent: Vec<Record> = m.iter().flat_map(lines).collect();
        assert_eq!(sent.len(), 3, "no record lost");
        assert_eq!(sent[0], small, "a record that fits is left alone");
        let fitted = m
            .iter()
            .find(|m| lines(m).iter().any(|r| r.id == big.id))
            .expect("the big record's message");
        assert!(
            fitted.payload.len() <= MAX_RECORD_BYTES,
            "{}",
            fitted.payload.len()
        );
        assert_eq!(fitted.records, 1, "it goes alone");
        let r = &sent[1];
        assert_eq!(r.id, big.id);
        assert_eq!(r.attributes.get(names::LOG_TRUNCATED), Some(&true.into()));
        assert!(big.body.starts_with(&r.body) && r.body.len() < big.body.len());
        // Both texts are over half a message: both give, to about one length as JSON.
        let stack = r.attributes.get_str(names::EXCEPTION_STACKTRACE).unwrap();
        assert!("\u{1}".repeat(150_000).starts_with(stack));
        let (body, stack) = (json_len(&r.body), json_len(stack));
        assert!(body.abs_diff(stack) < 100, "{body} against {stack}");
        assert!(body > MAX_RECORD_BYTES / 3, "{body}");
        assert_eq!(sent[2].attributes.get(names::LOG_TRUNCATED), None);
    }

    #[test]
    fn the_cut_level_takes_the_longest_texts_down_first() {
        // One long text gives all.
        assert_eq!(cut_level(&[1000, 10, 20], 300), Some(700));
        // Down to the next one's length, then both.
        assert_eq!(cut_level(&[1000, 600], 600), Some(500));
        assert_eq!(cut_level(&[1000, 600, 100], 400), Some(600));
        assert_eq!(cut_level(&[10, 20], 30), Some(0));
        assert_eq!(cut_level(&[10, 20], 31), None);
    }

    #[test]
    fn a_record_whose_excess_is_not_text_cannot_be_fitted() {
        let mut r = record("a", 0);
        r.body.clear();
        let huge: Vec<String> = (0..200_000).map(|i| format!("reason-{i}")).collect();
        r.attributes
            .insert("gen_ai.response.finish_reasons", AttrValue::StrList(huge));
        let limit = 10_000;
        assert!(r.to_json().len() > limit);
        assert_eq!(
            fit_record(&r, limit, &mut model::ResourceJsons::default()),
            None
        );
        // With text to cut it fits exactly within the limit.
        let mut r = record("a", 0);
        r.body = "x".repeat(50_000);
        let fitted = fit_record(&r, limit, &mut model::ResourceJsons::default())
            .expect("fits")
            .1;
        assert!(
            fitted.len() <= limit && fitted.len() > limit - 200,
            "{}",
            fitted.len()
        );
    }
}
