//! The collector: it checks targets on a schedule and publishes every
//! [`CheckResult`](pantau_proto::v1::CheckResult) on the bus
//! (`pantau.check.result.<location>.<target_id>`).
//!
//! Layout:
//! - [`target`]: a validated target, built from the configuration.
//! - [`checks`]: the checks themselves ([`checks::http`], [`checks::tcp`]),
//!   each giving up/down, latency and a typed failure reason.
//! - [`scheduler`]: one loop per target, start times spread, concurrency bounded.
//! - [`results`]: the latest result per target and a live feed of new ones.
//! - [`state`]: up/down transitions, persisted so a restart remembers them.
//! - [`grpc`]: the gRPC service, `pantau.v1.CollectorService`.
//! - [`metrics`]: metric names and their descriptions.

pub mod checks;
pub mod grpc;
pub mod metrics;
pub mod results;
pub mod scheduler;
pub mod state;
pub mod target;

use std::sync::Arc;

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
    #[error(transparent)]
    Target(#[from] target::TargetError),
    #[error(transparent)]
    Grpc(#[from] pantau_core::grpc::GrpcError),
}

/// Runs the collector until `ctx.shutdown`: connects its store, starts a
/// loop per configured target (tracked in `ctx.tasks`), and serves gRPC on
/// `grpc`.
pub async fn run(ctx: Context, grpc: TcpListener) -> Result<(), CollectorError> {
    let store = Store::connect(&ctx.config.database, &ctx.config.data_dir, "collector", MIGRATIONS).await?;
    ctx.health.register("collector.store", store.readiness());
    let collector = Arc::new(Collector::new(&ctx, store.clone()).await?);
    collector.start(&ctx);
    let addr = grpc.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(grpc = %addr, targets = collector.targets().len(), "collector running");
    let served = grpc::serve(collector, grpc, ctx.shutdown.clone()).await;
    ctx.tasks.close();
    ctx.tasks.wait().await;
    store.close().await;
    served.map_err(Into::into)
}
