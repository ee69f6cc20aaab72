//! Publishing records to Kafka.

use super::{KafkaError, KafkaOptions, client_config, message_key};
use crate::Shutdown;
use crate::checkpoint_file::CheckpointFile;
use model::{Batch, BatchStatus};
use rdkafka::ClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The header that marks a record an earlier run may already have published: the consumer
/// tells its sinks to replace their copy rather than keep two.
pub(super) const REDELIVERED_HEADER: &str = "infersight-redelivered";

/// What the sink did, for `/metrics`.
#[derive(Debug, Default)]
pub struct KafkaSinkMetrics {
    /// Records the broker acknowledged.
    pub records_acked: AtomicU64,
    /// Bytes of those records' messages.
    pub bytes_acked: AtomicU64,
    /// Batches acknowledged to their sources.
    pub batches_acked: AtomicU64,
    /// Messages the producer could not deliver and that were sent again.
    pub resent: AtomicU64,
    /// Client-wide errors librdkafka reported (a broker unreachable, all brokers down).
    pub client_errors: AtomicU64,
}

/// The producer's context: librdkafka's client-wide errors land in the sink's counters.
struct SinkContext {
    metrics: Arc<KafkaSinkMetrics>,
}

impl ClientContext for SinkContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        super::report_client_error(&self.metrics.client_errors, "producer", &error, reason);
    }
}

/// Publishes every record of a batch and acknowledges the batch once the broker has.
pub struct KafkaSink {
    producer: FutureProducer<SinkContext>,
    topic: String,
    metrics: Arc<KafkaSinkMetrics>,
    checkpoints: Option<CheckpointFile>,
    last_flush: Instant,
}

impl KafkaSink {
    /// A producer for `options`, named `id` to the broker.
    pub fn new(options: &KafkaOptions, id: &str) -> Result<Self, KafkaError> {
        let metrics = Arc::<KafkaSinkMetrics>::default();
        let producer: FutureProducer<SinkContext> =
            client_config(options, &format!("infersight-{id}"))
                // Exactly once into the log: the broker drops a retried message it already has.
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("compression.type", "lz4")
                .set("linger.ms", "5")
                .set("batch.num.messages", "10000")
                .set("queue.buffering.max.messages", "1000000")
                // Never give up on a message: a broker that is away is waited for (the sources
                // slow down), and a message given up and sent again could be doubled.
                .set("message.timeout.ms", "0")
                .create_with_context(SinkContext {
                    metrics: metrics.clone(),
                })
                .map_err(|e| KafkaError::Client {
                    brokers: options.brokers.clone(),
                    reason: e.to_string(),
                })?;
        Ok(KafkaSink {
            producer,
            topic: options.topic.clone(),
            metrics,
            checkpoints: None,
            last_flush: Instant::now(),
        })
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

    /// Publishes `batch`; `true` once the broker acknowledged every record (the batch's
    /// sources hear `Delivered`), `false` if `shutdown` came first (they hear `Dropped` and
    /// send the records again after a restart).
    pub async fn send(&mut self, mut batch: Batch, shutdown: &Shutdown) -> bool {
        let redelivered: HashSet<_> = batch.redelivered.iter().copied().collect();
        let messages: Vec<(String, String, bool)> = batch
            .records
            .iter()
            .map(|r| (message_key(r), r.to_json(), redelivered.contains(&r.id)))
            .collect();
        let mut pending: Vec<usize> = (0..messages.len()).collect();
        while !pending.is_empty() {
            let mut futures = Vec::with_capacity(pending.len());
            for &i in &pending {
                let (key, payload, again) = &messages[i];
                let mut record = FutureRecord::to(&self.topic).key(key).payload(payload);
                if *again {
                    record = record.headers(OwnedHeaders::new().insert(Header {
                        key: REDELIVERED_HEADER,
                        value: Some("1"),
                    }));
                }
                let mut record = record;
                // The producer's queue is full: it drains as the broker acknowledges.
                let future = loop {
                    match self.producer.send_result(record) {
                        Ok(f) => break f,
                        Err((_, back)) => {
                            record = back;
                            if shutdown.is_triggered() {
                                return false;
                            }
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                };
                futures.push((i, future));
            }
            let results = futures_util::future::join_all(
                futures
                    .into_iter()
                    .map(|(i, f)| async move { (i, f.await) }),
            )
            .await;
            pending.clear();
            for (i, result) in results {
                match result {
                    Ok(Ok(_)) => {
                        self.metrics.records_acked.fetch_add(1, Relaxed);
                        self.metrics
                            .bytes_acked
                            .fetch_add(messages[i].1.len() as u64, Relaxed);
                    }
                    Ok(Err((e, _))) => {
                        tracing::warn!(error = %e, "Kafka did not take a message; sending it again");
                        self.metrics.resent.fetch_add(1, Relaxed);
                        pending.push(i);
                    }
                    // The producer went away under it: only at shutdown.
                    Err(_) => return false,
                }
            }
            if !pending.is_empty() {
                if shutdown.is_triggered() {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        if let Some(file) = &mut self.checkpoints {
            file.update(&batch.checkpoints);
            if self.last_flush.elapsed() >= Duration::from_secs(1) {
                self.flush_checkpoints();
            }
        }
        self.metrics.batches_acked.fetch_add(1, Relaxed);
        batch.finalizers.mark(BatchStatus::Delivered);
        true
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
