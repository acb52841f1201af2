//! Attempting deliveries: lease due ones from the store, respect each
//! channel's rate limit, render, send, and record the outcome. Failures are
//! retried with exponential backoff and jitter until `retry.max_attempts`;
//! then (or at once on a permanent error) the delivery is given up, counted
//! and reported on the bus (`pantau.event.instance.notifier`). The final
//! outcome of each delivery of an alert engine's notification — delivered,
//! or given up — is published as a `DeliveryEvent` on
//! `pantau.delivery.<delivered|failed>.<alert_id>` once it is recorded (see
//! [`crate::outcome`]), so the alert's incident says what reached whom.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tracing::Instrument;

use pantau_config::RetryConfig;
use pantau_proto::v1::{DeliveryErrorClass, EventKind, RouterEvent, Severity};
use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::Notifier;
use crate::channels::{Outcome, Outgoing};
use crate::metrics as m;
use crate::notification::Notification;
use crate::store::{Attempt, Claimed, DELIVERED, FAILED, PENDING, Record, now_ms};

/// The wait before retry number `attempt` (1 after the first failure):
/// `initial · 2^(attempt-1)` capped at `max_backoff`, of which the upper half
/// is random (jitter), so a storm of failures does not retry in lockstep.
pub fn backoff(r: &RetryConfig, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let base = r.initial_backoff.saturating_mul(1 << exp).min(r.max_backoff);
    let half = base / 2;
    let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter)
}

/// An attempt's result, to record.
pub(crate) struct Settled {
    pub(crate) claimed: Claimed,
    pub(crate) kind: &'static str,
    pub(crate) record: Record,
    /// Why it failed, when it did.
    pub(crate) class: DeliveryErrorClass,
}

/// Most deliveries sent as one grouped message.
const MAX_GROUP: i64 = 100;

/// A sliding-window limit per channel: at most `limit` sends per `period`.
#[derive(Default)]
pub struct RateLimits(Mutex<HashMap<String, VecDeque<Instant>>>);

impl RateLimits {
    /// Takes a slot now, or says how long until one frees.
    pub fn acquire(&self, channel: &str, limit: u32, period: Duration, now: Instant) -> Result<(), Duration> {
        if limit == 0 {
            return Ok(());
        }
        let mut all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let sent = all.entry(channel.to_owned()).or_default();
        while sent.front().is_some_and(|t| now.duration_since(*t) >= period) {
            sent.pop_front();
        }
        if sent.len() < limit as usize {
            sent.push_back(now);
            Ok(())
        } else {
            let oldest = sent.front().copied().unwrap_or(now);
            Err(period.saturating_sub(now.duration_since(oldest)))
        }
    }
}

impl Notifier {
    /// Leases and attempts due deliveries until none is left.
    pub(crate) async fn drain_due(&self) -> Result<usize, pantau_core::store::StoreError> {
        let mut total = 0;
        loop {
            let lease = self.lease_until();
            let batch = self
                .store
                .claim(&self.owner, lease, self.cfg.concurrency as i64)
                .await?;
            if batch.is_empty() {
                return Ok(total);
            }
            total += batch.len();
            // Grouping channels get one send per recipient for everything due.
            let mut sends: Vec<Vec<Claimed>> = Vec::new();
            let mut groups: BTreeMap<(String, String), Vec<Claimed>> = BTreeMap::new();
            for c in batch {
                if self.channels.get(&c.channel).is_some_and(|ch| ch.config.group) {
                    groups
                        .entry((c.channel.clone(), c.recipient.clone()))
                        .or_default()
                        .push(c);
                } else {
                    sends.push(vec![c]);
                }
            }
            for ((channel, recipient), mut members) in groups {
                match self
                    .store
                    .claim_for(&self.owner, lease, MAX_GROUP, &channel, &recipient)
                    .await
                {
                    Ok(more) => {
                        total += more.len();
                        members.extend(more);
                    }
                    Err(e) => {
                        tracing::warn!(channel = %channel, error = %e, "cannot gather a group; sending what is leased");
                    }
                }
                sends.push(members);
            }
            let settled = futures::future::join_all(sends.into_iter().map(|members| self.attempt(members))).await;
            self.record(settled.into_iter().flatten().collect()).await;
        }
    }

    fn lease_until(&self) -> i64 {
        now_ms() + (self.cfg.request_timeout + Duration::from_secs(30)).as_millis() as i64
    }

