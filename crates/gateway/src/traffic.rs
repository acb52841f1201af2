//! Interface traffic history, answered by the collector over gRPC
//! (`GetInterfaceTraffic`, `gateway.collector_url`), which polls the routers
//! and rolls their rates up per minute and per hour:
//!
//! - `GET /api/v1/routers/{id}/interfaces/{name}/traffic?resolution=minute|hour&from=&to=`:
//!   the interface's points (bits/s in and out: min, avg, max, p95) and the
//!   95th percentile over the range (the burstable-billing figure).
//!
//! The interface name is the path segment, percent-decoded (`ether1`,
//! `GigabitEthernet0%2F1`): 1–255 bytes, no control characters.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use pantau_core::error::ApiError;
use pantau_core::grpc::Channel;
use pantau_core::time::{from_timestamp, rfc3339, to_timestamp};
use pantau_proto::v1 as pb;
use pantau_proto::v1::collector_service_client::CollectorServiceClient;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::input::{self, bad};

/// The longest interface name (ifName/ifDescr are at most 255 octets).
pub const MAX_NAME_BYTES: usize = 255;

/// The traffic route, with its own client of the collector.
pub fn router<S: Clone + Send + Sync + 'static>(ctx: &pantau_core::service::Context) -> Router<S> {
    let client = Client::new(ctx.channel(&ctx.config.gateway.collector_url));
    Router::new()
        .route("/api/v1/routers/{id}/interfaces/{name}/traffic", get(traffic))
        .with_state(client)
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(traffic), components(schemas(TrafficView, TrafficPointView)))]
pub struct Doc;

pub type Client = CollectorServiceClient<Channel>;

/// The query of a traffic request.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrafficQuery {
    /// `minute` or `hour` (default: minutes for ranges up to 2 days, hours
    /// beyond; minutes cover at most 8 days, hours 800).
    #[param(schema_with = resolution_schema)]
    pub resolution: Option<String>,
    /// RFC 3339; default `to` minus 24 hours.
    #[param(schema_with = time_schema)]
    pub from: Option<String>,
    /// RFC 3339; default now.
    #[param(schema_with = time_schema)]
    pub to: Option<String>,
}

fn resolution_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::enum_schema(&["minute", "hour"]))
}

fn time_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::time_schema())
}

/// One minute or hour of an interface's traffic, in bits per second.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrafficPointView {
    /// RFC 3339.
    pub start: Option<String>,
    /// The poll rates folded in.
    pub samples: u64,
    pub in_min_bps: f64,
    pub in_avg_bps: f64,
    pub in_max_bps: f64,
    /// A minute's: the exact 95th percentile (nearest rank) of its poll
    /// rates; an hour's: that of its minutes' averages.
    pub in_p95_bps: f64,
    pub out_min_bps: f64,
    pub out_avg_bps: f64,
    pub out_max_bps: f64,
    pub out_p95_bps: f64,
}

/// An interface's traffic over a range, with its 95th percentile.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrafficView {
    pub router_id: String,
    pub interface: String,
    /// `minute` or `hour`.
    pub resolution: String,
    /// RFC 3339: the range, `[from, to)`.
    pub from: Option<String>,
    pub to: Option<String>,
    pub points: Vec<TrafficPointView>,
    /// The 95th percentile (nearest rank) of the per-minute average inbound
    /// rates over the range (per-hour when `from` is older than
    /// `collector.history.minute_retention`; see `p95_basis`).
    pub p95_in_bps: f64,
    pub p95_out_bps: f64,
    /// The larger of the two: what a 95th-percentile bill charges.
    pub p95_bps: f64,
    /// `minute` or `hour`: whose averages the p95 figures were taken over.
    pub p95_basis: String,
    /// How many averages the p95 figures were taken over.
    pub p95_samples: u64,
}

fn resolution_name(r: i32) -> String {
    if r == pb::Resolution::Hour as i32 {
        "hour".to_owned()
    } else {
        "minute".to_owned()
    }
}

