//! Consuming a topic in a consumer group.
//!
//! Runs on a thread of its own (librdkafka's consumer and its rebalance callbacks block).
//! Offsets are committed to the group only after every sink made a batch durable; the
//! index also keeps them (`topic/partition` checkpoints in its commit), and a message
//! below what the index already holds is skipped, so neither a crash nor a rebalance
//! indexes anything twice. Before partitions are taken away, the batches in flight from
//! them are waited for and their offsets committed, so the next owner starts after them.

use super::client_errors::{ClientErrors, ErrorSink, LastClientError};
use super::sink::REDELIVERED_HEADER;
use super::{KafkaError, KafkaOptions, client_config};
use crate::Shutdown;
use model::{
    Attributes, Batch, BatchStatus, Checkpoint, CheckpointSet, Finalizers, Record, RecordId,
    SharedResources, Stream, Timestamp, names,
};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError as KafkaClientError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the messages of the topic are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MessageFormat {
    /// Infersight's records as the Kafka sink writes them: in their JSON form, one a message
    /// or several, one a line; or several in their binary form.
    #[default]
    Record,
    /// Log lines another shipper wrote: plain text, or JSON with the line in `log`,
    /// `message` or `msg`, the pod under `kubernetes` (Fluent Bit's, Vector's and
    /// Filebeat's forms) and the line's time in `@timestamp`, `timestamp` or `time`.
    Raw,
}

/// What the source did, for `/metrics`.
#[derive(Debug, Default)]
pub struct KafkaSourceMetrics {
    /// Messages read.
    pub messages: AtomicU64,
    /// Their bytes.
    pub bytes: AtomicU64,
    /// Messages, or lines of a message of JSON lines, that were not records (counted and
    /// skipped).
    pub malformed: AtomicU64,
    /// Malformed messages, or lines, published to the dead-letter topic.
    pub dead_letters: AtomicU64,
    /// Malformed messages, or lines, the dead-letter topic did not take (the broker did not
    /// acknowledge them in time); logged with their partition and offset.
    pub dead_letter_failures: AtomicU64,
    /// Records read from the messages.
    pub records: AtomicU64,
    /// Messages skipped because the index already holds them (a replay).
    pub already_indexed: AtomicU64,
    /// Offset commits to the group.
    pub commits: AtomicU64,
    /// Offset commits that failed (tried again with the next).
    pub commit_failures: AtomicU64,
    /// Rebalances (partitions assigned or taken away).
    pub rebalances: AtomicU64,
    /// Partitions this consumer owns now.
    pub partitions: AtomicU64,
    /// Client-wide errors librdkafka reported (a broker unreachable, all brokers down), of
    /// the consumer and of its dead-letter producer.
    pub client_errors: AtomicU64,
    /// The last of them, while no message was read since.
    pub last_error: LastClientError,
    /// Messages in the partitions it owns that it has not read yet (librdkafka's
    /// `consumer_lag`, every few seconds): growing means the aggregators fall behind.
    pub lag: AtomicU64,
}

impl KafkaSourceMetrics {
    /// Where its client errors go, with its progress (messages read) as it is now.
    fn errors(&self) -> ErrorSink<'_> {
        ErrorSink {
            count: &self.client_errors,
            last: &self.last_error,
            progress: self.messages.load(Relaxed),
        }
    }
}

/// Partitions' progress shared between the consumer thread and batch acknowledgements.
#[derive(Debug, Default)]
struct Progress {
    state: Mutex<ProgressState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct ProgressState {
    /// Next offset per partition whose messages are all durable.
    durable: HashMap<i32, i64>,
    /// Offsets of those not yet committed to the group.
    uncommitted: HashMap<i32, i64>,
    /// Batches sent and not yet acknowledged, per partition.
    in_flight: HashMap<i32, usize>,
}

impl Progress {
    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct SourceContext {
    topic: String,
    progress: Arc<Progress>,
    metrics: Arc<KafkaSourceMetrics>,
    errors: ClientErrors,
}

impl ClientContext for SourceContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.errors.report(self.metrics.errors(), &error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let lag = unread(&statistics, &self.topic).unwrap_or(0);
        self.metrics.lag.store(lag, Relaxed);
    }
}

/// How often librdkafka reports its statistics (and so the lag).
const STATS_EVERY: Duration = Duration::from_secs(5);

/// Messages of `topic` in the partitions this consumer owns that it has not read: the sum
/// of librdkafka's `consumer_lag` (a partition's end less what was read) over them; `None`
/// while it knows none.
fn unread(statistics: &Statistics, topic: &str) -> Option<u64> {
    let lags: Vec<u64> = statistics
        .topics
        .get(topic)?
        .partitions
        .values()
        .filter(|p| p.partition >= 0 && p.desired)
        .filter_map(|p| u64::try_from(p.consumer_lag).ok())
        .collect();
    (!lags.is_empty()).then(|| lags.iter().sum())
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        self.metrics.rebalances.fetch_add(1, Relaxed);
        self.metrics.partitions.store(0, Relaxed);
        let revoked: Vec<i32> = list
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        // Let what is in flight from them become durable, then commit it: the next owner
        // starts after it instead of indexing it again.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut state = self.progress.lock();
        while revoked
            .iter()
            .any(|p| state.in_flight.get(p).copied().unwrap_or(0) > 0)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    "partitions taken away with batches still in flight; their next owner reads them again"
                );
                break;
            }
            state = self
                .progress
                .changed
                .wait_timeout(state, left)
                .map(|(s, _)| s)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        // Everything durable, synchronously: an asynchronous commit from an acknowledgement
        // may still be on its way, and the next owner must not fetch the offsets before it.
        let mut commit = TopicPartitionList::new();
        for p in &revoked {
            state.uncommitted.remove(p);
            if let Some(next) = state.durable.remove(p) {
                let _ = commit.add_partition_offset(&self.topic, *p, Offset::Offset(next));
            }
        }
        drop(state);
        if commit.count() > 0 {
            match consumer.commit(&commit, CommitMode::Sync) {
                Ok(()) => {
                    self.metrics.commits.fetch_add(1, Relaxed);
                }
                Err(e) => {
                    self.metrics.commit_failures.fetch_add(1, Relaxed);
                    tracing::warn!(error = %e, "cannot commit offsets of partitions being taken away");
                }
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
            self.metrics
                .partitions
                .store(partitions.len() as u64, Relaxed);
            tracing::info!(topic = %self.topic, ?partitions, "Kafka partitions assigned");
        }
    }
}

