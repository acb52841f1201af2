//! The collector: it checks targets on a schedule and publishes every
//! [`CheckResult`](pantau_proto::v1::CheckResult) on the bus
//! (`pantau.check.result.<location>.<target_id>`), and a `target_up` /
//! `target_down` event when a target changes state.
//!
//! Layout:
//! - [`target`]: a validated target compiled for its check; [`convert`]:
//!   protobuf targets to configuration; [`targets`]: targets added at run
//!   time, persisted.
//! - [`checks`]: HTTP(S), TCP, TLS, ICMP, DNS and push checks, each giving
//!   up/down, latency and a typed failure reason.
//! - [`scheduler`]: the timer queue, the [`Collector`] state, state changes;
//!   [`change`]: why a target change was refused; [`pause`]: paused targets.
//! - [`pool`]: workers and their load-balancing strategies.
//! - [`breaker`]: the per-target circuit breaker and backoff.
//! - [`results`]: the live feed of results (each target's latest is on its
//!   schedule entry).
//! - [`state`]: up/down transitions, persisted.
//! - [`history`]: per-minute and per-hour aggregates with retention.
//! - [`traffic`]: the routers' interface rates, per minute and per hour
//!   (min/avg/max/p95), with the same retention.
//! - [`health`]: the collector's health from its error rate.
//! - [`host`]: CPU, memory, disk, network, load of the host.
//! - [`grpc`]: the gRPC service, `pantau.v1.CollectorService`.
//! - [`metrics`]: metric names and their descriptions.

pub mod breaker;
pub mod change;
pub mod checks;
pub mod grpc;
pub mod health;
pub mod history;
pub mod host;
mod last_cert;
pub mod maintenance;
pub mod metrics;
pub mod pause;
pub mod pool;
pub mod results;
pub mod routers;
pub mod scheduler;
mod spread;
pub mod state;
pub mod target;
pub mod targets;
pub mod traffic;

use std::sync::Arc;

use pantau_config::Invalid;
use pantau_core::service::Context;
use pantau_core::store::{Migrations, Store, StoreError};
use tokio::net::TcpListener;

pub use scheduler::Collector;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The collector's migrations.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// Why the collector could not run.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("cannot set up TLS for checks: {0}")]
    Tls(String),
    #[error("cannot set up the dns_server resolver: {0}")]
    Resolver(String),
    #[error("invalid targets: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Targets(Vec<Invalid>),
    #[error(transparent)]
    Grpc(#[from] pantau_core::grpc::GrpcError),
    #[error(transparent)]
    Task(#[from] pantau_core::lifecycle::TaskFailed),
}

/// Runs the collector until `ctx.shutdown`: connects its store, starts the
/// schedule, workers, history and host metrics (supervised, on the
/// service's own tracker), and serves gRPC on `grpc`. A critical task that
/// fails stops it with that failure.
pub async fn run(ctx: Context, grpc: TcpListener) -> Result<(), CollectorError> {
    let ctx = ctx.service("collector");
    let store = Store::connect(&ctx.config.database, &ctx.config.data_dir, "collector", MIGRATIONS).await?;
    ctx.health.register("collector.store", store.readiness());
    ctx.watch_store(&store);
    let collector = Arc::new(Collector::new(&ctx, store.clone()).await?);
    ctx.health.register("collector.checks", collector.error_rate());
    ctx.health
        .register("collector.progress", Arc::new(health::Stall(Arc::clone(&collector))));
    collector.start(&ctx);
    host::start(&ctx);
    routers::start_with(&ctx, Some(&store), Some(collector.traffic()), &collector.maintenance());
    let (windows, bus, instance, stop) = (
        collector.maintenance(),
        Arc::clone(&ctx.bus),
        ctx.config.instance.name.clone(),
        ctx.shutdown.clone(),
    );
    ctx.spawn_supervised("maintenance", move || {
        maintenance::follow(Arc::clone(&windows), Arc::clone(&bus), instance.clone(), stop.clone())
    });
    let addr = grpc.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(grpc = %addr, targets = collector.entries().len(), "collector running");
    let served = grpc::serve(&ctx, Arc::clone(&collector), grpc, &store).await;
    ctx.stop_tasks().await;
    store.close().await;
    served?;
    Ok(ctx.lifecycle.result()?)
}
