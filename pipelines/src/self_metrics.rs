//! Infersight's own counters on `/metrics`: what each source read, merged, cut, sent and
//! got acknowledged. This is the one place that knows both the sources' counters and the
//! API's exposition types.

use api::{MetricFamily, MetricKind, MetricsBackend};
use collector::files::FileSourceMetrics;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// The `files` sources' counters, by source id.
pub struct PipelineMetrics {
    files: Vec<(String, Arc<FileSourceMetrics>)>,
}

impl PipelineMetrics {
    /// Exposes the counters of these `files` sources.
    pub fn new(files: Vec<(String, Arc<FileSourceMetrics>)>) -> Self {
        PipelineMetrics { files }
    }
}

type Field = fn(&FileSourceMetrics) -> &AtomicU64;

/// `(name, help, kind, field)` of every `files` source metric.
const FILES: &[(&str, &str, MetricKind, Field)] = &[
    (
        "infersight_files_watched",
        "Log files being tailed.",
        MetricKind::Gauge,
        |m| &m.files_watched,
    ),
    (
        "infersight_files_bytes_read_total",
        "Bytes read from log files.",
        MetricKind::Counter,
        |m| &m.bytes_read,
    ),
    (
        "infersight_files_lines_read_total",
        "Physical lines read from log files.",
        MetricKind::Counter,
        |m| &m.lines_read,
    ),
    (
        "infersight_files_partial_chunks_total",
        "Partial (P) chunks merged into longer lines.",
        MetricKind::Counter,
        |m| &m.partial_chunks,
    ),
    (
        "infersight_files_partial_flushed_total",
        "Lines emitted without their end (writer died mid-line, or a finished file ended inside a line).",
        MetricKind::Counter,
        |m| &m.partial_flushed,
    ),
    (
        "infersight_files_truncated_lines_total",
        "Lines cut at max_line_bytes.",
        MetricKind::Counter,
        |m| &m.truncated_lines,
    ),
    (
        "infersight_files_decode_errors_total",
        "Lines that were neither CRI nor docker json-file (kept raw).",
        MetricKind::Counter,
        |m| &m.decode_errors,
    ),
    (
        "infersight_files_read_errors_total",
        "Failed reads or directory scans (retried).",
        MetricKind::Counter,
        |m| &m.read_errors,
    ),
    (
        "infersight_files_multiline_joined_total",
        "Lines joined into a multi-line record beyond its first line.",
        MetricKind::Counter,
        |m| &m.multiline_joined,
    ),
    (
        "infersight_files_records_sent_total",
        "Records sent downstream.",
        MetricKind::Counter,
        |m| &m.records_sent,
    ),
    (
        "infersight_files_records_delivered_total",
        "Records every sink made durable; sent minus delivered is the checkpoint lag.",
        MetricKind::Counter,
        |m| &m.records_delivered,
    ),
    (
        "infersight_files_batches_not_delivered_total",
        "Batches dropped or rejected downstream (read again after a restart).",
        MetricKind::Counter,
        |m| &m.batches_not_delivered,
    ),
    (
        "infersight_files_recovered_from_gzip_total",
        "Files rotated and compressed while unread, resumed from their .gz.",
        MetricKind::Counter,
        |m| &m.files_recovered_from_gzip,
    ),
    (
        "infersight_files_lost_total",
        "Files read in part whose rest was deleted before it could be read (lines lost; should stay 0).",
        MetricKind::Counter,
        |m| &m.files_lost,
    ),
];

impl MetricsBackend for PipelineMetrics {
    fn families(&self) -> Vec<MetricFamily> {
        FILES
            .iter()
            .map(|(name, help, kind, field)| MetricFamily {
                name,
                help,
                kind: *kind,
                samples: self
                    .files
                    .iter()
                    .map(|(id, m)| (vec![("source", id.clone())], field(m).load(Relaxed) as f64))
                    .collect(),
            })
            .collect()
    }
}
