//! Push (heartbeat) monitors: `POST /api/v1/push/{token}` (also `GET`, for
//! devices that can only fetch a URL), optionally with `?status=up|down`,
//! `&msg=…` and `&ping=<ms>`, or the same fields as a JSON body. Forwarded to
//! the collector's `CollectorService.Push`. The token is the credential, so
//! no other authentication applies, and it is never logged or echoed.

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::post;
use pantau_core::error::{ApiError, ErrorCode};
use pantau_proto::v1::PushRequest;
use pantau_proto::v1::collector_service_client::CollectorServiceClient;
use serde::Deserialize;
use serde::Serialize;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/push/{token}", post(push).get(push_get))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(push, push_get), components(schemas(PushFields, Pushed)))]
pub struct Doc;

/// A push recorded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pushed {
    /// Always true.
    pub ok: bool,
    /// The push target this token belongs to.
    pub target_id: String,
}

fn up_down_or_null() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    use crate::labels::CheckStatus;
    let mut o = crate::input::or_null(crate::input::enum_schema(&[
        CheckStatus::Up.as_str(),
        CheckStatus::Down.as_str(),
    ]));
    if let Some(e) = o.enum_values.as_mut() {
        e.push(serde_json::Value::Null);
    }
    crate::input::schema(o)
}

fn up_or_down() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    use crate::labels::CheckStatus;
    crate::input::schema(crate::input::enum_schema(&[
        CheckStatus::Up.as_str(),
        CheckStatus::Down.as_str(),
    ]))
}

/// The optional fields of a push.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PushFields {
    /// `up` (the default) or `down`.
    #[param(schema_with = up_or_down)]
    #[schema(schema_with = up_down_or_null)]
    pub status: Option<String>,
    /// A message shown with the result.
    pub msg: Option<String>,
    /// A latency the pusher measured, in milliseconds (at most a day).
    #[param(minimum = 0, maximum = 86_400_000)]
    #[schema(minimum = 0, maximum = 86_400_000)]
    pub ping: Option<f64>,
}

/// Records a push (heartbeat), for devices that can only fetch a URL.
#[utoipa::path(get, path = "/api/v1/push/{token}", tag = "push",
    params(("token" = String, Path, description = "The push target's token"), PushFields),
    responses((status = 200, body = Pushed), (status = 404, description = "no push target has this token")))]
async fn push_get(
    s: State<AppState>,
    token: Path<String>,
    query: Result<Query<PushFields>, QueryRejection>,
) -> Result<Json<Pushed>, ApiError> {
    push(s, token, query, axum::body::Bytes::new()).await
}

/// Records a push (heartbeat) for the target whose token this is.
#[utoipa::path(post, path = "/api/v1/push/{token}", tag = "push",
    params(("token" = String, Path, description = "The push target's token"), PushFields),
    request_body(content = Option<PushFields>, description = "optional; the same fields as the query, which it overrides"),
    responses((status = 200, body = Pushed), (status = 404, description = "no push target has this token")))]
async fn push(
    State(s): State<AppState>,
    Path(token): Path<String>,
    query: Result<Query<PushFields>, QueryRejection>,
    body: axum::body::Bytes,
) -> Result<Json<Pushed>, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::InvalidArgument, m).reason("invalid_push");
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
    let text = body.trim_ascii();
    let b: PushFields = if text.is_empty() || text == b"null" {
        PushFields::default()
    } else {
        Json::<PushFields>::from_bytes(&body)
            .map_err(|e| bad(format!("the body is not a valid push: {}", e.body_text())))?
            .0
    };
    let status = b.status.or(q.status).unwrap_or_default();
    if !status.is_empty() && crate::labels::CheckStatus::parse(&status).is_none() {
        return Err(bad(format!("status `{status}` is not allowed: use `up` or `down`")));
    }
    let req = PushRequest {
        token,
        status,
        message: b.msg.or(q.msg).unwrap_or_default(),
        latency_ms: b.ping.or(q.ping).unwrap_or_default(),
    };
    let mut client = CollectorServiceClient::new(s.collector.clone());
    match client.push(req).await {
        Ok(r) => Ok(Json(Pushed {
            ok: true,
            target_id: r.into_inner().target_id,
        })),
        Err(status) => Err(crate::grpc_error(&status, "collector")),
    }
}
