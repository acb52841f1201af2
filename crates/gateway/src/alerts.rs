//! Alert routes, answered by the alert engine over gRPC
//! (`gateway.alert_engine_url`):
//!
//! - `GET  /api/v1/monitoring/alerts` with filters `state`, `severity` (each
//!   comma-separated), `source`, `resource`, `rule_id`, `acknowledged`,
//!   `since`/`until` (RFC 3339), `limit`, and `offset` or `page_token`;
//! - `GET  /api/v1/monitoring/alerts/{id}`, with the audit trail;
//! - `POST /api/v1/monitoring/alerts/{id}/acknowledge` and `…/resolve`, body
//!   `{"actor": "…", "comment": "…"}`;
//! - `GET  /api/v1/monitoring/alerts/rules`, `POST …/rules` (create or replace;
//!   a rule that does not parse is a 400 naming the position and reason) and
//!   `DELETE …/rules/{id}`;
//! - `GET /api/v1/monitoring/silences[?include_expired=true]`, `POST …/silences`
//!   (`{"matchers": [{"label", "value", "negate"}], "starts_at", "ends_at",
//!   "created_by", "comment"}`) and `DELETE …/silences/{id}` (ends it now).

use std::time::SystemTime;

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Extension, Json};
use pantau_config::{AlertRuleConfig, AlertSeverity};
use pantau_core::health::ApiError;
use pantau_core::time::{from_duration, from_timestamp, rfc3339, to_duration, to_timestamp};
use pantau_proto::v1 as pb;
use pantau_proto::v1::alert_engine_service_client::AlertEngineServiceClient;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use crate::auth::Principal;

fn anonymous() -> Principal {
    Principal {
        subject: "anonymous".to_owned(),
        scopes: crate::auth::Scopes::default(),
    }
}

/// The alert routes, with their own client of the alert engine.
pub fn router<S: Clone + Send + Sync + 'static>(ctx: &pantau_core::service::Context) -> Router<S> {
    let client = AlertEngineServiceClient::new(crate::lazy_channel(&ctx.config.gateway.alert_engine_url));
    Router::new()
        .route("/api/v1/monitoring/alerts", get(list))
        .route("/api/v1/monitoring/alerts/rules", get(list_rules).post(upsert_rule))
        .route("/api/v1/monitoring/alerts/rules/{id}", delete(delete_rule))
        .route("/api/v1/monitoring/alerts/{id}", get(get_one))
        .route("/api/v1/monitoring/alerts/{id}/acknowledge", post(acknowledge))
        .route("/api/v1/monitoring/alerts/{id}/resolve", post(resolve))
        .route("/api/v1/monitoring/silences", get(list_silences).post(create_silence))
        .route("/api/v1/monitoring/silences/{id}", delete(expire_silence))
        .with_state(client)
}

type Client = AlertEngineServiceClient<Channel>;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list,
        get_one,
        acknowledge,
        resolve,
        list_rules,
        upsert_rule,
        delete_rule,
        list_silences,
        create_silence,
        expire_silence
    ),
    components(schemas(
        AlertView,
        TransitionView,
        ListResponse,
        ActBody,
        RuleView,
        MatcherBody,
        SilenceBody,
        SilenceView
    ))
)]
pub struct Doc;

fn backend(status: &tonic::Status) -> ApiError {
    crate::grpc_error(status, "alert engine")
}

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// One transition of an alert.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransitionView {
    pub state: &'static str,
    pub at: Option<String>,
    pub actor: String,
    pub comment: String,
}

/// An alert as JSON.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    pub id: String,
    pub fingerprint: String,
    pub rule_id: String,
    pub rule_name: String,
    pub state: &'static str,
    pub severity: &'static str,
    pub summary: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub source: String,
    pub resource: String,
    pub value: String,
    pub started_at: Option<String>,
    pub updated_at: Option<String>,
    pub acknowledged: bool,
    pub acknowledged_at: Option<String>,
    pub acknowledged_by: String,
    pub acknowledge_comment: String,
    pub resolved_at: Option<String>,
    pub resolved_by: String,
    /// `silence:<id>` or `depends:<alert id>` while nobody is notified.
    pub suppressed_by: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<TransitionView>,
}

