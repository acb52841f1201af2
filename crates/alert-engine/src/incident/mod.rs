//! Incidents: alerts that share a root cause or a grouping key, with a
//! title, a state and a timeline.
//!
//! Every alert that fires joins one incident, once, and stays its member:
//! - an alert held by a dependency (`depends:<parent alert id>`, or
//!   `depends:<dependency>` while the parent's own alert is not open) joins
//!   the incident of that parent, keyed `depends:<dependency>`; so does the
//!   parent's own alert (see [`crate::deps::Deps::as_parent`]); such an
//!   incident takes every child while it is open, whatever the window;
//! - any other alert joins the open incident keyed
//!   `group:<values of alert_engine.incidents.group_by>` whose latest alert
//!   joined less than `window` ago, else it opens a new one.
//!
//! An incident is `open`, then `acknowledged` when a person acknowledges it
//! (and with it each of its open alerts, in their name), and `resolved`
//! when its last open alert resolves — never otherwise, so a restart (its
//! alerts restored from the store) never resolves one. Every change is a
//! [`Write`], stored in the transaction of the alert transition that caused
//! it ([`crate::store::AlertStore::record_all`]).
//!
//! Layout: this file (the model and the grouping), [`store`] (SQL),
//! [`event`] (the bus message and the protobuf views), [`delivery`] (the
//! notifier's delivery outcomes on the timeline), [`mirror`] (a dependent's
//! copies of the primary's incidents).

mod act;
pub mod delivery;
pub mod event;
pub mod mirror;
pub mod store;

use std::collections::HashMap;
use std::time::SystemTime;

use pantau_config::IncidentsConfig;

use crate::lifecycle::{Alert, Change, State};

/// Longest comment, in characters.
pub const MAX_COMMENT: usize = 4096;
/// Most members and timeline entries [`store`] returns with one incident.
pub const MAX_DETAIL: u32 = 1000;
/// Longest title, in characters.
const MAX_TITLE: usize = 300;

/// An incident's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IncidentState {
    Open,
    Acknowledged,
    Resolved,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "acknowledged" => Self::Acknowledged,
            "resolved" => Self::Resolved,
            _ => return None,
        })
    }
}

/// What one timeline entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    Opened,
    Joined,
    Left,
    Acknowledged,
    Commented,
    /// A member's firing or resolve was published to the notifier.
    Notified,
    Resolved,
    /// The notifier delivered a member's notification to a channel.
    Delivered,
    /// The notifier gave up delivering a member's notification to a channel.
    DeliveryFailed,
}

impl EntryKind {
    pub const ALL: [Self; 9] = [
        Self::Opened,
        Self::Joined,
        Self::Left,
        Self::Acknowledged,
        Self::Commented,
        Self::Notified,
        Self::Resolved,
        Self::Delivered,
        Self::DeliveryFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Joined => "joined",
            Self::Left => "left",
            Self::Acknowledged => "acknowledged",
            Self::Commented => "commented",
            Self::Notified => "notified",
            Self::Resolved => "resolved",
            Self::Delivered => "delivered",
            Self::DeliveryFailed => "delivery_failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: String,
    /// `depends:<dependency>` or `group:<key>`.
    pub group_key: String,
    /// The dependency its alerts share; empty for a grouping key.
    pub root_cause: String,
    pub title: String,
    pub state: IncidentState,
    /// The highest severity of its alerts (`info`, `warning`, `critical`).
    pub severity: String,
    pub opened_at: SystemTime,
    pub updated_at: SystemTime,
    /// When its latest alert joined.
    pub joined_at: SystemTime,
    pub acknowledged_at: Option<SystemTime>,
    pub acknowledged_by: String,
    pub resolved_at: Option<SystemTime>,
    /// Alerts that joined, and those still open.
    pub alerts: u32,
    pub open_alerts: u32,
}

/// One entry of a timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: EntryKind,
    pub at: SystemTime,
    /// Who acknowledged or commented; empty for the engine.
    pub actor: String,
    /// The alert that joined, left or was notified.
    pub alert_id: String,
    pub text: String,
}

/// An alert joining or leaving.
#[derive(Debug, Clone, PartialEq)]
pub enum Member {
    Join { alert_id: String, at: SystemTime },
    Leave { alert_id: String, at: SystemTime },
}

/// What one change does to one incident: its new row, a member, and new
/// timeline entries (the last one is what the bus event says).
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub incident: Incident,
    pub member: Option<Member>,
    pub entries: Vec<Entry>,
}

fn rank(severity: &str) -> u8 {
    match severity {
        "critical" => 3,
        "warning" => 2,
        "info" => 1,
        _ => 0,
    }
}

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Where an alert belongs: its key, and the root cause it shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    pub key: String,
    pub root_cause: String,
}

