//! REST routes under `/api/v1`, and `/health`.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pantau_core::error::{ApiError, ErrorCode};
use pantau_core::health::Level;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::input;
use crate::labels::CheckStatus;
use crate::view::CheckResultView;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/results/latest", get(latest))
        .route("/health", get(health_root))
        .route("/api/v1/health", get(health))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(latest, health_root, health),
    components(schemas(LatestResponse, CheckResultView, HealthView, ComponentView))
)]
pub struct Doc;

/// Filters of `GET /api/v1/results/latest`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LatestQuery {
    /// Only this target.
    pub target_id: Option<String>,
    /// Only results from this location. At a sync primary, another
    /// location's latest results are those its instances pushed (status,
    /// latency and check time).
    pub location: Option<String>,
    /// Only `up` or `down`.
    #[param(schema_with = up_or_down)]
    pub status: Option<String>,
}

fn up_or_down() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::enum_schema(&[
        CheckStatus::Up.as_str(),
        CheckStatus::Down.as_str(),
    ]))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LatestResponse {
    pub results: Vec<CheckResultView>,
}

/// The latest result of each target, optionally filtered.
#[utoipa::path(get, path = "/api/v1/results/latest", tag = "results", params(LatestQuery),
    responses((status = 200, body = LatestResponse), (status = 400, description = "bad filter, naming it"), (status = 401), (status = 403)))]
async fn latest(
    State(s): State<AppState>,
    q: Result<Query<LatestQuery>, QueryRejection>,
) -> Result<Json<LatestResponse>, ApiError> {
    let Query(q) = q.map_err(|e| bad_query(&e))?;
    let status = match q.status.as_deref() {
        None => None,
        Some(st) => Some(CheckStatus::parse(st).ok_or_else(|| {
            input::bad(
                "invalid_query",
                format!("status `{st}` is not allowed: use {}", CheckStatus::choices()),
            )
        })?),
    };
    // Another location's results are the primary's (pushed by its
    // dependents): asked of the local sync-api.
    if let (Some(loc), Some(sync)) = (q.location.as_deref(), s.sync.as_ref())
        && loc != s.ctx.config.instance.location
    {
        let loc = input::token("location", loc.to_owned()).map_err(|e| input::bad("invalid_query", e.message))?;
        let target_id = q.target_id.clone().unwrap_or_default();
        let r = pantau_proto::v1::sync_service_client::SyncServiceClient::new(sync.clone())
            .list_location_results(pantau_proto::v1::ListLocationResultsRequest {
                location: loc,
                target_id,
            })
            .await
            .map_err(|e| crate::grpc_error(&e, "sync API"))?
            .into_inner();
        let results = r
            .results
            .iter()
            .map(CheckResultView::from)
            .filter(|r| status.is_none_or(|st| st == r.status))
            .collect();
        return Ok(Json(LatestResponse { results }));
    }
    let results = s
        .feed
        .latest()
        .into_iter()
        .filter(|r| q.target_id.as_ref().is_none_or(|t| *t == r.target_id))
        .filter(|r| q.location.as_ref().is_none_or(|l| *l == r.location))
        .filter(|r| status.is_none_or(|st| st == r.status))
        .collect();
    Ok(Json(LatestResponse { results }))
}

/// The same as `GET /api/v1/health`, at the root for probes and load balancers.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, body = HealthView, description = "healthy or degraded"), (status = 503, body = HealthView, description = "unhealthy")))]
async fn health_root(s: State<AppState>) -> Response {
    health(s).await
}

/// Overall status and each component's: 200 when every dependency answers, 503 otherwise.
#[utoipa::path(get, path = "/api/v1/health", tag = "health",
    responses((status = 200, body = HealthView, description = "healthy or degraded"), (status = 503, body = HealthView, description = "unhealthy")))]
async fn health(State(s): State<AppState>) -> Response {
    let (code, view) = health_view(&s).await;
    (code, Json(view)).into_response()
}

