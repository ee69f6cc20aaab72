//! `GET /api/v1/llm/summary?from=&to=&group_by=model|pod|namespace|server`: the figures an
//! SRE looks at first, per model (or pod, namespace, server) over a time range, all read
//! from the index's columns.

use crate::params::{Coverage, Filters, blocking};
use crate::{ApiError, ApiState, SearchBackend};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use indexer::{GroupStats, IndexError, SearchRequest, StatsQuestion};
use model::{RecordKind, Timestamp, names};
use std::collections::{BTreeMap, BTreeSet};

/// Without `from`, the summary covers this long before `to`.
const DEFAULT_RANGE: std::time::Duration = std::time::Duration::from_secs(3600);
const PERCENTS: [f64; 3] = [50.0, 95.0, 99.0];
/// Engine stats read from a container's log (which has a stream)…
const LOGGED_STATS: &str = "(stream:stdout OR stream:stderr)";
/// …and those scraped from its `/metrics`.
const SCRAPED_STATS: &str = "(llm.event:stats -stream:stdout -stream:stderr)";
/// A request failed when it was aborted, left incomplete, or answered 5xx.
const FAILED: &str = "(llm.event:request_aborted OR llm.event:request_incomplete OR http.response.status_code:>=500)";

#[derive(Debug, serde::Deserialize)]
pub(crate) struct SummaryParams {
    #[serde(flatten)]
    filters: Filters,
    group_by: Option<String>,
}

/// The figures per group over the range.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct SummaryResponse {
    #[schema(value_type = String, format = DateTime)]
    from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    to: Timestamp,
    group_by: &'static str,
    /// Where the index's data in the range begins: `from`, unless the index holds nothing
    /// that old (Infersight started, or retention dropped it, later). Absent when the index
    /// holds nothing as old as `to`.
    #[schema(value_type = Option<String>, format = DateTime)]
    data_from: Option<Timestamp>,
    /// The seconds every rate (`rps`, tokens/s) is taken over: from `data_from` to the
    /// earlier of `to` and now, so that a range longer than the data does not dilute them.
    rate_seconds: f64,
    groups: Vec<GroupSummary>,
    /// Which aggregators answered.
    #[serde(flatten)]
    coverage: Coverage,
}

/// Percentiles and average of a timing, in ms.
#[derive(serde::Serialize, Default, Clone, Copy, utoipa::ToSchema)]
pub(crate) struct Spread {
    p50: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
    avg: Option<f64>,
}

