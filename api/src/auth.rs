//! The optional bearer token: every `/api` and `/metrics` request must carry it when one is
//! configured; `/healthz`, `/readyz` and the UI's files need none (the UI asks for it).

use crate::{ApiError, ApiState};
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

/// Compares in time that depends on the lengths only, so that timing does not tell how much
/// of a guess was right.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

/// Lets the request through when no token is configured or it carries the right one.
pub(crate) async fn require_token(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(expected) = &state.token else {
        return Ok(next.run(request).await);
    };
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    match given {
        Some(token) if same_secret(token.trim().as_bytes(), expected.as_bytes()) => {
            Ok(next.run(request).await)
        }
        Some(_) => Err(ApiError::unauthorized("the bearer token is not the API's")),
        None => Err(ApiError::unauthorized(
            "this API needs `Authorization: Bearer <token>` (the token infersight was started with)",
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_match_only_whole() {
        assert!(super::same_secret(b"abcdef", b"abcdef"));
        assert!(!super::same_secret(b"abcdeg", b"abcdef"));
        assert!(!super::same_secret(b"abcde", b"abcdef"));
        assert!(!super::same_secret(b"", b"abcdef"));
    }
}
