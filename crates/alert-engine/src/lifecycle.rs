//! The alert lifecycle, kept in memory and driven by an injected clock (every
//! method takes `now`), so `for`, cooldowns and re-firing are tested without
//! waiting.
//!
//! pending → firing → acknowledged → resolved. A condition that starts to
//! hold is *pending* (not published, not stored) until it has held for the
//! rule's `for`, then the alert *fires*. One fingerprint (rule + labels) has
//! at most one open alert. When the condition clears the alert resolves; a
//! person may acknowledge or resolve it by hand. After a resolve, the same
//! fingerprint fires again only once the rule's cooldown has passed, as a
//! new alert, so a flapping condition pages once per cooldown.

use std::collections::HashMap;
use std::time::SystemTime;

use pantau_config::{MANUAL_RULE, ManualAlert};

use crate::eval::Element;
use crate::rule::{Rule, fingerprint};
use crate::series::Labels;

/// A stored alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Firing,
    Acknowledged,
    Resolved,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Firing => "firing",
            State::Acknowledged => "acknowledged",
            State::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "firing" => State::Firing,
            "acknowledged" => State::Acknowledged,
            "resolved" => State::Resolved,
            _ => return None,
        })
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: String,
    pub fingerprint: String,
    pub rule_id: String,
    pub rule_name: String,
    pub state: State,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub summary: String,
    pub labels: Labels,
    pub source: String,
    pub resource: String,
    pub value: String,
    pub started_at: SystemTime,
    pub updated_at: SystemTime,
    pub acknowledged_at: Option<SystemTime>,
    pub acknowledged_by: String,
    pub acknowledge_comment: String,
    pub resolved_at: Option<SystemTime>,
    pub resolved_by: String,
    /// `silence:<id>` or `depends:<alert id>` while nobody is notified.
    pub suppressed_by: String,
    /// Whether its firing was published (then its later transitions are too).
    pub notified: bool,
    /// Loaded from the store at start and not yet confirmed by new data.
    pub restored: bool,
}

/// One step of an alert's life, for the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub alert_id: String,
    pub state: State,
    pub at: SystemTime,
    /// Empty when the engine made the change.
    pub actor: String,
    pub comment: String,
}

/// An alert after a transition, and the transition.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub alert: Alert,
    pub transition: Transition,
}

/// An open alert before a person's change (see [`Lifecycle::undo`]).
#[derive(Debug, Clone)]
pub struct Snapshot {
    alert: Alert,
    resolved: Option<SystemTime>,
}

/// Why a person's request cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("no open alert with id `{0}`")]
    NotOpen(String),
    #[error("alert `{id}` is already acknowledged by {by}")]
    AlreadyAcknowledged { id: String, by: String },
}

#[derive(Debug, Default)]
struct RuleState {
    open: HashMap<String, Alert>,
    /// Since when a not-yet-firing condition holds.
    pending: HashMap<String, SystemTime>,
    /// When each fingerprint last resolved, while its cooldown runs.
    resolved: HashMap<String, SystemTime>,
}

/// Every rule's open, pending and cooling alerts.
#[derive(Debug, Default)]
pub struct Lifecycle {
    rules: HashMap<String, RuleState>,
    /// Alert id → (rule id, fingerprint) of open alerts.
    index: HashMap<String, (String, String)>,
    /// Before this instant, a full evaluation does not resolve restored alerts.
    trust_absence_from: Option<SystemTime>,
}

/// The label naming what an alert is about.
const RESOURCE_LABELS: [&str; 5] = ["target", "router", "component", "instance", "host"];

impl Lifecycle {
    /// Restores open alerts (from the store, after a restart) and recent
    /// resolves (so their cooldown still holds).
    pub fn restore(&mut self, alerts: impl IntoIterator<Item = Alert>) {
        for a in alerts {
            let rs = self.rules.entry(a.rule_id.clone()).or_default();
            if a.state == State::Resolved {
                let at = a.resolved_at.unwrap_or(a.updated_at);
                let e = rs.resolved.entry(a.fingerprint.clone()).or_insert(at);
                *e = (*e).max(at);
            } else {
                self.index
                    .insert(a.id.clone(), (a.rule_id.clone(), a.fingerprint.clone()));
                let mut a = a;
                a.restored = true;
                rs.open.insert(a.fingerprint.clone(), a);
            }
        }
    }

