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
        t.paused = self.0.paused(&e.target.id).map(|p| p.to_proto());
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
            results: self.0.results().latest(&ids),
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
