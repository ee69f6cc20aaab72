//! The router against a real on-disk index.

use super::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use indexer::{IndexStore, SinkOptions};
use model::{AttrValue, Attributes, Batch, Record, RecordId, Timestamp, names};
use serde_json::Value;
use tower::ServiceExt;

fn app_with(lines: &[(&str, &str)]) -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let store = IndexStore::open_or_create(dir.path()).unwrap();
    let mut sink = store.sink(SinkOptions::default()).unwrap();
    let now = Timestamp::now();
    let records = lines
        .iter()
        .enumerate()
        .map(|(i, (pod, body))| {
            let resource: Attributes = [(names::K8S_POD_NAME, AttrValue::from(*pod))]
                .into_iter()
                .collect();
            let ts = now.saturating_add_nanos(-(i as i64) * 1_000_000_000);
            Record::log(
                RecordId::from_source(b"t", i as u64),
                ts,
                ts,
                Arc::new(resource),
                body.to_string(),
            )
        })
        .collect();
    sink.add(Batch::new(records)).unwrap();
    sink.commit().unwrap();
    let state = ApiState {
        search: Arc::new(store.searcher()),
        metrics: Arc::new(crate::NoMetrics),
    };
    (dir, router(state))
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn search_returns_hits_newest_first_with_the_contract_shape() {
    let (_dir, app) = app_with(&[
        ("vllm-0", "newest kv line"),
        ("tgi-0", "older kv line"),
        ("tgi-0", "unrelated"),
    ]);
    let (status, body) = get(&app, "/api/v1/search?q=kv&from=now-15m").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 2);
    assert_eq!(body["hits"][0]["body"], "newest kv line");
    assert_eq!(body["hits"][0]["resource"]["k8s.pod.name"], "vllm-0");
    assert_eq!(body["hits"][1]["body"], "older kv line");
    assert!(body["next_cursor"].is_null());

    let (_, by_pod) = get(&app, "/api/v1/search?q=*&pod=tgi-0").await;
    assert_eq!(by_pod["total"], 2);
    let (_, future) = get(&app, "/api/v1/search?from=now%2B1h").await;
    assert_eq!(future["total"], 0);
    let (_, first) = get(&app, "/api/v1/search?q=*&limit=1").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (_, second) = get(&app, &format!("/api/v1/search?q=*&limit=1&cursor={cursor}")).await;
    assert_eq!(second["total"], first["total"]);
    assert_ne!(second["hits"][0]["id"], first["hits"][0]["id"]);
    let (_, capped) = get(&app, "/api/v1/search?limit=5000").await;
    assert_eq!(capped["limit"], indexer::MAX_LIMIT);
    assert!(capped["warnings"][0].as_str().unwrap().contains("5000"));
}

#[tokio::test]
async fn user_mistakes_are_400_with_a_json_explanation() {
    let (_dir, app) = app_with(&[("p", "x")]);
    for (uri, needle) in [
        ("/api/v1/search?from=yesterday", "from"),
        ("/api/v1/search?to=now-", "to"),
        ("/api/v1/search?from=now&to=now-1h", "swap"),
        ("/api/v1/search?limit=-3", "limit"),
        ("/api/v1/search?kind=banana", "engine_stats"),
        ("/api/v1/search?q=body:(oops", "invalid query"),
        ("/api/v1/search?cursor=abc", "cursor"),
    ] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"], "bad_request");
        assert!(
            body["detail"].as_str().unwrap().contains(needle),
            "{uri}: {body}"
        );
    }
    let (status, body) = get(&app, "/api/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn healthz_answers() {
    let (_dir, app) = app_with(&[]);
    let (status, body) = get(&app, "/healthz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
}
