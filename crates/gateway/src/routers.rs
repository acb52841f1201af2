//! Router routes, answered by the WAN detector over gRPC
//! (`gateway.wan_detector_url`), which keeps the latest `RouterInfo` and
//! `InterfaceSample`s of every router from the bus:
//!
//! - `GET /api/v1/routers`: every router seen, with reachability, interface
//!   and WAN counts;
//! - `GET /api/v1/routers/{id}/interfaces`: its interfaces with current rates
//!   and status (`unknown` while the router does not answer);
//! - `GET /api/v1/routers/{id}/wan[?refresh=true][&all=true]`: the interfaces
//!   judged WAN, with methods, confidence and ISP (`all=true` adds the rest).

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use pantau_core::error::{ApiError, ErrorCode};
use pantau_core::grpc::Channel;
use pantau_core::time::{from_duration, from_timestamp, rfc3339};
use pantau_proto::v1 as pb;
use pantau_proto::v1::wan_detector_service_client::WanDetectorServiceClient;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::labels::{LinkStatus, WanMethod};

/// The router routes, with their own client of the WAN detector.
pub fn router<S: Clone + Send + Sync + 'static>(ctx: &pantau_core::service::Context) -> Router<S> {
    let client = WanDetectorServiceClient::new(ctx.channel(&ctx.config.gateway.wan_detector_url));
    Router::new()
        .route("/api/v1/routers", get(list))
        .route("/api/v1/routers/{id}/interfaces", get(interfaces))
        .route("/api/v1/routers/{id}/wan", get(wan))
        .with_state(client)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, interfaces, wan),
    components(schemas(
        RouterView,
        RoutersResponse,
        InterfaceView,
        InterfacesResponse,
        WanResponse,
        WanInterfaceView,
        EvidenceView,
        IspView
    ))
)]
pub struct Doc;

type Client = WanDetectorServiceClient<Channel>;

fn backend(status: &tonic::Status) -> ApiError {
    crate::grpc_error(status, "wan detector")
}

fn when(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(from_timestamp).map(rfc3339)
}

/// A router id as the path gives it ([`crate::input::TOKEN`]).
fn router_id(id: String) -> Result<String, ApiError> {
    crate::input::token("router id", id)
        .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.message).reason("invalid_router_id"))
}

/// A router as the WAN detector last saw it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouterView {
    pub id: String,
    pub name: String,
    pub sys_name: String,
    pub sys_descr: String,
    /// RFC 3339: when its latest poll arrived.
    pub last_seen: Option<String>,
    /// False after the collector reported it unreachable, or when it has not
    /// been polled within `wan_detector.stale_after`.
    pub reachable: bool,
    pub interface_count: u32,
    pub wan_count: u32,
    pub uptime_seconds: Option<u64>,
    pub labels: BTreeMap<String, String>,
}

