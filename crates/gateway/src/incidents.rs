//! Incident routes, answered by the alert engine over gRPC
//! (`gateway.alert_engine_url`), and the incident views REST and the
//! WebSocket hub share:
//!
//! - `GET  /api/v1/incidents` with filters `state` (comma-separated: open,
//!   acknowledged, resolved), `since` (RFC 3339: opened at or after),
//!   `limit` and `page_token`;
//! - `GET  /api/v1/incidents/{id}`: its alerts and its timeline;
//! - `POST /api/v1/incidents/{id}/acknowledge`, body `{"actor", "comment"}`
//!   (optional): acknowledges it and each of its open alerts;
//! - `POST /api/v1/incidents/{id}/comments`, body `{"text": "…"}` (1 to
//!   4,096 characters).
//!
//! Writes are audited by the auth guard like every write; the acting user is
//! the token's subject.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use pantau_core::error::ApiError;
use pantau_core::grpc::Channel;
use pantau_core::time::to_timestamp;
use pantau_proto::v1 as pb;
use pantau_proto::v1::alert_engine_service_client::AlertEngineServiceClient;
use serde::{Deserialize, Serialize};

use crate::alerts::{ActBody, act_body, anonymous};
use crate::auth::Principal;
use crate::input::{self, bad};
use crate::labels::{IncidentEntryKind, IncidentState, Severity};
use crate::view::{AlertView, when};

/// Longest comment, in characters (the alert engine's bound).
pub const MAX_COMMENT: usize = 4096;

type Client = AlertEngineServiceClient<Channel>;

/// The incident routes, with their own client of the alert engine.
pub fn router<S: Clone + Send + Sync + 'static>(ctx: &pantau_core::service::Context) -> Router<S> {
    let client = AlertEngineServiceClient::new(ctx.channel(&ctx.config.gateway.alert_engine_url));
    Router::new()
        .route("/api/v1/incidents", get(list))
        .route("/api/v1/incidents/{id}", get(get_one))
        .route("/api/v1/incidents/{id}/acknowledge", post(acknowledge))
        .route("/api/v1/incidents/{id}/comments", post(comment))
        .with_state(client)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, get_one, acknowledge, comment),
    components(schemas(
        IncidentView,
        IncidentEntryView,
        IncidentListResponse,
        CommentBody,
        IncidentEventView
    ))
)]
pub struct Doc;

fn backend(status: &tonic::Status) -> ApiError {
    crate::grpc_error(status, "alert engine")
}

/// An incident as JSON: alerts that share a root cause or a grouping key.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct IncidentView {
    pub id: String,
    pub title: String,
    pub state: IncidentState,
    /// The highest severity of its alerts.
    pub severity: Severity,
    /// `depends:<dependency>` or `group:<label=value,…>`.
    pub group_key: String,
    /// The dependency its alerts share (`target:uplink`); empty for a grouping key.
    pub root_cause: String,
    /// RFC 3339.
    pub opened_at: Option<String>,
    pub updated_at: Option<String>,
    pub acknowledged_at: Option<String>,
    pub acknowledged_by: String,
    pub resolved_at: Option<String>,
    /// Every alert that joined it.
    pub alerts: u32,
    /// Those still open.
    pub open_alerts: u32,
    /// Only `GET /api/v1/incidents/{id}`: its alerts (the first 1,000).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<AlertView>,
    /// Only `GET /api/v1/incidents/{id}`: its latest 1,000 entries, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<IncidentEntryView>,
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct IncidentEntryView {
    pub kind: IncidentEntryKind,
    /// RFC 3339.
    pub at: Option<String>,
    /// Who acknowledged or commented; empty for the engine.
    pub actor: String,
    /// The alert that joined, left, was notified or whose notification was
    /// delivered (`delivered`) or given up (`delivery_failed`) via a channel.
    pub alert_id: String,
    pub text: String,
}

/// The WebSocket's `incident` event: the incident after the change, and the
/// change (its new timeline entry).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct IncidentEventView {
    #[serde(flatten)]
    pub incident: IncidentView,
    pub entry: Option<IncidentEntryView>,
}

impl From<&pb::IncidentEntry> for IncidentEntryView {
    fn from(e: &pb::IncidentEntry) -> Self {
        Self {
            kind: IncidentEntryKind::from(e.kind),
            at: when(e.at.as_ref()),
            actor: e.actor.clone(),
            alert_id: e.alert_id.clone(),
            text: e.text.clone(),
        }
    }
}

impl From<pb::Incident> for IncidentView {
    fn from(i: pb::Incident) -> Self {
        Self {
            state: IncidentState::from(i.state),
            severity: Severity::from(i.severity),
            opened_at: when(i.opened_at.as_ref()),
            updated_at: when(i.updated_at.as_ref()),
            acknowledged_at: when(i.acknowledged_at.as_ref()),
            resolved_at: when(i.resolved_at.as_ref()),
            timeline: i.timeline.iter().map(IncidentEntryView::from).collect(),
            members: i.members.into_iter().map(AlertView::from).collect(),
            id: i.id,
            title: i.title,
            group_key: i.group_key,
            root_cause: i.root_cause,
            acknowledged_by: i.acknowledged_by,
            alerts: i.alerts,
            open_alerts: i.open_alerts,
        }
    }
}

