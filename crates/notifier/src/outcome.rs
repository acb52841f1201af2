//! What became of each delivery of an alert engine's notification, told
//! back on the bus: a `DeliveryEvent` on
//! `pantau.delivery.<delivered|failed>.<alert_id>` once the final outcome
//! is recorded (delivered, or given up after its attempts or at once on a
//! permanent error; retries in between are not told). It carries the
//! channel's name and type, the attempts, a bounded error class and the
//! last status code — never the recipient, the channel's URL or the
//! provider's text, which may hold a key. The alert engine writes it on the
//! timeline of the alert's incident. Alertmanager groups and test sends
//! are not the engine's alerts and are not told.

use pantau_core::bus::{publish_proto, subject};
use pantau_proto::v1::{AlertState, DeliveryErrorClass, DeliveryEvent, DeliveryOutcome};

use crate::Notifier;
use crate::dispatch::Settled;
use crate::metrics as m;
use crate::notification::{Notification, SOURCE_ALERT};
use crate::store::DELIVERED;

/// The bus message of a recorded final outcome; `None` for what is not an
/// alert engine's alert (or names no state it knows).
pub(crate) fn event_of(s: &Settled, instance: &str) -> Option<DeliveryEvent> {
    let c = &s.claimed;
    if c.source != SOURCE_ALERT || c.alert_key.is_empty() {
        return None;
    }
    let alert_state = match c.state.as_str() {
        "firing" => AlertState::Firing,
        "acknowledged" => AlertState::Acknowledged,
        "resolved" => AlertState::Resolved,
        _ => return None,
    };
    let delivered = s.record.status == DELIVERED;
    let escalation = serde_json::from_str::<Notification>(&c.notification)
        .ok()
        .and_then(|n| escalation_step(&n.revision).map(str::to_owned))
        .unwrap_or_default();
    Some(DeliveryEvent {
        alert_id: c.alert_key.clone(),
        delivery_id: c.id.clone(),
        channel: c.channel.clone(),
        channel_type: s.kind.to_owned(),
        alert_state: alert_state.into(),
        attempts: u32::try_from(s.record.attempt.attempt).unwrap_or(u32::MAX),
        outcome: if delivered {
            DeliveryOutcome::Delivered
        } else {
            DeliveryOutcome::Failed
        }
        .into(),
        error_class: if delivered {
            DeliveryErrorClass::Unspecified
        } else {
            s.class
        }
        .into(),
        status_code: u32::try_from(s.record.attempt.status_code).unwrap_or(0),
        at: Some(pantau_core::time::to_timestamp(std::time::SystemTime::now())),
        instance: instance.to_owned(),
        escalation,
    })
}

/// The escalation step a revision names (`…|escalation:oncall:600000`),
/// if it is one's.
pub(crate) fn escalation_step(revision: &str) -> Option<&str> {
    let last = revision.rsplit('|').next()?;
    let mut parts = last.splitn(3, ':');
    let kind = parts.next()?;
    let _policy = parts.next()?;
    let ms = parts.next()?;
    let known = kind == crate::escalation::KIND_ESCALATION || kind == crate::escalation::KIND_REMINDER;
    (known && !ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit())).then_some(last)
}

impl Notifier {
    /// Publishes the final outcome of a recorded delivery (see the module).
    /// A failure to publish is logged and counted: the delivery itself is
    /// recorded; only its incident's timeline misses the entry.
    pub(crate) async fn report_outcome(&self, s: &Settled) {
        let Some(ev) = event_of(s, &self.instance) else { return };
        let outcome = pantau_core::bus::event::delivery_outcome_token(ev.outcome());
        let subject = subject::delivery(&outcome, &ev.alert_id);
        match publish_proto(self.bus.as_ref(), &subject, &ev).await {
            Ok(()) => {
                ::metrics::counter!(m::OUTCOMES_TOTAL, "outcome" => if ev.outcome() == DeliveryOutcome::Delivered { "delivered" } else { "failed" }, "result" => "published").increment(1);
            }
            Err(e) => {
                ::metrics::counter!(m::OUTCOMES_TOTAL, "outcome" => if ev.outcome() == DeliveryOutcome::Delivered { "delivered" } else { "failed" }, "result" => "unpublished").increment(1);
                tracing::warn!(alert = %ev.alert_id, channel = %ev.channel, error = %e, "cannot publish a delivery outcome; the delivery is recorded");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escalation_step;

    #[test]
    fn the_step_is_read_from_the_revision() {
        assert_eq!(
            escalation_step("firing|2026-01-01T00:00:00Z||escalation:oncall:600000"),
            Some("escalation:oncall:600000")
        );
        assert_eq!(
            escalation_step("firing|a|b|reminder:p:14400000"),
            Some("reminder:p:14400000")
        );
        assert_eq!(escalation_step("firing|2026-01-01T00:00:00Z|"), None);
        assert_eq!(escalation_step("firing|x|escalation:oncall:soon"), None);
        assert_eq!(escalation_step(""), None);
    }
}