fn state_name(s: i32) -> &'static str {
    match pb::AlertState::try_from(s) {
        Ok(pb::AlertState::Firing) => "firing",
        Ok(pb::AlertState::Acknowledged) => "acknowledged",
        Ok(pb::AlertState::Resolved) => "resolved",
        _ => "unknown",
    }
}

fn severity_name(s: i32) -> &'static str {
    match pb::Severity::try_from(s) {
        Ok(pb::Severity::Info) => "info",
        Ok(pb::Severity::Warning) => "warning",
        Ok(pb::Severity::Critical) => "critical",
        _ => "unknown",
    }
}

fn when(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(from_timestamp).map(rfc3339)
}

impl From<pb::Alert> for AlertView {
    fn from(a: pb::Alert) -> Self {
        Self {
            state: state_name(a.state),
            severity: severity_name(a.severity),
            started_at: when(a.started_at.as_ref()),
            updated_at: when(a.updated_at.as_ref()),
            acknowledged: a.acknowledged_at.is_some(),
            acknowledged_at: when(a.acknowledged_at.as_ref()),
            resolved_at: when(a.resolved_at.as_ref()),
            transitions: a
                .transitions
                .iter()
                .map(|t| TransitionView {
                    state: state_name(t.state),
                    at: when(t.at.as_ref()),
                    actor: t.actor.clone(),
                    comment: t.comment.clone(),
                })
                .collect(),
            labels: a.labels.into_iter().collect(),
            id: a.id,
            fingerprint: a.fingerprint,
            rule_id: a.rule_id,
            rule_name: a.rule_name,
            summary: a.summary,
            source: a.source,
            resource: a.resource,
            value: a.value,
            acknowledged_by: a.acknowledged_by,
            acknowledge_comment: a.acknowledge_comment,
            resolved_by: a.resolved_by,
            suppressed_by: a.suppressed_by,
        }
    }
}

/// Filters of `GET /api/v1/monitoring/alerts`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Comma-separated: firing, acknowledged, resolved.
    pub state: Option<String>,
    /// Comma-separated: info, warning, critical.
    pub severity: Option<String>,
    pub source: Option<String>,
    pub resource: Option<String>,
    pub rule_id: Option<String>,
    pub acknowledged: Option<bool>,
    /// RFC 3339: alerts that started at or after.
    pub since: Option<String>,
    /// RFC 3339: alerts that started before.
    pub until: Option<String>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    pub page_token: Option<String>,
    /// Skip this many alerts (the original design's paging; `page_token` is the same offset, opaque).
    pub offset: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListResponse {
    pub alerts: Vec<AlertView>,
    /// Pass as `page_token` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

fn list_of<T>(
    field: &str,
    raw: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    allowed: &str,
) -> Result<Vec<T>, ApiError> {
    let mut out = Vec::new();
    for part in raw
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        out.push(parse(part).ok_or_else(|| {
            bad(
                "invalid_query",
                format!("{field} `{part}` is not allowed: use {allowed}"),
            )
        })?);
    }
    Ok(out)
}

fn time(field: &str, raw: Option<&str>) -> Result<Option<prost_types::Timestamp>, ApiError> {
    raw.map(|t| {
        humantime::parse_rfc3339_weak(t)
            .map(|t: SystemTime| to_timestamp(t))
            .map_err(|_| {
                bad(
                    "invalid_query",
                    format!("{field} `{t}` is not an RFC 3339 time such as 2026-11-23T10:00:00Z"),
                )
            })
    })
    .transpose()
}

