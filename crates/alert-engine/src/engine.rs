//! The running engine: the rules, the window store and the lifecycle behind
//! one lock; facts in, transitions persisted, then published on
//! `pantau.alert.<state>.<alert_id>`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use pantau_config::{AlertEngineConfig, AlertRuleConfig};
use pantau_core::bus::{Bus, publish_proto, subject};
use pantau_core::store::StoreError;
use pantau_proto::v1::AlertEvent;
use tokio::sync::{Mutex, broadcast};

use crate::deps::{Deps, Signal};
use crate::eval::{At, evaluate, evaluate_one, is_local};
pub use crate::event::{proto_severity, to_event};
use crate::facts::Fact;
use crate::incident::{Incidents, Write as IncidentWrite};
use crate::lifecycle::{Alert, Change, Lifecycle, LifecycleError, Snapshot, State};
use crate::metrics as m;
use crate::rule::{Origin, Rule, RuleError};
use crate::series::{Inserted, Labels, Sample, SeriesStore, Value};
use crate::silence::{Silence, SilenceError, SilenceMatcher};
use crate::store::AlertStore;

mod admin;
mod grouping;
mod manual;
mod person;
pub(crate) use grouping::grouping;
use grouping::shared_agree;

/// What callers of the engine handle.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("no alert with id `{0}`")]
    NotFound(String),
    #[error("no incident with id `{0}`")]
    NoIncident(String),
    #[error("incident `{0}` is already resolved")]
    IncidentResolved(String),
    #[error("incident `{id}` is already acknowledged by {by}")]
    IncidentAcknowledged { id: String, by: String },
    #[error("{0}")]
    BadComment(String),
    #[error("alert `{0}` is already resolved")]
    AlreadyResolved(String),
    #[error("no rule with id `{0}`")]
    NoRule(String),
    #[error("rule `{0}` comes from the configuration ({1}); disable it there or override it with enabled: false")]
    ConfigRule(String, &'static str),
    #[error(transparent)]
    Silence(#[from] SilenceError),
    #[error("no silence with id `{0}`")]
    NoSilence(String),
    #[error(transparent)]
    Window(#[from] crate::maintenance::WindowError),
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("the alert engine is busy storing transitions (its store may be failing); nothing was changed")]
    Busy,
    #[error(
        "this instance's alert engine keeps a copy of the cluster's alerts; the primary `{0}` evaluates them: make the change there"
    )]
    NotEvaluating(String),
}

impl pantau_core::error::ServiceError for EngineError {
    fn code(&self) -> pantau_core::error::ErrorCode {
        use pantau_core::error::ErrorCode;
        match self {
            Self::Rule(_) | Self::Silence(_) | Self::BadComment(_) => ErrorCode::InvalidArgument,
            Self::Lifecycle(LifecycleError::NotOpen(_))
            | Self::NotFound(_)
            | Self::NoRule(_)
            | Self::NoSilence(_)
            | Self::NoIncident(_) => ErrorCode::NotFound,
            Self::Lifecycle(LifecycleError::AlreadyAcknowledged { .. })
            | Self::AlreadyResolved(_)
            | Self::IncidentResolved(_)
            | Self::IncidentAcknowledged { .. }
            | Self::ConfigRule(..)
            | Self::NotEvaluating(_) => ErrorCode::FailedPrecondition,
            Self::Store(_) | Self::Busy => ErrorCode::Unavailable,
            Self::Window(e) => {
                use crate::maintenance::WindowError as W;
                match e {
                    W::Invalid(_) | W::TooMany => ErrorCode::InvalidArgument,
                    W::Configured(_) | W::Exists(_) => ErrorCode::Conflict,
                    W::NotFound(_) => ErrorCode::NotFound,
                }
            }
        }
    }

