//! Inference servers' own metrics (vLLM, SGLang, TGI; names in
//! `../shared/fixtures/engine-metrics.md`) mapped onto Infersight's: running and waiting
//! requests, KV-cache use, token throughput, and the latency histograms, time to first
//! token above all, which no server logs per request.

use super::exposition::{Exposition, HistogramSeries, Sample};
use std::collections::BTreeMap;

/// Where one server keeps each figure.
struct Engine {
    /// `llm.server`.
    server: &'static str,
    /// The label that names the model (`None`: the server serves one and does not say).
    model_label: Option<&'static str>,
    running: &'static [&'static str],
    waiting: &'static [&'static str],
    /// KV-cache use as a ratio, 0–1.
    kv_cache_ratio: &'static [&'static str],
    /// Counters of prompt and generated tokens (throughput is their rate).
    prompt_tokens: &'static [&'static str],
    generation_tokens: &'static [&'static str],
    /// Counters of requests that ended, summed (each over its labels).
    ended: &'static [&'static str],
    /// The counter of those that failed, and the values of a label that mark a failure
    /// (`None`: every sample is one).
    failed: (
        &'static str,
        Option<(&'static str, &'static [&'static str])>,
    ),
    /// Histograms, by Infersight's name for them.
    histograms: [(EngineHistogram, &'static [&'static str]); 4],
}

/// The latency histograms a server reports, by what they measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EngineHistogram {
    /// Time to first token.
    Ttft,
    /// Time between output tokens.
    InterToken,
    /// Time queued.
    Queue,
    /// End to end.
    E2e,
}

impl EngineHistogram {
    /// The buckets its observations of each scrape interval are counted on, as the
    /// record's attributes (`None`: not kept per interval).
    pub fn interval_grid(self) -> Option<&'static [(&'static str, f64)]> {
        self.kept().map(|(grid, _)| grid)
    }

    /// The attribute of its observations' total time over a scrape interval, ms.
    pub fn interval_total(self) -> Option<&'static str> {
        self.kept().map(|(_, total)| total)
    }

    /// Its entry of [`model::names::LLM_INTERVAL_HISTOGRAMS`].
    fn kept(self) -> Option<(&'static [(&'static str, f64)], &'static str)> {
        let [ttft, queue, e2e] = model::names::LLM_INTERVAL_HISTOGRAMS;
        match self {
            EngineHistogram::Ttft => Some(ttft),
            EngineHistogram::Queue => Some(queue),
            EngineHistogram::E2e => Some(e2e),
            EngineHistogram::InterToken => None,
        }
    }

    /// Its name on `/metrics`.
    pub fn metric(self) -> &'static str {
        match self {
            EngineHistogram::Ttft => "llm_engine_time_to_first_token_seconds",
            EngineHistogram::InterToken => "llm_engine_inter_token_latency_seconds",
            EngineHistogram::Queue => "llm_engine_queue_time_seconds",
            EngineHistogram::E2e => "llm_engine_e2e_request_latency_seconds",
        }
    }
}