#[utoipa::path(get, path = "/api/v1/monitoring/alerts", tag = "alerts", params(ListQuery), responses((status = 200, body = ListResponse), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 503, description = "the alert engine is unavailable")))]
async fn list(
    State(mut c): State<Client>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ListResponse>, ApiError> {
    let Query(q) = q.map_err(|e| crate::api::bad_query(&e))?;
    let states = list_of(
        "state",
        q.state.as_deref(),
        |s| match s {
            "firing" => Some(pb::AlertState::Firing as i32),
            "acknowledged" => Some(pb::AlertState::Acknowledged as i32),
            "resolved" => Some(pb::AlertState::Resolved as i32),
            _ => None,
        },
        "firing, acknowledged or resolved",
    )?;
    let severities = list_of(
        "severity",
        q.severity.as_deref(),
        |s| match s {
            "info" => Some(pb::Severity::Info as i32),
            "warning" => Some(pb::Severity::Warning as i32),
            "critical" => Some(pb::Severity::Critical as i32),
            _ => None,
        },
        "info, warning or critical",
    )?;
    if let Some(l) = q.limit
        && !(1..=500).contains(&l)
    {
        return Err(bad(
            "invalid_query",
            format!("limit `{l}` is not allowed: use 1 to 500"),
        ));
    }
    let req = pb::ListAlertsRequest {
        states,
        severities,
        source: q.source.unwrap_or_default(),
        resource: q.resource.unwrap_or_default(),
        rule_id: q.rule_id.unwrap_or_default(),
        acknowledged: q.acknowledged,
        since: time("since", q.since.as_deref())?,
        until: time("until", q.until.as_deref())?,
        page_size: q.limit.unwrap_or_default(),
        page_token: match (q.page_token, q.offset) {
            (Some(_), Some(_)) => {
                return Err(bad("invalid_query", "give page_token or offset, not both"));
            }
            (Some(t), None) => t,
            (None, Some(o)) => o.to_string(),
            (None, None) => String::new(),
        },
    };
    let r = c.list_alerts(req).await.map_err(|s| backend(&s))?.into_inner();
    Ok(Json(ListResponse {
        alerts: r.alerts.into_iter().map(AlertView::from).collect(),
        next_page_token: (!r.next_page_token.is_empty()).then_some(r.next_page_token),
    }))
}

#[utoipa::path(get, path = "/api/v1/monitoring/alerts/{id}", tag = "alerts", params(("id" = String, Path, description = "The alert id")), responses((status = 200, body = AlertView), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 404), (status = 503, description = "the alert engine is unavailable")))]
async fn get_one(State(mut c): State<Client>, Path(id): Path<String>) -> Result<Json<AlertView>, ApiError> {
    let a = c
        .get_alert(pb::GetAlertRequest { id })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(a.into()))
}

/// Body of acknowledge and resolve (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActBody {
    /// Who acts. With authentication on, the token's subject is recorded
    /// instead; with it off, this name (default `anonymous`).
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub comment: String,
}

/// The body, if any, and who acts: the authenticated principal wins.
fn act_body(principal: &Principal, body: &axum::body::Bytes) -> Result<(String, String), ApiError> {
    let b: ActBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActBody::default()
    } else {
        Json::<ActBody>::from_bytes(body)
            .map_err(|e| crate::api::invalid_body(&e))?
            .0
    };
    let actor = if principal.subject == "anonymous" {
        b.actor
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| "anonymous".to_owned())
    } else {
        principal.subject.clone()
    };
    Ok((actor, b.comment))
}

#[utoipa::path(post, path = "/api/v1/monitoring/alerts/{id}/acknowledge", tag = "alerts", params(("id" = String, Path, description = "The alert id")), request_body(content = Option<ActBody>, description = "optional"), responses((status = 200, body = AlertView), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 404), (status = 503, description = "the alert engine is unavailable")))]
async fn acknowledge(
    State(mut c): State<Client>,
    Path(id): Path<String>,
    principal: Option<Extension<Principal>>,
    body: axum::body::Bytes,
) -> Result<Json<AlertView>, ApiError> {
    let (actor, comment) = act_body(&principal.map_or_else(anonymous, |e| e.0), &body)?;
    let a = c
        .acknowledge_alert(pb::AcknowledgeAlertRequest { id, actor, comment })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(a.into()))
}

#[utoipa::path(post, path = "/api/v1/monitoring/alerts/{id}/resolve", tag = "alerts", params(("id" = String, Path, description = "The alert id")), request_body(content = Option<ActBody>, description = "optional"), responses((status = 200, body = AlertView), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 404), (status = 503, description = "the alert engine is unavailable")))]
async fn resolve(
    State(mut c): State<Client>,
    Path(id): Path<String>,
    principal: Option<Extension<Principal>>,
    body: axum::body::Bytes,
) -> Result<Json<AlertView>, ApiError> {
    let (actor, comment) = act_body(&principal.map_or_else(anonymous, |e| e.0), &body)?;
    let a = c
        .resolve_alert(pb::ResolveAlertRequest { id, actor, comment })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(a.into()))
}

