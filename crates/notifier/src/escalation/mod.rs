//! Escalation: an alert nobody acknowledges is notified again, and to more
//! people, on the schedule of the policy its route names
//! (`notifier.escalations`); an acknowledged one that does not resolve is
//! reminded of. The schedule is durable (the `escalations` table), so a
//! restart neither loses nor repeats a step, and each send has its own
//! idempotency key (the notification's revision names the policy and the
//! step's time), which the dedup of redelivered events would otherwise
//! swallow.
//!
//! - [`schedule`]: which step is due when, to which channels.
//! - [`store`]: the table, and sending a step atomically with its deliveries.

pub mod schedule;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use pantau_core::store::StoreError;
use tokio_util::sync::CancellationToken;

use crate::Notifier;
use crate::metrics as m;
use crate::notification::Notification;
use crate::store::{NewDelivery, now_ms};
pub use schedule::Policy;
pub use store::{ACKNOWLEDGED, DONE, Escalation, EscalationStore, FIRING};

/// Most escalations stepped in one pass.
const BATCH: i64 = 256;

/// What a step is: a repeat or step while unacknowledged, or a reminder.
pub const KIND_ESCALATION: &str = "escalation";
pub const KIND_REMINDER: &str = "reminder";

/// The notification of one step: `n` with a title saying so and a revision
/// naming the policy and the step, so its deliveries get keys of their own.
pub fn step_notification(n: &Notification, kind: &str, policy: &str, at_ms: i64) -> Notification {
    let since = pantau_config::duration::format(Duration::from_millis(u64::try_from(at_ms).unwrap_or(0)));
    let mut step = n.clone();
    step.title = match kind {
        KIND_REMINDER => format!("Reminder, acknowledged {since} ago and still open: {}", n.title),
        _ => format!("Not acknowledged after {since}: {}", n.title),
    };
    step.revision = format!("{}|{kind}:{policy}:{at_ms}", n.revision);
    step
}

impl Notifier {
    /// Follows the escalations of the alert `n` is about: a firing starts
    /// one per policy of its routes, an acknowledgement turns them into
    /// reminders (or ends them), a resolve ends them.
    pub(crate) async fn follow_escalations(&self, n: &Notification) -> Result<(), StoreError> {
        match n.status.as_str() {
            "firing" => self.start_escalations(n).await,
            "acknowledged" => self.acknowledge_escalations(n).await,
            _ => {
                let ended = self.escalations.finish(&n.source, &n.key).await?;
                if ended > 0 {
                    tracing::info!(alert = %n.key, escalations = ended, "escalation ended: resolved");
                }
                Ok(())
            }
        }
    }

