//! Docker's json-file log line: `{"log":"…\n","stream":"stdout","time":"…"}` (DESIGN.md §5).
//!
//! Docker splits long lines into 16 KiB chunks; a chunk whose `log` does not end in `\n` is
//! partial and continues in the next line of the same stream. Decoded lines become
//! [`CriLine`]s, so both formats share one partial-line merger.

use super::cri::CriLine;
use model::{Stream, Timestamp};
use std::borrow::Cow;

/// Why a line is not a docker json-file line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DockerDecodeError {
    /// Not a JSON object with string fields `log`, `stream` and `time`.
    #[error("not a docker json-file line: {0}")]
    Json(String),
    /// `time` is not RFC 3339.
    #[error("docker json-file `time` is not RFC 3339")]
    BadTimestamp,
    /// `stream` is neither stdout nor stderr.
    #[error("docker json-file `stream` is neither stdout nor stderr")]
    BadStream,
}

#[derive(serde::Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

/// One decoded docker line; its content is owned when the JSON held escapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerLine<'a> {
    timestamp: Timestamp,
    stream: Stream,
    partial: bool,
    content: Cow<'a, str>,
}

impl DockerLine<'_> {
    /// The line as the CRI decoder would give it, borrowing the content.
    pub fn as_cri(&self) -> CriLine<'_> {
        CriLine {
            timestamp: self.timestamp,
            stream: self.stream,
            partial: self.partial,
            content: self.content.as_bytes(),
        }
    }
}

/// Decodes one line (without its `\n`).
pub fn decode_docker_json(line: &[u8]) -> Result<DockerLine<'_>, DockerDecodeError> {
    let raw: Raw<'_> =
        serde_json::from_slice(line).map_err(|e| DockerDecodeError::Json(e.to_string()))?;
    let timestamp =
        Timestamp::parse_rfc3339(&raw.time).map_err(|_| DockerDecodeError::BadTimestamp)?;
    let stream = match &*raw.stream {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return Err(DockerDecodeError::BadStream),
    };
    let partial = !raw.log.ends_with('\n');
    let content = match raw.log {
        Cow::Borrowed(s) => Cow::Borrowed(s.strip_suffix('\n').unwrap_or(s)),
        Cow::Owned(mut s) => {
            if s.ends_with('\n') {
                s.pop();
            }
            Cow::Owned(s)
        }
    };
    Ok(DockerLine {
        timestamp,
        stream,
        partial,
        content,
    })
}

/// The container id in docker's own layout: `<root>/<id>/<id>-json.log`.
pub fn docker_container_id(file_name: &str) -> Option<&str> {
    let id = file_name.strip_suffix("-json.log")?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_from_the_fixtures() {
        let l = decode_docker_json(
            br#"{"log":"INFO:     Started server process [1]\n","stream":"stdout","time":"2025-03-04T09:14:05.600180213Z"}"#,
        )
        .unwrap();
        let cri = l.as_cri();
        assert_eq!(cri.content, b"INFO:     Started server process [1]");
        assert!(!cri.partial);
        assert_eq!(cri.stream, Stream::Stdout);
        assert_eq!(
            cri.timestamp,
            Timestamp::parse_rfc3339("2025-03-04T09:14:05.600180213Z").unwrap()
        );

        let chunk = decode_docker_json(
            br#"{"log":"{\"level\":\"info\",\"msg\":\"...","stream":"stderr","time":"2025-03-04T09:20:01.000104213Z"}"#,
        )
        .unwrap();
        assert!(chunk.as_cri().partial);
        assert_eq!(chunk.as_cri().content, br#"{"level":"info","msg":"..."#);
        assert_eq!(chunk.as_cri().stream, Stream::Stderr);
    }

    #[test]
    fn an_empty_line_is_a_complete_empty_line() {
        let l = decode_docker_json(
            br#"{"log":"\n","stream":"stdout","time":"2025-03-04T09:14:06.1Z"}"#,
        )
        .unwrap();
        assert_eq!((l.as_cri().content, l.as_cri().partial), (&b""[..], false));
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        assert!(matches!(
            decode_docker_json(b"{\"log\":\"x\n"),
            Err(DockerDecodeError::Json(_))
        ));
        assert_eq!(
            decode_docker_json(br#"{"log":"x\n","stream":"stdout","time":"noon"}"#),
            Err(DockerDecodeError::BadTimestamp)
        );
        assert_eq!(
            decode_docker_json(br#"{"log":"x\n","stream":"stdin","time":"2025-03-04T09:14:06Z"}"#),
            Err(DockerDecodeError::BadStream)
        );
    }

    #[test]
    fn container_ids_come_from_docker_file_names() {
        assert_eq!(docker_container_id("3f2a9c-json.log"), Some("3f2a9c"));
        assert_eq!(docker_container_id("3f2a9c-json.log.1"), None);
        assert_eq!(docker_container_id("notes-json.log"), None);
    }
}
