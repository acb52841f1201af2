//! The original specification's sync REST contract under `/sync/api/…`,
//! answered by the local sync-api over gRPC (`gateway.sync_url`):
//!
//! - `GET  /sync/api/status`: id, name, location, role, epoch, the primary;
//!   a standalone instance (no sync-api) answers with role `standalone`;
//! - `GET  /sync/api/instances`, `DELETE /sync/api/instances/{id}` (revokes
//!   its token), `GET /sync/api/failover-order`;
//! - `POST /sync/api/register`, `POST /sync/api/heartbeat` and
//!   `GET /sync/api/config`: instance-to-instance calls; the caller's
//!   `Authorization: Bearer` (join token or instance token) is passed on to
//!   the sync-api, which checks it;
//! - `POST /sync/api/promote` (this instance) and `POST /sync/api/demote/{id}`.
//!
//! Admin calls (instances, promote, demote) are authorised by the gateway's
//! auth layer; the gateway then calls with its service token (for the user,
//! `x-pantau-on-behalf-of`).

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use pantau_core::error::{ApiError, ErrorCode};
use pantau_core::grpc::Channel;
use pantau_core::time::{from_duration, from_timestamp, rfc3339, to_duration};
use pantau_proto::v1 as pb;
use pantau_proto::v1::sync_service_client::SyncServiceClient;
use serde::{Deserialize, Serialize};

use crate::input;
use crate::labels::{InstanceHealth, InstanceState, SyncRole};

#[derive(Clone)]
pub(crate) struct SyncState {
    pub(crate) client: SyncServiceClient<Channel>,
    active: bool,
    id: String,
    location: String,
}

/// The sync routes, with their own client of the local sync-api.
pub fn router<S: Clone + Send + Sync + 'static>(ctx: &pantau_core::service::Context) -> Router<S> {
    let c = &ctx.config;
    let state = SyncState {
        client: SyncServiceClient::new(ctx.channel(&c.gateway.sync_url)),
        active: c.sync.active(),
        id: c.instance.name.clone(),
        location: c.instance.location.clone(),
    };
    // A standalone instance runs no sync-api: its routes say so, rather than
    // "unavailable" (methods a route does not have stay 405).
    let only = |m: axum::routing::MethodRouter<SyncState>| {
        if state.active {
            m
        } else {
            m.route_layer(axum::middleware::from_fn(standalone))
        }
    };
    let others = Router::new()
        .route("/sync/api/instances", only(get(instances)))
        .route("/sync/api/instances/{id}", only(axum::routing::delete(remove_instance)))
        .route("/sync/api/failover-order", only(get(failover_order)))
        .route("/sync/api/register", only(post(register)))
        .route("/sync/api/heartbeat", only(post(heartbeat).put(heartbeat_put)))
        .route("/sync/api/config", only(get(config)))
        .route("/sync/api/promote", only(post(promote)))
        .route("/sync/api/demote/{id}", only(post(demote)))
        .route("/sync/api/endpoints", only(get(crate::sync_endpoints::endpoints)))
        .route("/sync/api/endpoints/{id}", only(get(crate::sync_endpoints::endpoint)))
        .route(
            "/sync/api/notification-services",
            only(get(crate::sync_endpoints::notification_services)),
        );
    Router::new()
        .route("/sync/api/status", get(status))
        .merge(others)
        .with_state(state)
}

/// The instance-to-instance calls, whose bearer (a join or instance token)
/// the sync-api checks.
const INSTANCE_CALLS: [&str; 6] = [
    "/sync/api/register",
    "/sync/api/heartbeat",
    "/sync/api/config",
    "/sync/api/endpoints",
    "/sync/api/notification-services",
    "/sync/api/endpoints/",
];

