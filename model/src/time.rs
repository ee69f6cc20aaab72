//! UTC timestamps in nanoseconds, RFC 3339 in and out, and relative expressions (`now-15m`).
//!
//! Hand-written rather than taken from a date crate because the collector parses one
//! timestamp per log line: this path must cost tens of nanoseconds, not allocate.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

const NANOS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// A point in time: nanoseconds since the Unix epoch, UTC.
///
/// An `i64` of nanoseconds spans the years 1677–2262, which covers every log line we will read.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a timestamp or time expression could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The text is not RFC 3339 (`2026-11-27T20:41:07.512Z`).
    #[error("`{input}` is not an RFC 3339 timestamp ({reason})")]
    NotRfc3339 {
        /// The text that was given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The text is neither RFC 3339 nor a relative expression.
    #[error(
        "`{0}` is not a time: use RFC 3339 (2026-11-27T20:41:07Z) or a relative time such as now, now-15m, now-2h, now-7d"
    )]
    NotATime(String),
    /// The value does not fit the supported range of years 1677–2262.
    #[error("`{0}` is out of the supported range (years 1677 to 2262)")]
    OutOfRange(String),
}

impl Timestamp {
    /// The earliest representable time.
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// The latest representable time.
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// A timestamp from nanoseconds since the Unix epoch.
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
            .unwrap_or(0);
        Timestamp(since)
    }

    /// This time moved by a signed number of nanoseconds, saturating at the range ends.
    pub fn saturating_add_nanos(self, nanos: i64) -> Self {
        Timestamp(self.0.saturating_add(nanos))
    }

    /// Parses RFC 3339 / ISO 8601 with a zone: `2025-03-04T09:14:05.551219537Z`,
    /// `2025-03-04T10:14:05.551219537+01:00`, `2024-03-28T06:29:34+0000`.
    ///
    /// Accepts 0–9 fraction digits (more are truncated), `T`, `t` or a space between date
    /// and time, and `Z`, `±hh:mm` or `±hhmm` as the zone.
    pub fn parse_rfc3339(input: &str) -> Result<Self, TimeError> {
        let err = |reason| TimeError::NotRfc3339 {
            input: truncate_for_error(input),
            reason,
        };
        let b = input.as_bytes();
        if b.len() < 20 {
            return Err(err("too short"));
        }
        let year = digits(b, 0, 4).ok_or_else(|| err("bad year"))?;
        if b[4] != b'-' || b[7] != b'-' {
            return Err(err("expected YYYY-MM-DD"));
        }
        let month = digits(b, 5, 2).ok_or_else(|| err("bad month"))?;
        let day = digits(b, 8, 2).ok_or_else(|| err("bad day"))?;
        if !matches!(b[10], b'T' | b't' | b' ') {
            return Err(err("expected T between date and time"));
        }
        let hour = digits(b, 11, 2).ok_or_else(|| err("bad hour"))?;
        if b[13] != b':' || b[16] != b':' {
            return Err(err("expected hh:mm:ss"));
        }
        let minute = digits(b, 14, 2).ok_or_else(|| err("bad minute"))?;
        let second = digits(b, 17, 2).ok_or_else(|| err("bad second"))?;
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(err("no such date"));
        }
        // 60 is allowed for leap seconds and folded into the next second.
        if hour > 23 || minute > 59 || second > 60 {
            return Err(err("no such time of day"));
        }
        let mut pos = 19;
        let mut nanos: i64 = 0;
        if b.get(pos) == Some(&b'.') {
            pos += 1;
            let start = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                if pos - start < 9 {
                    nanos = nanos * 10 + i64::from(b[pos] - b'0');
                }
                pos += 1;
            }
            let n = pos - start;
            if n == 0 {
                return Err(err("empty fraction"));
            }
            for _ in n..9 {
                nanos *= 10;
            }
        }
        let offset_secs: i64 = match b.get(pos) {
            Some(b'Z' | b'z') => {
                pos += 1;
                0
            }
            Some(&sign @ (b'+' | b'-')) => {
                let oh = digits(b, pos + 1, 2).ok_or_else(|| err("bad zone offset"))?;
                let mut om_at = pos + 3;
                if b.get(om_at) == Some(&b':') {
                    om_at += 1;
                }
                let om = digits(b, om_at, 2).ok_or_else(|| err("bad zone offset"))?;
                pos = om_at + 2;
                let secs = oh * 3600 + om * 60;
                if sign == b'-' { -secs } else { secs }
            }
            _ => return Err(err("missing zone (Z or ±hh:mm)")),
        };
        if pos != b.len() {
            return Err(err("unexpected text after the zone"));
        }
        let days = days_from_civil(year, month, day);
        let secs = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second - offset_secs;
        secs.checked_mul(NANOS_PER_SEC)
            .and_then(|n| n.checked_add(nanos))
            .map(Timestamp)
            .ok_or_else(|| TimeError::OutOfRange(truncate_for_error(input)))
    }

    /// Parses what a user types for a time bound: RFC 3339, `now`, or `now-<N><unit>`
    /// with unit `s`, `m`, `h`, `d` or `w` (also `now+…`).
    pub fn parse_expression(input: &str, now: Timestamp) -> Result<Self, TimeError> {
        let s = input.trim();
        if let Some(rest) = s.strip_prefix("now") {
            if rest.is_empty() {
                return Ok(now);
            }
            let (sign, amount) = match rest.as_bytes()[0] {
                b'-' => (-1, &rest[1..]),
                b'+' => (1, &rest[1..]),
                _ => return Err(TimeError::NotATime(input.to_string())),
            };
            let unit_at = amount
                .find(|c: char| !c.is_ascii_digit())
                .ok_or_else(|| TimeError::NotATime(input.to_string()))?;
            let n: i64 = amount[..unit_at]
                .parse()
                .map_err(|_| TimeError::NotATime(input.to_string()))?;
            let unit_secs = match &amount[unit_at..] {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => SECS_PER_DAY,
                "w" => 7 * SECS_PER_DAY,
                _ => return Err(TimeError::NotATime(input.to_string())),
            };
            let delta = n
                .checked_mul(unit_secs)
                .and_then(|s| s.checked_mul(NANOS_PER_SEC))
                .ok_or_else(|| TimeError::OutOfRange(input.to_string()))?;
            return Ok(now.saturating_add_nanos(sign * delta));
        }
        Timestamp::parse_rfc3339(s).map_err(|e| match e {
            TimeError::OutOfRange(_) => e,
            _ => TimeError::NotATime(input.to_string()),
        })
    }

    /// RFC 3339 in UTC with all nine fraction digits: `2026-11-27T20:41:07.512000000Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_string()
    }
}

