//! "Notified" is not "delivered": the notifier reports what became of each
//! delivery of an alert's notification (`DeliveryEvent` on
//! `pantau.delivery.<outcome>.<alert_id>`), and the engine writes it on the
//! timeline of the alert's incident — `delivered` via a channel, or
//! `delivery_failed` via a channel after N attempts — once per delivery and
//! outcome (the entry's key is `<kind>:<delivery id>`), so a message the
//! bus hands over again adds nothing. Only the evaluating engine consumes
//! them ([`DELIVERIES`], behind the cluster's gate); dependents copy the
//! resulting incident events ([`super::mirror`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pantau_core::bus::{Bus, BusEvent, Consumer, Delivery, HandleError, RetryPolicy, Subscription, subject};
use pantau_core::cluster::Gate;
use pantau_proto::v1 as pb;
use tokio_util::sync::CancellationToken;

use super::{Entry, EntryKind, Write};
use crate::engine::{Engine, EngineError};
use crate::metrics as m;

/// The consumer's name and durable (dead letters on
/// `pantau.deadletter.alert-engine-deliveries`).
pub const DELIVERIES: &str = "alert-engine-deliveries";

/// Longest channel type the engine keeps (the notifier's are short words).
const MAX_CHANNEL_TYPE: usize = 32;
/// Most attempts a delivery can claim (the notifier's `retry.max_attempts`
/// is far below).
const MAX_ATTEMPTS: u32 = 1_000_000;

/// One delivery outcome, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub alert_id: String,
    pub delivery_id: String,
    pub channel: String,
    pub channel_type: String,
    /// `firing`, `acknowledged` or `resolved`: what was notified.
    pub notified: &'static str,
    pub attempts: u32,
    pub delivered: bool,
    /// `none`, `no_answer`, `rate_limited`, `rejected`, `server_error`, `configuration`.
    pub error_class: String,
    pub status_code: u32,
    /// When the notifier recorded it, if the event says so sensibly.
    pub at: Option<SystemTime>,
    /// The escalation step (`escalation:<policy>:<ms>`,
    /// `reminder:<policy>:<ms>`), empty for the alert event's own notification.
    pub escalation: String,
}

/// Why a delivery event cannot be written on a timeline; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("delivery event: `{field}` {why}")]
pub struct BadDelivery {
    pub field: &'static str,
    pub why: String,
}

fn bad(field: &'static str, why: impl Into<String>) -> BadDelivery {
    BadDelivery { field, why: why.into() }
}

fn token(field: &'static str, v: &str) -> Result<String, BadDelivery> {
    if pantau_config::is_token(v) {
        Ok(v.to_owned())
    } else {
        Err(bad(
            field,
            format!(
                "`{}` is not 1–128 letters, digits, `-` or `_`",
                pantau_config::types::quote(v)
            ),
        ))
    }
}

/// An escalation step as the notifier names it, checked: `<kind>:<policy>:<ms>`.
fn escalation(v: &str) -> Result<String, BadDelivery> {
    if v.is_empty() {
        return Ok(String::new());
    }
    let wrong = || {
        bad(
            "escalation",
            format!(
                "`{}` is not `escalation|reminder:<policy>:<milliseconds>`",
                pantau_config::types::quote(v)
            ),
        )
    };
    let mut parts = v.splitn(3, ':');
    let (Some(kind), Some(policy), Some(ms)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(wrong());
    };
    if !matches!(kind, "escalation" | "reminder") || !pantau_config::is_token(policy) || ms.parse::<u64>().is_err() {
        return Err(wrong());
    }
    Ok(v.to_owned())
}