impl Grouping {
    /// The grouping of `a` by its labels (`alertname` is the rule id).
    pub fn by_labels(a: &Alert, group_by: &[String]) -> Self {
        let values: Vec<String> = group_by
            .iter()
            .map(|l| {
                let v = if l == "alertname" {
                    Some(&a.rule_id)
                } else {
                    a.labels.get(l)
                };
                format!("{l}={}", v.map_or("", String::as_str))
            })
            .collect();
        Self {
            key: format!("group:{}", values.join(",")),
            root_cause: String::new(),
        }
    }

    /// The grouping of alerts held by, or about, the dependency `dep`.
    pub fn by_cause(dep: &str) -> Self {
        Self {
            key: format!("depends:{dep}"),
            root_cause: dep.to_owned(),
        }
    }
}

/// The open incidents, their keys and open members, in memory. Cloned as
/// a whole only to take back an alert raised by hand that could not be
/// stored.
#[derive(Debug, Default, Clone)]
pub struct Incidents {
    cfg: IncidentsConfig,
    /// Not yet resolved, by id.
    open: HashMap<String, Incident>,
    /// Group key → the newest open incident of that key.
    by_key: HashMap<String, String>,
    /// Open alert id → its incident.
    members: HashMap<String, String>,
}

impl Incidents {
    pub fn new(cfg: IncidentsConfig) -> Self {
        Self { cfg, ..Self::default() }
    }

    /// Takes the open incidents and their open members back (from the store).
    pub fn restore(&mut self, open: Vec<Incident>, members: Vec<(String, String)>) {
        self.open.clear();
        self.by_key.clear();
        self.members.clear();
        let mut open = open;
        open.sort_by_key(|i| i.opened_at);
        for i in open {
            self.by_key.insert(i.group_key.clone(), i.id.clone());
            self.open.insert(i.id.clone(), i);
        }
        for (incident, alert) in members {
            if self.open.contains_key(&incident) {
                self.members.insert(alert, incident);
            }
        }
    }

    pub fn group_by(&self) -> &[String] {
        &self.cfg.group_by
    }

    /// The open incident `id`.
    pub fn get(&self, id: &str) -> Option<&Incident> {
        self.open.get(id)
    }

    /// The incident of the open alert `alert_id`.
    pub fn of_alert(&self, alert_id: &str) -> Option<&Incident> {
        self.members.get(alert_id).and_then(|i| self.open.get(i))
    }

