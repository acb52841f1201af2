//! Facts from the bus into the engine: durable subscriptions to check
//! results, metrics, router events and interface samples, each message
//! acknowledged once its transitions are stored; and the periodic sweep.

use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;
use pantau_core::bus::{Bus, BusError, Message, Subscription, decode, subject};
use pantau_proto::v1::{CheckResult, ConsensusResult, InterfaceSample, MetricSample, RouterEvent};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::engine::Engine;
use crate::facts::{self, Fact, WanRoles};
use crate::metrics as m;

/// The subscriptions: (pattern, durable name).
pub const SUBSCRIPTIONS: [(&str, &str); 4] = [
    (subject::ALL_CHECK_RESULTS, "alert-engine-checks"),
    ("pantau.metric.>", "alert-engine-metrics"),
    ("pantau.event.>", "alert-engine-events"),
    ("pantau.iface.sample.>", "alert-engine-ifaces"),
];

/// The facts a bus message states, by its subject; interface facts of WAN
/// interfaces get `role="wan"`.
pub fn facts_of(msg: &Message, now: SystemTime, roles: &WanRoles) -> (&'static str, Vec<Fact>) {
    let (family, mut facts) = facts_of_message(msg, now, roles);
    roles.label(&mut facts);
    (family, facts)
}

fn facts_of_message(msg: &Message, now: SystemTime, roles: &WanRoles) -> (&'static str, Vec<Fact>) {
    let s = msg.subject.as_str();
    if s.starts_with("pantau.check.result.") {
        (
            "check",
            decode::<CheckResult>(msg)
                .map(|r| facts::from_check(&r, now))
                .unwrap_or_default(),
        )
    } else if s.starts_with("pantau.metric.") {
        (
            "metric",
            decode::<MetricSample>(msg)
                .and_then(|r| facts::from_metric(&r, now))
                .into_iter()
                .collect(),
        )
    } else if s.starts_with("pantau.event.consensus.") {
        // Consensus events carry a ConsensusResult, not a RouterEvent.
        (
            "consensus",
            decode::<ConsensusResult>(msg)
                .map(|r| facts::from_consensus(&r, now))
                .unwrap_or_default(),
        )
    } else if s.starts_with("pantau.event.") {
        (
            "event",
            decode::<RouterEvent>(msg)
                .map(|r| {
                    roles.learn(&r);
                    facts::from_event(&r, now)
                })
                .unwrap_or_default(),
        )
    } else if s.starts_with("pantau.iface.sample.") {
        (
            "iface",
            decode::<InterfaceSample>(msg)
                .map(|r| facts::from_iface(&r, now))
                .unwrap_or_default(),
        )
    } else {
        ("other", Vec::new())
    }
}

/// Subscribes (before returning, so nothing published afterwards is
/// missed), then feeds every message to the engine until `shutdown`.
pub async fn start(
    engine: Arc<Engine>,
    bus: &Arc<dyn Bus>,
    shutdown: CancellationToken,
) -> Result<impl Future<Output = ()> + Send + 'static, BusError> {
    let mut streams = Vec::new();
    for (pattern, durable) in SUBSCRIPTIONS {
        streams.push(bus.subscribe(Subscription::durable(pattern, durable)).await?);
    }
    let mut all = futures::stream::select_all(streams);
    let roles = WanRoles::default();
    Ok(async move {
        loop {
            let msg = tokio::select! {
                () = shutdown.cancelled() => break,
                next = all.next() => match next {
                    Some(m) => m,
                    None => break,
                },
            };
            let now = SystemTime::now();
            let (family, facts) = facts_of(&msg, now, &roles);
            metrics::counter!(m::FACTS_TOTAL, "family" => family).increment(facts.len() as u64);
            // The publisher's trace continues here, and into the alert
            // events this message causes.
            let span = tracing::info_span!("alert_engine.ingest", subject = %msg.subject, facts = facts.len());
            pantau_core::telemetry::set_parent_from(&span, &msg.headers);
            match engine.ingest(facts, now).instrument(span).await {
                Ok(_) => {
                    if let Err(e) = msg.ack().await {
                        tracing::warn!(subject = %msg.subject, error = %e, "cannot acknowledge a bus message; it may be redelivered");
                    }
                }
                // Not acknowledged: NATS redelivers it; the transitions are kept and retried.
                Err(e) => tracing::warn!(subject = %msg.subject, error = %e, "cannot store alert transitions"),
            }
        }
    })
}

/// Sweeps every `interval`, and evaluates the batched rules every
/// [`crate::engine::BATCH_INTERVAL`], until `shutdown`.
pub async fn sweep_loop(engine: Arc<Engine>, interval: std::time::Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut batch = tokio::time::interval(crate::engine::BATCH_INTERVAL);
    batch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {
                if let Err(e) = engine.sweep(SystemTime::now()).await {
                    tracing::warn!(error = %e, "alert sweep failed");
                }
            }
            _ = batch.tick() => {
                if let Err(e) = engine.evaluate_batched(SystemTime::now()).await {
                    tracing::warn!(error = %e, "batched alert evaluation failed");
                }
            }
        }
    }
}