impl Outcome {
    /// The outcome a (decoded) event states, or the first field that is wrong.
    pub fn from_event(ev: &pb::DeliveryEvent) -> Result<Self, BadDelivery> {
        let alert_id = token("alert_id", &ev.alert_id)?;
        let channel = token("channel", &ev.channel)?;
        let delivery_id = ev.delivery_id.as_str();
        if delivery_id.is_empty() || delivery_id.len() > 64 || !delivery_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(
                "delivery_id",
                format!(
                    "`{}` is not 1–64 hexadecimal digits",
                    pantau_config::types::quote(delivery_id)
                ),
            ));
        }
        if ev.channel_type.len() > MAX_CHANNEL_TYPE || !pantau_config::is_token(&ev.channel_type) {
            return Err(bad(
                "channel_type",
                format!(
                    "`{}` is not 1–{MAX_CHANNEL_TYPE} letters, digits, `-` or `_`",
                    pantau_config::types::quote(&ev.channel_type)
                ),
            ));
        }
        let notified = match pb::AlertState::try_from(ev.alert_state) {
            Ok(pb::AlertState::Firing) => "firing",
            Ok(pb::AlertState::Acknowledged) => "acknowledged",
            Ok(pb::AlertState::Resolved) => "resolved",
            _ => {
                return Err(bad(
                    "alert_state",
                    format!("{} is not firing, acknowledged or resolved", ev.alert_state),
                ));
            }
        };
        if ev.attempts == 0 || ev.attempts > MAX_ATTEMPTS {
            return Err(bad("attempts", format!("{} is not 1 to {MAX_ATTEMPTS}", ev.attempts)));
        }
        let delivered = match pb::DeliveryOutcome::try_from(ev.outcome) {
            Ok(pb::DeliveryOutcome::Delivered) => true,
            Ok(pb::DeliveryOutcome::Failed) => false,
            _ => return Err(bad("outcome", format!("{} is not delivered or failed", ev.outcome))),
        };
        let class = pb::DeliveryErrorClass::try_from(ev.error_class)
            .map_err(|_| bad("error_class", format!("{} is not a known class", ev.error_class)))?;
        if !delivered && class == pb::DeliveryErrorClass::Unspecified {
            return Err(bad("error_class", "is required for a failed delivery"));
        }
        let escalation = escalation(&ev.escalation)?;
        Ok(Self {
            escalation,
            alert_id,
            delivery_id: delivery_id.to_ascii_lowercase(),
            channel,
            channel_type: ev.channel_type.clone(),
            notified,
            attempts: ev.attempts,
            delivered,
            error_class: pantau_core::bus::event::delivery_error_class_token(class),
            status_code: ev.status_code,
            at: ev.at.as_ref().and_then(pantau_core::time::from_timestamp),
        })
    }

    pub fn kind(&self) -> EntryKind {
        if self.delivered {
            EntryKind::Delivered
        } else {
            EntryKind::DeliveryFailed
        }
    }

    /// The timeline entry's key: one per delivery and outcome.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind().as_str(), self.delivery_id)
    }

    /// What the timeline says.
    pub fn text(&self) -> String {
        let what = match self.notified {
            "firing" => "its firing",
            "acknowledged" => "its acknowledgement",
            _ => "its resolve",
        };
        let step = self.escalation.splitn(3, ':').collect::<Vec<_>>();
        let what = match step.as_slice() {
            [kind, policy, ms] => {
                let after = ms
                    .parse::<u64>()
                    .map(|ms| pantau_config::duration::format(Duration::from_millis(ms)))
                    .unwrap_or_default();
                let kind = if *kind == "reminder" { "reminder" } else { "escalation" };
                format!("{what} ({kind} `{policy}` at {after})")
            }
            _ => what.to_owned(),
        };
        let attempts = if self.attempts == 1 {
            "1 attempt".to_owned()
        } else {
            format!("{} attempts", self.attempts)
        };
        if self.delivered {
            format!(
                "{what} delivered via channel {} ({}) after {attempts}",
                self.channel, self.channel_type
            )
        } else {
            let code = if self.status_code == 0 {
                String::new()
            } else {
                format!(", last status {}", self.status_code)
            };
            format!(
                "{what} not delivered via channel {} ({}): given up after {attempts} ({}{code})",
                self.channel, self.channel_type, self.error_class
            )
        }
    }

    /// The entry's time: the notifier's, unless it is before the incident
    /// opened (less an hour) or after `now` (plus a minute); then `now`.
    fn when(&self, opened: SystemTime, now: SystemTime) -> SystemTime {
        let earliest = opened.checked_sub(Duration::from_secs(3600)).unwrap_or(opened);
        let latest = now + Duration::from_secs(60);
        self.at.filter(|t| *t >= earliest && *t <= latest).unwrap_or(now)
    }
}

/// What became of one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Written on the timeline of this incident.
    On(String),
    /// Written already (the bus handed the message over again).
    Duplicate,
    /// The alert is in no incident here (unknown, or past retention).
    NoIncident,
}

