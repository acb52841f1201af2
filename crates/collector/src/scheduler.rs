//! The schedule and the collector's shared state.
//!
//! One scheduling task keeps every target in a timer queue (no task per
//! target, so a hundred thousand idle targets cost little). A due target is
//! handed to the worker [`Pool`]; its next run is queued at once, one
//! interval later, or sooner while its breaker backs off to confirm a
//! failure. First runs are spread over up to two seconds by a hash of the
//! target id, so targets do not start in the same instant and a newcomer
//! still sees results at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use pantau_config::{CircuitBreakerConfig, Config, maintenance};
use pantau_core::bus::{self, Bus, subject};
use pantau_core::service::Context;
use pantau_core::store::Store;
use pantau_core::telemetry::scraped::{GaugeSource, Samples};
use pantau_core::time::{to_duration, to_timestamp};
use pantau_proto::v1::{self, BreakerState, CheckResult, CheckStatus, FailureReason, TargetSource};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::time::DelayQueue;

use crate::CollectorError;
use crate::breaker::{self, Admit};
use crate::checks::{Checker, Outcome};
use crate::health::{ErrorRate, Progress};
use crate::last_cert;
use crate::metrics as m;
use crate::pause::{Pause, Pauses};
use crate::pool::{Pool, Run};
use crate::results::Results;
use crate::state::{States, Transition};
use crate::target::{Spec, Target};
use crate::{history::History, targets};

/// Longest message a result carries, in characters; longer ones are cut
/// with an ellipsis.
pub const MAX_MESSAGE: usize = 1024;

#[path = "scheduler_changes.rs"]
mod changes;
#[path = "scheduler_circuit.rs"]
mod circuit;
#[path = "scheduler_entry.rs"]
mod entry;
use circuit::{bounded, circuit_open};
pub use entry::Entry;
use entry::{DOWN, Queued, UP};

/// Longest delay the timer queue is given. Validation bounds intervals far
/// below it (`MAX_INTERVAL`, 30 d); this keeps the queue, which panics past
/// about 795 days, safe whatever reaches it.
const MAX_DELAY: Duration = Duration::from_secs(365 * 86_400);

enum Command {
    /// Run `id` after the delay (replacing its queued run).
    Schedule(String, Duration),
    Unschedule(String),
}

pub use crate::change::ChangeError;
use crate::spread::{added_delay, start_delay};
pub use crate::spread::{first_delay, spread_window};

/// Everything the schedule, the workers and the gRPC service share.
pub struct Collector {
    /// By id; the key is the one copy of the id the schedule's queue shares.
    entries: RwLock<BTreeMap<Arc<str>, Arc<Entry>>>,
    config: Arc<Config>,
    checker: Checker,
    results: Results,
    states: States,
    history: Arc<History>,
    traffic: Arc<crate::traffic::TrafficHistory>,
    error_rate: Arc<ErrorRate>,
    /// Checks counted by type (`pantau_collector_checks_total`, `…_check_duration_seconds`).
    by_kind: m::ByKind,
    progress: Progress,
    store: Store,
    bus: Arc<dyn Bus>,
    commands: mpsc::UnboundedSender<Command>,
    command_rx: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    pool: OnceLock<Pool<(Queued, Instant)>>,
    pauses: Pauses,
    /// `maintenance[]` and the API's windows (`crate::maintenance`).
    maintenance: Arc<crate::maintenance::Windows>,
    /// `collector.circuit_breaker`, shared by every target's breaker.
    breaker_cfg: Arc<CircuitBreakerConfig>,
}

/// `pantau_collector_check_up{target, kind}`: what each target's last check
/// said, written at scrape time.
impl GaugeSource for Collector {
    fn samples(&self, out: &mut Samples<'_>) {
        let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        for e in entries.values() {
            let value = match e.up.load(Relaxed) {
                UP => 1.0,
                DOWN => 0.0,
                _ => continue,
            };
            out.sample(&[("target", e.target.id()), ("kind", e.target.kind_label())], value);
        }
    }
}