const ENGINES: [Engine; 3] = [
    Engine {
        server: "vllm",
        model_label: Some("model_name"),
        running: &["vllm:num_requests_running"],
        waiting: &["vllm:num_requests_waiting"],
        kv_cache_ratio: &["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
        prompt_tokens: &["vllm:prompt_tokens_total"],
        generation_tokens: &["vllm:generation_tokens_total"],
        ended: &["vllm:request_success_total"],
        failed: (
            "vllm:request_success_total",
            Some(("finished_reason", &["abort", "error"])),
        ),
        histograms: [
            (EngineHistogram::Ttft, &["vllm:time_to_first_token_seconds"]),
            (
                EngineHistogram::InterToken,
                &[
                    "vllm:inter_token_latency_seconds",
                    "vllm:time_per_output_token_seconds",
                ],
            ),
            (EngineHistogram::Queue, &["vllm:request_queue_time_seconds"]),
            (EngineHistogram::E2e, &["vllm:e2e_request_latency_seconds"]),
        ],
    },
    Engine {
        server: "sglang",
        model_label: Some("model_name"),
        running: &["sglang:num_running_reqs"],
        waiting: &["sglang:num_queue_reqs"],
        kv_cache_ratio: &["sglang:token_usage"],
        prompt_tokens: &["sglang:prompt_tokens_total"],
        generation_tokens: &["sglang:generation_tokens_total"],
        ended: &["sglang:num_requests_total"],
        failed: ("sglang:num_aborted_requests_total", None),
        histograms: [
            (
                EngineHistogram::Ttft,
                &["sglang:time_to_first_token_seconds"],
            ),
            (
                EngineHistogram::InterToken,
                &["sglang:inter_token_latency_seconds"],
            ),
            (EngineHistogram::Queue, &["sglang:queue_time_seconds"]),
            (
                EngineHistogram::E2e,
                &["sglang:e2e_request_latency_seconds"],
            ),
        ],
    },
    Engine {
        server: "tgi",
        model_label: None,
        running: &["tgi_batch_current_size"],
        waiting: &["tgi_queue_size"],
        kv_cache_ratio: &[],
        prompt_tokens: &["tgi_request_input_length_sum"],
        generation_tokens: &["tgi_request_generated_tokens_sum"],
        // `tgi_request_count` counts requests as they arrive; these as they end.
        ended: &["tgi_request_success", "tgi_request_failure"],
        failed: ("tgi_request_failure", None),
        histograms: [
            // TGI measures no time to first token.
            (EngineHistogram::Ttft, &[]),
            (
                EngineHistogram::InterToken,
                &["tgi_request_mean_time_per_token_duration"],
            ),
            (EngineHistogram::Queue, &["tgi_request_queue_duration"]),
            (EngineHistogram::E2e, &["tgi_request_duration"]),
        ],
    },
];

/// One model's figures from one scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineFigures {
    /// `vllm`, `sglang`, `tgi`.
    pub server: &'static str,
    /// The model, where the server names it.
    pub model: String,
    /// Requests running.
    pub running: Option<f64>,
    /// Requests waiting.
    pub waiting: Option<f64>,
    /// KV-cache use, 0–100.
    pub kv_cache_pct: Option<f64>,
    /// Prompt tokens per second since the last scrape.
    pub prompt_tps: Option<f64>,
    /// Generated tokens per second since the last scrape.
    pub generation_tps: Option<f64>,
    /// Tokens generated since the last scrape.
    pub generated_tokens: Option<f64>,
    /// Mean time to first token of the requests since the last scrape, ms.
    pub ttft_ms: Option<f64>,
    /// Requests that ended since the last scrape.
    pub requests_ended: Option<f64>,
    /// Of them, those that failed.
    pub requests_failed: Option<f64>,
    /// The observations of each histogram since the last scrape (those with any).
    pub intervals: Vec<IntervalHistogram>,
    /// Its histograms as scraped (cumulative since the server started).
    pub histograms: Vec<(EngineHistogram, HistogramSeries)>,
}

/// One histogram's observations between two scrapes.
#[derive(Clone, Debug, PartialEq)]
pub struct IntervalHistogram {
    /// Which.
    pub which: EngineHistogram,
    /// How many fell in each bucket of its [`EngineHistogram::interval_grid`].
    pub counts: Vec<f64>,
    /// Their total, ms (the histogram's sum grew by it): with the counts, their mean.
    pub total_ms: Option<f64>,
}

/// One model's counters at one scrape.
#[derive(Debug)]
struct Counters {
    /// When, in seconds.
    at: f64,
    prompt_tokens: Option<f64>,
    generated_tokens: Option<f64>,
    ended: Option<f64>,
    failed: Option<f64>,
    /// The histograms as scraped (cumulative buckets, sums and counts).
    histograms: Vec<(EngineHistogram, HistogramSeries)>,
}

