//! Target routes, answered by the collector over gRPC (`gateway.collector_url`):
//!
//! - `GET    /api/v1/targets`, `GET /api/v1/targets/{id}`: targets in the shape
//!   of `collector.targets[]`, secrets masked, with `source` and `breaker`;
//! - `POST   /api/v1/targets`: create or replace (body: one `collector.targets[]`
//!   entry; a bad field is a 400 naming it); `PUT /api/v1/targets/{id}` the same
//!   with the id from the path;
//! - `DELETE /api/v1/targets/{id}`: API-made targets only (configured ones
//!   belong to the file: 409);
//! - `POST   /api/v1/targets/{id}/check`: run the check now;
//! - `POST   /api/v1/targets/{id}/pause` (optional body `{"reason": "…"}`) and
//!   `POST /api/v1/targets/{id}/resume`: stop and restart its scheduled checks;
//! - `GET    /api/v1/targets/{id}/history?period=24h&resolution=minute|hour&location=`:
//!   the rolled-up history with uptime; with another `location`, at a sync
//!   primary, that location's history as its instances pushed it (sync-api
//!   `GetLocationHistory`).

use crate::input::bad;
use std::time::{Duration, SystemTime};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use pantau_config::TargetConfig;
use pantau_config::proto::{spec_to_proto, target_from_proto};
use pantau_core::error::{ApiError, ErrorCode};
use pantau_core::grpc::Channel;
use pantau_core::time::{from_timestamp, rfc3339, to_duration, to_timestamp};
use pantau_proto::v1 as pb;
use pantau_proto::v1::collector_service_client::CollectorServiceClient;
use serde::{Deserialize, Serialize};

use crate::api::{bad_query, invalid_body};
use crate::input;
use crate::labels::{BreakerState, CheckKind, TargetSource};
use crate::view::CheckResultView;

/// The body of a target's create (see [`target_body`]).
pub struct TargetBody;

impl utoipa::PartialSchema for TargetBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        target_body(true)
    }
}

impl utoipa::ToSchema for TargetBody {}

/// The body of a target's replace: the id may come from the path alone.
pub struct TargetPatch;

impl utoipa::PartialSchema for TargetPatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        target_body(false)
    }
}

impl utoipa::ToSchema for TargetPatch {}

pub type Client = CollectorServiceClient<Channel>;

pub fn router<S: Clone + Send + Sync + 'static>(ctx: &pantau_core::service::Context) -> Router<S> {
    let client = Client::new(ctx.channel(&ctx.config.gateway.collector_url));
    Router::new()
        .route("/api/v1/targets", get(list).post(create))
        .route("/api/v1/targets/{id}", get(get_one).put(replace).delete(remove))
        .route("/api/v1/targets/{id}/check", post(run_check))
        .route("/api/v1/targets/{id}/pause", post(pause))
        .route("/api/v1/targets/{id}/resume", post(resume))
        .with_state(client.clone())
        .merge(
            Router::new()
                .route("/api/v1/targets/{id}/history", get(history))
                .with_state(HistoryState {
                    collector: client,
                    sync: ctx
                        .config
                        .sync
                        .active()
                        .then(|| ctx.channel(&ctx.config.gateway.sync_url)),
                    location: ctx.config.instance.location.clone(),
                }),
        )
}

/// What the history route asks: the collector for this location, the
/// sync-api (when sync is on) for another.
#[derive(Clone)]
struct HistoryState {
    collector: Client,
    sync: Option<Channel>,
    location: String,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, get_one, create, replace, remove, run_check, pause, resume, history),
    components(schemas(
        TargetView,
        TargetsResponse,
        TargetBody,
        TargetPatch,
        PauseBody,
        PauseView,
        HistoryView,
        HistoryPointView
    ))
)]
pub struct Doc;

fn backend(status: &tonic::Status) -> ApiError {
    crate::grpc_error(status, "collector")
}

/// A target: its configuration (as in `collector.targets[]`, secrets masked)
/// and its state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TargetView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub config: TargetConfig,
    /// `config` (from the file) or `api`.
    pub source: TargetSource,
    /// The circuit breaker.
    pub breaker: BreakerState,
    /// Set while the target's scheduled checks are paused.
    pub paused: Option<PauseView>,
}

/// Why and since when a target is paused.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PauseView {
    /// RFC 3339.
    pub since: String,
    /// Who paused it.
    pub by: String,
    pub reason: String,
}

impl From<&pb::Pause> for PauseView {
    fn from(p: &pb::Pause) -> Self {
        Self {
            since: p
                .since
                .as_ref()
                .and_then(from_timestamp)
                .map(rfc3339)
                .unwrap_or_default(),
            by: p.by.clone(),
            reason: p.reason.clone(),
        }
    }
}

