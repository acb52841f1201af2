//! `pantau.v1.CollectorService` over the [`Collector`].

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::{Stream, StreamExt};
use pantau_core::error::quote;
use pantau_core::time::{from_timestamp, to_timestamp};
use pantau_proto::v1::collector_service_server::{CollectorService, CollectorServiceServer};
use pantau_proto::v1::{
    CheckResult, DeleteTargetRequest, DeleteTargetResponse, GetHistoryRequest, GetHistoryResponse, GetTargetRequest,
    HistoryPoint, ListLatestResultsRequest, ListLatestResultsResponse, ListTargetsRequest, ListTargetsResponse,
    PauseTargetRequest, PushRequest, PushResponse, Resolution, ResumeTargetRequest, RunCheckRequest,
    StreamResultsRequest, Target, UpsertTargetRequest,
};
use pantau_proto::v1::{GetInterfaceTrafficRequest, GetInterfaceTrafficResponse, TrafficPoint};
use tokio::net::TcpListener;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::checks::push::Push;
use crate::history;
use crate::scheduler::Collector;

/// The gRPC face of the collector.
pub struct Service(Arc<Collector>, CancellationToken);

/// Serves `CollectorService` with health and reflection until `shutdown`.
/// Callers need a token (see `pantau_core::grpc::access`); writes are
/// audited in `store`.
pub async fn serve(
    ctx: &pantau_core::service::Context,
    collector: Arc<Collector>,
    listener: TcpListener,
    store: &pantau_core::store::Store,
) -> Result<(), pantau_core::grpc::GrpcError> {
    let routes = tonic::service::Routes::new(CollectorServiceServer::new(Service(collector, ctx.shutdown.clone())));
    pantau_core::grpc::serve(
        ctx,
        listener,
        routes,
        &[<CollectorServiceServer<Service> as NamedService>::NAME],
        Some(store),
    )
    .await
}

type ResultStream = Pin<Box<dyn Stream<Item = Result<CheckResult, Status>> + Send>>;

/// Ranges up to this long are answered in minutes by default.
const MINUTES_UP_TO: Duration = Duration::from_secs(2 * 86_400);
/// The longest traffic range in minutes (11,520 points).
pub const TRAFFIC_MINUTES_AT_MOST: Duration = Duration::from_secs(8 * 86_400);
/// The longest traffic range in hours (19,200 points).
pub const TRAFFIC_HOURS_AT_MOST: Duration = Duration::from_secs(800 * 86_400);

impl Service {
    fn entry(&self, id: &str) -> Result<Arc<crate::scheduler::Entry>, Status> {
        if id.is_empty() {
            return Err(Status::invalid_argument("a target id is required"));
        }
        self.0
            .entry(id)
            .ok_or_else(|| Status::not_found(format!("no target with id `{}`", quote(id))))
    }

    /// `e` as the API shows it: its breaker, and its pause if it is paused.
    fn view(&self, e: &crate::scheduler::Entry) -> Target {
        let mut t = e.target.to_proto(e.breaker_state());
        t.paused = self.0.paused(e.target.id()).map(|p| p.to_proto());
        t
    }
}

/// The caller's audit name (`anonymous` when gRPC auth is off).
fn actor<T>(req: &Request<T>) -> String {
    req.extensions()
        .get::<pantau_core::auth::Caller>()
        .map_or_else(|| "anonymous".to_owned(), pantau_core::auth::Caller::actor)
}

/// A target id from a request: required.
fn target_id(id: &str) -> Result<&str, Status> {
    if id.is_empty() {
        return Err(Status::invalid_argument("`target_id` is required"));
    }
    Ok(id)
}

#[tonic::async_trait]
impl CollectorService for Service {
    async fn list_targets(&self, _: Request<ListTargetsRequest>) -> Result<Response<ListTargetsResponse>, Status> {
        Ok(Response::new(ListTargetsResponse {
            targets: self.0.entries().iter().map(|e| self.view(e)).collect(),
        }))
    }

    async fn get_target(&self, req: Request<GetTargetRequest>) -> Result<Response<Target>, Status> {
        let e = self.entry(&req.into_inner().id)?;
        Ok(Response::new(self.view(&e)))
    }

    async fn upsert_target(&self, req: Request<UpsertTargetRequest>) -> Result<Response<Target>, Status> {
        let proto = req
            .into_inner()
            .target
            .ok_or_else(|| Status::invalid_argument("`target` is required"))?;
        let cfg =
            pantau_config::proto::target_from_proto(&proto).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let e = self.0.upsert(cfg).await.map_err(|e| pantau_core::error::status(&e))?;
        Ok(Response::new(self.view(&e)))
    }