/// A rule as JSON: the same shape as `alert_engine.rules` in the configuration.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rule: AlertRuleConfig,
    /// default, file or api.
    pub origin: String,
}

fn rule_view(r: pb::AlertRule) -> RuleView {
    RuleView {
        rule: AlertRuleConfig {
            id: r.id,
            name: (!r.name.is_empty()).then_some(r.name),
            expr: r.expr,
            severity: match pb::Severity::try_from(r.severity) {
                Ok(pb::Severity::Info) => AlertSeverity::Info,
                Ok(pb::Severity::Critical) => AlertSeverity::Critical,
                _ => AlertSeverity::Warning,
            },
            message: r.message,
            labels: r.labels.into_iter().collect(),
            for_: r.r#for.as_ref().and_then(from_duration),
            cooldown: r.cooldown.as_ref().and_then(from_duration),
            enabled: r.enabled.unwrap_or(true),
            depends_on: r.depends_on,
        },
        origin: r.origin,
    }
}

#[utoipa::path(get, path = "/api/v1/monitoring/alerts/rules", tag = "rules", responses((status = 200, body = Object), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 503, description = "the alert engine is unavailable")))]
async fn list_rules(State(mut c): State<Client>) -> Result<Json<serde_json::Value>, ApiError> {
    let rules = c
        .list_rules(pb::ListRulesRequest {})
        .await
        .map_err(|s| backend(&s))?
        .into_inner()
        .rules;
    let views: Vec<RuleView> = rules.into_iter().map(rule_view).collect();
    Ok(Json(serde_json::json!({ "rules": views })))
}

#[utoipa::path(post, path = "/api/v1/monitoring/alerts/rules", tag = "rules", request_body(content = Object, description = "A rule, the same shape as alert_engine.rules[] in the configuration"), responses((status = 200, body = RuleView), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 503, description = "the alert engine is unavailable")))]
async fn upsert_rule(
    State(mut c): State<Client>,
    body: Result<Json<AlertRuleConfig>, JsonRejection>,
) -> Result<Json<RuleView>, ApiError> {
    let Json(r) = body.map_err(|e| crate::api::invalid_body(&e))?;
    let rule = pb::AlertRule {
        id: r.id,
        name: r.name.unwrap_or_default(),
        expr: r.expr,
        severity: match r.severity {
            AlertSeverity::Info => pb::Severity::Info,
            AlertSeverity::Warning => pb::Severity::Warning,
            AlertSeverity::Critical => pb::Severity::Critical,
        }
        .into(),
        message: r.message,
        labels: r.labels.into_iter().collect(),
        r#for: r.for_.map(to_duration),
        cooldown: r.cooldown.map(to_duration),
        enabled: Some(r.enabled),
        origin: String::new(),
        depends_on: r.depends_on,
    };
    let made = c
        .upsert_rule(pb::UpsertRuleRequest { rule: Some(rule) })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(rule_view(made)))
}

#[utoipa::path(delete, path = "/api/v1/monitoring/alerts/rules/{id}", tag = "rules", params(("id" = String, Path)), responses((status = 204), (status = 404), (status = 401), (status = 403)))]
async fn delete_rule(State(mut c): State<Client>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    c.delete_rule(pb::DeleteRuleRequest { id })
        .await
        .map_err(|s| backend(&s))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A silence matcher as JSON.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatcherBody {
    pub label: String,
    pub value: String,
    #[serde(default)]
    pub negate: bool,
}

/// Body of `POST /api/v1/monitoring/silences`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceBody {
    pub matchers: Vec<MatcherBody>,
    /// RFC 3339; now when absent.
    pub starts_at: Option<String>,
    /// RFC 3339.
    pub ends_at: String,
    /// Who; with authentication on, the token's subject is recorded instead.
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub comment: String,
    /// A recurring window: the window comes back every this long (`1d`, `7d`).
    pub repeat_every: Option<String>,
    /// RFC 3339: when a recurring window stops; until expired when absent.
    pub repeat_until: Option<String>,
}

