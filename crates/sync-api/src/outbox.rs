//! This instance's own check results on their way to the primary.
//!
//! A durable bus consumer takes the local collector's results
//! (`pantau.check.result.<location>.>`, only those this instance made),
//! appends each to the on-disk outbox (a sequence number per result, never
//! reused) and only then acknowledges it. The drain loop delivers the
//! outbox in order: straight into the consensus store while this instance is
//! primary, or over gRPC to the primary while it is a dependent. A batch is
//! forgotten only once the primary acknowledged its sequence, and the
//! primary drops sequences it already holds, so a result is never lost and
//! never counted twice, however often the link breaks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use pantau_core::bus::{Subscription, decode};
use pantau_core::service::Context;
use pantau_core::store::Store;
use pantau_proto::v1 as pb;
use prost::Message;

use crate::lease::now_ms;
use crate::metrics as m;
use crate::node::Node;
use crate::primary;
use crate::store;

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

/// Starts the consumer of local results.
pub async fn consume(
    ctx: &Context,
    node: Arc<Node>,
    db: Store,
    counters: Arc<Counters>,
) -> Result<(), pantau_core::bus::BusError> {
    let pattern = format!("pantau.check.result.{}.>", node.location);
    let mut stream = ctx
        .bus
        .subscribe(Subscription::durable(pattern, format!("sync-outbox-{}", node.id)))
        .await?;
    let ctx2 = ctx.clone();
    ctx.spawn_critical("outbox", async move {
        let s = &ctx2.config.sync;
        loop {
            let msg = tokio::select! {
                () = ctx2.shutdown.cancelled() => break,
                m = stream.next() => match m { Some(m) => m, None => break },
            };
            let Some(r) = decode::<pb::CheckResult>(&msg) else {
                let _ = msg.ack().await;
                continue;
            };
            let mine = r.instance.is_empty() || r.instance == node.id;
            if mine && deliverable(&r, s.consensus_window) {
                loop {
                    match store::outbox_push(&db, &r.encode_to_vec(), now_ms(), s.buffer_max).await {
                        Ok(dropped) => {
                            if dropped > 0 {
                                metrics::counter!(m::BUFFER_DROPPED).increment(dropped);
                                tracing::warn!(dropped, max = s.buffer_max, "result buffer full: dropped the oldest");
                            }
                            counters.made.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(e) => {
                            // Not acknowledged: keep trying, the bus keeps it meanwhile.
                            tracing::warn!(error = %e, "cannot buffer a result; retrying");
                            tokio::select! {
                                () = ctx2.shutdown.cancelled() => return,
                                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                            }
                        }
                    }
                }
            }
            if let Err(e) = msg.ack().await {
                tracing::warn!(error = %e, "cannot acknowledge a result");
            }
        }
    });
    Ok(())
}

/// One batch from the outbox, decoded; undecodable rows are skipped (and
/// acknowledged with the batch).
pub async fn batch(db: &Store, limit: u32) -> Result<(Vec<pb::SequencedResult>, u64), String> {
    let rows = store::outbox_peek(db, limit).await.map_err(|e| e.to_string())?;
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
pub async fn drain_locally(ctx: &Context, node: &Node, db: &Store) -> Result<u64, String> {
    let (batch, last) = batch(db, ctx.config.sync.batch_size).await?;
    if last == 0 {
        return Ok(0);
    }
    let incoming = primary::incoming(&batch, ctx.config.sync.consensus_window).map_err(|e| e.to_string())?;
    // Ingested and forgotten from the outbox in one transaction.
    let done = primary::ingest(node, db, &node.id, &node.location, &incoming, Some(last))
        .await
        .map_err(|e| e.to_string())?;
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