    /// Applies one evaluation of `rule` over every series: `holds` are the
    /// label sets its condition holds for at `now`; every other open alert
    /// of the rule resolves (but an alert restored from the store waits
    /// until [`Lifecycle::trust_absence_from`], so a restart resolves
    /// nothing before its data has arrived).
    pub fn observe(&mut self, rule: &Rule, holds: Vec<Element>, now: SystemTime) -> Vec<Change> {
        let rs = self.rules.entry(rule.id().to_owned()).or_default();
        let mut changes = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(holds.len());
        for el in holds {
            let labels = with_rule_labels(rule, el.labels);
            let fp = fingerprint(rule.id(), &labels);
            if !seen.insert(fp.clone()) {
                continue;
            }
            changes.extend(hold(rs, &mut self.index, rule, fp, labels, &el.value, now));
        }
        rs.pending.retain(|fp, _| seen.contains(fp));
        let trusted = self.trust_absence_from.is_none_or(|t| now >= t);
        let cleared: Vec<String> = rs
            .open
            .iter()
            .filter(|(fp, a)| !seen.contains(*fp) && (trusted || !a.restored))
            .map(|(fp, _)| fp.clone())
            .collect();
        for fp in cleared {
            if let Some(c) = close(rs, &mut self.index, &fp, now, "", "") {
                changes.push(c);
            }
        }
        let cooldown = rule.cooldown;
        rs.resolved.retain(|_, at| later(*at, cooldown) > now);
        changes
    }

    /// Applies one evaluation of `rule` for the one label set `labels`
    /// (the series just updated): `held` is what the condition holds for
    /// there, if anything. Other label sets are left as they are.
    pub fn observe_one(
        &mut self,
        rule: &Rule,
        labels: &Labels,
        held: Option<Element>,
        now: SystemTime,
    ) -> Option<Change> {
        // Nothing open or pending for this rule: only a holding condition
        // matters (checked before the fingerprint is built: most results
        // hold no rule, and this runs for each rule reading each of them).
        let quiet = self
            .rules
            .get(rule.id())
            .is_none_or(|rs| rs.open.is_empty() && rs.pending.is_empty());
        if quiet && held.is_none() {
            return None;
        }
        let full = with_rule_labels(rule, labels.clone());
        let fp = fingerprint(rule.id(), &full);
        if !self.rules.contains_key(rule.id()) {
            self.rules.insert(rule.id().to_owned(), RuleState::default());
        }
        let rs = self.rules.get_mut(rule.id())?;
        if rs.resolved.get(&fp).is_some_and(|at| later(*at, rule.cooldown) <= now) {
            rs.resolved.remove(&fp);
        }
        if let Some(el) = held {
            return hold(rs, &mut self.index, rule, fp, full, &el.value, now);
        }
        rs.pending.remove(&fp);
        close(rs, &mut self.index, &fp, now, "", "")
    }

    /// From `at` on, a full evaluation that no longer finds a restored
    /// alert's condition resolves it; before, only data about its own
    /// series does. The engine sets this to its start plus the staleness.
    pub fn set_trust_absence_from(&mut self, at: SystemTime) {
        self.trust_absence_from = Some(at);
    }

    /// Resolves every open alert of a rule that was deleted or disabled.
    pub fn drop_rule(&mut self, rule_id: &str, now: SystemTime, actor: &str) -> Vec<Change> {
        let Some(mut rs) = self.rules.remove(rule_id) else {
            return Vec::new();
        };
        let fps: Vec<String> = rs.open.keys().cloned().collect();
        fps.iter()
            .filter_map(|fp| {
                close(
                    &mut rs,
                    &mut self.index,
                    fp,
                    now,
                    actor,
                    "the rule was removed or disabled",
                )
            })
            .collect()
    }

