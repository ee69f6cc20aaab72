//! Text that wraps a server's own line: ANSI colour codes and process prefixes.

use regex::Regex;
use std::borrow::Cow;
use std::sync::LazyLock;

/// Removes ANSI escape sequences (CSI such as colour codes `ESC[0;36m`, OSC titles, and
/// two-byte escapes). Returns the input unchanged, without copying, when it holds none.
pub fn strip_ansi(text: &str) -> Cow<'_, str> {
    if !text.contains('\x1b') {
        return Cow::Borrowed(text);
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut kept_from = 0;
    while i < b.len() {
        if b[i] != 0x1b {
            i += 1;
            continue;
        }
        out.push_str(&text[kept_from..i]);
        i += 1;
        match b.get(i) {
            Some(b'[') => {
                // CSI: parameters and intermediates, then one final byte in 0x40..=0x7e.
                i += 1;
                while i < b.len() && !(0x40..=0x7e).contains(&b[i]) {
                    i += 1;
                }
                i += 1;
            }
            Some(b']') => {
                // OSC: until BEL or ESC \.
                i += 1;
                while i < b.len() && b[i] != 0x07 && !(b[i] == 0x1b && b.get(i + 1) == Some(&b'\\'))
                {
                    i += 1;
                }
                i += if b.get(i) == Some(&0x07) { 1 } else { 2 };
            }
            Some(c) if c.is_ascii() => i += 1,
            _ => {}
        }
        i = i.min(b.len());
        kept_from = i;
    }
    out.push_str(&text[kept_from..]);
    Cow::Owned(out)
}

/// Splits a leading process tag such as vLLM's `(APIServer pid=3646) ` or Ray's
/// `(RayWorkerVllm pid=559) ` off a line: returns the tag's inside and the rest.
pub fn split_process_tag(text: &str) -> Option<(&str, &str)> {
    let inner_end = text.strip_prefix('(')?.find(')')? + 1;
    let inner = &text[1..inner_end];
    let at = crate::parsers::fields::find!(inner, " pid=")?;
    let (name, pid) = (&inner[..at], &inner[at + " pid=".len()..]);
    if name.is_empty() || pid.is_empty() || !pid.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((inner, text[inner_end + 1..].trim_start()))
}

/// Splits a journald prefix (`Dec 03 14:58:42 host ollama[937]: `, as `journalctl` prints
/// it, month names in any locale) off a line: returns the `ident[pid]` and the rest.
pub fn split_journald(text: &str) -> Option<(&str, &str)> {
    static JOURNALD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^\S+ +\d{1,2} \d{2}:\d{2}:\d{2} \S+ ([^\s\[\]]+\[\d+\]): ")
            .expect("valid regex")
    });
    // Most lines are not journald's: look at the clock's fixed shape before the regex.
    let b = text.as_bytes();
    let month = b.iter().take(8).position(|&c| c == b' ')?;
    let rest = &b[month..];
    let day = rest.iter().position(|&c| c != b' ')?;
    let clock = rest.get(day..)?;
    let digits = clock.iter().take_while(|c| c.is_ascii_digit()).count();
    let time = clock.get(digits + 1..digits + 9)?;
    if !(1..=2).contains(&digits) || time[2] != b':' || time[5] != b':' {
        return None;
    }
    let c = JOURNALD.captures(text)?;
    let tag = c.get(1)?.as_str();
    Some((tag, &text[c.get(0)?.end()..]))
}

/// Splits a docker compose prefix (`litellm-1  | `) off a line: returns the service name and
/// the rest. The name is one word of letters, digits, `_`, `.`, `-`, padded with spaces.
pub fn split_compose(text: &str) -> Option<(&str, &str)> {
    let b = text.as_bytes();
    if !b.first()?.is_ascii_alphanumeric() {
        return None;
    }
    let name = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        .count();
    let pad = b[name..].iter().take_while(|&&c| c == b' ').count();
    if pad == 0 || !b[name + pad..].starts_with(b"| ") {
        return None;
    }
    Some((&text[..name], &text[name + pad + 2..]))
}

/// Splits Ray's deduplication suffix (` [repeated 2x across cluster]`) off a line: returns
/// the line without it and the count.
pub fn split_ray_repeated(text: &str) -> Option<(&str, i64)> {
    let body = text.strip_suffix(" across cluster]")?;
    let at = body.rfind(" [repeated ")?;
    let n = body[at + " [repeated ".len()..]
        .strip_suffix('x')?
        .parse()
        .ok()?;
    Some((&text[..at], n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_vllm_colour_codes_exactly() {
        let line = "\u{1b}[0;36m(APIServer pid=1)\u{1b}[0;0m \u{1b}[32mINFO\u{1b}[0m \u{1b}[90m05-19 10:13:11\u{1b}[0m \u{1b}[90m[loggers.py:271]\u{1b}[0m Engine 000:";
        assert_eq!(
            strip_ansi(line),
            "(APIServer pid=1) INFO 05-19 10:13:11 [loggers.py:271] Engine 000:"
        );
        assert!(matches!(strip_ansi("plain"), Cow::Borrowed("plain")));
        assert_eq!(strip_ansi("a\u{1b}]0;title\u{7}b\u{1b}"), "ab");
        assert_eq!(strip_ansi("cut \u{1b}[0;3"), "cut ");
        assert_eq!(strip_ansi("\u{1b}é"), "é");
    }

    #[test]
    fn splits_journald_compose_and_ray_wrappers() {
        assert_eq!(
            split_journald("janv. 20 23:15:37 jarvis-server ollama[1232]: [GIN] 2026/01/20"),
            Some(("ollama[1232]", "[GIN] 2026/01/20"))
        );
        assert_eq!(split_journald("Dec 03 14:58:42 host: not journald"), None);
        assert_eq!(
            split_compose("litellm-1  | 22:09:18 - LiteLLM Proxy:DEBUG: x"),
            Some(("litellm-1", "22:09:18 - LiteLLM Proxy:DEBUG: x"))
        );
        assert_eq!(
            split_compose("slot      release: id  0 | task 7 | stop processing"),
            None
        );
        assert_eq!(split_compose("[GIN] 2024/05/01 - 12:00:00 | 200 |"), None);
        assert_eq!(
            split_ray_repeated("Prefix cache hit rate: GPU: 12.55% [repeated 2x across cluster]"),
            Some(("Prefix cache hit rate: GPU: 12.55%", 2))
        );
        assert_eq!(split_ray_repeated("x [repeated many across cluster]"), None);
    }

    #[test]
    fn splits_process_tags() {
        assert_eq!(
            split_process_tag("(APIServer pid=3646) INFO 05-19"),
            Some(("APIServer pid=3646", "INFO 05-19"))
        );
        assert_eq!(
            split_process_tag("(EngineCore_DP0 pid=2010410) x").map(|t| t.0),
            Some("EngineCore_DP0 pid=2010410")
        );
        assert_eq!(split_process_tag("(not a tag) INFO"), None);
        assert_eq!(split_process_tag("(x pid=) INFO"), None);
        assert_eq!(split_process_tag("INFO (x pid=1)"), None);
    }
}
