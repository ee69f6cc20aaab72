//! The web UI: a few static files embedded in the binary at build time (no CDN, works
//! offline), served at `/` and `/ui/…`. The pages call the JSON API of the same server.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// `(name, content type, bytes)` of every file under `/ui/`.
const FILES: [(&str, &str, &[u8]); 4] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../ui/app.css"),
    ),
    // uPlot 1.6.32 (MIT, ui/vendor/uPlot.LICENSE), as published on npm.
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../ui/vendor/uPlot.min.css"),
    ),
];

const INDEX: &[u8] = include_bytes!("../ui/index.html");

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Everything comes from this server; uPlot sizes its canvas with inline styles.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
        ),
    );
    response
}

/// `GET /`: the UI's page.
pub(crate) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /ui/{file}`.
pub(crate) async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => asset(content_type, body),
        None => crate::ApiError::not_found(format!("no UI file {name}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_file_the_page_loads_is_served() {
        let page = std::str::from_utf8(super::INDEX).unwrap();
        for (name, _, body) in super::FILES {
            assert!(page.contains(&format!("/ui/{name}")), "{name} is not used");
            assert!(!body.is_empty());
        }
    }
}
