//! Kubernetes resource quantities (`8`, `500m`, `64Gi`, `1.5e3`) as numbers, for quota,
//! allocatable and request figures on records and `/metrics`. k8s-openapi keeps a
//! `Quantity` as the string the API server sent; this is the one place that reads it.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The value of `q` in base units (cores, bytes, devices), or `None` where it is not a
/// quantity (which the API server would not have accepted).
pub fn value(q: &Quantity) -> Option<f64> {
    parse(q.0.trim())
}

fn parse(s: &str) -> Option<f64> {
    // The number is everything up to the suffix: digits, sign and one point.
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '+' | '-' | '.')))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(end);
    let number: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let digits = exponent
                .strip_prefix('e')
                .or_else(|| exponent.strip_prefix('E'))?;
            10f64.powi(digits.parse().ok()?)
        }
    };
    Some(number * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<f64> {
        value(&Quantity(s.to_string()))
    }

    #[test]
    fn every_suffix_kind_reads_as_base_units() {
        assert_eq!(v("8"), Some(8.0));
        assert_eq!(v("500m"), Some(0.5));
        assert_eq!(v("64Gi"), Some(64.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(v("2k"), Some(2000.0));
        assert_eq!(v("1.5"), Some(1.5));
        assert_eq!(v("1e3"), Some(1000.0));
        assert_eq!(v("3E"), Some(3e18), "E alone is exa");
        assert!(
            v("12E-1").is_some_and(|x| (x - 1.2).abs() < 1e-9),
            "E-1 an exponent"
        );
        assert_eq!(v("-1"), Some(-1.0));
        assert_eq!(v("Gi"), None);
        assert_eq!(v("8 GPUs"), None);
        assert_eq!(v(""), None);
    }
}
