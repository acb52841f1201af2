//! The primary's work: ingesting results from every location (its own and
//! the dependents'), publishing each window's consensus on
//! `pantau.consensus.<target_id>` (with the fencing epoch) and as
//! metrics with a `location` label, and pruning by retention.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pantau_config::is_token;
use pantau_core::bus::{publish_proto, subject};
use pantau_core::service::Context;
use pantau_core::store::{Store, StoreError};
use pantau_core::time::{from_duration, from_timestamp, to_duration};
use pantau_proto::v1 as pb;
use tracing::Instrument;

use crate::configsync::ConfigSource;
use crate::consensus::{aggregate, window_start};
use crate::lease::now_ms;
use crate::metrics as m;
use crate::node::Node;
use crate::store::{self, Incoming, Ingested};

/// Why a pushed result was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadResult {
    #[error("results[{0}].result is missing")]
    Missing(usize),
    #[error("results[{0}].result.target_id `{1}` must be letters, digits, `-` or `_`")]
    Target(usize, String),
    #[error("results[{0}].result.location `{1}` must be letters, digits, `-` or `_`")]
    Location(usize, String),
    #[error("results[{0}].result.checked_at is missing or before 1970")]
    CheckedAt(usize),
    #[error("results[{0}].seq must be greater than results[{1}].seq")]
    Order(usize, usize),
}

/// Validates and converts a batch (sequence numbers strictly increasing).
pub fn incoming(batch: &[pb::SequencedResult], window: Duration) -> Result<Vec<Incoming>, BadResult> {
    let mut out = Vec::with_capacity(batch.len());
    for (i, s) in batch.iter().enumerate() {
        let r = s.result.as_ref().ok_or(BadResult::Missing(i))?;
        if !is_token(&r.target_id) {
            return Err(BadResult::Target(i, r.target_id.clone()));
        }
        if !is_token(&r.location) {
            return Err(BadResult::Location(i, r.location.clone()));
        }
        if i > 0 && s.seq <= batch[i - 1].seq {
            return Err(BadResult::Order(i, i - 1));
        }
        let checked = r
            .checked_at
            .as_ref()
            .and_then(from_timestamp)
            .ok_or(BadResult::CheckedAt(i))?;
        let checked_ms = checked
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let latency = r.latency.as_ref().and_then(from_duration).unwrap_or_default();
        out.push(Incoming {
            seq: s.seq,
            target_id: r.target_id.clone(),
            location: r.location.clone(),
            up: r.status == pb::CheckStatus::Up as i32,
            latency_us: latency.as_micros() as i64,
            checked_ms,
            window_ms: window_start(checked_ms, window),
            // Untrusted: a value too long to be a traceparent is dropped here,
            // a malformed one where it is read (`trace::Causes::received`).
            trace_parent: if r.trace_parent.len() <= pantau_core::telemetry::propagate::MAX_VALUE {
                r.trace_parent.clone()
            } else {
                String::new()
            },
        });
    }
    Ok(out)
}

/// Why an ingest did not happen.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lease(#[from] crate::lease::LeaseError),
    #[error("stale primary: epoch {mine} is older than {newer}")]
    Stale { mine: u64, newer: u64 },
}

/// Ingests a validated batch of `instance` and counts it (see
/// [`store::ingest`] for `outbox_upto`).
///
/// With the lease, the instance's acknowledged sequence is shared by every
/// primary in the registry bucket (`acked.<instance>`): sequences another
/// primary already acknowledged are dropped here too, and the write carries
/// this primary's fencing epoch: a primary that finds a newer epoch there
/// was replaced and refuses.
pub async fn ingest(
    node: &Node,
    db: &Store,
    instance: &str,
    location: &str,
    batch: &[Incoming],
    outbox_upto: Option<u64>,
) -> Result<Ingested, IngestError> {
    let epoch = node.state().epoch;
    let shared = match node.lease() {
        Some(l) => Some((l, l.acked(instance).await?)),
        None => None,
    };
    if let Some((_, a)) = &shared
        && a.epoch > epoch
    {
        node.recheck();
        return Err(IngestError::Stale {
            mine: epoch,
            newer: a.epoch,
        });
    }
    let floor = shared.as_ref().map_or(0, |(_, a)| a.seq);
    let done = store::ingest(db, instance, batch, floor, outbox_upto).await?;
    node.causes.received(instance, batch);
    if let Some((l, a)) = shared
        && done.acked_seq > a.seq
        && !l.advance(instance, done.acked_seq, epoch, a.revision).await?
    {
        let now = l.acked(instance).await?;
        if now.epoch > epoch {
            node.recheck();
            return Err(IngestError::Stale {
                mine: epoch,
                newer: now.epoch,
            });
        }
    }
    metrics::counter!(m::RESULTS_RECEIVED, "location" => location.to_owned()).increment(u64::from(done.accepted));
    metrics::counter!(m::RESULTS_DUPLICATE).increment(u64::from(done.duplicates));
    Ok(done)
}