/// One model's (pod's, namespace's, server's) figures.
#[derive(serde::Serialize, Default, utoipa::ToSchema)]
pub(crate) struct GroupSummary {
    group: String,
    /// Requests that ended (finished, aborted, incomplete) in the range: of the requests'
    /// lines where the server logs their ends, else (`requests_source` `scraped`) by the
    /// server's own counters on `/metrics`.
    requests: u64,
    /// `requests` per second of `rate_seconds`.
    rps: f64,
    /// Where `requests` and `errors` come from: `logged` or `scraped` (as `ttft_source`);
    /// absent where nothing says.
    requests_source: Option<&'static str>,
    /// Requests whose arrival was logged (`llm.event:request_received`): the load of a
    /// server that logs arrivals and no ends (vLLM v1 without `--enable-log-outputs`).
    received: u64,
    /// `received` per second of `rate_seconds`.
    received_rps: f64,
    /// Ended requests that failed: aborted, incomplete, or answered 5xx.
    errors: u64,
    /// `errors` / `requests`.
    error_rate: Option<f64>,
    /// Inference calls in the servers' HTTP access logs (`llm.event:access` with a status;
    /// probes and scrapes are `probe`); for a group whose servers log none, in their
    /// proxies' (`llm.event:proxy_access`, an Envoy sidecar's).
    http_responses: u64,
    /// Those answered 5xx.
    http_errors: u64,
    /// `http_errors` / `http_responses`: the error rate of a server that logs no request
    /// end (vLLM v1), whose `error_rate` is unknown.
    http_error_rate: Option<f64>,
    /// `http_responses` per second of `rate_seconds`.
    http_rps: f64,
    /// The durations its access lines log (Ollama's, BentoML's, an Envoy sidecar's): the
    /// latency of a server whose requests are known only from them.
    http_latency_ms: Spread,
    /// End to end: of the requests' lines where the server logs their ends, else
    /// (`latency_source` `scraped`) from the server's `/metrics` histogram.
    latency_ms: Spread,
    /// Where `latency_ms` comes from: `logged` or `scraped` (as `ttft_source`).
    latency_source: Option<&'static str>,
    /// Time to first token: of the requests' own lines where the server logs it, else
    /// (`ttft_source` `scraped`) from the server's `/metrics` histogram: percentiles of its
    /// buckets, and the mean of its sum.
    ttft_ms: Spread,
    /// Where `ttft_ms` comes from: `logged` (the requests' lines, a TTFT the server logged
    /// or one estimated from its logged times) or `scraped`; absent where nothing says.
    ttft_source: Option<&'static str>,
    /// Time queued: as `ttft_ms`.
    queue_ms: Spread,
    /// Where `queue_ms` comes from: `logged` or `scraped` (as `ttft_source`).
    queue_source: Option<&'static str>,
    /// Output tokens of the requests that ended, per second.
    output_tokens_per_s: f64,
    /// Tokens generated per second by the engines' own count (`llm.generated_tokens` of
    /// their throughput lines, or of `/metrics` scrapes): the tokens/s of a server that logs
    /// no request ends (vLLM v1). Absent where no engine says.
    engine_output_tokens_per_s: Option<f64>,
    /// Requests running on average, by the engines' own count (vLLM's `Running: N reqs`).
    running_avg: Option<f64>,
    /// Requests in flight on average, by Little's law: the time the requests that ended
    /// took (`llm.e2e_ms`, summed) per second of `rate_seconds`; for a server known only by
    /// its access lines, their durations'. The concurrency of a server whose engine logs no
    /// count (llama.cpp, TGI, Ollama); a request still running at the range's end is not in
    /// it yet.
    in_flight_avg: Option<f64>,
    waiting_avg: Option<f64>,
    kv_cache_pct_avg: Option<f64>,
    gpu_utilization_pct_avg: Option<f64>,
    gpu_memory_used_bytes_avg: Option<f64>,
}

fn spread(s: &GroupStats) -> Spread {
    let at = |p: f64| {
        s.percentiles
            .iter()
            .find(|(q, _)| (*q - p).abs() < 1e-9)
            .map(|(_, v)| *v)
    };
    Spread {
        p50: at(50.0),
        p95: at(95.0),
        p99: at(99.0),
        avg: s.avg,
    }
}

/// The `q` quantile (0–1), in ms, of the observations counted per bucket of `grid`
/// (attribute, upper bound in seconds; the last unbounded) in `counts`, as Prometheus's
/// `histogram_quantile` computes it: a bucket's observations spread evenly over it, and one
/// above the last finite bound read as that bound. `None` when nothing was counted.
///
/// One exception, where the observations' `total_ms` (the histogram's sum) says more: the
/// first bucket's are spread evenly from 0 to at most twice the most they can average (the
/// total over their count), not to its bound. vLLM's queue time starts at 300 ms: a queue of
/// a few ms read as 150 ms at the median, 285 at p95, on every healthy server's row.
fn bucket_quantile(
    counts: &[f64],
    grid: &[(&str, f64)],
    total_ms: Option<f64>,
    q: f64,
) -> Option<f64> {
    let observed: f64 = counts.iter().sum();
    if observed <= 0.0 {
        return None;
    }
    let rank = q * observed;
    // The highest bound reached so far: where a rank past the total by rounding lands.
    let (mut below, mut lower, mut reached) = (0.0, 0.0, 0.0);
    for (i, (count, (_, bound))) in counts.iter().zip(grid).enumerate() {
        // Where this bucket's observations are spread to.
        let mut upper = *bound;
        if i == 0
            && let Some(total) = total_ms.filter(|t| *t > 0.0 && *count > 0.0)
        {
            upper = upper.min(2.0 * total / 1e3 / count);
        }
        if *count > 0.0 {
            if upper.is_infinite() {
                return Some(lower * 1e3);
            }
            if below + count >= rank {
                return Some((lower + (upper - lower) * (rank - below) / count) * 1e3);
            }
            reached = upper;
        }
        below += count;
        lower = *bound;
    }
    Some(reached * 1e3)
}

