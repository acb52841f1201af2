//! The running engine: the rules, the window store and the lifecycle behind
//! one lock; facts in, transitions persisted, then published on
//! `pantau.alert.<state>.<alert_id>`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use pantau_core::bus::{Bus, publish_proto, subject};
use pantau_core::config::{AlertEngineConfig, AlertRuleConfig};
use pantau_core::store::StoreError;
use pantau_core::time::to_timestamp;
use pantau_proto::v1::{AlertEvent, AlertState, Severity};
use tokio::sync::{Mutex, broadcast};

use crate::eval::{At, evaluate};
use crate::facts::Fact;
use crate::lifecycle::{Alert, Change, Lifecycle, LifecycleError, State};
use crate::metrics as m;
use crate::rule::{Origin, Rule, RuleError};
use crate::series::{Inserted, Sample, SeriesStore};
use crate::store::AlertStore;

/// What callers of the engine handle.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("no alert with id `{0}`")]
    NotFound(String),
    #[error("alert `{0}` is already resolved")]
    AlreadyResolved(String),
    #[error("no rule with id `{0}`")]
    NoRule(String),
    #[error("rule `{0}` comes from the configuration ({1}); disable it there or override it with enabled: false")]
    ConfigRule(String, &'static str),
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
}

struct Inner {
    /// Defaults and configured rules.
    base: BTreeMap<String, Rule>,
    /// Rules from the API; they win over `base`.
    api: BTreeMap<String, Rule>,
    /// Metric name → ids of the rules reading it.
    readers: HashMap<String, Vec<String>>,
    series: SeriesStore,
    life: Lifecycle,
    /// Transitions not stored yet (the store failed); retried first.
    unsaved: Vec<Change>,
}

impl Inner {
    fn rule(&self, id: &str) -> Option<&Rule> {
        self.api.get(id).or_else(|| self.base.get(id))
    }

    fn effective(&self) -> impl Iterator<Item = &Rule> {
        self.base
            .values()
            .filter(|r| !self.api.contains_key(r.id()))
            .chain(self.api.values())
    }

    fn reindex(&mut self) {
        let mut readers: HashMap<String, Vec<String>> = HashMap::new();
        for r in self.effective().filter(|r| r.config.enabled) {
            for name in r.expr.metric_names() {
                readers.entry(name).or_default().push(r.id().to_owned());
            }
        }
        self.readers = readers;
        metrics::gauge!(m::RULES).set(self.effective().count() as f64);
    }

    fn evaluate(&mut self, ids: &[String], now: SystemTime, staleness: std::time::Duration) -> Vec<Change> {
        let mut changes = Vec::new();
        for id in ids {
            let Some(rule) = self.rule(id).filter(|r| r.config.enabled).cloned() else {
                continue;
            };
            let holds = evaluate(
                &rule.expr.cond,
                At {
                    store: &self.series,
                    now,
                    staleness,
                },
            );
            changes.extend(self.life.observe(&rule, holds, now));
        }
        changes
    }
}

/// The alert engine.
pub struct Engine {
    cfg: AlertEngineConfig,
    store: AlertStore,
    bus: Arc<dyn Bus>,
    inner: Mutex<Inner>,
    feed: broadcast::Sender<AlertEvent>,
}

impl Engine {
    /// Loads the rules (defaults, configuration, files, then the stored API
    /// rules) and restores open alerts and running cooldowns from the store.
    pub async fn new(cfg: AlertEngineConfig, store: AlertStore, bus: Arc<dyn Bus>) -> Result<Self, EngineError> {
        let mut base = BTreeMap::new();
        if cfg.default_rules {
            for r in crate::rule::defaults() {
                let rule = Rule::new(r, cfg.default_cooldown, Origin::Default)?;
                base.insert(rule.id().to_owned(), rule);
            }
        }
        let mut configured = Vec::new();
        for path in &cfg.rules_files {
            configured.extend(crate::rule::load_file(path)?);
        }
        configured.extend(cfg.rules.iter().cloned());
        for r in configured {
            let rule = Rule::new(r, cfg.default_cooldown, Origin::File)?;
            base.insert(rule.id().to_owned(), rule);
        }
        let mut api = BTreeMap::new();
        for r in store.rules().await? {
            let id = r.id.clone();
            match Rule::new(r, cfg.default_cooldown, Origin::Api) {
                Ok(rule) => {
                    api.insert(id, rule);
                }
                Err(e) => tracing::warn!(rule = %id, error = %e, "skipping a stored rule that no longer parses"),
            }
        }
        let longest_cooldown = base
            .values()
            .chain(api.values())
            .map(|r| r.cooldown)
            .max()
            .unwrap_or(cfg.default_cooldown);
        let since = SystemTime::now()
            .checked_sub(longest_cooldown)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut life = Lifecycle::default();
        life.restore(store.load_for_restore(since).await?);
        let mut inner = Inner {
            base,
            api,
            readers: HashMap::new(),
            series: SeriesStore::new(cfg.window, cfg.max_series, cfg.max_samples_per_series),
            life,
            unsaved: Vec::new(),
        };
        inner.reindex();
        metrics::gauge!(m::OPEN_ALERTS).set(inner.life.open().count() as f64);
        Ok(Self {
            cfg,
            store,
            bus,
            inner: Mutex::new(inner),
            feed: broadcast::channel(1024).0,
        })
    }

