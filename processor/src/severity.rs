//! The level a line states in its prefix, whatever the logger: `INFO`, `[E]`, `level=warn`,
//! glog's `I0829`, llama.cpp's ` I ` after its timestamp, Python's `- WARNING -`.
//!
//! Only the first few tokens are looked at, and only level words spelled as loggers spell
//! them (upper case, or a logfmt/JSON value), so a message that merely mentions "error"
//! gets no severity.

use model::Severity;

/// Tokens of the prefix examined before giving up.
const MAX_TOKENS: usize = 16;

/// The level stated in the prefix of `text`, if any.
pub fn detect_level(text: &str) -> Option<Severity> {
    let head = head(text, 200);
    let mut previous: Option<&str> = None;
    let mut prose = 0;
    for (token, bracketed) in tokens(head).take(MAX_TOKENS) {
        // Two plain words mean the message has begun: a level after them is its text.
        if token.len() >= 2 && token.bytes().all(|b| b.is_ascii_lowercase()) {
            prose += 1;
            if prose == 2 {
                return None;
            }
        }
        if let Some(value) = token
            .strip_prefix("level=")
            .or_else(|| token.strip_prefix("lvl="))
        {
            return Severity::from_level_word(value.trim_matches('"'));
        }
        if token.len() >= 4
            && token.bytes().all(|b| b.is_ascii_uppercase())
            && let Some(s) = level_word(token)
        {
            return Some(s);
        }
        if token.len() == 1 {
            // `[E]`; llama.cpp's ` I ` after its clock; TensorFlow's `25.549148: I `.
            let after_clock = previous.is_some_and(|p| llama_timestamp(p) || fraction(p));
            if (bracketed || after_clock)
                && let Some(s) = letter(token)
            {
                return Some(s);
            }
        }
        // glog: `I0829 15:18:17.820373 1 file.cc:3372]`
        if token.len() == 5
            && token.as_bytes()[1..].iter().all(u8::is_ascii_digit)
            && let Some(s) = letter(&token[..1])
        {
            return Some(s);
        }
        previous = Some(token);
    }
    None
}

fn level_word(word: &str) -> Option<Severity> {
    match word {
        "TRACE" | "DEBUG" | "INFO" | "NOTICE" | "WARN" | "WARNING" | "ERROR" | "CRITICAL"
        | "FATAL" => Severity::from_level_word(word),
        _ => None,
    }
}

fn letter(l: &str) -> Option<Severity> {
    match l {
        "I" | "W" | "E" | "F" | "D" => Severity::from_level_word(l),
        "V" => Some(Severity::Debug),
        _ => None,
    }
}

/// The seconds of a time, `25.549148`.
fn fraction(t: &str) -> bool {
    t.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty() && b.len() >= 3 && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    })
}

/// llama.cpp's `2.02.846.974` (minutes.seconds.millis.micros since start).
fn llama_timestamp(t: &str) -> bool {
    let parts: Vec<&str> = t.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The first `max` bytes of `text`, cut at a character boundary.
fn head(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Whitespace-separated words split further at `[ ] | ( ) : ,`, each with whether it stood
/// alone between brackets (`[E]`). Lazy and allocation-free: most lines stop early.
fn tokens(text: &str) -> Tokens<'_> {
    Tokens { text, at: 0 }
}

struct Tokens<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = (&'a str, bool);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.text.as_bytes();
        let is_split = |c: u8| {
            c.is_ascii_whitespace() || matches!(c, b'[' | b']' | b'|' | b'(' | b')' | b':' | b',')
        };
        while self.at < b.len() && is_split(b[self.at]) {
            self.at += 1;
        }
        if self.at >= b.len() {
            return None;
        }
        let start = self.at;
        while self.at < b.len() && !is_split(b[self.at]) {
            self.at += 1;
        }
        let bracketed = start > 0 && b[start - 1] == b'[' && b.get(self.at) == Some(&b']');
        Some((&self.text[start..self.at], bracketed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_in_the_shapes_servers_print() {
        for (line, want) in [
            (
                "2024-03-21T09:01:53.354872Z ERROR text_generation_launcher: x",
                Some(Severity::Error),
            ),
            (
                "2024-12-14T03:35:16.371090Z  INFO text_generation_launcher: Args {",
                Some(Severity::Info),
            ),
            (
                "2024-03-28T06:29:34+0000 [INFO] [api_server:1] Started",
                Some(Severity::Info),
            ),
            ("[TM][WARNING] [LlamaTritonModel] x", Some(Severity::Warn)),
            (
                "[08/11/2024-06:10:36] [TRT] [E] [virtualMemoryBuffer.cpp::resize]",
                Some(Severity::Error),
            ),
            (
                "[06/21/2025-01:30:42] [TRT-LLM] [RANK 0] [I] [Autotuner]: ends",
                Some(Severity::Info),
            ),
            (
                "2024-07-29 01:46:31,483 - lmdeploy - WARNING - deprecated",
                Some(Severity::Warn),
            ),
            (
                "litellm-1  | 22:09:18 - LiteLLM Proxy:DEBUG: parallel_request_limiter.py:48 - x",
                Some(Severity::Debug),
            ),
            (
                "INFO:     Uvicorn running on http://0.0.0.0:8000",
                Some(Severity::Info),
            ),
            (
                "time=2025-08-24T08:17:39.150Z level=INFO source=ggml.go:486 msg=x",
                Some(Severity::Info),
            ),
            (
                "I0829 15:18:17.820373 1 http_server.cc:3372] HTTP request",
                Some(Severity::Info),
            ),
            (
                "[42027] 1.35.716.244 I slot print_timing: id  0 | task 388",
                Some(Severity::Info),
            ),
            (
                "9.16.412.167 E srv                send_error: task 40",
                Some(Severity::Error),
            ),
            (
                "[2026-04-05 20:02:51] Decode batch, #running-req: 32, token usage: 0.08",
                None,
            ),
            ("Error: ShardCannotStart", None),
            ("srv  log_server_r: request: GET / 127.0.0.1 200", None),
            (
                "A message about an ERROR much later in a long line of words that goes on",
                None,
            ),
        ] {
            assert_eq!(detect_level(line), want, "{line}");
        }
    }
}
