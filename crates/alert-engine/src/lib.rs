//! The alert engine: it turns facts on the bus into alerts people can trust.
//!
//! Layout:
//! - [`lang`]: the rule language (lexer, Pratt parser, syntax tree).
//! - [`series`]: the in-memory window store of recent samples per series.
//! - [`facts`]: bus messages (check results, metrics, interface samples,
//!   router events) as named, labelled samples.
//! - [`eval`]: evaluates a condition over the window store at an instant.
//! - [`rule`]: rules, templates, fingerprints and the shipped defaults.
//! - [`lifecycle`]: pending → firing → acknowledged → resolved, with `for`,
//!   deduplication and cooldown, on an injected clock.
//! - [`silence`]: silences (matchers and a time window).
//! - [`incident`]: alerts that share a root cause or a grouping key, as one
//!   incident with a state and a timeline (its SQL in `incident/store.rs`,
//!   its bus events in `incident/event.rs`, acknowledge and comment in
//!   `incident/act.rs`).
//! - [`store`]: alerts, transitions (the audit trail) and API rules in SQL.
//! - [`engine`]: rules + window store + lifecycle behind one lock; stores
//!   then publishes every transition on `pantau.alert.<state>.<alert_id>`.
//! - [`consume`]: durable bus subscriptions feeding the engine, and the sweep.
//! - [`cluster`]: in a multi-location cluster only the primary's engine
//!   evaluates; the others keep a copy of its alerts.
//! - [`event`]: transitions as bus messages, and back.
//! - [`alertmanager`]: optional push of alerts to Alertmanager's API v2.
//! - [`grpc`]: the gRPC service, `pantau.v1.AlertEngineService`.
//! - [`watchdog`]: when the engine last evaluated every rule (its dead man's
//!   switch on `/readyz` and `/metrics`), and the optional heartbeat to an
//!   external dead man's switch.
//! - [`maintenance`]: maintenance windows through the API (stored here,
//!   read-only configured ones beside them), muting alerts, and published
//!   for the collector on `pantau.maintenance.*`.
//! - [`metrics`]: metric names and their descriptions.

pub mod alertmanager;
pub mod cluster;
pub mod consume;
pub mod deps;
pub mod engine;
pub mod eval;
pub mod event;
pub mod facts;
pub mod grpc;
pub mod incident;
pub mod lang;
pub mod lifecycle;
pub mod maintenance;
pub mod metrics;
mod release;
pub mod rule;
pub mod series;
pub mod silence;
pub mod store;
pub mod watchdog;

use std::sync::Arc;

use pantau_core::bus::BusError;
use pantau_core::service::Context;
use pantau_core::store::{Migrations, Store, StoreError};
use tokio::net::TcpListener;

