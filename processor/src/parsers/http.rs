//! HTTP access lines, whichever server wrote them: uvicorn (vLLM, SGLang, LiteLLM,
//! LMDeploy), Ollama's GIN, llama.cpp's server, BentoML, Triton, and the Envoy sidecar
//! (Istio's default format) in front of any of them. They give
//! `http.request.method`, `url.path`, `http.response.status_code`, `client.address`, and
//! where logged the request's duration (`llm.e2e_ms`) and id.

use super::duration::parse_duration_ms;
use super::fields::{finder, has};
use model::{Record, names};
use regex::Regex;
use std::sync::LazyLock;

static GIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\[GIN\] [^|]*\|\s*(\d{3})\s*\|\s*(\S+)\s*\|\s*(\S+)\s*\|\s*([A-Z]+)\s+"([^"]*)""#)
        .expect("valid regex")
});
static LLAMA_DONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"log_server_r: (?:done )?request: ([A-Z]+) (\S+) (\S+) (\d{3})")
        .expect("valid regex")
});
static LLAMA_RID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"log_server_request: rid (\d+) \| ([A-Z]+) (\S+) (\S+):\d+").expect("valid regex")
});
static BENTOML: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\S+):\d+ \(scheme=\w+,method=([A-Z]+),path=([^,)]+)[^)]*\) \(status=(\d{3})[^)]*\) \(?([\d.]+)ms\b")
        .expect("valid regex")
});
/// Istio's default Envoy format: `[start] "METHOD path PROTO" status flags [details
/// termination] "failure" received sent duration upstream-time "xff" "agent" "request id"
/// …` (the bracketed pair since Istio 1.9; what follows the request id, addresses and
/// route, is not read).
static ENVOY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^\[\S+\] "([A-Z]+) (\S+) [^"]*" (\d{1,3}) (\S+)(?: \S+ \S+)? "[^"]*" \d+ \d+ (\d+) \S+ "[^"]*" "[^"]*" "([^"]*)""#)
        .expect("valid regex")
});
static TRITON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"HTTP request: (\d+) (/\S+)").expect("valid regex"));

/// Sets the access fields if `text` is an access line; returns whether it was one.
pub fn apply(text: &str, record: &mut Record) -> bool {
    if text.starts_with("[")
        && has!(text, " HTTP/")
        && let Some(c) = ENVOY.captures(text)
    {
        // The server behind it logs the same call again (uvicorn's line): counted as
        // calls once, from the server's own line.
        set_call(record, "proxy_access", None, &c[1], &c[2], Some(&c[3]));
        let a = &mut record.attributes;
        // The whole call as the proxy saw it: the latency of a server that logs no request
        // end (vLLM v1).
        if let Ok(ms) = c[5].parse::<f64>() {
            a.insert_f64(names::LLM_E2E_MS, ms);
        }
        if &c[4] != "-" {
            a.insert(names::ENVOY_RESPONSE_FLAGS, c[4].to_string());
        }
        // x-request-id, which vLLM takes for its own request's id (`chatcmpl-<x-request-id>`):
        // the trace of a vLLM request finds the proxy's line of it.
        if !matches!(&c[6], "" | "-") {
            a.insert(names::LLM_REQUEST_ID, c[6].to_string());
        }
        return true;
    }
    if has!(text, " HTTP/")
        && let Some(line) = uvicorn_access(text)
    {
        set(
            record,
            Some(line.client),
            line.method,
            line.path,
            line.status,
        );
        return true;
    }
    if has!(text, "[GIN]")
        && let Some(c) = GIN.captures(text)
    {
        set(record, Some(&c[3]), &c[4], &c[5], Some(&c[1]));
        if let Some(ms) = parse_duration_ms(&c[2]) {
            record.attributes.insert_f64(names::LLM_E2E_MS, ms);
        }
        return true;
    }
    if has!(text, "log_server_r") {
        if let Some(c) = LLAMA_DONE.captures(text) {
            set(record, Some(&c[3]), &c[1], &c[2], Some(&c[4]));
            return true;
        }
        if let Some(c) = LLAMA_RID.captures(text) {
            set(record, Some(&c[4]), &c[2], &c[3], None);
            record
                .attributes
                .insert(names::LLM_REQUEST_ID, c[1].to_string());
            return true;
        }
    }
    if has!(text, "(scheme=")
        && let Some(c) = BENTOML.captures(text)
    {
        set(record, Some(&c[1]), &c[2], &c[3], Some(&c[4]));
        if let Ok(ms) = c[5].parse::<f64>() {
            record.attributes.insert_f64(names::LLM_E2E_MS, ms);
        }
        return true;
    }
    if has!(text, "HTTP request: ")
        && let Some(c) = TRITON.captures(text)
    {
        // Triton logs libevhtp's method number.
        let method = match &c[1] {
            "0" => "GET",
            "1" => "HEAD",
            "2" => "POST",
            "3" => "PUT",
            "4" => "DELETE",
            _ => return false,
        };
        set(record, None, method, &c[2], None);
        if let Some(model) = c[2]
            .strip_prefix("/v2/models/")
            .and_then(|rest| rest.split('/').next())
            .filter(|m| !m.is_empty())
        {
            record
                .attributes
                .insert(names::GEN_AI_REQUEST_MODEL, model.to_string());
        }
        return true;
    }
    false
}