/// The optional body of `POST /api/v1/targets/{id}/pause`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseBody {
    /// Why, shown with the target; at most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: String,
}

/// Every target.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TargetsResponse {
    pub targets: Vec<TargetView>,
}

/// The body of `POST /api/v1/targets` and `PUT /api/v1/targets/{id}`: one
/// `collector.targets[]` entry, whose fields depend on `type`; the collector
/// checks them as it checks configured targets (a bad one is a 400 naming it).
fn target_body(id_required: bool) -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let kinds = [
        CheckKind::Http,
        CheckKind::Tcp,
        CheckKind::Icmp,
        CheckKind::Dns,
        CheckKind::Tls,
        CheckKind::Push,
        CheckKind::Grpc,
        CheckKind::Redis,
        CheckKind::Postgres,
        CheckKind::Mysql,
        CheckKind::Udp,
        CheckKind::Ssh,
        CheckKind::KafkaProducer,
        CheckKind::KafkaConsumer,
        CheckKind::HttpSteps,
        CheckKind::Websocket,
        CheckKind::Mqtt,
        CheckKind::Mail,
    ];
    let mut b = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("id", input::token_schema())
        .property("type", input::enum_schema(&kinds.map(CheckKind::as_str)))
        .required("type")
        .description(Some("One collector.targets[] entry, e.g. {\"id\": \"web\", \"type\": \"http\", \"url\": \"https://example.net\"}"));
    if id_required {
        b = b.required("id");
    }
    input::schema(b.build())
}

fn view(t: &pb::Target) -> Result<TargetView, ApiError> {
    let config = target_from_proto(t).map_err(|e| {
        tracing::error!(error = %e, target = %t.id, "the collector sent a target that does not convert");
        ApiError::new(ErrorCode::Internal, "the collector sent a malformed target")
            .reason("backend_error")
            .status(StatusCode::BAD_GATEWAY)
    })?;
    Ok(TargetView {
        config,
        source: match TargetSource::from(t.source) {
            TargetSource::Unspecified => TargetSource::Config,
            s => s,
        },
        breaker: match BreakerState::from(t.breaker) {
            BreakerState::Unspecified => BreakerState::Closed,
            b => b,
        },
        paused: t.paused.as_ref().map(PauseView::from),
    })
}

/// The protobuf form of a target from a request body; the collector checks
/// it as it checks configured targets, and a bad field comes back as a 400
/// naming it.
fn to_proto(t: &TargetConfig) -> pb::Target {
    pb::Target {
        id: t.id.clone(),
        name: t.name().unwrap_or_default().to_owned(),
        interval: t.interval.map(|i| to_duration(i.get())),
        timeout: t.timeout.map(|i| to_duration(i.get())),
        labels: t.labels.clone().into_iter().collect(),
        quorum: t.quorum().map(std::num::NonZeroU32::get),
        depends_on: t.depends_on().iter().map(ToString::to_string).collect(),
        spec: Some(spec_to_proto(t)),
        ..pb::Target::default()
    }
}

/// Every target.
#[utoipa::path(get, path = "/api/v1/targets", tag = "targets", responses((status = 200, body = TargetsResponse)))]
async fn list(State(mut c): State<Client>) -> Result<Json<TargetsResponse>, ApiError> {
    let ts = c
        .list_targets(pb::ListTargetsRequest {})
        .await
        .map_err(|s| backend(&s))?
        .into_inner()
        .targets;
    let targets = ts.iter().map(view).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(TargetsResponse { targets }))
}

#[utoipa::path(get, path = "/api/v1/targets/{id}", tag = "targets", params(("id" = String, Path)),
    responses((status = 200, body = TargetView), (status = 404), (status = 401), (status = 403)))]
async fn get_one(State(mut c): State<Client>, Path(id): Path<String>) -> Result<Json<TargetView>, ApiError> {
    let id = input::token("target id", id)?;
    let t = c
        .get_target(pb::GetTargetRequest { id })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(view(&t)?))
}

async fn upsert(c: &mut Client, t: &TargetConfig) -> Result<Json<TargetView>, ApiError> {
    let proto = to_proto(t);
    let t = c
        .upsert_target(pb::UpsertTargetRequest { target: Some(proto) })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(view(&t)?))
}

/// Creates or replaces a target; the body is one `collector.targets[]` entry.
#[utoipa::path(post, path = "/api/v1/targets", tag = "targets",
    request_body = TargetBody,
    responses((status = 200, body = TargetView), (status = 400, description = "a bad field, named"),
        (status = 409, description = "the id belongs to a configured target"), (status = 401), (status = 403)))]
async fn create(
    State(mut c): State<Client>,
    body: Result<Json<TargetConfig>, JsonRejection>,
) -> Result<Json<TargetView>, ApiError> {
    let Json(t) = body.map_err(|e| invalid_body(&e))?;
    upsert(&mut c, &t).await
}