    /// The open alerts of incident `id`.
    pub fn open_members(&self, id: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .members
            .iter()
            .filter(|(_, i)| *i == id)
            .map(|(a, _)| a.clone())
            .collect();
        out.sort();
        out
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// What `c` does to incidents, applied here; `grouping` says where a
    /// firing alert belongs (asked only for an alert that is in none).
    pub fn follow(&mut self, c: &Change, grouping: impl FnOnce(&Self) -> Grouping) -> Option<Write> {
        let a = &c.alert;
        let now = c.transition.at;
        match c.transition.state {
            State::Firing if !self.members.contains_key(&a.id) => {
                let g = grouping(self);
                Some(self.join(a, &g, now))
            }
            State::Firing => None,
            State::Acknowledged => {
                let id = self.members.get(&a.id)?.clone();
                let inc = self.open.get_mut(&id)?;
                inc.updated_at = now;
                Some(Write {
                    incident: inc.clone(),
                    member: None,
                    entries: vec![Entry {
                        kind: EntryKind::Acknowledged,
                        at: now,
                        actor: c.transition.actor.clone(),
                        alert_id: a.id.clone(),
                        text: c.transition.comment.clone(),
                    }],
                })
            }
            State::Resolved => {
                let id = self.members.remove(&a.id)?;
                let inc = self.open.get_mut(&id)?;
                inc.open_alerts = inc.open_alerts.saturating_sub(1);
                inc.updated_at = now;
                let mut entries = vec![Entry {
                    kind: EntryKind::Left,
                    at: now,
                    actor: c.transition.actor.clone(),
                    alert_id: a.id.clone(),
                    text: clip(&a.summary, MAX_TITLE),
                }];
                if a.notified {
                    entries.push(notified(a, now, "its resolve went to the notifier"));
                }
                let mut done = inc.clone();
                if done.open_alerts == 0 && !self.members.values().any(|i| *i == id) {
                    done.state = IncidentState::Resolved;
                    done.resolved_at = Some(now);
                    entries.push(Entry {
                        kind: EntryKind::Resolved,
                        at: now,
                        actor: String::new(),
                        alert_id: String::new(),
                        text: "its last alert resolved".into(),
                    });
                    self.open.remove(&id);
                    if self.by_key.get(&done.group_key) == Some(&id) {
                        self.by_key.remove(&done.group_key);
                    }
                }
                Some(Write {
                    incident: done,
                    member: Some(Member::Leave {
                        alert_id: a.id.clone(),
                        at: now,
                    }),
                    entries,
                })
            }
        }
    }

    fn join(&mut self, a: &Alert, g: &Grouping, now: SystemTime) -> Write {
        let is_root = !g.root_cause.is_empty();
        let current = self
            .by_key
            .get(&g.key)
            .and_then(|id| self.open.get(id))
            .filter(|i| is_root || now.duration_since(i.joined_at).unwrap_or_default() < self.cfg.window);
        let mut entries = Vec::new();
        let mut inc = if let Some(i) = current {
            i.clone()
        } else {
            let title = if is_root && a.suppressed_by.starts_with("depends:") {
                format!("{} is down", g.root_cause)
            } else {
                clip(&a.summary, MAX_TITLE)
            };
            entries.push(Entry {
                kind: EntryKind::Opened,
                at: now,
                actor: String::new(),
                alert_id: a.id.clone(),
                text: g.key.clone(),
            });
            Incident {
                // Unique: an alert opens at most one incident.
                id: format!("inc-{}", a.id),
                group_key: g.key.clone(),
                root_cause: g.root_cause.clone(),
                title,
                state: IncidentState::Open,
                severity: a.severity.clone(),
                opened_at: now,
                updated_at: now,
                joined_at: now,
                acknowledged_at: None,
                acknowledged_by: String::new(),
                resolved_at: None,
                alerts: 0,
                open_alerts: 0,
            }
        };
        // The root cause's own alert names the incident.
        if is_root && a.suppressed_by.is_empty() {
            inc.title = clip(&a.summary, MAX_TITLE);
        }
        if rank(&a.severity) > rank(&inc.severity) {
            inc.severity.clone_from(&a.severity);
        }
        inc.alerts = inc.alerts.saturating_add(1);
        inc.open_alerts = inc.open_alerts.saturating_add(1);
        inc.updated_at = now;
        inc.joined_at = now;
        let text = if a.suppressed_by.is_empty() {
            clip(&a.summary, MAX_TITLE)
        } else {
            format!("{} (held: {})", clip(&a.summary, MAX_TITLE), a.suppressed_by)
        };
        entries.push(Entry {
            kind: EntryKind::Joined,
            at: now,
            actor: String::new(),
            alert_id: a.id.clone(),
            text,
        });
        if a.notified {
            entries.push(notified(a, now, "its firing went to the notifier"));
        }
        self.members.insert(a.id.clone(), inc.id.clone());
        self.by_key.insert(inc.group_key.clone(), inc.id.clone());
        self.open.insert(inc.id.clone(), inc.clone());
        Write {
            incident: inc,
            member: Some(Member::Join {
                alert_id: a.id.clone(),
                at: now,
            }),
            entries,
        }
    }

    /// A person acknowledges the open incident `id` (its alerts are the
    /// caller's); the write, or `None` when it is not open here.
    pub fn acknowledge(&mut self, id: &str, actor: &str, comment: &str, now: SystemTime) -> Option<Write> {
        let inc = self.open.get_mut(id)?;
        inc.state = IncidentState::Acknowledged;
        inc.acknowledged_at = Some(now);
        actor.clone_into(&mut inc.acknowledged_by);
        inc.updated_at = now;
        Some(Write {
            incident: inc.clone(),
            member: None,
            entries: vec![Entry {
                kind: EntryKind::Acknowledged,
                at: now,
                actor: actor.to_owned(),
                alert_id: String::new(),
                text: comment.to_owned(),
            }],
        })
    }

    /// Puts an incident back as it was, with `alert_id` its open member (a
    /// person's change that could not be stored).
    pub fn undo(&mut self, before: Incident, alert_id: &str) {
        self.members.insert(alert_id.to_owned(), before.id.clone());
        self.by_key
            .entry(before.group_key.clone())
            .or_insert_with(|| before.id.clone());
        self.open.insert(before.id.clone(), before);
    }

    /// Puts incidents back as they were (an acknowledgement that could not be stored).
    pub fn put_back(&mut self, before: Incident) {
        self.open.insert(before.id.clone(), before);
    }

    /// Marks the notification of an alert whose silence, maintenance window
    /// or parent ended; `None` when it is in no open incident.
    pub fn released(&mut self, a: &Alert, now: SystemTime) -> Option<Write> {
        let id = self.members.get(&a.id)?;
        let inc = self.open.get_mut(id)?;
        inc.updated_at = now;
        Some(Write {
            incident: inc.clone(),
            member: None,
            entries: vec![notified(
                a,
                now,
                "its firing went to the notifier once what held it ended",
            )],
        })
    }
}

fn notified(a: &Alert, at: SystemTime, text: &str) -> Entry {
    Entry {
        kind: EntryKind::Notified,
        at,
        actor: String::new(),
        alert_id: a.id.clone(),
        text: text.to_owned(),
    }
}

/// Why a comment cannot be kept: it names the field.
pub fn check_comment(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("`text` is required: 1 to 4096 characters".into());
    }
    let n = text.chars().count();
    if n > MAX_COMMENT {
        return Err(format!(
            "`text` is {n} characters long; at most {MAX_COMMENT} are allowed"
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err("`text` holds control characters; only newlines and tabs are allowed".into());
    }
    Ok(())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
