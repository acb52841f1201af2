//! REST routes under `/api/v1`, and `/health`.

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pantau_core::health::ApiError;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::view::CheckResultView;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/results/latest", get(latest))
        .route("/health", get(health))
        .route("/api/v1/health", get(health))
}

/// Filters of `GET /api/v1/results/latest`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatestQuery {
    /// Only this target.
    pub target_id: Option<String>,
    /// Only results from this location.
    pub location: Option<String>,
    /// Only `up` or `down`.
    pub status: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LatestResponse {
    pub results: Vec<CheckResultView>,
}

async fn latest(
    State(s): State<AppState>,
    q: Result<Query<LatestQuery>, QueryRejection>,
) -> Result<Json<LatestResponse>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    if let Some(st) = &q.status
        && st != "up"
        && st != "down"
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("status `{st}` is not allowed: use `up` or `down`"),
        ));
    }
    let results = s
        .feed
        .latest()
        .into_iter()
        .filter(|r| q.target_id.as_ref().is_none_or(|t| *t == r.target_id))
        .filter(|r| q.location.as_ref().is_none_or(|l| *l == r.location))
        .filter(|r| q.status.as_ref().is_none_or(|st| *st == r.status))
        .collect();
    Ok(Json(LatestResponse { results }))
}

/// Overall status and each component's: 200 when every dependency answers, 503 otherwise.
async fn health(State(s): State<AppState>) -> Response {
    let report = s.ctx.health.report().await;
    let code = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report)).into_response()
}

/// JSON 404 for every unknown path.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {}", uri.path()),
    )
}
