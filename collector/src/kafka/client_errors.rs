//! librdkafka's client-wide errors (a broker that cannot be reached, all brokers down, a
//! refused authentication), as one client reports them: every one counted for `/metrics`,
//! the last kept for `/api/v1/status` ([`LastClientError`]), the first of each kind logged
//! at once and its repeats summed into one line a minute.
//!
//! While its broker was away, a producer here logged "all brokers are down" eight times a
//! second for as long as the outage lasted (about four errors a second, each reported twice:
//! see [`SAME_REPORT_WITHIN`]), and a consumer twenty: ~29,000 and ~72,000 warnings an
//! hour, burying whatever else happened.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How often one kind of error is logged while it repeats.
const REPEAT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// rust-rdkafka 0.39 hands each producer error to the context twice, back to back on the
/// polling thread (`Client::poll_event` handles an error event and returns it, and
/// `BaseProducer::poll` handles it again); a consumer's error event goes to the context and
/// is then returned by `poll` as well. The same error (and words) again within this is
/// that second report, not a new error. (librdkafka itself folds identical errors into
/// "N identical error(s) suppressed", so two real ones this close with the same words do
/// not happen.)
const SAME_REPORT_WITHIN: Duration = Duration::from_millis(10);

/// What to do with one report.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The second report of the error just reported: neither counted nor logged.
    SecondReport,
    /// Counted and logged, with how many of its kind were counted without a line since it
    /// was last logged.
    Log { unlogged: u64 },
    /// Counted; logged later, in the sum of its kind.
    Quiet,
}

#[derive(Default)]
struct State {
    last: Option<(Option<RDKafkaErrorCode>, String, Instant)>,
    /// Per kind: when it was last logged and how many came since.
    kinds: Vec<(Option<RDKafkaErrorCode>, Instant, u64)>,
}

impl State {
    /// `reason` is librdkafka's words, or `None` for an error a consumer's `poll` returned
    /// (which has none, and is the second report of a context's error of its code if any).
    fn judge(
        &mut self,
        code: Option<RDKafkaErrorCode>,
        reason: Option<&str>,
        now: Instant,
    ) -> Verdict {
        if let Some((c, r, at)) = &self.last
            && *c == code
            && reason.is_none_or(|reason| reason == r)
            && now.saturating_duration_since(*at) < SAME_REPORT_WITHIN
        {
            return Verdict::SecondReport;
        }
        self.last = Some((code, reason.unwrap_or_default().to_string(), now));
        match self.kinds.iter_mut().find(|(c, _, _)| *c == code) {
            None => {
                self.kinds.push((code, now, 0));
                Verdict::Log { unlogged: 0 }
            }
            Some((_, logged, unlogged)) => {
                if now.saturating_duration_since(*logged) >= REPEAT_LOG_INTERVAL {
                    *logged = now;
                    Verdict::Log {
                        unlogged: std::mem::take(unlogged),
                    }
                } else {
                    *unlogged += 1;
                    Verdict::Quiet
                }
            }
        }
    }
}

/// A Kafka client's last client-wide error, for `/api/v1/status`: what it was, when, and
/// how far the client had got then (messages acknowledged or read), so that progress since
/// says it recovered.
#[derive(Debug, Default)]
pub struct LastClientError(Mutex<Option<(Instant, String, u64)>>);

impl LastClientError {
    /// The last error, and how long ago, while it still says how the client is: it came
    /// within `recent` and the client made no progress since (`progress`, its count of
    /// messages acknowledged or read, is what it was at the error).
    pub fn current(&self, progress: u64, recent: Duration) -> Option<(Duration, String)> {
        let last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (at, reason, then) = last.as_ref()?;
        let ago = at.elapsed();
        (ago < recent && progress == *then).then(|| (ago, reason.clone()))
    }

    fn set(&self, reason: &str, progress: u64) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), reason.to_string(), progress));
    }
}

/// Where one client's errors are kept: the counter of its metrics, its last error, and the
/// count of its progress (messages acknowledged or read) as it is now.
pub(super) struct ErrorSink<'a> {
    pub(super) count: &'a AtomicU64,
    pub(super) last: &'a LastClientError,
    pub(super) progress: u64,
}

impl ErrorSink<'_> {
    /// Keeps `reason` as the client's last error without counting it as a client-wide
    /// one: what the client itself found wrong (a topic the brokers lack, messages they
    /// refuse).
    pub(super) fn keep_last(&self, reason: &str) {
        self.last.set(reason, self.progress);
    }
}

/// One Kafka client's client-wide errors: counted in its metrics and logged, so an outage
/// shows in both, without a line per repeat. librdkafka keeps reconnecting by itself; the
/// sink holds its batches and the source waits meanwhile.
pub(super) struct ClientErrors {
    client: &'static str,
    state: Mutex<State>,
}

impl ClientErrors {
    /// For the client named `client` in the log (`producer`, `consumer`).
    pub(super) fn new(client: &'static str) -> Self {
        ClientErrors {
            client,
            state: Mutex::default(),
        }
    }

    /// librdkafka reported `error` (`reason` in its words) to the client's context: counts
    /// and keeps it in `to`, and logs it unless its kind was logged within the last minute.
    pub(super) fn report(&self, to: ErrorSink<'_>, error: &KafkaError, reason: &str) {
        self.judge_and_report(to, error, Some(reason));
    }

    /// A consumer's `poll` returned `error`: the context's error it just reported, or one
    /// the context never saw (a fetch that failed), which is counted and logged as
    /// [`ClientErrors::report`] does.
    pub(super) fn report_returned(&self, to: ErrorSink<'_>, error: &KafkaError) {
        self.judge_and_report(to, error, None);
    }

