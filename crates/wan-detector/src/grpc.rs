//! `pantau.v1.WanDetectorService` over the [`Detector`].

use std::sync::Arc;
use std::time::SystemTime;

use pantau_proto::v1::wan_detector_service_server::{WanDetectorService, WanDetectorServiceServer};
use pantau_proto::v1::{
    DetectWanRequest, DetectWanResponse, ListInterfacesRequest, ListInterfacesResponse, ListRoutersRequest,
    ListRoutersResponse,
};
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::state::{Detector, LookupError};

/// The gRPC face of the detector.
pub struct Service(pub Arc<Detector>);

/// Serves `WanDetectorService` with health and reflection until `shutdown`.
/// Callers need a token (see `pantau_core::grpc::access`); it has no
/// writes to audit.
pub async fn serve(
    ctx: &pantau_core::service::Context,
    detector: Arc<Detector>,
    listener: TcpListener,
) -> Result<(), pantau_core::grpc::GrpcError> {
    let routes = tonic::service::Routes::new(WanDetectorServiceServer::new(Service(detector)));
    pantau_core::grpc::serve(
        ctx,
        listener,
        routes,
        &[<WanDetectorServiceServer<Service> as NamedService>::NAME],
        None,
    )
    .await
}

fn status_of(e: &LookupError) -> Status {
    pantau_core::error::status(e)
}

#[tonic::async_trait]
impl WanDetectorService for Service {
    async fn detect_wan(&self, req: Request<DetectWanRequest>) -> Result<Response<DetectWanResponse>, Status> {
        let r = req.into_inner();
        self.0
            .detect(r.router_id.trim(), r.force_refresh, SystemTime::now())
            .await
            .map(Response::new)
            .map_err(|e| status_of(&e))
    }

    async fn list_routers(&self, _: Request<ListRoutersRequest>) -> Result<Response<ListRoutersResponse>, Status> {
        Ok(Response::new(ListRoutersResponse {
            routers: self.0.routers(SystemTime::now()),
        }))
    }

    async fn list_interfaces(
        &self,
        req: Request<ListInterfacesRequest>,
    ) -> Result<Response<ListInterfacesResponse>, Status> {
        let id = req.into_inner().router_id;
        let (interfaces, reachable) = self
            .0
            .interfaces(id.trim(), SystemTime::now())
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(ListInterfacesResponse {
            router_id: id,
            interfaces,
            reachable,
        }))
    }
}