/// Consumes a topic and sends its records.
pub struct KafkaSource {
    id: String,
    /// Shared with batch acknowledgements, which commit their offsets at once.
    consumer: Arc<BaseConsumer<SourceContext>>,
    topic: String,
    format: MessageFormat,
    /// Next offset per partition the index already holds everything below.
    indexed: HashMap<i32, i64>,
    progress: Arc<Progress>,
    metrics: Arc<KafkaSourceMetrics>,
    /// The resources of the records read, decoded once each: the records of one pod share
    /// one as in the agent (the index keeps one JSON form per resource it has seen).
    resources: SharedResources,
    /// Where malformed messages go, when a dead-letter topic is configured.
    dead_letters: Option<DeadLetters>,
}

/// Messages gathered into one batch at most.
const BATCH_MESSAGES: usize = 2000;
/// Records gathered into one batch at most (a message's records all go in one): packed
/// messages hold hundreds each, and the pipeline's channels hold batches, so without it a
/// fast reader's batches held tens of thousands of records each and an aggregator
/// catching up held a million in its channels.
const BATCH_RECORDS: usize = 8192;
/// A batch waits at most this long to fill.
const BATCH_WAIT: Duration = Duration::from_millis(50);
/// Offsets are committed to the group at most this often (and before a rebalance).
const COMMIT_EVERY: Duration = Duration::from_secs(1);

impl KafkaSource {
    /// A consumer of `options.topic` in `group`, named `id` in the pipeline; `resume` holds
    /// the offsets the index already committed.
    pub fn new(
        id: &str,
        options: &KafkaOptions,
        group: &str,
        instance_id: Option<&str>,
        format: MessageFormat,
        resume: &CheckpointSet,
    ) -> Result<Self, KafkaError> {
        let progress = Arc::new(Progress::default());
        let metrics = Arc::new(KafkaSourceMetrics::default());
        let context = SourceContext {
            topic: options.topic.clone(),
            progress: progress.clone(),
            metrics: metrics.clone(),
            errors: ClientErrors::new("consumer"),
        };
        let mut config = client_config(options, &format!("infersight-{id}"));
        if let Some(instance) = instance_id {
            // Static membership: a restarted member (same StatefulSet pod) takes its own
            // partitions back without a rebalance of the whole group.
            config.set("group.instance.id", instance);
        }
        let consumer: BaseConsumer<SourceContext> = config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // A dead member's partitions move within seconds, not the default 45.
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            // librdkafka's statistics, for the lag of the partitions owned.
            .set(
                "statistics.interval.ms",
                STATS_EVERY.as_millis().to_string(),
            )
            .create_with_context(context)
            .map_err(|e| KafkaError::client(options, e))?;
        let prefix = format!("{}/", options.topic);
        let indexed = resume
            .of_source(id)
            .filter_map(|(key, next)| {
                let partition = key.strip_prefix(&prefix)?.parse().ok()?;
                Some((partition, i64::try_from(next).ok()?))
            })
            .collect();
        Ok(KafkaSource {
            id: id.to_string(),
            consumer: Arc::new(consumer),
            topic: options.topic.clone(),
            format,
            indexed,
            progress,
            metrics,
            resources: SharedResources::default(),
            dead_letters: None,
        })
    }

    /// Publishes each malformed message, or malformed line of a JSON-lines message, to
    /// `topic` on the same brokers, as it was read, with headers naming where it came from
    /// and why it is not a record ([`DEAD_LETTER_HEADERS`]). Its offset is committed only
    /// after the broker took the dead letter (or gave up on it after 30 s: counted in
    /// `dead_letter_failures` and logged).
    pub fn with_dead_letter_topic(
        mut self,
        options: &KafkaOptions,
        topic: &str,
    ) -> Result<Self, KafkaError> {
        self.dead_letters = Some(DeadLetters::new(
            options,
            &self.id,
            topic,
            self.metrics.clone(),
        )?);
        Ok(self)
    }