/// What a target said last time: counters, for rates and interval means.
#[derive(Debug, Default)]
pub struct EngineMemory {
    last: BTreeMap<(&'static str, String), Counters>,
}

impl EngineMemory {
    /// The figures of every model of every server the exposition is from, `at` (seconds).
    pub fn figures(&mut self, e: &Exposition, at: f64) -> Vec<EngineFigures> {
        let mut out = Vec::new();
        for engine in &ENGINES {
            let models = models(e, engine);
            for model in models {
                let pick = |names: &[&str]| value(e, names, engine.model_label, &model);
                let mut f = EngineFigures {
                    server: engine.server,
                    model: model.clone(),
                    running: pick(engine.running),
                    waiting: pick(engine.waiting),
                    kv_cache_pct: pick(engine.kv_cache_ratio).map(|r| r * 100.0),
                    ..EngineFigures::default()
                };
                for (which, names) in &engine.histograms {
                    if let Some(h) = histogram(e, names, engine.model_label, &model) {
                        f.histograms.push((*which, h));
                    }
                }
                let prompt = pick(engine.prompt_tokens);
                let generated = pick(engine.generation_tokens);
                let ended = total(e, engine.ended, engine.model_label, &model);
                let failed = failures(e, engine, &model);
                let histograms = f.histograms.clone();
                let key = (engine.server, model.clone());
                if let Some(before) = self.last.get(&key) {
                    let dt = at - before.at;
                    // A counter that went down is a restarted server: no rate this time.
                    let rate = |now: Option<f64>, before: &Option<f64>| match (now, before) {
                        (Some(n), Some(b)) if dt > 0.0 && n >= *b => Some((n - b) / dt),
                        _ => None,
                    };
                    f.prompt_tps = rate(prompt, &before.prompt_tokens);
                    f.generation_tps = rate(generated, &before.generated_tokens);
                    f.generated_tokens = f.generation_tps.map(|r| r * dt);
                    // A labelled counter has no sample until its first count (TGI's
                    // failures by cause): one that appears since the last scrape counted
                    // all of it in between.
                    let since = |now: Option<f64>, before: Option<f64>| match (now, before) {
                        (Some(n), b) if n >= b.unwrap_or(0.0) => Some(n - b.unwrap_or(0.0)),
                        _ => None,
                    };
                    f.requests_ended = since(ended, before.ended);
                    // No failures counted where the ended ones are not (a restart).
                    f.requests_failed = f
                        .requests_ended
                        .and_then(|_| since(failed, before.failed).or(Some(0.0)));
                    for (which, now) in &histograms {
                        let earlier = before.histograms.iter().find(|(w, _)| w == which);
                        // The interval's mean first token, even where the buckets changed.
                        if *which == EngineHistogram::Ttft {
                            let (sum, count) =
                                earlier.map_or((0.0, 0.0), |(_, h)| (h.sum, h.count));
                            let (ds, dc) = (now.sum - sum, now.count - count);
                            if dc > 0.0 && ds >= 0.0 {
                                f.ttft_ms = Some(ds / dc * 1e3);
                            }
                        }
                        if let (Some(grid), Some((_, earlier))) = (which.interval_grid(), earlier)
                            && let Some(counts) =
                                interval_buckets(&now.buckets, &earlier.buckets, grid)
                        {
                            let total = now.sum - earlier.sum;
                            f.intervals.push(IntervalHistogram {
                                which: *which,
                                counts,
                                total_ms: (total >= 0.0).then_some(total * 1e3),
                            });
                        }
                    }
                }
                let now = Counters {
                    at,
                    prompt_tokens: prompt,
                    generated_tokens: generated,
                    ended,
                    failed,
                    histograms,
                };
                self.last.insert(key, now);
                out.push(f);
            }
        }
        out
    }
}

/// The observations of a histogram between two scrapes (`before` and `now`, cumulative
/// buckets by bound), spread over `grid`'s buckets (attribute, upper bound); `None` when
/// there are none, or when the server restarted (a count went down) or changed its buckets
/// between.
fn interval_buckets(
    now: &[(f64, f64)],
    before: &[(f64, f64)],
    grid: &[(&str, f64)],
) -> Option<Vec<f64>> {
    let same_bounds = now.len() == before.len() && now.iter().zip(before).all(|(n, b)| n.0 == b.0);
    if !same_bounds || now.iter().zip(before).any(|(n, b)| n.1 < b.1) {
        return None;
    }
    let mut out = vec![0.0; grid.len()];
    let (mut lower, mut below) = (0.0, 0.0);
    for ((bound, now), (_, before)) in now.iter().zip(before) {
        let cumulative = now - before;
        let n = cumulative - below;
        if n > 0.0 {
            spread_over_buckets(n, lower, *bound, grid, &mut out);
        }
        (lower, below) = (*bound, cumulative.max(below));
    }
    (out.iter().sum::<f64>() > 0.0).then_some(out)
}

/// Adds `n` observations between `lower` and `upper` to `out` (counts on `grid`'s buckets,
/// the last unbounded), each bucket its share of the overlap, as if they were spread
/// evenly. Those above a server's last finite bound go to the bucket above it; those of a
/// bucket of no width (SGLang's queue time counts zeros under `le="0.0"`) to the bucket that
/// holds its bound.
fn spread_over_buckets(n: f64, lower: f64, upper: f64, grid: &[(&str, f64)], out: &mut [f64]) {
    if upper <= lower {
        let holding = grid
            .iter()
            .position(|(_, b)| *b >= upper)
            .unwrap_or(grid.len() - 1);
        out[holding] += n;
        return;
    }
    if upper.is_infinite() {
        let above = grid
            .iter()
            .position(|(_, b)| *b > lower)
            .unwrap_or(grid.len() - 1);
        out[above] += n;
        return;
    }
    let mut from = 0.0;
    for (count, (_, to)) in out.iter_mut().zip(grid) {
        let to = *to;
        let overlap = upper.min(to) - lower.max(from);
        if overlap > 0.0 {
            *count += n * overlap / (upper - lower);
        }
        from = to;
    }
}

/// The models a server's metrics name (one, unnamed, for a server that does not say).
fn models(e: &Exposition, engine: &Engine) -> Vec<String> {
    let prefix = match engine.server {
        "tgi" => "tgi_",
        other => other,
    };
    let samples = e
        .families
        .iter()
        .filter(|f| f.name.starts_with(prefix))
        .flat_map(|f| &f.samples);
    let mut models: Vec<String> = match engine.model_label {
        Some(label) => samples
            .filter_map(|s| s.label(label).map(str::to_string))
            .collect(),
        None => samples.take(1).map(|_| String::new()).collect(),
    };
    models.sort();
    models.dedup();
    models
}

/// The value of the first of `names` the exposition has, for `model` (summed over its
/// other labels: engines, ranks).
fn value(e: &Exposition, names: &[&str], label: Option<&str>, model: &str) -> Option<f64> {
    names
        .iter()
        .find_map(|name| sum_of(e, name, label, model, |_| true))
}

/// The sum of every sample of `names` for `model` (`None`: the exposition has none).
fn total(e: &Exposition, names: &[&str], label: Option<&str>, model: &str) -> Option<f64> {
    names
        .iter()
        .filter_map(|name| sum_of(e, name, label, model, |_| true))
        .reduce(|a, b| a + b)
}

/// The server's count of failed requests for `model` (`None`: it has no such sample yet).
fn failures(e: &Exposition, engine: &Engine, model: &str) -> Option<f64> {
    let (name, marked) = engine.failed;
    sum_of(e, name, engine.model_label, model, |s| {
        marked.is_none_or(|(label, values)| s.label(label).is_some_and(|v| values.contains(&v)))
    })
}

/// The sum of the samples named `name` of `model` that `keep` keeps (`None`: there are
/// none).
fn sum_of(
    e: &Exposition,
    name: &str,
    label: Option<&str>,
    model: &str,
    keep: impl Fn(&Sample) -> bool,
) -> Option<f64> {
    let mut found = false;
    let sum = e
        .families
        .iter()
        .flat_map(|f| &f.samples)
        .filter(|s| s.name == name && label.is_none_or(|l| s.label(l) == Some(model)) && keep(s))
        .inspect(|_| found = true)
        .map(|s| s.value)
        .sum();
    found.then_some(sum)
}

/// The first of `names` the exposition has as a histogram of `model`.
fn histogram(
    e: &Exposition,
    names: &[&str],
    label: Option<&str>,
    model: &str,
) -> Option<HistogramSeries> {
    names.iter().find_map(|name| {
        e.family(name)?
            .histograms()
            .into_iter()
            .find(|h| label.is_none_or(|l| h.label(l) == Some(model)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::names::LLM_TTFT_BUCKETS;

    /// Cumulative buckets of `bounds` holding `counts` observations each (not cumulative).
    fn cumulative(bounds: &[f64], counts: &[f64]) -> Vec<(f64, f64)> {
        let mut total = 0.0;
        bounds
            .iter()
            .zip(counts)
            .map(|(b, c)| {
                total += c;
                (*b, total)
            })
            .collect()
    }

    fn at(out: &[f64], bound: f64) -> f64 {
        let i = LLM_TTFT_BUCKETS
            .iter()
            .position(|(_, b)| *b == bound)
            .expect("a bound of the grid");
        out[i]
    }

    #[test]
    fn a_vllm_histogram_lands_on_the_buckets_as_it_is() {
        // Each kept histogram, on vLLM's own bounds: its counts as they are, the unbounded
        // bucket's too.
        for which in [
            EngineHistogram::Ttft,
            EngineHistogram::Queue,
            EngineHistogram::E2e,
        ] {
            let grid = which.interval_grid().expect("kept per interval");
            let bounds: Vec<f64> = grid.iter().map(|(_, b)| *b).collect();
            let last = bounds.len() - 1;
            let mut before = vec![0.0; bounds.len()];
            before[3] = 2.0;
            let mut later = before.clone();
            later[3] += 5.0;
            later[8] += 1.0;
            later[last] += 2.0;
            let out = interval_buckets(
                &cumulative(&bounds, &later),
                &cumulative(&bounds, &before),
                grid,
            )
            .expect("new observations");
            let mut want = vec![0.0; bounds.len()];
            want[3] = 5.0;
            want[8] = 1.0;
            want[last] = 2.0;
            assert_eq!(out, want, "{which:?}");
        }
        assert_eq!(EngineHistogram::InterToken.interval_grid(), None);
    }

    #[test]
    fn coarser_buckets_are_spread_over_the_grid_by_overlap() {
        // 3 first tokens within 0.1 s, 1 within 0.5 s, as in the e2e test's scrapes.
        let bounds = [0.1, 0.5, f64::INFINITY];
        let before = cumulative(&bounds, &[3.0, 1.0, 1.0]);
        let now = cumulative(&bounds, &[6.0, 2.0, 1.0]);
        let out = interval_buckets(&now, &before, &LLM_TTFT_BUCKETS).expect("new observations");
        assert!((out.iter().sum::<f64>() - 4.0).abs() < 1e-9, "{out:?}");
        // (0, 0.1]: 3 over 100 ms; (0.1, 0.5]: 1 over 400 ms.
        assert!((at(&out, 0.001) - 3.0 * 0.001 / 0.1).abs() < 1e-9);
        assert!((at(&out, 0.1) - 3.0 * 0.02 / 0.1).abs() < 1e-9);
        assert!((at(&out, 0.25) - 0.15 / 0.4).abs() < 1e-9);
        assert!((at(&out, 0.5) - 0.25 / 0.4).abs() < 1e-9);
        assert_eq!(at(&out, f64::INFINITY), 0.0);
    }

    #[test]
    fn observations_above_a_servers_last_bound_go_to_the_bucket_above_it() {
        // SGLang's TTFT buckets end at 400 s.
        let bounds = [200.0, 400.0, f64::INFINITY];
        let out = interval_buckets(
            &cumulative(&bounds, &[0.0, 0.0, 2.0]),
            &cumulative(&bounds, &[0.0, 0.0, 0.0]),
            &LLM_TTFT_BUCKETS,
        )
        .expect("new observations");
        assert_eq!(at(&out, 640.0), 2.0);
        assert_eq!(out.iter().sum::<f64>(), 2.0);
    }

    #[test]
    fn observations_of_a_bucket_of_no_width_are_kept() {
        // SGLang's queue-time buckets begin at `le="0.0"`: requests that did not wait.
        let bounds = [0.0, 0.1, f64::INFINITY];
        let out = interval_buckets(
            &cumulative(&bounds, &[3.0, 1.0, 0.0]),
            &cumulative(&bounds, &[0.0, 0.0, 0.0]),
            &model::names::LLM_QUEUE_BUCKETS,
        )
        .expect("new observations");
        assert_eq!(out[0], 4.0, "all in the first bucket, (0, 0.3] s: {out:?}");
        assert_eq!(out.iter().sum::<f64>(), 4.0);
    }

    #[test]
    fn a_restart_new_buckets_or_no_new_requests_give_no_buckets() {
        let bounds = [0.1, f64::INFINITY];
        let before = cumulative(&bounds, &[3.0, 1.0]);
        let restarted = cumulative(&bounds, &[1.0, 0.0]);
        assert_eq!(
            interval_buckets(&restarted, &before, &LLM_TTFT_BUCKETS),
            None
        );
        let rebucketed = cumulative(&[0.2, f64::INFINITY], &[5.0, 1.0]);
        assert_eq!(
            interval_buckets(&rebucketed, &before, &LLM_TTFT_BUCKETS),
            None
        );
        assert_eq!(interval_buckets(&before, &before, &LLM_TTFT_BUCKETS), None);
        assert_eq!(
            interval_buckets(&before, &[], &LLM_TTFT_BUCKETS),
            None,
            "the first scrape"
        );
    }

    /// What each scrape of `text`s (one a `step` seconds apart) says of requests.
    fn requests(texts: &[String]) -> Vec<(Option<f64>, Option<f64>)> {
        let mut memory = EngineMemory::default();
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let e = super::super::exposition::parse(text).expect("an exposition");
                let figures = memory.figures(&e, i as f64 * 5.0);
                assert_eq!(figures.len(), 1, "{text}");
                (figures[0].requests_ended, figures[0].requests_failed)
            })
            .collect()
    }

    #[test]
    fn requests_that_ended_and_failed_are_counted_per_interval_by_each_servers_counters() {
        // vLLM: every finish reason ended a request; `abort` and `error` failed.
        let vllm = |stop: u32, abort: u32, error: Option<u32>| {
            let labels = r#"engine="0",model_name="llama""#;
            let mut text = format!(
                "# TYPE vllm:request_success counter\n\
                 vllm:request_success_total{{{labels},finished_reason=\"stop\"}} {stop}.0\n\
                 vllm:request_success_total{{{labels},finished_reason=\"length\"}} 1.0\n\
                 vllm:request_success_total{{{labels},finished_reason=\"abort\"}} {abort}.0\n"
            );
            if let Some(error) = error {
                text.push_str(&format!(
                    "vllm:request_success_total{{{labels},finished_reason=\"error\"}} {error}.0\n"
                ));
            }
            text.push_str(&format!(
                "vllm:request_success_created{{{labels},finished_reason=\"stop\"}} 1.7e9\n"
            ));
            text
        };
        assert_eq!(
            requests(&[
                vllm(4, 1, None),
                vllm(7, 2, Some(2)),
                vllm(7, 2, Some(2)),
                vllm(1, 0, None)
            ]),
            [
                (None, None),
                // 3 stopped, 1 aborted, 2 errors (a reason first seen now).
                (Some(6.0), Some(3.0)),
                (Some(0.0), Some(0.0)),
                // The server restarted: its counters went down.
                (None, None),
            ]
        );
        // TGI counts a request as it arrives (`tgi_request_count`) and as it ends; its
        // failures by cause, each from its first.
        let tgi = |success: u32, failures: &[(&str, u32)]| {
            let mut text = format!(
                "# TYPE tgi_request_count counter\ntgi_request_count 100\n\
                 # TYPE tgi_request_success counter\ntgi_request_success {success}\n"
            );
            if !failures.is_empty() {
                text.push_str("# TYPE tgi_request_failure counter\n");
            }
            for (err, n) in failures {
                text.push_str(&format!("tgi_request_failure{{err=\"{err}\"}} {n}\n"));
            }
            text
        };
        assert_eq!(
            requests(&[
                tgi(10, &[]),
                tgi(15, &[("overloaded", 2)]),
                tgi(15, &[("overloaded", 3), ("validation", 1)])
            ]),
            [(None, None), (Some(7.0), Some(2.0)), (Some(2.0), Some(2.0))]
        );
        // SGLang: every request, and the aborted among them.
        let sglang = |all: u32, aborted: u32| {
            format!(
                "sglang:num_requests_total{{model_name=\"qwen\"}} {all}.0\n\
                 sglang:num_aborted_requests_total{{model_name=\"qwen\"}} {aborted}.0\n"
            )
        };
        assert_eq!(
            requests(&[sglang(3, 0), sglang(8, 1)]),
            [(None, None), (Some(5.0), Some(1.0))]
        );
    }
}
