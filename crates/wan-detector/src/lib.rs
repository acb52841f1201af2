//! The WAN detector: for every router the collector polls, which interfaces
//! are WAN uplinks, with what confidence and by which methods, and which ISP
//! each one is. It consumes `RouterInfo` (`pantau.router.info.<router_id>`),
//! `InterfaceSample`s (`pantau.iface.sample.<router_id>.<if_index>`) and the
//! collector's router reachability events from the bus, keeps the latest
//! state per router in memory (rebuilt from the next poll after a restart;
//! only the last published answer per router is stored in SQL),
//! publishes `wan_detected` (`pantau.event.wan_detected.<router_id>`) when a
//! router's WAN set changes, and answers `pantau.v1.WanDetectorService`
//! (also the gateway's `/api/v1/routers…` routes).
//!
//! Layout:
//! - [`detect`]: the methods (route 0.9, traffic 0.7, name 0.5, manual 1.0)
//!   and the hybrid score (noisy-OR capped at 0.99; manual overrides).
//! - [`isp`]: ISP recognition from words and addresses.
//! - [`state`]: the [`Detector`]: per-router state, the cache, `wan_detected`.
//! - [`store`]: the last published answer per router, across restarts
//!   (SQLite or PostgreSQL).
//! - [`consume`]: the durable bus subscriptions.
//! - [`grpc`]: the gRPC service.
//! - [`metrics`]: metric names and descriptions.

pub mod consume;
pub mod detect;
pub mod grpc;
pub mod isp;
pub mod metrics;
pub mod state;
pub mod store;

use std::sync::Arc;

use pantau_core::service::Context;
use tokio::net::TcpListener;

pub use state::Detector;

/// Why the WAN detector could not run.
#[derive(Debug, thiserror::Error)]
pub enum WanError {
    #[error("{key} is not a valid regex: {error}")]
    Pattern { key: String, error: String },
    #[error("cannot subscribe to router data on the bus: {0}")]
    Subscribe(#[from] pantau_core::bus::BusError),
    #[error(transparent)]
    Grpc(#[from] pantau_core::grpc::GrpcError),
    #[error(transparent)]
    Store(#[from] pantau_core::store::StoreError),
    #[error(transparent)]
    Task(#[from] pantau_core::lifecycle::TaskFailed),
}

/// Runs the WAN detector until `ctx.shutdown`: subscribes to router data on
/// the bus (a critical task: if it fails, the detector stops with that
/// failure) and serves gRPC on `grpc`.
pub async fn run(ctx: Context, grpc: TcpListener) -> Result<(), WanError> {
    let ctx = ctx.service("wan-detector");
    metrics::describe();
    let sql = pantau_core::store::Store::connect(
        &ctx.config.database,
        &ctx.config.data_dir,
        "wan-detector",
        store::MIGRATIONS,
    )
    .await?;
    ctx.health.register("wan_detector.store", sql.readiness());
    let wan_store = store::WanStore::new(sql.clone());
    let published = wan_store.load().await?;
    let detector =
        Arc::new(Detector::new(&ctx.config.wan_detector, Arc::clone(&ctx.bus))?.with_store(wan_store, published));
    let (consumer, ready) = consume::consumer(&ctx.bus);
    ctx.health.register("wan_detector.consumer", ready);
    let pump = consume::start(Arc::clone(&detector), consumer, ctx.shutdown.clone()).await?;
    ctx.spawn_critical("consumer", pump);
    let addr = grpc.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(grpc = %addr, cache_ttl = %pantau_config::duration::format(ctx.config.wan_detector.cache_ttl), "wan detector running");
    let served = grpc::serve(&ctx, detector, grpc).await;
    ctx.stop_tasks().await;
    sql.close().await;
    served?;
    Ok(ctx.lifecycle.result()?)
}