    /// A person acknowledges an open alert.
    pub fn acknowledge(
        &mut self,
        id: &str,
        actor: &str,
        comment: &str,
        now: SystemTime,
    ) -> Result<Change, LifecycleError> {
        let (rule_id, fp) = self
            .index
            .get(id)
            .ok_or_else(|| LifecycleError::NotOpen(id.to_owned()))?;
        let alert = self
            .rules
            .get_mut(rule_id)
            .and_then(|rs| rs.open.get_mut(fp))
            .ok_or_else(|| LifecycleError::NotOpen(id.to_owned()))?;
        if alert.state == State::Acknowledged {
            return Err(LifecycleError::AlreadyAcknowledged {
                id: id.to_owned(),
                by: alert.acknowledged_by.clone(),
            });
        }
        alert.state = State::Acknowledged;
        alert.acknowledged_at = Some(now);
        actor.clone_into(&mut alert.acknowledged_by);
        comment.clone_into(&mut alert.acknowledge_comment);
        alert.updated_at = now;
        Ok(change(alert, now, actor, comment))
    }

    /// A person resolves an open alert; it can fire again after the cooldown.
    pub fn resolve(&mut self, id: &str, actor: &str, comment: &str, now: SystemTime) -> Result<Change, LifecycleError> {
        let (rule_id, fp) = self
            .index
            .get(id)
            .cloned()
            .ok_or_else(|| LifecycleError::NotOpen(id.to_owned()))?;
        let rs = self
            .rules
            .get_mut(&rule_id)
            .ok_or_else(|| LifecycleError::NotOpen(id.to_owned()))?;
        close(rs, &mut self.index, &fp, now, actor, comment).ok_or_else(|| LifecycleError::NotOpen(id.to_owned()))
    }

    /// Opens an alert raised by hand under the rule id [`MANUAL_RULE`] (no
    /// rule evaluates it: only a person resolves it), or answers the open
    /// alert with the same severity, source, resource, title and labels.
    pub fn raise(&mut self, m: &ManualAlert, actor: &str, now: SystemTime) -> Raised {
        let fp = manual_fingerprint(m);
        let rs = self.rules.entry(MANUAL_RULE.to_owned()).or_default();
        if let Some(open) = rs.open.get(&fp) {
            return Raised::Open(open.clone());
        }
        let started = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let id = format!("{fp}-{}", started.as_millis());
        let alert = Alert {
            id: id.clone(),
            fingerprint: fp.clone(),
            rule_id: MANUAL_RULE.to_owned(),
            rule_name: m.title.clone(),
            state: State::Firing,
            severity: m.severity.as_str().to_owned(),
            summary: if m.message.trim().is_empty() {
                m.title.clone()
            } else {
                m.message.clone()
            },
            labels: m.labels.clone(),
            source: m.source.clone(),
            resource: m.resource.clone(),
            value: String::new(),
            started_at: now,
            updated_at: now,
            acknowledged_at: None,
            acknowledged_by: String::new(),
            acknowledge_comment: String::new(),
            resolved_at: None,
            resolved_by: String::new(),
            suppressed_by: String::new(),
            notified: false,
            restored: false,
        };
        self.index.insert(id, (MANUAL_RULE.to_owned(), fp.clone()));
        let c = change(&alert, now, actor, "raised by hand");
        rs.open.insert(fp, alert);
        Raised::New(c)
    }

    /// Takes back an alert [`Self::raise`] opened whose storing failed.
    pub fn forget(&mut self, id: &str) {
        if let Some((rule_id, fp)) = self.index.remove(id)
            && let Some(rs) = self.rules.get_mut(&rule_id)
        {
            rs.open.remove(&fp);
        }
    }

    /// What a person's change to open alert `id` may have to undo: the alert
    /// as it is, and when its fingerprint last resolved.
    pub fn snapshot(&self, id: &str) -> Option<Snapshot> {
        let (rule_id, fp) = self.index.get(id)?;
        let rs = self.rules.get(rule_id)?;
        Some(Snapshot {
            alert: rs.open.get(fp)?.clone(),
            resolved: rs.resolved.get(fp).copied(),
        })
    }

    /// Puts an open alert back as [`Self::snapshot`] saw it: a person's
    /// acknowledge or resolve that could not be stored is not applied later.
    pub fn undo(&mut self, s: Snapshot) {
        let Snapshot { alert, resolved } = s;
        let fp = alert.fingerprint.clone();
        let rs = self.rules.entry(alert.rule_id.clone()).or_default();
        match resolved {
            Some(at) => rs.resolved.insert(fp.clone(), at),
            None => rs.resolved.remove(&fp),
        };
        self.index.insert(alert.id.clone(), (alert.rule_id.clone(), fp.clone()));
        rs.open.insert(fp, alert);
    }

