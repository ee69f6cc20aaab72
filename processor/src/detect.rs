//! Which server wrote a line that no parser took values from: the signatures that only one
//! server's lines carry (Ollama's GIN access log and runner messages, LiteLLM's logger
//! name, BentoML's service tags, Triton's glog source files). One such line teaches the
//! processor the container's server, so its plain lines (a traceback, a startup message)
//! are attributed too.

use crate::parsers::fields::has;

/// Signatures that start with `[`, found by looking at each `[` of the line (few lines have
/// many): this runs on every line of a container whose server is not known yet, including
/// every line of containers that run no inference server at all.
const BRACKETED: [(&[u8], &str); 4] = [
    (b"[GIN", "ollama"),
    (b"[api_server:", "bentoml"),
    (b"[runner:", "bentoml"),
    (b"[entry_service:", "bentoml"),
];

/// The server whose signature `text` carries, if any. `tag` is the process tag the line
/// came with (journald's `ollama[937]`, compose's `litellm-1`).
pub fn server_signature(text: &str, tag: Option<&str>) -> Option<&'static str> {
    if let Some(tag) = tag {
        for server in ["ollama", "litellm", "bentoml"] {
            if tag.starts_with(server) {
                return Some(server);
            }
        }
    }
    let b = text.as_bytes();
    for at in memchr::memchr_iter(b'[', b) {
        if let Some((_, server)) = BRACKETED.iter().find(|(s, _)| b[at..].starts_with(s)) {
            return Some(server);
        }
    }
    if has!(text, "LiteLLM") {
        return Some("litellm");
    }
    if has!(text, "llama runner") {
        return Some("ollama");
    }
    triton_source(text).then_some("triton")
}

/// Whether a glog line (`I1024 04:13:54.117054 169 server.cc:674] …`) comes from one of
/// Triton's own source files.
fn triton_source(text: &str) -> bool {
    const FILES: [&str; 10] = [
        " server.cc:",
        " tritonserver.cc:",
        " model_lifecycle.cc:",
        " model_repository_manager.cc:",
        " backend_model.cc:",
        " backend_model_instance.cc:",
        " grpc_server.cc:",
        " http_server.cc:",
        " pinned_memory_manager.cc:",
        " cuda_memory_manager.cc:",
    ];
    let b = text.as_bytes();
    let glog = b.len() > 5 && matches!(b[0], b'I' | b'W' | b'E' | b'F') && b[1].is_ascii_digit();
    glog && text.contains(".cc:") && FILES.iter().any(|f| text.contains(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_name_their_server_and_nothing_else() {
        let cases = [
            (
                "[GIN] 2025/02/10 - 11:20:29 | 200 | 35.684791792s | 127.0.0.1 | POST \"/api/chat\"",
                None,
                Some("ollama"),
            ),
            ("anything at all", Some("ollama[937]"), Some("ollama")),
            (
                "22:09:18 - LiteLLM Router:DEBUG: router.py:3409 - Inside async function",
                None,
                Some("litellm"),
            ),
            (
                "2023-08-17T12:41:56+0000 [INFO] [api_server:1] Started server process [22669]",
                None,
                Some("bentoml"),
            ),
            (
                "I1024 04:13:54.117054 169 server.cc:674] ",
                None,
                Some("triton"),
            ),
            ("I1024 04:13:54.117054 169 my_server.cc:674] ", None, None),
            ("INFO:     Started server process [8]", None, None),
        ];
        for (text, tag, want) in cases {
            assert_eq!(server_signature(text, tag), want, "{text}");
        }
    }
}
