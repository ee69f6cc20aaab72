//! `GET /metrics`: Prometheus text exposition (format 0.0.4) of whatever the pipeline
//! reports through [`MetricsBackend`]. The API renders; it does not know what is counted.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::fmt::Write;

/// Counter (only goes up), gauge (a current value) or histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// A monotonically increasing total (`_total` names).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations in cumulative buckets (`_bucket{le=…}`, `_sum`, `_count` samples).
    Histogram,
}

/// One sample of a family: `name` + `suffix` (`_bucket`, `_sum`, `_count` for histograms,
/// empty otherwise), its labels and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Appended to the family's name.
    pub suffix: &'static str,
    /// Label names and values.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// A sample under the family's own name.
    pub fn new(labels: Vec<(&'static str, String)>, value: f64) -> Self {
        Sample {
            suffix: "",
            labels,
            value,
        }
    }
}

/// One metric family: a name, its help text, and one value per label set.
#[derive(Clone, Debug)]
pub struct MetricFamily {
    /// `infersight_…`, with `_total` for counters.
    pub name: &'static str,
    /// What it counts, in one sentence.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// The samples of every series.
    pub samples: Vec<Sample>,
}

/// What `/metrics` exposes. Implementations read counters; they must not block for long.
pub trait MetricsBackend: Send + Sync + 'static {
    /// The current value of every family.
    fn families(&self) -> Vec<MetricFamily>;
}

/// No metrics (an API without a pipeline behind it).
pub struct NoMetrics;

impl MetricsBackend for NoMetrics {
    fn families(&self) -> Vec<MetricFamily> {
        Vec::new()
    }
}

/// Infersight's own counters and the LLM metrics, in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or wrong token", body = crate::error::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn metrics(State(state): State<crate::ApiState>) -> Response {
    let body = render(&state.metrics.families());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The text exposition of `families`.
pub fn render(families: &[MetricFamily]) -> String {
    let mut out = String::new();
    for f in families {
        let kind = match f.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {} {}", f.name, escape(f.help, false));
        let _ = writeln!(out, "# TYPE {} {kind}", f.name);
        for Sample {
            suffix,
            labels,
            value,
        } in &f.samples
        {
            out.push_str(f.name);
            out.push_str(suffix);
            if !labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape(v, true));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {value}");
        }
    }
    out
}

/// Escapes `\` and newlines (and `"` in label values) as the format requires.
fn escape(s: &str, quote: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format_with_escaped_labels() {
        let text = render(&[MetricFamily {
            name: "infersight_files_lines_read_total",
            help: "Physical lines read.",
            kind: MetricKind::Counter,
            samples: vec![
                Sample::new(vec![("source", "pod_logs".into())], 42.0),
                Sample::new(vec![("source", "odd\"name\\\n".into())], 0.5),
            ],
        }]);
        assert_eq!(
            text,
            "# HELP infersight_files_lines_read_total Physical lines read.\n\
             # TYPE infersight_files_lines_read_total counter\n\
             infersight_files_lines_read_total{source=\"pod_logs\"} 42\n\
             infersight_files_lines_read_total{source=\"odd\\\"name\\\\\\n\"} 0.5\n"
        );
    }
}