/// An interface name from the path: 1–255 bytes, no control characters.
pub fn interface_name(name: String) -> Result<String, ApiError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(bad(
            "invalid_path",
            format!(
                "interface name `{}` is not valid: use 1–{MAX_NAME_BYTES} bytes without control characters",
                pantau_config::types::quote(&name)
            ),
        ));
    }
    Ok(name)
}

/// The request to the collector from a checked path and query.
pub fn request(id: String, name: String, q: &TrafficQuery) -> Result<pb::GetInterfaceTrafficRequest, ApiError> {
    let router_id = input::token("router id", id)?;
    let interface = interface_name(name)?;
    let resolution = match q.resolution.as_deref() {
        None => pb::Resolution::Unspecified,
        Some("minute") => pb::Resolution::Minute,
        Some("hour") => pb::Resolution::Hour,
        Some(other) => {
            return Err(bad(
                "invalid_query",
                format!(
                    "resolution `{}` is not allowed: use minute or hour",
                    pantau_config::types::quote(other)
                ),
            ));
        }
    };
    let from = q.from.as_deref().map(|t| input::time("from", t)).transpose()?;
    let to = q.to.as_deref().map(|t| input::time("to", t)).transpose()?;
    let to_or_now = to.unwrap_or_else(SystemTime::now);
    if let Some(from) = from
        && from >= to_or_now
    {
        return Err(bad(
            "invalid_query",
            if to.is_some() {
                "from must be before to"
            } else {
                "from must be in the past (to defaults to now)"
            },
        ));
    }
    let span = to_or_now
        .duration_since(from.unwrap_or(to_or_now - Duration::from_secs(86_400)))
        .unwrap_or_default();
    let (most, what) = match resolution {
        pb::Resolution::Minute => (8 * 86_400, "8 days at resolution minute"),
        _ => (800 * 86_400, "800 days"),
    };
    if span > Duration::from_secs(most) {
        return Err(bad(
            "invalid_query",
            format!("from..to spans more than {what}: ask for a shorter range or resolution=hour"),
        ));
    }
    Ok(pb::GetInterfaceTrafficRequest {
        router_id,
        interface,
        from: from.map(to_timestamp),
        to: to.map(to_timestamp),
        resolution: resolution.into(),
    })
}

/// Asks the collector.
pub async fn fetch(c: &mut Client, req: pb::GetInterfaceTrafficRequest) -> Result<TrafficView, ApiError> {
    let r = c
        .get_interface_traffic(req)
        .await
        .map_err(|s| crate::grpc_error(&s, "collector"))?
        .into_inner();
    let when = |t: Option<&prost_types::Timestamp>| t.and_then(from_timestamp).map(rfc3339);
    Ok(TrafficView {
        from: when(r.from.as_ref()),
        to: when(r.to.as_ref()),
        resolution: resolution_name(r.resolution),
        p95_basis: resolution_name(r.p95_basis),
        points: r
            .points
            .into_iter()
            .map(|p| TrafficPointView {
                start: when(p.start.as_ref()),
                samples: p.samples,
                in_min_bps: p.in_min_bps,
                in_avg_bps: p.in_avg_bps,
                in_max_bps: p.in_max_bps,
                in_p95_bps: p.in_p95_bps,
                out_min_bps: p.out_min_bps,
                out_avg_bps: p.out_avg_bps,
                out_max_bps: p.out_max_bps,
                out_p95_bps: p.out_p95_bps,
            })
            .collect(),
        router_id: r.router_id,
        interface: r.interface,
        p95_in_bps: r.p95_in_bps,
        p95_out_bps: r.p95_out_bps,
        p95_bps: r.p95_bps,
        p95_samples: r.p95_samples,
    })
}

