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
}

impl Context {
    pub fn new(config: Arc<Config>, bus: Arc<dyn Bus>) -> Self {
        Self {
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
        }
    }

    /// Spawns a background loop made by `make`, on this context's tracker.
    /// If it panics, fails or ends before shutdown it is logged, counted and
    /// made again after a bounded backoff (see [`lifecycle`]).
    pub fn spawn_supervised<F, Fut>(&self, task: &'static str, make: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutcome,
    {
        let span = tracing::info_span!("task", service = %self.lifecycle.service(), task);
        self.tasks.spawn(tracing::Instrument::instrument(
            lifecycle::supervise(self.lifecycle.clone(), task, self.shutdown.clone(), make),
            span,
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
        self.tasks.spawn(tracing::Instrument::instrument(
            lifecycle::critical(self.lifecycle.clone(), task, self.shutdown.clone(), fut),
            span,
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