    async fn delete_target(&self, req: Request<DeleteTargetRequest>) -> Result<Response<DeleteTargetResponse>, Status> {
        let id = req.into_inner().id;
        if id.is_empty() {
            return Err(Status::invalid_argument("a target id is required"));
        }
        self.0.delete(&id).await.map_err(|e| pantau_core::error::status(&e))?;
        Ok(Response::new(DeleteTargetResponse {}))
    }

    async fn list_latest_results(
        &self,
        req: Request<ListLatestResultsRequest>,
    ) -> Result<Response<ListLatestResultsResponse>, Status> {
        let ids = req.into_inner().target_ids;
        if let Some(unknown) = ids.iter().find(|id| self.0.entry(id).is_none()) {
            return Err(Status::not_found(format!("no target with id `{}`", quote(unknown))));
        }
        Ok(Response::new(ListLatestResultsResponse {
            results: self.0.latest_results(&ids),
        }))
    }

    async fn run_check(&self, req: Request<RunCheckRequest>) -> Result<Response<CheckResult>, Status> {
        let entry = self.entry(&req.into_inner().target_id)?;
        Ok(Response::new(self.0.execute(&entry, true).await.0))
    }

    async fn pause_target(&self, req: Request<PauseTargetRequest>) -> Result<Response<Target>, Status> {
        let by = actor(&req);
        let r = req.into_inner();
        let (e, _) = self
            .0
            .pause(target_id(&r.target_id)?, &by, &r.reason)
            .await
            .map_err(|e| pantau_core::error::status(&e))?;
        Ok(Response::new(self.view(&e)))
    }

    async fn resume_target(&self, req: Request<ResumeTargetRequest>) -> Result<Response<Target>, Status> {
        let r = req.into_inner();
        let e = self
            .0
            .resume(target_id(&r.target_id)?)
            .await
            .map_err(|e| pantau_core::error::status(&e))?;
        Ok(Response::new(self.view(&e)))
    }

    type StreamResultsStream = ResultStream;

    async fn stream_results(&self, req: Request<StreamResultsRequest>) -> Result<Response<ResultStream>, Status> {
        let ids = req.into_inner().target_ids;
        let feed = BroadcastStream::new(self.0.results().subscribe()).filter_map(move |item| {
            let out = match item {
                Ok(r) if ids.is_empty() || ids.contains(&r.target_id) => Some(Ok(r)),
                Ok(_) => None,
                Err(BroadcastStreamRecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a StreamResults client is too slow; it missed results");
                    None
                }
            };
            futures::future::ready(out)
        });
        // Streams end at shutdown, so the server can drain.
        let feed = feed.take_until(self.1.clone().cancelled_owned());
        Ok(Response::new(Box::pin(feed)))
    }

    async fn get_history(&self, req: Request<GetHistoryRequest>) -> Result<Response<GetHistoryResponse>, Status> {
        let r = req.into_inner();
        self.entry(&r.target_id)?;
        let now = SystemTime::now();
        let to = r.to.as_ref().and_then(from_timestamp).unwrap_or(now);
        let from = match &r.from {
            Some(ts) => from_timestamp(ts).ok_or_else(|| Status::invalid_argument("`from` is not a valid time"))?,
            None => to
                .checked_sub(Duration::from_secs(86_400))
                .unwrap_or(SystemTime::UNIX_EPOCH),
        };
        if from >= to {
            return Err(Status::invalid_argument("`from` must be before `to`"));
        }
        let span = to.duration_since(from).unwrap_or_default();
        let resolution = match pantau_core::error::enum_arg("resolution", r.resolution)? {
            Resolution::Hour => Resolution::Hour,
            Resolution::Unspecified if span > MINUTES_UP_TO => Resolution::Hour,
            Resolution::Minute | Resolution::Unspecified => Resolution::Minute,
        };
        let res = if resolution == Resolution::Minute {
            history::Resolution::Minute
        } else {
            history::Resolution::Hour
        };
        let points = self
            .0
            .history()
            .query(&r.target_id, from, to, res)
            .await
            .map_err(|e| pantau_core::error::store_unavailable("collector's store", &e))?;
        let checks: u64 = points.iter().map(|p| p.checks).sum();
        let up: u64 = points.iter().map(|p| p.up).sum();
        Ok(Response::new(GetHistoryResponse {
            target_id: r.target_id,
            resolution: resolution.into(),
            checks,
            up,
            uptime_percent: if checks == 0 {
                0.0
            } else {
                up as f64 * 100.0 / checks as f64
            },
            points: points
                .into_iter()
                .map(|p| HistoryPoint {
                    start: Some(to_timestamp(p.start)),
                    checks: p.checks,
                    up: p.up,
                    latency_min_ms: p.lat_min,
                    latency_avg_ms: p.lat_avg,
                    latency_max_ms: p.lat_max,
                    latency_p95_ms: p.lat_p95,
                })
                .collect(),
        }))
    }