    /// Records whether an open alert's notifications are suppressed and
    /// whether its firing was published; the updated alert. Once published,
    /// it stays `notified` whatever suppresses it later, so its
    /// acknowledgement and resolve are published too (never swallowed).
    pub fn set_delivery(&mut self, id: &str, suppressed_by: &str, notified: bool) -> Option<Alert> {
        let (rule_id, fp) = self.index.get(id)?;
        let a = self.rules.get_mut(rule_id)?.open.get_mut(fp)?;
        suppressed_by.clone_into(&mut a.suppressed_by);
        a.notified |= notified;
        Some(a.clone())
    }

    /// Open alerts (firing or acknowledged).
    pub fn open(&self) -> impl Iterator<Item = &Alert> {
        self.rules.values().flat_map(|rs| rs.open.values())
    }

    /// How many alerts are open.
    pub fn open_count(&self) -> usize {
        self.index.len()
    }

    /// Conditions waiting for their `for` or cooldown.
    pub fn pending(&self) -> usize {
        self.rules.values().map(|rs| rs.pending.len()).sum()
    }
}

/// What [`Lifecycle::raise`] answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Raised {
    /// A new alert, firing.
    New(Change),
    /// The open alert with the same fingerprint; nothing changed.
    Open(Alert),
}

/// One alert raised by hand per severity, source, resource, title and labels.
fn manual_fingerprint(m: &ManualAlert) -> String {
    let mut key = m.labels.clone();
    // Label names cannot start with a space: these never clash with a label.
    key.insert(" severity".into(), m.severity.as_str().into());
    key.insert(" source".into(), m.source.clone());
    key.insert(" resource".into(), m.resource.clone());
    key.insert(" title".into(), m.title.clone());
    fingerprint(MANUAL_RULE, &key)
}

/// The element's labels with the rule's labels added (the rule's win).
fn with_rule_labels(rule: &Rule, mut labels: Labels) -> Labels {
    for (k, v) in &rule.config.labels {
        labels.insert(k.clone(), v.clone());
    }
    labels
}

/// The condition holds for `fp`: an open alert takes the new value; else
/// it is pending until its `for` and cooldown have passed, then fires.
fn hold(
    rs: &mut RuleState,
    index: &mut HashMap<String, (String, String)>,
    rule: &Rule,
    fp: String,
    labels: Labels,
    value: &crate::series::Value,
    now: SystemTime,
) -> Option<Change> {
    if let Some(open) = rs.open.get_mut(&fp) {
        open.value = value.to_string();
        open.summary = rule.summary(&labels, value);
        open.restored = false;
        return None;
    }
    let since = *rs.pending.entry(fp.clone()).or_insert(now);
    let cooled = rs.resolved.get(&fp).map_or(since, |r| later(*r, rule.cooldown));
    if now < later(since, rule.hold).max(cooled) {
        return None;
    }
    rs.pending.remove(&fp);
    rs.resolved.remove(&fp);
    let started = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let id = format!("{fp}-{}", started.as_millis());
    let alert = Alert {
        id: id.clone(),
        fingerprint: fp.clone(),
        rule_id: rule.id().to_owned(),
        rule_name: rule.name().to_owned(),
        state: State::Firing,
        severity: severity(rule).to_owned(),
        summary: rule.summary(&labels, value),
        resource: RESOURCE_LABELS
            .iter()
            .find_map(|k| labels.get(*k))
            .cloned()
            .unwrap_or_default(),
        labels,
        source: rule.source(),
        value: value.to_string(),
        started_at: now,
        updated_at: now,
        acknowledged_at: None,
        acknowledged_by: String::new(),
        acknowledge_comment: String::new(),
        resolved_at: None,
        resolved_by: String::new(),
        suppressed_by: String::new(),
        notified: false,
        restored: false,
    };
    index.insert(id, (rule.id().to_owned(), fp.clone()));
    let c = change(&alert, now, "", "");
    rs.open.insert(fp, alert);
    Some(c)
}