impl Recorded {
    fn label(&self) -> &'static str {
        match self {
            Self::On(_) => m::DELIVERY_RECORDED,
            Self::Duplicate => m::DELIVERY_DUPLICATE,
            Self::NoIncident => m::DELIVERY_NO_INCIDENT,
        }
    }
}

impl Engine {
    /// Writes a delivery outcome on the timeline of its alert's incident
    /// (open or resolved), in one transaction, once per delivery and
    /// outcome; publishes the incident event when it is new.
    pub async fn record_delivery(&self, o: &Outcome, now: SystemTime) -> Result<Recorded, EngineError> {
        let Some(incident_id) = self.store().incident_of_alert(&o.alert_id).await? else {
            return Ok(Recorded::NoIncident);
        };
        let mut inner = self.inner.lock().await;
        let (mut incident, open) = match inner.incidents.get(&incident_id) {
            Some(i) => (i.clone(), true),
            None => match self.store().incident(&incident_id).await? {
                Some(i) => (i, false),
                None => return Ok(Recorded::NoIncident),
            },
        };
        let at = o.when(incident.opened_at, now);
        incident.updated_at = incident.updated_at.max(at);
        let write = Write {
            incident,
            member: None,
            entries: vec![Entry {
                kind: o.kind(),
                at,
                actor: String::new(),
                alert_id: o.alert_id.clone(),
                text: o.text(),
            }],
        };
        if !self.store().write_keyed(&write, &o.key()).await? {
            return Ok(Recorded::Duplicate);
        }
        if open {
            inner.incidents.put_back(write.incident.clone());
        }
        drop(inner);
        self.publish_incident(&write).await;
        Ok(Recorded::On(incident_id))
    }

    /// Takes one delivery message: written, or ignored with a log and a
    /// count when its alert is in no incident; a bad one is refused (the
    /// consumer dead-letters it), a store failure retried.
    async fn take_delivery(&self, d: &Delivery) -> Result<(), HandleError> {
        let BusEvent::Delivery { delivery, .. } = &d.event else {
            return Err(HandleError::permanent(format!(
                "`{}` is not a delivery event",
                d.subject
            )));
        };
        let outcome = Outcome::from_event(delivery).map_err(HandleError::permanent)?;
        let recorded = self
            .record_delivery(&outcome, SystemTime::now())
            .await
            .map_err(HandleError::transient)?;
        metrics::counter!(m::DELIVERIES_TOTAL, "result" => recorded.label()).increment(1);
        match recorded {
            Recorded::On(incident) => {
                tracing::debug!(alert = %outcome.alert_id, incident = %incident, channel = %outcome.channel, kind = outcome.kind().as_str(), "delivery outcome on the incident's timeline");
            }
            Recorded::Duplicate => {
                tracing::debug!(alert = %outcome.alert_id, delivery = %outcome.delivery_id, "delivery outcome already on its timeline");
            }
            Recorded::NoIncident => {
                tracing::info!(alert = %outcome.alert_id, channel = %outcome.channel, "delivery outcome of an alert in no incident; ignored");
            }
        }
        Ok(())
    }
}

/// The consumer of every delivery outcome (`pantau.delivery.>`).
pub fn consumer(bus: &Arc<dyn Bus>) -> Consumer {
    Consumer::new(
        Arc::clone(bus),
        DELIVERIES,
        [Subscription::durable(subject::ALL_DELIVERIES, DELIVERIES)],
    )
    .with_retry(RetryPolicy::patient())
}