/// Makes sure this instance has a row (its own results are ingested under it).
pub async fn ensure_self(db: &Store, node: &Node) -> Result<(), StoreError> {
    if store::instance(db, &node.id).await?.is_some() {
        return Ok(());
    }
    let reg = store::Registration {
        id: node.id.clone(),
        name: node.id.clone(),
        location: node.location.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        public_endpoint: node.endpoint.clone(),
        failover_order: node.position().unwrap_or(u32::MAX),
        system: serde_json::Value::Null,
        ..Default::default()
    };
    store::register(db, &reg, now_ms()).await
}

/// Each target's quorum as the local collector holds it (config-file and
/// API targets, and those synced from an earlier primary): read through
/// the served configuration, so a new primary computes the quorum the
/// target was given wherever it came from. `None` while the collector has
/// never answered: no consensus is published with a guessed quorum.
async fn quorums(ctx: &Context, source: &ConfigSource, db: &Store) -> Option<HashMap<String, u32>> {
    let config = match source.cached().await {
        Some(v) => v,
        None => match source.refresh(&ctx.config, db).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e.message(), "the targets' quorums are unknown: consensus waits for the local collector");
                return None;
            }
        },
    };
    Some(
        config
            .config
            .targets
            .iter()
            .filter_map(|t| t.quorum.map(|q| (t.id.clone(), q)))
            .collect(),
    )
}

/// The consensus as gauges. A stale location's `pantau_sync_location_up`
/// keeps its last value (the metrics facade cannot remove a series) and is
/// marked by `pantau_sync_location_stale` = 1; latency only for reporting
/// locations.
fn record_metrics(target: &str, results: &[crate::consensus::LocationResult], a: &crate::consensus::Aggregate) {
    for r in results {
        let labels = [("target_id", target.to_owned()), ("location", r.location.clone())];
        metrics::gauge!(m::LOCATION_UP, &labels).set(if r.up { 1.0 } else { 0.0 });
        metrics::gauge!(m::LOCATION_STALE, &labels).set(if r.stale { 1.0 } else { 0.0 });
        if !r.stale {
            metrics::gauge!(m::LOCATION_LATENCY, &labels).set(r.latency.as_secs_f64());
        }
    }
    let value = match a.status {
        pb::ConsensusStatus::Up => 1.0,
        pb::ConsensusStatus::Partial => 0.5,
        _ => 0.0,
    };
    metrics::gauge!(m::CONSENSUS_STATUS, "target_id" => target.to_owned()).set(value);
    for (kind, n) in [
        ("total", a.total),
        ("successful", a.successful),
        ("reporting", a.reporting),
        ("stale", a.stale.len() as u32),
    ] {
        metrics::gauge!(m::CONSENSUS_LOCATIONS, "target_id" => target.to_owned(), "kind" => kind).set(f64::from(n));
    }
}