    async fn get_interface_traffic(
        &self,
        req: Request<GetInterfaceTrafficRequest>,
    ) -> Result<Response<GetInterfaceTrafficResponse>, Status> {
        let r = req.into_inner();
        let q = traffic_query(&r, SystemTime::now())?;
        if !self.0.has_router(&r.router_id) {
            return Err(Status::not_found(format!(
                "no router with id `{}` in collector.routers",
                quote(&r.router_id)
            )));
        }
        let traffic = self.0.traffic();
        let unavailable =
            |e: pantau_core::store::StoreError| pantau_core::error::store_unavailable("collector's store", &e);
        let points = traffic
            .query(&r.router_id, &r.interface, q.from, q.to, q.res)
            .await
            .map_err(unavailable)?;
        let burst = traffic
            .burst(&r.router_id, &r.interface, q.from..q.to, q.now, q.res, &points)
            .await
            .map_err(unavailable)?;
        let proto_res = |res: history::Resolution| match res {
            history::Resolution::Minute => Resolution::Minute,
            history::Resolution::Hour => Resolution::Hour,
        };
        Ok(Response::new(GetInterfaceTrafficResponse {
            router_id: r.router_id,
            interface: r.interface,
            resolution: proto_res(q.res).into(),
            from: Some(to_timestamp(q.from)),
            to: Some(to_timestamp(q.to)),
            points: points
                .into_iter()
                .map(|p| {
                    let m = p.rollup;
                    TrafficPoint {
                        start: Some(to_timestamp(p.start)),
                        samples: m.samples,
                        in_min_bps: m.rx.min,
                        in_avg_bps: m.rx_avg(),
                        in_max_bps: m.rx.max,
                        in_p95_bps: m.rx.p95,
                        out_min_bps: m.tx.min,
                        out_avg_bps: m.tx_avg(),
                        out_max_bps: m.tx.max,
                        out_p95_bps: m.tx.p95,
                    }
                })
                .collect(),
            p95_in_bps: burst.rx_p95,
            p95_out_bps: burst.tx_p95,
            p95_bps: burst.rx_p95.max(burst.tx_p95),
            p95_basis: proto_res(burst.basis).into(),
            p95_samples: burst.samples,
        }))
    }

    async fn push(&self, req: Request<PushRequest>) -> Result<Response<PushResponse>, Status> {
        let r = req.into_inner();
        if r.token.is_empty() {
            return Err(Status::invalid_argument("a push token is required"));
        }
        let down = match r.status.as_str() {
            "" | "up" => false,
            "down" => true,
            other => {
                return Err(Status::invalid_argument(format!(
                    "status `{other}` is not allowed: use `up` or `down`"
                )));
            }
        };
        // A day is far beyond any check's latency; larger values are typos
        // (and would overflow a Duration).
        if !(r.latency_ms.is_finite() && (0.0..=86_400_000.0).contains(&r.latency_ms)) {
            return Err(Status::invalid_argument(format!(
                "latency_ms `{}` must be a number of milliseconds between 0 and 86400000",
                r.latency_ms
            )));
        }
        let push = Push {
            at: SystemTime::now(),
            down,
            message: r.message.chars().take(1024).collect(),
            latency: (r.latency_ms > 0.0).then(|| Duration::from_secs_f64(r.latency_ms / 1e3)),
        };
        let result = self
            .0
            .push(&r.token, push)
            .await
            .ok_or_else(|| Status::not_found("no push target has this token"))?;
        Ok(Response::new(PushResponse {
            target_id: result.target_id,
        }))
    }
}

/// A traffic query, checked.
#[derive(Debug)]
struct TrafficQuery {
    from: SystemTime,
    to: SystemTime,
    now: SystemTime,
    res: history::Resolution,
}