/// A silence as JSON.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SilenceView {
    pub id: String,
    pub matchers: Vec<MatcherBody>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub created_by: String,
    pub comment: String,
    pub created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_every: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_until: Option<String>,
}

impl From<pb::Silence> for SilenceView {
    fn from(s: pb::Silence) -> Self {
        Self {
            id: s.id,
            matchers: s
                .matchers
                .into_iter()
                .map(|m| MatcherBody {
                    label: m.label,
                    value: m.value,
                    negate: m.negate,
                })
                .collect(),
            starts_at: when(s.starts_at.as_ref()),
            ends_at: when(s.ends_at.as_ref()),
            created_by: s.created_by,
            comment: s.comment,
            created_at: when(s.created_at.as_ref()),
            repeat_every: s
                .repeat_every
                .as_ref()
                .and_then(from_duration)
                .map(pantau_config::duration::format),
            repeat_until: when(s.repeat_until.as_ref()),
        }
    }
}

/// Filter of `GET /api/v1/monitoring/silences`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SilencesQuery {
    pub include_expired: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/monitoring/silences", tag = "silences", params(SilencesQuery), responses((status = 200, body = Object), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 503, description = "the alert engine is unavailable")))]
async fn list_silences(
    State(mut c): State<Client>,
    q: Result<Query<SilencesQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| crate::api::bad_query(&e))?;
    let list = c
        .list_silences(pb::ListSilencesRequest {
            include_expired: q.include_expired.unwrap_or(false),
        })
        .await
        .map_err(|s| backend(&s))?
        .into_inner()
        .silences;
    let views: Vec<SilenceView> = list.into_iter().map(SilenceView::from).collect();
    Ok(Json(serde_json::json!({ "silences": views })))
}

#[utoipa::path(post, path = "/api/v1/monitoring/silences", tag = "silences", request_body = SilenceBody, responses((status = 200, body = SilenceView), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 503, description = "the alert engine is unavailable")))]
async fn create_silence(
    State(mut c): State<Client>,
    principal: Option<Extension<Principal>>,
    body: Result<Json<SilenceBody>, JsonRejection>,
) -> Result<Json<SilenceView>, ApiError> {
    let Json(b) = body.map_err(|e| crate::api::invalid_body(&e))?;
    let created_by = match principal.map(|p| p.0.subject) {
        Some(who) if who != "anonymous" => who,
        _ => b
            .created_by
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| "anonymous".to_owned()),
    };
    let at = |field: &str, t: &str| {
        humantime::parse_rfc3339_weak(t).map(to_timestamp).map_err(|_| {
            bad(
                "invalid_body",
                format!("{field} `{t}` is not an RFC 3339 time such as 2026-11-23T10:00:00Z"),
            )
        })
    };
    let req = pb::CreateSilenceRequest {
        matchers: b
            .matchers
            .into_iter()
            .map(|m| pb::SilenceMatcher {
                label: m.label,
                value: m.value,
                negate: m.negate,
            })
            .collect(),
        starts_at: b.starts_at.as_deref().map(|t| at("starts_at", t)).transpose()?,
        ends_at: Some(at("ends_at", &b.ends_at)?),
        created_by,
        comment: b.comment,
        repeat_every: b
            .repeat_every
            .as_deref()
            .map(|d| {
                pantau_config::duration::parse(d)
                    .map(to_duration)
                    .map_err(|e| bad("invalid_body", format!("repeat_every: {e}")))
            })
            .transpose()?,
        repeat_until: b.repeat_until.as_deref().map(|t| at("repeat_until", t)).transpose()?,
    };
    let s = c.create_silence(req).await.map_err(|s| backend(&s))?.into_inner();
    Ok(Json(s.into()))
}

#[utoipa::path(delete, path = "/api/v1/monitoring/silences/{id}", tag = "silences", params(("id" = String, Path)), responses((status = 200, body = SilenceView), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 404), (status = 503, description = "the alert engine is unavailable")))]
async fn expire_silence(State(mut c): State<Client>, Path(id): Path<String>) -> Result<Json<SilenceView>, ApiError> {
    let s = c
        .expire_silence(pb::ExpireSilenceRequest { id })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(s.into()))
}