impl Collector {
    /// Builds the collector: the configuration's targets plus those stored.
    pub async fn new(ctx: &Context, store: Store) -> Result<Self, CollectorError> {
        let cfg = Arc::clone(&ctx.config);
        m::describe();
        let mut entries: BTreeMap<Arc<str>, Arc<Entry>> = BTreeMap::new();
        let breaker_cfg = Arc::new(cfg.collector.circuit_breaker.clone());
        let shard = &cfg.collector.shard;
        for t in Target::from_config(&cfg.collector).map_err(CollectorError::Targets)? {
            if shard.owns(t.id()) {
                entries.insert(Arc::from(t.id()), Entry::new(t, &breaker_cfg));
            }
        }
        if shard.count > 1 {
            tracing::info!(
                shard = shard.index,
                of = shard.count,
                targets = entries.len(),
                "checking this shard's targets"
            );
        }
        let (stored, unreadable) = targets::load(&store).await?;
        for u in unreadable {
            tracing::error!(target_id = %u.id, error = %u.error, "a stored target cannot be read; it is not checked");
        }
        for t in stored.into_iter().filter(|t| shard.owns(&t.id)) {
            if entries.contains_key(t.id.as_str()) {
                tracing::warn!(target_id = %t.id, "a stored target has the id of a configured one; the configuration wins");
                continue;
            }
            let t = Arc::new(t);
            match Target::compile(
                &t,
                &format!("stored target {}", t.id),
                &cfg.collector,
                TargetSource::Api,
            ) {
                Ok(target) => {
                    entries.insert(Arc::from(target.id()), Entry::new(target, &breaker_cfg));
                }
                Err(problems) => {
                    for p in problems {
                        tracing::error!(problem = %p, "a stored target is no longer valid; it is not checked");
                    }
                }
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        Ok(Self {
            entries: RwLock::new(entries),
            checker: Checker::new()?.with_location(&cfg.instance.location),
            results: Results::default(),
            states: States::load(store.clone()).await?,
            pauses: Pauses::load(store.clone()).await?,
            history: Arc::new(History::new(store.clone(), &cfg.collector.history)),
            traffic: Arc::new(crate::traffic::TrafficHistory::new(
                store.clone(),
                &cfg.collector.history,
            )),
            error_rate: Arc::new(ErrorRate::new(cfg.collector.health.clone())),
            by_kind: m::ByKind::default(),
            progress: Progress::default(),
            store,
            bus: Arc::clone(&ctx.bus),
            config: cfg,
            commands: tx,
            command_rx: Mutex::new(Some(rx)),
            pool: OnceLock::new(),
            maintenance: crate::maintenance::Windows::new(ctx.config.maintenance.clone()),
            breaker_cfg,
        })
    }

    /// Every target, by id.
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// The entries map's own copy of `id`, if it is a target.
    fn shared_id(&self, id: &str) -> Option<Arc<str>> {
        self.shared_entry(id).map(|(id, _)| id)
    }

    /// The entries map's own copy of `id` and its entry, if it is a target.
    fn shared_entry(&self, id: &str) -> Option<(Arc<str>, Arc<Entry>)> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_key_value(id)
            .map(|(k, e)| (Arc::clone(k), Arc::clone(e)))
    }

    pub fn entry(&self, id: &str) -> Option<Arc<Entry>> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    pub fn results(&self) -> &Results {
        &self.results
    }

    /// The latest results of `ids` (every target when empty), by target id.
    pub fn latest_results(&self, ids: &[String]) -> Vec<CheckResult> {
        use pantau_proto::prost::Message;
        let latest = |e: &Entry| {
            let encoded = e
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .result
                .clone();
            // What was encoded here decodes; a failure would only leave that target out.
            encoded.and_then(|b| CheckResult::decode(b).ok())
        };
        let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if ids.is_empty() {
            entries.values().filter_map(|e| latest(e)).collect()
        } else {
            let mut out: Vec<CheckResult> = ids
                .iter()
                .filter_map(|id| entries.get(id.as_str()).and_then(|e| latest(e)))
                .collect();
            out.sort_by(|a, b| a.target_id.cmp(&b.target_id));
            out
        }
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Whether `id` is a router in `collector.routers`.
    pub fn has_router(&self, id: &str) -> bool {
        self.config.collector.routers.iter().any(|r| r.id == id)
    }

    /// The routers' interface traffic history (written by the pollers).
    pub fn traffic(&self) -> &Arc<crate::traffic::TrafficHistory> {
        &self.traffic
    }

    /// The shortest interval of any target not paused; `None` without one.
    pub fn shortest_interval(&self) -> Option<Duration> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|e| self.pauses.is_empty() || !self.pauses.is_paused(e.target.id()))
            .map(|e| e.target.interval)
            .min()
    }