/// Checks a traffic request field by field: INVALID_ARGUMENT names the
/// field (`router_id`, `interface`, `from`, `to`, `resolution`).
fn traffic_query(r: &GetInterfaceTrafficRequest, now: SystemTime) -> Result<TrafficQuery, Status> {
    if r.router_id.is_empty() {
        return Err(Status::invalid_argument("`router_id` is required"));
    }
    if r.router_id.len() > 128 {
        return Err(Status::invalid_argument("`router_id` is longer than 128 bytes"));
    }
    if r.interface.is_empty() {
        return Err(Status::invalid_argument("`interface` is required"));
    }
    if r.interface.len() > crate::traffic::MAX_NAME_BYTES {
        return Err(Status::invalid_argument(format!(
            "`interface` is longer than {} bytes",
            crate::traffic::MAX_NAME_BYTES
        )));
    }
    if r.interface.chars().any(char::is_control) {
        return Err(Status::invalid_argument("`interface` contains control characters"));
    }
    let time = |field: &str, ts: &Option<prost_types::Timestamp>| -> Result<Option<SystemTime>, Status> {
        ts.as_ref()
            .map(|t| {
                from_timestamp(t).ok_or_else(|| Status::invalid_argument(format!("`{field}` is not a valid time")))
            })
            .transpose()
    };
    let to = time("to", &r.to)?.unwrap_or(now);
    let from = match time("from", &r.from)? {
        Some(f) => f,
        None => to
            .checked_sub(Duration::from_secs(86_400))
            .unwrap_or(SystemTime::UNIX_EPOCH),
    };
    if from >= to {
        return Err(Status::invalid_argument("`from` must be before `to`"));
    }
    let span = to.duration_since(from).unwrap_or_default();
    let res = match pantau_core::error::enum_arg("resolution", r.resolution)? {
        Resolution::Hour => history::Resolution::Hour,
        Resolution::Unspecified if span > MINUTES_UP_TO => history::Resolution::Hour,
        Resolution::Minute | Resolution::Unspecified => history::Resolution::Minute,
    };
    let (most, what) = match res {
        history::Resolution::Minute => (TRAFFIC_MINUTES_AT_MOST, "8 days in minutes"),
        history::Resolution::Hour => (TRAFFIC_HOURS_AT_MOST, "800 days in hours"),
    };
    if span > most {
        return Err(Status::invalid_argument(format!(
            "`from`..`to` spans more than {what}: ask for a shorter range or a coarser `resolution`"
        )));
    }
    Ok(TrafficQuery { from, to, now, res })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> GetInterfaceTrafficRequest {
        GetInterfaceTrafficRequest {
            router_id: "edge".into(),
            interface: "ether1".into(),
            ..Default::default()
        }
    }

    fn refused(r: &GetInterfaceTrafficRequest) -> String {
        let s = traffic_query(r, SystemTime::now()).unwrap_err();
        assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
        s.message().to_owned()
    }

    #[test]
    fn traffic_requests_are_checked_field_by_field() {
        let now = SystemTime::now();
        let q = traffic_query(&req(), now).unwrap();
        assert_eq!(q.res, history::Resolution::Minute);
        assert_eq!(q.to.duration_since(q.from).unwrap(), Duration::from_secs(86_400));
        let mut r = req();
        r.router_id.clear();
        assert!(refused(&r).contains("`router_id`"));
        r = req();
        r.router_id = "r".repeat(129);
        assert!(refused(&r).contains("`router_id`"));
        for bad in [String::new(), "x".repeat(256), "eth\n0".to_owned(), "a\u{0}".to_owned()] {
            r = req();
            r.interface = bad;
            assert!(refused(&r).contains("`interface`"));
        }
        r = req();
        r.resolution = 7;
        assert!(refused(&r).contains("`resolution`"));
        r = req();
        r.from = Some(prost_types::Timestamp { seconds: 0, nanos: -5 });
        assert!(refused(&r).contains("`from`"));
        r = req();
        r.to = Some(prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        });
        assert!(refused(&r).contains("`to`"));
        r = req();
        r.from = Some(to_timestamp(now));
        r.to = Some(to_timestamp(now - Duration::from_secs(60)));
        assert!(refused(&r).contains("`from` must be before `to`"));
        r = req();
        r.from = Some(to_timestamp(now - Duration::from_secs(9 * 86_400)));
        r.resolution = Resolution::Minute.into();
        assert!(refused(&r).contains("8 days"));
        r.resolution = Resolution::Unspecified.into();
        assert_eq!(traffic_query(&r, now).unwrap().res, history::Resolution::Hour);
        r.from = Some(to_timestamp(now - Duration::from_secs(801 * 86_400)));
        assert!(refused(&r).contains("800 days"));
    }
}
