//! A dependent's copies of the primary's incidents: every `IncidentEvent`
//! (`pantau.incident.<kind>.<incident_id>`) another instance's engine
//! published is stored as that incident's row, member and timeline entry,
//! read-only, like the copies of alerts ([`crate::cluster`]), so a
//! dependent's REST and gRPC incident lists are the cluster's. Each entry is
//! written once (its key is a digest of what it says), so a message the bus
//! hands over again adds nothing. On promotion the engine restores the open
//! incidents from these copies (`Engine::adopt`).
//!
//! What an event does not carry is kept from the stored copy: who
//! acknowledged the incident (set by an `acknowledged` entry without an
//! alert), when it resolved, when its latest alert joined.

use std::time::SystemTime;

use pantau_proto::v1 as pb;
use sha2::{Digest, Sha256};

use super::{Entry, EntryKind, Incident, IncidentState, MAX_COMMENT, MAX_TITLE, Member, Write, clip};
use crate::engine::{Engine, EngineError};
use crate::metrics as m;

/// Longest group key or root cause kept from another engine's event.
const MAX_KEY: usize = 4096;
/// Longest actor kept.
const MAX_ACTOR: usize = 256;

/// Why an incident event cannot be copied; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("incident event: `{field}` {why}")]
pub struct BadIncident {
    pub field: &'static str,
    pub why: String,
}

fn bad(field: &'static str, why: impl Into<String>) -> BadIncident {
    BadIncident { field, why: why.into() }
}

fn severity(v: i32) -> Result<&'static str, BadIncident> {
    match pb::Severity::try_from(v) {
        Ok(pb::Severity::Info) => Ok("info"),
        Ok(pb::Severity::Warning) => Ok("warning"),
        Ok(pb::Severity::Critical) => Ok("critical"),
        _ => Err(bad("severity", format!("{v} is not info, warning or critical"))),
    }
}

fn kind(v: i32) -> Result<EntryKind, BadIncident> {
    let k = pb::IncidentEntryKind::try_from(v).map_err(|_| bad("entry.kind", format!("{v} is not a known kind")))?;
    let token = pantau_core::bus::event::incident_kind_token(k);
    EntryKind::parse(&token).ok_or_else(|| bad("entry.kind", format!("{v} is not a known kind")))
}

/// The write an event from another engine states, given the stored copy
/// (if any); `now` stands for a time the event does not carry sensibly.
pub fn copy_of(ev: &pb::IncidentEvent, stored: Option<&Incident>, now: SystemTime) -> Result<Write, BadIncident> {
    if !pantau_config::is_token(&ev.incident_id) {
        return Err(bad(
            "incident_id",
            format!(
                "`{}` is not 1–128 letters, digits, `-` or `_`",
                pantau_config::types::quote(&ev.incident_id)
            ),
        ));
    }
    let state = match pb::IncidentState::try_from(ev.state) {
        Ok(pb::IncidentState::Open) => IncidentState::Open,
        Ok(pb::IncidentState::Acknowledged) => IncidentState::Acknowledged,
        Ok(pb::IncidentState::Resolved) => IncidentState::Resolved,
        _ => {
            return Err(bad(
                "state",
                format!("{} is not open, acknowledged or resolved", ev.state),
            ));
        }
    };
    let severity = severity(ev.severity)?;
    let opened_at = ev
        .opened_at
        .as_ref()
        .and_then(pantau_core::time::from_timestamp)
        .ok_or_else(|| bad("opened_at", "is missing or out of range"))?;
    let e = ev.entry.as_ref().ok_or_else(|| bad("entry", "is missing"))?;
    let kind = kind(e.kind)?;
    if !e.alert_id.is_empty() && !pantau_config::is_token(&e.alert_id) {
        return Err(bad(
            "entry.alert_id",
            format!(
                "`{}` is not 1–128 letters, digits, `-` or `_`",
                pantau_config::types::quote(&e.alert_id)
            ),
        ));
    }
    // A time before the incident opened or far ahead is not believed.
    let at =
        e.at.as_ref()
            .and_then(pantau_core::time::from_timestamp)
            .filter(|t| *t >= opened_at && *t <= now + std::time::Duration::from_secs(3600))
            .unwrap_or(now.max(opened_at));
    let entry = Entry {
        kind,
        at,
        actor: clip(&e.actor, MAX_ACTOR),
        alert_id: e.alert_id.clone(),
        text: clip(&e.text, MAX_COMMENT + MAX_TITLE),
    };
    let incident_ack = kind == EntryKind::Acknowledged && entry.alert_id.is_empty();
    let incident = Incident {
        id: ev.incident_id.clone(),
        group_key: clip(&ev.group_key, MAX_KEY),
        root_cause: clip(&ev.root_cause, MAX_KEY),
        title: clip(&ev.title, MAX_TITLE),
        state,
        severity: severity.to_owned(),
        opened_at,
        updated_at: stored.map_or(at, |s| s.updated_at.max(at)),
        joined_at: if kind == EntryKind::Joined {
            at
        } else {
            stored.map_or(opened_at, |s| s.joined_at)
        },
        acknowledged_at: if incident_ack {
            Some(at)
        } else {
            stored.and_then(|s| s.acknowledged_at)
        },
        acknowledged_by: if incident_ack {
            entry.actor.clone()
        } else {
            stored.map(|s| s.acknowledged_by.clone()).unwrap_or_default()
        },
        resolved_at: match state {
            IncidentState::Resolved => stored.and_then(|s| s.resolved_at).or(Some(at)),
            IncidentState::Open | IncidentState::Acknowledged => None,
        },
        alerts: ev.alerts,
        open_alerts: ev.open_alerts.min(ev.alerts),
    };
    let member = match kind {
        EntryKind::Joined if !entry.alert_id.is_empty() => Some(Member::Join {
            alert_id: entry.alert_id.clone(),
            at,
        }),
        EntryKind::Left if !entry.alert_id.is_empty() => Some(Member::Leave {
            alert_id: entry.alert_id.clone(),
            at,
        }),
        _ => None,
    };
    Ok(Write {
        incident,
        member,
        entries: vec![entry],
    })
}

