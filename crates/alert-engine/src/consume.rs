//! Facts from the bus into the engine: durable subscriptions to check
//! results, metrics, router events, consensus results and interface samples,
//! run by one [`Consumer`] that acknowledges each message once its
//! transitions are stored (retrying a store failure, then dead-lettering on
//! `pantau.deadletter.alert-engine`); and the periodic sweep.

use std::sync::Arc;
use std::time::SystemTime;

use pantau_core::bus::{Bus, BusError, BusEvent, Consumer, Delivery, HandleError, RetryPolicy, Subscription, subject};
use pantau_core::health::ReadinessCheck;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::engine::Engine;
use crate::facts::{self, Fact, WanRoles};
use crate::metrics as m;

/// The consumer's name (its dead-letter subject is `pantau.deadletter.alert-engine`).
pub const CONSUMER: &str = "alert-engine";

/// The subscriptions: (pattern, durable name).
pub const SUBSCRIPTIONS: [(&str, &str); 5] = [
    (subject::ALL_CHECK_RESULTS, "alert-engine-checks"),
    (subject::ALL_METRICS, "alert-engine-metrics"),
    (subject::ALL_EVENTS, "alert-engine-events"),
    (subject::ALL_CONSENSUS, "alert-engine-consensus"),
    (subject::ALL_IFACE_SAMPLES, "alert-engine-ifaces"),
];

/// The facts a bus message states; interface facts of WAN interfaces get
/// `role="wan"`.
pub fn facts_of(event: &BusEvent, now: SystemTime, roles: &WanRoles) -> (&'static str, Vec<Fact>) {
    let mut facts = match event {
        BusEvent::CheckResult(r) => facts::from_check(r, now),
        BusEvent::Metric(r) => facts::from_metric(r, now).into_iter().collect(),
        BusEvent::Consensus(r) => facts::from_consensus(r, now),
        BusEvent::Event { event, .. } => {
            roles.learn(event);
            facts::from_event(event, now)
        }
        BusEvent::InterfaceSample(r) => facts::from_iface(r, now),
        BusEvent::RouterInfo(_) | BusEvent::Alert { .. } => Vec::new(),
    };
    roles.label(&mut facts);
    (event.family(), facts)
}

/// The consumer of [`SUBSCRIPTIONS`] on `bus`, and its readiness check.
pub fn consumer(bus: &Arc<dyn Bus>) -> (Consumer, Arc<dyn ReadinessCheck>) {
    let consumer = Consumer::new(
        Arc::clone(bus),
        CONSUMER,
        SUBSCRIPTIONS
            .iter()
            .map(|(pattern, durable)| Subscription::durable(*pattern, *durable)),
    )
    .with_retry(RetryPolicy::patient());
    let ready = consumer.readiness();
    (consumer, ready)
}

/// Subscribes (before returning, so nothing published afterwards is
/// missed), then feeds every message to the engine until `shutdown`.
pub async fn start(
    engine: Arc<Engine>,
    consumer: Consumer,
    shutdown: CancellationToken,
) -> Result<impl Future<Output = ()> + Send + 'static, BusError> {
    let roles = Arc::new(WanRoles::default());
    consumer
        .start(shutdown, move |d: Delivery| {
            let (engine, roles) = (Arc::clone(&engine), Arc::clone(&roles));
            async move {
                let now = SystemTime::now();
                let (family, facts) = facts_of(&d.event, now, &roles);
                if d.attempt == 1 {
                    metrics::counter!(m::FACTS_TOTAL, "family" => family).increment(facts.len() as u64);
                }
                // The publisher's trace continues here, and into the alert
                // events this message causes.
                let span = tracing::info_span!("alert_engine.ingest", subject = %d.subject, facts = facts.len());
                engine
                    .ingest(facts, now)
                    .instrument(span)
                    .await
                    .map(|_| ())
                    .map_err(HandleError::transient)
            }
        })
        .await
}

/// Sweeps every `interval`, and evaluates the batched rules every
/// [`crate::engine::BATCH_INTERVAL`], until `shutdown`; each completed
/// sweep is recorded in `progress`.
pub async fn sweep_loop(
    engine: Arc<Engine>,
    interval: std::time::Duration,
    progress: Arc<crate::watchdog::Progress>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut batch = tokio::time::interval(crate::engine::BATCH_INTERVAL);
    batch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {
                // Progress is a sweep that evaluated and stored: one that
                // cannot store its transitions pages no one.
                match engine.sweep(SystemTime::now()).await {
                    Ok(_) => progress.record(),
                    Err(e) => tracing::warn!(error = %e, "alert sweep failed"),
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
