//! Push (heartbeat) monitors: a cron job or a device calls
//! `POST /api/v1/push/{token}`; no call within the interval plus the grace
//! period makes the target DOWN.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use pantau_proto::v1::{FailureReason, PushDetail, check_result::Detail};

use super::Outcome;

/// The last push of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub at: SystemTime,
    /// The pusher said it is down.
    pub down: bool,
    pub message: String,
    pub latency: Option<Duration>,
}

/// Last pushes by target id.
#[derive(Default)]
pub struct Pushes {
    last: Mutex<HashMap<String, Push>>,
}

impl Pushes {
    pub fn record(&self, target_id: &str, push: Push) {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(target_id.to_owned(), push);
    }

    pub fn forget(&self, target_id: &str) {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(target_id);
    }

    /// The state of `target_id` at `now`.
    pub fn evaluate(&self, target_id: &str, interval: Duration, grace: Duration, now: SystemTime) -> Outcome {
        let last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(target_id)
            .cloned();
        let deadline = interval + grace;
        let Some(p) = last else {
            return Outcome::down(Duration::ZERO, FailureReason::Timeout, "no push received yet")
                .with_detail(detail(None));
        };
        let age = now.duration_since(p.at).unwrap_or_default();
        let d = detail(Some(&p));
        if age > deadline {
            Outcome::down(
                Duration::ZERO,
                FailureReason::Timeout,
                format!(
                    "last push {} ago, expected one every {}",
                    pantau_config::duration::format(Duration::from_secs(age.as_secs())),
                    pantau_config::duration::format(deadline)
                ),
            )
            .with_detail(d)
        } else if p.down {
            let msg = if p.message.is_empty() {
                "the pusher reported down".to_owned()
            } else {
                p.message.clone()
            };
            Outcome::down(p.latency.unwrap_or_default(), FailureReason::Assertion, msg).with_detail(d)
        } else {
            Outcome::up(p.latency.unwrap_or_default(), Some(d))
        }
    }
}

fn detail(p: Option<&Push>) -> Detail {
    Detail::Push(PushDetail {
        last_push: p.map(|p| pantau_core::time::to_timestamp(p.at)),
        pushed_status: p
            .map(|p| if p.down { "down" } else { "up" }.to_owned())
            .unwrap_or_default(),
        pushed_message: p.map(|p| p.message.clone()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_late_and_reported_down() {
        let p = Pushes::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let iv = Duration::from_secs(60);
        let grace = Duration::from_secs(30);
        assert!(!p.evaluate("cron", iv, grace, t0).up);
        p.record(
            "cron",
            Push {
                at: t0,
                down: false,
                message: String::new(),
                latency: None,
            },
        );
        assert!(p.evaluate("cron", iv, grace, t0 + Duration::from_secs(89)).up);
        let late = p.evaluate("cron", iv, grace, t0 + Duration::from_secs(91));
        assert!(!late.up);
        assert_eq!(late.reason, FailureReason::Timeout);
        assert!(late.message.contains("1m 31s ago"), "{}", late.message);
        p.record(
            "cron",
            Push {
                at: t0,
                down: true,
                message: "backup failed".into(),
                latency: None,
            },
        );
        let down = p.evaluate("cron", iv, grace, t0);
        assert_eq!(down.message, "backup failed");
    }
}
