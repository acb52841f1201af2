//! The alert engine in a multi-location cluster.
//!
//! Only the instance that evaluates ([`pantau_core::cluster::Role::evaluates`]:
//! the primary, or a standalone instance) takes the cluster-wide durable
//! consumers ([`crate::consume::SUBSCRIPTIONS`]), sweeps and publishes
//! transitions: every location's results, metrics, events and the
//! consensus reach that one engine, so each fault is one alert and one
//! notification per route across the cluster. Every other engine keeps a
//! copy of the primary's alerts from its alert events (durable
//! `alert-engine-mirror-<instance>`) and of its incidents from its incident
//! events (`alert-engine-incident-mirror-<instance>`,
//! [`crate::incident::mirror`]), so its API lists the cluster's alerts and
//! incidents, and refuses changes (they are made on the primary). When an
//! instance becomes primary its engine first [`Engine::adopt`]s those
//! copies: a DOWN that is still DOWN stays one open alert (no second
//! page), nothing resolves before its data has been seen again, and an
//! open alert that is in no incident joins one by the grouping rules.

use std::sync::Arc;
use std::time::SystemTime;

use pantau_core::bus::{Bus, BusEvent, Consumer, Delivery, HandleError, RetryPolicy, Subscription};
use pantau_core::cluster::{Cluster, Role};
use pantau_proto::v1::AlertEvent;

use crate::engine::{Engine, EngineError};
use crate::incident::mirror::CopyError;
use crate::lifecycle::{Lifecycle, later};

/// The mirror consumer's name (dead letters on `pantau.deadletter.alert-engine-mirror`).
pub const MIRROR: &str = "alert-engine-mirror";

impl Engine {
    /// Evaluates only while `cluster` says so; stamps `instance` on the
    /// events it publishes.
    #[must_use]
    pub fn with_cluster(mut self, instance: &str, cluster: Cluster) -> Self {
        instance.clone_into(&mut self.instance);
        self.cluster = Some(cluster);
        self
    }

    /// Whether this engine evaluates (always without a cluster).
    pub fn evaluates(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.role().evaluates())
    }

    /// Refuses a person's change on an engine that does not evaluate.
    pub(crate) fn must_evaluate(&self) -> Result<(), EngineError> {
        match self.cluster.as_ref().map(Cluster::role) {
            Some(Role::Dependent { primary }) if primary.is_empty() => {
                Err(EngineError::NotEvaluating("(none elected yet)".to_owned()))
            }
            Some(Role::Dependent { primary }) => Err(EngineError::NotEvaluating(primary)),
            _ => Ok(()),
        }
    }

    /// Takes over from the previous evaluator: the lifecycle is rebuilt
    /// from the store (the copies of the primary's alerts), and restored
    /// alerts resolve only on data about them until `staleness` has passed.
    pub async fn adopt(&self, now: SystemTime) -> Result<usize, EngineError> {
        let since = now
            .checked_sub(self.cfg.default_cooldown.max(std::time::Duration::from_secs(3600)))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let alerts = self.store().load_for_restore(since).await?;
        let mut inner = self.inner.lock().await;
        let mut life = Lifecycle::default();
        life.restore(alerts);
        life.set_trust_absence_from(later(now, self.cfg.staleness));
        inner.life = life;
        let inner = &mut *inner;
        inner.deps.rebuild(inner.life.open());
        self.restore_incidents(inner).await?;
        self.group_open_alerts(inner, now).await?;
        let open = inner.life.open_count();
        metrics::gauge!(crate::metrics::OPEN_ALERTS).set(open as f64);
        tracing::info!(open, "this engine evaluates now: adopted the cluster's open alerts");
        Ok(open)
    }

    /// Keeps a copy of another instance's alert transition; `false` when it
    /// is this engine's own, or this engine evaluates (its state wins).
    pub async fn mirror(&self, ev: &AlertEvent, now: SystemTime) -> Result<bool, MirrorError> {
        if ev.instance == self.instance || self.evaluates() {
            return Ok(false);
        }
        let change = crate::event::from_event(ev, now)?;
        self.store().record(&change).await.map_err(EngineError::from)?;
        Ok(true)
    }
}

/// Why an alert event was not copied.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(transparent)]
    Bad(#[from] crate::event::BadEvent),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The consumer of every alert event and every incident event, durable
/// per instance (`alert-engine-mirror-<instance>`,
/// `alert-engine-incident-mirror-<instance>`).
pub fn mirror_consumer(bus: &Arc<dyn Bus>, instance: &str) -> Consumer {
    use pantau_core::bus::subject::{ALL_ALERTS, ALL_INCIDENTS};
    Consumer::new(
        Arc::clone(bus),
        MIRROR,
        // A new instance copies the events the stream still keeps, so it
        // knows the alerts and incidents opened before it started.
        [
            Subscription::durable(ALL_ALERTS, format!("{MIRROR}-{instance}")).replaying(),
            Subscription::durable(ALL_INCIDENTS, format!("alert-engine-incident-mirror-{instance}")).replaying(),
        ],
    )
    .with_retry(RetryPolicy::patient())
}

/// Copies alert and incident events into `engine`'s store until
/// `shutdown`; a bad event is dead-lettered, a store failure retried.
pub async fn mirror_loop(engine: Arc<Engine>, consumer: Consumer, shutdown: tokio_util::sync::CancellationToken) {
    consumer
        .run(shutdown, move |d: Delivery| {
            let engine = Arc::clone(&engine);
            async move {
                match &d.event {
                    BusEvent::Alert { alert, .. } => match engine.mirror(alert, SystemTime::now()).await {
                        Ok(_) => Ok(()),
                        Err(MirrorError::Bad(e)) => Err(HandleError::permanent(e)),
                        Err(MirrorError::Engine(e)) => Err(HandleError::transient(e)),
                    },
                    BusEvent::Incident { incident, .. } => {
                        match engine.mirror_incident(incident, SystemTime::now()).await {
                            Ok(_) => Ok(()),
                            Err(CopyError::Bad(e)) => Err(HandleError::permanent(e)),
                            Err(CopyError::Engine(e)) => Err(HandleError::transient(e)),
                        }
                    }
                    _ => Err(HandleError::permanent(format!(
                        "`{}` is not an alert or incident event",
                        d.subject
                    ))),
                }
            }
        })
        .await;
}