    fn store_failure(&self) -> Option<&StoreError> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// How long a request that changes something (acknowledge, resolve, a rule,
/// a silence) waits for the engine (held
/// by an evaluation that may be retrying a failing store) before it answers
/// that nothing was changed: well within the gateway's 10 s, so the answer
/// comes from here, not from a timeout that cannot say whether it applied.
const PERSON_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// A rule reading a metric (see `Inner::readers`).
struct Reader {
    id: Arc<str>,
    local: bool,
}

pub(crate) struct Inner {
    /// Defaults and configured rules.
    base: BTreeMap<String, Rule>,
    /// Rules from the API; they win over `base`.
    api: BTreeMap<String, Rule>,
    /// Metric name → the rules reading it: their id, and whether their
    /// condition is local ([`is_local`]: a fact re-evaluates them for its own
    /// label set only). Shared, so a fact borrows it without copying ids.
    readers: HashMap<String, Arc<[Reader]>>,
    /// Rules over many series that a fact touched since their last full
    /// evaluation; evaluated by [`Engine::evaluate_batched`].
    dirty: HashSet<String>,
    /// Whether any rule has `depends_on` (then a resolve may release a child).
    any_depends: bool,
    series: SeriesStore,
    pub(crate) life: Lifecycle,
    /// Transitions not stored yet (the store failed); retried first.
    unsaved: Vec<Change>,
    /// Silences that have not ended.
    silences: Vec<Silence>,
    /// Dependencies between targets, routers and interfaces.
    pub(crate) deps: Deps,
    /// The windows that mute alerts while they hold: `maintenance[]` and
    /// those made through the API (`windows.effective()`).
    maintenance: Vec<pantau_config::MaintenanceWindow>,
    /// The configured and API maintenance windows.
    pub(crate) windows: crate::maintenance::Windows,
    /// Open incidents and their open alerts.
    pub(crate) incidents: Incidents,
    /// What unsaved transitions did to incidents (applied here already).
    unsaved_writes: Vec<IncidentWrite>,
}

impl Inner {
    /// Mutes by the current configured and API windows.
    pub(crate) fn apply_windows(&mut self) {
        self.maintenance = self.windows.effective();
    }

    fn rule(&self, id: &str) -> Option<&Rule> {
        self.api.get(id).or_else(|| self.base.get(id))
    }

    fn effective(&self) -> impl Iterator<Item = &Rule> {
        self.base
            .values()
            .filter(|r| !self.api.contains_key(r.id()))
            .chain(self.api.values())
    }

    /// Why an alert notifies no one right now: `silence:<id>`,
    /// `maintenance:<window id>`, `depends:<parent alert id>` or
    /// `depends:<dependency>` (see
    /// [`crate::deps`]); empty when it notifies.
    pub(crate) fn suppression(&self, a: &Alert, now: SystemTime) -> String {
        if let Some(s) = self.silences.iter().find(|s| s.silences(&a.rule_id, &a.labels, now)) {
            return format!("silence:{}", s.id);
        }
        if let Some(w) = self
            .maintenance
            .iter()
            .find(|w| w.covers_alert(&a.labels) && w.is_active(now))
        {
            return format!("maintenance:{}", w.id);
        }
        if let Some(rule) = self.rule(&a.rule_id) {
            for parent in &rule.config.depends_on {
                if let Some(p) = self
                    .life
                    .open()
                    .find(|p| &p.rule_id == parent && shared_agree(&a.labels, &p.labels))
                {
                    return format!("depends:{}", p.id);
                }
            }
        }
        self.deps.cause(a, now).unwrap_or_default()
    }

    fn reindex(&mut self) {
        let mut readers: HashMap<String, Vec<Reader>> = HashMap::new();
        // Samples are kept as far back as an enabled rule looks (rules
        // added later look back over what has arrived since).
        let mut horizons: HashMap<String, std::time::Duration> = HashMap::new();
        for r in self.effective().filter(|r| r.config.enabled) {
            let local = is_local(&r.expr.cond);
            for name in r.expr.metric_names() {
                readers.entry(name).or_default().push(Reader {
                    id: Arc::from(r.id()),
                    local,
                });
            }
            for (name, range) in r.expr.ranges() {
                let h = horizons.entry(name).or_default();
                *h = (*h).max(range);
            }
        }
        self.series.set_horizons(horizons);
        let any_depends = self.effective().any(|r| !r.config.depends_on.is_empty());
        self.any_depends = any_depends;
        self.readers = readers.into_iter().map(|(k, v)| (k, Arc::from(v))).collect();
        metrics::gauge!(m::RULES).set(self.effective().count() as f64);
    }