pub use engine::{Engine, EngineError};

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The alert engine's migrations.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// Why the alert engine could not run.
#[derive(Debug, thiserror::Error)]
pub enum AlertEngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("alert_engine: {0}")]
    Engine(#[from] EngineError),
    #[error("cannot subscribe to the bus: {0}")]
    Bus(#[from] BusError),
    #[error(transparent)]
    Grpc(#[from] pantau_core::grpc::GrpcError),
    #[error(transparent)]
    Task(#[from] pantau_core::lifecycle::TaskFailed),
}

/// Runs the alert engine until `ctx.shutdown`: connects its store, loads the
/// rules, consumes facts from the bus (a critical task: if it fails, the
/// engine stops with that failure), sweeps (supervised), and serves gRPC on
/// `grpc`.
pub async fn run(ctx: Context, grpc: TcpListener) -> Result<(), AlertEngineError> {
    let ctx = ctx.service("alert-engine");
    metrics::describe();
    let store = Store::connect(&ctx.config.database, &ctx.config.data_dir, "alert-engine", MIGRATIONS).await?;
    ctx.health.register("alert_engine.store", store.readiness());
    ctx.watch_store(&store);
    let cfg = ctx.config.alert_engine.clone();
    let sweep = cfg.sweep_interval;
    let pusher = cfg
        .alertmanager_url
        .as_deref()
        .map(|url| alertmanager::Pusher::start(url, &ctx.tasks, ctx.shutdown.clone()));
    let engine = Engine::new(cfg, store::AlertStore::new(store.clone()), Arc::clone(&ctx.bus))
        .await
        .map(|e| {
            e.with_alertmanager(pusher)
                .with_maintenance(ctx.config.maintenance.clone())
                .with_cluster(&ctx.config.instance.name, ctx.cluster.clone())
        });
    let engine = match engine {
        Ok(e) => Arc::new(e),
        Err(e) => {
            store.close().await;
            return Err(e.into());
        }
    };
    // Only the evaluating engine changes alerts (a dependent's are copies).
    let retired = if engine.evaluates() {
        engine.retire_orphans(std::time::SystemTime::now()).await?
    } else {
        Vec::new()
    };
    if !retired.is_empty() {
        tracing::info!(
            alerts = retired.len(),
            "resolved open alerts whose rule is gone or disabled"
        );
    }
    // Restored open alerts that are in no incident join one (a promotion
    // does the same when it adopts the cluster's alerts).
    engine.group_restored(std::time::SystemTime::now()).await?;
    let gate = ctx.cluster.gate(consume::CONSUMER);
    ctx.health.register("alert_engine.consumer", gate.readiness());
    let consumer = consume::start(Arc::clone(&engine), &ctx.bus, gate, ctx.shutdown.clone()).await?;
    ctx.spawn_critical("consumer", consumer);
    // The notifier's delivery outcomes, on the incidents' timelines.
    let gate = ctx.cluster.gate(incident::delivery::DELIVERIES);
    ctx.health.register("alert_engine.deliveries", gate.readiness());
    let deliveries = incident::delivery::start(Arc::clone(&engine), &ctx.bus, gate, ctx.shutdown.clone()).await?;
    ctx.spawn_critical("deliveries", deliveries);
    if ctx.config.sync.active() {
        let mirror = cluster::mirror_consumer(&ctx.bus, &ctx.config.instance.name);
        ctx.health.register("alert_engine.mirror", mirror.readiness());
        ctx.spawn_critical(
            "mirror",
            cluster::mirror_loop(Arc::clone(&engine), mirror, ctx.shutdown.clone()),
        );
    }
    let (windows, bus, stop) = (Arc::clone(&engine), Arc::clone(&ctx.bus), ctx.shutdown.clone());
    ctx.spawn_supervised("maintenance", move || {
        let (engine, bus, stop) = (Arc::clone(&windows), Arc::clone(&bus), stop.clone());
        async move { maintenance::run(engine, bus, stop).await }
    });
    let progress = Arc::new(watchdog::Progress::new(sweep));
    ctx.health.register(
        "alert_engine.progress",
        Arc::new(watchdog::Stall(Arc::clone(&progress))),
    );
    let (swept, stop, swept_at) = (Arc::clone(&engine), ctx.shutdown.clone(), Arc::clone(&progress));
    ctx.spawn_supervised("sweep", move || {
        consume::sweep_loop(Arc::clone(&swept), sweep, Arc::clone(&swept_at), stop.clone())
    });
    if let Some(url) = ctx.config.alert_engine.watchdog.url.clone() {
        let cfg = ctx.config.alert_engine.watchdog.clone();
        let instance = ctx.config.instance.name.clone();
        let location = ctx.config.instance.location.clone();
        let stop = ctx.shutdown.clone();
        tracing::info!(interval_s = cfg.interval.as_secs(), "watchdog heartbeats on");
        ctx.spawn_supervised("watchdog", move || {
            watchdog::run(
                cfg.clone(),
                url.clone(),
                Arc::clone(&progress),
                instance.clone(),
                location.clone(),
                stop.clone(),
            )
        });
    }
    let addr = grpc.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let rules = engine.rules().await.len();
    tracing::info!(grpc = %addr, rules, "alert engine running");
    let served = grpc::serve(&ctx, engine, grpc, &store).await;
    ctx.stop_tasks().await;
    store.close().await;
    served?;
    Ok(ctx.lifecycle.result()?)
}
