//! Push (heartbeat) monitors: `POST /api/v1/push/{token}` (also `GET`, for
//! devices that can only fetch a URL), optionally with `?status=up|down`,
//! `&msg=…` and `&ping=<ms>`, or the same fields as a JSON body. Forwarded to
//! the collector's `CollectorService.Push`. The token is the credential, so
//! no other authentication applies, and it is never logged or echoed.

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use pantau_core::health::ApiError;
use pantau_proto::v1::PushRequest;
use pantau_proto::v1::collector_service_client::CollectorServiceClient;
use serde::Deserialize;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/push/{token}", post(push).get(push))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(push), components(schemas(PushFields)))]
pub struct Doc;

/// The optional fields of a push.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PushFields {
    /// `up` (default) or `down`.
    pub status: Option<String>,
    /// A message shown with the result.
    pub msg: Option<String>,
    /// A latency the pusher measured, in milliseconds.
    pub ping: Option<f64>,
}

/// Records a push (heartbeat) for the target whose token this is.
#[utoipa::path(post, path = "/api/v1/push/{token}", tag = "push", security(()),
    params(("token" = String, Path, description = "The push target's token"), PushFields),
    request_body(content = Option<PushFields>, description = "optional; the same fields as the query"),
    responses((status = 200, description = "recorded"), (status = 400, description = "bad field, naming it"),
        (status = 404, description = "no push target has this token")))]
async fn push(
    State(s): State<AppState>,
    Path(token): Path<String>,
    query: Result<Query<PushFields>, QueryRejection>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_push", m);
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
    let b: PushFields = if body.iter().all(u8::is_ascii_whitespace) {
        PushFields::default()
    } else {
        Json::<PushFields>::from_bytes(&body)
            .map_err(|e| bad(format!("the body is not a valid push: {}", e.body_text())))?
            .0
    };
    let req = PushRequest {
        token,
        status: b.status.or(q.status).unwrap_or_default(),
        message: b.msg.or(q.msg).unwrap_or_default(),
        latency_ms: b.ping.or(q.ping).unwrap_or_default(),
    };
    let mut client = CollectorServiceClient::new(s.collector.clone());
    match client.push(req).await {
        Ok(r) => Ok(Json(
            serde_json::json!({"ok": true, "target_id": r.into_inner().target_id}),
        )),
        Err(status) => Err(crate::grpc_error(&status, "collector")),
    }
}