    /// Evaluates the rules `ids` over every series.
    fn evaluate(&mut self, ids: &[String], now: SystemTime, staleness: std::time::Duration) -> Vec<Change> {
        let mut changes = Vec::new();
        for id in ids {
            let Inner {
                base,
                api,
                series,
                life,
                dirty,
                ..
            } = self;
            let Some(rule) = api.get(id).or_else(|| base.get(id)).filter(|r| r.config.enabled) else {
                continue;
            };
            dirty.remove(id);
            let holds = evaluate(
                &rule.expr.cond,
                At {
                    store: series,
                    now,
                    staleness,
                },
            );
            changes.extend(life.observe(rule, holds, now));
        }
        changes
    }

    /// Evaluates the local rule `id` for the one label set `labels`.
    fn evaluate_one(
        &mut self,
        id: &str,
        labels: &Labels,
        now: SystemTime,
        staleness: std::time::Duration,
    ) -> Option<Change> {
        let Inner {
            base,
            api,
            series,
            life,
            ..
        } = self;
        let rule = api.get(id).or_else(|| base.get(id)).filter(|r| r.config.enabled)?;
        let at = At {
            store: series,
            now,
            staleness,
        };
        let held = evaluate_one(&rule.expr.cond, at, labels);
        life.observe_one(rule, labels, held, now)
    }