/// The fields of a uvicorn access line: `CLIENT:PORT - "METHOD PATH HTTP/1.1" STATUS`.
#[derive(Debug, PartialEq)]
struct UvicornAccess<'a> {
    client: &'a str,
    method: &'a str,
    path: &'a str,
    status: Option<&'a str>,
}

/// Reads a uvicorn access line, as the regex
/// `(\S+):\d+(?: \d+)? - "([A-Z]+) (\S+) HTTP/[\d.]+"(?: (\d{3}))?` would (leftmost match,
/// ASCII digits), by hand: the regex's captures ran in its backtracker, searching from every
/// position of the line, and were a twentieth of the agent's CPU (access lines are a third
/// of a vLLM pod's).
fn uvicorn_access(text: &str) -> Option<UvicornAccess<'_>> {
    // Each ` - "` in turn: an earlier one, if it fits, is the leftmost match.
    finder!(" - \"")
        .find_iter(text.as_bytes())
        .find_map(|at| uvicorn_at(text, at))
}

/// The access line whose ` - "` is at `at`, if the text around it has the shape.
fn uvicorn_at(text: &str, at: usize) -> Option<UvicornAccess<'_>> {
    let head = &text[..at];
    // `CLIENT:PORT` or `CLIENT:PORT N` before the separator.
    let host_port = match strip_digits_end(head) {
        Some(rest) if rest.ends_with(':') => head,
        Some(rest) => rest.strip_suffix(' ')?,
        None => return None,
    };
    let client_end = strip_digits_end(host_port)?.strip_suffix(':')?.len();
    let client_start = host_port[..client_end]
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let client = &host_port[client_start..client_end];
    if client.is_empty() {
        return None;
    }
    // `METHOD PATH HTTP/1.1"` after it, then maybe ` STATUS`.
    let request = &text[at + 4..];
    let method_len = request.bytes().take_while(u8::is_ascii_uppercase).count();
    let (method, rest) = request.split_at(method_len);
    let rest = rest.strip_prefix(' ')?;
    let path_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (path, rest) = rest.split_at(path_len);
    let version = rest.strip_prefix(" HTTP/")?;
    let version_len = version
        .bytes()
        .take_while(|c| c.is_ascii_digit() || *c == b'.')
        .count();
    let after = version[version_len..].strip_prefix('"')?;
    if method.is_empty() || path.is_empty() || version_len == 0 {
        return None;
    }
    let status = after
        .strip_prefix(' ')
        .and_then(|s| s.get(..3))
        .filter(|s| s.bytes().all(|c| c.is_ascii_digit()));
    Some(UvicornAccess {
        client,
        method,
        path,
        status,
    })
}

/// `text` without its trailing ASCII digits, if it has any.
fn strip_digits_end(text: &str) -> Option<&str> {
    let rest = text.trim_end_matches(|c: char| c.is_ascii_digit());
    (rest.len() < text.len()).then_some(rest)
}

/// Health checks, scrapes and metadata calls (kubelet probes, Prometheus, clients listing
/// models): `llm.event=probe`, so that `access` is the inference calls, whose statuses are
/// the server's error rate (a probe every 10 s would otherwise outnumber a quiet model's
/// calls).
fn is_probe(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    matches!(
        path,
        "" | "/health"
            | "/healthz"
            | "/health_generate"
            | "/ping"
            | "/ready"
            | "/readyz"
            | "/live"
            | "/livez"
            | "/metrics"
            | "/version"
            | "/info"
            | "/props"
            | "/slots"
            | "/v1/models"
            | "/api/tags"
            | "/api/version"
            | "/api/ps"
            | "/get_model_info"
            | "/get_server_info"
    ) || path.starts_with("/v2/health")
}