    /// Its counters.
    pub fn metrics(&self) -> Arc<KafkaSourceMetrics> {
        self.metrics.clone()
    }

    /// Consumes until `shutdown` or until `out` is closed. Blocks: run it on its own thread.
    pub fn run(mut self, out: mpsc::Sender<Batch>, shutdown: Shutdown) {
        if let Err(e) = self.consumer.subscribe(&[&self.topic]) {
            tracing::error!(error = %e, topic = %self.topic, "cannot subscribe");
            return;
        }
        if let Some(dead) = &self.dead_letters {
            dead.check_topic();
        }
        let mut last_commit = Instant::now();
        while !shutdown.is_triggered() {
            let batch = self.gather();
            if last_commit.elapsed() >= COMMIT_EVERY {
                self.commit(CommitMode::Async);
                last_commit = Instant::now();
            }
            let Some(batch) = batch else { continue };
            if out.blocking_send(batch).is_err() {
                break;
            }
        }
        // Closing the output lets the stages after it drain; what they make durable by the
        // deadline is committed (the pipeline's own drain bound is 30 s), the rest is read
        // again by whoever owns the partitions next.
        drop(out);
        let deadline = Instant::now() + Duration::from_secs(25);
        while Instant::now() < deadline && self.progress.lock().in_flight.values().any(|n| *n > 0) {
            let state = self.progress.lock();
            let _ = self
                .progress
                .changed
                .wait_timeout(state, Duration::from_millis(100));
        }
        // Everything durable, synchronously, before the consumer leaves the group (the
        // acknowledgements' asynchronous commits may still be on their way).
        let durable: Vec<(i32, i64)> = {
            let mut state = self.progress.lock();
            state.uncommitted.clear();
            state.durable.iter().map(|(p, o)| (*p, *o)).collect()
        };
        if !durable.is_empty() {
            let mut list = TopicPartitionList::new();
            for (p, o) in &durable {
                let _ = list.add_partition_offset(&self.topic, *p, Offset::Offset(*o));
            }
            if let Err(e) = self.consumer.commit(&list, CommitMode::Sync) {
                self.metrics.commit_failures.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "cannot commit the offsets at shutdown; the next owner reads those batches again");
            }
        }
    }

    /// Up to [`BATCH_MESSAGES`] messages, or what came within [`BATCH_WAIT`], as a batch.
    fn gather(&mut self) -> Option<Batch> {
        let started = Instant::now();
        // Its own handle: the messages it gives borrow it while records are decoded.
        let consumer = self.consumer.clone();
        let mut records = Vec::new();
        let mut redelivered = Vec::new();
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let mut seen = 0;
        let mut malformed = Vec::new();
        let mut dead_letters = 0;
        while seen < BATCH_MESSAGES && records.len() < BATCH_RECORDS {
            let left = BATCH_WAIT.saturating_sub(started.elapsed());
            if left.is_zero() && seen > 0 {
                break;
            }
            let message = match consumer.poll(left.max(Duration::from_millis(1))) {
                None => {
                    if started.elapsed() >= BATCH_WAIT {
                        break;
                    }
                    continue;
                }
                Some(Err(e)) => {
                    // Mostly the client-wide error the context just reported (all brokers
                    // down, twenty times a second while they are); it reconnects by itself.
                    consumer
                        .context()
                        .errors
                        .report_returned(self.metrics.errors(), &e);
                    break;
                }
                Some(Ok(m)) => m,
            };
            seen += 1;
            let (partition, offset) = (message.partition(), message.offset());
            next.insert(partition, offset + 1);
            self.metrics.messages.fetch_add(1, Relaxed);
            self.metrics
                .bytes
                .fetch_add(message.payload_len() as u64, Relaxed);
            if offset < self.indexed.get(&partition).copied().unwrap_or(0) {
                self.metrics.already_indexed.fetch_add(1, Relaxed);
                continue;
            }
            let first = records.len();
            malformed.clear();
            self.records_of(&message, &mut records, &mut malformed);
            if let Some(first_bad) = malformed.first() {
                self.metrics
                    .malformed
                    .fetch_add(malformed.len() as u64, Relaxed);
                tracing::warn!(
                    topic = %self.topic, partition, offset, malformed = malformed.len(),
                    reason = %first_bad.reason,
                    "a message that is not a record, or has lines that are not; skipped"
                );
            }
            if let Some(dead) = &self.dead_letters {
                for m in malformed.drain(..) {
                    if dead.queue(&self.topic, &message, m) {
                        dead_letters += 1;
                    } else {
                        self.metrics.dead_letter_failures.fetch_add(1, Relaxed);
                    }
                }
            }
            self.metrics
                .records
                .fetch_add((records.len() - first) as u64, Relaxed);
            if is_redelivered(&message) {
                redelivered.extend(records[first..].iter().map(|r| r.id));
            }
        }
        if dead_letters > 0
            && let Some(dead) = &self.dead_letters
        {
            // Before the batch that carries their offsets goes on: once it is durable, the
            // offsets are committed and the messages never read again.
            dead.deliver(dead_letters, &self.metrics);
        }
        if next.is_empty() {
            return None;
        }
        let mut batch = Batch::new(records);
        batch.redelivered = redelivered;
        batch.checkpoints = next
            .iter()
            .map(|(p, o)| Checkpoint {
                source: self.id.clone(),
                key: format!("{}/{p}", self.topic),
                position: u64::try_from(*o).unwrap_or(0),
                finished: false,
            })
            .collect();
        {
            let mut state = self.progress.lock();
            for p in next.keys() {
                *state.in_flight.entry(*p).or_default() += 1;
            }
        }
        for (p, o) in &next {
            let known = self.indexed.entry(*p).or_default();
            *known = (*known).max(*o);
        }
        let progress = self.progress.clone();
        let consumer = Arc::downgrade(&self.consumer);
        let (topic, metrics) = (self.topic.clone(), self.metrics.clone());
        batch.finalizers = Finalizers::with_callback(move |status| {
            let mut state = progress.lock();
            for (p, o) in &next {
                if let Some(n) = state.in_flight.get_mut(p) {
                    *n = n.saturating_sub(1);
                }
                if status == BatchStatus::Delivered {
                    let durable = state.durable.entry(*p).or_default();
                    if *o > *durable {
                        *durable = *o;
                        state.uncommitted.insert(*p, *o);
                    }
                }
            }
            // Committed as soon as it is durable: whoever owns the partitions after a
            // crash starts after it (what is left is the moment between the two).
            let mut list = TopicPartitionList::new();
            for (p, o) in state.uncommitted.drain() {
                let _ = list.add_partition_offset(&topic, p, Offset::Offset(o));
            }
            drop(state);
            progress.changed.notify_all();
            if list.count() > 0
                && let Some(consumer) = consumer.upgrade()
            {
                match consumer.commit(&list, CommitMode::Async) {
                    Ok(()) => {
                        metrics.commits.fetch_add(1, Relaxed);
                    }
                    Err(_) => {
                        // Tried again by the consumer's own round.
                        let mut state = progress.lock();
                        for e in list.elements() {
                            if let Offset::Offset(o) = e.offset() {
                                state.uncommitted.insert(e.partition(), o);
                            }
                        }
                    }
                }
            }
        });
        Some(batch)
    }

    fn commit(&self, mode: CommitMode) {
        let uncommitted: Vec<(i32, i64)> = self.progress.lock().uncommitted.drain().collect();
        if uncommitted.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for (p, o) in &uncommitted {
            let _ = list.add_partition_offset(&self.topic, *p, Offset::Offset(*o));
        }
        match self.consumer.commit(&list, mode) {
            Ok(()) => {
                self.metrics.commits.fetch_add(1, Relaxed);
            }
            Err(e) => {
                self.metrics.commit_failures.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "cannot commit offsets; trying again with the next");
                let mut state = self.progress.lock();
                for (p, o) in uncommitted {
                    let slot = state.uncommitted.entry(p).or_insert(o);
                    *slot = (*slot).max(o);
                }
            }
        }
    }

    /// Appends the records of `message` to `out`, and what is not a record to `malformed`.
    fn records_of(
        &mut self,
        message: &BorrowedMessage<'_>,
        out: &mut Vec<Record>,
        malformed: &mut Vec<Malformed>,
    ) {
        let Some(payload) = message.payload() else {
            malformed.push(Malformed::empty(Vec::new()));
            return;
        };
        match self.format {
            MessageFormat::Record => decode_records(payload, &mut self.resources, out, malformed),
            MessageFormat::Raw => {
                out.push(raw_record(
                    &self.topic,
                    message.partition(),
                    message.offset(),
                    message.timestamp().to_millis(),
                    payload,
                ));
            }
        }
    }
}