/// Writes delivery outcomes on timelines while this instance evaluates
/// (`gate`), until `shutdown`.
pub async fn start(
    engine: Arc<Engine>,
    bus: &Arc<dyn Bus>,
    gate: Gate,
    shutdown: CancellationToken,
) -> Result<impl Future<Output = Result<(), pantau_core::bus::BusError>> + Send + 'static, pantau_core::bus::BusError> {
    let bus = Arc::clone(bus);
    let make = move || {
        let bus = Arc::clone(&bus);
        async move { consumer(&bus) }
    };
    let handler = move |d: Delivery| {
        let engine = Arc::clone(&engine);
        async move { engine.take_delivery(&d).await }
    };
    gate.start(make, handler, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> pb::DeliveryEvent {
        pb::DeliveryEvent {
            alert_id: "abc-1".into(),
            delivery_id: "0123456789ABCDEF0123456789abcdef".into(),
            channel: "ops".into(),
            channel_type: "webhook".into(),
            alert_state: pb::AlertState::Firing.into(),
            attempts: 3,
            outcome: pb::DeliveryOutcome::Failed.into(),
            error_class: pb::DeliveryErrorClass::ServerError.into(),
            status_code: 503,
            ..Default::default()
        }
    }

    #[test]
    fn an_outcome_is_checked_field_by_field() {
        let o = Outcome::from_event(&good()).unwrap();
        assert_eq!(o.key(), "delivery_failed:0123456789abcdef0123456789abcdef");
        assert_eq!(
            o.text(),
            "its firing not delivered via channel ops (webhook): given up after 3 attempts (server_error, last status 503)"
        );
        let ok = Outcome::from_event(&pb::DeliveryEvent {
            outcome: pb::DeliveryOutcome::Delivered.into(),
            error_class: 0,
            attempts: 1,
            alert_state: pb::AlertState::Resolved.into(),
            ..good()
        })
        .unwrap();
        assert_eq!(
            ok.text(),
            "its resolve delivered via channel ops (webhook) after 1 attempt"
        );
        assert_eq!(ok.kind(), EntryKind::Delivered);
        let huge = "x".repeat(1 << 20);
        for (ev, field) in [
            (
                pb::DeliveryEvent {
                    alert_id: String::new(),
                    ..good()
                },
                "alert_id",
            ),
            (
                pb::DeliveryEvent {
                    alert_id: huge.clone(),
                    ..good()
                },
                "alert_id",
            ),
            (
                pb::DeliveryEvent {
                    alert_id: "a b".into(),
                    ..good()
                },
                "alert_id",
            ),
            (
                pb::DeliveryEvent {
                    channel: huge.clone(),
                    ..good()
                },
                "channel",
            ),
            (
                pb::DeliveryEvent {
                    channel: "<script>".into(),
                    ..good()
                },
                "channel",
            ),
            (
                pb::DeliveryEvent {
                    channel_type: "x".repeat(33),
                    ..good()
                },
                "channel_type",
            ),
            (
                pb::DeliveryEvent {
                    delivery_id: huge.clone(),
                    ..good()
                },
                "delivery_id",
            ),
            (
                pb::DeliveryEvent {
                    delivery_id: "zz".into(),
                    ..good()
                },
                "delivery_id",
            ),
            (
                pb::DeliveryEvent {
                    alert_state: 0,
                    ..good()
                },
                "alert_state",
            ),
            (
                pb::DeliveryEvent {
                    alert_state: 99,
                    ..good()
                },
                "alert_state",
            ),
            (pb::DeliveryEvent { attempts: 0, ..good() }, "attempts"),
            (
                pb::DeliveryEvent {
                    escalation: huge.clone(),
                    ..good()
                },
                "escalation",
            ),
            (
                pb::DeliveryEvent {
                    escalation: "repeat:oncall:1".into(),
                    ..good()
                },
                "escalation",
            ),
            (
                pb::DeliveryEvent {
                    escalation: "escalation:a b:1".into(),
                    ..good()
                },
                "escalation",
            ),
            (
                pb::DeliveryEvent {
                    escalation: "escalation:oncall:-1".into(),
                    ..good()
                },
                "escalation",
            ),
            (
                pb::DeliveryEvent {
                    attempts: u32::MAX,
                    ..good()
                },
                "attempts",
            ),
            (pb::DeliveryEvent { outcome: 7, ..good() }, "outcome"),
            (
                pb::DeliveryEvent {
                    error_class: -3,
                    ..good()
                },
                "error_class",
            ),
            (
                pb::DeliveryEvent {
                    error_class: 0,
                    ..good()
                },
                "error_class",
            ),
        ] {
            let e = Outcome::from_event(&ev).unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.to_string().len() < 400, "quoted briefly: {}", e.to_string().len());
        }
    }

    #[test]
    fn an_absurd_time_is_replaced_by_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let opened = now - Duration::from_secs(600);
        let mut o = Outcome::from_event(&good()).unwrap();
        for at in [
            None,
            Some(SystemTime::UNIX_EPOCH),
            Some(now + Duration::from_secs(86_400 * 365 * 5000)),
        ] {
            o.at = at;
            assert_eq!(o.when(opened, now), now);
        }
        o.at = Some(now - Duration::from_secs(5));
        assert_eq!(o.when(opened, now), now - Duration::from_secs(5));
    }
}
