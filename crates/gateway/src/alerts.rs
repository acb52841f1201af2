//! Alert routes, answered by the alert engine over gRPC
//! (`gateway.alert_engine_url`):
//!
//! - `GET  /api/v1/monitoring/alerts` with filters `state`, `severity` (each
//!   comma-separated), `source`, `resource`, `rule_id`, `acknowledged`,
//!   `since`/`until` (RFC 3339), `limit`, and `offset` or `page_token`;
//! - `POST /api/v1/monitoring/alerts` raises an alert by hand (`manual_alerts`);
//! - `GET  /api/v1/monitoring/alerts/{id}`, with the audit trail;
//! - `POST /api/v1/monitoring/alerts/{id}/acknowledge` and `…/resolve`, body
//!   `{"actor": "…", "comment": "…"}`;
//! - `GET  /api/v1/monitoring/alerts/rules`, `POST …/rules` (create or replace;
//!   a rule that does not parse is a 400 naming the position and reason) and
//!   `DELETE …/rules/{id}`; `GET …/rules/validate?expr=` parses an
//!   expression with the engine's parser and stores nothing (the column and
//!   reason of a fault);
//! - `GET /api/v1/monitoring/silences[?include_expired=true]`, `POST …/silences`
//!   (`{"matchers": [{"label", "value", "negate"}], "starts_at", "ends_at",
//!   "created_by", "comment"}`) and `DELETE …/silences/{id}` (ends it now).

use crate::input::bad;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Extension, Json};
use pantau_core::error::ApiError;
use pantau_core::grpc::Channel;
use pantau_core::time::{from_duration, to_duration, to_timestamp};
use pantau_proto::v1 as pb;
use pantau_proto::v1::alert_engine_service_client::AlertEngineServiceClient;
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::input;
use crate::labels::{AlertState, Severity};
use crate::view::{AlertView, TransitionView};

pub(crate) fn anonymous() -> Principal {
    Principal {
        subject: "anonymous".to_owned(),
        scopes: crate::auth::Scopes::default(),
    }
}

/// The alert routes, with their own client of the alert engine.
pub fn router<S: Clone + Send + Sync + 'static>(ctx: &pantau_core::service::Context) -> Router<S> {
    let client = AlertEngineServiceClient::new(ctx.channel(&ctx.config.gateway.alert_engine_url));
    Router::new()
        .route(
            "/api/v1/monitoring/alerts",
            get(list).post(crate::manual_alerts::create),
        )
        .route("/api/v1/monitoring/alerts/rules", get(list_rules).post(upsert_rule))
        .route("/api/v1/monitoring/alerts/rules/validate", get(validate_rule))
        .route("/api/v1/monitoring/alerts/rules/{id}", delete(delete_rule))
        .route("/api/v1/monitoring/alerts/{id}", get(get_one))
        .route("/api/v1/monitoring/alerts/{id}/acknowledge", post(acknowledge))
        .route("/api/v1/monitoring/alerts/{id}/resolve", post(resolve))
        .route("/api/v1/monitoring/silences", get(list_silences).post(create_silence))
        .route("/api/v1/monitoring/silences/{id}", delete(expire_silence))
        .with_state(client)
}

pub type Client = AlertEngineServiceClient<Channel>;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list,
        crate::manual_alerts::create,
        get_one,
        acknowledge,
        resolve,
        list_rules,
        upsert_rule,
        delete_rule,
        validate_rule,
        list_silences,
        create_silence,
        expire_silence
    ),
    components(schemas(
        AlertView,
        TransitionView,
        ListResponse,
        ActBody,
        crate::manual_alerts::CreateAlertBody,
        RuleView,
        RuleBody,
        RulesResponse,
        RuleCheckView,
        SilencesResponse,
        MatcherBody,
        SilenceBody,
        SilenceView
    ))
)]
pub struct Doc;

fn backend(status: &tonic::Status) -> ApiError {
    crate::grpc_error(status, "alert engine")
}

fn when(t: Option<&prost_types::Timestamp>) -> Option<String> {
    crate::view::when(t)
}

