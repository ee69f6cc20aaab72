//! The OpenAPI 3 document, generated from the handlers' annotations, at
//! `/api/v1/openapi.json`.

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Adds the bearer scheme the `/api` endpoints may require.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Infersight API",
        description = "Search, trace and explain LLM inference on Kubernetes. Times are RFC 3339 or relative (`now-15m`). With a token configured, `/api` and `/metrics` need `Authorization: Bearer <token>`.",
    ),
    paths(
        crate::search::search,
        crate::histogram::histogram,
        crate::requests::request_trace,
        crate::llm::summary,
        crate::tail::tail,
        crate::incidents::incidents,
        crate::pods::pods,
        crate::workloads::workloads,
        crate::status::status,
        crate::metrics::metrics,
        crate::healthz,
        crate::readyz,
    ),
    modifiers(&BearerScheme),
)]
pub(crate) struct ApiDoc;

/// `GET /api/v1/openapi.json`.
pub(crate) async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