/// `/health`'s answer: its status code and body (the console's health page shows it too).
pub async fn health_view(s: &AppState) -> (StatusCode, HealthView) {
    let (report, backends) = tokio::join!(s.ctx.health.report(), crate::backends::check_all(&s.backends));
    let mut components: BTreeMap<String, ComponentView> = report
        .components
        .into_iter()
        .map(|(name, c)| {
            let view = ComponentView {
                status: if c.error.is_none() { "ok" } else { "failing" },
                // A failing component works not at all, whatever it said of its level.
                level: if c.error.is_none() { c.level } else { Level::Critical },
                error: c.error,
                detail: c.detail,
                critical: c.essential,
            };
            (name, view)
        })
        .collect();
    for (name, error) in backends {
        components.insert(
            name.to_owned(),
            ComponentView {
                status: if error.is_none() { "ok" } else { "failing" },
                level: if error.is_none() { Level::Ok } else { Level::Critical },
                error,
                detail: None,
                critical: false,
            },
        );
    }
    let (code, status) = overall(&components);
    let reasons = reasons(&components);
    (
        code,
        HealthView {
            status,
            reasons,
            components,
        },
    )
}

/// The whole from its parts: `unhealthy` (503) only when an essential
/// dependency fails (the bus, a store); `degraded` (200) when any other
/// component fails (a backend service, a stalled task or consumer) or works
/// badly (a collector whose checks mostly fail); else `healthy`.
fn overall(components: &BTreeMap<String, ComponentView>) -> (StatusCode, &'static str) {
    let unhealthy = components.values().any(|c| c.critical && c.error.is_some());
    let degraded = components.values().any(|c| c.error.is_some() || c.level != Level::Ok);
    match (unhealthy, degraded) {
        (true, _) => (StatusCode::SERVICE_UNAVAILABLE, "unhealthy"),
        (false, true) => (StatusCode::OK, "degraded"),
        (false, false) => (StatusCode::OK, "healthy"),
    }
}

/// Why the whole is not healthy: one line per component that fails (its
/// error) or works badly (its level and detail), essential ones first.
fn reasons(components: &BTreeMap<String, ComponentView>) -> Vec<String> {
    let mut out: Vec<(bool, String)> = components
        .iter()
        .filter_map(|(name, c)| {
            let line = match (&c.error, c.level) {
                (Some(e), _) => format!("{name}: {e}"),
                (None, Level::Ok) => return None,
                (None, level) => {
                    let word = if level == Level::Critical {
                        "critical"
                    } else {
                        "degraded"
                    };
                    match &c.detail {
                        Some(d) if d.starts_with(word) => format!("{name}: {d}"),
                        Some(d) => format!("{name}: {word}: {d}"),
                        None => format!("{name}: {word}"),
                    }
                }
            };
            Some((!(c.critical && c.error.is_some()), line))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, l)| l).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_quote_little_of_the_input() {
        let huge = "g".repeat(100_000);
        let msg = format!("role: unknown variant `{huge}`, expected one of `viewer`, `editor`");
        let out = quote_spans(&msg);
        assert!(
            out.starts_with("role: unknown variant `ggg") && out.len() < 300,
            "{out}"
        );
        assert!(out.ends_with("expected one of `viewer`, `editor`"), "{out}");
        assert_eq!(quote_spans("a `b` c"), "a `b` c");
    }

    fn component(error: Option<&str>, level: Level, critical: bool) -> ComponentView {
        ComponentView {
            status: if error.is_none() { "ok" } else { "failing" },
            error: error.map(str::to_owned),
            detail: None,
            level,
            critical,
        }
    }

    #[test]
    fn a_component_that_works_badly_degrades_the_whole() {
        let mut c = BTreeMap::new();
        c.insert("bus".to_owned(), component(None, Level::Ok, true));
        assert_eq!(overall(&c), (StatusCode::OK, "healthy"));
        // Ready, but half its checks fail: before, this said `healthy`.
        c.insert("collector.health".to_owned(), component(None, Level::Critical, true));
        assert_eq!(overall(&c), (StatusCode::OK, "degraded"));
        c.insert(
            "alert-engine".to_owned(),
            component(Some("refused"), Level::Critical, false),
        );
        assert_eq!(overall(&c), (StatusCode::OK, "degraded"));
        // A stalled task or consumer is not a dead bus or store: degraded.
        c.insert(
            "collector.progress".to_owned(),
            component(Some("no check has completed for 40s"), Level::Critical, false),
        );
        assert_eq!(overall(&c), (StatusCode::OK, "degraded"));
        c.insert(
            "store.collector".to_owned(),
            component(Some("refused"), Level::Critical, true),
        );
        assert_eq!(overall(&c), (StatusCode::SERVICE_UNAVAILABLE, "unhealthy"));
        assert_eq!(
            reasons(&c),
            [
                "store.collector: refused",
                "alert-engine: refused",
                "collector.health: critical",
                "collector.progress: no check has completed for 40s",
            ]
        );
    }

    #[test]
    fn a_degraded_level_is_a_reason_with_its_detail() {
        let mut c = BTreeMap::new();
        let mut checks = component(None, Level::Critical, false);
        checks.detail = Some("critical: 50.0% of checks failed in the last 300s".into());
        c.insert("collector.checks".to_owned(), checks);
        c.insert("bus".to_owned(), component(None, Level::Ok, true));
        assert_eq!(overall(&c), (StatusCode::OK, "degraded"));
        assert_eq!(
            reasons(&c),
            ["collector.checks: critical: 50.0% of checks failed in the last 300s"]
        );
    }
}

