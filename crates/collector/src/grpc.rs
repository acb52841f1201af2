//! `pantau.v1.CollectorService` over the [`Collector`].

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use pantau_proto::v1::collector_service_server::{CollectorService, CollectorServiceServer};
use pantau_proto::v1::{
    CheckResult, ListLatestResultsRequest, ListLatestResultsResponse, ListTargetsRequest, ListTargetsResponse,
    RunCheckRequest, StreamResultsRequest,
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::Collector;

/// The gRPC face of the collector.
pub struct Service(Arc<Collector>, CancellationToken);

/// Serves `CollectorService` with health and reflection until `shutdown`.
pub async fn serve(
    collector: Arc<Collector>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), pantau_core::grpc::GrpcError> {
    let routes = tonic::service::Routes::new(CollectorServiceServer::new(Service(collector, shutdown.clone())));
    pantau_core::grpc::serve(
        listener,
        routes,
        &[<CollectorServiceServer<Service> as NamedService>::NAME],
        shutdown,
    )
    .await
}

type ResultStream = Pin<Box<dyn Stream<Item = Result<CheckResult, Status>> + Send>>;

#[tonic::async_trait]
impl CollectorService for Service {
    async fn list_targets(&self, _: Request<ListTargetsRequest>) -> Result<Response<ListTargetsResponse>, Status> {
        Ok(Response::new(ListTargetsResponse {
            targets: self.0.targets().iter().map(|t| t.to_proto()).collect(),
        }))
    }

    async fn list_latest_results(
        &self,
        req: Request<ListLatestResultsRequest>,
    ) -> Result<Response<ListLatestResultsResponse>, Status> {
        let ids = req.into_inner().target_ids;
        if let Some(unknown) = ids.iter().find(|id| self.0.target(id).is_none()) {
            return Err(Status::not_found(format!("no target with id `{unknown}`")));
        }
        Ok(Response::new(ListLatestResultsResponse {
            results: self.0.results().latest(&ids),
        }))
    }

    async fn run_check(&self, req: Request<RunCheckRequest>) -> Result<Response<CheckResult>, Status> {
        let id = req.into_inner().target_id;
        if id.is_empty() {
            return Err(Status::invalid_argument("target_id is required"));
        }
        let target = self
            .0
            .target(&id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no target with id `{id}`")))?;
        Ok(Response::new(self.0.run_once(&target).await))
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
}
