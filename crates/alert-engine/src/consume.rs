//! Facts from the bus into the engine: durable subscriptions (one per
//! cluster: only the evaluating instance holds them) to check
//! results, metrics, router events, consensus results and interface samples,
//! run by one [`Consumer`] that acknowledges each message once its
//! transitions are stored (retrying a store failure, then dead-lettering on
//! `pantau.deadletter.alert-engine`); and the periodic sweep.

use std::sync::Arc;
use std::time::SystemTime;

use pantau_core::bus::{Bus, BusError, BusEvent, Consumer, Delivery, HandleError, RetryPolicy, Subscription, subject};
use pantau_core::cluster::Gate;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::engine::Engine;
use crate::facts::{self, Fact, WanRoles};
use crate::metrics as m;

/// The consumer's name (its dead-letter subject is `pantau.deadletter.alert-engine`).
pub const CONSUMER: &str = "alert-engine";

/// Most messages taken in (and their transitions stored) at once: those
/// already waiting when one arrives.
pub const BATCH: usize = 256;

/// The subscriptions: (pattern, durable name).
pub const SUBSCRIPTIONS: [(&str, &str); 6] = [
    (subject::ALL_CHECK_RESULTS, "alert-engine-checks"),
    (subject::ALL_METRICS, "alert-engine-metrics"),
    (subject::ALL_EVENTS, "alert-engine-events"),
    (subject::ALL_CONSENSUS, "alert-engine-consensus"),
    (subject::ALL_IFACE_SAMPLES, "alert-engine-ifaces"),
    // Routers' labels: their site, for derived dependencies.
    (subject::ALL_ROUTER_INFO, "alert-engine-routers"),
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
        BusEvent::RouterInfo(_) | BusEvent::Alert { .. } | BusEvent::Incident { .. } | BusEvent::Delivery { .. } => {
            Vec::new()
        }
    };
    roles.label(&mut facts);
    (event.family(), facts)
}

/// The consumer of [`SUBSCRIPTIONS`] on `bus`.
pub fn consumer(bus: &Arc<dyn Bus>) -> Consumer {
    Consumer::new(
        Arc::clone(bus),
        CONSUMER,
        SUBSCRIPTIONS
            .iter()
            .map(|(pattern, durable)| Subscription::durable(*pattern, *durable)),
    )
    .with_retry(RetryPolicy::patient())
}

/// Feeds every message of [`SUBSCRIPTIONS`] to the engine while this
/// instance evaluates (see [`crate::cluster`]), until `shutdown`: subscribes
/// before returning when it evaluates now (so nothing published afterwards
/// is missed); when it becomes the evaluator later, it first adopts the
/// alerts the previous one left.
pub async fn start(
    engine: Arc<Engine>,
    bus: &Arc<dyn Bus>,
    gate: Gate,
    shutdown: CancellationToken,
) -> Result<impl Future<Output = Result<(), BusError>> + Send + 'static, BusError> {
    let roles = Arc::new(WanRoles::default());
    let (bus, adopting) = (Arc::clone(bus), Arc::clone(&engine));
    // Evaluating from the start, the engine restored the store already;
    // else (a dependent, or a primary not yet elected) it adopts first.
    let first = Arc::new(std::sync::atomic::AtomicBool::new(engine.evaluates()));
    let make = move || {
        let (bus, engine, first) = (Arc::clone(&bus), Arc::clone(&adopting), Arc::clone(&first));
        async move {
            if !first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                while let Err(e) = engine.adopt(SystemTime::now()).await {
                    tracing::warn!(error = %e, "cannot adopt the cluster's alerts; retrying before evaluating");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
            consumer(&bus)
        }
    };
    let handler = move |batch: Vec<Delivery>| {
        let (engine, roles) = (Arc::clone(&engine), Arc::clone(&roles));
        async move {
            let now = SystemTime::now();
            let messages = batch.len();
            let mut taken = Vec::with_capacity(messages);
            let mut facts_n = 0;
            for d in &batch {
                let (family, facts) = facts_of(&d.event, now, &roles);
                if d.attempt == 1 {
                    metrics::counter!(m::FACTS_TOTAL, "family" => family).increment(facts.len() as u64);
                }
                facts_n += facts.len();
                taken.push((facts, crate::deps::Signal::of(&d.event, now)));
            }
            // The publisher's trace continues here (the first message's, for
            // a batch), and into the alert events these messages cause.
            let span = match batch.first() {
                Some(d) if messages == 1 => {
                    tracing::info_span!("alert_engine.ingest", subject = %d.subject, facts = facts_n)
                }
                _ => tracing::info_span!("alert_engine.ingest", messages, facts = facts_n),
            };
            engine
                .ingest_messages(taken, now)
                .instrument(span)
                .await
                .map(|_| ())
                .map_err(HandleError::transient)
        }
    };
    gate.start_batches(make, BATCH, handler, shutdown).await
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
                // An engine that does not evaluate (a dependent's) has
                // nothing to sweep: the primary's engine does.
                if !engine.evaluates() {
                    progress.record();
                    continue;
                }
                // Progress is a sweep that evaluated and stored: one that
                // cannot store its transitions pages no one.
                match engine.sweep(SystemTime::now()).await {
                    Ok(_) => progress.record(),
                    Err(e) => tracing::warn!(error = %e, "alert sweep failed"),
                }
            }
            _ = batch.tick() => {
                if engine.evaluates() && let Err(e) = engine.evaluate_batched(SystemTime::now()).await {
                    tracing::warn!(error = %e, "batched alert evaluation failed");
                }
            }
        }
    }
}