    /// One send: a single delivery, or a group for one channel and recipient.
    /// Returns what to record for each member.
    async fn attempt(&self, members: Vec<Claimed>) -> Vec<Settled> {
        let mut done = Vec::new();
        let Some(first) = members.first() else { return done };
        let Some(ch) = self.channels.get(&first.channel) else {
            let why = format!("channel `{}` is no longer configured", first.channel);
            for c in members {
                done.push(self.settle(c, "unknown", NOT_SENT, Err((true, why.clone())), Duration::ZERO));
            }
            return done;
        };
        let kind = ch.kind().as_str();
        if let Err(wait) = self.limits.acquire(
            &first.channel,
            ch.config.rate_limit,
            ch.config.rate_limit_period,
            Instant::now(),
        ) {
            metrics::counter!(m::RATE_LIMITED_TOTAL, "channel_type" => kind).increment(members.len() as u64);
            let at = now_ms() + wait.as_millis() as i64 + 1;
            for c in &members {
                if let Err(e) = self.store.postpone(c.seq, &self.owner, at).await {
                    tracing::warn!(delivery = %c.id, error = %e, "cannot postpone a rate-limited delivery; its lease will expire");
                }
            }
            return done;
        }
        let mut parts = Vec::with_capacity(members.len());
        let mut sent = Vec::with_capacity(members.len());
        for c in members {
            match serde_json::from_str::<Notification>(&c.notification) {
                Ok(n) => {
                    parts.push(n);
                    sent.push(c);
                }
                Err(e) => {
                    let why = format!("stored notification does not decode: {e}");
                    done.push(self.settle(c, kind, NOT_SENT, Err((true, why)), Duration::ZERO));
                }
            }
        }
        let (n, key) = match sent.as_slice() {
            [] => return done,
            [one] => (parts.swap_remove(0), one.id.clone()),
            many => {
                let mut h = Sha256::new();
                for c in many {
                    h.update(c.id.as_bytes());
                }
                (Notification::digest(&parts), hex::encode(&h.finalize()[..16]))
            }
        };
        let text = match self.templates.render(&sent[0].channel, ch.kind(), &n) {
            Ok(t) => t,
            Err(e) => {
                for c in sent {
                    done.push(self.settle(c, kind, NOT_SENT, Err((true, e.to_string())), Duration::ZERO));
                }
                return done;
            }
        };
        let started = Instant::now();
        let out = Outgoing {
            idempotency_key: &key,
            recipient: &sent[0].recipient,
            notification: &n,
            text: &text,
        };
        let deadline = self.cfg.request_timeout + Duration::from_secs(5);
        // The delivery joins the trace of the alert event it notifies.
        let span = tracing::info_span!("notifier.deliver", channel = %sent[0].channel, channel_type = kind);
        if !n.trace_parent.is_empty() {
            let headers = pantau_core::bus::Headers::from([("traceparent".to_owned(), n.trace_parent.clone())]);
            pantau_core::telemetry::set_parent_from(&span, &headers);
        }
        let outcome = tokio::time::timeout(deadline, ch.sender.send(out))
            .instrument(span)
            .await
            .unwrap_or_else(|_| Outcome::temporary(0, "timed out"));
        let latency = started.elapsed();
        metrics::histogram!(m::DELIVERY_DURATION, "channel_type" => kind).record(latency.as_secs_f64());
        let result = outcome.result.map_err(|e| (e.is_permanent(), e.to_string()));
        for c in sent {
            done.push(self.settle(c, kind, Some(outcome.status_code), result.clone(), latency));
        }
        done
    }

    /// What an attempt's result means: delivered, retry later, or given up.
    /// `status_code` is `None` when nothing was sent ([`NOT_SENT`]).
    fn settle(
        &self,
        c: Claimed,
        kind: &'static str,
        status_code: Option<u16>,
        result: Result<(), (bool, String)>,
        latency: Duration,
    ) -> Settled {
        let class = match &result {
            Ok(()) => DeliveryErrorClass::Unspecified,
            Err((permanent, _)) => error_class(status_code, *permanent),
        };
        let status_code = status_code.unwrap_or(0);
        let attempt_no = c.attempts + 1;
        let max = i64::from(self.cfg.retry.max_attempts);
        let now = now_ms();
        let (status, next, label, error) = match result {
            Ok(()) => (DELIVERED, now, m::RESULT_DELIVERED, String::new()),
            Err((permanent, why)) if permanent || attempt_no >= max => (FAILED, now, m::RESULT_FAILED, why),
            Err((_, why)) => {
                let wait = backoff(&self.cfg.retry, attempt_no as u32);
                (PENDING, now + wait.as_millis() as i64, m::RESULT_RETRY, why)
            }
        };
        metrics::counter!(m::DELIVERIES_TOTAL, "channel_type" => kind, "result" => label).increment(1);
        Settled {
            record: Record {
                seq: c.seq,
                attempt: Attempt {
                    attempt: attempt_no,
                    at: now,
                    status_code: i64::from(status_code),
                    error,
                    latency_ms: latency.as_millis() as i64,
                },
                status,
                next_attempt_at: next,
            },
            claimed: c,
            kind,
            class,
        }
    }

