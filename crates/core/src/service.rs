//! What a service's `run` receives from its caller (the binary or a test).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bus::Bus;
use crate::health::Health;
use crate::lifecycle::{self, Lifecycle, TaskOutcome};
use pantau_config::Config;

/// Cheap handles shared by every service of one process.
#[derive(Clone)]
pub struct Context {
    /// The whole configuration (each service reads its own section).
    pub config: Arc<Config>,
    /// The bus, NATS or in-process.
    pub bus: Arc<dyn Bus>,
    /// Where services register readiness checks.
    pub health: Health,
    /// Cancelled when the process (or, in a [`Context::service`], the
    /// service) should stop.
    pub shutdown: CancellationToken,
    /// Tracks spawned work so shutdown can drain it.
    pub tasks: TaskTracker,
    /// The background tasks of this service and their failures.
    pub lifecycle: Lifecycle,
    /// The keys that check gRPC callers and mint this process's service
    /// token; the TLS settings of its gRPC clients.
    pub security: Arc<crate::grpc::Security>,
    /// This instance's role in a multi-location cluster (shared by every
    /// service of the process; the sync-api's election sets it).
    pub cluster: crate::cluster::Cluster,
}

impl Context {
    pub fn new(config: Arc<Config>, bus: Arc<dyn Bus>) -> Self {
        Self {
            security: Arc::new(crate::grpc::Security::new(Arc::clone(&config))),
            cluster: crate::cluster::Cluster::new(crate::cluster::Role::configured(&config)),
            config,
            bus,
            health: Health::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            lifecycle: Lifecycle::new("pantau"),
        }
    }

    /// The context of service `name`: a child shutdown token (cancelling it
    /// stops this service only; cancelling the parent stops it too), a task
    /// tracker of its own, and a [`Lifecycle`] whose readiness is registered
    /// as `<name>.tasks`.
    #[must_use]
    pub fn service(&self, name: &str) -> Self {
        let lifecycle = Lifecycle::with_bus(name, Arc::clone(&self.bus));
        self.health.register(format!("{name}.tasks"), lifecycle.readiness());
        lifecycle::describe_metrics();
        Self {
            config: Arc::clone(&self.config),
            bus: Arc::clone(&self.bus),
            health: self.health.clone(),
            shutdown: self.shutdown.child_token(),
            tasks: TaskTracker::new(),
            lifecycle,
            security: Arc::clone(&self.security),
            cluster: self.cluster.clone(),
        }
    }

    /// Publishes this service's store health every [`STORE_HEALTH_EVERY`] as
    /// the fact `health{component="database", service}` = `healthy` or
    /// `unhealthy` (a `metrics_update` event on
    /// `pantau.event.metrics_update.<service>`), which the alert engine's
    /// default `database-unhealthy` rule reads. Supervised.
    pub fn watch_store(&self, store: &crate::store::Store) {
        let (bus, store, stop) = (Arc::clone(&self.bus), store.clone(), self.shutdown.clone());
        let service = self.lifecycle.service().to_owned();
        self.spawn_supervised("store-health", move || {
            watch_store(Arc::clone(&bus), store.clone(), service.clone(), stop.clone())
        });
    }

    /// A gRPC channel to `url` presenting this process's service token
    /// (TLS for `https://`).
    pub fn channel(&self, url: &str) -> crate::grpc::Channel {
        self.security.channel(url)
    }

    /// Spawns a background loop made by `make`, on this context's tracker
    /// (its spans are this service's, [`crate::telemetry::in_service`]).
    /// If it panics, fails or ends before shutdown it is logged, counted and
    /// made again after a bounded backoff (see [`lifecycle`]).
    pub fn spawn_supervised<F, Fut>(&self, task: &'static str, make: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutcome,
    {
        let span = tracing::info_span!("task", service = %self.lifecycle.service(), task);
        self.tasks.spawn(crate::telemetry::in_service(
            self.lifecycle.service(),
            tracing::Instrument::instrument(
                lifecycle::supervise(self.lifecycle.clone(), task, self.shutdown.clone(), make),
                span,
            ),
        ));
    }

    /// Spawns a background task that cannot be made again; if it panics,
    /// fails or ends before shutdown, this service is cancelled and its
    /// `run` returns the failure ([`Lifecycle::result`]).
    pub fn spawn_critical<Fut>(&self, task: &'static str, fut: Fut)
    where
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutcome,
    {
        let span = tracing::info_span!("task", service = %self.lifecycle.service(), task);
        self.tasks.spawn(crate::telemetry::in_service(
            self.lifecycle.service(),
            tracing::Instrument::instrument(
                lifecycle::critical(self.lifecycle.clone(), task, self.shutdown.clone(), fut),
                span,
            ),
        ));
    }

    /// Stops this context's tasks and waits for them: what a service does
    /// once its server returned, whether for shutdown or a failure.
    pub async fn stop_tasks(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// How often each service publishes its store's health.
pub const STORE_HEALTH_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

async fn watch_store(bus: Arc<dyn Bus>, store: crate::store::Store, service: String, stop: CancellationToken) {
    use pantau_proto::v1::{EventKind, RouterEvent, Severity};
    let mut tick = tokio::time::interval(STORE_HEALTH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ping = tokio::time::timeout(std::time::Duration::from_secs(5), store.ping()).await;
        let healthy = matches!(ping, Ok(Ok(())));
        let word = if healthy { "healthy" } else { "unhealthy" };
        let event = RouterEvent {
            kind: EventKind::MetricsUpdate.into(),
            source: service.clone(),
            occurred_at: Some(crate::time::to_timestamp(std::time::SystemTime::now())),
            severity: if healthy { Severity::Info } else { Severity::Critical }.into(),
            message: format!("the {service} store is {word}"),
            attributes: [
                ("fact".to_owned(), "health".to_owned()),
                ("component".to_owned(), "database".to_owned()),
                ("service".to_owned(), service.clone()),
                ("value".to_owned(), word.to_owned()),
            ]
            .into(),
            ..RouterEvent::default()
        };
        let subject = crate::bus::subject::event("metrics_update", &service);
        if let Err(e) = crate::bus::publish_proto(bus.as_ref(), &subject, &event).await {
            tracing::debug!(error = %e, "cannot publish the store's health");
        }
    }
}