    /// How many series the rule `id` reads.
    fn series_read(&self, id: &str) -> usize {
        self.rule(id)
            .map_or(0, |r| r.expr.metric_names().iter().map(|n| self.series.count(n)).sum())
    }
}

/// A rule that is not local and reads more series than this is evaluated
/// at most once per [`BATCH_INTERVAL`]; a smaller one at once.
pub const BATCH_ABOVE_SERIES: usize = 1024;
/// How often rules waiting in the batch are evaluated.
pub const BATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// The alert engine.
pub struct Engine {
    pub(crate) cfg: AlertEngineConfig,
    pub(crate) store: AlertStore,
    bus: Arc<dyn Bus>,
    pub(crate) inner: Mutex<Inner>,
    /// `instance.name`, on every published alert event.
    pub(crate) instance: String,
    /// Whether this instance evaluates (see [`crate::cluster`]); `None`: always.
    pub(crate) cluster: Option<pantau_core::cluster::Cluster>,
    feed: broadcast::Sender<AlertEvent>,
    alertmanager: Option<crate::alertmanager::Pusher>,
}

impl Engine {
    /// Loads the rules (defaults, configuration, files, then the stored API
    /// rules) and restores open alerts and running cooldowns from the store.
    pub async fn new(cfg: AlertEngineConfig, store: AlertStore, bus: Arc<dyn Bus>) -> Result<Self, EngineError> {
        let base = crate::rule::load_configured(&cfg)?;
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
        for r in base.values().chain(api.values()) {
            if let Some(parent) = r
                .config
                .depends_on
                .iter()
                .find(|p| !base.contains_key(*p) && !api.contains_key(*p))
            {
                return Err(RuleError::UnknownParent {
                    rule: r.id().to_owned(),
                    parent: parent.clone(),
                }
                .into());
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
        // Until every series has had time to report again, only data about
        // a restored alert's own series resolves it.
        life.set_trust_absence_from(crate::lifecycle::later(SystemTime::now(), cfg.staleness));
        let mut inner = Inner {
            base,
            api,
            readers: HashMap::new(),
            dirty: HashSet::new(),
            any_depends: false,
            series: SeriesStore::new(cfg.window, cfg.max_series, cfg.max_samples_per_series),
            life,
            unsaved: Vec::new(),
            silences: store.silences(SystemTime::now()).await?,
            deps: Deps::with_limit(cfg.max_series).with_staleness(cfg.staleness).deriving(
                cfg.dependencies
                    .derive_from_wan
                    .then(|| cfg.dependencies.site_label.clone()),
            ),
            maintenance: Vec::new(),
            windows: crate::maintenance::Windows::new(store.maintenance_windows().await?),
            incidents: Incidents::new(cfg.incidents.clone()),
            unsaved_writes: Vec::new(),
        };
        inner
            .incidents
            .restore(store.open_incidents().await?, store.open_members().await?);
        inner.deps.rebuild(inner.life.open());
        inner.reindex();
        inner.apply_windows();
        metrics::gauge!(m::OPEN_ALERTS).set(inner.life.open_count() as f64);
        Ok(Self {
            cfg,
            store,
            bus,
            inner: Mutex::new(inner),
            feed: broadcast::channel(1024).0,
            alertmanager: None,
            instance: String::new(),
            cluster: None,
        })
    }

    /// Mutes the alerts `windows` cover while they hold (`maintenance[]`).
    #[must_use]
    pub fn with_maintenance(self, windows: Vec<pantau_config::MaintenanceWindow>) -> Self {
        let mut inner = self.inner;
        inner.get_mut().windows.set_config(windows);
        inner.get_mut().apply_windows();
        Self { inner, ..self }
    }

    /// Also pushes alerts to Alertmanager.
    #[must_use]
    pub fn with_alertmanager(mut self, pusher: Option<crate::alertmanager::Pusher>) -> Self {
        self.alertmanager = pusher;
        self
    }

    pub fn store(&self) -> &AlertStore {
        &self.store
    }

    /// Alert events as they are published, for StreamAlerts.
    pub fn subscribe(&self) -> broadcast::Receiver<AlertEvent> {
        self.feed.subscribe()
    }

    /// Takes facts in and re-evaluates the rules that read them, at `now`:
    /// a local rule for the label set of each fact only; another rule over
    /// every series, at once when it reads few series, else in the next
    /// batch ([`Engine::evaluate_batched`]). Returns the transitions made.
    /// An error means they are kept and stored again on the next call; the
    /// facts themselves are taken.
    pub async fn ingest(&self, facts: Vec<Fact>, now: SystemTime) -> Result<Vec<Change>, EngineError> {
        self.ingest_observed(facts, None, now).await
    }

    /// [`Engine::ingest`] of a message's facts, with what it says about
    /// dependencies (a check result, an interface sample).
    pub async fn ingest_observed(
        &self,
        facts: Vec<Fact>,
        signal: Option<Signal>,
        now: SystemTime,
    ) -> Result<Vec<Change>, EngineError> {
        self.ingest_messages(vec![(facts, signal)], now).await
    }

    /// [`Engine::ingest_observed`] of several messages, taken in their order,
    /// their transitions stored in one transaction (the bus consumer hands
    /// over every message already waiting: an outage's thousands of results
    /// cost a few transactions, not one each).
    pub async fn ingest_messages(
        &self,
        messages: Vec<(Vec<Fact>, Option<Signal>)>,
        now: SystemTime,
    ) -> Result<Vec<Change>, EngineError> {
        let started = Instant::now();
        let mut inner = self.inner.lock().await;
        let mut changes = Vec::new();
        for (facts, signal) in messages {
            changes.extend(self.absorb(&mut inner, facts, signal, now));
        }
        metrics::histogram!(m::EVALUATION_DURATION, "trigger" => m::TRIGGER_EVENT)
            .record(started.elapsed().as_secs_f64());
        self.commit(&mut inner, changes, now).await
    }

    /// Takes one message's facts and dependency signal in and evaluates the
    /// rules that read them; returns the transitions, not yet stored.
    fn absorb(&self, inner: &mut Inner, facts: Vec<Fact>, signal: Option<Signal>, now: SystemTime) -> Vec<Change> {
        let mut facts = facts;
        if let Some(s) = signal {
            let checked = matches!(s, Signal::Check(_));
            inner.deps.take(s);
            if checked {
                facts.extend(location_facts(inner.deps.location_changes(now), now));
            }
        }
        for f in &mut facts {
            let sample = Sample {
                at: f.at,
                // The value moves into the store; only the labels are read below.
                value: std::mem::replace(&mut f.value, Value::Num(0.0)),
            };
            if inner.series.insert(&f.name, &f.labels, sample, now) == Inserted::TooManySeries {
                metrics::counter!(m::SERIES_DROPPED_TOTAL).increment(1);
            }
        }
        // (rule, index of the fact): a fact's labels are borrowed, not
        // copied, for each rule it re-evaluates.
        let mut touched: Vec<(Arc<str>, usize)> = Vec::new();
        let mut global: Vec<String> = Vec::new();
        for (i, f) in facts.iter().enumerate() {
            let Some(readers) = inner.readers.get(&f.name) else {
                continue;
            };
            for r in readers.iter() {
                if r.local {
                    if !touched
                        .iter()
                        .any(|(id, j)| *id == r.id && facts[*j].labels == f.labels)
                    {
                        touched.push((Arc::clone(&r.id), i));
                    }
                } else if !global.iter().any(|g| **g == *r.id) {
                    global.push(r.id.to_string());
                }
            }
        }
        let staleness = self.cfg.staleness;
        let mut changes: Vec<Change> = touched
            .iter()
            .filter_map(|(id, i)| inner.evaluate_one(id, &facts[*i].labels, now, staleness))
            .collect();
        let (now_ids, later_ids): (Vec<String>, Vec<String>) = global
            .into_iter()
            .partition(|id| inner.series_read(id) <= BATCH_ABOVE_SERIES);
        inner.dirty.extend(later_ids);
        changes.extend(inner.evaluate(&now_ids, now, staleness));
        changes
    }

    /// Evaluates the rules that facts touched since their last evaluation
    /// and that read too many series to evaluate at every fact.
    pub async fn evaluate_batched(&self, now: SystemTime) -> Result<Vec<Change>, EngineError> {
        // A location that fell silent is down without any message saying so.
        let silent = self.inner.lock().await.deps.location_changes(now);
        if !silent.is_empty() {
            self.ingest(location_facts(silent, now), now).await?;
        }
        let mut inner = self.inner.lock().await;
        if inner.deps.active() || !inner.maintenance.is_empty() {
            // Children whose parent's verdict came, or whose hold ended;
            // alerts whose maintenance window ended.
            self.release(&mut inner, now).await?;
        }
        if inner.dirty.is_empty() && inner.unsaved.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let ids: Vec<String> = inner.dirty.drain().collect();
        let changes = inner.evaluate(&ids, now, self.cfg.staleness);
        metrics::histogram!(m::EVALUATION_DURATION, "trigger" => m::TRIGGER_BATCH)
            .record(started.elapsed().as_secs_f64());
        self.commit(&mut inner, changes, now).await
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
        let out = self.commit(&mut inner, changes, now).await;
        inner.silences.retain(|s| !s.is_over(now));
        if let Err(e) = self.release(&mut inner, now).await {
            tracing::warn!(error = %e, "cannot record alerts whose silence or parent ended");
        }
        if let Some(am) = &self.alertmanager {
            for a in inner.life.open().filter(|a| a.notified) {
                am.push(a);
            }
        }
        drop(inner);
        let cutoff = now.checked_sub(self.cfg.retention).unwrap_or(SystemTime::UNIX_EPOCH);
        match self.store.prune(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "deleted resolved alerts past retention"),
            Err(e) => tracing::warn!(error = %e, "cannot delete old resolved alerts"),
        }
        if let Err(e) = self.store.prune_silences(cutoff).await {
            tracing::warn!(error = %e, "cannot delete old silences");
        }
        match self.store.prune_incidents(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "deleted resolved incidents past retention"),
            Err(e) => tracing::warn!(error = %e, "cannot delete old resolved incidents"),
        }
        out
    }