/// The figures per group, computed with one pass per figure over the columns.
fn summarise(
    backend: &dyn SearchBackend,
    base: &SearchRequest,
    group: &'static str,
    rate_s: f64,
) -> Result<Vec<GroupSummary>, IndexError> {
    let of_kind = |kind: RecordKind, extra: Option<&str>| {
        let mut r = base.clone();
        r.kind = Some(kind);
        if let Some(extra) = extra {
            r.query = match r.query.trim() {
                "" | "*" => extra.to_string(),
                q => format!("({q}) AND {extra}"),
            };
        }
        r
    };
    let requests = of_kind(RecordKind::Request, None);
    let key = |g: &GroupStats| g.group.clone().unwrap_or_else(|| "all".into());
    let mut groups: BTreeMap<String, GroupSummary> = BTreeMap::new();
    // Little's law: requests in flight on average = the time they took per second.
    let in_flight = |g: &GroupStats| g.avg.map(|_| g.sum / 1000.0 / rate_s);
    let stats = |r: &SearchRequest, field: &str, percents: &[f64]| {
        backend.field_stats(r, field, Some(group), percents)
    };
    for g in stats(&requests, names::LLM_E2E_MS, &PERCENTS)? {
        let s = groups.entry(key(&g)).or_default();
        s.requests = g.count;
        s.rps = g.count as f64 / rate_s;
        s.requests_source = (g.count > 0).then_some("logged");
        s.latency_ms = spread(&g);
        s.latency_source = g.avg.is_some().then_some("logged");
        s.in_flight_avg = in_flight(&g);
    }
    let arrivals = of_kind(RecordKind::Log, Some("llm.event:request_received"));
    for g in stats(&arrivals, names::GEN_AI_REQUEST_MAX_TOKENS, &[])? {
        let s = groups.entry(key(&g)).or_default();
        s.received = g.count;
        s.received_rps = g.count as f64 / rate_s;
    }
    // A call is counted from the server's own access line where it logs one, else from its
    // proxy's (an Envoy sidecar's): never both, which would count each call twice.
    for event in ["access", "proxy_access"] {
        // Where the status is logged (llama.cpp also logs a call's start, without one).
        let answered = of_kind(
            RecordKind::Log,
            Some(&format!(
                "(llm.event:{event} AND http.response.status_code:>=100)"
            )),
        );
        let answered = stats(&answered, names::HTTP_RESPONSE_STATUS_CODE, &[])?;
        let failed = of_kind(
            RecordKind::Log,
            Some(&format!(
                "(llm.event:{event} AND http.response.status_code:>=500)"
            )),
        );
        let failed = stats(&failed, names::HTTP_RESPONSE_STATUS_CODE, &[])?;
        let mut counted = BTreeSet::new();
        for g in answered {
            let s = groups.entry(key(&g)).or_default();
            if s.http_responses == 0 {
                s.http_responses = g.count;
                s.http_rps = g.count as f64 / rate_s;
                counted.insert(key(&g));
            }
        }
        for g in failed {
            if counted.contains(&key(&g)) {
                groups.entry(key(&g)).or_default().http_errors = g.count;
            }
        }
    }
    let timed_calls = of_kind(
        RecordKind::Log,
        Some("((llm.event:access OR llm.event:proxy_access) AND llm.e2e_ms:>=0)"),
    );
    for g in stats(&timed_calls, names::LLM_E2E_MS, &PERCENTS)? {
        let s = groups.entry(key(&g)).or_default();
        s.http_latency_ms = spread(&g);
        s.in_flight_avg = s.in_flight_avg.or(in_flight(&g));
    }
    for g in stats(&requests, names::LLM_TTFT_MS, &PERCENTS)? {
        if g.avg.is_some() {
            let s = groups.entry(key(&g)).or_default();
            s.ttft_ms = spread(&g);
            s.ttft_source = Some("logged");
        }
    }
    for g in stats(&requests, names::LLM_QUEUE_MS, &PERCENTS)? {
        if g.avg.is_some() {
            let s = groups.entry(key(&g)).or_default();
            s.queue_ms = spread(&g);
            s.queue_source = Some("logged");
        }
    }
    for g in stats(
        &of_kind(RecordKind::Request, Some(FAILED)),
        names::LLM_E2E_MS,
        &[],
    )? {
        groups.entry(key(&g)).or_default().errors = g.count;
    }
    // A server that logs no request timings (vLLM v1): its histograms' buckets of the
    // range, summed over the scrapes (and aggregators) in one pass and read as Prometheus
    // reads them. Per group, what the requests' lines say wins: a namespace holding a TGI
    // that logs its queue times and a vLLM that does not has the TGI's.
    // Each histogram's buckets, then the total of its observations (for their mean); last,
    // the requests its counters say ended and failed, for a server that logs no request
    // ends (vLLM v1 without request logging, SGLang).
    let grids = names::LLM_INTERVAL_HISTOGRAMS;
    let buckets: Vec<&str> = grids
        .iter()
        .flat_map(|(g, total)| g.iter().map(|(n, _)| *n).chain([*total]))
        .chain([names::LLM_REQUESTS_ENDED, names::LLM_REQUESTS_FAILED])
        .collect();
    let scraped = of_kind(RecordKind::EngineStats, Some(SCRAPED_STATS));
    let question = StatsQuestion::new(names::LLM_TTFT_MS, Some(group), &[]).with_sums(&buckets);
    for g in backend.field_stats_partial(&scraped, &question)?.finish()? {
        if g.sums.iter().all(|c| *c <= 0.0) {
            continue;
        }
        let s = groups.entry(key(&g)).or_default();
        let mut counts = g.sums.as_slice();
        for ((grid, _), (spread, source)) in grids.into_iter().zip([
            (&mut s.ttft_ms, &mut s.ttft_source),
            (&mut s.queue_ms, &mut s.queue_source),
            (&mut s.latency_ms, &mut s.latency_source),
        ]) {
            let (these, rest) = counts.split_at((grid.len() + 1).min(counts.len()));
            counts = rest;
            let (these, total) = match these.split_last() {
                Some((total, these)) => (these, *total),
                None => (these, 0.0),
            };
            // A scrape of an older version kept no total.
            let total = (total > 0.0).then_some(total);
            if source.is_none()
                && let Some(p50) = bucket_quantile(these, grid, total, 0.5)
            {
                let observed: f64 = these.iter().sum();
                *spread = Spread {
                    p50: Some(p50),
                    p95: bucket_quantile(these, grid, total, 0.95),
                    p99: bucket_quantile(these, grid, total, 0.99),
                    avg: total.map(|total| total / observed),
                };
                *source = Some("scraped");
            }
        }
        if let [ended, failed] = *counts
            && s.requests_source.is_none()
            && ended >= 0.5
        {
            s.requests = ended.round() as u64;
            s.rps = ended / rate_s;
            s.requests_source = Some("scraped");
            s.errors = (failed.round() as u64).min(s.requests);
        }
    }
    for g in stats(&requests, names::GEN_AI_USAGE_OUTPUT_TOKENS, &[])? {
        groups.entry(key(&g)).or_default().output_tokens_per_s = g.sum / rate_s;
    }
    // Log lines and scrapes of one engine count the same tokens: the larger of the two
    // sums, never both.
    for query in [LOGGED_STATS, SCRAPED_STATS] {
        let engine = of_kind(RecordKind::EngineStats, Some(query));
        for g in stats(&engine, names::LLM_GENERATED_TOKENS, &[])? {
            if g.avg.is_some() {
                let s = groups.entry(key(&g)).or_default();
                let rate = g.sum / rate_s;
                s.engine_output_tokens_per_s = Some(
                    s.engine_output_tokens_per_s
                        .map_or(rate, |other| other.max(rate)),
                );
            }
        }
    }
    let engine = of_kind(RecordKind::EngineStats, None);
    for g in stats(&engine, names::LLM_RUNNING, &[])? {
        groups.entry(key(&g)).or_default().running_avg = g.avg;
    }
    for g in stats(&engine, names::LLM_WAITING, &[])? {
        groups.entry(key(&g)).or_default().waiting_avg = g.avg;
    }
    for g in stats(&engine, names::LLM_KV_CACHE_PCT, &[])? {
        groups.entry(key(&g)).or_default().kv_cache_pct_avg = g.avg;
    }
    // GPU figures ride on whatever records carry them (snapshots, enriched requests).
    let mut any = base.clone();
    any.kind = None;
    for g in stats(&any, names::GPU_UTILIZATION_PCT, &[])? {
        if g.avg.is_some() {
            groups.entry(key(&g)).or_default().gpu_utilization_pct_avg = g.avg;
        }
    }
    for g in stats(&any, names::GPU_MEMORY_USED_BYTES, &[])? {
        if g.avg.is_some() {
            groups.entry(key(&g)).or_default().gpu_memory_used_bytes_avg = g.avg;
        }
    }
    Ok(groups
        .into_iter()
        .map(|(name, mut s)| {
            s.group = name;
            s.error_rate = (s.requests > 0).then(|| s.errors as f64 / s.requests as f64);
            s.http_error_rate =
                (s.http_responses > 0).then(|| s.http_errors as f64 / s.http_responses as f64);
            s
        })
        .collect())
}