/// Filters of `GET /api/v1/monitoring/alerts`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Comma-separated: firing, acknowledged, resolved; `active` (the
    /// original alerting document's word) is firing and acknowledged. Also
    /// accepted as `status` (the document's name).
    #[serde(alias = "status")]
    #[param(schema_with = states_schema)]
    pub state: Option<String>,
    /// Comma-separated: info, warning, critical.
    #[param(schema_with = severities_schema)]
    pub severity: Option<String>,
    pub source: Option<String>,
    pub resource: Option<String>,
    pub rule_id: Option<String>,
    pub acknowledged: Option<bool>,
    /// RFC 3339: alerts that started at or after.
    #[param(schema_with = input_time)]
    pub since: Option<String>,
    /// RFC 3339: alerts that started before.
    #[param(schema_with = input_time)]
    pub until: Option<String>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_page_token` of the previous page.
    #[param(pattern = "^[0-9]{1,19}$")]
    pub page_token: Option<String>,
    /// Skip this many alerts (the original design's paging); with `page_token`,
    /// this many more after the page it names.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 4_294_967_295_u64)]
    pub offset: Option<u32>,
}

fn states_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    let choices = [
        AlertState::Firing.as_str(),
        AlertState::Acknowledged.as_str(),
        AlertState::Resolved.as_str(),
        "active",
    ];
    input::schema(input::pattern_schema(
        input::list_pattern(&choices),
        "firing, acknowledged, resolved or active (firing and acknowledged), comma-separated",
    ))
}

fn severities_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    let choices = [Severity::Info, Severity::Warning, Severity::Critical].map(Severity::as_str);
    input::schema(input::pattern_schema(
        input::list_pattern(&choices),
        "info, warning or critical, comma-separated",
    ))
}

fn input_time() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::time_schema())
}

fn severity_or_null() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    let choices = [Severity::Info, Severity::Warning, Severity::Critical].map(Severity::as_str);
    let mut o = input::or_null(input::enum_schema(&choices));
    if let Some(e) = o.enum_values.as_mut() {
        e.push(serde_json::Value::Null);
    }
    input::schema(o)
}

fn span_or_null() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::or_null(input::span_schema()))
}

fn time_or_null() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::or_null(input::time_schema()))
}

fn token_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::token_schema())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListResponse {
    pub alerts: Vec<AlertView>,
    /// Pass as `page_token` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `active` (the original alerting document's state) is every open alert.
fn active_is_open(states: &str) -> String {
    states
        .split(',')
        .map(|s| if s.trim() == "active" { "firing,acknowledged" } else { s })
        .collect::<Vec<_>>()
        .join(",")
}

fn time(field: &str, raw: Option<&str>) -> Result<Option<prost_types::Timestamp>, ApiError> {
    raw.map(|t| input::time(field, t).map(to_timestamp)).transpose()
}

#[utoipa::path(get, path = "/api/v1/monitoring/alerts", tag = "alerts", params(ListQuery), responses((status = 200, body = ListResponse), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 503, description = "the alert engine is unavailable")))]
async fn list(
    State(mut c): State<Client>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ListResponse>, ApiError> {
    let Query(q) = q.map_err(|e| crate::api::bad_query(&e))?;
    let state = q.state.as_deref().map(active_is_open);
    let states = input::list(
        "state",
        state.as_deref(),
        |s| AlertState::parse(s).map(AlertState::to_proto),
        &AlertState::choices(),
    )?;
    let severities = input::list(
        "severity",
        q.severity.as_deref(),
        |s| Severity::parse(s).map(Severity::to_proto),
        &Severity::choices(),
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
            (None, None) => String::new(),
            (None, Some(o)) => o.to_string(),
            (Some(t), offset) => {
                let digits = !t.is_empty() && t.len() <= 19 && t.bytes().all(|b| b.is_ascii_digit());
                let start = t.parse::<u64>().ok().filter(|_| digits).ok_or_else(|| {
                    bad(
                        "invalid_query",
                        format!("page_token `{t}` is not one this server handed out"),
                    )
                })?;
                start.saturating_add(u64::from(offset.unwrap_or(0))).to_string()
            }
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
    let id = input::token("alert id", id)?;
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
    /// At most 4,096 characters; new lines and tabs are the only control
    /// characters allowed.
    #[serde(default)]
    #[schema(schema_with = comment_schema)]
    pub comment: String,
}

fn comment_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::text_schema(crate::incidents::MAX_COMMENT, true, false))
}

/// The body, if any, and who acts: the authenticated principal wins; the
/// comment checked (a 400 naming it).
pub(crate) fn act_body(principal: &Principal, body: &axum::body::Bytes) -> Result<(String, String), ApiError> {
    let text = body.trim_ascii();
    let b: ActBody = if text.is_empty() || text == b"null" {
        ActBody::default()
    } else if !text.starts_with(b"{") {
        // serde would read a struct from an array too (`[]`, `["x"]`).
        return Err(crate::input::bad(
            "invalid_body",
            "the body must be a JSON object such as {\"comment\": \"…\"}, or none",
        ));
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
    crate::incidents::check_text("comment", &b.comment, false)?;
    Ok((actor, b.comment))
}

#[utoipa::path(post, path = "/api/v1/monitoring/alerts/{id}/acknowledge", tag = "alerts", params(("id" = String, Path, description = "The alert id")), request_body(content = Option<ActBody>, description = "optional"), responses((status = 200, body = AlertView), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 404), (status = 503, description = "the alert engine is unavailable")))]
async fn acknowledge(
    State(mut c): State<Client>,
    Path(id): Path<String>,
    principal: Option<Extension<Principal>>,
    body: axum::body::Bytes,
) -> Result<Json<AlertView>, ApiError> {
    let id = input::token("alert id", id)?;
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
    let id = input::token("alert id", id)?;
    let (actor, comment) = act_body(&principal.map_or_else(anonymous, |e| e.0), &body)?;
    let a = c
        .resolve_alert(pb::ResolveAlertRequest { id, actor, comment })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(a.into()))
}

/// A rule as JSON: the shape of `alert_engine.rules[]` in the configuration.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleView {
    pub id: String,
    /// Human name; absent when it is the id.
    pub name: Option<String>,
    /// The condition, e.g. `check_up{target="api"} == 0 for 1m`.
    pub expr: String,
    pub severity: Severity,
    /// Summary template.
    pub message: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// How long the condition must hold before firing.
    #[serde(rename = "for")]
    pub for_: Option<String>,
    /// Minimum time between a resolve and the next firing.
    pub cooldown: Option<String>,
    pub enabled: bool,
    /// Rule ids this rule depends on.
    pub depends_on: Vec<String>,
    /// `default`, `file` or `api`.
    #[schema(schema_with = origin_schema)]
    pub origin: String,
}

fn origin_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::enum_schema(&["default", "file", "api"]))
}

pub fn rule_view(r: pb::AlertRule) -> RuleView {
    let span = |d: Option<&prost_types::Duration>| d.and_then(from_duration).map(pantau_config::duration::format);
    RuleView {
        name: (!r.name.is_empty()).then_some(r.name),
        severity: match Severity::from(r.severity) {
            Severity::Unknown => Severity::Warning,
            s => s,
        },
        for_: span(r.r#for.as_ref()),
        cooldown: span(r.cooldown.as_ref()),
        enabled: r.enabled.unwrap_or(true),
        labels: r.labels.into_iter().collect(),
        id: r.id,
        expr: r.expr,
        message: r.message,
        depends_on: r.depends_on,
        origin: r.origin,
    }
}

/// Every rule.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RulesResponse {
    pub rules: Vec<RuleView>,
}

#[utoipa::path(get, path = "/api/v1/monitoring/alerts/rules", tag = "rules", responses((status = 200, body = RulesResponse)))]
async fn list_rules(State(mut c): State<Client>) -> Result<Json<RulesResponse>, ApiError> {
    let rules = c
        .list_rules(pb::ListRulesRequest {})
        .await
        .map_err(|s| backend(&s))?
        .into_inner()
        .rules;
    Ok(Json(RulesResponse {
        rules: rules.into_iter().map(rule_view).collect(),
    }))
}

/// A rule to create or replace: the shape of `alert_engine.rules[]`; the
/// alert engine parses `expr` and names the position of a fault (400).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    #[schema(schema_with = token_schema)]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// The rule's expression; `condition` (the original document's name) is
    /// accepted as well.
    #[serde(alias = "condition")]
    #[schema(min_length = 1)]
    pub expr: String,
    /// `warning` when absent.
    #[serde(default)]
    #[schema(schema_with = severity_or_null)]
    pub severity: Option<String>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "for")]
    #[schema(schema_with = span_or_null)]
    pub for_: Option<String>,
    #[serde(default)]
    #[schema(schema_with = span_or_null)]
    pub cooldown: Option<String>,
    /// `true` when absent.
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub depends_on: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/monitoring/alerts/rules", tag = "rules", request_body = RuleBody, responses((status = 200, body = RuleView)))]
async fn upsert_rule(
    State(mut c): State<Client>,
    body: Result<Json<RuleBody>, JsonRejection>,
) -> Result<Json<RuleView>, ApiError> {
    let Json(r) = body.map_err(|e| crate::api::invalid_body(&e))?;
    let invalid = |e: ApiError| bad("invalid_body", e.message);
    let id = input::token("id", r.id).map_err(invalid)?;
    let severity = match r.severity.as_deref() {
        None => Severity::Warning,
        Some(s) => Severity::parse(s).ok_or_else(|| {
            bad(
                "invalid_body",
                format!("severity `{s}` is not allowed: use {}", Severity::choices()),
            )
        })?,
    };
    let span = |field: &str, raw: Option<&str>| {
        raw.map(|d| input::span(field, d, "invalid_body").map(to_duration))
            .transpose()
    };
    let rule = pb::AlertRule {
        id,
        name: r.name.unwrap_or_default(),
        expr: r.expr,
        severity: severity.to_proto(),
        message: r.message,
        labels: r.labels.into_iter().collect(),
        r#for: span("for", r.for_.as_deref())?,
        cooldown: span("cooldown", r.cooldown.as_deref())?,
        enabled: Some(r.enabled.unwrap_or(true)),
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

#[utoipa::path(delete, path = "/api/v1/monitoring/alerts/rules/{id}", tag = "rules", params(("id" = String, Path)), responses((status = 204, description = "deleted")))]
async fn delete_rule(State(mut c): State<Client>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = input::token("rule id", id)?;
    c.delete_rule(pb::DeleteRuleRequest { id })
        .await
        .map_err(|s| backend(&s))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Longest expression sent to the engine, in bytes (its parser's own limit,
/// `lang::MAX_LEN` of the alert engine).
pub const MAX_EXPR: usize = 4096;

/// The expression to check.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ValidateQuery {
    /// The rule's expression, e.g. `check_up{target="api"} == 0 for 1m`.
    #[param(max_length = 4096)]
    pub expr: String,
}

/// What the alert engine's parser says of an expression.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleCheckView {
    pub valid: bool,
    /// The 1-based column (in characters) of the fault.
    pub column: Option<u32>,
    /// Why it does not parse.
    pub reason: Option<String>,
    /// The metrics a valid expression reads.
    pub metrics: Vec<String>,
    /// The expression's own `for`.
    #[serde(rename = "for")]
    pub for_: Option<String>,
}

/// Asks the engine's parser about `expr` (at most [`MAX_EXPR`] bytes).
pub async fn check_expr(c: &mut Client, expr: String) -> Result<RuleCheckView, ApiError> {
    if expr.len() > MAX_EXPR {
        return Err(bad(
            "invalid_query",
            format!("expr is {} bytes long: use at most {MAX_EXPR}", expr.len()),
        ));
    }
    let r = c
        .validate_rule(pb::ValidateRuleRequest { expr })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(RuleCheckView {
        column: (!r.valid).then_some(r.column),
        reason: (!r.valid).then_some(r.reason),
        metrics: r.metrics,
        for_: r
            .hold
            .as_ref()
            .and_then(from_duration)
            .map(pantau_config::duration::format),
        valid: r.valid,
    })
}

/// Parses an expression as a rule would be, storing nothing.
#[utoipa::path(get, path = "/api/v1/monitoring/alerts/rules/validate", tag = "rules", params(ValidateQuery), responses((status = 200, body = RuleCheckView), (status = 400, description = "bad input, naming the field"), (status = 503, description = "the alert engine is unavailable")))]
async fn validate_rule(
    State(mut c): State<Client>,
    q: Result<Query<ValidateQuery>, QueryRejection>,
) -> Result<Json<RuleCheckView>, ApiError> {
    let Query(q) = q.map_err(|e| crate::api::bad_query(&e))?;
    Ok(Json(check_expr(&mut c, q.expr).await?))
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
    #[schema(min_items = 1)]
    pub matchers: Vec<MatcherBody>,
    /// RFC 3339; now when absent.
    #[schema(schema_with = time_or_null)]
    pub starts_at: Option<String>,
    /// RFC 3339.
    #[schema(schema_with = input_time)]
    pub ends_at: String,
    /// Who; with authentication on, the token's subject is recorded instead.
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub comment: String,
    /// A recurring window: the window comes back every this long (`1d`, `7d`).
    #[schema(schema_with = span_or_null)]
    pub repeat_every: Option<String>,
    /// RFC 3339: when a recurring window stops; until expired when absent.
    #[schema(schema_with = time_or_null)]
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

/// Silences, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SilencesResponse {
    pub silences: Vec<SilenceView>,
}

#[utoipa::path(get, path = "/api/v1/monitoring/silences", tag = "silences", params(SilencesQuery), responses((status = 200, body = SilencesResponse)))]
async fn list_silences(
    State(mut c): State<Client>,
    q: Result<Query<SilencesQuery>, QueryRejection>,
) -> Result<Json<SilencesResponse>, ApiError> {
    let Query(q) = q.map_err(|e| crate::api::bad_query(&e))?;
    let list = c
        .list_silences(pb::ListSilencesRequest {
            include_expired: q.include_expired.unwrap_or(false),
        })
        .await
        .map_err(|s| backend(&s))?
        .into_inner()
        .silences;
    Ok(Json(SilencesResponse {
        silences: list.into_iter().map(SilenceView::from).collect(),
    }))
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
        input::time(field, t)
            .map(to_timestamp)
            .map_err(|e| bad("invalid_body", e.message))
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
            .map(|d| input::span("repeat_every", d, "invalid_body").map(to_duration))
            .transpose()?,
        repeat_until: b.repeat_until.as_deref().map(|t| at("repeat_until", t)).transpose()?,
    };
    let s = c.create_silence(req).await.map_err(|s| backend(&s))?.into_inner();
    Ok(Json(s.into()))
}

#[utoipa::path(delete, path = "/api/v1/monitoring/silences/{id}", tag = "silences", params(("id" = String, Path)), responses((status = 200, body = SilenceView), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 404), (status = 503, description = "the alert engine is unavailable")))]
async fn expire_silence(State(mut c): State<Client>, Path(id): Path<String>) -> Result<Json<SilenceView>, ApiError> {
    let id = input::token("silence id", id)?;
    let s = c
        .expire_silence(pb::ExpireSilenceRequest { id })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(body: &str) -> Result<(String, String), ApiError> {
        act_body(&anonymous(), &axum::body::Bytes::from(body.to_owned()))
    }

    #[test]
    fn an_acknowledge_body_is_an_object_or_none_and_its_comment_is_checked() {
        assert_eq!(act("").unwrap(), ("anonymous".to_owned(), String::new()));
        assert_eq!(act(" null ").unwrap().1, "");
        let (actor, comment) = act(r#"{"actor":"ann","comment":"seen\nlooking"}"#).unwrap();
        assert_eq!((actor.as_str(), comment.as_str()), ("ann", "seen\nlooking"));
        // What `make fuzz-api` found: an array was read as the struct.
        for bad in ["[]", r#"["x", "y"]"#, "1", r#""text""#] {
            let e = act(bad).expect_err(bad);
            assert_eq!(e.reason, Some("invalid_body"), "{bad}");
        }
        let e = act("{\"comment\":\"a\\u001ab\"}").unwrap_err();
        assert!(e.message.contains("comment"), "{}", e.message);
        let long = format!(r#"{{"comment":"{}"}}"#, "x".repeat(5000));
        assert!(act(&long).unwrap_err().message.contains("comment"));
    }
}