    /// Stores then publishes `changes` (after any left unsaved before), with
    /// what they do to incidents, in one transaction. A firing alert that is
    /// silenced or whose parent fires is stored but not published; its
    /// acknowledge and resolve follow its firing.
    async fn commit(
        &self,
        inner: &mut Inner,
        changes: Vec<Change>,
        now: SystemTime,
    ) -> Result<Vec<Change>, EngineError> {
        let retried = inner.unsaved.len();
        let mut pending = std::mem::take(&mut inner.unsaved);
        pending.extend(changes);
        let mut writes = std::mem::take(&mut inner.unsaved_writes);
        let mut resolved_any = false;
        // Alerts that fired earlier in this commit, and whether that was
        // published: a later change of the same alert (its resolve, in a
        // batch of messages) was made before the delivery was known.
        let mut fired: HashMap<String, bool> = HashMap::new();
        for (n, c) in pending.iter_mut().enumerate() {
            if c.transition.state == State::Firing {
                let why = inner.suppression(&c.alert, now);
                c.alert.notified |= why.is_empty();
                c.alert.suppressed_by = why;
                let affected = inner.deps.affected(&c.alert);
                c.alert.summary = crate::deps::with_affected(&c.alert.summary, &affected);
                inner
                    .life
                    .set_delivery(&c.alert.id, &c.alert.suppressed_by, c.alert.notified);
                fired.insert(c.alert.id.clone(), c.alert.notified);
            } else if let Some(&notified) = fired.get(&c.alert.id) {
                c.alert.notified |= notified;
            }
            resolved_any |= c.transition.state == State::Resolved;
            // Before the next change's suppression: a parent and its
            // children may fire in one evaluation.
            inner.deps.note_alert(&c.alert, now);
            // A retried change's incident write is kept with it already.
            if n >= retried {
                let c: &Change = c;
                let Inner { incidents, deps, .. } = &mut *inner;
                let deps: &Deps = deps;
                writes.extend(incidents.follow(c, |incs| grouping(&c.alert, deps, incs)));
            }
        }
        if let Err(e) = self.store.record_all(&pending, &writes).await {
            metrics::counter!(m::PERSIST_ERRORS_TOTAL).increment(1);
            tracing::error!(error = %e, waiting = pending.len(), "cannot store alert transitions; retrying with the next evaluation");
            inner.unsaved = pending;
            inner.unsaved_writes = writes;
            return Err(e.into());
        }
        for c in &pending {
            self.publish(c).await;
        }
        for w in &writes {
            self.publish_incident(w).await;
        }
        if resolved_any && inner.any_depends {
            self.release(inner, now).await?;
        }
        metrics::gauge!(m::OPEN_ALERTS).set(inner.life.open_count() as f64);
        metrics::gauge!(m::OPEN_INCIDENTS).set(inner.incidents.open_count() as f64);
        Ok(pending)
    }