/// The seconds the rates are taken over: from where the data begins to the earlier of `to`
/// and `now` (a range reaching into the future holds no requests yet), at least one.
fn rate_seconds(
    from: Timestamp,
    to: Timestamp,
    data_from: Option<Timestamp>,
    now: Timestamp,
) -> f64 {
    let start = data_from.unwrap_or(from).max(from);
    let end = to.min(now).max(start);
    ((end.unix_nanos() - start.unix_nanos()) as f64 / 1e9).max(1.0)
}

/// Requests per second, latency/TTFT/queue percentiles, error rate, tokens/s, engine load
/// and GPU figures per group (default range: the last hour).
#[utoipa::path(get, path = "/api/v1/llm/summary", tag = "llm",
    params(
        Filters,
        ("group_by" = Option<String>, Query, pattern = r"^(|model|pod|namespace|server)$", description = "model (default), pod, namespace or server."),
    ),
    responses(
        (status = 200, description = "Figures per group", body = SummaryResponse),
        (status = 400, description = "A mistake in the request", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = crate::error::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn summary(
    State(state): State<ApiState>,
    params: Result<Query<SummaryParams>, QueryRejection>,
) -> Result<Json<SummaryResponse>, ApiError> {
    let Query(params) = params?;
    if params
        .filters
        .kind
        .as_deref()
        .is_some_and(|k| !k.is_empty())
    {
        return Err(ApiError::bad_request(
            "kind: the summary picks the kinds itself; leave it out",
        ));
    }
    let (group_by, group) = match params.group_by.as_deref().unwrap_or("model") {
        "" | "model" => ("model", names::GEN_AI_REQUEST_MODEL),
        "pod" => ("pod", names::K8S_POD_NAME),
        "namespace" => ("namespace", names::K8S_NAMESPACE_NAME),
        "server" => ("server", names::LLM_SERVER),
        other => {
            return Err(ApiError::bad_request(format!(
                "group_by: `{other}` is not one of model, pod, namespace, server"
            )));
        }
    };
    // One now for the range and for where the rates end: `to=now` ends them at it.
    let now = Timestamp::now();
    let (base, from, to) = params.filters.to_bounded_request(now, DEFAULT_RANGE)?;
    let ((data_from, rate_seconds, groups), coverage) = blocking(&state, move |b| {
        // Where the data begins, from the splits' metadata: not the first record in the
        // range, or a quiet stretch before a request would make its own short window.
        let oldest = b.oldest_record()?;
        let data_from = oldest.map(|o| o.max(from)).filter(|&d| d <= to);
        let seconds = rate_seconds(from, to, data_from, now);
        Ok((data_from, seconds, summarise(b, &base, group, seconds)?))
    })
    .await?;
    Ok(Json(SummaryResponse {
        from,
        to,
        group_by,
        data_from,
        rate_seconds,
        groups,
        coverage,
    }))
}

#[cfg(test)]
mod tests {
    use super::bucket_quantile;
    use model::names::LLM_TTFT_BUCKETS;

    fn counts(of: &[(f64, f64)]) -> Vec<f64> {
        let mut out = vec![0.0; LLM_TTFT_BUCKETS.len()];
        for (bound, n) in of {
            let i = LLM_TTFT_BUCKETS
                .iter()
                .position(|(_, b)| b == bound)
                .unwrap();
            out[i] = *n;
        }
        out
    }

    #[test]
    fn quantiles_of_buckets_are_read_as_prometheus_reads_them() {
        // 3 in (60, 80] ms and 1 in (250, 500] ms: the median is two thirds into the first.
        let c = counts(&[(0.08, 3.0), (0.5, 1.0)]);
        let close = |q: f64, want: f64| {
            let got = bucket_quantile(&c, &LLM_TTFT_BUCKETS, None, q).unwrap();
            assert!((got - want).abs() < 1e-6, "q {q}: {got} against {want}");
        };
        close(0.5, 60.0 + 20.0 * 2.0 / 3.0);
        close(0.75, 80.0);
        close(0.95, 250.0 + 250.0 * 0.8);
        close(0.0, 60.0);
        assert_eq!(
            bucket_quantile(&counts(&[]), &LLM_TTFT_BUCKETS, None, 0.5),
            None,
            "nothing counted"
        );
        // Above the last finite bound: that bound, as histogram_quantile says.
        let slow = counts(&[(f64::INFINITY, 2.0)]);
        assert_eq!(
            bucket_quantile(&slow, &LLM_TTFT_BUCKETS, None, 0.99),
            Some(2_560_000.0)
        );
        // A rank past the counted total by rounding still lands on a bound, not infinity.
        assert_eq!(
            bucket_quantile(&c, &LLM_TTFT_BUCKETS, None, 1.0 + 1e-12),
            Some(500.0)
        );
    }

    #[test]
    fn the_sum_narrows_the_first_bucket_where_its_bound_is_coarse() {
        use model::names::LLM_QUEUE_BUCKETS;
        let first = LLM_QUEUE_BUCKETS[0].1;
        assert_eq!(first, 0.3, "vLLM's queue time starts at 300 ms");
        let mut healthy = vec![0.0; LLM_QUEUE_BUCKETS.len()];
        healthy[0] = 100.0;
        // 100 requests queued 5 ms on average: spread over [0, 10] ms, not [0, 300].
        let at = |c: &[f64], total: Option<f64>, q: f64| {
            bucket_quantile(c, &LLM_QUEUE_BUCKETS, total, q).unwrap()
        };
        assert!((at(&healthy, Some(500.0), 0.5) - 5.0).abs() < 1e-9);
        assert!((at(&healthy, Some(500.0), 0.95) - 9.5).abs() < 1e-9);
        assert!(
            (at(&healthy, None, 0.5) - 150.0).abs() < 1e-9,
            "no sum: as Prometheus"
        );
        // A sum that allows the whole bucket changes nothing.
        assert!((at(&healthy, Some(100.0 * 200.0), 0.5) - 150.0).abs() < 1e-9);
        // The buckets above keep their own bounds: 10 more between 300 and 500 ms.
        let mut mixed = healthy.clone();
        mixed[1] = 10.0;
        let total = 500.0 + 10.0 * 400.0;
        // The first bucket's 100 average at most 45 ms (all the sum): spread to 90 ms.
        assert!((at(&mixed, Some(total), 0.5) - 55.0 * 0.9).abs() < 1e-9);
        let p99 = at(&mixed, Some(total), 0.99);
        let second = LLM_QUEUE_BUCKETS[1].1 * 1e3;
        assert!(
            (p99 - (300.0 + (second - 300.0) * (108.9 - 100.0) / 10.0)).abs() < 1e-6,
            "{p99}"
        );
    }
}