    /// How long no check has completed, when that is a stall.
    pub fn stalled(&self) -> Option<Duration> {
        self.progress.stalled(Instant::now(), self.shortest_interval())
    }

    /// The check error rate, as a readiness component with detail.
    pub fn error_rate(&self) -> Arc<ErrorRate> {
        Arc::clone(&self.error_rate)
    }

    /// Starts the worker pool, and the schedule, the state writer and the
    /// history flusher as supervised tasks (started again if they fail);
    /// they stop on `ctx.shutdown` after the checks in hand.
    pub fn start(self: &Arc<Self>, ctx: &Context) {
        let source: Weak<dyn GaugeSource> = Arc::downgrade(self) as Weak<dyn GaugeSource>;
        pantau_core::telemetry::scraped::add_gauge_source(m::CHECK_UP, m::CHECK_UP_HELP, source);
        let workers = &self.config.collector.workers;
        let me: Weak<Self> = Arc::downgrade(self);
        let lag = metrics::histogram!(m::SCHEDULE_LAG);
        let run: Run<(Queued, Instant)> = Arc::new(move |(queued, due): (Queued, Instant)| {
            let me = me.clone();
            lag.record(Instant::now().saturating_duration_since(due).as_secs_f64());
            Box::pin(async move {
                // `queued` drops when the check is done: its target may be
                // queued again.
                match me.upgrade() {
                    Some(c) => c.execute(queued.entry(), false).await.1,
                    None => Duration::ZERO,
                }
            })
        });
        let pool = Pool::start(
            workers.strategy,
            workers.count,
            workers.concurrency,
            run,
            &ctx.tasks,
            &ctx.shutdown,
        );
        let _ = self.pool.set(pool);
        let rx = self
            .command_rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(rx) = rx {
            // The receiver outlives a failed run of the schedule, which
            // rebuilds its queue from the targets when started again.
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            let me = Arc::clone(self);
            let stop = ctx.shutdown.clone();
            ctx.spawn_supervised("scheduler", move || {
                let (me, rx, stop) = (Arc::clone(&me), Arc::clone(&rx), stop.clone());
                async move { me.schedule(&mut *rx.lock().await, stop).await }
            });
        }
        self.history.start(ctx);
        self.traffic.start(ctx);
        let me = Arc::clone(self);
        let stop = ctx.shutdown.clone();
        ctx.spawn_supervised("state-writer", move || {
            let (me, stop) = (Arc::clone(&me), stop.clone());
            async move { me.write_states(stop).await }
        });
        if self.config.collector.shard.count > 1 {
            let me = Arc::clone(self);
            let stop = ctx.shutdown.clone();
            ctx.spawn_supervised("reload", move || {
                let (me, stop) = (Arc::clone(&me), stop.clone());
                async move { me.reload_loop(stop).await }
            });
        }
    }