    async fn start_escalations(&self, n: &Notification) -> Result<(), StoreError> {
        let now = now_ms();
        let json = serde_json::to_string(n).unwrap_or_default();
        let rows: Vec<Escalation> = self
            .routes
            .escalations(n)
            .into_iter()
            .filter_map(|(policy, channels)| {
                let p = self.policies.get(&policy)?;
                Some(Escalation {
                    source: n.source.clone(),
                    alert_key: n.key.clone(),
                    next_at: p.next_escalation(0).map_or(0, |t| now + t),
                    policy,
                    channels,
                    notification: json.clone(),
                    state: FIRING.to_owned(),
                    started_at: now,
                    sent: 0,
                })
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let fresh = self.escalations.start(&rows).await?;
        if fresh > 0 {
            tracing::info!(alert = %n.key, escalations = fresh, "escalation started");
            self.wake_escalations.notify_one();
        }
        Ok(())
    }

    async fn acknowledge_escalations(&self, n: &Notification) -> Result<(), StoreError> {
        let json = serde_json::to_string(n).unwrap_or_default();
        for e in self.escalations.of_alert(&n.source, &n.key, FIRING).await? {
            let now = now_ms();
            let next = self.policies.get(&e.policy).and_then(|p| p.next_reminder(0));
            let (state, next_at) = match next {
                Some(t) => (ACKNOWLEDGED, now + t),
                None => (DONE, 0),
            };
            if self.escalations.acknowledge(&e, state, &json, now, next_at).await? {
                tracing::info!(alert = %n.key, policy = %e.policy, state, actor = %n.alerts.first().map(|a| a.actor.as_str()).unwrap_or_default(), "escalation stopped: acknowledged");
            }
        }
        self.wake_escalations.notify_one();
        Ok(())
    }

    /// Sends every escalation step due at `now` (ms since the epoch); how
    /// many steps were sent. A step another replica sent first, or that an
    /// acknowledgement or resolve overtook, is not sent.
    pub async fn escalate_due(&self, now: i64) -> Result<usize, StoreError> {
        let mut sent = 0;
        for e in self.escalations.due(now, BATCH).await? {
            let Some(policy) = self.policies.get(&e.policy) else {
                tracing::warn!(alert = %e.alert_key, policy = %e.policy, "escalation policy no longer configured; escalation ended");
                self.escalations.finish(&e.source, &e.alert_key).await?;
                continue;
            };
            let Ok(n) = serde_json::from_str::<Notification>(&e.notification) else {
                tracing::error!(alert = %e.alert_key, policy = %e.policy, "stored escalation notification does not decode; escalation ended");
                self.escalations.finish(&e.source, &e.alert_key).await?;
                continue;
            };
            let (from, elapsed) = (e.next_at - e.started_at, now - e.started_at);
            let (kind, due) = if e.state == FIRING {
                (KIND_ESCALATION, policy.escalation_due(from, elapsed, &e.channels))
            } else {
                (KIND_REMINDER, policy.reminder_due(from, elapsed, &e.channels))
            };
            let step = step_notification(&n, kind, &policy.name, due.at);
            let json = serde_json::to_string(&step).unwrap_or_default();
            let rows: Vec<NewDelivery> = due
                .channels
                .iter()
                .filter_map(|name| self.channels.get(name).map(|ch| (name, ch)))
                .flat_map(|(name, ch)| {
                    ch.recipients()
                        .into_iter()
                        .map(|r| self.delivery_row(&step, &json, name, &r))
                        .collect::<Vec<_>>()
                })
                .collect();
            let next = due.next.map_or(0, |t| e.started_at + t);
            if self.escalations.advance(&e, next, &rows).await? {
                sent += 1;
                ::metrics::counter!(m::ESCALATION_STEPS_TOTAL, "policy" => e.policy.clone(), "kind" => kind)
                    .increment(1);
                tracing::info!(alert = %e.alert_key, policy = %e.policy, kind, at_ms = due.at, channels = ?due.channels, deliveries = rows.len(), "escalation step sent");
            }
        }
        if sent > 0 {
            self.wake.notify_one();
        }
        if let Ok(active) = self.escalations.active().await {
            ::metrics::gauge!(m::ESCALATIONS_ACTIVE).set(active as f64);
        }
        Ok(sent)
    }

    /// Steps escalations every `poll_interval` (or when one starts) until `stop`.
    pub(crate) async fn escalation_loop(self: Arc<Self>, stop: CancellationToken) {
        loop {
            if let Err(e) = self.escalate_due(now_ms()).await {
                tracing::error!(error = %e, "cannot step escalations");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake_escalations.notified() => {}
                () = tokio::time::sleep(self.cfg.poll_interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_has_its_own_key() {
        let n = Notification::test("hook");
        let a = step_notification(&n, KIND_ESCALATION, "oncall", 10_000);
        let b = step_notification(&n, KIND_ESCALATION, "oncall", 20_000);
        let r = step_notification(&n, KIND_REMINDER, "oncall", 10_000);
        let ids = [&n, &a, &b, &r].map(|x| x.delivery_id("hook", ""));
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), 4, "{ids:?}");
        assert_eq!(
            a.delivery_id("hook", ""),
            step_notification(&n, KIND_ESCALATION, "oncall", 10_000).delivery_id("hook", "")
        );
        assert!(a.title.starts_with("Not acknowledged after 10s: "), "{}", a.title);
        assert!(r.title.starts_with("Reminder, acknowledged 10s ago"), "{}", r.title);
    }
}
