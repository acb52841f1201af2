//! Maintenance windows and escalation policies:
//!
//! - `GET /api/v1/maintenance`, `GET …/{id}`: every window, configured
//!   (`source: config`, read-only) and made through the API (`source: api`),
//!   with whether it holds now;
//! - `POST /api/v1/maintenance` creates a window (409 when the id is taken),
//!   `PUT …/{id}` creates or replaces one, `DELETE …/{id}` deletes one; a
//!   configured window's id is a 409 naming it. The body has the fields of
//!   `maintenance[]` in YAML and is checked by the same parser
//!   (`pantau_config::maintenance_api::from_json`): a refusal is a 400
//!   naming the field (`end`, `cron`, `targets[2]`). Answered by the alert
//!   engine, which owns API windows (`gateway.alert_engine_url`);
//! - `GET /api/v1/escalations`: the notifier's escalation policies as it
//!   parsed them, read-only (`gateway.notifier_url`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use pantau_core::error::ApiError;
use pantau_core::grpc::Channel;
use pantau_proto::v1 as pb;
use pantau_proto::v1::alert_engine_service_client::AlertEngineServiceClient;
use pantau_proto::v1::notifier_service_client::NotifierServiceClient;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::auth::Principal;
use crate::input::{self, bad};
use crate::view::when;

#[derive(Clone)]
struct Clients {
    engine: AlertEngineServiceClient<Channel>,
    notifier: NotifierServiceClient<Channel>,
}

pub fn router<S: Clone + Send + Sync + 'static>(ctx: &pantau_core::service::Context) -> Router<S> {
    let clients = Clients {
        engine: AlertEngineServiceClient::new(ctx.channel(&ctx.config.gateway.alert_engine_url)),
        notifier: NotifierServiceClient::new(ctx.channel(&ctx.config.gateway.notifier_url)),
    };
    Router::new()
        .route("/api/v1/maintenance", get(list).post(create))
        .route("/api/v1/maintenance/{id}", get(get_one).put(replace).delete(remove))
        .route("/api/v1/escalations", get(escalations))
        .with_state(clients)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, get_one, create, replace, remove, escalations),
    components(schemas(
        MaintenanceBody,
        MaintenanceView,
        MaintenanceListResponse,
        EscalationView,
        EscalationStepView,
        EscalationsResponse
    ))
)]
pub struct Doc;

fn engine_error(s: &tonic::Status) -> ApiError {
    crate::grpc_error(s, "alert engine")
}

/// A maintenance window as sent: the fields of `maintenance[]` in YAML.
/// Either `start`/`end` (and `repeat_every`, `repeat_until`) or `cron` and
/// `duration` (with `start` and `repeat_until` bounding it).
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceBody {
    /// Letters, digits, `-`, `_` (1–128); in a PUT, the path's id when absent.
    pub id: Option<String>,
    /// At most 200 bytes.
    pub name: Option<String>,
    /// RFC 3339.
    pub start: Option<String>,
    /// RFC 3339, after `start`; not with `cron`.
    pub end: Option<String>,
    /// Five fields (minute hour day-of-month month day-of-week), UTC.
    pub cron: Option<String>,
    /// With `cron`: how long each window lasts (1m–31d), e.g. `2h`.
    pub duration: Option<String>,
    /// `7d` weekly, `1d` daily; at least 1m and the window's length.
    pub repeat_every: Option<String>,
    /// RFC 3339: no repeat starts at or after it.
    pub repeat_until: Option<String>,
    /// Target ids (at most 1000).
    #[serde(default)]
    pub targets: Vec<String>,
    /// Targets and alerts carrying every one of these labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Router ids.
    #[serde(default)]
    pub routers: Vec<String>,
    /// Locations.
    #[serde(default)]
    pub locations: Vec<String>,
    /// `pause` (default): no check; `continue`: checks run, out of the history.
    #[schema(schema_with = checks_schema)]
    pub checks: Option<String>,
}

fn checks_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::enum_schema(&["pause", "continue"]))
}

fn source_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::enum_schema(&["config", "api"]))
}

/// A maintenance window as answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MaintenanceView {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_every: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_until: Option<String>,
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub routers: Vec<String>,
    pub locations: Vec<String>,
    #[schema(schema_with = checks_schema)]
    pub checks: &'static str,
    /// `config` (read-only) or `api`.
    #[schema(schema_with = source_schema)]
    pub source: &'static str,
    pub created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Whether it holds now.
    pub active: bool,
}

fn span(d: Option<&prost_types::Duration>) -> Option<String> {
    pantau_config::maintenance_api::view_duration(d).map(pantau_config::duration::format)
}