/// Publishes the consensus of every window that ended `consensus_delay` ago
/// and got new results, while this instance is primary; prunes by retention.
pub fn start(ctx: &Context, node: Arc<Node>, db: Store, source: Arc<ConfigSource>) {
    let ctx2 = ctx.clone();
    ctx.spawn_supervised("consensus", move || {
        let (ctx2, node, db, source) = (ctx2.clone(), node.clone(), db.clone(), source.clone());
        async move {
            let s = &ctx2.config.sync;
            let tick = (s.consensus_window / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
            let mut last_prune = 0i64;
            loop {
                tokio::select! {
                    () = ctx2.shutdown.cancelled() => break,
                    () = tokio::time::sleep(tick) => {}
                }
                if !node.is_primary() {
                    continue;
                }
                let Some(quorums) = quorums(&ctx2, &source, &db).await else {
                    continue;
                };
                if let Err(e) = publish_due(&ctx2, &node, &db, &quorums).await {
                    tracing::warn!(error = %e, "cannot publish consensus");
                }
                let now = now_ms();
                if now - last_prune > 60_000 {
                    last_prune = now;
                    let before = now - s.retention.as_millis() as i64;
                    match store::prune(&db, before).await {
                        Ok(n) if n > 0 => tracing::debug!(rows = n, "pruned consensus windows"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot prune consensus windows"),
                    }
                    match crate::history::prune(&db, &ctx2.config.collector.history, std::time::SystemTime::now()).await
                    {
                        Ok(n) if n > 0 => tracing::debug!(rows = n, "pruned location history"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot prune location history"),
                    }
                }
            }
        }
    });
}

async fn publish_due(
    ctx: &Context,
    node: &Node,
    db: &Store,
    quorums: &HashMap<String, u32>,
) -> Result<(), crate::SyncError> {
    let s = &ctx.config.sync;
    let before = now_ms() - (s.consensus_window + s.consensus_delay).as_millis() as i64 + 1;
    let due = store::due_windows(db, before).await?;
    for (target, window_ms) in due {
        let state = node.state();
        if state.role != pb::SyncRole::Primary {
            return Ok(());
        }
        let results = store::window_results(db, &target, window_ms).await?;
        // Traced from the result that decided the window (`trace.rs`).
        let span = node.causes.consensus_span(&target, window_ms);
        let Some(a) = span.in_scope(|| aggregate(&results, quorums.get(&target).copied())) else {
            continue;
        };
        span.record("status", a.status.as_str_name());
        span.record("locations", a.total);
        let msg = pb::ConsensusResult {
            target_id: target.clone(),
            window_start: Some(pantau_core::time::to_timestamp(
                std::time::UNIX_EPOCH + Duration::from_millis(window_ms as u64),
            )),
            window: Some(to_duration(s.consensus_window)),
            status: a.status as i32,
            locations_total: a.total,
            locations_successful: a.successful,
            quorum: a.quorum,
            latency_avg: Some(to_duration(a.latency_avg)),
            latency_min: Some(to_duration(a.latency_min)),
            latency_max: Some(to_duration(a.latency_max)),
            down_locations: a.down.clone(),
            epoch: state.epoch,
            instance: node.id.clone(),
            locations_reporting: a.reporting,
            locations_stale: a.stale.len() as u32,
            stale_locations: a.stale.clone(),
            quorum_unreachable: a.quorum_unreachable,
        };
        if a.quorum_unreachable {
            tracing::warn!(target = %target, quorum = a.quorum, known = a.total, "the target's quorum is larger than its locations: it cannot be DOWN");
        }
        let publish = tracing::info_span!(parent: &span, "sync.consensus.publish", target = %target);
        publish_proto(&*ctx.bus, &subject::consensus(&target), &msg)
            .instrument(publish)
            .await?;
        record_metrics(&target, &results, &a);
        tracing::debug!(target = %target, window_ms, status = ?a.status, total = a.total, "consensus published");
        store::mark_published(
            db,
            &target,
            window_ms,
            (a.status as i32, a.total, a.successful),
            state.epoch,
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(seq: u64, target: &str, at: u64) -> pb::SequencedResult {
        pb::SequencedResult {
            seq,
            result: Some(pb::CheckResult {
                target_id: target.into(),
                location: "jkt".into(),
                status: pb::CheckStatus::Up as i32,
                checked_at: Some(pantau_core::time::to_timestamp(
                    std::time::UNIX_EPOCH + Duration::from_secs(at),
                )),
                latency: Some(to_duration(Duration::from_millis(12))),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn batches_are_validated_naming_the_field() {
        let w = Duration::from_secs(60);
        let ok = incoming(&[res(1, "web", 125), res(2, "web", 130)], w).unwrap();
        assert_eq!(ok[0].window_ms, 120_000);
        assert_eq!(ok[0].latency_us, 12_000);
        assert!(ok[0].up);
        assert_eq!(
            incoming(&[res(2, "web", 1), res(2, "web", 2)], w),
            Err(BadResult::Order(1, 0))
        );
        assert_eq!(
            incoming(&[res(1, "a b", 1)], w),
            Err(BadResult::Target(0, "a b".into()))
        );
        let mut no_time = res(1, "web", 1);
        no_time.result.as_mut().unwrap().checked_at = None;
        assert_eq!(incoming(&[no_time], w), Err(BadResult::CheckedAt(0)));
        let missing = pb::SequencedResult { seq: 1, result: None };
        assert_eq!(incoming(&[missing], w), Err(BadResult::Missing(0)));
    }

    #[test]
    fn a_trace_parent_is_never_a_reason_to_refuse() {
        let w = Duration::from_secs(60);
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut batch = [res(1, "web", 1), res(2, "web", 2), res(3, "web", 3)];
        batch[0].result.as_mut().unwrap().trace_parent = tp.into();
        batch[1].result.as_mut().unwrap().trace_parent = "x".repeat(1 << 20);
        batch[2].result.as_mut().unwrap().trace_parent = "garbage \u{0} é".into();
        let ok = incoming(&batch, w).unwrap();
        assert_eq!(ok[0].trace_parent, tp);
        assert_eq!(ok[1].trace_parent, "", "a huge value is dropped");
        assert_eq!(
            ok.len(),
            3,
            "garbage is accepted with the result and ignored where it is read"
        );
    }
}
