//! This instance's own check results on their way to the primary.
//!
//! A durable bus consumer ([`CONSUMER`]) takes the local collector's results
//! (`pantau.check.result.<location>.>`, only those this instance made),
//! appends each to the on-disk outbox (a sequence number per result, never
//! reused) and only then acknowledges it; a result it cannot buffer after
//! [`RetryPolicy::patient`] attempts goes to `pantau.deadletter.sync-outbox`. The drain loop delivers the
//! outbox in order: straight into the consensus store while this instance is
//! primary, or over gRPC to the primary while it is a dependent. A batch is
//! forgotten only once the primary acknowledged its sequence, and the
//! primary drops sequences it already holds, so a result is never lost and
//! never counted twice, however often the link breaks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pantau_core::bus::{BusEvent, Consumer, Delivery, HandleError, RetryPolicy, Subscription};
use pantau_core::service::Context;
use pantau_core::store::{Store, StoreError};
use pantau_proto::v1 as pb;
use prost::Message;

use crate::lease::now_ms;
use crate::metrics as m;
use crate::node::Node;
use crate::primary;
use crate::store;

/// The consumer's name; its durable is `sync-outbox-<instance id>`.
pub const CONSUMER: &str = "sync-outbox";

/// Counters shared with heartbeats and status.
#[derive(Debug, Default)]
pub struct Counters {
    /// Results taken from the bus since start.
    pub made: AtomicU64,
    /// Results in the outbox (last known).
    pub buffered: AtomicU64,
    /// Results delivered (to the primary or, as primary, to consensus).
    pub delivered: AtomicU64,
    /// Highest sequence number given so far.
    pub produced: AtomicU64,
}

/// Whether a local result can travel (the primary would refuse it otherwise).
fn deliverable(r: &pb::CheckResult, window: Duration) -> bool {
    let s = pb::SequencedResult {
        seq: 1,
        result: Some(r.clone()),
    };
    primary::incoming(std::slice::from_ref(&s), window).is_ok()
}

/// Subscribes to local results (before returning, so nothing published
/// afterwards is missed), registers the consumer's readiness and spawns it.
pub async fn consume(
    ctx: &Context,
    node: Arc<Node>,
    db: Store,
    counters: Arc<Counters>,
) -> Result<(), pantau_core::bus::BusError> {
    let pattern = format!("pantau.check.result.{}.>", node.location);
    let consumer = Consumer::new(
        Arc::clone(&ctx.bus),
        CONSUMER,
        [Subscription::durable(pattern, format!("{CONSUMER}-{}", node.id))],
    )
    .with_retry(RetryPolicy::patient());
    ctx.health.register("sync_api.outbox", consumer.readiness());
    let window = ctx.config.sync.consensus_window;
    let buffer_max = ctx.config.sync.buffer_max;
    let run = consumer
        .start(ctx.shutdown.clone(), move |d: Delivery| {
            let (node, db, counters) = (Arc::clone(&node), db.clone(), Arc::clone(&counters));
            async move {
                let BusEvent::CheckResult(mut r) = d.event else {
                    return Err(HandleError::permanent(format!("`{}` is not a check result", d.subject)));
                };
                let mine = r.instance.is_empty() || r.instance == node.id;
                if !mine || !deliverable(&r, window) {
                    return Ok(());
                }
                // The result keeps its trace on its way to consensus (`trace.rs`).
                r.trace_parent = pantau_core::telemetry::traceparent().unwrap_or_default();
                // Acknowledged only once buffered: a store failure is retried.
                let dropped = store::outbox_push(&db, &r.encode_to_vec(), now_ms(), buffer_max)
                    .await
                    .map_err(HandleError::transient)?;
                if dropped > 0 {
                    metrics::counter!(m::BUFFER_DROPPED).increment(dropped);
                    tracing::warn!(dropped, max = buffer_max, "result buffer full: dropped the oldest");
                }
                counters.made.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
        .await?;
    ctx.spawn_critical("outbox", run);
    Ok(())
}

/// One batch from the outbox, decoded; undecodable rows are skipped (and
/// acknowledged with the batch).
pub async fn batch(db: &Store, limit: u32) -> Result<(Vec<pb::SequencedResult>, u64), StoreError> {
    let rows = store::outbox_peek(db, limit).await?;
    let last = rows.last().map_or(0, |(s, _)| *s);
    let out = rows
        .into_iter()
        .filter_map(|(seq, bytes)| match pb::CheckResult::decode(bytes.as_slice()) {
            Ok(result) => Some(pb::SequencedResult {
                seq,
                result: Some(result),
            }),
            Err(e) => {
                tracing::warn!(seq, error = %e, "skipping an unreadable buffered result");
                None
            }
        })
        .collect();
    Ok((out, last))
}

/// While primary: moves the outbox into consensus. Returns how many moved.
pub async fn drain_locally(ctx: &Context, node: &Node, db: &Store) -> Result<u64, crate::SyncError> {
    let (batch, last) = batch(db, ctx.config.sync.batch_size).await?;
    if last == 0 {
        return Ok(0);
    }
    let incoming = primary::incoming(&batch, ctx.config.sync.consensus_window)?;
    // Ingested and forgotten from the outbox in one transaction.
    let done = primary::ingest(node, db, &node.id, &node.location, &incoming, Some(last)).await?;
    Ok(u64::from(done.accepted))
}

pub async fn refresh_buffered(db: &Store, counters: &Counters) -> u64 {
    let n = store::outbox_len(db).await.unwrap_or(0);
    counters.buffered.store(n, Ordering::Relaxed);
    if let Ok(high) = store::outbox_high(db).await {
        counters.produced.store(high, Ordering::Relaxed);
    }
    metrics::gauge!(m::BUFFERED).set(n as f64);
    n
}