/// The RFC 3339 form's length: `2026-11-27T20:41:07.512000000Z`.
const RFC3339_LEN: usize = 30;

impl Timestamp {
    /// Year, month, day, hour, minute, second and nanosecond, in UTC.
    fn civil_parts(self) -> [i64; 7] {
        let secs = self.0.div_euclid(NANOS_PER_SEC);
        let nanos = self.0.rem_euclid(NANOS_PER_SEC);
        let sod = secs.rem_euclid(SECS_PER_DAY);
        let (y, m, d) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
        [y, m, d, sod / 3600, (sod / 60) % 60, sod % 60, nanos]
    }

    /// The RFC 3339 form, digit by digit into a fixed buffer: every record's JSON form
    /// holds two, and `core::fmt` took ~4 % of a node agent's CPU writing them. `None`
    /// for a year outside 0–9999, which nanoseconds in an i64 (1677–2262) never reach.
    fn rfc3339_bytes(self) -> Option<[u8; RFC3339_LEN]> {
        let [y, m, d, hh, mm, ss, nanos] = self.civil_parts();
        if !(0..=9999).contains(&y) {
            return None;
        }
        let mut b = *b"0000-00-00T00:00:00.000000000Z";
        for (range, value) in [
            (0..4, y),
            (5..7, m),
            (8..10, d),
            (11..13, hh),
            (14..16, mm),
            (17..19, ss),
            (20..29, nanos),
        ] {
            let mut v = value;
            for slot in b[range].iter_mut().rev() {
                *slot = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        Some(b)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rfc3339_bytes() {
            Some(b) => f.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?),
            None => write_rfc3339_general(*self, f),
        }
    }
}

/// The RFC 3339 form through `core::fmt`, for any year.
fn write_rfc3339_general(t: Timestamp, f: &mut impl fmt::Write) -> fmt::Result {
    let [y, m, d, hh, mm, ss, nanos] = t.civil_parts();
    write!(
        f,
        "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{nanos:09}Z"
    )
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.rfc3339_bytes() {
            Some(b) => s.serialize_str(std::str::from_utf8(&b).map_err(serde::ser::Error::custom)?),
            None => s.collect_str(self),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

fn truncate_for_error(input: &str) -> String {
    input.chars().take(64).collect()
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let slice = b.get(at..at + n)?;
    let mut v = 0i64;
    for &c in slice {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        Timestamp::parse_rfc3339(s).unwrap().unix_nanos()
    }

    #[test]
    fn containerd_trims_fraction_and_crio_writes_nine_digits_with_offset() {
        assert_eq!(ts("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ts("2025-03-04T09:14:05.6Z"), 1_741_079_645_600_000_000);
        assert_eq!(ts("2025-03-04T09:14:05.60018Z"), 1_741_079_645_600_180_000);
        assert_eq!(
            ts("2025-03-04T10:14:05.551219537+01:00"),
            ts("2025-03-04T09:14:05.551219537Z")
        );
        assert_eq!(ts("2024-03-28T06:29:34+0000"), ts("2024-03-28T06:29:34Z"));
        assert_eq!(ts("1969-12-31T23:59:59.5Z"), -500_000_000);
    }

    #[test]
    fn formats_utc_with_nine_digits_and_round_trips() {
        let t = Timestamp::from_unix_nanos(1_795_812_067_512_000_000);
        assert_eq!(t.to_rfc3339(), "2026-11-27T20:41:07.512000000Z");
        for n in [0i64, -1, 951_782_400_123_456_789, 4_107_542_399_999_999_999] {
            let t = Timestamp::from_unix_nanos(n);
            assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Ok(t), "{n}");
        }
    }

    #[test]
    fn the_fixed_form_is_the_general_one() {
        // Both ends of what an i64 of nanoseconds holds, around the epoch, leap days and
        // a spread between.
        let mut cases = vec![i64::MIN, i64::MIN + 1, -1, 0, 1, 951_782_400_123_456_789];
        cases.extend([i64::MAX - 1, i64::MAX, 1_709_164_800_000_000_000]);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push(x as i64);
        }
        for n in cases {
            let t = Timestamp::from_unix_nanos(n);
            let mut general = String::new();
            write_rfc3339_general(t, &mut general).unwrap();
            assert_eq!(t.to_rfc3339(), general, "{n}");
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{general}\""));
        }
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for bad in [
            "",
            "2025-03-04",
            "2025-03-04T09:14:05",
            "2025-02-30T00:00:00Z",
            "2025-03-04T24:00:00Z",
            "2025-03-04T09:14:05.Z",
            "2025-03-04T09:14:05Zjunk",
            "２０２５-03-04T09:14:05Z",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn relative_expressions_count_back_from_now() {
        let now = Timestamp::parse_rfc3339("2026-11-27T20:00:00Z").unwrap();
        let at = |s| Timestamp::parse_expression(s, now).unwrap().to_rfc3339();
        assert_eq!(at("now"), "2026-11-27T20:00:00.000000000Z");
        assert_eq!(at("now-15m"), "2026-11-27T19:45:00.000000000Z");
        assert_eq!(at("now-2h"), "2026-11-27T18:00:00.000000000Z");
        assert_eq!(at("now-1d"), "2026-11-26T20:00:00.000000000Z");
        assert_eq!(at("now+30s"), "2026-11-27T20:00:30.000000000Z");
        assert_eq!(at("2026-01-01T00:00:00Z"), "2026-01-01T00:00:00.000000000Z");
        for bad in [
            "now-",
            "now-15",
            "now-15y",
            "yesterday",
            "now-99999999999999w",
        ] {
            assert!(Timestamp::parse_expression(bad, now).is_err(), "{bad}");
        }
    }
}
