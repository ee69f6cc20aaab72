//! Durations as Go and Rust print them, in milliseconds: `35.684791792s`, `41.983µs`,
//! `1.193025ms`, `29m59s`, `1h2m3.5s`, `120ns`. Servers switch units inside one log (TGI
//! `49.382µs` next to `1.2s`), so every value goes through here.

/// `text` in milliseconds, or `None` when it is not a duration.
pub fn parse_duration_ms(text: &str) -> Option<f64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if number_len == 0 {
            return None;
        }
        let value: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let (unit_ms, unit_len) = [
            ("ns", 1e-6),
            ("µs", 1e-3),
            ("us", 1e-3),
            ("ms", 1.0),
            ("s", 1e3),
            ("m", 60e3),
            ("h", 3600e3),
        ]
        .iter()
        .find(|(u, _)| rest.starts_with(u))
        .map(|(u, ms)| (*ms, u.len()))?;
        total += value * unit_ms;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_and_rust_durations() {
        for (text, ms) in [
            ("35.684791792s", 35684.791792),
            ("41.983µs", 0.041983),
            ("1.193025ms", 1.193025),
            ("29m59s", 1_799_000.0),
            ("30m0s", 1_800_000.0),
            ("1h2m3.5s", 3_723_500.0),
            ("120ns", 0.00012),
            ("2.7ms", 2.7),
        ] {
            let got = parse_duration_ms(text).unwrap();
            assert!((got - ms).abs() < 1e-9 * ms.max(1.0), "{text}: {got}");
        }
        for bad in ["", "s", "12", "1.2 s", "fast"] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
    }
}
