//! The Prometheus text exposition format (and the OpenMetrics text it is a subset of, as
//! far as scraping needs): `# HELP`, `# TYPE`, samples with labels, an optional timestamp,
//! `# EOF`. One parser for every target: dcgm-exporter and the inference servers alike.
//!
//! Strict: a line that is not a comment, a blank or a well-formed sample rejects the whole
//! exposition with its line number, because a half-read exposition would report some
//! series and silently miss others.

use std::collections::BTreeMap;

/// What a metric family is, as its `# TYPE` line says (untyped without one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FamilyKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets (`_bucket{le=…}`), `_sum` and `_count`.
    Histogram,
    /// Quantiles, `_sum` and `_count`.
    Summary,
    /// No `# TYPE`, or one this parser does not know.
    Untyped,
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Its name, suffix included (`vllm:time_to_first_token_seconds_bucket`).
    pub name: String,
    /// Its labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A metric family: its samples, under the name its `# TYPE` line gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: FamilyKind,
    /// Its samples.
    pub samples: Vec<Sample>,
}

/// One histogram series of a family: its buckets as (upper bound, cumulative count).
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSeries {
    /// Its labels, `le` left out.
    pub labels: Vec<(String, String)>,
    /// (upper bound, observations at or below it), by bound; the last is `+Inf`.
    pub buckets: Vec<(f64, f64)>,
    /// Sum of observations.
    pub sum: f64,
    /// Number of observations.
    pub count: f64,
}

impl HistogramSeries {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl Family {
    /// Its histogram series (none unless it is a histogram).
    pub fn histograms(&self) -> Vec<HistogramSeries> {
        if self.kind != FamilyKind::Histogram {
            return Vec::new();
        }
        let mut series: BTreeMap<Vec<(String, String)>, HistogramSeries> = BTreeMap::new();
        for s in &self.samples {
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .filter(|(k, _)| k != "le")
                .cloned()
                .collect();
            labels.sort();
            let entry = series
                .entry(labels.clone())
                .or_insert_with(|| HistogramSeries {
                    labels,
                    buckets: Vec::new(),
                    sum: 0.0,
                    count: 0.0,
                });
            match s.name.strip_prefix(self.name.as_str()) {
                Some("_bucket") => {
                    if let Some(le) = s.label("le").and_then(parse_float) {
                        entry.buckets.push((le, s.value));
                    }
                }
                Some("_sum") => entry.sum = s.value,
                Some("_count") => entry.count = s.value,
                _ => {}
            }
        }
        let mut out: Vec<HistogramSeries> = series.into_values().collect();
        for h in &mut out {
            h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        out
    }

    /// The value of its sample whose labels include all of `labels` (the first such).
    pub fn value_where(&self, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| labels.iter().all(|(k, v)| s.label(k) == Some(v)))
            .map(|s| s.value)
    }
}

/// A whole exposition: its families, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    /// Its families.
    pub families: Vec<Family>,
}

impl Exposition {
    /// The family `name`.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }
}

/// Why an exposition was rejected.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {reason} in `{text}`")]
pub struct ExpositionError {
    /// 1-based.
    pub line: usize,
    /// What is wrong.
    pub reason: &'static str,
    /// The line (its first 120 characters).
    pub text: String,
}

/// The suffixes a family's samples may add to its name.
const SUFFIXES: [&str; 6] = ["_bucket", "_sum", "_count", "_total", "_created", "_info"];

/// Parses a whole exposition.
pub fn parse(text: &str) -> Result<Exposition, ExpositionError> {
    let mut families: Vec<Family> = Vec::new();
    let mut kinds: BTreeMap<String, FamilyKind> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let error = |reason| ExpositionError {
            line: i + 1,
            reason,
            text: line.chars().take(120).collect(),
        };
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            match words.next() {
                Some("TYPE") => {
                    let name = words.next().ok_or_else(|| error("a TYPE without a name"))?;
                    if !valid_name(name) {
                        return Err(error("a metric name with characters it may not have"));
                    }
                    let kind = match words.next() {
                        Some("counter") => FamilyKind::Counter,
                        Some("gauge") => FamilyKind::Gauge,
                        Some("histogram") | Some("gaugehistogram") => FamilyKind::Histogram,
                        Some("summary") => FamilyKind::Summary,
                        Some(_) => FamilyKind::Untyped,
                        None => return Err(error("a TYPE without a type")),
                    };
                    kinds.insert(name.to_string(), kind);
                    families.push(Family {
                        name: name.to_string(),
                        kind,
                        samples: Vec::new(),
                    });
                }
                Some("EOF") => break,
                // HELP, UNIT and free comments say nothing the figures need.
                _ => {}
            }
            continue;
        }
        let sample = parse_sample(trimmed).map_err(error)?;
        let family = family_of(&sample.name, &kinds);
        match families.last_mut() {
            Some(f) if f.name == family => f.samples.push(sample),
            _ => match families.iter_mut().find(|f| f.name == family) {
                // Samples of a family should be together; a late one still belongs to it.
                Some(f) => f.samples.push(sample),
                None => families.push(Family {
                    name: family.to_string(),
                    kind: kinds.get(family).copied().unwrap_or(FamilyKind::Untyped),
                    samples: vec![sample],
                }),
            },
        }
    }
    Ok(Exposition { families })
}

