//! Serving a tonic service the Pantau way: with `grpc.health.v1` (so
//! grpc_health_probe and Kubernetes gRPC probes work) and server reflection v1
//! and v1alpha (so grpcurl and grpcio clients can list services).

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::ServingStatus;

/// Why a gRPC server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `routes` plus health and reflection on `listener` until `shutdown`.
/// `names` are the fully-qualified service names reported SERVING (and the
/// empty name for the server as a whole); on shutdown they turn NOT_SERVING.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    names: &[&str],
    shutdown: CancellationToken,
) -> Result<(), GrpcError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", ServingStatus::Serving).await;
    for name in names {
        reporter.set_service_status(*name, ServingStatus::Serving).await;
    }
    let v1 = reflection(names).build_v1()?;
    let v1alpha = reflection(names).build_v1alpha()?;
    let routes = routes.add_service(health).add_service(v1).add_service(v1alpha);
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let stop = async move {
        shutdown.cancelled().await;
        reporter.set_service_status("", ServingStatus::NotServing).await;
        for name in &names {
            reporter.set_service_status(name, ServingStatus::NotServing).await;
        }
    };
    tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), stop)
        .await?;
    Ok(())
}

/// Reflection that lists exactly what this port serves: its `names`, health
/// and reflection itself (not every Pantau service in the descriptor set).
fn reflection<'b>(names: &[&str]) -> tonic_reflection::server::Builder<'b> {
    let mut b = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pantau_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection");
    for name in names.iter().filter(|n| !n.is_empty()) {
        b = b.with_service_name(*name);
    }
    b
}
