//! `GET /api/v1/histogram?q=&from=&to=&namespace=&pod=&container=&kind=&interval=`

use crate::params::{Coverage, Filters, blocking};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use model::Timestamp;
use std::time::Duration;

/// Without `from`, a histogram covers this much before `to`.
const DEFAULT_RANGE: Duration = Duration::from_secs(3600);
/// Intervals picked when none is asked for: the smallest giving at most ~120 bars.
const NICE_INTERVALS: [u64; 14] = [
    1, 5, 10, 30, 60, 300, 600, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 604_800,
];
const TARGET_BARS: u64 = 120;

#[derive(Debug, serde::Deserialize)]
pub(crate) struct HistogramParams {
    #[serde(flatten)]
    filters: Filters,
    interval: Option<String>,
}

/// Counts per time bucket.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct HistogramResponse {
    #[schema(value_type = String, format = DateTime)]
    from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    to: Timestamp,
    /// The bucket width, e.g. `1m`.
    interval: String,
    interval_ms: u64,
    /// Matching records in all buckets.
    total: u64,
    /// Non-empty buckets, oldest first.
    buckets: Vec<Bucket>,
    /// Which aggregators answered.
    #[serde(flatten)]
    coverage: Coverage,
}

/// One bar.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Bucket {
    #[schema(value_type = String, format = DateTime)]
    start: Timestamp,
    count: u64,
}

/// Reads `30s`, `5m`, `1h`, `1d` or a number of milliseconds.
pub(crate) fn parse_interval(text: &str) -> Result<Duration, ApiError> {
    let text = text.trim();
    let bad = || {
        ApiError::bad_request(format!(
            "interval: `{text}` is not a duration such as 30s, 5m, 1h, 1d or a number of milliseconds"
        ))
    };
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let ms = match unit {
        "" | "ms" => n,
        "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        "d" => n.saturating_mul(86_400_000),
        _ => return Err(bad()),
    };
    if ms == 0 {
        return Err(ApiError::bad_request("interval: must be above zero"));
    }
    Ok(Duration::from_millis(ms))
}

fn label(interval: Duration) -> String {
    let ms = interval.as_millis() as u64;
    match ms {
        ms if ms % 86_400_000 == 0 => format!("{}d", ms / 86_400_000),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// How many records match per time bucket (default range: the last hour).
#[utoipa::path(get, path = "/api/v1/histogram", tag = "search",
    params(
        Filters,
        ("interval" = Option<String>, Query, pattern = r"^([1-9][0-9]{0,8}(ms|s|m|h|d)?)?$", description = "Bucket width: `30s`, `5m`, `1h`, `1d` or ms; default: ~120 bars over the range."),
    ),
    responses(
        (status = 200, description = "Buckets", body = HistogramResponse),
        (status = 400, description = "A mistake in the request", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = crate::error::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn histogram(
    State(state): State<ApiState>,
    params: Result<Query<HistogramParams>, QueryRejection>,
) -> Result<Json<HistogramResponse>, ApiError> {
    let Query(params) = params?;
    let (request, from, to) = params
        .filters
        .to_bounded_request(Timestamp::now(), DEFAULT_RANGE)?;
    let span_s = ((to.unix_nanos() - from.unix_nanos()).max(0) / 1_000_000_000) as u64;
    let interval = match params.interval.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(text) => parse_interval(text)?,
        None => Duration::from_secs(
            NICE_INTERVALS
                .iter()
                .copied()
                .find(|i| span_s / i <= TARGET_BARS)
                .unwrap_or(604_800),
        ),
    };
    let (buckets, coverage) = blocking(&state, move |b| b.histogram(&request, interval)).await?;
    Ok(Json(HistogramResponse {
        from,
        to,
        interval: label(interval),
        interval_ms: interval.as_millis() as u64,
        total: buckets.iter().map(|b| b.count).sum(),
        buckets: buckets
            .into_iter()
            .map(|b| Bucket {
                start: b.start,
                count: b.count,
            })
            .collect(),
        coverage,
    }))
}