/// Replaces the target `id`; the body's `id`, if any, must match.
#[utoipa::path(put, path = "/api/v1/targets/{id}", tag = "targets", params(("id" = String, Path)),
    request_body = TargetPatch,
    responses((status = 200, body = TargetView), (status = 400), (status = 409), (status = 401), (status = 403)))]
async fn replace(
    State(mut c): State<Client>,
    Path(id): Path<String>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<TargetView>, ApiError> {
    let id = input::token("target id", id)?;
    let Json(mut v) = body.map_err(|e| invalid_body(&e))?;
    let Some(obj) = v.as_object_mut() else {
        return Err(bad(
            "invalid_body",
            "the body must be a JSON object: one collector.targets[] entry",
        ));
    };
    match obj.get("id") {
        Some(serde_json::Value::String(b)) if *b != id => {
            return Err(bad(
                "invalid_body",
                format!("`id` `{b}` differs from the path's `{id}`"),
            ));
        }
        _ => {
            obj.insert("id".into(), serde_json::Value::String(id));
        }
    }
    let t: TargetConfig = serde_json::from_value(v).map_err(|e| bad("invalid_body", e.to_string()))?;
    upsert(&mut c, &t).await
}

/// Deletes an API-made target.
#[utoipa::path(delete, path = "/api/v1/targets/{id}", tag = "targets", params(("id" = String, Path)),
    responses((status = 204), (status = 404), (status = 409, description = "a configured target"), (status = 401), (status = 403)))]
async fn remove(State(mut c): State<Client>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = input::token("target id", id)?;
    c.delete_target(pb::DeleteTargetRequest { id })
        .await
        .map_err(|s| backend(&s))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs the target's check now and answers its result.
#[utoipa::path(post, path = "/api/v1/targets/{id}/check", tag = "targets", params(("id" = String, Path)),
    responses((status = 200, body = CheckResultView), (status = 404), (status = 401), (status = 403)))]
async fn run_check(State(mut c): State<Client>, Path(id): Path<String>) -> Result<Json<CheckResultView>, ApiError> {
    let id = input::token("target id", id)?;
    let r = c
        .run_check(pb::RunCheckRequest { target_id: id })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(CheckResultView::from(&r)))
}

/// Stops the target's scheduled checks until it is resumed (kept across
/// restarts; run-now still checks it).
#[utoipa::path(post, path = "/api/v1/targets/{id}/pause", tag = "targets", params(("id" = String, Path)),
    request_body(content = Option<PauseBody>, description = "optional"),
    responses((status = 200, body = TargetView), (status = 400, description = "bad input, naming the field"),
        (status = 404), (status = 401), (status = 403)))]
async fn pause(
    State(mut c): State<Client>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<TargetView>, ApiError> {
    let id = input::token("target id", id)?;
    let text = body.trim_ascii();
    let b = if text.is_empty() || text == b"null" {
        PauseBody::default()
    } else {
        Json::<PauseBody>::from_bytes(&body).map_err(|e| invalid_body(&e))?.0
    };
    let t = c
        .pause_target(pb::PauseTargetRequest {
            target_id: id,
            reason: b.reason,
        })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(view(&t)?))
}

/// Schedules a paused target again, its next check at once.
#[utoipa::path(post, path = "/api/v1/targets/{id}/resume", tag = "targets", params(("id" = String, Path)),
    responses((status = 200, body = TargetView), (status = 404), (status = 401), (status = 403)))]
async fn resume(State(mut c): State<Client>, Path(id): Path<String>) -> Result<Json<TargetView>, ApiError> {
    let id = input::token("target id", id)?;
    let t = c
        .resume_target(pb::ResumeTargetRequest { target_id: id })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(view(&t)?))
}

/// Filters of a history query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// How far back, e.g. `1h`, `24h`, `30d` (default 24h; a longer one than 400d is cut to 400d).
    #[param(schema_with = period_schema)]
    pub period: Option<String>,
    /// `minute` or `hour` (default: minutes up to 2 days, hours beyond).
    #[param(schema_with = resolution_schema)]
    pub resolution: Option<String>,
    /// The history at this location (1–128 letters, digits, `-` or `_`);
    /// default this instance's. At a sync primary, another location's is
    /// rolled up from the results its instances pushed; elsewhere another
    /// location has no history (no checks).
    #[param(schema_with = location_schema)]
    pub location: Option<String>,
}

fn location_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::token_schema())
}

pub(crate) fn period_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::period_schema())
}

pub(crate) fn resolution_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::enum_schema(&["minute", "hour"]))
}

/// A target's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryView {
    pub target_id: String,
    pub resolution: &'static str,
    pub checks: u64,
    pub up: u64,
    pub uptime_percent: f64,
    pub points: Vec<HistoryPointView>,
}

