//! Instance liveness: an instance is ACTIVE while it sends heartbeats,
//! INACTIVE after `sync.inactive_after` missed ones and FAILED after
//! `sync.failed_after` (its health then shows unknown, then failing, not
//! what it last reported). While primary, a watcher records the primary's
//! own heartbeat (its health from its readiness checks) every
//! `sync.heartbeat_interval`, and publishes each change as an
//! `instance` event (`pantau.event.instance.<id>`, a `RouterEvent` of kind
//! INSTANCE with the state in its attributes) and keeps the
//! `pantau_sync_instances{state}` gauge.

use std::collections::HashMap;
use std::sync::Arc;

use pantau_config::SyncConfig;
use pantau_core::bus::{publish_proto, subject};
use pantau_core::service::Context;
use pantau_core::store::Store;
use pantau_core::time::to_timestamp;
use pantau_proto::v1 as pb;

use crate::lease::now_ms;
use crate::node::Node;
use crate::store;

/// The state of an instance whose last heartbeat was at `last_ms`.
pub fn state_of(s: &SyncConfig, last_ms: i64, now_ms: i64) -> pb::InstanceState {
    let missed = (now_ms - last_ms).max(0) as u128 / s.heartbeat_interval.as_millis().max(1);
    if missed >= u128::from(s.failed_after) {
        pb::InstanceState::Failed
    } else if missed >= u128::from(s.inactive_after) {
        pb::InstanceState::Inactive
    } else {
        pb::InstanceState::Active
    }
}

fn name(s: pb::InstanceState) -> &'static str {
    match s {
        pb::InstanceState::Active => "active",
        pb::InstanceState::Inactive => "inactive",
        _ => "failed",
    }
}

/// This process's health from its readiness checks: failing when an
/// essential one fails, degraded when another fails or works badly.
pub async fn own_health(ctx: &Context) -> pb::InstanceHealth {
    let report = ctx.health.report().await;
    let mut health = pb::InstanceHealth::Healthy;
    for c in report.components.values() {
        if c.error.is_some() && c.essential {
            return pb::InstanceHealth::Failing;
        }
        if c.error.is_some() || c.level != pantau_core::health::Level::Ok {
            health = pb::InstanceHealth::Degraded;
        }
    }
    health
}

/// The primary's own row: a heartbeat with its health and uptime, as a
/// dependent's heartbeat records it.
async fn beat_self(
    ctx: &Context,
    node: &Node,
    db: &Store,
    started: tokio::time::Instant,
) -> Result<(), pantau_core::store::StoreError> {
    let beat = store::Beat {
        health: own_health(ctx).await as i32,
        metrics: serde_json::Value::Null,
        connection: serde_json::Value::Null,
        uptime_ms: started.elapsed().as_millis() as i64,
    };
    if !store::heartbeat(db, &node.id, &beat, now_ms()).await? {
        tracing::debug!("this instance has no row (or it is revoked): no own heartbeat");
    }
    Ok(())
}

/// The health shown for an instance in `state`: what it last reported
/// while it keeps in touch, unknown once inactive, failing once failed.
pub fn shown_health(state: pb::InstanceState, reported: i32) -> i32 {
    match state {
        pb::InstanceState::Inactive => pb::InstanceHealth::Unspecified as i32,
        pb::InstanceState::Failed => pb::InstanceHealth::Failing as i32,
        _ => reported,
    }
}

/// Starts the watcher (it works only while this instance is primary).
pub fn watch(ctx: &Context, node: Arc<Node>, db: Store) {
    let ctx2 = ctx.clone();
    ctx.spawn_supervised("instances", move || {
        let (ctx2, node, db) = (ctx2.clone(), node.clone(), db.clone());
        async move {
            let s = ctx2.config.sync.clone();
            let started = tokio::time::Instant::now();
            let mut known: HashMap<String, pb::InstanceState> = HashMap::new();
            loop {
                tokio::select! {
                    () = ctx2.shutdown.cancelled() => break,
                    () = tokio::time::sleep(s.heartbeat_interval) => {}
                }
                if !node.is_primary() {
                    known.clear();
                    continue;
                }
                if let Err(e) = beat_self(&ctx2, &node, &db, started).await {
                    tracing::warn!(error = %e, "cannot record this primary's own heartbeat");
                }
                let rows = match store::instances(&db).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read instances");
                        continue;
                    }
                };
                let now = now_ms();
                let mut counts = HashMap::from([("active", 0u32), ("inactive", 0), ("failed", 0)]);
                for r in rows.iter().filter(|r| !r.revoked && r.reg.id != node.id) {
                    let state = state_of(&s, r.last_heartbeat_ms, now);
                    *counts.entry(name(state)).or_default() += 1;
                    let before = known.insert(r.reg.id.clone(), state);
                    if before.is_none_or(|b| b == state) {
                        continue;
                    }
                    tracing::info!(instance = %r.reg.id, state = name(state), "instance state changed");
                    let event = pb::RouterEvent {
                        id: format!("{}-{now}", r.reg.id),
                        kind: pb::EventKind::Instance as i32,
                        source: r.reg.id.clone(),
                        occurred_at: Some(to_timestamp(std::time::SystemTime::now())),
                        severity: match state {
                            pb::InstanceState::Active => pb::Severity::Info,
                            pb::InstanceState::Inactive => pb::Severity::Warning,
                            _ => pb::Severity::Critical,
                        } as i32,
                        message: format!("instance {} ({}) is {}", r.reg.id, r.reg.location, name(state)),
                        attributes: [
                            ("state".to_owned(), name(state).to_owned()),
                            ("location".to_owned(), r.reg.location.clone()),
                        ]
                        .into(),
                    };
                    if let Err(e) = publish_proto(&*ctx2.bus, &subject::event("instance", &r.reg.id), &event).await {
                        tracing::warn!(error = %e, "cannot publish an instance event");
                    }
                }
                for (state, n) in counts {
                    metrics::gauge!(crate::metrics::INSTANCES, "state" => state).set(f64::from(n));
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn missed_heartbeats_make_an_instance_inactive_then_failed() {
        let s = SyncConfig {
            heartbeat_interval: Duration::from_secs(10),
            inactive_after: 3,
            failed_after: 10,
            ..SyncConfig::default()
        };
        assert_eq!(state_of(&s, 1_000_000, 1_029_999), pb::InstanceState::Active);
        assert_eq!(state_of(&s, 1_000_000, 1_030_000), pb::InstanceState::Inactive);
        assert_eq!(state_of(&s, 1_000_000, 1_099_999), pb::InstanceState::Inactive);
        assert_eq!(state_of(&s, 1_000_000, 1_100_000), pb::InstanceState::Failed);
        // A clock step backwards is no missed heartbeat.
        assert_eq!(state_of(&s, 1_000_000, 900_000), pb::InstanceState::Active);
    }

    #[test]
    fn a_failed_instance_is_not_shown_healthy() {
        let healthy = pb::InstanceHealth::Healthy as i32;
        assert_eq!(shown_health(pb::InstanceState::Active, healthy), healthy);
        assert_eq!(
            shown_health(pb::InstanceState::Inactive, healthy),
            pb::InstanceHealth::Unspecified as i32
        );
        assert_eq!(
            shown_health(pb::InstanceState::Failed, healthy),
            pb::InstanceHealth::Failing as i32
        );
    }
}
