//! What a service's `run` receives from its caller (the binary or a test).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bus::Bus;
use crate::health::Health;
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
    /// Cancelled when the process should stop.
    pub shutdown: CancellationToken,
    /// Tracks spawned work so shutdown can drain it.
    pub tasks: TaskTracker,
}

impl Context {
    pub fn new(config: Arc<Config>, bus: Arc<dyn Bus>) -> Self {
        Self {
            config,
            bus,
            health: Health::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }
}