    pub fn store(&self) -> &AlertStore {
        &self.store
    }

    /// Alert events as they are published, for StreamAlerts.
    pub fn subscribe(&self) -> broadcast::Receiver<AlertEvent> {
        self.feed.subscribe()
    }

    /// Takes facts in and re-evaluates the rules that read them, at `now`.
    /// Returns the transitions made. An error means they are kept and
    /// stored again on the next call; the facts themselves are taken.
    pub async fn ingest(&self, facts: Vec<Fact>, now: SystemTime) -> Result<Vec<Change>, EngineError> {
        let started = Instant::now();
        let mut inner = self.inner.lock().await;
        let mut ids: Vec<String> = Vec::new();
        for f in facts {
            if let Some(readers) = inner.readers.get(&f.name) {
                for id in readers {
                    if !ids.contains(id) {
                        ids.push(id.clone());
                    }
                }
            }
            let sample = Sample {
                at: f.at,
                value: f.value,
            };
            if inner.series.insert(&f.name, f.labels, sample, now) == Inserted::TooManySeries {
                metrics::counter!(m::SERIES_DROPPED_TOTAL).increment(1);
            }
        }
        let changes = inner.evaluate(&ids, now, self.cfg.staleness);
        metrics::histogram!(m::EVALUATION_DURATION, "trigger" => m::TRIGGER_EVENT)
            .record(started.elapsed().as_secs_f64());
        self.commit(&mut inner, changes).await
    }