/// The gateway's health: `healthy`, `degraded` (a backend service is down,
/// or a component's level is degraded or critical; 200) or `unhealthy` (the
/// bus or a store is down; 503).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthView {
    #[schema(schema_with = overall_schema)]
    pub status: &'static str,
    /// Why it is not `healthy`: one line per component that fails or works
    /// badly (`collector.checks: critical: 50.0% of checks failed …`); empty when healthy.
    pub reasons: Vec<String>,
    pub components: BTreeMap<String, ComponentView>,
}

fn overall_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::enum_schema(&["healthy", "degraded", "unhealthy"]))
}

fn level_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::enum_schema(&["ok", "degraded", "critical"]))
}

fn component_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::enum_schema(&["ok", "failing"]))
}

/// One component: the bus, a store, or a backend service over gRPC health.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ComponentView {
    /// `ok` or `failing`.
    #[schema(schema_with = component_schema)]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How well it works (a failing one is critical).
    #[schema(schema_with = level_schema)]
    pub level: Level,
    /// Whether its failure makes the whole unhealthy (the bus, stores) rather than degraded.
    pub critical: bool,
}

/// The 400 (or 413, for a body over the limit) of a body that is not the
/// expected JSON; serde's message names the field and what was wrong.
pub fn invalid_body(e: &axum::extract::rejection::JsonRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(ErrorCode::ResourceExhausted, e.body_text())
            .reason("body_too_large")
            .status(StatusCode::PAYLOAD_TOO_LARGE);
    }
    if e.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return ApiError::new(ErrorCode::InvalidArgument, e.body_text())
            .reason("unsupported_media_type")
            .status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    ApiError::new(ErrorCode::InvalidArgument, quote_spans(&e.body_text())).reason("invalid_body")
}

/// serde's message with each `quoted` value cut to what an error may quote
/// (`types::quote`): a huge string in a body or query is not echoed back.
pub fn quote_spans(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                pantau_config::types::quote(part)
            } else {
                part.into()
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

/// The 400 of a query string that does not parse, naming the parameter.
pub fn bad_query(e: &QueryRejection) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, quote_spans(&e.body_text())).reason("invalid_query")
}

/// JSON 404 for every unknown path.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no route for {}", uri.path()))
}