/// The family a sample name belongs to: itself if typed, else itself less a suffix that
/// a typed family adds.
fn family_of<'a>(name: &'a str, kinds: &BTreeMap<String, FamilyKind>) -> &'a str {
    if kinds.contains_key(name) {
        return name;
    }
    SUFFIXES
        .iter()
        .filter_map(|s| name.strip_suffix(s))
        .find(|base| kinds.contains_key(*base))
        .unwrap_or(name)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        // Rust's parser takes `inf` and `infinity` in any case, which the format does not.
        s if s
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E')) =>
        {
            None
        }
        s => s.parse().ok(),
    }
}

fn parse_sample(line: &str) -> Result<Sample, &'static str> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("a sample without a value")?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err("a metric name with characters it may not have");
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(body)?;
        labels = parsed;
        rest = after;
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("a sample without a value")?;
    let value = parse_float(value).ok_or("a value that is not a number")?;
    if let Some(ts) = fields.next()
        && ts.parse::<f64>().is_err()
    {
        return Err("a timestamp that is not a number");
    }
    if fields.next().is_some() {
        return Err("more after the value and timestamp");
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// A sample's labels, in the order written.
type Labels = Vec<(String, String)>;

/// Labels up to the closing `}`, and what follows it.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), &'static str> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("a label without a value")?;
        let key = s[..eq].trim();
        if !valid_name(key) || key.contains(':') {
            return Err("a label name with characters it may not have");
        }
        s = s[eq + 1..].trim_start();
        let body = s.strip_prefix('"').ok_or("a label value not in quotes")?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => return Err("a label value with a bad escape"),
                },
                Some((_, c)) => value.push(c),
                None => return Err("a label value that does not end"),
            }
        };
        labels.push((key.to_string(), value));
        s = body[end + 1..].trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("labels not separated by commas");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dcgm() -> String {
        let path = format!(
            "{}/../../shared/fixtures/dcgm-sample.prom",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn the_dcgm_fixture_reads_as_families_with_their_labels() {
        let e = parse(&dcgm()).expect("a valid exposition");
        let util = e.family("DCGM_FI_DEV_GPU_UTIL").expect("utilisation");
        assert_eq!(util.kind, FamilyKind::Gauge);
        assert_eq!(util.samples.len(), 2);
        assert_eq!(
            util.samples[0].label("pod"),
            Some("vllm-llama3-8b-6d8485c99f-vfdkm")
        );
        assert_eq!(util.value_where(&[("gpu", "0")]), Some(87.0));
        let energy = e.family("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION").unwrap();
        assert_eq!(energy.kind, FamilyKind::Counter);
        assert_eq!(energy.value_where(&[("gpu", "1")]), Some(9937726316.0));
    }

    #[test]
    fn histograms_gather_their_buckets_sum_and_count_per_series() {
        let text = r#"# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="llama"} 3.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="llama"} 5.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.5",model_name="llama"} 4.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="llama"} 5.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="llama"} 1.25
vllm:time_to_first_token_seconds_created{engine="0",model_name="llama"} 1.7e9
# TYPE vllm:prompt_tokens counter
vllm:prompt_tokens_total{model_name="llama"} 1024
odd_untyped 1 1700000000000
# EOF
ignored after EOF {"#;
        let e = parse(text).expect("valid");
        let h = e
            .family("vllm:time_to_first_token_seconds")
            .unwrap()
            .histograms();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].label("model_name"), Some("llama"));
        assert_eq!(h[0].buckets, [(0.1, 3.0), (0.5, 4.0), (f64::INFINITY, 5.0)]);
        assert_eq!((h[0].sum, h[0].count), (1.25, 5.0));
        assert_eq!(
            e.family("vllm:prompt_tokens").unwrap().samples[0].value,
            1024.0
        );
        assert_eq!(e.family("odd_untyped").unwrap().kind, FamilyKind::Untyped);
    }

    #[test]
    fn escapes_are_read_and_malformed_lines_are_rejected_with_their_line() {
        let e = parse("m{path=\"C:\\\\x\",msg=\"say \\\"hi\\\"\\n\",} 1\n").expect("valid");
        let s = &e.families[0].samples[0];
        assert_eq!(s.label("path"), Some("C:\\x"));
        assert_eq!(s.label("msg"), Some("say \"hi\"\n"));
        for (text, reason) in [
            ("ok 1\nbad{a=\"1\" 2\n", "labels not separated by commas"),
            ("ok 1\n\nm{a=1} 2", "a label value not in quotes"),
            ("m{a=\"x} 1", "a label value that does not end"),
            ("m 12abc", "a value that is not a number"),
            ("m inf", "a value that is not a number"),
            ("9lives 1", "a metric name with characters it may not have"),
            ("m", "a sample without a value"),
            ("m 1 2 3", "more after the value and timestamp"),
            (
                "<html><body>502 Bad Gateway</body></html>",
                "a metric name with characters it may not have",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!(err.reason, reason, "{text}");
            assert_eq!(err.line, text.lines().count(), "{text}");
        }
    }
}
