//! Attempting deliveries: lease due ones from the store, respect each
//! channel's rate limit, render, send, and record the outcome. Failures are
//! retried with exponential backoff and jitter until `retry.max_attempts`;
//! then (or at once on a permanent error) the delivery is given up, counted
//! and reported on the bus (`pantau.event.instance.notifier`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use pantau_core::config::RetryConfig;
use pantau_proto::v1::{EventKind, RouterEvent, Severity};
use rand::Rng;
use tokio::time::Instant;

use crate::Notifier;
use crate::channels::{Outcome, Outgoing};
use crate::metrics as m;
use crate::notification::Notification;
use crate::store::{Attempt, Claimed, DELIVERED, FAILED, PENDING, now_ms};

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
            let lease = now_ms() + (self.cfg.request_timeout + Duration::from_secs(30)).as_millis() as i64;
            let batch = self
                .store
                .claim(&self.owner, lease, self.cfg.concurrency as i64)
                .await?;
            if batch.is_empty() {
                return Ok(total);
            }
            total += batch.len();
            futures::future::join_all(batch.into_iter().map(|c| self.attempt(c))).await;
        }
    }

    async fn attempt(&self, c: Claimed) {
        let Some(ch) = self.channels.get(&c.channel) else {
            let why = format!("channel `{}` is no longer configured", c.channel);
            self.finish(&c, "unknown", 0, Err((true, why)), Duration::ZERO).await;
            return;
        };
        let kind = ch.kind().as_str();
        if let Err(wait) = self.limits.acquire(
            &c.channel,
            ch.config.rate_limit,
            ch.config.rate_limit_period,
            Instant::now(),
        ) {
            metrics::counter!(m::RATE_LIMITED_TOTAL, "channel_type" => kind).increment(1);
            let at = now_ms() + wait.as_millis() as i64 + 1;
            if let Err(e) = self.store.postpone(c.seq, &self.owner, at).await {
                tracing::warn!(delivery = %c.id, error = %e, "cannot postpone a rate-limited delivery; its lease will expire");
            }
            return;
        }
        let n: Notification = match serde_json::from_str(&c.notification) {
            Ok(n) => n,
            Err(e) => {
                let why = format!("stored notification does not decode: {e}");
                self.finish(&c, kind, 0, Err((true, why)), Duration::ZERO).await;
                return;
            }
        };
        let text = match self.templates.render(&c.channel, ch.kind(), &n) {
            Ok(t) => t,
            Err(e) => {
                self.finish(&c, kind, 0, Err((true, e.to_string())), Duration::ZERO)
                    .await;
                return;
            }
        };
        let started = Instant::now();
        let out = Outgoing {
            idempotency_key: &c.id,
            recipient: &c.recipient,
            notification: &n,
            text: &text,
        };
        let deadline = self.cfg.request_timeout + Duration::from_secs(5);
        let outcome = tokio::time::timeout(deadline, ch.sender.send(out))
            .await
            .unwrap_or_else(|_| Outcome::temporary(0, "timed out"));
        let latency = started.elapsed();
        metrics::histogram!(m::DELIVERY_DURATION, "channel_type" => kind).record(latency.as_secs_f64());
        let result = outcome.result.map_err(|e| (e.is_permanent(), e.to_string()));
        self.finish(&c, kind, outcome.status_code, result, latency).await;
    }

    /// Records an attempt's result: delivered, retry later, or given up.
    async fn finish(
        &self,
        c: &Claimed,
        kind: &'static str,
        status_code: u16,
        result: Result<(), (bool, String)>,
        latency: Duration,
    ) {
        let attempt_no = c.attempts + 1;
        let max = i64::from(self.cfg.retry.max_attempts);
        let now = now_ms();
        let (status, next, label, error) = match &result {
            Ok(()) => (DELIVERED, now, m::RESULT_DELIVERED, String::new()),
            Err((permanent, why)) if *permanent || attempt_no >= max => (FAILED, now, m::RESULT_FAILED, why.clone()),
            Err((_, why)) => {
                let wait = backoff(&self.cfg.retry, attempt_no as u32);
                (PENDING, now + wait.as_millis() as i64, m::RESULT_RETRY, why.clone())
            }
        };
        metrics::counter!(m::DELIVERIES_TOTAL, "channel_type" => kind, "result" => label).increment(1);
        let attempt = Attempt {
            attempt: attempt_no,
            at: now,
            status_code: i64::from(status_code),
            error: error.clone(),
            latency_ms: latency.as_millis() as i64,
        };
        match self.store.record(c.seq, &self.owner, &attempt, status, next).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(delivery = %c.id, channel = %c.channel, "lost the lease of a delivery while attempting it; another replica owns it now");
                return;
            }
            Err(e) => {
                // The lease expires and the delivery is attempted again: at least once.
                tracing::error!(delivery = %c.id, channel = %c.channel, error = %e, "cannot record a delivery attempt");
                return;
            }
        }
        match status {
            DELIVERED => {
                tracing::debug!(delivery = %c.id, channel = %c.channel, attempt = attempt_no, status_code, "delivered");
            }
            PENDING => {
                tracing::info!(delivery = %c.id, channel = %c.channel, attempt = attempt_no, status_code, error = %error, "delivery failed; will retry");
            }
            _ => self.give_up(c, kind, attempt_no, &error).await,
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

#[cfg(test)]
mod tests {
    use super::*;

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