    /// Evaluates every rule (for `for` durations and data that stopped
    /// arriving), ages out samples and old resolved alerts.
    pub async fn sweep(&self, now: SystemTime) -> Result<Vec<Change>, EngineError> {
        let started = Instant::now();
        let mut inner = self.inner.lock().await;
        inner.series.prune(now);
        metrics::gauge!(m::SERIES).set(inner.series.len() as f64);
        let ids: Vec<String> = inner.effective().map(|r| r.id().to_owned()).collect();
        let changes = inner.evaluate(&ids, now, self.cfg.staleness);
        metrics::histogram!(m::EVALUATION_DURATION, "trigger" => m::TRIGGER_SWEEP)
            .record(started.elapsed().as_secs_f64());
        let out = self.commit(&mut inner, changes).await;
        drop(inner);
        let cutoff = now.checked_sub(self.cfg.retention).unwrap_or(SystemTime::UNIX_EPOCH);
        match self.store.prune(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "deleted resolved alerts past retention"),
            Err(e) => tracing::warn!(error = %e, "cannot delete old resolved alerts"),
        }
        out
    }

    /// Stores then publishes `changes` (after any left unsaved before).
    async fn commit(&self, inner: &mut Inner, changes: Vec<Change>) -> Result<Vec<Change>, EngineError> {
        let mut pending = std::mem::take(&mut inner.unsaved);
        pending.extend(changes);
        let mut done = Vec::with_capacity(pending.len());
        let mut iter = pending.into_iter();
        for c in iter.by_ref() {
            if let Err(e) = self.store.record(&c).await {
                metrics::counter!(m::PERSIST_ERRORS_TOTAL).increment(1);
                inner.unsaved.push(c);
                inner.unsaved.extend(iter);
                tracing::error!(error = %e, waiting = inner.unsaved.len(), "cannot store alert transitions; retrying with the next evaluation");
                return Err(e.into());
            }
            self.publish(&c).await;
            done.push(c);
        }
        metrics::gauge!(m::OPEN_ALERTS).set(inner.life.open().count() as f64);
        Ok(done)
    }

    async fn publish(&self, c: &Change) {
        let ev = to_event(c);
        metrics::counter!(m::TRANSITIONS_TOTAL, "state" => c.transition.state.as_str()).increment(1);
        let subject = subject::alert(c.transition.state.as_str(), &c.alert.id);
        if let Err(e) = publish_proto(self.bus.as_ref(), &subject, &ev).await {
            metrics::counter!(m::PUBLISH_ERRORS_TOTAL).increment(1);
            tracing::warn!(alert = %c.alert.id, state = c.transition.state.as_str(), error = %e, "cannot publish an alert event; the alert is stored");
        }
        tracing::info!(alert = %c.alert.id, rule = %c.alert.rule_id, state = c.transition.state.as_str(), actor = %c.transition.actor, "alert transition");
        let _ = self.feed.send(ev);
    }

    /// A person acknowledges an alert.
    pub async fn acknowledge(
        &self,
        id: &str,
        actor: &str,
        comment: &str,
        now: SystemTime,
    ) -> Result<Alert, EngineError> {
        let mut inner = self.inner.lock().await;
        let c = match inner.life.acknowledge(id, actor, comment, now) {
            Ok(c) => c,
            Err(LifecycleError::NotOpen(_)) => return Err(self.not_open(id).await),
            Err(e) => return Err(e.into()),
        };
        let alert = c.alert.clone();
        self.commit(&mut inner, vec![c]).await?;
        Ok(alert)
    }

    /// A person resolves an alert.
    pub async fn resolve(&self, id: &str, actor: &str, comment: &str, now: SystemTime) -> Result<Alert, EngineError> {
        let mut inner = self.inner.lock().await;
        let c = match inner.life.resolve(id, actor, comment, now) {
            Ok(c) => c,
            Err(LifecycleError::NotOpen(_)) => return Err(self.not_open(id).await),
            Err(e) => return Err(e.into()),
        };
        let alert = c.alert.clone();
        self.commit(&mut inner, vec![c]).await?;
        Ok(alert)
    }

    async fn not_open(&self, id: &str) -> EngineError {
        match self.store.get(id).await {
            Ok(Some(a)) if a.state == State::Resolved => EngineError::AlreadyResolved(id.to_owned()),
            Ok(_) => EngineError::NotFound(id.to_owned()),
            Err(e) => e.into(),
        }
    }

    /// Every effective rule.
    pub async fn rules(&self) -> Vec<Rule> {
        self.inner.lock().await.effective().cloned().collect()
    }

    /// Creates or replaces an API rule (persisted), then evaluates it.
    pub async fn upsert_rule(&self, config: AlertRuleConfig, now: SystemTime) -> Result<Rule, EngineError> {
        let rule = Rule::new(config, self.cfg.default_cooldown, Origin::Api)?;
        self.store.put_rule(&rule.config, now).await?;
        let mut inner = self.inner.lock().await;
        let id = rule.id().to_owned();
        let mut changes = Vec::new();
        let replaced_expr = inner.rule(&id).is_some_and(|old| old.config.expr != rule.config.expr);
        if !rule.config.enabled || replaced_expr {
            changes.extend(inner.life.drop_rule(&id, now, "api"));
        }
        inner.api.insert(id.clone(), rule.clone());
        inner.reindex();
        changes.extend(inner.evaluate(&[id], now, self.cfg.staleness));
        self.commit(&mut inner, changes).await?;
        Ok(rule)
    }

    /// Deletes an API rule; its open alerts resolve (a configured rule of
    /// the same id takes over again).
    pub async fn delete_rule(&self, id: &str, now: SystemTime) -> Result<(), EngineError> {
        let mut inner = self.inner.lock().await;
        if !inner.api.contains_key(id) {
            return Err(match inner.base.get(id) {
                Some(r) => EngineError::ConfigRule(id.to_owned(), r.origin.as_str()),
                None => EngineError::NoRule(id.to_owned()),
            });
        }
        self.store.delete_rule(id).await?;
        inner.api.remove(id);
        let changes = inner.life.drop_rule(id, now, "api");
        inner.reindex();
        self.commit(&mut inner, changes).await?;
        Ok(())
    }
}

fn proto_state(s: State) -> AlertState {
    match s {
        State::Firing => AlertState::Firing,
        State::Acknowledged => AlertState::Acknowledged,
        State::Resolved => AlertState::Resolved,
    }
}

/// The protobuf severity of `info`, `warning` or `critical`.
pub fn proto_severity(s: &str) -> Severity {
    match s {
        "info" => Severity::Info,
        "warning" => Severity::Warning,
        "critical" => Severity::Critical,
        _ => Severity::Unspecified,
    }
}

/// The bus message of a transition.
pub fn to_event(c: &Change) -> AlertEvent {
    let a = &c.alert;
    let mut annotations: HashMap<String, String> = HashMap::new();
    annotations.insert("value".into(), a.value.clone());
    annotations.insert("source".into(), a.source.clone());
    annotations.insert("resource".into(), a.resource.clone());
    if !c.transition.comment.is_empty() {
        annotations.insert("comment".into(), c.transition.comment.clone());
    }
    AlertEvent {
        alert_id: a.id.clone(),
        rule_id: a.rule_id.clone(),
        rule_name: a.rule_name.clone(),
        state: proto_state(c.transition.state).into(),
        severity: proto_severity(&a.severity).into(),
        summary: a.summary.clone(),
        description: String::new(),
        labels: a.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        annotations,
        starts_at: Some(to_timestamp(a.started_at)),
        ends_at: a.resolved_at.map(to_timestamp),
        actor: c.transition.actor.clone(),
        fingerprint: a.fingerprint.clone(),
    }
}
