//! What is notified: a [`Notification`] of one or more alerts, built from an
//! `AlertEvent` from the bus or an Alertmanager webhook group. It is stored as
//! JSON with each delivery and is what templates see.

use std::collections::BTreeMap;

use pantau_proto::v1::{AlertEvent, AlertState, Severity};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where a notification came from.
pub const SOURCE_ALERT: &str = "alert";
pub const SOURCE_ALERTMANAGER: &str = "alertmanager";
pub const SOURCE_TEST: &str = "test";

/// One notification: a single alert from the engine, or an Alertmanager group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `alert`, `alertmanager` or `test`.
    pub source: String,
    /// `firing`, `resolved` or `acknowledged`.
    pub status: String,
    /// The alert id, or the Alertmanager group key: deliveries of one key to
    /// one channel go out in order, so a resolved follows its firing.
    pub key: String,
    /// The highest severity among the alerts: `info`, `warning` or `critical`.
    pub severity: String,
    /// A one-line title.
    pub title: String,
    /// The alerts, at least one.
    pub alerts: Vec<AlertItem>,
    /// Labels every alert shares.
    pub common_labels: BTreeMap<String, String>,
    /// A link back (Alertmanager's external URL), if any.
    pub external_url: String,
    /// What makes this notification distinct (state and times); part of the idempotency key.
    pub revision: String,
    /// W3C `traceparent` of the alert event, so the delivery joins its trace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_parent: String,
}

/// One alert of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertItem {
    pub name: String,
    pub status: String,
    pub severity: String,
    pub summary: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339, empty when unknown.
    pub starts_at: String,
    /// RFC 3339, empty while firing.
    pub ends_at: String,
    pub fingerprint: String,
    /// Who acknowledged or resolved it.
    pub actor: String,
    /// A link to the source of the alert.
    pub url: String,
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info | Severity::Unspecified => "info",
    }
}

/// `info` < `warning` < `critical`; anything else counts as info.
pub fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    }
}

fn ts(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(pantau_core::time::from_timestamp)
        .filter(|t| *t > std::time::UNIX_EPOCH)
        .map(pantau_core::time::rfc3339)
        .unwrap_or_default()
}

/// Why an event cannot be notified.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidEvent {
    #[error("alert event has no alert_id")]
    NoId,
    #[error("alert event {0} has no state")]
    NoState(String),
}

impl Notification {
    /// The notification of one alert engine event.
    pub fn from_event(e: &AlertEvent) -> Result<Self, InvalidEvent> {
        if e.alert_id.is_empty() {
            return Err(InvalidEvent::NoId);
        }
        let status = match e.state() {
            AlertState::Firing => "firing",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
            AlertState::Unspecified => return Err(InvalidEvent::NoState(e.alert_id.clone())),
        };
        let severity = severity_name(e.severity()).to_owned();
        let name = if e.rule_name.is_empty() {
            e.rule_id.clone()
        } else {
            e.rule_name.clone()
        };
        let item = AlertItem {
            name: name.clone(),
            status: status.to_owned(),
            severity: severity.clone(),
            summary: e.summary.clone(),
            description: e.description.clone(),
            labels: e.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            annotations: e.annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            starts_at: ts(e.starts_at.as_ref()),
            ends_at: ts(e.ends_at.as_ref()),
            fingerprint: e.fingerprint.clone(),
            actor: e.actor.clone(),
            url: String::new(),
        };
        let title = if e.summary.is_empty() { name } else { e.summary.clone() };
        let revision = format!("{status}|{}|{}", item.starts_at, item.ends_at);
        Ok(Self {
            source: SOURCE_ALERT.to_owned(),
            status: status.to_owned(),
            key: e.alert_id.clone(),
            severity,
            title,
            common_labels: item.labels.clone(),
            alerts: vec![item],
            external_url: String::new(),
            revision,
            trace_parent: String::new(),
        })
    }

