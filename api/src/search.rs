//! `GET /api/v1/search?q=&from=&to=&namespace=&pod=&container=&kind=&limit=&cursor=`

use crate::params::{Filters, blocking};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use indexer::{MAX_LIMIT, SearchCursor, SearchRequest};
use model::{Record, Timestamp};

const DEFAULT_LIMIT: usize = 100;

/// The query string, all text so that every mistake gets our JSON error, not axum's.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct SearchParams {
    #[serde(flatten)]
    filters: Filters,
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
    let asked = request.limit;
    let results = blocking(&state, move |b| b.search(&request)).await?;
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
    let limit = match p.limit.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_LIMIT,
        Some(s) => s.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("limit: `{s}` is not a whole number ≥ 0"))
        })?,
    };
    let after = p
        .cursor
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<SearchCursor>()
                .map_err(|e| ApiError::bad_request(format!("cursor: {e}")))
        })
        .transpose()?;
    Ok(SearchRequest {
        limit,
        after,
        ..p.filters.to_request(now)?
    })
}