/// A message, or a line of a JSON-lines message, that is not a record.
#[derive(Debug)]
struct Malformed {
    /// Its line in the message (1 for the first), when the message had several; `None`
    /// for the whole message.
    line: Option<usize>,
    /// Its bytes as read.
    bytes: Vec<u8>,
    /// Why it is not a record.
    reason: String,
}

impl Malformed {
    /// A message with no record in it: no payload, or only blank lines (`bytes`).
    fn empty(bytes: Vec<u8>) -> Self {
        Malformed {
            line: None,
            bytes,
            reason: "an empty message".into(),
        }
    }
}

/// Appends the records of a message in the record format (one record, JSON lines, or the
/// binary form) to `out`, and the lines that are not records to `malformed` (an empty
/// message is one, and so is a damaged message in the binary form, whole).
fn decode_records(
    payload: &[u8],
    shared: &mut SharedResources,
    out: &mut Vec<Record>,
    malformed: &mut Vec<Malformed>,
) {
    if model::is_binary(payload) {
        match model::read_binary(payload, shared, out) {
            Ok(()) if payload.len() > model::BINARY_MAGIC.len() => {}
            Ok(()) => malformed.push(Malformed::empty(payload.to_vec())),
            Err(e) => malformed.push(Malformed {
                line: None,
                bytes: payload.to_vec(),
                reason: format!("not a record: {e}"),
            }),
        }
        return;
    }
    let (before, bad_before) = (out.len(), malformed.len());
    let mut lines_seen = 0;
    // A record's JSON form holds no raw newline.
    for (i, line) in lines(payload).enumerate() {
        lines_seen = i + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let reason = match std::str::from_utf8(line) {
            Ok(text) => match Record::from_json_sharing(text, shared) {
                Ok(record) => {
                    out.push(record);
                    continue;
                }
                Err(e) => format!("not a record: {e}"),
            },
            Err(e) => format!("not UTF-8: {e}"),
        };
        malformed.push(Malformed {
            line: Some(i + 1),
            bytes: line.to_vec(),
            reason,
        });
    }
    if lines_seen == 1
        && let Some(only) = malformed.get_mut(bad_before)
    {
        // The whole message was the one line.
        only.line = None;
    }
    if malformed.len() == bad_before && out.len() == before {
        malformed.push(Malformed::empty(payload.to_vec()));
    }
}

