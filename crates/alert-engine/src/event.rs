//! Alert transitions as bus messages (`AlertEvent` on
//! `pantau.alert.<state>.<alert_id>`), and back: another instance's engine
//! keeps a copy of the primary's alerts from them (see [`crate::cluster`]).

use std::collections::HashMap;
use std::time::SystemTime;

use pantau_core::time::{from_timestamp, to_timestamp};
use pantau_proto::v1::{AlertEvent, AlertState, Severity};

use crate::lifecycle::{Alert, Change, State, Transition};

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
        instance: String::new(),
    }
}

/// Why an alert event cannot be kept as an alert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadEvent {
    #[error("alert event: `{0}` is empty")]
    Empty(&'static str),
    #[error("alert event `{id}`: state {state} is not firing, acknowledged or resolved")]
    State { id: String, state: i32 },
    #[error("alert event `{id}`: severity {severity} is not info, warning or critical")]
    Severity { id: String, severity: i32 },
    #[error("alert event `{0}`: starts_at is missing or before 1970")]
    StartsAt(String),
}

/// The alert and transition an event states (another engine's), as this
/// engine stores it; `now` stands for the times the event does not carry.
pub fn from_event(ev: &AlertEvent, now: SystemTime) -> Result<Change, BadEvent> {
    for (field, v) in [
        ("alert_id", &ev.alert_id),
        ("rule_id", &ev.rule_id),
        ("fingerprint", &ev.fingerprint),
    ] {
        if v.is_empty() {
            return Err(BadEvent::Empty(field));
        }
    }
    let state = match AlertState::try_from(ev.state) {
        Ok(AlertState::Firing) => State::Firing,
        Ok(AlertState::Acknowledged) => State::Acknowledged,
        Ok(AlertState::Resolved) => State::Resolved,
        _ => {
            return Err(BadEvent::State {
                id: ev.alert_id.clone(),
                state: ev.state,
            });
        }
    };
    let severity = match Severity::try_from(ev.severity) {
        Ok(Severity::Info) => "info",
        Ok(Severity::Warning) => "warning",
        Ok(Severity::Critical) => "critical",
        _ => {
            return Err(BadEvent::Severity {
                id: ev.alert_id.clone(),
                severity: ev.severity,
            });
        }
    };
    let started_at = ev
        .starts_at
        .as_ref()
        .and_then(from_timestamp)
        .ok_or_else(|| BadEvent::StartsAt(ev.alert_id.clone()))?;
    let note = |k: &str| ev.annotations.get(k).cloned().unwrap_or_default();
    let resolved_at = (state == State::Resolved).then(|| ev.ends_at.as_ref().and_then(from_timestamp).unwrap_or(now));
    let acknowledged = state == State::Acknowledged;
    let alert = Alert {
        id: ev.alert_id.clone(),
        fingerprint: ev.fingerprint.clone(),
        rule_id: ev.rule_id.clone(),
        rule_name: ev.rule_name.clone(),
        state,
        severity: severity.to_owned(),
        summary: ev.summary.clone(),
        labels: ev.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        source: note("source"),
        resource: note("resource"),
        value: note("value"),
        started_at,
        updated_at: resolved_at.unwrap_or(now),
        acknowledged_at: acknowledged.then_some(now),
        acknowledged_by: if acknowledged { ev.actor.clone() } else { String::new() },
        acknowledge_comment: if acknowledged { note("comment") } else { String::new() },
        resolved_at,
        resolved_by: if resolved_at.is_some() {
            ev.actor.clone()
        } else {
            String::new()
        },
        suppressed_by: String::new(),
        notified: true,
        restored: false,
    };
    Ok(Change {
        transition: Transition {
            alert_id: alert.id.clone(),
            state,
            at: alert.updated_at,
            actor: ev.actor.clone(),
            comment: note("comment"),
        },
        alert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(state: State) -> Change {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
        let alert = Alert {
            id: "a1".into(),
            fingerprint: "f1".into(),
            rule_id: "r".into(),
            rule_name: "rule".into(),
            state,
            severity: "critical".into(),
            summary: "web is down".into(),
            labels: [("target".to_owned(), "web".to_owned())].into_iter().collect(),
            source: "consensus".into(),
            resource: "web".into(),
            value: "0".into(),
            started_at: at,
            updated_at: at,
            acknowledged_at: None,
            acknowledged_by: String::new(),
            acknowledge_comment: String::new(),
            resolved_at: (state == State::Resolved).then_some(at),
            resolved_by: String::new(),
            suppressed_by: String::new(),
            notified: true,
            restored: false,
        };
        Change {
            transition: Transition {
                alert_id: "a1".into(),
                state,
                at,
                actor: String::new(),
                comment: String::new(),
            },
            alert,
        }
    }

    #[test]
    fn an_event_comes_back_as_the_alert_it_was_made_from() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(2_000);
        for state in [State::Firing, State::Resolved] {
            let c = change(state);
            let back = from_event(&to_event(&c), now).unwrap();
            assert_eq!(back.alert.id, c.alert.id);
            assert_eq!(back.alert.fingerprint, c.alert.fingerprint);
            assert_eq!(back.alert.state, state);
            assert_eq!(back.alert.labels, c.alert.labels);
            assert_eq!(back.alert.resource, "web");
            assert_eq!(back.alert.started_at, c.alert.started_at);
            assert_eq!(back.alert.resolved_at, c.alert.resolved_at);
        }
    }

    #[test]
    fn a_hostile_event_is_refused_naming_what_is_wrong() {
        let now = SystemTime::now();
        let good = to_event(&change(State::Firing));
        let mut e = good.clone();
        e.alert_id.clear();
        assert_eq!(from_event(&e, now).unwrap_err(), BadEvent::Empty("alert_id"));
        let mut e = good.clone();
        e.state = 99;
        assert!(matches!(from_event(&e, now), Err(BadEvent::State { state: 99, .. })));
        let mut e = good.clone();
        e.state = 0;
        assert!(from_event(&e, now).is_err(), "an unspecified state is refused");
        let mut e = good.clone();
        e.severity = -3;
        assert!(matches!(
            from_event(&e, now),
            Err(BadEvent::Severity { severity: -3, .. })
        ));
        let mut e = good.clone();
        e.starts_at = None;
        assert_eq!(from_event(&e, now).unwrap_err(), BadEvent::StartsAt("a1".into()));
        let mut e = good;
        e.starts_at = Some(pantau_proto::prost_types::Timestamp { seconds: -5, nanos: 0 });
        assert!(from_event(&e, now).is_err());
    }
}