async fn standalone(req: axum::extract::Request, _next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    // Without a token an instance call is unauthenticated, standalone or not.
    if INSTANCE_CALLS
        .iter()
        .any(|c| req.uri().path() == *c || (c.ends_with('/') && req.uri().path().starts_with(c)))
        && caller_token(req.headers()).is_none()
    {
        return ApiError::new(
            ErrorCode::Unauthenticated,
            "an instance call needs `Authorization: Bearer <join or instance token>`",
        )
        .into_response();
    }
    ApiError::new(ErrorCode::FailedPrecondition, "this instance is standalone: sync is not enabled (set sync.enabled for a primary or sync.primary_url for a dependent)").reason("sync_disabled")
    .into_response()
}

pub(crate) fn backend(status: &tonic::Status) -> ApiError {
    crate::grpc_error(status, "sync API")
}

fn role(r: i32) -> SyncRole {
    match SyncRole::from(r) {
        SyncRole::Unspecified => SyncRole::Standalone,
        r => r,
    }
}

fn token_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::token_schema())
}

fn health_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    let choices = [
        InstanceHealth::Healthy,
        InstanceHealth::Degraded,
        InstanceHealth::Failing,
    ];
    input::schema(input::enum_schema(&choices.map(InstanceHealth::as_str)))
}

fn when(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(from_timestamp).map(rfc3339)
}

/// A request carrying `bearer` as its authorization.
/// An admin call: the channel adds the gateway's service token.
fn admin_call<T>(msg: T) -> tonic::Request<T> {
    tonic::Request::new(msg)
}

pub(crate) fn with_token<T>(msg: T, bearer: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(t) = bearer
        && let Ok(v) = format!("Bearer {t}").parse()
    {
        req.metadata_mut().insert("authorization", v);
    }
    req
}

/// The caller's own bearer token, passed through.
pub(crate) fn caller_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

impl SyncState {}

/// This instance among locations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusView {
    pub id: String,
    pub name: String,
    pub location: String,
    pub role: SyncRole,
    /// The fencing epoch of the current primary, as this instance knows it.
    pub epoch: u64,
    pub primary_id: String,
    pub primary_endpoint: String,
    pub primary_reachable: bool,
    pub buffered_results: u64,
    pub config_hash: String,
    pub last_sync_success: Option<String>,
    /// Highest sequence number this instance gave one of its own results.
    pub produced_seq: u64,
    /// A dependent's last failure to reach its primary (a TLS failure names
    /// the URL and the reason); empty after a success.
    pub last_error: String,
}

#[utoipa::path(get, path = "/sync/api/status", tag = "sync", responses((status = 200, body = StatusView), (status = 503, description = "the sync API is unavailable")))]
async fn status(State(s): State<SyncState>) -> Result<Json<StatusView>, ApiError> {
    if !s.active {
        return Ok(Json(StatusView {
            name: s.id.clone(),
            id: s.id,
            location: s.location,
            role: SyncRole::Standalone,
            epoch: 0,
            primary_id: String::new(),
            primary_endpoint: String::new(),
            primary_reachable: false,
            buffered_results: 0,
            config_hash: String::new(),
            last_sync_success: None,
            produced_seq: 0,
            last_error: String::new(),
        }));
    }
    let r = s
        .client
        .clone()
        .get_status(pb::GetStatusRequest {})
        .await
        .map_err(|e| backend(&e))?
        .into_inner();
    Ok(Json(StatusView {
        role: role(r.role),
        last_sync_success: when(r.last_sync_success.as_ref()),
        id: r.id,
        name: r.name,
        location: r.location,
        epoch: r.epoch,
        primary_id: r.primary_id,
        primary_endpoint: r.primary_endpoint,
        primary_reachable: r.primary_reachable,
        buffered_results: r.buffered_results,
        config_hash: r.config_hash,
        produced_seq: r.produced_seq,
        last_error: r.last_error,
    }))
}