impl From<pb::MaintenanceWindow> for MaintenanceView {
    fn from(w: pb::MaintenanceWindow) -> Self {
        Self {
            name: Some(w.name).filter(|n| !n.is_empty()),
            start: when(w.start.as_ref()),
            end: when(w.end.as_ref()),
            cron: Some(w.cron).filter(|c| !c.is_empty()),
            duration: span(w.duration.as_ref()),
            repeat_every: span(w.repeat_every.as_ref()),
            repeat_until: when(w.repeat_until.as_ref()),
            targets: w.targets,
            labels: w.labels.into_iter().collect(),
            routers: w.routers,
            locations: w.locations,
            checks: if w.checks == pb::MaintenanceChecks::Continue as i32 {
                "continue"
            } else {
                "pause"
            },
            source: if w.source == pb::MaintenanceSource::Config as i32 {
                "config"
            } else {
                "api"
            },
            created_by: w.created_by,
            updated_at: when(w.updated_at.as_ref()),
            active: w.active,
            id: w.id,
        }
    }
}

/// Every maintenance window.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MaintenanceListResponse {
    pub windows: Vec<MaintenanceView>,
}

#[utoipa::path(get, path = "/api/v1/maintenance", tag = "maintenance", responses((status = 200, body = MaintenanceListResponse)))]
async fn list(State(mut c): State<Clients>) -> Result<Json<MaintenanceListResponse>, ApiError> {
    let list = c
        .engine
        .list_maintenance_windows(pb::ListMaintenanceWindowsRequest {})
        .await
        .map_err(|s| engine_error(&s))?
        .into_inner()
        .windows;
    Ok(Json(MaintenanceListResponse {
        windows: list.into_iter().map(MaintenanceView::from).collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/maintenance/{id}", tag = "maintenance", params(("id" = String, Path)), responses((status = 200, body = MaintenanceView), (status = 404)))]
async fn get_one(State(mut c): State<Clients>, Path(id): Path<String>) -> Result<Json<MaintenanceView>, ApiError> {
    let id = input::token("maintenance window id", id)?;
    let w = c
        .engine
        .get_maintenance_window(pb::GetMaintenanceWindowRequest { id })
        .await
        .map_err(|s| engine_error(&s))?
        .into_inner();
    Ok(Json(w.into()))
}

/// The body as a window, checked by the YAML parser; `path_id` fills an
/// absent `id` and must equal a present one.
pub fn parse_body(body: &[u8], path_id: Option<&str>) -> Result<pantau_config::MaintenanceWindow, ApiError> {
    let refuse = |i: pantau_config::Invalid| bad("invalid_body", i.to_string());
    let mut value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        bad(
            "invalid_body",
            format!("the body is not JSON: {}", crate::api::quote_spans(&e.to_string())),
        )
    })?;
    let Some(object) = value.as_object_mut() else {
        return Err(bad(
            "invalid_body",
            "`body`: must be a JSON object (a maintenance window)",
        ));
    };
    if let Some(path_id) = path_id {
        match object.get("id") {
            None | Some(serde_json::Value::Null) => {
                object.insert("id".to_owned(), serde_json::Value::String(path_id.to_owned()));
            }
            Some(serde_json::Value::String(s)) if s == path_id => {}
            Some(_) => {
                return Err(bad(
                    "invalid_body",
                    format!("`id`: must be the path's id `{path_id}` (or absent)"),
                ));
            }
        }
    }
    let text = serde_json::to_vec(&value).unwrap_or_default();
    pantau_config::maintenance_api::from_json(&text).map_err(refuse)
}

async fn put(
    c: &mut Clients,
    principal: Option<Extension<Principal>>,
    window: &pantau_config::MaintenanceWindow,
    create_only: bool,
) -> Result<MaintenanceView, ApiError> {
    let actor = principal.map_or_else(|| "anonymous".to_owned(), |p| p.0.subject);
    let w = c
        .engine
        .put_maintenance_window(pb::PutMaintenanceWindowRequest {
            window: Some(pantau_config::maintenance_api::to_proto(window)),
            create_only,
            actor,
        })
        .await
        .map_err(|s| engine_error(&s))?
        .into_inner();
    Ok(w.into())
}

#[utoipa::path(post, path = "/api/v1/maintenance", tag = "maintenance", request_body = MaintenanceBody, responses((status = 201, body = MaintenanceView), (status = 400, description = "bad input, naming the field"), (status = 409, description = "the id is taken (by a configured window or another API window)")))]
async fn create(
    State(mut c): State<Clients>,
    principal: Option<Extension<Principal>>,
    body: Bytes,
) -> Result<(StatusCode, Json<MaintenanceView>), ApiError> {
    let window = parse_body(&body, None)?;
    let view = put(&mut c, principal, &window, true).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(put, path = "/api/v1/maintenance/{id}", tag = "maintenance", params(("id" = String, Path)), request_body = MaintenanceBody, responses((status = 200, body = MaintenanceView), (status = 400, description = "bad input, naming the field"), (status = 409, description = "a configured window has this id")))]
async fn replace(
    State(mut c): State<Clients>,
    principal: Option<Extension<Principal>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<MaintenanceView>, ApiError> {
    let id = input::token("maintenance window id", id)?;
    let window = parse_body(&body, Some(&id))?;
    Ok(Json(put(&mut c, principal, &window, false).await?))
}

#[utoipa::path(delete, path = "/api/v1/maintenance/{id}", tag = "maintenance", params(("id" = String, Path)), responses((status = 200, body = MaintenanceView), (status = 404), (status = 409, description = "a configured window has this id")))]
async fn remove(
    State(mut c): State<Clients>,
    principal: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> Result<Json<MaintenanceView>, ApiError> {
    let id = input::token("maintenance window id", id)?;
    let actor = principal.map_or_else(|| "anonymous".to_owned(), |p| p.0.subject);
    let w = c
        .engine
        .delete_maintenance_window(pb::DeleteMaintenanceWindowRequest { id, actor })
        .await
        .map_err(|s| engine_error(&s))?
        .into_inner();
    Ok(Json(w.into()))
}

/// One step of a policy.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EscalationStepView {
    /// Since the firing, e.g. `30m`.
    pub after: String,
    pub channels: Vec<String>,
}

/// An escalation policy of `notifier.escalations`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EscalationView {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_every: Option<String>,
    pub steps: Vec<EscalationStepView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remind_every: Option<String>,
    /// Indexes in `notifier.routes` of the routes naming it.
    pub routes: Vec<u32>,
}

/// Every escalation policy.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EscalationsResponse {
    pub policies: Vec<EscalationView>,
}

#[utoipa::path(get, path = "/api/v1/escalations", tag = "escalations", responses((status = 200, body = EscalationsResponse)))]
async fn escalations(State(mut c): State<Clients>) -> Result<Json<EscalationsResponse>, ApiError> {
    let list = c
        .notifier
        .list_escalations(pb::ListEscalationsRequest {})
        .await
        .map_err(|s| crate::grpc_error(&s, "notifier"))?
        .into_inner()
        .policies;
    Ok(Json(EscalationsResponse {
        policies: list
            .into_iter()
            .map(|p| EscalationView {
                name: p.name,
                repeat_every: span(p.repeat_every.as_ref()),
                steps: p
                    .steps
                    .into_iter()
                    .map(|s| EscalationStepView {
                        after: span(s.after.as_ref()).unwrap_or_default(),
                        channels: s.channels,
                    })
                    .collect(),
                remind_every: span(p.remind_every.as_ref()),
                routes: p.routes,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pantau_core::error::ErrorCode;

    #[test]
    fn hostile_bodies_are_400s_naming_the_field() {
        let huge = "z".repeat(1 << 20);
        let cases: Vec<(String, &str)> = vec![
            (
                r#"{"id":"a","start":"2026-12-05T02:00:00Z","end":"2026-12-05T01:00:00Z","targets":["x"]}"#.into(),
                "`end`",
            ),
            (
                r#"{"id":"a","cron":"0 0 30 2 *","duration":"1h","targets":["x"]}"#.into(),
                "`cron`",
            ),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":"1h","end":"2026-12-05T01:00:00Z","targets":["x"]}"#.into(),
                "`end`",
            ),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":"1h","repeat_every":"1d","targets":["x"]}"#.into(),
                "`repeat_every`",
            ),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":"1h","targets":["x","y","z z"]}"#.into(),
                "`targets[2]`",
            ),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":"1h","targets":["x"],"checks":"halt"}"#.into(),
                "`checks`",
            ),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":"1h","targets":["x"],"colour":"red"}"#.into(),
                "colour",
            ),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":1,"targets":["x"]}"#.into(),
                "`duration`",
            ),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":"1h","targets":{"x":1}}"#.into(),
                "`targets`",
            ),
            (
                format!(r#"{{"id":"a","cron":"{huge}","duration":"1h","targets":["x"]}}"#),
                "`cron`",
            ),
            (
                format!(r#"{{"id":"{huge}","cron":"0 2 * * *","duration":"1h","targets":["x"]}}"#),
                "`id`",
            ),
            ("[1,2]".into(), "`body`"),
            ("\u{0}garbage".into(), "not JSON"),
            (String::new(), "not JSON"),
        ];
        for (body, names) in cases {
            let e = parse_body(body.as_bytes(), None).expect_err(&body[..body.len().min(60)]);
            assert_eq!(e.code, ErrorCode::InvalidArgument);
            assert!(e.message.contains(names), "{names}: {}", e.message);
            assert!(e.message.len() < 1000, "quoted briefly: {}", e.message.len());
        }
        // A PUT's path id fills the body's, and must agree with it.
        let ok = r#"{"cron":"0 2 * * *","duration":"1h","targets":["x"]}"#;
        assert_eq!(parse_body(ok.as_bytes(), Some("p")).unwrap().id, "p");
        let other = r#"{"id":"q","cron":"0 2 * * *","duration":"1h","targets":["x"]}"#;
        assert!(
            parse_body(other.as_bytes(), Some("p"))
                .unwrap_err()
                .message
                .contains("`id`")
        );
    }
}