    fn judge_and_report(&self, to: ErrorSink<'_>, error: &KafkaError, reason: Option<&str>) {
        let verdict = self.state.lock().unwrap_or_else(|e| e.into_inner()).judge(
            error.rdkafka_error_code(),
            reason,
            Instant::now(),
        );
        if verdict == Verdict::SecondReport {
            return;
        }
        let reason = reason.map_or_else(|| error.to_string(), str::to_string);
        to.count.fetch_add(1, Relaxed);
        to.last.set(&reason, to.progress);
        match verdict {
            Verdict::SecondReport | Verdict::Quiet => {}
            Verdict::Log { unlogged: 0 } => {
                tracing::warn!(client = self.client, error = %error, "Kafka: {reason}");
            }
            Verdict::Log { unlogged } => {
                tracing::warn!(
                    client = self.client,
                    error = %error,
                    "Kafka: {reason} (and {unlogged} more like it in the last {} s, unlogged)",
                    REPEAT_LOG_INTERVAL.as_secs()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOWN: Option<RDKafkaErrorCode> = Some(RDKafkaErrorCode::AllBrokersDown);
    const TRANSPORT: Option<RDKafkaErrorCode> = Some(RDKafkaErrorCode::BrokerTransportFailure);

    fn ms(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn a_repeating_error_is_logged_once_a_minute_with_how_many_came_between() {
        let mut s = State::default();
        let t = Instant::now();
        assert_eq!(
            s.judge(DOWN, Some("1/1 brokers are down"), t),
            Verdict::Log { unlogged: 0 }
        );
        // Eight a second for the rest of the minute: counted, not logged.
        let mut quiet = 0;
        for i in 1..480 {
            let v = s.judge(DOWN, Some("1/1 brokers are down"), ms(t, 125 * i));
            assert_eq!(v, Verdict::Quiet, "report {i}");
            quiet += 1;
        }
        assert_eq!(
            s.judge(DOWN, Some("1/1 brokers are down"), ms(t, 60_000)),
            Verdict::Log { unlogged: quiet }
        );
        // The next minute starts its own sum.
        assert_eq!(
            s.judge(DOWN, Some("0/1 brokers are down"), ms(t, 60_125)),
            Verdict::Quiet
        );
        assert_eq!(
            s.judge(DOWN, Some("1/1 brokers are down"), ms(t, 120_000)),
            Verdict::Log { unlogged: 1 }
        );
    }

    #[test]
    fn another_kind_of_error_is_logged_at_once() {
        let mut s = State::default();
        let t = Instant::now();
        assert_eq!(s.judge(DOWN, Some("down"), t), Verdict::Log { unlogged: 0 });
        assert_eq!(
            s.judge(TRANSPORT, Some("connect failed"), ms(t, 100)),
            Verdict::Log { unlogged: 0 }
        );
        assert_eq!(s.judge(DOWN, Some("down"), ms(t, 200)), Verdict::Quiet);
        assert_eq!(
            s.judge(TRANSPORT, Some("connect failed"), ms(t, 300)),
            Verdict::Quiet
        );
    }

    #[test]
    fn the_second_report_of_one_error_is_dropped_and_a_later_one_counts() {
        let mut s = State::default();
        let t = Instant::now();
        assert_eq!(s.judge(DOWN, Some("down"), t), Verdict::Log { unlogged: 0 });
        // rust-rdkafka's second call for the same event, microseconds later.
        assert_eq!(s.judge(DOWN, Some("down"), ms(t, 0)), Verdict::SecondReport);
        // A new occurrence 50 ms on is counted (and, within the minute, not logged).
        assert_eq!(s.judge(DOWN, Some("down"), ms(t, 50)), Verdict::Quiet);
        assert_eq!(
            s.judge(DOWN, Some("down"), ms(t, 51)),
            Verdict::SecondReport
        );
        // Other words close by are another error, not a second report.
        assert_eq!(
            s.judge(DOWN, Some("0/1 brokers"), ms(t, 52)),
            Verdict::Quiet
        );
    }

    #[test]
    fn an_error_a_consumer_poll_returns_after_its_context_saw_it_is_a_second_report() {
        let mut s = State::default();
        let t = Instant::now();
        assert_eq!(s.judge(DOWN, Some("down"), t), Verdict::Log { unlogged: 0 });
        assert_eq!(s.judge(DOWN, None, ms(t, 0)), Verdict::SecondReport);
        // A fetch error the context never saw is one of its own.
        assert_eq!(
            s.judge(TRANSPORT, None, ms(t, 1)),
            Verdict::Log { unlogged: 0 }
        );
        assert_eq!(s.judge(TRANSPORT, None, ms(t, 2)), Verdict::SecondReport);
        assert_eq!(s.judge(TRANSPORT, None, ms(t, 50)), Verdict::Quiet);
    }

    #[test]
    fn every_report_but_the_second_is_counted_and_the_last_stands_until_progress() {
        let errors = ClientErrors::new("producer");
        let (count, last) = (AtomicU64::new(0), LastClientError::default());
        let to = |progress| ErrorSink {
            count: &count,
            last: &last,
            progress,
        };
        let down = KafkaError::Global(RDKafkaErrorCode::AllBrokersDown);
        errors.report(to(7), &down, "1/1 brokers are down");
        errors.report(to(7), &down, "1/1 brokers are down");
        assert_eq!(count.load(Relaxed), 1);
        errors.report(to(7), &down, "0/1 brokers are down");
        assert_eq!(count.load(Relaxed), 2);
        let minute = Duration::from_secs(60);
        let (_, reason) = last.current(7, minute).expect("failing");
        assert_eq!(reason, "0/1 brokers are down");
        // Messages went through since: it recovered. Or the error is old news.
        assert_eq!(last.current(8, minute), None);
        assert_eq!(last.current(7, Duration::ZERO), None);
    }
}
