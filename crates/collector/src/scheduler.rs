//! The schedule: one loop per target. First runs are spread over up to two
//! seconds by a hash of the target id (so a thousand targets do not start in
//! the same instant, and a newcomer still sees results at once); concurrent
//! checks are bounded by `collector.workers.concurrency`.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pantau_core::bus::{self, Bus, subject};
use pantau_core::service::Context;
use pantau_core::store::Store;
use pantau_core::time::{to_duration, to_timestamp};
use pantau_proto::v1::{CheckResult, CheckStatus};
use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::CollectorError;
use crate::checks::Checker;
use crate::metrics as m;
use crate::results::Results;
use crate::state::States;
use crate::target::Target;

/// Longest delay before a target's first check.
const MAX_FIRST_DELAY: Duration = Duration::from_secs(2);

/// Everything the collector's loops and its gRPC service share.
pub struct Collector {
    targets: Vec<Arc<Target>>,
    checker: Checker,
    results: Results,
    states: States,
    bus: Arc<dyn Bus>,
    location: String,
    instance: String,
    limiter: Semaphore,
}

impl Collector {
    /// Builds the collector from the configuration in `ctx`.
    pub async fn new(ctx: &Context, store: Store) -> Result<Self, CollectorError> {
        let cfg = &ctx.config;
        let targets = Target::from_config(&cfg.collector)?;
        m::describe();
        Ok(Self {
            targets: targets.into_iter().map(Arc::new).collect(),
            checker: Checker::new()?,
            results: Results::default(),
            states: States::load(store).await?,
            bus: ctx.bus.clone(),
            location: cfg.instance.location.clone(),
            instance: cfg.instance.name.clone(),
            limiter: Semaphore::new(cfg.collector.workers.concurrency),
        })
    }

    pub fn targets(&self) -> &[Arc<Target>] {
        &self.targets
    }

    pub fn target(&self, id: &str) -> Option<&Arc<Target>> {
        self.targets.iter().find(|t| t.id == id)
    }

    pub fn results(&self) -> &Results {
        &self.results
    }

    /// Spawns one loop per target on `ctx.tasks`; they stop on `ctx.shutdown`
    /// after finishing the check in hand.
    pub fn start(self: &Arc<Self>, ctx: &Context) {
        metrics::gauge!(m::TARGETS).set(self.targets.len() as f64);
        for t in &self.targets {
            let me = Arc::clone(self);
            let t = Arc::clone(t);
            let stop = ctx.shutdown.clone();
            ctx.tasks.spawn(async move { me.target_loop(&t, stop).await });
        }
    }

    async fn target_loop(&self, t: &Target, stop: CancellationToken) {
        let first = tokio::time::Instant::now() + first_delay(&t.id, t.interval);
        let mut ticker = tokio::time::interval_at(first, t.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let permit = tokio::select! {
                () = stop.cancelled() => return,
                p = self.limiter.acquire() => p,
            };
            let Ok(_permit) = permit else { return };
            self.run_once(t).await;
        }
    }

    /// Checks `t` now, records and publishes the result, and returns it.
    #[tracing::instrument(name = "collector.check", skip_all, fields(target_id = %t.id, kind = t.kind_label()))]
    pub async fn run_once(&self, t: &Target) -> CheckResult {
        let in_flight = metrics::gauge!(m::CHECKS_IN_FLIGHT);
        in_flight.increment(1.0);
        let checked_at = SystemTime::now();
        let outcome = self.checker.check(t).await;
        in_flight.decrement(1.0);
        let status = if outcome.up { CheckStatus::Up } else { CheckStatus::Down };
        let result = CheckResult {
            target_id: t.id.clone(),
            target_name: t.name.clone(),
            kind: t.kind().into(),
            location: self.location.clone(),
            instance: self.instance.clone(),
            status: status.into(),
            checked_at: Some(to_timestamp(checked_at)),
            latency: Some(to_duration(outcome.latency)),
            reason: outcome.reason.into(),
            message: outcome.message,
            labels: t.labels.clone().into_iter().collect(),
            detail: outcome.detail,
        };
        let kind = t.kind_label();
        let label = if outcome.up { m::RESULT_UP } else { m::RESULT_DOWN };
        metrics::counter!(m::CHECKS_TOTAL, "kind" => kind, "result" => label).increment(1);
        metrics::histogram!(m::CHECK_DURATION, "kind" => kind).record(outcome.latency.as_secs_f64());
        metrics::gauge!(m::CHECK_UP, "target" => t.id.clone(), "kind" => kind).set(if outcome.up { 1.0 } else { 0.0 });
        self.results.record(&result);
        let subject = subject::check_result(&self.location, &t.id);
        if let Err(e) = bus::publish_proto(self.bus.as_ref(), &subject, &result).await {
            tracing::warn!(target_id = %t.id, error = %e, "cannot publish check result; the next check will publish again");
        }
        match self.states.observe(&result, checked_at).await {
            Ok(Some(tr)) => log_transition(t, &result, tr),
            Ok(None) => {}
            Err(e) => tracing::warn!(target_id = %t.id, error = %e, "cannot persist target state"),
        }
        result
    }
}

fn log_transition(t: &Target, r: &CheckResult, tr: crate::state::Transition) {
    // How long the previous state lasted, to the second.
    let lasted = tr.previous.map_or_else(String::new, |p| {
        let d = tr.current.since.duration_since(p.since).unwrap_or_default();
        pantau_core::config::duration::format(Duration::from_secs(d.as_secs()))
    });
    let first = tr.previous.is_none();
    if tr.current.up {
        tracing::info!(target_id = %t.id, address = %t.address(), first, after_down_for = %lasted, "target is up");
    } else {
        tracing::warn!(target_id = %t.id, address = %t.address(), first, after_up_for = %lasted, reason = r.reason().as_str_name(), message = %r.message, "target is down");
    }
}

/// Where in `[0, min(interval, 2s))` a target's first check falls, stable per id.
pub fn first_delay(id: &str, interval: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    let span = interval.min(MAX_FIRST_DELAY);
    let frac = (h.finish() % 10_000) as f64 / 10_000.0;
    span.mul_f64(frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_delays_are_spread_and_bounded() {
        let delays: Vec<Duration> = (0..200)
            .map(|i| first_delay(&format!("t{i}"), Duration::from_secs(30)))
            .collect();
        assert!(delays.iter().all(|d| *d < MAX_FIRST_DELAY));
        let distinct: std::collections::HashSet<_> = delays.iter().map(Duration::as_millis).collect();
        assert!(distinct.len() > 150, "only {} distinct delays", distinct.len());
        assert!(first_delay("x", Duration::from_secs(1)) < Duration::from_secs(1));
        assert_eq!(
            first_delay("x", Duration::from_secs(30)),
            first_delay("x", Duration::from_secs(30))
        );
    }
}