/// The headers of a dead letter, in order: the topic, partition and offset of the message
/// it came from, its line in that message (absent for a whole message), and why it is not
/// a record.
pub const DEAD_LETTER_HEADERS: [&str; 5] = [
    "infersight-source-topic",
    "infersight-source-partition",
    "infersight-source-offset",
    "infersight-source-line",
    "infersight-error",
];

/// How long the dead-letter topic's broker has to acknowledge a dead letter.
const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(30);

/// Counts what the dead-letter producer's broker did not take; its client-wide errors
/// count with the consumer's.
struct DeadLetterContext {
    failed: AtomicU64,
    metrics: Arc<KafkaSourceMetrics>,
    errors: ClientErrors,
}

impl ClientContext for DeadLetterContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.errors.report(self.metrics.errors(), &error, reason);
    }
}

impl ProducerContext for DeadLetterContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, message)) = result {
            self.failed.fetch_add(1, Relaxed);
            // Where the malformed message came from, from the dead letter's own headers.
            let origin: Vec<String> = message
                .headers()
                .map(|h| {
                    h.iter()
                        .filter(|h| h.key != DEAD_LETTER_HEADERS[4])
                        .map(|h| {
                            let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                            format!("{}={value}", h.key)
                        })
                        .collect()
                })
                .unwrap_or_default();
            tracing::error!(
                error = %e, dead_letter_topic = message.topic(), origin = %origin.join(" "),
                "the dead-letter topic did not take a malformed message; it is skipped"
            );
        }
    }
}

/// The producer of a source's dead letters (idempotent, `acks=all`, as the Kafka sink).
struct DeadLetters {
    producer: BaseProducer<DeadLetterContext>,
    topic: String,
}

impl DeadLetters {
    fn new(
        options: &KafkaOptions,
        source_id: &str,
        topic: &str,
        metrics: Arc<KafkaSourceMetrics>,
    ) -> Result<Self, KafkaError> {
        let producer = client_config(options, &format!("infersight-{source_id}-dead-letters"))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                DEAD_LETTER_TIMEOUT.as_millis().to_string(),
            )
            .set("linger.ms", "0")
            .create_with_context(DeadLetterContext {
                failed: AtomicU64::new(0),
                metrics,
                errors: ClientErrors::new("dead-letter producer"),
            })
            .map_err(|e| KafkaError::client(options, e))?;
        Ok(DeadLetters {
            producer,
            topic: topic.to_string(),
        })
    }

    /// Says at the start when the brokers do not have the dead-letter topic: every dead
    /// letter would then wait [`DEAD_LETTER_TIMEOUT`] and fail.
    fn check_topic(&self) {
        let topic = &self.topic;
        match super::topic_error(self.producer.client(), topic, Duration::from_secs(10)) {
            Ok(None) => {}
            Ok(Some(error)) => {
                tracing::error!(
                    dead_letter_topic = %topic, error = ?error,
                    "the brokers do not have the dead-letter topic; create it, or each malformed message waits {} s and is only counted (dead_letter_failures)",
                    DEAD_LETTER_TIMEOUT.as_secs()
                );
            }
            Err(e) => {
                tracing::warn!(dead_letter_topic = %topic, error = %e, "cannot check the dead-letter topic");
            }
        }
    }

    /// Queues `bad`, from `message` of `source_topic`, keyed as `message` was; false when
    /// the producer refused it (too large for the broker, say: logged).
    fn queue(&self, source_topic: &str, message: &BorrowedMessage<'_>, bad: Malformed) -> bool {
        let (partition, offset) = (
            message.partition().to_string(),
            message.offset().to_string(),
        );
        let line = bad.line.map(|l| l.to_string());
        let values = [
            Some(source_topic),
            Some(partition.as_str()),
            Some(offset.as_str()),
            line.as_deref(),
            Some(bad.reason.as_str()),
        ];
        let mut headers = OwnedHeaders::new_with_capacity(DEAD_LETTER_HEADERS.len());
        for (key, value) in DEAD_LETTER_HEADERS.iter().zip(values) {
            if let Some(value) = value {
                headers = headers.insert(Header {
                    key,
                    value: Some(value),
                });
            }
        }
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic)
            .payload(&bad.bytes)
            .headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return true,
                // Its queue is full (only with a broker that has not answered for long):
                // let it deliver, then try again.
                Err((KafkaClientError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    self.producer.poll(Duration::from_millis(100));
                    record = back;
                }
                Err((e, _)) => {
                    tracing::error!(
                        error = %e, dead_letter_topic = %self.topic, topic = source_topic,
                        partition = message.partition(), offset = message.offset(),
                        "the dead-letter topic cannot take a malformed message; it is skipped"
                    );
                    return false;
                }
            }
        }
    }

    /// Waits until the broker took the `queued` dead letters, or gave up on them.
    fn deliver(&self, queued: u64, metrics: &KafkaSourceMetrics) {
        let failed_before = self.producer.context().failed.load(Relaxed);
        if let Err(e) = self
            .producer
            .flush(DEAD_LETTER_TIMEOUT + Duration::from_secs(5))
        {
            tracing::error!(error = %e, topic = %self.topic, "dead letters not delivered in time");
        }
        let failed = (self.producer.context().failed.load(Relaxed) - failed_before)
            .max(self.producer.in_flight_count().max(0) as u64)
            .min(queued);
        metrics.dead_letters.fetch_add(queued - failed, Relaxed);
        metrics.dead_letter_failures.fetch_add(failed, Relaxed);
    }
}