fn set(record: &mut Record, client: Option<&str>, method: &str, path: &str, status: Option<&str>) {
    set_call(record, "access", client, method, path, status);
}

/// [`set`] with the event an inference call gets (a probe is a probe whoever logs it).
fn set_call(
    record: &mut Record,
    call: &'static str,
    client: Option<&str>,
    method: &str,
    path: &str,
    status: Option<&str>,
) {
    let a = &mut record.attributes;
    a.insert(
        names::LLM_EVENT,
        if is_probe(path) { "probe" } else { call },
    );
    a.insert(names::HTTP_REQUEST_METHOD, method.to_string());
    a.insert(names::URL_PATH, path.to_string());
    if let Some(client) = client {
        a.insert(names::CLIENT_ADDRESS, client.to_string());
    }
    if let Some(status) = status.and_then(|s| s.parse::<i64>().ok()) {
        a.insert(names::HTTP_RESPONSE_STATUS_CODE, status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_sidecar_lines_give_the_call_its_status_latency_and_flags() {
        let read = |line: &str| {
            let mut r = Record::default();
            assert!(apply(line, &mut r), "{line}");
            let a = &r.attributes;
            (
                a.get_str(names::LLM_EVENT).map(String::from),
                a.get_str(names::URL_PATH).map(String::from),
                a.get(names::HTTP_RESPONSE_STATUS_CODE)
                    .and_then(|v| v.as_f64()),
                a.get(names::LLM_E2E_MS).and_then(|v| v.as_f64()),
                a.get_str(names::ENVOY_RESPONSE_FLAGS).map(String::from),
            )
        };
        let s = |v: &str| Some(v.to_string());
        // Istio's default format (from its docs and users' posts), then the one before 1.9.
        assert_eq!(
            read(
                r#"[2026-02-24T14:23:15.456Z] "POST /v1/chat/completions HTTP/1.1" 503 UC via_upstream - "-" 156 91 30004 - "-" "python-requests/2.31.0" "f47ac10b-58cc-4372-a567-0e02b2c3d479" "vllm.llm.svc.cluster.local" "10.244.3.12:8000" outbound|8000||vllm.llm.svc.cluster.local 10.244.1.5:54321 10.96.45.67:8000 10.244.1.5:33210 - default"#
            ),
            (
                s("proxy_access"),
                s("/v1/chat/completions"),
                Some(503.0),
                Some(30004.0),
                s("UC")
            )
        );
        assert_eq!(
            read(
                r#"[2022-10-23T20:38:15.413Z] "GET / HTTP/1.1" 200 - via_upstream - "-" 0 37 0 0 "-" "curl/7.35.0" "3ce3e159-9dba-4617-9e85-feb1106a682c" "nginx" "" inbound|80|| outbound_.80_._.nginx.default.svc.cluster.local default"#
            ),
            (s("probe"), s("/"), Some(200.0), Some(0.0), None)
        );
        assert_eq!(
            read(
                r#"[2020-11-25T21:26:18.409Z] "POST /generate HTTP/1.1" 200 - "-" 812 5120 4521 4519 "-" "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b7c7e" "tgi:8080" "127.0.0.1:80" inbound|8080|| 127.0.0.1:41854 10.44.1.27:80 10.44.0.25:52720 outbound_.8080_._.tgi.default.svc.cluster.local default"#
            ),
            (
                s("proxy_access"),
                s("/generate"),
                Some(200.0),
                Some(4521.0),
                None
            )
        );
        // The client went away before an answer: no status but Envoy's 0, and why.
        assert_eq!(
            read(
                r#"[2026-02-24T14:23:15.456Z] "POST /v1/completions HTTP/1.1" 0 DC downstream_remote_disconnect - "-" 156 0 61234 - "-" "openai-python/1.40.0" "a1" "vllm:8000" "10.244.3.12:8000" inbound|8000|| - - - - default"#
            ),
            (
                s("proxy_access"),
                s("/v1/completions"),
                Some(0.0),
                Some(61234.0),
                s("DC")
            )
        );

        // The call's x-request-id, which vLLM makes its own id of (`chatcmpl-<it>`).
        let mut r = Record::default();
        assert!(apply(
            r#"[2026-02-24T14:23:15.456Z] "POST /v1/chat/completions HTTP/1.1" 200 - via_upstream - "-" 156 91 4521 4519 "-" "python-requests/2.31.0" "f47ac10b-58cc-4372-a567-0e02b2c3d479" "vllm:8000" "10.244.3.12:8000" inbound|8000|| - - - - default"#,
            &mut r
        ));
        assert_eq!(
            r.attributes.get_str(names::LLM_REQUEST_ID),
            Some("f47ac10b-58cc-4372-a567-0e02b2c3d479")
        );
    }

    #[test]
    fn probes_and_scrapes_are_not_inference_calls() {
        for (path, event) in [
            ("/v1/chat/completions", "access"),
            ("/generate", "access"),
            ("/v2/models/ensemble/generate", "access"),
            ("/health", "probe"),
            ("/metrics", "probe"),
            ("/v1/models", "probe"),
            ("/v2/health/ready", "probe"),
            ("/health?verbose=1", "probe"),
            ("/", "probe"),
        ] {
            let mut r = Record::log(
                model::RecordId(1),
                model::Timestamp::from_unix_nanos(0),
                model::Timestamp::from_unix_nanos(0),
                std::sync::Arc::default(),
                String::new(),
            );
            let line = format!("INFO:     10.0.0.1:5000 - \"GET {path} HTTP/1.1\" 200 OK");
            assert!(apply(&line, &mut r), "{line}");
            assert_eq!(
                r.attributes.get_str(names::LLM_EVENT),
                Some(event),
                "{path}"
            );
        }
    }

    /// The regex `uvicorn_access` replaces, as the reference for what it must read.
    fn by_regex(text: &str) -> Option<UvicornAccess<'_>> {
        static UVICORN: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(
                r#"(\S+):[0-9]+(?: [0-9]+)? - "([A-Z]+) (\S+) HTTP/[0-9.]+"(?: ([0-9]{3}))?"#,
            )
            .expect("valid regex")
        });
        let c = UVICORN.captures(text)?;
        Some(UvicornAccess {
            client: c.get(1)?.as_str(),
            method: c.get(2)?.as_str(),
            path: c.get(3)?.as_str(),
            status: c.get(4).map(|m| m.as_str()),
        })
    }

    #[test]
    fn uvicorn_access_reads_what_the_regex_read() {
        let mut lines: Vec<String> = crate::test_common::corpus()
            .into_iter()
            .filter_map(|v| v["line"].as_str().map(String::from))
            .collect();
        let access = lines.iter().filter(|l| by_regex(l).is_some()).count();
        assert!(
            access >= 10,
            "the corpus has uvicorn access lines ({access})"
        );
        for edge in [
            r#"INFO:     10.42.0.7:51234 - "GET /health HTTP/1.1" 200 OK"#,
            r#"INFO:     10.42.0.7:51234 7 - "GET /health HTTP/1.1" 200 OK"#,
            r#"INFO:     [::1]:8000 - "POST /v1/completions HTTP/2" 503"#,
            r#"a:1:2 - "GET / HTTP/1.1""#,
            r#"x - "GET / HTTP/1.1" 200"#,
            r#"x: - "GET / HTTP/1.1" 200"#,
            r#":80 - "GET / HTTP/1.1" 200"#,
            r#"a:1 - "get / HTTP/1.1" 200 then b:2 - "PUT /x HTTP/1.0" 2000"#,
            r#"a:1 - "GET  / HTTP/1.1" 200"#,
            r#"a:1 - "GET /p HTTP/" 200"#,
            r#"a:1 - "GET /p HTTP/1.1 200"#,
            r#"a:1 - "GET /p	HTTP/1.1" 200"#,
            r#"a:1 - "GET /p HTTP/1.1" 20"#,
            r#"a:1 - "GET /p HTTP/1.1" 2é0"#,
            r#"a:1 x - "GET /p HTTP/1.1" 200"#,
            r#"é:1 - "GET /é HTTP/1.1" 404"#,
            "tab\tc:1 - \"GET / HTTP/1.1\" 200",
            r#"a:1 - "GET / HTTP/1.1"200"#,
            r#" - "GET / HTTP/1.1""#,
            r#"a:1 - "#,
        ] {
            lines.push(edge.to_string());
        }
        for line in &lines {
            assert_eq!(uvicorn_access(line), by_regex(line), "{line}");
        }
    }
}