impl From<&pb::IncidentEvent> for IncidentEventView {
    fn from(e: &pb::IncidentEvent) -> Self {
        Self {
            incident: IncidentView {
                id: e.incident_id.clone(),
                title: e.title.clone(),
                state: IncidentState::from(e.state),
                severity: Severity::from(e.severity),
                group_key: e.group_key.clone(),
                root_cause: e.root_cause.clone(),
                opened_at: when(e.opened_at.as_ref()),
                updated_at: e.entry.as_ref().and_then(|x| when(x.at.as_ref())),
                acknowledged_at: None,
                acknowledged_by: String::new(),
                resolved_at: None,
                alerts: e.alerts,
                open_alerts: e.open_alerts,
                members: Vec::new(),
                timeline: Vec::new(),
            },
            entry: e.entry.as_ref().map(IncidentEntryView::from),
        }
    }
}

/// Filters of `GET /api/v1/incidents`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Comma-separated: open, acknowledged, resolved.
    #[param(schema_with = states_schema)]
    pub state: Option<String>,
    /// RFC 3339: incidents opened at or after.
    #[param(schema_with = input_time)]
    pub since: Option<String>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_page_token` of the previous page.
    #[param(pattern = "^[0-9]{1,19}$")]
    pub page_token: Option<String>,
}

fn states_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    let choices = [
        IncidentState::Open,
        IncidentState::Acknowledged,
        IncidentState::Resolved,
    ]
    .map(IncidentState::as_str);
    input::schema(input::pattern_schema(
        input::list_pattern(&choices),
        "open, acknowledged or resolved, comma-separated",
    ))
}

fn input_time() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::time_schema())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentListResponse {
    pub incidents: Vec<IncidentView>,
    /// Pass as `page_token` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// The incident id of a path, checked before any call (quoted briefly when refused).
fn incident_id(id: String) -> Result<String, ApiError> {
    if id.len() > 128 {
        return Err(bad(
            "invalid_path",
            format!(
                "incident id `{}` is not valid: use 1–128 letters, digits, `-` or `_`",
                pantau_config::types::quote(&id)
            ),
        ));
    }
    input::token("incident id", id)
}

/// Comma-separated states, each named when refused.
fn states(raw: Option<&str>) -> Result<Vec<i32>, ApiError> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    raw.split(',')
        .map(|part| {
            IncidentState::parse(part).map(IncidentState::to_proto).ok_or_else(|| {
                bad(
                    "invalid_query",
                    format!(
                        "state `{}` is not allowed: use {}, comma-separated",
                        pantau_config::types::quote(part),
                        IncidentState::choices()
                    ),
                )
            })
        })
        .collect()
}

#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(ListQuery), responses((status = 200, body = IncidentListResponse), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 503, description = "the alert engine is unavailable")))]
async fn list(
    State(mut c): State<Client>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<IncidentListResponse>, ApiError> {
    let Query(q) = q.map_err(|e| crate::api::bad_query(&e))?;
    let states = states(q.state.as_deref())?;
    if let Some(l) = q.limit
        && !(1..=500).contains(&l)
    {
        return Err(bad(
            "invalid_query",
            format!("limit `{l}` is not allowed: use 1 to 500"),
        ));
    }
    let since = q
        .since
        .as_deref()
        .map(|t| input::time("since", t).map(to_timestamp))
        .transpose()?;
    let page_token = match q.page_token {
        None => String::new(),
        Some(t) => {
            let digits = !t.is_empty() && t.len() <= 19 && t.bytes().all(|b| b.is_ascii_digit());
            if !digits {
                return Err(bad(
                    "invalid_query",
                    format!(
                        "page_token `{}` is not one this server handed out",
                        pantau_config::types::quote(&t)
                    ),
                ));
            }
            t
        }
    };
    let r = c
        .list_incidents(pb::ListIncidentsRequest {
            states,
            since,
            page_size: q.limit.unwrap_or_default(),
            page_token,
        })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(IncidentListResponse {
        incidents: r.incidents.into_iter().map(IncidentView::from).collect(),
        next_page_token: (!r.next_page_token.is_empty()).then_some(r.next_page_token),
    }))
}

#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", params(("id" = String, Path, description = "The incident id")), responses((status = 200, body = IncidentView), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 404), (status = 503, description = "the alert engine is unavailable")))]
async fn get_one(State(mut c): State<Client>, Path(id): Path<String>) -> Result<Json<IncidentView>, ApiError> {
    let id = incident_id(id)?;
    let i = c
        .get_incident(pb::GetIncidentRequest { id })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(i.into()))
}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/acknowledge", tag = "incidents", params(("id" = String, Path, description = "The incident id")), request_body(content = Option<ActBody>, description = "optional"), responses((status = 200, body = IncidentView), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 404), (status = 409, description = "already acknowledged or resolved"), (status = 503, description = "the alert engine is unavailable")))]
async fn acknowledge(
    State(mut c): State<Client>,
    Path(id): Path<String>,
    principal: Option<Extension<Principal>>,
    body: axum::body::Bytes,
) -> Result<Json<IncidentView>, ApiError> {
    let id = incident_id(id)?;
    let (actor, comment) = act_body(&principal.map_or_else(anonymous, |e| e.0), &body)?;
    let i = c
        .acknowledge_incident(pb::AcknowledgeIncidentRequest { id, actor, comment })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(i.into()))
}

/// Body of `POST /api/v1/incidents/{id}/comments`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// Who comments. With authentication on, the token's subject is
    /// recorded instead; with it off, this name (default `anonymous`).
    #[serde(default)]
    pub actor: Option<String>,
    /// 1 to 4,096 characters, not all blank; newlines and tabs are the only
    /// control characters allowed.
    #[schema(schema_with = text_schema)]
    pub text: String,
}

fn text_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::input::schema(crate::input::text_schema(MAX_COMMENT, true, true))
}

/// A 400 naming `field` when `text` is too long, holds control characters,
/// or is empty where it is required.
pub(crate) fn check_text(field: &str, text: &str, required: bool) -> Result<(), ApiError> {
    if required && text.trim().is_empty() {
        return Err(bad(
            "invalid_body",
            format!("`{field}` is required: 1 to {MAX_COMMENT} characters"),
        ));
    }
    let n = text.chars().count();
    if n > MAX_COMMENT {
        return Err(bad(
            "invalid_body",
            format!("`{field}` is {n} characters long; at most {MAX_COMMENT} are allowed"),
        ));
    }
    if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
        return Err(bad(
            "invalid_body",
            format!("`{field}` holds control characters; only newlines and tabs are allowed"),
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/comments", tag = "incidents", params(("id" = String, Path, description = "The incident id")), request_body = CommentBody, responses((status = 200, body = IncidentView), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 404), (status = 503, description = "the alert engine is unavailable")))]
async fn comment(
    State(mut c): State<Client>,
    Path(id): Path<String>,
    principal: Option<Extension<Principal>>,
    body: Result<Json<CommentBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<IncidentView>, ApiError> {
    let id = incident_id(id)?;
    let Json(b) = body.map_err(|e| crate::api::invalid_body(&e))?;
    check_text("text", &b.text, true)?;
    let principal = principal.map_or_else(anonymous, |e| e.0);
    let actor = if principal.subject == "anonymous" {
        b.actor
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| "anonymous".to_owned())
    } else {
        principal.subject
    };
    let i = c
        .comment_incident(pb::CommentIncidentRequest {
            id,
            actor,
            text: b.text,
        })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(i.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_input_is_refused_naming_the_field() {
        let e = incident_id("x".repeat(100_000)).unwrap_err();
        assert!(e.message.contains("incident id"), "{}", e.message);
        assert!(e.message.len() < 400, "a huge id is quoted briefly");
        assert!(incident_id("../etc".into()).is_err());
        assert!(incident_id("inc-abc_1-2".into()).is_ok());
        let e = states(Some("open,bogus")).unwrap_err();
        assert!(e.message.contains("state `bogus`"), "{}", e.message);
        assert!(states(Some("")).is_err(), "an empty state is no state");
        assert!(states(Some(&"y".repeat(10_000))).unwrap_err().message.len() < 400);
        assert_eq!(
            states(Some("open,acknowledged,resolved")).unwrap(),
            [
                pb::IncidentState::Open as i32,
                pb::IncidentState::Acknowledged as i32,
                pb::IncidentState::Resolved as i32
            ]
        );
        assert!(check_text("text", "", true).unwrap_err().message.contains("`text`"));
        assert!(check_text("comment", "", false).is_ok());
        let e = check_text("text", &"z".repeat(MAX_COMMENT + 1), true).unwrap_err();
        assert!(e.message.contains("`text`") && e.message.len() < 200, "{}", e.message);
        assert!(check_text("text", "nul\u{0}", true).is_err());
        assert!(check_text("text", "two\nlines", true).is_ok());
    }

    #[test]
    fn an_unknown_state_or_kind_from_the_engine_reads_as_the_fallback() {
        let v = IncidentView::from(pb::Incident {
            state: 99,
            severity: -1,
            timeline: vec![pb::IncidentEntry {
                kind: 42,
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(v.state, IncidentState::Unknown);
        assert_eq!(v.severity, Severity::Unknown);
        assert_eq!(v.timeline[0].kind, IncidentEntryKind::Unspecified);
    }
}
