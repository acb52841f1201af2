//! The original distributed-monitoring contract's read routes for a
//! dependent, beside `GET /sync/api/config`: the same configuration, whole.
//!
//! - `GET /sync/api/endpoints`: every target a dependent checks, with its
//!   full configuration (URL, address, checks; secrets masked as everywhere
//!   in the REST API — a dependent gets them over gRPC `GetConfig`);
//! - `GET /sync/api/endpoints/{id}`: one of them;
//! - `GET /sync/api/notification-services`: the channels and the global
//!   settings (check interval and timeout, heartbeat and sync intervals).
//!
//! Each is an instance call: `Authorization: Bearer <instance token>` and
//! `instance_id` (or `instanceId`) naming the instance, checked by the
//! sync-api as for `GET /sync/api/config`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use pantau_config::TargetConfig;
use pantau_config::proto::target_from_proto;
use pantau_core::error::{ApiError, ErrorCode};
use pantau_core::time::from_duration;
use pantau_proto::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::input;
use crate::sync::{SyncState, backend, caller_token, with_token};

/// The instance asking.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InstanceQuery {
    /// The calling instance (its token must be this instance's).
    #[serde(alias = "instanceId")]
    #[param(schema_with = token_schema)]
    pub instance_id: String,
}

fn token_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::token_schema())
}

/// The configuration as the primary serves it to `instance_id`.
async fn synced(
    s: &SyncState,
    headers: &HeaderMap,
    q: Result<Query<InstanceQuery>, QueryRejection>,
) -> Result<(u64, String, pb::SyncedConfig), ApiError> {
    let Query(q) = q.map_err(|e| crate::api::bad_query(&e))?;
    let instance_id = input::token("instance_id", q.instance_id).map_err(|e| input::bad("invalid_query", e.message))?;
    let req = pb::GetConfigRequest {
        instance_id,
        if_none_match: String::new(),
    };
    let r = s
        .client
        .clone()
        .get_config(with_token(req, caller_token(headers)))
        .await
        .map_err(|e| backend(&e))?
        .into_inner();
    Ok((r.version, r.hash, r.config.unwrap_or_default()))
}

/// One endpoint: a `collector.targets[]` entry as the REST API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub config: TargetConfig,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointsView {
    /// The configuration's version and hash (as in `/sync/api/config`).
    pub version: u64,
    pub hash: String,
    pub endpoints: Vec<EndpointView>,
}

fn endpoint_view(t: &pb::Target) -> Result<EndpointView, ApiError> {
    target_from_proto(t).map(|config| EndpointView { config }).map_err(|e| {
        tracing::error!(error = %e, target = %t.id, "the sync API sent a target that does not convert");
        ApiError::new(ErrorCode::Internal, "the sync API sent a malformed target")
            .reason("backend_error")
            .status(axum::http::StatusCode::BAD_GATEWAY)
    })
}

/// Every endpoint (target) a dependent checks, with its whole configuration.
#[utoipa::path(get, path = "/sync/api/endpoints", tag = "sync", params(InstanceQuery),
    responses((status = 200, body = EndpointsView), (status = 400, description = "bad query, naming the parameter"), (status = 401, description = "unknown, expired or revoked instance token")))]
pub(crate) async fn endpoints(
    State(s): State<SyncState>,
    headers: HeaderMap,
    q: Result<Query<InstanceQuery>, QueryRejection>,
) -> Result<Json<EndpointsView>, ApiError> {
    let (version, hash, c) = synced(&s, &headers, q).await?;
    let endpoints = c.targets.iter().map(endpoint_view).collect::<Result<_, _>>()?;
    Ok(Json(EndpointsView {
        version,
        hash,
        endpoints,
    }))
}

/// One endpoint (target) by id.
#[utoipa::path(get, path = "/sync/api/endpoints/{id}", tag = "sync",
    params(("id" = String, Path, description = "the target's id"), InstanceQuery),
    responses((status = 200, body = EndpointView), (status = 400, description = "bad id or query, naming it"), (status = 401, description = "unknown, expired or revoked instance token"), (status = 404, description = "no such endpoint")))]
pub(crate) async fn endpoint(
    State(s): State<SyncState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<InstanceQuery>, QueryRejection>,
) -> Result<Json<EndpointView>, ApiError> {
    let id = input::token("id", id)?;
    let (_, _, c) = synced(&s, &headers, q).await?;
    let t = c
        .targets
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no endpoint `{id}`")))?;
    Ok(Json(endpoint_view(t)?))
}

/// A notification channel a dependent may use.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceView {
    pub id: String,
    /// Its type (`webhook`, `slack`, `email`, …).
    pub kind: String,
}

/// The settings every instance of the cluster shares.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SettingsView {
    pub check_interval_seconds: Option<f64>,
    pub check_timeout_seconds: Option<f64>,
    pub heartbeat_interval_seconds: Option<f64>,
    pub sync_interval_seconds: Option<f64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServicesView {
    pub version: u64,
    pub hash: String,
    pub services: Vec<ServiceView>,
    pub settings: SettingsView,
}

pub fn settings_view(g: Option<&pb::GlobalSettings>) -> SettingsView {
    let secs = |d: Option<&prost_types::Duration>| d.and_then(from_duration).map(|d| d.as_secs_f64());
    let g = g.copied().unwrap_or_default();
    SettingsView {
        check_interval_seconds: secs(g.check_interval.as_ref()),
        check_timeout_seconds: secs(g.check_timeout.as_ref()),
        heartbeat_interval_seconds: secs(g.heartbeat_interval.as_ref()),
        sync_interval_seconds: secs(g.sync_interval.as_ref()),
    }
}

/// The notification channels and the shared settings.
#[utoipa::path(get, path = "/sync/api/notification-services", tag = "sync", params(InstanceQuery),
    responses((status = 200, body = ServicesView), (status = 400, description = "bad query, naming the parameter"), (status = 401, description = "unknown, expired or revoked instance token")))]
pub(crate) async fn notification_services(
    State(s): State<SyncState>,
    headers: HeaderMap,
    q: Result<Query<InstanceQuery>, QueryRejection>,
) -> Result<Json<ServicesView>, ApiError> {
    let (version, hash, c) = synced(&s, &headers, q).await?;
    Ok(Json(ServicesView {
        version,
        hash,
        services: c
            .channels
            .into_iter()
            .map(|ch| ServiceView {
                id: ch.id,
                kind: ch.kind,
            })
            .collect(),
        settings: settings_view(c.settings.as_ref()),
    }))
}

/// The routes' OpenAPI paths and schemas.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(endpoints, endpoint, notification_services),
    components(schemas(EndpointView, EndpointsView, ServiceView, SettingsView, ServicesView))
)]
pub struct Doc;