    /// Records a batch of results in one transaction, then logs them and
    /// reports the given-up ones.
    async fn record(&self, settled: Vec<Settled>) {
        if settled.is_empty() {
            return;
        }
        let records: Vec<Record> = settled.iter().map(|s| s.record.clone()).collect();
        let kept = match self.store.record_many(&self.owner, &records).await {
            Ok(k) => k,
            Err(e) => {
                // The leases expire and the deliveries are attempted again: at least once.
                tracing::error!(deliveries = settled.len(), error = %e, "cannot record delivery attempts");
                return;
            }
        };
        for (s, kept) in settled.iter().zip(kept) {
            let c = &s.claimed;
            let a = &s.record.attempt;
            if !kept {
                tracing::warn!(delivery = %c.id, channel = %c.channel, "lost the lease of a delivery while attempting it; another replica owns it now");
                continue;
            }
            if s.record.status != PENDING {
                self.report_outcome(s).await;
            }
            match s.record.status {
                DELIVERED => {
                    tracing::debug!(delivery = %c.id, channel = %c.channel, attempt = a.attempt, status_code = a.status_code, "delivered");
                }
                PENDING => {
                    tracing::info!(delivery = %c.id, channel = %c.channel, attempt = a.attempt, status_code = a.status_code, error = %a.error, "delivery failed; will retry");
                }
                _ => self.give_up(c, s.kind, a.attempt, &a.error).await,
            }
        }
    }

    async fn give_up(&self, c: &Claimed, kind: &'static str, attempts: i64, error: &str) {
        metrics::counter!(m::GIVEN_UP_TOTAL, "channel_type" => kind).increment(1);
        tracing::warn!(delivery = %c.id, channel = %c.channel, attempts, error = %error, "gave up a delivery");
        let mut attributes = HashMap::new();
        attributes.insert("delivery_id".to_owned(), c.id.clone());
        attributes.insert("channel".to_owned(), c.channel.clone());
        attributes.insert("channel_type".to_owned(), kind.to_owned());
        attributes.insert("attempts".to_owned(), attempts.to_string());
        attributes.insert("error".to_owned(), error.to_owned());
        let event = RouterEvent {
            id: c.id.clone(),
            kind: EventKind::Instance.into(),
            source: "notifier".to_owned(),
            occurred_at: Some(pantau_core::time::to_timestamp(std::time::SystemTime::now())),
            severity: Severity::Warning.into(),
            message: format!(
                "notification to channel {} was given up after {attempts} attempt(s): {error}",
                c.channel
            ),
            attributes,
        };
        let subject = pantau_core::bus::subject::event("instance", "notifier");
        if let Err(e) = pantau_core::bus::publish_proto(self.bus.as_ref(), &subject, &event).await {
            tracing::warn!(error = %e, "cannot publish the given-up event");
        }
    }
}

/// What [`Notifier::settle`] gets for a delivery that was never sent.
const NOT_SENT: Option<u16> = None;

/// Why a delivery failed, as a bounded class: never sent (`None`) is a
/// configuration fault; 429 is a rate limit; no status is no answer; a
/// permanent error is a refusal; anything else the provider's failure.
pub fn error_class(status_code: Option<u16>, permanent: bool) -> DeliveryErrorClass {
    match status_code {
        None => DeliveryErrorClass::Configuration,
        Some(429) => DeliveryErrorClass::RateLimited,
        Some(_) if permanent => DeliveryErrorClass::Rejected,
        Some(0) => DeliveryErrorClass::NoAnswer,
        Some(_) => DeliveryErrorClass::ServerError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classed_without_their_text() {
        assert_eq!(error_class(None, true), DeliveryErrorClass::Configuration);
        assert_eq!(error_class(Some(429), false), DeliveryErrorClass::RateLimited);
        assert_eq!(error_class(Some(429), true), DeliveryErrorClass::RateLimited);
        assert_eq!(error_class(Some(0), false), DeliveryErrorClass::NoAnswer);
        assert_eq!(error_class(Some(0), true), DeliveryErrorClass::Rejected);
        assert_eq!(error_class(Some(404), true), DeliveryErrorClass::Rejected);
        assert_eq!(error_class(Some(503), false), DeliveryErrorClass::ServerError);
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let r = RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            max_attempts: 5,
        };
        for _ in 0..50 {
            let b1 = backoff(&r, 1);
            assert!(
                b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100),
                "{b1:?}"
            );
            let b3 = backoff(&r, 3);
            assert!(
                b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400),
                "{b3:?}"
            );
            let b20 = backoff(&r, 20);
            assert!(
                b20 >= Duration::from_millis(500) && b20 <= Duration::from_secs(1),
                "{b20:?}"
            );
        }
        let distinct: std::collections::HashSet<_> = (0..20).map(|_| backoff(&r, 4)).collect();
        assert!(distinct.len() > 1, "no jitter");
    }

    #[test]
    fn rate_limit_slides() {
        let l = RateLimits::default();
        let t0 = Instant::now();
        let p = Duration::from_secs(60);
        assert!(l.acquire("c", 2, p, t0).is_ok());
        assert!(l.acquire("c", 2, p, t0 + Duration::from_secs(1)).is_ok());
        assert_eq!(
            l.acquire("c", 2, p, t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        assert!(l.acquire("other", 2, p, t0).is_ok());
        assert!(l.acquire("c", 2, p, t0 + Duration::from_secs(60)).is_ok());
        assert!(l.acquire("c", 0, p, t0).is_ok());
    }
}