/// The key of a copied entry: a digest of everything it says.
pub fn copy_key(ev: &pb::IncidentEvent) -> String {
    let mut h = Sha256::new();
    let e = ev.entry.clone().unwrap_or_default();
    let at = e.at.map(|t| (t.seconds, t.nanos)).unwrap_or_default();
    for part in [
        ev.incident_id.as_bytes(),
        &e.kind.to_be_bytes(),
        &at.0.to_be_bytes(),
        &at.1.to_be_bytes(),
        e.actor.as_bytes(),
        e.alert_id.as_bytes(),
        e.text.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    format!("copy:{}", hex::encode(&h.finalize()[..16]))
}

/// Why an incident event was not copied.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Bad(#[from] BadIncident),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl Engine {
    /// Keeps a copy of another instance's incident event; `false` when it is
    /// this engine's own, this engine evaluates (its incidents win), or the
    /// copy is there already.
    pub async fn mirror_incident(&self, ev: &pb::IncidentEvent, now: SystemTime) -> Result<bool, CopyError> {
        if ev.instance == self.instance || self.evaluates() {
            return Ok(false);
        }
        let stored = if pantau_config::is_token(&ev.incident_id) {
            self.store()
                .incident(&ev.incident_id)
                .await
                .map_err(EngineError::from)?
        } else {
            None
        };
        let write = copy_of(ev, stored.as_ref(), now)?;
        let fresh = self
            .store()
            .write_keyed(&write, &copy_key(ev))
            .await
            .map_err(EngineError::from)?;
        let result = if fresh { m::COPY_STORED } else { m::COPY_DUPLICATE };
        metrics::counter!(m::INCIDENT_COPIES_TOTAL, "result" => result).increment(1);
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pantau_core::time::to_timestamp;
    use std::time::{Duration, UNIX_EPOCH};

    fn t(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn ev(kind: pb::IncidentEntryKind, at: u64) -> pb::IncidentEvent {
        pb::IncidentEvent {
            incident_id: "inc-a1".into(),
            state: pb::IncidentState::Open.into(),
            title: "uplink is down".into(),
            severity: pb::Severity::Critical.into(),
            group_key: "depends:target:uplink".into(),
            root_cause: "target:uplink".into(),
            entry: Some(pb::IncidentEntry {
                kind: kind.into(),
                at: Some(to_timestamp(t(at))),
                actor: String::new(),
                alert_id: "a2".into(),
                text: "joined".into(),
            }),
            alerts: 2,
            open_alerts: 2,
            opened_at: Some(to_timestamp(t(0))),
            instance: "jkt-1".into(),
        }
    }

    #[test]
    fn a_copy_keeps_what_the_event_does_not_say() {
        let w = copy_of(&ev(pb::IncidentEntryKind::Joined, 5), None, t(100)).unwrap();
        assert_eq!(w.incident.joined_at, t(5));
        assert_eq!(
            w.member,
            Some(Member::Join {
                alert_id: "a2".into(),
                at: t(5)
            })
        );
        let mut ack = ev(pb::IncidentEntryKind::Acknowledged, 9);
        ack.state = pb::IncidentState::Acknowledged.into();
        let e = ack.entry.as_mut().unwrap();
        e.alert_id.clear();
        e.actor = "dina".into();
        let acked = copy_of(&ack, Some(&w.incident), t(100)).unwrap();
        assert_eq!(
            (acked.incident.acknowledged_by.as_str(), acked.incident.acknowledged_at),
            ("dina", Some(t(9)))
        );
        assert_eq!(acked.incident.joined_at, t(5), "kept from the copy");
        let mut done = ev(pb::IncidentEntryKind::Resolved, 20);
        done.state = pb::IncidentState::Resolved.into();
        let done = copy_of(&done, Some(&acked.incident), t(100)).unwrap();
        assert_eq!(done.incident.acknowledged_by, "dina");
        assert_eq!(done.incident.resolved_at, Some(t(20)));
        assert_eq!(done.member, None);
    }

    #[test]
    fn hostile_events_are_refused_naming_the_field_or_bounded() {
        let huge = "x".repeat(1 << 20);
        let cases: Vec<(pb::IncidentEvent, &str)> = vec![
            (
                pb::IncidentEvent {
                    incident_id: huge.clone(),
                    ..ev(pb::IncidentEntryKind::Joined, 1)
                },
                "incident_id",
            ),
            (
                pb::IncidentEvent {
                    state: 42,
                    ..ev(pb::IncidentEntryKind::Joined, 1)
                },
                "state",
            ),
            (
                pb::IncidentEvent {
                    severity: 99,
                    ..ev(pb::IncidentEntryKind::Joined, 1)
                },
                "severity",
            ),
            (
                pb::IncidentEvent {
                    opened_at: Some(prost_types::Timestamp {
                        seconds: i64::MIN,
                        nanos: 0,
                    }),
                    ..ev(pb::IncidentEntryKind::Joined, 1)
                },
                "opened_at",
            ),
            (
                pb::IncidentEvent {
                    entry: None,
                    ..ev(pb::IncidentEntryKind::Joined, 1)
                },
                "entry",
            ),
        ];
        for (e, field) in cases {
            let err = copy_of(&e, None, t(100)).unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(err.to_string().len() < 400);
        }
        let mut odd = ev(pb::IncidentEntryKind::Joined, 1);
        odd.entry.as_mut().unwrap().kind = 77;
        assert_eq!(copy_of(&odd, None, t(100)).unwrap_err().field, "entry.kind");
        let mut odd = ev(pb::IncidentEntryKind::Joined, 1);
        odd.entry.as_mut().unwrap().alert_id = huge.clone();
        assert_eq!(copy_of(&odd, None, t(100)).unwrap_err().field, "entry.alert_id");
        // Huge strings are clipped, absurd times replaced, counts bounded.
        let mut big = ev(pb::IncidentEntryKind::Joined, 1);
        big.title = huge.clone();
        big.group_key = huge.clone();
        big.open_alerts = u32::MAX;
        let e = big.entry.as_mut().unwrap();
        e.text = huge.clone();
        e.actor = huge;
        e.at = Some(prost_types::Timestamp {
            seconds: 253_402_300_800 * 10,
            nanos: 0,
        });
        let w = copy_of(&big, None, t(100)).unwrap();
        assert!(w.incident.title.chars().count() <= MAX_TITLE + 1);
        assert!(w.incident.group_key.chars().count() <= MAX_KEY + 1);
        assert!(w.entries[0].text.chars().count() <= MAX_COMMENT + MAX_TITLE + 1);
        assert!(w.entries[0].actor.chars().count() <= MAX_ACTOR + 1);
        assert_eq!(w.entries[0].at, t(100));
        assert_eq!(w.incident.open_alerts, 2);
    }

    #[test]
    fn the_key_of_a_copy_is_stable_and_distinct() {
        let a = ev(pb::IncidentEntryKind::Joined, 1);
        assert_eq!(copy_key(&a), copy_key(&a.clone()));
        assert_ne!(copy_key(&a), copy_key(&ev(pb::IncidentEntryKind::Joined, 2)));
        assert_ne!(copy_key(&a), copy_key(&ev(pb::IncidentEntryKind::Left, 1)));
        assert!(copy_key(&a).len() < 40);
    }
}