/// `t + d`, saturating far in the future instead of overflowing.
pub fn later(t: SystemTime, d: std::time::Duration) -> SystemTime {
    t.checked_add(d)
        .unwrap_or_else(|| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 << 40))
}

fn close(
    rs: &mut RuleState,
    index: &mut HashMap<String, (String, String)>,
    fp: &str,
    now: SystemTime,
    actor: &str,
    comment: &str,
) -> Option<Change> {
    let mut alert = rs.open.remove(fp)?;
    index.remove(&alert.id);
    alert.state = State::Resolved;
    alert.resolved_at = Some(now);
    actor.clone_into(&mut alert.resolved_by);
    alert.updated_at = now;
    rs.resolved.insert(fp.to_owned(), now);
    rs.pending.remove(fp);
    Some(change(&alert, now, actor, comment))
}

fn change(alert: &Alert, now: SystemTime, actor: &str, comment: &str) -> Change {
    Change {
        transition: Transition {
            alert_id: alert.id.clone(),
            state: alert.state,
            at: now,
            actor: actor.to_owned(),
            comment: comment.to_owned(),
        },
        alert: alert.clone(),
    }
}

fn severity(rule: &Rule) -> &'static str {
    match rule.config.severity {
        pantau_config::AlertSeverity::Info => "info",
        pantau_config::AlertSeverity::Warning => "warning",
        pantau_config::AlertSeverity::Critical => "critical",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pantau_config::{AlertRuleConfig, AlertSeverity};

    use super::*;
    use crate::rule::Origin;
    use crate::series::Value;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn rule(expr: &str, cooldown: u64) -> Rule {
        let cfg = AlertRuleConfig {
            id: "down".into(),
            name: Some("Down".into()),
            expr: expr.into(),
            severity: AlertSeverity::Critical,
            message: "{{ $labels.target }} is down".into(),
            labels: [("team".to_owned(), "ops".to_owned())].into(),
            for_: None,
            cooldown: Some(Duration::from_secs(cooldown)),
            enabled: true,
            depends_on: Vec::new(),
        };
        Rule::new(cfg, Duration::ZERO, Origin::Api).unwrap()
    }

    fn holds(targets: &[&str]) -> Vec<Element> {
        targets
            .iter()
            .map(|t| Element {
                labels: [("target".to_owned(), (*t).to_owned())].into(),
                value: Value::Num(0.0),
            })
            .collect()
    }

    fn states(c: &[Change]) -> Vec<(State, String)> {
        c.iter()
            .map(|c| (c.transition.state, c.alert.labels["target"].clone()))
            .collect()
    }

    #[test]
    fn a_published_alert_stays_notified_whatever_suppresses_it_later() {
        let r = rule("check_up == 0", 0);
        let mut l = Lifecycle::default();
        let c = l.observe(&r, holds(&["api"]), t(0));
        let id = c[0].alert.id.clone();
        assert!(l.set_delivery(&id, "", true).unwrap().notified);
        let later = l.set_delivery(&id, "silence:s1", false).unwrap();
        assert_eq!((later.notified, later.suppressed_by.as_str()), (true, "silence:s1"));
        let c = l.observe(&r, holds(&[]), t(1));
        assert_eq!(c[0].transition.state, State::Resolved);
        assert!(c[0].alert.notified, "its resolve is published");
    }

    #[test]
    fn for_delays_firing_and_a_clear_before_it_drops_the_pending() {
        let r = rule("check_up == 0 for 1m", 300);
        let mut l = Lifecycle::default();
        assert!(l.observe(&r, holds(&["api"]), t(0)).is_empty());
        assert_eq!(l.pending(), 1);
        assert!(l.observe(&r, holds(&["api"]), t(59)).is_empty());
        // Cleared at 60s: the pending condition is forgotten.
        assert!(l.observe(&r, holds(&[]), t(60)).is_empty());
        assert_eq!(l.pending(), 0);
        assert!(l.observe(&r, holds(&["api"]), t(61)).is_empty());
        let c = l.observe(&r, holds(&["api"]), t(121));
        assert_eq!(states(&c), [(State::Firing, "api".to_owned())]);
        let a = &c[0].alert;
        assert_eq!(a.started_at, t(121));
        assert_eq!(a.summary, "api is down");
        assert_eq!(a.labels["team"], "ops", "rule labels are added");
        assert_eq!(
            (a.severity.as_str(), a.resource.as_str(), a.source.as_str()),
            ("critical", "api", "check_up")
        );
    }

    #[test]
    fn huge_durations_do_not_overflow() {
        let mut cfg = rule("check_up == 0 for 9999999999w", 0).config;
        cfg.cooldown = Some(Duration::MAX);
        let r = Rule::new(cfg, Duration::ZERO, Origin::Api).unwrap();
        let mut l = Lifecycle::default();
        assert!(l.observe(&r, holds(&["api"]), t(0)).is_empty());
        assert!(
            l.observe(&r, holds(&["api"]), t(1_000_000)).is_empty(),
            "pending, no panic"
        );
    }

    #[test]
    fn one_problem_is_one_alert() {
        let r = rule("check_up == 0", 300);
        let mut l = Lifecycle::default();
        let c = l.observe(&r, holds(&["api", "web", "api"]), t(0));
        assert_eq!(c.len(), 2, "duplicates in one evaluation collapse");
        for s in 1..10 {
            assert!(
                l.observe(&r, holds(&["api", "web"]), t(s)).is_empty(),
                "still firing is no new alert"
            );
        }
        assert_eq!(l.open().count(), 2);
        let ids: std::collections::HashSet<_> = c.iter().map(|c| c.alert.id.clone()).collect();
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn resolve_cooldown_and_refire() {
        let r = rule("check_up == 0", 300);
        let mut l = Lifecycle::default();
        let first = l.observe(&r, holds(&["api"]), t(0)).remove(0).alert;
        let c = l.observe(&r, holds(&[]), t(10));
        assert_eq!(states(&c), [(State::Resolved, "api".to_owned())]);
        assert_eq!(c[0].alert.id, first.id);
        assert_eq!(c[0].alert.resolved_at, Some(t(10)));
        assert_eq!(c[0].alert.resolved_by, "", "resolved by the engine");
        // It holds again at once: within the cooldown it stays pending.
        assert!(l.observe(&r, holds(&["api"]), t(20)).is_empty());
        assert!(l.observe(&r, holds(&["api"]), t(309)).is_empty());
        let c = l.observe(&r, holds(&["api"]), t(310));
        assert_eq!(states(&c), [(State::Firing, "api".to_owned())]);
        assert_ne!(c[0].alert.id, first.id, "a re-fire is a new alert");
        assert_eq!(c[0].alert.fingerprint, first.fingerprint, "of the same fingerprint");
    }

    #[test]
    fn acknowledge_then_resolve_by_hand() {
        let r = rule("check_up == 0", 60);
        let mut l = Lifecycle::default();
        let id = l.observe(&r, holds(&["api"]), t(0)).remove(0).alert.id;
        let c = l.acknowledge(&id, "dina", "looking", t(5)).unwrap();
        assert_eq!(c.alert.state, State::Acknowledged);
        assert_eq!(
            (c.alert.acknowledged_by.as_str(), c.alert.acknowledged_at),
            ("dina", Some(t(5)))
        );
        assert_eq!(
            (c.transition.actor.as_str(), c.transition.comment.as_str()),
            ("dina", "looking")
        );
        assert_eq!(
            l.acknowledge(&id, "budi", "", t(6)),
            Err(LifecycleError::AlreadyAcknowledged {
                id: id.clone(),
                by: "dina".into()
            })
        );
        assert!(
            l.observe(&r, holds(&["api"]), t(7)).is_empty(),
            "acknowledged stays open while it holds"
        );
        let c = l.resolve(&id, "dina", "fixed the cable", t(8)).unwrap();
        assert_eq!((c.alert.state, c.alert.resolved_by.as_str()), (State::Resolved, "dina"));
        assert_eq!(
            l.resolve(&id, "dina", "", t(9)),
            Err(LifecycleError::NotOpen(id.clone()))
        );
        assert_eq!(
            l.acknowledge("nope", "x", "", t(9)),
            Err(LifecycleError::NotOpen("nope".into()))
        );
        // Still broken: fires again once the cooldown (60s) has passed.
        assert!(l.observe(&r, holds(&["api"]), t(67)).is_empty());
        assert_eq!(
            states(&l.observe(&r, holds(&["api"]), t(68))),
            [(State::Firing, "api".to_owned())]
        );
    }

    #[test]
    fn restore_keeps_open_alerts_and_cooldowns() {
        let r = rule("check_up == 0", 300);
        let mut l = Lifecycle::default();
        let api = l.observe(&r, holds(&["api", "web"]), t(0));
        let web_resolved = l.observe(&r, holds(&["api"]), t(10));
        let mut restored = Lifecycle::default();
        restored.restore(
            api.iter()
                .filter(|c| c.alert.labels["target"] == "api")
                .map(|c| c.alert.clone()),
        );
        restored.restore(web_resolved.into_iter().map(|c| c.alert));
        assert!(
            restored.observe(&r, holds(&["api", "web"]), t(20)).is_empty(),
            "no duplicate, web cooling"
        );
        assert_eq!(
            states(&restored.observe(&r, holds(&["api", "web"]), t(310))),
            [(State::Firing, "web".to_owned())]
        );
        let dropped = restored.drop_rule("down", t(311), "admin");
        assert_eq!(dropped.len(), 2);
        assert!(dropped.iter().all(|c| c.alert.state == State::Resolved));
        assert_eq!(restored.open().count(), 0);
    }

    #[test]
    fn restored_alerts_wait_for_their_data_before_resolving() {
        let r = rule("check_up == 0", 300);
        let mut before = Lifecycle::default();
        let fired: Vec<Alert> = before
            .observe(&r, holds(&["api", "web", "db"]), t(0))
            .into_iter()
            .map(|c| c.alert)
            .collect();
        let mut l = Lifecycle::default();
        l.restore(fired);
        l.set_trust_absence_from(t(400));
        // Right after a restart the window store is empty: a full evaluation
        // finds nothing, and must not take that as a recovery.
        assert!(l.observe(&r, holds(&[]), t(100)).is_empty());
        assert_eq!(l.open_count(), 3);
        // Data about `web` shows it recovered: that resolves it.
        let web: Labels = [("target".to_owned(), "web".to_owned())].into();
        let c = l.observe_one(&r, &web, None, t(101)).expect("web resolves");
        assert_eq!(c.alert.state, State::Resolved);
        // `api` still holds: confirmed, and then an ordinary open alert.
        let api: Labels = [("target".to_owned(), "api".to_owned())].into();
        let still = holds(&["api"]).remove(0);
        assert!(l.observe_one(&r, &api, Some(still), t(102)).is_none());
        assert!(
            l.observe(&r, holds(&[]), t(103))
                .iter()
                .any(|c| c.alert.labels["target"] == "api")
        );
        // `db` never reported again: resolved once absence can be trusted.
        assert_eq!(l.open_count(), 1);
        assert!(l.observe(&r, holds(&[]), t(399)).is_empty());
        let c = l.observe(&r, holds(&[]), t(400));
        assert_eq!(states(&c), [(State::Resolved, "db".to_owned())]);
    }

    #[test]
    fn one_label_set_at_a_time() {
        let r = rule("check_up == 0 for 1m", 300);
        let mut l = Lifecycle::default();
        let api: Labels = [("target".to_owned(), "api".to_owned())].into();
        let el = || holds(&["api"]).remove(0);
        assert!(l.observe_one(&r, &api, None, t(0)).is_none(), "nothing to clear");
        assert!(l.observe_one(&r, &api, Some(el()), t(0)).is_none(), "pending");
        assert_eq!(l.pending(), 1);
        let c = l.observe_one(&r, &api, Some(el()), t(60)).expect("fires after its for");
        assert_eq!(c.alert.labels["team"], "ops", "rule labels are added");
        assert_eq!(l.open_count(), 1);
        let c = l.observe_one(&r, &api, None, t(61)).expect("resolves");
        assert_eq!(c.alert.state, State::Resolved);
        assert!(l.observe_one(&r, &api, Some(el()), t(62)).is_none(), "cooling down");
        assert!(
            l.observe_one(&r, &api, Some(el()), t(361)).is_some(),
            "fires again after the cooldown"
        );
    }
}
