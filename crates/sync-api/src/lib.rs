//! The sync-api: multi-location monitoring. One binary runs as primary or
//! dependent (a standalone instance does not run the sync-api at all):
//! dependents register with the primary, send heartbeats, take their targets
//! from it and push their check results up; the primary computes each
//! target's cross-location consensus. Exactly one instance is primary, by a
//! lease in a NATS JetStream key-value bucket with a fencing epoch.
//!
//! Layout:
//! - [`node`]: this instance's role and the election; [`lease`]: the lease
//!   and registry buckets.
//! - [`outbox`]: own results from the bus to the on-disk outbox and on to
//!   consensus or the primary; [`dependent`]: the link to the primary.
//! - [`primary`]: ingesting results and publishing consensus;
//!   [`consensus`]: the aggregate and UP/DOWN/PARTIAL.
//! - [`history`]: each location's rolled-up history of results, at the primary.
//! - [`configsync`]: the configuration dependents apply; [`instances`]:
//!   heartbeat liveness (active, inactive, failed) and its events.
//! - [`grpc`]: `pantau.v1.SyncService`; [`store`]: tables; [`metrics`];
//!   [`trace`]: the spans of the consensus path and their parents.

pub mod configsync;
pub mod consensus;
pub mod dependent;
pub mod grpc;
pub mod history;
pub mod instances;
pub mod lease;
pub mod metrics;
pub mod node;
pub mod outbox;
pub mod primary;
pub mod store;
pub mod trace;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pantau_core::service::Context;
use pantau_core::store::{Migrations, Store, StoreError};
use tokio::net::TcpListener;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The sync-api's migrations.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// Why the sync-api could not run.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot connect to NATS at {url} for the primary lease: {message}")]
    Nats { url: String, message: String },
    #[error(transparent)]
    Lease(#[from] lease::LeaseError),
    #[error("cannot consume local check results: {0}")]
    Bus(#[from] pantau_core::bus::BusError),
    #[error(transparent)]
    Grpc(#[from] pantau_core::grpc::GrpcError),
    #[error(transparent)]
    Task(#[from] pantau_core::lifecycle::TaskFailed),
    #[error(transparent)]
    Ingest(#[from] primary::IngestError),
    #[error("a buffered result cannot be ingested: {0}")]
    Buffered(#[from] primary::BadResult),
}

/// Opens the lease when `nats.url` is set.
async fn open_lease(ctx: &Context) -> Result<Option<lease::Lease>, SyncError> {
    let Some(url) = ctx.config.nats.url.as_deref() else {
        tracing::warn!("nats.url is not set: no failover, the configured role is fixed");
        return Ok(None);
    };
    // The bus's connection settings: every seed, the token, TLS.
    let name = format!("pantau-sync-{}", ctx.config.instance.name);
    let client = pantau_core::bus::nats::client(&ctx.config.nats, &name)
        .await
        .map_err(|e| SyncError::Nats {
            url: pantau_config::mask_urls_passwords(url),
            message: e.to_string(),
        })?;
    let s = &ctx.config.sync;
    Ok(Some(
        lease::Lease::open_replicated(client, &s.lease_bucket, s.heartbeat_interval, ctx.config.nats.replicas).await?,
    ))
}

/// Runs the sync-api until `ctx.shutdown`, serving gRPC on `grpc`. Its
/// loops are supervised; the role's command loop and the outbox consumer
/// are critical: if one fails, the sync-api stops with that failure.
pub async fn run(ctx: Context, grpc: TcpListener) -> Result<(), SyncError> {
    let ctx = ctx.service("sync-api");
    metrics::describe();
    let db = Store::connect(&ctx.config.database, &ctx.config.data_dir, "sync-api", MIGRATIONS).await?;
    ctx.health.register("sync-api.store", db.readiness());
    ctx.watch_store(&db);
    if ctx.config.sync.token.is_none() {
        tracing::warn!(
            "sync.token is not set: any client that reaches the sync gRPC port may register an instance; set a join token"
        );
    }
    let lease = open_lease(&ctx).await?;
    let (node, commands) = node::Node::new(Arc::clone(&ctx.config), lease);
    primary::ensure_self(&db, &node).await?;
    ctx.spawn_critical("node", Arc::clone(&node).run(commands, ctx.shutdown.clone()));
    share_role(&ctx, Arc::clone(&node));

    let counters = Arc::new(outbox::Counters::default());
    let link: dependent::SharedLink = Arc::new(Mutex::new(dependent::LinkStatus::default()));
    let source = Arc::new(configsync::ConfigSource::new(&ctx));
    outbox::consume(&ctx, Arc::clone(&node), db.clone(), Arc::clone(&counters)).await?;
    primary::start(&ctx, Arc::clone(&node), db.clone(), Arc::clone(&source));
    instances::watch(&ctx, Arc::clone(&node), db.clone());
    dependent::start(
        &ctx,
        Arc::clone(&node),
        db.clone(),
        Arc::clone(&counters),
        Arc::clone(&link),
    );
    refresh_config(&ctx, Arc::clone(&node), Arc::clone(&source), db.clone());

    let addr = grpc.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(grpc = %addr, instance = %node.id, location = %node.location, "sync-api running");
    let service = grpc::Service {
        ctx: ctx.clone(),
        node,
        db: db.clone(),
        source,
        counters,
        link,
    };
    let served = grpc::serve(service, grpc).await;
    ctx.stop_tasks().await;
    db.close().await;
    served?;
    Ok(ctx.lifecycle.result()?)
}

/// States this instance's role to the other services of the process
/// (`Context::cluster`): the alert engine and notifier take the cluster-wide
/// consumers only while it is primary.
fn share_role(ctx: &Context, node: Arc<node::Node>) {
    let ctx2 = ctx.clone();
    ctx.spawn_supervised("role", move || {
        let (ctx2, mut rx, shared_bus) = (ctx2.clone(), node.watch(), node.lease().is_some());
        async move {
            loop {
                let s = rx.borrow_and_update().clone();
                ctx2.cluster.set(if !shared_bus {
                    // Without nats.url each process has a bus of its own:
                    // nobody else sees its facts, so it evaluates them.
                    pantau_core::cluster::Role::Standalone
                } else if s.role == pantau_proto::v1::SyncRole::Primary {
                    pantau_core::cluster::Role::Primary { epoch: s.epoch }
                } else {
                    pantau_core::cluster::Role::Dependent { primary: s.primary_id }
                });
                tokio::select! {
                    () = ctx2.shutdown.cancelled() => break,
                    changed = rx.changed() => if changed.is_err() { break },
                }
            }
        }
    });
}

/// While primary, rebuilds the served configuration every heartbeat, so
/// heartbeat answers carry the current hash.
fn refresh_config(ctx: &Context, node: Arc<node::Node>, source: Arc<configsync::ConfigSource>, db: Store) {
    let ctx2 = ctx.clone();
    ctx.spawn_supervised("config-refresh", move || {
        let (ctx2, node, source, db) = (ctx2.clone(), node.clone(), source.clone(), db.clone());
        async move {
            let every = ctx2.config.sync.heartbeat_interval.min(ctx2.config.sync.sync_interval);
            loop {
                tokio::select! {
                    () = ctx2.shutdown.cancelled() => break,
                    () = tokio::time::sleep(every.max(Duration::from_millis(100))) => {}
                }
                if node.is_primary()
                    && let Err(e) = source.refresh(&ctx2.config, &db).await
                {
                    tracing::debug!(error = %e.message(), "cannot build the configuration to serve");
                }
            }
        }
    });
}
