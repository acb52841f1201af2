//! The gateway: what people and scripts touch.
//!
//! Layout:
//! - [`view`]: JSON views of the bus's protobuf messages.
//! - [`feed`]: consumes check results from the bus, keeps the latest per
//!   target, and fans events out to WebSocket clients.
//! - [`api`]: REST routes under `/api/v1`, and `/health`.
//! - [`ws`]: the real-time WebSocket hub, `/api/v1/monitoring/events`.
//! - [`metrics`]: metric names and descriptions.

pub mod api;
pub mod feed;
pub mod metrics;
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
}

impl AppState {
    pub fn new(ctx: &Context) -> Self {
        let dash = &ctx.config.gateway.dashboard;
        Self {
            feed: Arc::new(feed::Feed::new(dash.client_buffer)),
            ctx: ctx.clone(),
            ws_slots: Arc::new(tokio::sync::Semaphore::new(dash.max_connections)),
        }
    }
}

/// Every route of the gateway, with the trace layer.
pub fn router(state: &AppState) -> Router {
    Router::new()
        .merge(api::router())
        .merge(ws::router())
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