    /// Stores (and publishes) the transitions waiting to be stored.
    pub(crate) async fn commit_pending(&self, inner: &mut Inner, now: SystemTime) -> Result<(), EngineError> {
        self.commit(inner, Vec::new(), now).await.map(|_| ())
    }

    /// Publishes what a stored incident write says, one event per entry, on
    /// `pantau.incident.<kind>.<incident_id>`.
    pub(crate) async fn publish_incident(&self, w: &IncidentWrite) {
        for (subject, mut ev) in crate::incident::event::to_events(w, &self.instance) {
            ev.instance.clone_from(&self.instance);
            if let Err(e) = publish_proto(self.bus.as_ref(), &subject, &ev).await {
                metrics::counter!(m::PUBLISH_ERRORS_TOTAL).increment(1);
                tracing::warn!(incident = %ev.incident_id, error = %e, "cannot publish an incident event; the incident is stored");
            }
        }
    }

    pub(crate) fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    pub(crate) async fn publish(&self, c: &Change) {
        let mut ev = to_event(c);
        ev.instance.clone_from(&self.instance);
        let state = c.transition.state.as_str();
        metrics::counter!(m::TRANSITIONS_TOTAL, "state" => state).increment(1);
        let _ = self.feed.send(ev.clone());
        if !c.alert.notified {
            tracing::info!(alert = %c.alert.id, rule = %c.alert.rule_id, state, suppressed_by = %c.alert.suppressed_by, "alert transition (suppressed: not published)");
            return;
        }
        let subject = subject::alert(state, &c.alert.id);
        if let Err(e) = publish_proto(self.bus.as_ref(), &subject, &ev).await {
            metrics::counter!(m::PUBLISH_ERRORS_TOTAL).increment(1);
            tracing::warn!(alert = %c.alert.id, state, error = %e, "cannot publish an alert event; the alert is stored");
        }
        tracing::info!(alert = %c.alert.id, rule = %c.alert.rule_id, state, actor = %c.transition.actor, "alert transition");
        if let Some(am) = &self.alertmanager {
            am.push(&c.alert);
        }
    }

    /// Resolves open alerts (restored from the store) whose rule is gone or
    /// disabled, so none stays open forever.
    pub async fn retire_orphans(&self, now: SystemTime) -> Result<Vec<Change>, EngineError> {
        let mut inner = self.inner.lock().await;
        let mut orphaned: Vec<String> = inner
            .life
            .open()
            // Alerts raised by hand have no rule: only a person resolves them.
            .filter(|a| a.rule_id != pantau_config::MANUAL_RULE)
            .filter(|a| inner.rule(&a.rule_id).is_none_or(|r| !r.config.enabled))
            .map(|a| a.rule_id.clone())
            .collect();
        orphaned.sort();
        orphaned.dedup();
        let mut changes = Vec::new();
        for id in orphaned {
            changes.extend(inner.life.drop_rule(&id, now, ""));
        }
        self.commit(&mut inner, changes, now).await
    }
}

/// `location_up{location}` facts of the locations whose state changed.
fn location_facts(changes: Vec<(String, bool)>, now: SystemTime) -> Vec<crate::facts::Fact> {
    changes
        .into_iter()
        .map(|(l, up)| crate::facts::location_up(&l, up, now))
        .collect()
}