impl From<pb::RouterSummary> for RouterView {
    fn from(r: pb::RouterSummary) -> Self {
        Self {
            last_seen: when(r.last_seen.as_ref()),
            uptime_seconds: r.uptime.as_ref().and_then(from_duration).map(|d| d.as_secs()),
            labels: r.labels.into_iter().collect(),
            id: r.router_id,
            name: r.router_name,
            sys_name: r.sys_name,
            sys_descr: r.sys_descr,
            reachable: r.reachable,
            interface_count: r.interface_count,
            wan_count: r.wan_count,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoutersResponse {
    pub routers: Vec<RouterView>,
}

/// One interface with its current rates and status.
#[derive(Debug, Serialize, ToSchema)]
pub struct InterfaceView {
    pub if_index: u32,
    pub name: String,
    pub alias: String,
    pub descr: String,
    pub comment: String,
    pub if_type: i32,
    /// `unknown` while the router does not answer.
    pub status: LinkStatus,
    pub speed_bits_per_second: u64,
    pub in_bits_per_second: f64,
    pub out_bits_per_second: f64,
    pub in_packets_per_second: f64,
    pub out_packets_per_second: f64,
    pub in_errors: u64,
    pub out_errors: u64,
    pub in_discards: u64,
    pub out_discards: u64,
    /// RFC 3339: when the latest sample was taken.
    pub sampled_at: Option<String>,
    pub addresses: Vec<String>,
}

impl From<pb::InterfaceState> for InterfaceView {
    fn from(i: pb::InterfaceState) -> Self {
        Self {
            status: LinkStatus::from(i.status),
            sampled_at: when(i.sampled_at.as_ref()),
            if_index: i.if_index,
            name: i.name,
            alias: i.alias,
            descr: i.descr,
            comment: i.comment,
            if_type: i.if_type,
            speed_bits_per_second: i.speed_bits_per_second,
            in_bits_per_second: i.in_bits_per_second,
            out_bits_per_second: i.out_bits_per_second,
            in_packets_per_second: i.in_packets_per_second,
            out_packets_per_second: i.out_packets_per_second,
            in_errors: i.in_errors,
            out_errors: i.out_errors,
            in_discards: i.in_discards,
            out_discards: i.out_discards,
            addresses: i.addresses,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InterfacesResponse {
    pub router_id: String,
    pub reachable: bool,
    pub interfaces: Vec<InterfaceView>,
}

/// One method's evidence that an interface is WAN.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceView {
    /// `route` (0.9), `traffic` (0.7), `name` (0.5) or `manual` (1.0).
    pub method: WanMethod,
    pub confidence: f64,
    pub detail: String,
}

/// The ISP of an interface and how it was recognised.
#[derive(Debug, Serialize, ToSchema)]
pub struct IspView {
    /// telkom, indosat, xl, smartfren, three, biznet, firstmedia,
    /// myrepublic, or a name from `wan_detector.isp_map`.
    pub name: String,
    /// manual, comment, pppoe_user, alias, name, descr or address.
    pub source: String,
    pub matched: String,
}

/// An interface's WAN judgement.
#[derive(Debug, Serialize, ToSchema)]
pub struct WanInterfaceView {
    pub if_index: u32,
    pub name: String,
    pub is_wan: bool,
    /// The hybrid confidence, 0–1.
    pub confidence: f64,
    /// The methods that found evidence, strongest first.
    pub methods: Vec<EvidenceView>,
    pub isp: Option<IspView>,
    pub in_bits_per_second: f64,
    pub out_bits_per_second: f64,
    pub status: LinkStatus,
    pub alias: String,
    pub comment: String,
}

impl From<pb::WanInterface> for WanInterfaceView {
    fn from(w: pb::WanInterface) -> Self {
        Self {
            status: LinkStatus::from(w.status),
            methods: w
                .evidence
                .into_iter()
                .map(|e| EvidenceView {
                    method: WanMethod::from(e.method),
                    confidence: e.confidence,
                    detail: e.detail,
                })
                .collect(),
            isp: w.isp.map(|i| IspView {
                name: i.name,
                source: i.source,
                matched: i.matched,
            }),
            if_index: w.if_index,
            name: w.name,
            is_wan: w.is_wan,
            confidence: w.confidence,
            in_bits_per_second: w.in_bits_per_second,
            out_bits_per_second: w.out_bits_per_second,
            alias: w.alias,
            comment: w.comment,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WanResponse {
    pub router_id: String,
    pub router_name: String,
    pub reachable: bool,
    /// Whether the judgement came from the WAN detector's cache.
    pub cached: bool,
    /// RFC 3339: when the judgement was made.
    pub detected_at: Option<String>,
    /// WAN interfaces, strongest first (every interface with `all=true`).
    pub interfaces: Vec<WanInterfaceView>,
}

/// Options of `GET /api/v1/routers/{id}/wan`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WanQuery {
    /// Judge again now instead of answering from the cache.
    pub refresh: Option<bool>,
    /// Also list the interfaces not judged WAN.
    pub all: Option<bool>,
}

/// Every router the WAN detector has seen on the bus.
#[utoipa::path(get, path = "/api/v1/routers", tag = "routers",
    responses((status = 200, body = RoutersResponse), (status = 503, description = "the WAN detector is unavailable")))]
async fn list(State(mut c): State<Client>) -> Result<Json<RoutersResponse>, ApiError> {
    let r = c
        .list_routers(pb::ListRoutersRequest {})
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(RoutersResponse {
        routers: r.routers.into_iter().map(RouterView::from).collect(),
    }))
}

/// A router's interfaces with their current rates and status.
#[utoipa::path(get, path = "/api/v1/routers/{id}/interfaces", tag = "routers",
    params(("id" = String, Path, description = "The router id")),
    responses((status = 200, body = InterfacesResponse), (status = 400, description = "bad router id"),
        (status = 401), (status = 403), (status = 404, description = "no such router"),
        (status = 503, description = "the WAN detector is unavailable")),
    security(("bearer" = [])))]
async fn interfaces(State(mut c): State<Client>, Path(id): Path<String>) -> Result<Json<InterfacesResponse>, ApiError> {
    let id = router_id(id)?;
    let r = c
        .list_interfaces(pb::ListInterfacesRequest { router_id: id })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(InterfacesResponse {
        router_id: r.router_id,
        reachable: r.reachable,
        interfaces: r.interfaces.into_iter().map(InterfaceView::from).collect(),
    }))
}

/// A router's WAN interfaces: methods, confidence, ISP, traffic and status.
#[utoipa::path(get, path = "/api/v1/routers/{id}/wan", tag = "routers",
    params(("id" = String, Path, description = "The router id"), WanQuery),
    responses((status = 200, body = WanResponse), (status = 400, description = "bad router id or query, naming it"),
        (status = 401), (status = 403), (status = 404, description = "no such router"),
        (status = 503, description = "the WAN detector is unavailable, or the router has not been polled yet")),
    security(("bearer" = [])))]
