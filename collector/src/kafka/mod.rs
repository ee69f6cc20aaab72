//! Kafka between node agents and aggregators (DESIGN.md §1), with librdkafka (bundled, 2.x):
//! the [`KafkaSink`] publishes records (idempotent, `acks=all`, keyed by pod so one
//! container's records stay in order) and acknowledges a batch only once the broker has;
//! the [`KafkaSource`] consumes a topic in a consumer group and commits an offset only once
//! every sink has made its records durable, so a crash replays, and the index's stored
//! offsets and record ids keep the replay from doubling anything.
//!
//! The sink lives here with the source rather than in a sink crate of its own: both are
//! Kafka I/O and share the client settings and the message form.

mod client_errors;
mod sink;
mod source;

pub use client_errors::LastClientError;
pub use sink::{KafkaSink, KafkaSinkMetrics, KafkaSinkOptions, MessageEncoding, MessageKey};
pub use source::{DEAD_LETTER_HEADERS, KafkaSource, KafkaSourceMetrics, MessageFormat};

use model::{Record, names};
use rdkafka::ClientConfig;

/// Where the brokers are and which topic.
#[derive(Clone, Debug)]
pub struct KafkaOptions {
    /// `HOST:PORT,…`.
    pub brokers: String,
    /// The topic.
    pub topic: String,
}

/// Why Kafka could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// librdkafka refused the settings (a malformed broker list, say).
    #[error("cannot set up the Kafka client for {brokers}: {reason}")]
    Client {
        /// The brokers given.
        brokers: String,
        /// librdkafka's words.
        reason: String,
    },
}

impl KafkaError {
    /// librdkafka refused to make a client for `options`' brokers.
    fn client(options: &KafkaOptions, reason: rdkafka::error::KafkaError) -> Self {
        KafkaError::Client {
            brokers: options.brokers.clone(),
            reason: reason.to_string(),
        }
    }
}

/// Settings both ends share.
fn client_config(options: &KafkaOptions, client_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &options.brokers)
        .set("client.id", client_id)
        // A broker that went away is retried for as long as it takes; the sources wait
        // (backpressure) meanwhile.
        .set("reconnect.backoff.max.ms", "2000");
    // librdkafka's own tracing (`cgrp,topic,fetch`, …) for looking into a broker's
    // behaviour; it logs through ours.
    if let Ok(contexts) = std::env::var("INFERSIGHT_KAFKA_DEBUG") {
        c.set("debug", contexts);
    }
    c
}

/// What the brokers say of `topic`: `Ok(None)` when they have it, `Ok(Some(code))` with
/// their answer when they do not (`UnknownTopicOrPartition`), `Err` when they could not be
/// asked within `timeout`. Blocks.
fn topic_error<C: rdkafka::ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    timeout: std::time::Duration,
) -> Result<Option<rdkafka::error::RDKafkaErrorCode>, rdkafka::error::KafkaError> {
    let metadata = client.fetch_metadata(Some(topic), timeout)?;
    Ok(metadata
        .topics()
        .first()
        .and_then(|t| t.error())
        .map(rdkafka::error::RDKafkaErrorCode::from))
}

/// The key of a record's message under `key`; a record without the field the key names (a
/// node's event has no pod) goes by its own id.
pub fn message_key(record: &Record, key: MessageKey) -> String {
    let r = &record.resource;
    let named = match key {
        MessageKey::Pod => {
            if let Some(uid) = r.get_str(names::K8S_POD_UID) {
                return uid.to_string();
            }
            match (
                r.get_str(names::K8S_NAMESPACE_NAME),
                r.get_str(names::K8S_POD_NAME),
            ) {
                (Some(ns), Some(pod)) => return format!("{ns}/{pod}"),
                _ => None,
            }
        }
        MessageKey::Namespace => r.get_str(names::K8S_NAMESPACE_NAME),
        MessageKey::Node => r.get_str(names::K8S_NODE_NAME),
    };
    match named {
        Some(v) => v.to_string(),
        None => record.id.to_string(),
    }
}