    /// A sharded replica picks up its targets that other replicas added or
    /// removed through the API (they share the store).
    async fn reload_loop(&self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.collector.shard.reload_interval);
        tick.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %e, "cannot reload stored targets");
            }
        }
    }

    /// Adds this shard's stored targets it lacks and drops API targets no
    /// longer stored; returns (added, removed).
    pub async fn reload(&self) -> Result<(usize, usize), pantau_core::store::StoreError> {
        let shard = &self.config.collector.shard;
        let (stored, _) = targets::load(&self.store).await?;
        let stored: Vec<_> = stored.into_iter().filter(|t| shard.owns(&t.id)).collect();
        let ids: std::collections::HashSet<&str> = stored.iter().map(|t| t.id.as_str()).collect();
        let mut added = 0;
        for t in &stored {
            let known = self.entry(&t.id).is_some_and(|e| *e.target.config == *t);
            if known
                || self
                    .entry(&t.id)
                    .is_some_and(|e| e.target.source == TargetSource::Config)
            {
                continue;
            }
            let t = Arc::new(t.clone());
            match Target::compile(
                &t,
                &format!("stored target {}", t.id),
                &self.config.collector,
                TargetSource::Api,
            ) {
                Ok(target) => {
                    let entry = Entry::new(target, &self.breaker_cfg);
                    let delay = added_delay(&entry.target);
                    let replaced = self
                        .entries
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(Arc::from(t.id.as_str()), entry);
                    if let Some(old) = replaced {
                        old.retire();
                    }
                    let _ = self.commands.send(Command::Schedule(t.id.clone(), delay));
                    added += 1;
                }
                Err(problems) => {
                    for p in problems {
                        tracing::error!(problem = %p, "a stored target is no longer valid; it is not checked");
                    }
                }
            }
        }
        let gone: Vec<String> = self
            .entries()
            .into_iter()
            .filter(|e| e.target.source == TargetSource::Api && !ids.contains(e.target.id()))
            .map(|e| e.target.id().to_owned())
            .collect();
        for id in &gone {
            let removed = self
                .entries
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(id.as_str());
            if let Some(e) = removed {
                e.retire();
                self.states.park(id, &e.state);
            }
            let _ = self.commands.send(Command::Unschedule(id.clone()));
            self.checker.push.forget(id);
        }
        if added + gone.len() > 0 {
            self.set_target_gauge();
            tracing::info!(added, removed = gone.len(), "reloaded this shard's targets");
        }
        Ok((added, gone.len()))
    }

    /// Writes state changes every 250 ms, and once more at shutdown.
    async fn write_states(&self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            let stopping = tokio::select! {
                () = stop.cancelled() => true,
                _ = tick.tick() => false,
            };
            if let Err(e) = self.states.write_pending().await {
                tracing::warn!(error = %e, "cannot persist target states; they stay queued");
            }
            if stopping {
                return;
            }
        }
    }

    async fn schedule(&self, rx: &mut mpsc::UnboundedReceiver<Command>, stop: CancellationToken) {
        // The queue holds the entries themselves, so a due check needs no
        // lookup; its index, by the entries map's copy of each id, serves
        // the commands.
        let mut queue: DelayQueue<Arc<Entry>> = DelayQueue::new();
        let mut keys: HashMap<Arc<str>, _> = HashMap::new();
        let entries: Vec<(Arc<str>, Arc<Entry>)> = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(id, e)| (Arc::clone(id), Arc::clone(e)))
            .collect();
        let window = spread_window(entries.len());
        for (id, e) in entries {
            let delay = start_delay(&e.target, window).min(MAX_DELAY);
            keys.insert(id, queue.insert(e, delay));
        }
        self.set_target_gauge();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                Some(cmd) = rx.recv() => match cmd {
                    Command::Schedule(id, after) => {
                        if let Some(k) = keys.get(id.as_str()) {
                            // A replaced entry still queued is retired: its
                            // successor is found when it comes due.
                            queue.reset(k, after.min(MAX_DELAY));
                        } else if let Some((id, e)) = self.shared_entry(&id) {
                            keys.insert(id, queue.insert(e, after.min(MAX_DELAY)));
                        }
                    }
                    Command::Unschedule(id) => {
                        if let Some(k) = keys.remove(id.as_str()) {
                            queue.remove(&k);
                        }
                    }
                },
                Some(due) = queue.next() => {
                    let deadline = due.deadline();
                    let mut entry = due.into_inner();
                    if entry.retired.load(Relaxed) {
                        let Some(successor) = self.entry(entry.target.id()) else {
                            keys.remove(entry.target.id());
                            continue;
                        };
                        entry = successor;
                    }
                    let key = queue.insert(Arc::clone(&entry), entry.target.interval.min(MAX_DELAY));
                    if let Some(k) = keys.get_mut(entry.target.id()) {
                        *k = key;
                    } else if let Some(id) = self.shared_id(entry.target.id()) {
                        keys.insert(id, key);
                    }
                    if self.pauses.is_paused(entry.target.id()) || self.maintained(&entry.target, pantau_config::MaintenanceChecks::Pause) {
                        continue;
                    }
                    let Some(pool) = self.pool.get() else { continue };
                    // One check of a target waits or runs at a time: when the
                    // workers are behind, a target due again is skipped rather
                    // than queued twice, so the backlog stays under one check
                    // per target.
                    let Some(queued) = entry.queue_one() else {
                        metrics::counter!(m::CHECKS_SKIPPED).increment(1);
                        tracing::debug!(target_id = %entry.target.id(), "its previous check still waits or runs; skipping this one");
                        continue;
                    };
                    if let Err((queued, _)) = pool.dispatch((queued, deadline)) {
                        metrics::counter!(m::CHECKS_SKIPPED).increment(1);
                        tracing::warn!(target_id = %queued.entry().target.id(), "every worker queue is full; skipping this check");
                    }
                }
            }
        }
    }

    fn set_target_gauge(&self) {
        metrics::gauge!(m::TARGETS).set(
            self.entries
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len() as f64,
        );
        metrics::gauge!(m::TARGETS_PAUSED).set(self.pauses.len() as f64);
    }

    /// Whether a maintenance window holds `t` now (see `maintenance::holds`).
    fn maintained(&self, t: &Target, mode: pantau_config::MaintenanceChecks) -> bool {
        let (windows, at) = (self.maintenance.current(), &self.config.instance.location);
        !windows.is_empty() && maintenance::holds(&windows, (t.id(), t.labels(), at), mode, SystemTime::now())
    }

    /// The maintenance windows the schedule and the router pollers apply.
    pub fn maintenance(&self) -> Arc<crate::maintenance::Windows> {
        Arc::clone(&self.maintenance)
    }

    /// Why `id` is paused, if it is.
    pub fn paused(&self, id: &str) -> Option<Pause> {
        self.pauses.get(id)
    }

    /// Runs `entry`'s check (through its breaker unless `force`), records and
    /// publishes the result; returns it and how long the check took.
    #[tracing::instrument(name = "collector.check", skip_all, fields(target_id = %entry.target.id(), kind = entry.target.kind_label()))]
    pub async fn execute(&self, entry: &Entry, force: bool) -> (CheckResult, Duration) {
        let t = &entry.target;
        let is_push = matches!(t.spec, Spec::Push { .. });
        let admit = if force || is_push {
            Admit::Probe
        } else {
            entry
                .breaker
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .admit(Instant::now())
        };
        let checked_at = SystemTime::now();
        let outcome = match admit {
            Admit::Probe => self.checked(t).await,
            Admit::Reject { retry_at } => circuit_open(entry, retry_at),
        };
        if admit == Admit::Probe {
            let cert = outcome.detail.as_ref().and_then(last_cert::certificate_detail);
            if cert.is_some() || !outcome.up {
                let mut last = entry.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let rare = last.rare.get_or_insert_with(Box::default);
                if let Some(cert) = cert {
                    rare.certificate = Some(cert);
                }
                if !outcome.up {
                    rare.failure = Some((outcome.reason, bounded(&outcome.message)));
                }
            }
        }
        if admit == Admit::Probe && !is_push {
            let sooner = entry
                .breaker
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .record(outcome.up, Instant::now());
            if let Some(after) = sooner.filter(|d| *d < t.interval) {
                let _ = self.commands.send(Command::Schedule(t.id().to_owned(), after));
            }
        }
        let breaker_state = if is_push {
            BreakerState::Closed
        } else {
            entry.breaker_state()
        };
        if entry.exported.swap(breaker_state as i32, Relaxed) != breaker_state as i32 {
            metrics::gauge!(m::BREAKER_STATE, "target" => t.id().to_owned()).set(breaker::gauge(breaker_state));
        }
        let result = CheckResult {
            target_id: t.id().to_owned(),
            target_name: t.name().to_owned(),
            kind: t.kind().into(),
            location: self.config.instance.location.clone(),
            instance: self.config.instance.name.clone(),
            status: if outcome.up { CheckStatus::Up } else { CheckStatus::Down }.into(),
            checked_at: Some(to_timestamp(checked_at)),
            latency: Some(to_duration(outcome.latency)),
            reason: outcome.reason.into(),
            message: bounded(&outcome.message),
            labels: t.labels().clone().into_iter().collect(),
            breaker: breaker_state.into(),
            // The trace travels in the bus headers; the sync outbox sets this.
            trace_parent: String::new(),
            depends_on: t.depends_on(),
            detail: outcome.detail.clone(),
        };
        entry.up.store(if outcome.up { UP } else { DOWN }, Relaxed);
        self.observe(entry, &outcome, &result, checked_at).await;
        (result, outcome.latency)
    }

    /// Runs `t`'s check; a check that panics is a failed result of its
    /// target ("check panicked: …"), counted and logged, never a lost worker.
    async fn checked(&self, t: &Target) -> Outcome {
        use futures::FutureExt;
        let started = Instant::now();
        match std::panic::AssertUnwindSafe(self.checker.check(t)).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(payload) => {
                let cause = pantau_core::lifecycle::panic_message(payload.as_ref());
                metrics::counter!(m::CHECK_PANICS, "kind" => t.kind_label()).increment(1);
                tracing::error!(target_id = %t.id(), kind = t.kind_label(), cause = %cause, "check panicked");
                Outcome::down(
                    started.elapsed(),
                    FailureReason::Internal,
                    format!("check panicked: {cause}"),
                )
            }
        }
    }

    async fn observe(&self, entry: &Entry, outcome: &Outcome, result: &CheckResult, at: SystemTime) {
        let t = &entry.target;
        self.by_kind.record(t.config.check(), outcome.up, outcome.latency);
        if let Some(days) = last_cert::cert_days(result) {
            metrics::gauge!(m::CERT_EXPIRY, "target" => t.id().to_owned()).set(days as f64 * 86_400.0);
        }
        // A maintenance window's time counts neither for nor against uptime.
        if !self.maintained(t, pantau_config::MaintenanceChecks::Continue) {
            self.history.record(t.id(), outcome.up, outcome.latency, at);
        }
        let now = Instant::now();
        self.error_rate.record(outcome.up, now);
        self.progress.record(now);
        // Encoded once: kept as the latest and published, one allocation
        // (which the in-process bus's subscribers share, the gateway's
        // latest results among them).
        let encoded = bytes::Bytes::from(pantau_proto::prost::Message::encode_to_vec(result));
        entry
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .result = Some(encoded.clone());
        self.results.record(result);
        let subject = subject::check_result(&self.config.instance.location, t.id());
        if let Err(e) = bus::publish_encoded(self.bus.as_ref(), &subject, encoded).await {
            tracing::warn!(target_id = %t.id(), error = %e, "cannot publish check result; the next check will publish again");
        }
        if let Some(tr) = self.states.observe(&entry.state, result, at) {
            self.transition(t, result, tr).await;
        }
    }

    /// Logs a change of state and publishes `target_up` / `target_down`.
    async fn transition(&self, t: &Target, r: &CheckResult, tr: Transition) {
        let lasted = tr.previous.map_or_else(String::new, |p| {
            let d = tr.current.since.duration_since(p.since).unwrap_or_default();
            pantau_config::duration::format(Duration::from_secs(d.as_secs()))
        });
        let first = tr.previous.is_none();
        let (kind, token) = if tr.current.up {
            tracing::info!(target_id = %t.id(), address = %t.address(), first, after_down_for = %lasted, "target is up");
            (v1::EventKind::TargetUp, "target_up")
        } else {
            tracing::warn!(target_id = %t.id(), address = %t.address(), first, after_up_for = %lasted,
                reason = r.reason().as_str_name(), message = %r.message, "target is down");
            (v1::EventKind::TargetDown, "target_down")
        };
        let event = v1::RouterEvent {
            id: format!(
                "{}-{}",
                t.id(),
                tr.current
                    .since
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis())
            ),
            kind: kind.into(),
            source: t.id().to_owned(),
            occurred_at: Some(to_timestamp(tr.current.since)),
            severity: if tr.current.up {
                v1::Severity::Info
            } else {
                v1::Severity::Critical
            }
            .into(),
            message: if tr.current.up {
                format!("{} is up", t.name())
            } else {
                format!("{} is down: {}", t.name(), r.message)
            },
            attributes: [
                ("location".to_owned(), r.location.clone()),
                ("kind".to_owned(), t.kind_label().to_owned()),
                (
                    "reason".to_owned(),
                    r.reason()
                        .as_str_name()
                        .trim_start_matches("FAILURE_REASON_")
                        .to_lowercase(),
                ),
            ]
            .into(),
        };
        if let Err(e) = bus::publish_proto(self.bus.as_ref(), &subject::event(token, t.id()), &event).await {
            tracing::warn!(target_id = %t.id(), error = %e, "cannot publish the state change");
        }
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