/// The lines of `payload`, split at `\n` (with memchr: a byte-at-a-time split was a fifth
/// of the source thread's time).
fn lines(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut from = 0;
    memchr::memchr_iter(b'\n', payload)
        .chain([payload.len()])
        .map(move |end| {
            let line = &payload[from..end];
            from = end + 1;
            line
        })
}

fn is_redelivered(message: &BorrowedMessage<'_>) -> bool {
    message
        .headers()
        .is_some_and(|h| h.iter().any(|h| h.key == REDELIVERED_HEADER))
}

/// A record of a line another shipper published.
fn raw_record(
    topic: &str,
    partition: i32,
    offset: i64,
    millis: Option<i64>,
    payload: &[u8],
) -> Record {
    let text = String::from_utf8_lossy(payload);
    let text = text.trim_end_matches(['\n', '\r']);
    let mut resource = Attributes::new();
    let mut body = text.to_string();
    let mut stream = None;
    let mut shipped_at = None;
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(line) = ["log", "message", "msg"]
            .iter()
            .find_map(|k| o.get(*k).and_then(|v| v.as_str()))
        {
            body = line.trim_end_matches('\n').to_string();
        }
        if let Some(k) = o.get("kubernetes").and_then(|k| k.as_object()) {
            resource = shipper_resource(k);
        }
        shipped_at = ["@timestamp", "timestamp", "time"]
            .iter()
            .find_map(|key| o.get(*key).and_then(shipper_time));
        stream = match o.get("stream").and_then(|s| s.as_str()) {
            Some("stdout") => Some(Stream::Stdout),
            Some("stderr") => Some(Stream::Stderr),
            _ => None,
        };
    }
    // The shipper's own time of the line, else the message's (when it was published,
    // later than the line by the shipper's delay, and by much more for a backfill).
    let at = shipped_at
        .or_else(|| {
            millis
                .filter(|m| *m > 0)
                .map(|m| Timestamp::from_unix_nanos(m.saturating_mul(1_000_000)))
        })
        .unwrap_or_else(Timestamp::now);
    let mut record = Record::log(
        RecordId::from_source(
            format!("kafka/{topic}/{partition}").as_bytes(),
            u64::try_from(offset).unwrap_or(0),
        ),
        at,
        Timestamp::now(),
        Arc::new(resource),
        body,
    );
    record.stream = stream;
    record
}

/// The pod, namespace, container and node in another shipper's Kubernetes metadata:
/// Fluent Bit's (`pod_name`, `namespace_name`, `container_name`, `pod_id`, `host`),
/// Vector's (`pod_namespace`, `pod_uid`, `pod_node_name`) and Filebeat's nested form
/// (`pod.name`, `namespace`, `container.name`, `pod.uid`, `node.name`).
fn shipper_resource(k: &serde_json::Map<String, serde_json::Value>) -> Attributes {
    let text = |paths: &[&[&str]]| {
        paths.iter().find_map(|path| {
            let (last, parents) = path.split_last()?;
            let mut object = k;
            for parent in parents {
                object = object.get(*parent)?.as_object()?;
            }
            object.get(*last)?.as_str().map(str::to_string)
        })
    };
    let fields: [(&str, &[&[&str]]); 5] = [
        (
            names::K8S_NAMESPACE_NAME,
            &[&["namespace_name"], &["pod_namespace"], &["namespace"]],
        ),
        (names::K8S_POD_NAME, &[&["pod_name"], &["pod", "name"]]),
        (
            names::K8S_POD_UID,
            &[&["pod_id"], &["pod_uid"], &["pod", "uid"]],
        ),
        (
            names::K8S_CONTAINER_NAME,
            &[&["container_name"], &["container", "name"]],
        ),
        (
            names::K8S_NODE_NAME,
            &[&["host"], &["pod_node_name"], &["node", "name"]],
        ),
    ];
    let mut resource = Attributes::new();
    for (name, paths) in fields {
        if let Some(v) = text(paths) {
            resource.insert(name, v);
        }
    }
    resource
}