async fn wan(
    State(mut c): State<Client>,
    Path(id): Path<String>,
    q: Result<Query<WanQuery>, QueryRejection>,
) -> Result<Json<WanResponse>, ApiError> {
    let Query(q) = q.map_err(|e| crate::api::bad_query(&e))?;
    let id = router_id(id)?;
    let r = c
        .detect_wan(pb::DetectWanRequest {
            router_id: id,
            force_refresh: q.refresh.unwrap_or(false),
        })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    let all = q.all.unwrap_or(false);
    Ok(Json(WanResponse {
        detected_at: when(r.detected_at.as_ref()),
        interfaces: r
            .interfaces
            .into_iter()
            .filter(|i| all || i.is_wan)
            .map(WanInterfaceView::from)
            .collect(),
        router_id: r.router_id,
        router_name: r.router_name,
        reachable: r.reachable,
        cached: r.cached,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_statuses_and_methods() {
        assert_eq!(LinkStatus::from(pb::LinkStatus::Unknown as i32).as_str(), "unknown");
        assert_eq!(
            LinkStatus::from(pb::LinkStatus::AdminDown as i32).as_str(),
            "admin_down"
        );
        assert_eq!(LinkStatus::from(99).as_str(), "unknown");
        assert_eq!(WanMethod::from(pb::WanMethod::Route as i32).as_str(), "route");
        assert_eq!(WanMethod::from(pb::WanMethod::Manual as i32).as_str(), "manual");
        assert!(router_id("r1".into()).is_ok());
        assert_eq!(
            router_id("a.b".into()).unwrap_err().status,
            axum::http::StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn the_document_has_the_router_routes() {
        use utoipa::OpenApi;
        let json = serde_json::to_value(Doc::openapi()).unwrap();
        for p in [
            "/api/v1/routers",
            "/api/v1/routers/{id}/interfaces",
            "/api/v1/routers/{id}/wan",
        ] {
            assert!(json["paths"][p]["get"].is_object(), "{p}");
        }
        let params = json["paths"]["/api/v1/routers/{id}/wan"]["get"]["parameters"].to_string();
        assert!(params.contains("refresh") && params.contains("all"), "{params}");
    }
}
