//! `GET /api/v1/search?q=&from=&to=&namespace=&pod=&container=&kind=&limit=&cursor=`

use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use indexer::{IndexError, MAX_LIMIT, SearchCursor, SearchRequest};
use model::{Record, RecordKind, Timestamp};

const DEFAULT_LIMIT: usize = 100;

/// The query string, all text so that every mistake gets our JSON error, not axum's.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct SearchParams {
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
    namespace: Option<String>,
    pod: Option<String>,
    container: Option<String>,
    kind: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(serde::Serialize)]
pub(crate) struct SearchResponse {
    hits: Vec<Record>,
    total: usize,
    next_cursor: Option<String>,
    limit: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

pub(crate) async fn search(
    State(state): State<ApiState>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let request = to_request(params, Timestamp::now())?;
    let backend = state.search.clone();
    let results =
        tokio::task::spawn_blocking(move || backend.search(&request).map(|r| (r, request.limit)))
            .await
            .map_err(|e| ApiError::internal(format!("search task failed: {e}")))?;
    let (results, asked) = results.map_err(|e| match e {
        IndexError::Query(_) => ApiError::bad_request(e.to_string()),
        other => ApiError::internal(other.to_string()),
    })?;
    let mut warnings = Vec::new();
    if results.limit_capped {
        warnings.push(format!(
            "limit {asked} is above the maximum {MAX_LIMIT}; returned at most {MAX_LIMIT}"
        ));
    }
    Ok(Json(SearchResponse {
        hits: results.hits,
        total: results.total,
        next_cursor: results.next.map(|c| c.to_string()),
        limit: results.limit,
        warnings,
    }))
}

fn to_request(p: SearchParams, now: Timestamp) -> Result<SearchRequest, ApiError> {
    let time = |name: &str, v: Option<String>| -> Result<Option<Timestamp>, ApiError> {
        v.filter(|s| !s.trim().is_empty())
            .map(|s| {
                Timestamp::parse_expression(&s, now)
                    .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
            })
            .transpose()
    };
    let from = time("from", p.from)?;
    let to = time("to", p.to)?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::bad_request("from is after to: swap them"));
    }
    let limit = match p.limit.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_LIMIT,
        Some(s) => s.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("limit: `{s}` is not a whole number ≥ 0"))
        })?,
    };
    let kind = p
        .kind
        .filter(|s| !s.is_empty())
        .map(|k| {
            RecordKind::from_name(&k).ok_or_else(|| {
                let names: Vec<_> = RecordKind::ALL.iter().map(|k| k.as_str()).collect();
                ApiError::bad_request(format!("kind: `{k}` is not one of {}", names.join(", ")))
            })
        })
        .transpose()?;
    let after = p
        .cursor
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<SearchCursor>()
                .map_err(|e| ApiError::bad_request(format!("cursor: {e}")))
        })
        .transpose()?;
    let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
    Ok(SearchRequest {
        query: p.q.unwrap_or_default(),
        from,
        to,
        namespace: non_empty(p.namespace),
        pod: non_empty(p.pod),
        container: non_empty(p.container),
        kind,
        limit,
        after,
    })
}