/// A shipper's time of a line: RFC 3339 text (Vector, Filebeat), or seconds since the
/// epoch as a number (Fluent Bit's `double` format; milli-, micro- and nanoseconds told
/// apart by size).
fn shipper_time(value: &serde_json::Value) -> Option<Timestamp> {
    match value {
        serde_json::Value::String(text) => Timestamp::parse_rfc3339(text).ok(),
        serde_json::Value::Number(n) => {
            let v = n.as_f64().filter(|v| v.is_finite() && *v > 0.0)?;
            let scale: i64 = match v {
                x if x < 1e11 => 1_000_000_000,
                x if x < 1e14 => 1_000_000,
                x if x < 1e17 => 1_000,
                _ => 1,
            };
            // Whole units and the fraction apart: a double holds ~16 digits, fewer than
            // nanoseconds since the epoch have.
            let whole = v.trunc();
            let fraction = ((v - whole) * scale as f64).round() as i64;
            (whole < (i64::MAX / scale) as f64)
                .then(|| Timestamp::from_unix_nanos((whole as i64) * scale + fraction))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pod: &str, n: u64) -> Record {
        let resource: Attributes = [(names::K8S_POD_NAME, pod)].into_iter().collect();
        Record::log(
            RecordId::from_source(pod.as_bytes(), n),
            Timestamp::from_unix_nanos(1_764_000_000_000_000_000 + n as i64),
            Timestamp::from_unix_nanos(1_764_000_000_000_000_000 + n as i64),
            Arc::new(resource),
            format!("line {n}\nwith a newline in it"),
        )
    }

    /// The records of `payload`, and its malformed parts.
    fn decode(payload: &[u8], shared: &mut SharedResources) -> (Vec<Record>, Vec<Malformed>) {
        let (mut out, mut bad) = (Vec::new(), Vec::new());
        decode_records(payload, shared, &mut out, &mut bad);
        (out, bad)
    }

    #[test]
    fn a_message_holds_one_record_or_json_lines_and_bad_lines_are_kept_alone() {
        let (a, b) = (record("vllm-0", 1), record("vllm-0", 2));
        let mut shared = SharedResources::default();
        let (mut out, bad) = decode(a.to_json().as_bytes(), &mut shared);
        assert!(bad.is_empty());
        let lines = format!(
            "{}\n{}\n{{\"not\":\"a record\"}}\n",
            a.to_json(),
            b.to_json()
        );
        let (more, bad) = decode(lines.as_bytes(), &mut shared);
        out.extend(more);
        assert_eq!(bad.len(), 1, "the third line: {bad:?}");
        assert_eq!(bad[0].line, Some(3));
        assert_eq!(bad[0].bytes, br#"{"not":"a record"}"#, "as read");
        let why = &bad[0].reason;
        assert!(why.starts_with("not a record: "), "{why}");
        assert_eq!(
            out,
            vec![a.clone(), a, b],
            "in order, bodies' newlines intact"
        );
        assert!(
            Arc::ptr_eq(&out[0].resource, &out[2].resource),
            "one pod, one resource"
        );
        for (payload, reason) in [
            (&b""[..], "an empty message"),
            (b"\n", "an empty message"),
            (b"\xff\xfe", "not UTF-8"),
            (b"{\"id\":", "not a record"),
        ] {
            let (none, bad) = decode(payload, &mut shared);
            assert!(none.is_empty());
            assert_eq!(bad.len(), 1, "{payload:?}");
            let Malformed {
                line,
                bytes,
                reason: why,
            } = &bad[0];
            assert_eq!(*line, None, "the whole message: {payload:?}");
            assert_eq!(bytes, payload);
            assert!(why.starts_with(reason), "{payload:?}: {why}");
        }
    }

    #[test]
    fn a_message_in_the_binary_form_is_read_whole_or_is_malformed_whole() {
        let (a, b) = (record("vllm-0", 1), record("vllm-1", 2));
        let mut message = model::BinaryMessage::new();
        for r in [&a, &b, &a] {
            message.push(r, usize::MAX);
        }
        let payload = message.into_bytes();
        let mut shared = SharedResources::default();
        let (out, bad) = decode(&payload, &mut shared);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(out, vec![a.clone(), b, a]);
        assert!(Arc::ptr_eq(&out[0].resource, &out[2].resource));
        // Cut short: no record of it, the whole message kept as read, and why.
        let cut = &payload[..payload.len() - 3];
        let (none, bad) = decode(cut, &mut shared);
        assert!(none.is_empty());
        assert_eq!(bad.len(), 1);
        assert_eq!((bad[0].line, &bad[0].bytes[..]), (None, cut));
        assert!(
            bad[0].reason.starts_with("not a record: record 3, byte "),
            "{}",
            bad[0].reason
        );
        assert!(bad[0].reason.ends_with("cut short"), "{}", bad[0].reason);
        let (none, bad) = decode(&model::BINARY_MAGIC, &mut shared);
        assert!(none.is_empty());
        assert_eq!(bad[0].reason, "an empty message");
    }

    #[test]
    fn the_lag_sums_the_owned_partitions_librdkafka_knows() {
        use rdkafka::statistics::{Partition, Topic};
        let partition = |partition, desired, consumer_lag| Partition {
            partition,
            desired,
            consumer_lag,
            ..Partition::default()
        };
        let mut statistics = Statistics::default();
        assert_eq!(unread(&statistics, "records"), None);
        let partitions = [
            partition(0, true, 120),
            partition(1, true, 30),
            // Not known yet (no fetch answered), not owned, librdkafka's internal one.
            partition(2, true, -1),
            partition(3, false, 500),
            partition(-1, true, 7),
        ];
        statistics.topics.insert(
            "records".into(),
            Topic {
                partitions: partitions.into_iter().map(|p| (p.partition, p)).collect(),
                ..Topic::default()
            },
        );
        assert_eq!(unread(&statistics, "records"), Some(150));
        assert_eq!(unread(&statistics, "other"), None);
    }

    #[test]
    fn lines_of_other_shippers_keep_their_pod_and_line() {
        let fluent_bit = br#"{"log":"INFO 01-17 03:11:25 Received request cmpl-1\n","stream":"stdout","kubernetes":{"namespace_name":"llm","pod_name":"vllm-0","container_name":"vllm","pod_id":"u-1"}}"#;
        let r = raw_record("logs", 3, 42, Some(1_764_000_000_000), fluent_bit);
        assert_eq!(r.body, "INFO 01-17 03:11:25 Received request cmpl-1");
        assert_eq!(r.resource.get_str(names::K8S_POD_NAME), Some("vllm-0"));
        assert_eq!(r.resource.get_str(names::K8S_POD_UID), Some("u-1"));
        assert_eq!(r.stream, Some(Stream::Stdout));
        assert_eq!(r.timestamp.unix_nanos(), 1_764_000_000_000_000_000);
        // Vector's kubernetes_logs and Filebeat's nested metadata, with their own times.
        let vector = br#"{"message":"INFO Received request cmpl-2","stream":"stderr","timestamp":"2025-11-24T16:00:00.5Z","kubernetes":{"pod_namespace":"llm","pod_name":"vllm-1","pod_uid":"u-2","container_name":"vllm","pod_node_name":"gpu-7"}}"#;
        let v = raw_record("logs", 3, 44, Some(1_764_000_000_000), vector);
        assert_eq!(v.body, "INFO Received request cmpl-2");
        assert_eq!(v.stream, Some(Stream::Stderr));
        assert_eq!(v.timestamp.to_rfc3339(), "2025-11-24T16:00:00.500000000Z");
        let filebeat = br#"{"@timestamp":"2025-11-24T16:00:01Z","message":"line","log":{"offset":7},"kubernetes":{"namespace":"llm","pod":{"name":"vllm-2","uid":"u-3"},"container":{"name":"vllm"},"node":{"name":"gpu-8"}}}"#;
        let f = raw_record("logs", 3, 45, None, filebeat);
        assert_eq!(f.body, "line");
        assert_eq!(f.timestamp.to_rfc3339(), "2025-11-24T16:00:01.000000000Z");
        for (r, pod, uid, node) in [
            (&v, "vllm-1", "u-2", "gpu-7"),
            (&f, "vllm-2", "u-3", "gpu-8"),
        ] {
            let get = |name| r.resource.get_str(name);
            assert_eq!(get(names::K8S_NAMESPACE_NAME), Some("llm"));
            assert_eq!(get(names::K8S_POD_NAME), Some(pod));
            assert_eq!(get(names::K8S_POD_UID), Some(uid));
            assert_eq!(get(names::K8S_CONTAINER_NAME), Some("vllm"));
            assert_eq!(get(names::K8S_NODE_NAME), Some(node));
        }
        // Fluent Bit's epoch seconds; a time that is not one leaves the message's.
        let epoch = br#"{"@timestamp":1764000001.25,"log":"x"}"#;
        let e = raw_record("logs", 3, 46, Some(1_764_000_000_000), epoch);
        assert_eq!(e.timestamp.unix_nanos(), 1_764_000_001_250_000_000);
        let odd = br#"{"time":"yesterday","log":"x"}"#;
        let o = raw_record("logs", 3, 47, Some(1_764_000_000_000), odd);
        assert_eq!(o.timestamp.unix_nanos(), 1_764_000_000_000_000_000);
        let plain = raw_record("logs", 3, 43, None, b"just a line\n");
        assert_eq!(plain.body, "just a line");
        assert_ne!(plain.id, r.id, "one id per offset");
        assert_eq!(
            raw_record("logs", 3, 43, None, b"again").id,
            plain.id,
            "a replay names the message the same"
        );
    }
}
