//! What went wrong, in a word: `error.type` (cuda_oom, nccl_error, engine_dead,
//! context_overflow, traceback) and, for a grouped Python traceback, `exception.type` and
//! `exception.message` from its final line and `exception.stacktrace` (the traceback itself). The incident view and the error-rate metrics key
//! on these, not on message text.

use crate::parsers::fields::has;
use memchr::memmem::Finder;
use model::{Record, Severity, names};
use std::sync::LazyLock;

/// Kinds recognised from the message, most specific first.
const KINDS: [(&str, &[&str]); 4] = [
    (
        "cuda_oom",
        &[
            "CUDA out of memory",
            "OutOfMemoryError",
            "CUDA error: out of memory",
            "cudaErrorMemoryAllocation",
        ],
    ),
    (
        "nccl_error",
        &[
            "NCCL error",
            "ncclInternalError",
            "ncclSystemError",
            "ncclUnhandledCudaError",
        ],
    ),
    (
        "engine_dead",
        &[
            "EngineDeadError",
            "Engine loop has died",
            "EngineCore encountered a fatal error",
        ],
    ),
    (
        "context_overflow",
        &[
            "maximum context length",
            "exceeds the available context size",
            "longer than the maximum model length",
            "must be <= ",
        ],
    ),
];

/// [`KINDS`] with each needle's searcher built once (`str::contains` builds one per call,
/// and error lines are frequent in a crash loop).
static FINDERS: LazyLock<Vec<(&str, Vec<Finder<'static>>)>> = LazyLock::new(|| {
    KINDS
        .iter()
        .map(|(kind, needles)| (*kind, needles.iter().map(Finder::new).collect()))
        .collect()
});

const TRACEBACK_HEAD: &str = "Traceback (most recent call last):";

/// Classifies `record` (its body is the whole, possibly multi-line, message); returns
/// whether it is an error.
pub fn classify(record: &mut Record) -> bool {
    let body = record.body.as_str();
    let traceback = has!(body, "Traceback (most recent call last):");
    let severe = matches!(record.severity, Some(Severity::Error | Severity::Fatal));
    if !traceback && !severe {
        return false;
    }
    let kind = FINDERS
        .iter()
        .find(|(_, finders)| finders.iter().any(|f| f.find(body.as_bytes()).is_some()))
        .map(|(kind, _)| *kind)
        .or(traceback.then_some("traceback"));
    let exception = traceback.then(|| final_exception(body)).flatten();
    let Some(kind) = kind else {
        return false;
    };
    let stacktrace = traceback
        .then(|| body.find(TRACEBACK_HEAD))
        .flatten()
        .map(|at| body[body[..at].rfind('\n').map_or(0, |nl| nl + 1)..].to_string());
    record.attributes.insert(names::ERROR_TYPE, kind);
    if let Some(stacktrace) = stacktrace {
        // The traceback alone, from its header line (with that line's logger prefix), so
        // a search or the incident view can show it without the message before it.
        record
            .attributes
            .insert(names::EXCEPTION_STACKTRACE, stacktrace);
    }
    if let Some((ty, message)) = exception {
        record
            .attributes
            .insert(names::EXCEPTION_TYPE, ty.to_string());
        if !message.is_empty() {
            record
                .attributes
                .insert(names::EXCEPTION_MESSAGE, message.to_string());
        }
    }
    true
}

/// The `ExceptionType: message` that ends a traceback: the last line after the last
/// traceback head that is not indented (once a logger prefix it repeats is set aside).
fn final_exception(body: &str) -> Option<(&str, &str)> {
    let after = &body[body.rfind(TRACEBACK_HEAD)? + TRACEBACK_HEAD.len()..];
    after.lines().rev().find_map(|line| {
        // vLLM and others repeat a prefix ending in `] ` on every line.
        let text = line.rsplit_once("] ").map_or(line, |(_, t)| t);
        if text.starts_with([' ', '\t']) || text.trim().is_empty() {
            return None;
        }
        let (ty, message) = text.split_once(": ").unwrap_or((text, ""));
        let ty = ty.trim();
        let looks_like_type = !ty.is_empty()
            && ty
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            && ty
                .rsplit('.')
                .next()
                .is_some_and(|last| last.starts_with(|c: char| c.is_ascii_uppercase()));
        looks_like_type.then_some((ty, message.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{RecordId, Timestamp};
    use std::sync::Arc;

    fn record(body: &str, severity: Option<Severity>) -> Record {
        let mut r = Record::log(
            RecordId(1),
            Timestamp::now(),
            Timestamp::now(),
            Arc::default(),
            body.to_string(),
        );
        r.severity = severity;
        r
    }

    #[test]
    fn a_vllm_oom_traceback_with_repeated_prefixes() {
        let p = "(APIServer pid=1) ERROR 05-01 14:39:06 [async_llm.py:699]";
        let body = format!(
            "{p} AsyncLLM output_handler failed.\n{p} Traceback (most recent call last):\n{p}   File \"x.py\", line 3, in f\n{p}     outputs = await engine_core.get_output_async()\n{p} torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."
        );
        let mut r = record(&body, Some(Severity::Error));
        assert!(classify(&mut r));
        assert_eq!(r.attributes.get_str(names::ERROR_TYPE), Some("cuda_oom"));
        assert_eq!(
            r.attributes.get_str(names::EXCEPTION_TYPE),
            Some("torch.OutOfMemoryError")
        );
        assert_eq!(
            r.attributes.get_str(names::EXCEPTION_MESSAGE),
            Some("CUDA out of memory. Tried to allocate 2.00 GiB.")
        );
        let stack = r.attributes.get_str(names::EXCEPTION_STACKTRACE).unwrap();
        assert!(
            stack.starts_with(&format!("{p} Traceback (most recent call last):\n")),
            "{stack}"
        );
        assert!(stack.ends_with("Tried to allocate 2.00 GiB."));
    }

    #[test]
    fn a_plain_traceback_and_errors_without_one() {
        let mut r = record(
            "Traceback (most recent call last):\n  File \"main.py\", line 9, in <module>\n    main()\nKeyError: 'model'",
            None,
        );
        assert!(classify(&mut r));
        assert_eq!(r.attributes.get_str(names::ERROR_TYPE), Some("traceback"));
        assert_eq!(
            r.attributes.get_str(names::EXCEPTION_TYPE),
            Some("KeyError")
        );
        let mut ctx = record(
            "9.16.412.167 E srv send_error: task 40 | error = the request exceeds the available context size.",
            Some(Severity::Error),
        );
        assert!(classify(&mut ctx));
        assert_eq!(
            ctx.attributes.get_str(names::ERROR_TYPE),
            Some("context_overflow")
        );
        // An INFO line that mentions memory is not an error.
        let mut info = record(
            "INFO model fits; no CUDA out of memory expected",
            Some(Severity::Info),
        );
        assert!(!classify(&mut info));
        assert!(info.attributes.get(names::ERROR_TYPE).is_none());
    }
}