/// An instance as the primary knows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstanceView {
    pub id: String,
    pub name: String,
    pub location: String,
    pub version: String,
    pub capabilities: Vec<String>,
    pub failover_order: u32,
    pub public_endpoint: String,
    pub state: InstanceState,
    pub health: InstanceHealth,
    pub registered_at: Option<String>,
    pub last_heartbeat: Option<String>,
    pub token_expires_at: Option<String>,
    pub revoked: bool,
    pub platform: String,
    pub arch: String,
    pub memory_bytes: u64,
    pub cpu_count: u32,
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub disk_percent: f64,
    pub active_endpoints: u32,
    pub primary_reachable: bool,
    pub sync_errors: u64,
    pub acked_seq: u64,
    pub results_received: u64,
    pub config_hash: String,
    pub config_synced_at: Option<String>,
}

impl From<pb::Instance> for InstanceView {
    fn from(i: pb::Instance) -> Self {
        let sys = i.system.unwrap_or_default();
        let m = i.metrics.unwrap_or_default();
        let c = i.connection.unwrap_or_default();
        Self {
            state: match InstanceState::from(i.state) {
                InstanceState::Unspecified => InstanceState::Failed,
                s => s,
            },
            health: InstanceHealth::from(i.health),
            registered_at: when(i.registered_at.as_ref()),
            last_heartbeat: when(i.last_heartbeat.as_ref()),
            token_expires_at: when(i.token_expires_at.as_ref()),
            config_synced_at: when(i.config_synced_at.as_ref()),
            revoked: i.revoked,
            platform: sys.platform,
            arch: sys.arch,
            memory_bytes: sys.memory_bytes,
            cpu_count: sys.cpu_count,
            cpu_percent: m.cpu_percent,
            memory_percent: m.memory_percent,
            disk_percent: m.disk_percent,
            active_endpoints: m.active_endpoints,
            primary_reachable: c.primary_reachable,
            sync_errors: c.sync_errors,
            acked_seq: i.acked_seq,
            results_received: i.results_received,
            config_hash: i.config_hash,
            id: i.id,
            name: i.name,
            location: i.location,
            version: i.version,
            capabilities: i.capabilities,
            failover_order: i.failover_order,
            public_endpoint: i.public_endpoint,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstancesView {
    pub instances: Vec<InstanceView>,
}

#[utoipa::path(get, path = "/sync/api/instances", tag = "sync", responses((status = 200, body = InstancesView), (status = 409, description = "this instance is not the primary"), (status = 503)))]
async fn instances(State(s): State<SyncState>) -> Result<Json<InstancesView>, ApiError> {
    let r = s
        .client
        .clone()
        .list_instances(admin_call(pb::ListInstancesRequest {}))
        .await
        .map_err(|e| backend(&e))?
        .into_inner();
    Ok(Json(InstancesView {
        instances: r.instances.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(delete, path = "/sync/api/instances/{id}", tag = "sync", params(("id" = String, Path, description = "the instance id")), responses((status = 204, description = "removed; its token no longer authenticates"), (status = 404), (status = 409, description = "an instance cannot remove itself")))]
async fn remove_instance(
    State(s): State<SyncState>,
    Path(id): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    let id = input::token("instance id", id)?;
    s.client
        .clone()
        .remove_instance(admin_call(pb::RemoveInstanceRequest { instance_id: id }))
        .await
        .map_err(|e| backend(&e))?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CandidateView {
    pub id: String,
    pub position: u32,
    pub primary: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FailoverOrderView {
    pub candidates: Vec<CandidateView>,
}

#[utoipa::path(get, path = "/sync/api/failover-order", tag = "sync", responses((status = 200, body = FailoverOrderView), (status = 503)))]
async fn failover_order(State(s): State<SyncState>) -> Result<Json<FailoverOrderView>, ApiError> {
    let r = s
        .client
        .clone()
        .get_failover_order(pb::GetFailoverOrderRequest {})
        .await
        .map_err(|e| backend(&e))?
        .into_inner();
    Ok(Json(FailoverOrderView {
        candidates: r
            .candidates
            .into_iter()
            .map(|c| CandidateView {
                id: c.id,
                position: c.position,
                primary: c.primary,
            })
            .collect(),
    }))
}

/// `POST /sync/api/register`; `Authorization: Bearer <join token>`. Field
/// names may be camelCase as well (`instanceId`, `failoverOrder`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    #[schema(schema_with = token_schema)]
    #[serde(alias = "instanceId")]
    pub instance_id: String,
    #[serde(default)]
    pub name: String,
    #[schema(schema_with = token_schema)]
    pub location: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    #[serde(alias = "failoverOrder")]
    pub failover_order: u32,
    #[serde(default)]
    #[serde(alias = "publicEndpoint")]
    pub public_endpoint: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub arch: String,
    #[serde(default)]
    #[serde(alias = "memoryBytes")]
    pub memory_bytes: u64,
    #[serde(default)]
    #[serde(alias = "cpuCount")]
    pub cpu_count: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegisteredView {
    /// The instance token; shown once.
    pub token: String,
    pub expires_at: Option<String>,
    pub permissions: Vec<String>,
    pub epoch: u64,
    pub primary_id: String,
}

#[utoipa::path(post, path = "/sync/api/register", tag = "sync", request_body = RegisterBody, responses((status = 200, body = RegisteredView), (status = 400, description = "bad input, naming the field"), (status = 401, description = "wrong join token"), (status = 403, description = "the instance was removed"), (status = 409, description = "this instance is not the primary")))]
async fn register(
    State(s): State<SyncState>,
    headers: HeaderMap,
    body: Result<Json<RegisterBody>, JsonRejection>,
) -> Result<Json<RegisteredView>, ApiError> {
    let Json(b) = body.map_err(|e| crate::api::invalid_body(&e))?;
    for (field, v) in [("instance_id", &b.instance_id), ("location", &b.location)] {
        input::token(field, v.clone()).map_err(|e| input::bad("invalid_body", e.message))?;
    }
    let req = pb::RegisterRequest {
        instance_id: b.instance_id,
        name: b.name,
        location: b.location,
        version: b.version,
        capabilities: b.capabilities,
        failover_order: b.failover_order,
        public_endpoint: b.public_endpoint,
        system: Some(pb::SystemInfo {
            platform: b.platform,
            arch: b.arch,
            memory_bytes: b.memory_bytes,
            cpu_count: b.cpu_count,
        }),
    };
    let r = s
        .client
        .clone()
        .register(with_token(req, caller_token(&headers)))
        .await
        .map_err(|e| backend(&e))?
        .into_inner();
    Ok(Json(RegisteredView {
        expires_at: when(r.expires_at.as_ref()),
        token: r.token,
        permissions: r.permissions,
        epoch: r.epoch,
        primary_id: r.primary_id,
    }))
}

/// `POST` (or `PUT`) `/sync/api/heartbeat`; `Authorization: Bearer <instance
/// token>`. Field names may be camelCase as well (`instanceId`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatBody {
    #[schema(schema_with = token_schema)]
    #[serde(alias = "instanceId")]
    pub instance_id: String,
    #[schema(schema_with = health_schema)]
    pub status: String,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_u64)]
    #[serde(alias = "uptimeSeconds")]
    pub uptime_seconds: f64,
    #[serde(default)]
    #[serde(alias = "resultsSinceLast")]
    pub results_since_last: u64,
    #[serde(default)]
    #[serde(alias = "cpuPercent")]
    pub cpu_percent: f64,
    #[serde(default)]
    #[serde(alias = "memoryPercent")]
    pub memory_percent: f64,
    #[serde(default)]
    #[serde(alias = "diskPercent")]
    pub disk_percent: f64,
    #[serde(default)]
    #[serde(alias = "activeEndpoints")]
    pub active_endpoints: u32,
    #[serde(default)]
    #[serde(alias = "primaryReachable")]
    pub primary_reachable: bool,
    #[serde(default)]
    #[serde(alias = "syncErrors")]
    pub sync_errors: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeartbeatView {
    pub epoch: u64,
    pub primary_id: String,
    pub config_hash: String,
}

#[utoipa::path(post, path = "/sync/api/heartbeat", tag = "sync", request_body = HeartbeatBody, responses((status = 200, body = HeartbeatView), (status = 400, description = "bad input, naming the field"), (status = 401, description = "unknown, expired or revoked instance token")))]
async fn heartbeat(
    State(s): State<SyncState>,
    headers: HeaderMap,
    body: Result<Json<HeartbeatBody>, JsonRejection>,
) -> Result<Json<HeartbeatView>, ApiError> {
    let Json(b) = body.map_err(|e| crate::api::invalid_body(&e))?;
    input::token("instance_id", b.instance_id.clone()).map_err(|e| input::bad("invalid_body", e.message))?;
    let status = match b.status.as_str() {
        "healthy" => pb::InstanceHealth::Healthy,
        "degraded" => pb::InstanceHealth::Degraded,
        "failing" => pb::InstanceHealth::Failing,
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidArgument,
                format!("status `{other}` must be healthy, degraded or failing"),
            )
            .reason("invalid_body"));
        }
    };
    // Negative, NaN, infinite or too large for a duration: refused, never a panic.
    let uptime = Some(b.uptime_seconds)
        .filter(|u| *u <= 1e12)
        .and_then(|u| std::time::Duration::try_from_secs_f64(u).ok());
    let Some(uptime) = uptime else {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "uptime_seconds must be a number of seconds from 0 to 1e12",
        )
        .reason("invalid_body"));
    };
    let req = pb::HeartbeatRequest {
        instance_id: b.instance_id,
        status: status as i32,
        uptime: Some(to_duration(uptime)),
        results_since_last: b.results_since_last,
        metrics: Some(pb::SystemMetrics {
            cpu_percent: b.cpu_percent,
            memory_percent: b.memory_percent,
            disk_percent: b.disk_percent,
            active_endpoints: b.active_endpoints,
        }),
        connection: Some(pb::ConnectionStatus {
            primary_reachable: b.primary_reachable,
            last_sync_success: None,
            sync_errors: b.sync_errors,
        }),
        buffered_results: 0,
    };
    let r = s
        .client
        .clone()
        .heartbeat(with_token(req, caller_token(&headers)))
        .await
        .map_err(|e| backend(&e))?
        .into_inner();
    Ok(Json(HeartbeatView {
        epoch: r.epoch,
        primary_id: r.primary_id,
        config_hash: r.config_hash,
    }))
}

/// `PUT /sync/api/heartbeat`: the original contract's method, the same as `POST`.
#[utoipa::path(put, path = "/sync/api/heartbeat", tag = "sync", request_body = HeartbeatBody, responses((status = 200, body = HeartbeatView), (status = 400, description = "bad input, naming the field"), (status = 401, description = "unknown, expired or revoked instance token")))]
async fn heartbeat_put(
    s: State<SyncState>,
    headers: HeaderMap,
    body: Result<Json<HeartbeatBody>, JsonRejection>,
) -> Result<Json<HeartbeatView>, ApiError> {
    heartbeat(s, headers, body).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConfigQuery {
    #[param(schema_with = token_schema)]
    #[serde(alias = "instanceId")]
    pub instance_id: String,
    /// The hash the caller holds; an unchanged configuration is not resent.
    #[serde(default)]
    #[serde(alias = "ifNoneMatch")]
    pub if_none_match: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TargetView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub interval_seconds: Option<f64>,
    pub timeout_seconds: Option<f64>,
    pub labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    pub id: String,
    pub kind: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConfigView {
    pub version: u64,
    pub hash: String,
    pub unchanged: bool,
    pub targets: Vec<TargetView>,
    pub channels: Vec<ChannelView>,
    /// The settings every instance shares.
    pub settings: crate::sync_endpoints::SettingsView,
}

#[utoipa::path(get, path = "/sync/api/config", tag = "sync", params(ConfigQuery), responses((status = 200, body = ConfigView), (status = 400, description = "bad query, naming the parameter"), (status = 401, description = "unknown, expired or revoked instance token")))]
async fn config(
    State(s): State<SyncState>,
    headers: HeaderMap,
    q: Result<Query<ConfigQuery>, QueryRejection>,
) -> Result<Json<ConfigView>, ApiError> {
    let Query(q) = q.map_err(|e| crate::api::bad_query(&e))?;
    let q = ConfigQuery {
        instance_id: input::token("instance_id", q.instance_id).map_err(|e| input::bad("invalid_query", e.message))?,
        ..q
    };
    let req = pb::GetConfigRequest {
        instance_id: q.instance_id,
        if_none_match: q.if_none_match,
    };
    let r = s
        .client
        .clone()
        .get_config(with_token(req, caller_token(&headers)))
        .await
        .map_err(|e| backend(&e))?
        .into_inner();
    let c = r.config.unwrap_or_default();
    let secs = |d: Option<&prost_types::Duration>| d.and_then(from_duration).map(|d| d.as_secs_f64());
    Ok(Json(ConfigView {
        version: r.version,
        hash: r.hash,
        unchanged: r.unchanged,
        targets: c
            .targets
            .into_iter()
            .map(|t| TargetView {
                kind: pb::CheckKind::try_from(t.kind)
                    .map(|k| k.as_str_name().trim_start_matches("CHECK_KIND_").to_lowercase())
                    .unwrap_or_default(),
                interval_seconds: secs(t.interval.as_ref()),
                timeout_seconds: secs(t.timeout.as_ref()),
                labels: t.labels.into_iter().collect(),
                id: t.id,
                name: t.name,
            })
            .collect(),
        channels: c
            .channels
            .into_iter()
            .map(|ch| ChannelView {
                id: ch.id,
                kind: ch.kind,
            })
            .collect(),
        settings: crate::sync_endpoints::settings_view(c.settings.as_ref()),
    }))
}

#[utoipa::path(post, path = "/sync/api/promote", tag = "sync", responses((status = 200, body = StatusView), (status = 409, description = "the lease changed meanwhile, or no NATS lease is configured")))]
async fn promote(State(s): State<SyncState>) -> Result<Json<StatusView>, ApiError> {
    s.client
        .clone()
        .promote(admin_call(pb::PromoteRequest {}))
        .await
        .map_err(|e| backend(&e))?;
    status(State(s)).await
}

#[utoipa::path(post, path = "/sync/api/demote/{id}", tag = "sync", params(("id" = String, Path, description = "the primary's instance id")), responses((status = 200, body = StatusView), (status = 409, description = "that instance is not the primary")))]
async fn demote(State(s): State<SyncState>, Path(id): Path<String>) -> Result<Json<StatusView>, ApiError> {
    let id = input::token("instance id", id)?;
    s.client
        .clone()
        .demote(admin_call(pb::DemoteRequest { instance_id: id }))
        .await
        .map_err(|e| backend(&e))?;
    status(State(s)).await
}

/// The sync routes' OpenAPI paths and schemas.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        status,
        instances,
        remove_instance,
        failover_order,
        register,
        heartbeat,
        heartbeat_put,
        config,
        promote,
        demote
    ),
    components(schemas(
        StatusView,
        InstanceView,
        InstancesView,
        CandidateView,
        FailoverOrderView,
        RegisterBody,
        RegisteredView,
        HeartbeatBody,
        HeartbeatView,
        TargetView,
        ChannelView,
        ConfigView
    ))
)]
pub struct Doc;
