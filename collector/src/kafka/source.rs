//! Consuming a topic in a consumer group.
//!
//! Runs on a thread of its own (librdkafka's consumer and its rebalance callbacks block).
//! Offsets are committed to the group only after every sink made a batch durable; the
//! index also keeps them (`topic/partition` checkpoints in its commit), and a message
//! below what the index already holds is skipped, so neither a crash nor a rebalance
//! indexes anything twice. Before partitions are taken away, the batches in flight from
//! them are waited for and their offsets committed, so the next owner starts after them.

use super::sink::REDELIVERED_HEADER;
use super::{KafkaError, KafkaOptions, client_config};
use crate::Shutdown;
use model::{
    Attributes, Batch, BatchStatus, Checkpoint, CheckpointSet, Finalizers, Record, RecordId,
    SharedResources, Stream, Timestamp, names,
};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the messages of the topic are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MessageFormat {
    /// Infersight's records in their JSON form (what the Kafka sink writes): one a message,
    /// or several, one a line.
    #[default]
    Record,
    /// Log lines another shipper wrote: plain text, or JSON with the line in `log`,
    /// `message` or `msg` and the pod under `kubernetes` (Fluent Bit's and Vector's forms).
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
    /// Client-wide errors librdkafka reported (a broker unreachable, all brokers down).
    pub client_errors: AtomicU64,
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
}

impl ClientContext for SourceContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        super::report_client_error(&self.metrics.client_errors, "consumer", &error, reason);
    }
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
}

/// Messages gathered into one batch at most.
const BATCH_MESSAGES: usize = 2000;
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
            .create_with_context(context)
            .map_err(|e| KafkaError::Client {
                brokers: options.brokers.clone(),
                reason: e.to_string(),
            })?;
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
        })
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
        while seen < BATCH_MESSAGES {
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
                    tracing::warn!(error = %e, "Kafka consumer error; it reconnects by itself");
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
            let malformed = self.records_of(&message, &mut records);
            if malformed > 0 {
                self.metrics.malformed.fetch_add(malformed, Relaxed);
                tracing::warn!(
                    topic = %self.topic, partition, offset, malformed,
                    "a message that is not a record, or has lines that are not; skipped"
                );
            }
            self.metrics
                .records
                .fetch_add((records.len() - first) as u64, Relaxed);
            if is_redelivered(&message) {
                redelivered.extend(records[first..].iter().map(|r| r.id));
            }
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

    /// Appends the records of `message` to `out`; returns how many of its records (or
    /// lines) were malformed.
    fn records_of(&mut self, message: &BorrowedMessage<'_>, out: &mut Vec<Record>) -> u64 {
        let Some(payload) = message.payload() else {
            return 1;
        };
        match self.format {
            MessageFormat::Record => decode_records(payload, &mut self.resources, out),
            MessageFormat::Raw => {
                out.push(raw_record(
                    &self.topic,
                    message.partition(),
                    message.offset(),
                    message.timestamp().to_millis(),
                    payload,
                ));
                0
            }
        }
    }
}

/// Appends the records of a message in the record format (one record, or JSON lines) to
/// `out`; returns how many lines were not records (an empty message counts as one).
fn decode_records(payload: &[u8], shared: &mut SharedResources, out: &mut Vec<Record>) -> u64 {
    let (mut malformed, before) = (0, out.len());
    // A record's JSON form holds no raw newline.
    for line in lines(payload) {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text = std::str::from_utf8(line).ok();
        match text.map(|t| Record::from_json_sharing(t, shared)) {
            Some(Ok(record)) => out.push(record),
            _ => malformed += 1,
        }
    }
    if malformed == 0 && out.len() == before {
        malformed = 1;
    }
    malformed
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
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(line) = ["log", "message", "msg"]
            .iter()
            .find_map(|k| o.get(*k).and_then(|v| v.as_str()))
        {
            body = line.trim_end_matches('\n').to_string();
        }
        if let Some(k) = o.get("kubernetes").and_then(|k| k.as_object()) {
            let text = |keys: &[&str]| {
                keys.iter()
                    .find_map(|key| k.get(*key).and_then(|v| v.as_str()))
                    .map(str::to_string)
            };
            for (name, keys) in [
                (
                    names::K8S_NAMESPACE_NAME,
                    &["namespace_name", "pod_namespace"][..],
                ),
                (names::K8S_POD_NAME, &["pod_name"][..]),
                (names::K8S_POD_UID, &["pod_id", "pod_uid"][..]),
                (names::K8S_CONTAINER_NAME, &["container_name"][..]),
            ] {
                if let Some(v) = text(keys) {
                    resource.insert(name, v);
                }
            }
        }
        stream = match o.get("stream").and_then(|s| s.as_str()) {
            Some("stdout") => Some(Stream::Stdout),
            Some("stderr") => Some(Stream::Stderr),
            _ => None,
        };
    }
    let at = millis
        .filter(|m| *m > 0)
        .map(|m| Timestamp::from_unix_nanos(m.saturating_mul(1_000_000)))
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

    #[test]
    fn a_message_holds_one_record_or_json_lines_and_bad_lines_are_counted_alone() {
        let (a, b) = (record("vllm-0", 1), record("vllm-0", 2));
        let (mut shared, mut out) = (SharedResources::default(), Vec::new());
        assert_eq!(
            decode_records(a.to_json().as_bytes(), &mut shared, &mut out),
            0
        );
        let lines = format!(
            "{}\n{}\n{{\"not\":\"a record\"}}\n",
            a.to_json(),
            b.to_json()
        );
        let malformed = decode_records(lines.as_bytes(), &mut shared, &mut out);
        assert_eq!(malformed, 1, "the third line");
        assert_eq!(
            out,
            vec![a.clone(), a, b],
            "in order, bodies' newlines intact"
        );
        assert!(
            Arc::ptr_eq(&out[0].resource, &out[2].resource),
            "one pod, one resource"
        );
        for bad in [&b""[..], b"\n", b"\xff\xfe", b"{\"id\":"] {
            let mut none = Vec::new();
            assert_eq!(decode_records(bad, &mut shared, &mut none), 1, "{bad:?}");
            assert!(none.is_empty());
        }
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