/// One minute or hour.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryPointView {
    /// RFC 3339.
    pub start: Option<String>,
    pub checks: u64,
    pub up: u64,
    pub latency_min_ms: f64,
    pub latency_avg_ms: f64,
    pub latency_max_ms: f64,
    pub latency_p95_ms: f64,
}

/// Parses `period` (default 24h; at most 400d, a longer one is cut).
pub fn period(raw: Option<&str>) -> Result<Duration, ApiError> {
    let Some(raw) = raw else {
        return Ok(Duration::from_secs(86_400));
    };
    Ok(input::period("period", raw, "invalid_query")?.min(Duration::from_secs(400 * 86_400)))
}

fn resolution_of(resolution: Option<&str>) -> Result<pb::Resolution, ApiError> {
    match resolution {
        None => Ok(pb::Resolution::Unspecified),
        Some("minute") => Ok(pb::Resolution::Minute),
        Some("hour") => Ok(pb::Resolution::Hour),
        Some(other) => Err(bad(
            "invalid_query",
            format!(
                "resolution `{}` is not allowed: use minute or hour",
                pantau_config::types::quote(other)
            ),
        )),
    }
}

/// The history of one target over `period`.
pub async fn fetch_history(
    c: &mut Client,
    target_id: String,
    period: Duration,
    resolution: Option<&str>,
) -> Result<HistoryView, ApiError> {
    let res = resolution_of(resolution)?;
    let now = SystemTime::now();
    let h = c
        .get_history(pb::GetHistoryRequest {
            target_id,
            from: Some(to_timestamp(now - period)),
            to: Some(to_timestamp(now)),
            resolution: res.into(),
        })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(history_view(h))
}

/// The history of one target at another `location`, as the local sync-api
/// (a primary) holds it.
pub async fn fetch_location_history(
    sync: Channel,
    location: String,
    target_id: String,
    period: Duration,
    resolution: Option<&str>,
) -> Result<HistoryView, ApiError> {
    let res = resolution_of(resolution)?;
    let now = SystemTime::now();
    let h = pb::sync_service_client::SyncServiceClient::new(sync)
        .get_location_history(pb::GetLocationHistoryRequest {
            location,
            target_id,
            from: Some(to_timestamp(now - period)),
            to: Some(to_timestamp(now)),
            resolution: res.into(),
        })
        .await
        .map_err(|s| crate::grpc_error(&s, "sync API"))?
        .into_inner();
    Ok(history_view(h))
}

fn history_view(h: pb::GetHistoryResponse) -> HistoryView {
    HistoryView {
        resolution: if h.resolution == pb::Resolution::Hour as i32 {
            "hour"
        } else {
            "minute"
        },
        target_id: h.target_id,
        checks: h.checks,
        up: h.up,
        uptime_percent: h.uptime_percent,
        points: h
            .points
            .into_iter()
            .map(|p| HistoryPointView {
                start: p.start.as_ref().and_then(from_timestamp).map(rfc3339),
                checks: p.checks,
                up: p.up,
                latency_min_ms: p.latency_min_ms,
                latency_avg_ms: p.latency_avg_ms,
                latency_max_ms: p.latency_max_ms,
                latency_p95_ms: p.latency_p95_ms,
            })
            .collect(),
    }
}

/// A target's rolled-up history, here or (`location=`) at another location.
#[utoipa::path(get, path = "/api/v1/targets/{id}/history", tag = "targets", params(("id" = String, Path), HistoryQuery),
    responses((status = 200, body = HistoryView), (status = 400, description = "bad id or query, naming it"), (status = 404), (status = 401), (status = 403)))]
async fn history(
    State(s): State<HistoryState>,
    Path(id): Path<String>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryView>, ApiError> {
    let id = input::token("target id", id)?;
    let Query(q) = q.map_err(|e| bad_query(&e))?;
    let p = period(q.period.as_deref())?;
    let location = q
        .location
        .map(|l| input::token("location", l).map_err(|e| bad("invalid_query", e.message)))
        .transpose()?;
    let Some(loc) = location.filter(|l| *l != s.location) else {
        let mut c = s.collector;
        return Ok(Json(fetch_history(&mut c, id, p, q.resolution.as_deref()).await?));
    };
    if let Some(sync) = s.sync {
        return Ok(Json(
            fetch_location_history(sync, loc, id, p, q.resolution.as_deref()).await?,
        ));
    }
    // No sync: no other location's results reach this instance.
    let res = resolution_of(q.resolution.as_deref())?;
    Ok(Json(HistoryView {
        target_id: id,
        resolution: if res == pb::Resolution::Hour { "hour" } else { "minute" },
        checks: 0,
        up: 0,
        uptime_percent: 0.0,
        points: Vec::new(),
    }))
}
