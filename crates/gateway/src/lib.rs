//! The gateway: what people and scripts touch.
//!
//! Layout:
//! - [`view`]: JSON views of the bus's protobuf messages.
//! - [`feed`]: consumes check results from the bus, keeps the latest per
//!   target, and fans events out to WebSocket clients.
//! - [`api`]: REST routes under `/api/v1`, and `/health`.
//! - [`alerts`]: alert and rule routes, answered by the alert engine over gRPC.
//! - [`ws`]: the real-time WebSocket hub, `/api/v1/monitoring/events`.
//! - [`push`]: push (heartbeat) monitors, `/api/v1/push/{token}`.
//! - [`metrics`]: metric names and descriptions.

pub mod alerts;
pub mod api;
pub mod feed;
pub mod metrics;
pub mod push;
pub mod view;
pub mod ws;

use std::sync::Arc;

use axum::Router;
use pantau_core::bus::BusError;
use pantau_core::service::Context;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

/// Why the gateway could not run.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot subscribe to check results: {0}")]
    Subscribe(#[from] BusError),
    #[error("the HTTP server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Cheap handles shared by every route.
#[derive(Clone)]
pub struct AppState {
    pub feed: Arc<feed::Feed>,
    pub ctx: Context,
    pub ws_slots: Arc<tokio::sync::Semaphore>,
    /// The collector's gRPC channel (connected lazily, reconnecting).
    pub collector: tonic::transport::Channel,
}

impl AppState {
    pub fn new(ctx: &Context) -> Self {
        let dash = &ctx.config.gateway.dashboard;
        Self {
            feed: Arc::new(feed::Feed::new(dash.client_buffer)),
            ctx: ctx.clone(),
            ws_slots: Arc::new(tokio::sync::Semaphore::new(dash.max_connections)),
            collector: lazy_channel(&ctx.config.gateway.collector_url),
        }
    }
}

/// A channel that connects on first use and reconnects after failures.
fn lazy_channel(url: &str) -> tonic::transport::Channel {
    // The URL was validated with the configuration.
    tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap_or_else(|_| tonic::transport::Endpoint::from_static("http://127.0.0.1:50051"))
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(10))
        .connect_lazy()
}

/// The HTTP answer for a failed gRPC call to `service`: client errors keep
/// their message; server-side failures are logged and hidden.
pub fn grpc_error(status: &tonic::Status, service: &str) -> pantau_core::health::ApiError {
    use axum::http::StatusCode;
    use tonic::Code;
    let (http, code) = match status.code() {
        Code::InvalidArgument | Code::OutOfRange => (StatusCode::BAD_REQUEST, "invalid_argument"),
        Code::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        Code::AlreadyExists | Code::Aborted => (StatusCode::CONFLICT, "conflict"),
        Code::FailedPrecondition => (StatusCode::CONFLICT, "failed_precondition"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "forbidden"),
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            tracing::warn!(service, error = %status.message(), "backend unavailable");
            return pantau_core::health::ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("the {service} is unavailable; try again"),
            );
        }
        Code::Ok | Code::Unknown | Code::Internal | Code::Unimplemented | Code::DataLoss => {
            tracing::error!(service, code = ?status.code(), error = %status.message(), "backend failed");
            return pantau_core::health::ApiError::new(
                StatusCode::BAD_GATEWAY,
                "backend_error",
                format!("the {service} failed to answer"),
            );
        }
    };
    pantau_core::health::ApiError::new(http, code, status.message().to_owned())
}

/// Every route of the gateway, with the trace layer.
pub fn router(state: &AppState) -> Router {
    Router::new()
        .merge(api::router())
        .merge(alerts::router(&state.ctx))
        .merge(ws::router())
        .merge(push::router())
        .with_state(state.clone())
        .merge(pantau_core::health::admin_router(state.ctx.health.clone()))
        .fallback(api::not_found)
        .layer(TraceLayer::new_for_http())
}

/// Runs the gateway on `listener` until `ctx.shutdown`.
pub async fn run(ctx: Context, listener: TcpListener) -> Result<(), GatewayError> {
    metrics::describe();
    let state = AppState::new(&ctx);
    feed::start(&state.feed, &ctx).await?;
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "gateway listening");
    let stop = ctx.shutdown.clone();
    axum::serve(listener, router(&state))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    Ok(())
}
