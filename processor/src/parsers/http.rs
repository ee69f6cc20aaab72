//! HTTP access lines, whichever server wrote them: uvicorn (vLLM, SGLang, LiteLLM,
//! LMDeploy), Ollama's GIN, llama.cpp's server, BentoML, Triton. They give
//! `http.request.method`, `url.path`, `http.response.status_code`, `client.address`, and
//! where logged the request's duration (`llm.e2e_ms`) and id.

use super::duration::parse_duration_ms;
use super::fields::has;
use model::{Record, names};
use regex::Regex;
use std::sync::LazyLock;

static UVICORN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(\S+):\d+(?: \d+)? - "([A-Z]+) (\S+) HTTP/[\d.]+"(?: (\d{3}))?"#)
        .expect("valid regex")
});
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
static TRITON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"HTTP request: (\d+) (/\S+)").expect("valid regex"));

/// Sets the access fields if `text` is an access line; returns whether it was one.
pub fn apply(text: &str, record: &mut Record) -> bool {
    if has!(text, " HTTP/")
        && let Some(c) = UVICORN.captures(text)
    {
        set(
            record,
            Some(&c[1]),
            &c[2],
            &c[3],
            c.get(4).map(|m| m.as_str()),
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

fn set(record: &mut Record, client: Option<&str>, method: &str, path: &str, status: Option<&str>) {
    let a = &mut record.attributes;
    a.insert(names::LLM_EVENT, "access");
    a.insert(names::HTTP_REQUEST_METHOD, method.to_string());
    a.insert(names::URL_PATH, path.to_string());
    if let Some(client) = client {
        a.insert(names::CLIENT_ADDRESS, client.to_string());
    }
    if let Some(status) = status.and_then(|s| s.parse::<i64>().ok()) {
        a.insert(names::HTTP_RESPONSE_STATUS_CODE, status);
    }
}