/// An interface's traffic history, with the 95th percentile over the range.
#[utoipa::path(get, path = "/api/v1/routers/{id}/interfaces/{name}/traffic", tag = "routers",
    params(
        ("id" = String, Path, description = "The router id (`collector.routers[].id`)", pattern = r"^[A-Za-z0-9_-]{1,128}$"),
        ("name" = String, Path, description = "The interface name (ifName, else ifDescr), percent-encoded; 1–255 bytes, no control characters"),
        TrafficQuery),
    responses((status = 200, body = TrafficView), (status = 400, description = "a bad router id, interface name or query parameter, named in the message"),
        (status = 404, description = "no such router in collector.routers"),
        (status = 503, description = "the collector is unavailable")),
    security(("bearer" = [])))]
async fn traffic(
    State(mut c): State<Client>,
    path: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<TrafficQuery>, QueryRejection>,
) -> Result<Json<TrafficView>, ApiError> {
    // A segment that does not decode to UTF-8 is a bad path, in the one error body.
    let Path((id, name)) = path.map_err(|e| {
        bad(
            "invalid_path",
            format!(
                "the path does not decode: {}",
                pantau_config::types::quote(&e.body_text())
            ),
        )
    })?;
    let Query(q) = q.map_err(|e| crate::api::bad_query(&e))?;
    let req = request(id, name, &q)?;
    Ok(Json(fetch(&mut c, req).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn q(resolution: Option<&str>, from: Option<&str>, to: Option<&str>) -> TrafficQuery {
        TrafficQuery {
            resolution: resolution.map(str::to_owned),
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
        }
    }

    fn refused(id: &str, name: &str, query: &TrafficQuery) -> String {
        let e = request(id.into(), name.into(), query).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        e.message
    }

    #[test]
    fn hostile_paths_and_queries_are_refused_by_name() {
        assert!(request("edge".into(), "ether1".into(), &q(None, None, None)).is_ok());
        assert!(request("edge".into(), "Gi0/1 uplink".into(), &q(Some("hour"), None, None)).is_ok());
        assert!(refused("a.b", "ether1", &q(None, None, None)).contains("router id"));
        assert!(refused("edge", "", &q(None, None, None)).contains("interface name"));
        assert!(refused("edge", &"x".repeat(256), &q(None, None, None)).contains("interface name"));
        assert!(refused("edge", "eth\u{7}", &q(None, None, None)).contains("interface name"));
        assert!(refused("edge", "e", &q(Some("second"), None, None)).contains("resolution"));
        assert!(refused("edge", "e", &q(Some(&"h".repeat(10_000)), None, None)).contains("resolution"));
        assert!(refused("edge", "e", &q(None, Some("yesterday"), None)).contains("from"));
        assert!(refused("edge", "e", &q(None, None, Some("2026-13-01T00:00:00Z"))).contains("to"));
        assert!(
            refused(
                "edge",
                "e",
                &q(None, Some("2026-01-02T00:00:00Z"), Some("2026-01-01T00:00:00Z"))
            )
            .contains("before")
        );
        assert!(refused("edge", "e", &q(None, Some("2999-01-01T00:00:00Z"), None)).contains("past"));
        assert!(
            refused(
                "edge",
                "e",
                &q(
                    Some("minute"),
                    Some("2026-01-01T00:00:00Z"),
                    Some("2026-01-10T00:00:00Z")
                )
            )
            .contains("8 days")
        );
        assert!(
            refused(
                "edge",
                "e",
                &q(None, Some("2000-01-01T00:00:00Z"), Some("2026-01-10T00:00:00Z"))
            )
            .contains("800 days")
        );
    }

    #[test]
    fn the_document_has_the_traffic_route() {
        use utoipa::OpenApi;
        let json = serde_json::to_value(Doc::openapi()).unwrap();
        let op = &json["paths"]["/api/v1/routers/{id}/interfaces/{name}/traffic"]["get"];
        let params = op["parameters"].to_string();
        for p in ["resolution", "from", "to", "\"name\"", "\"id\""] {
            assert!(params.contains(p), "{p}: {params}");
        }
    }
}
