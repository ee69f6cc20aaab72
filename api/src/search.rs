//! `GET /api/v1/search?q=&from=&to=&namespace=&pod=&container=&kind=&limit=&cursor=`

use crate::params::{Coverage, Filters, blocking};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use indexer::{MAX_LIMIT, SearchRequest};
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

/// A page of hits, newest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct SearchResponse {
    /// Records in DESIGN.md §3's JSON form.
    #[schema(value_type = Vec<Object>)]
    hits: Vec<Record>,
    /// Records matching in all.
    total: usize,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
    /// The limit applied.
    limit: usize,
    /// What was changed in the request (a capped limit).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    /// Which aggregators answered.
    #[serde(flatten)]
    coverage: Coverage,
}

/// Records matching a query, newest first.
#[utoipa::path(get, path = "/api/v1/search", tag = "search",
    params(
        Filters,
        ("limit" = Option<u32>, Query, description = "Hits per page (default 100; above 1000 is capped, with a warning)."),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "Hits", body = SearchResponse),
        (status = 400, description = "A mistake in the request", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = crate::error::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn search(
    State(state): State<ApiState>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let Query(params) = params?;
    let cursor = params.cursor.clone().filter(|c| !c.is_empty());
    let request = to_request(params, Timestamp::now())?;
    let asked = request.limit;
    let (page, coverage) =
        blocking(&state, move |b| b.search_page(&request, cursor.as_deref())).await?;
    let results = page.results;
    let mut warnings = Vec::new();
    if results.limit_capped {
        warnings.push(format!(
            "limit {asked} is above the maximum {MAX_LIMIT}; returned at most {MAX_LIMIT}"
        ));
    }
    Ok(Json(SearchResponse {
        hits: results.hits,
        total: results.total,
        next_cursor: page.next_cursor,
        limit: results.limit,
        warnings,
        coverage,
    }))
}

fn to_request(p: SearchParams, now: Timestamp) -> Result<SearchRequest, ApiError> {
    let limit = match p.limit.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_LIMIT,
        Some(s) => s.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("limit: `{s}` is not a whole number ≥ 0"))
        })?,
    };
    Ok(SearchRequest {
        limit,
        ..p.filters.to_request(now)?
    })
}