    /// A notification to test a channel.
    pub fn test(channel: &str) -> Self {
        let now = pantau_core::time::rfc3339(std::time::SystemTime::now());
        let mut labels = BTreeMap::new();
        labels.insert("alertname".to_owned(), "PantauTest".to_owned());
        labels.insert("channel".to_owned(), channel.to_owned());
        Self {
            source: SOURCE_TEST.to_owned(),
            status: "firing".to_owned(),
            key: format!("test-{channel}"),
            severity: "info".to_owned(),
            title: format!("Test notification for channel {channel}"),
            alerts: vec![AlertItem {
                name: "PantauTest".to_owned(),
                status: "firing".to_owned(),
                severity: "info".to_owned(),
                summary: "If you can read this, the channel works".to_owned(),
                description: String::new(),
                labels: labels.clone(),
                annotations: BTreeMap::new(),
                starts_at: now.clone(),
                ends_at: String::new(),
                fingerprint: String::new(),
                actor: String::new(),
                url: String::new(),
            }],
            common_labels: labels,
            external_url: String::new(),
            revision: now,
            trace_parent: String::new(),
        }
    }

    /// Several notifications for one recipient as one message: every alert,
    /// the highest severity, a title counting them by status. Each alert keeps
    /// its own status; the message's status is `firing` while any is.
    pub fn digest(parts: &[Notification]) -> Self {
        let count = |s: &str| parts.iter().filter(|n| n.status == s).count();
        let (firing, acked, resolved) = (count("firing"), count("acknowledged"), count("resolved"));
        let status = if firing > 0 {
            "firing"
        } else if acked > 0 {
            "acknowledged"
        } else {
            "resolved"
        };
        let severity = parts
            .iter()
            .map(|n| n.severity.as_str())
            .max_by_key(|s| severity_rank(s))
            .unwrap_or("info")
            .to_owned();
        let mut counts = Vec::new();
        for (n, what) in [(firing, "firing"), (acked, "acknowledged"), (resolved, "resolved")] {
            if n > 0 {
                counts.push(format!("{n} {what}"));
            }
        }
        let mut h = Sha256::new();
        for n in parts {
            h.update(n.key.as_bytes());
            h.update([0u8]);
            h.update(n.revision.as_bytes());
            h.update([0u8]);
        }
        Self {
            source: parts
                .first()
                .map_or_else(|| SOURCE_ALERT.to_owned(), |n| n.source.clone()),
            status: status.to_owned(),
            key: "group".to_owned(),
            severity,
            title: format!("{} notifications: {}", parts.len(), counts.join(", ")),
            alerts: parts.iter().flat_map(|n| n.alerts.iter().cloned()).collect(),
            common_labels: BTreeMap::new(),
            external_url: String::new(),
            revision: hex::encode(&h.finalize()[..16]),
            // A group answers to many traces; it follows the first.
            trace_parent: parts.first().map(|n| n.trace_parent.clone()).unwrap_or_default(),
        }
    }

    /// The stable idempotency key of this notification sent to `channel`
    /// (and `recipient`): the same event routed again gives the same key.
    pub fn delivery_id(&self, channel: &str, recipient: &str) -> String {
        let mut h = Sha256::new();
        for part in [
            self.source.as_str(),
            self.key.as_str(),
            self.revision.as_str(),
            channel,
            recipient,
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        hex::encode(&h.finalize()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(state: AlertState) -> AlertEvent {
        let mut e = AlertEvent {
            alert_id: "a1".into(),
            rule_id: "r1".into(),
            rule_name: "HighLatency".into(),
            summary: "web is slow".into(),
            starts_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            ..Default::default()
        };
        e.set_state(state);
        e.set_severity(Severity::Critical);
        e
    }

    #[test]
    fn event_becomes_a_notification() {
        let n = Notification::from_event(&event(AlertState::Firing)).unwrap();
        assert_eq!(n.status, "firing");
        assert_eq!(n.severity, "critical");
        assert_eq!(n.alerts[0].starts_at, "2023-11-14T22:13:20.000Z");
        assert_eq!(n.title, "web is slow");
        let mut bad = event(AlertState::Unspecified);
        assert_eq!(Notification::from_event(&bad), Err(InvalidEvent::NoState("a1".into())));
        bad.alert_id.clear();
        assert_eq!(Notification::from_event(&bad), Err(InvalidEvent::NoId));
    }

    #[test]
    fn delivery_ids_are_stable_and_distinct() {
        let f = Notification::from_event(&event(AlertState::Firing)).unwrap();
        let r = Notification::from_event(&event(AlertState::Resolved)).unwrap();
        assert_eq!(f.delivery_id("hook", ""), f.clone().delivery_id("hook", ""));
        assert_ne!(f.delivery_id("hook", ""), r.delivery_id("hook", ""));
        assert_ne!(f.delivery_id("hook", ""), f.delivery_id("mail", ""));
        assert_eq!(f.delivery_id("hook", "").len(), 32);
    }
}
