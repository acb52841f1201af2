//! Silences: alerts whose labels (plus `alertname`, the rule id) match every
//! matcher notify no one between `starts_at` and `ends_at`. They still fire
//! and resolve in the history.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::facts::is_name;
use crate::series::Labels;

/// One matcher: `label` equals (or, negated, differs from) `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceMatcher {
    pub label: String,
    pub value: String,
    #[serde(default)]
    pub negate: bool,
}

/// A silence.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: SystemTime,
    pub ends_at: SystemTime,
    pub created_by: String,
    pub comment: String,
    pub created_at: SystemTime,
    /// The window comes back every this long (a recurring maintenance window).
    pub repeat_every: Option<Duration>,
    /// When a recurring window stops; `None`: until expired.
    pub repeat_until: Option<SystemTime>,
}

/// Why a silence is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("a silence needs at least one matcher")]
    NoMatchers,
    #[error("matcher {index}: `{label}` is not a label name (letters, digits, `_`, `:`)")]
    Label { index: usize, label: String },
    #[error("created_by is required: who silences")]
    NoAuthor,
    #[error("ends_at must be after starts_at, in the future, and before the year 10000")]
    Window,
    #[error("repeat_every must be at least 1m and at least as long as the window (ends_at - starts_at)")]
    Repeat,
    #[error("repeat_until must be after starts_at")]
    RepeatUntil,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl Silence {
    /// A checked silence created by `created_by` at `now`.
    pub fn new(
        matchers: Vec<SilenceMatcher>,
        starts_at: SystemTime,
        ends_at: SystemTime,
        created_by: &str,
        comment: &str,
        now: SystemTime,
    ) -> Result<Self, SilenceError> {
        if matchers.is_empty() {
            return Err(SilenceError::NoMatchers);
        }
        if let Some((index, m)) = matchers.iter().enumerate().find(|(_, m)| !is_name(&m.label)) {
            return Err(SilenceError::Label {
                index,
                label: m.label.clone(),
            });
        }
        if created_by.trim().is_empty() {
            return Err(SilenceError::NoAuthor);
        }
        let last = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799);
        if ends_at <= starts_at || ends_at <= now || ends_at > last {
            return Err(SilenceError::Window);
        }
        let ms = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Ok(Self {
            id: format!("silence-{ms}-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
            matchers,
            starts_at,
            ends_at,
            created_by: created_by.to_owned(),
            comment: comment.to_owned(),
            created_at: now,
            repeat_every: None,
            repeat_until: None,
        })
    }

    /// Makes the window recur every `every` until `until` (or until expired).
    pub fn repeating(mut self, every: Duration, until: Option<SystemTime>) -> Result<Self, SilenceError> {
        let len = self.ends_at.duration_since(self.starts_at).unwrap_or_default();
        if every < Duration::from_secs(60) || every < len {
            return Err(SilenceError::Repeat);
        }
        if until.is_some_and(|u| u <= self.starts_at) {
            return Err(SilenceError::RepeatUntil);
        }
        self.repeat_every = Some(every);
        self.repeat_until = until;
        Ok(self)
    }

    /// Whether the silence holds at `now`.
    pub fn is_active(&self, now: SystemTime) -> bool {
        let Some(every) = self.repeat_every.filter(|e| !e.is_zero()) else {
            return self.starts_at <= now && now < self.ends_at;
        };
        if now < self.starts_at || self.repeat_until.is_some_and(|u| now >= u) {
            return false;
        }
        let since = now.duration_since(self.starts_at).unwrap_or_default().as_nanos();
        let len = self
            .ends_at
            .duration_since(self.starts_at)
            .unwrap_or_default()
            .as_nanos();
        since % every.as_nanos() < len
    }

    /// Whether the silence will never hold again after `now`.
    pub fn is_over(&self, now: SystemTime) -> bool {
        match self.repeat_every {
            None => self.ends_at <= now,
            Some(_) => self.repeat_until.is_some_and(|u| u <= now),
        }
    }

    /// Ends the silence at `now`.
    pub fn expire(&mut self, now: SystemTime) {
        if self.repeat_every.is_some() {
            self.repeat_until = Some(now.max(self.starts_at));
        }
        if self.ends_at > now {
            self.ends_at = now.max(self.starts_at);
        }
    }

    /// Whether an alert of rule `rule_id` with `labels` is silenced at `now`.
    pub fn silences(&self, rule_id: &str, labels: &Labels, now: SystemTime) -> bool {
        self.is_active(now)
            && self.matchers.iter().all(|m| {
                let v = if m.label == "alertname" {
                    Some(rule_id)
                } else {
                    labels.get(&m.label).map(String::as_str)
                };
                (v.unwrap_or("") == m.value) != m.negate
            })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn m(label: &str, value: &str, negate: bool) -> SilenceMatcher {
        SilenceMatcher {
            label: label.into(),
            value: value.into(),
            negate,
        }
    }

    #[test]
    fn recurring_windows() {
        // A one-hour window every day from t(0), for three days.
        let s = Silence::new(vec![m("a", "b", false)], t(0), t(3600), "x", "nightly backup", t(0))
            .unwrap()
            .repeating(Duration::from_secs(86_400), Some(t(3 * 86_400)))
            .unwrap();
        assert!(s.is_active(t(10)));
        assert!(!s.is_active(t(3600)));
        assert!(s.is_active(t(86_400 + 3599)));
        assert!(!s.is_active(t(86_400 + 3600)));
        assert!(s.is_active(t(2 * 86_400)));
        assert!(!s.is_active(t(3 * 86_400 + 10)), "past repeat_until");
        assert!(!s.is_over(t(86_400 + 4000)), "comes back");
        assert!(s.is_over(t(3 * 86_400)));
        let mut forever = Silence::new(vec![m("a", "b", false)], t(0), t(60), "x", "", t(0))
            .unwrap()
            .repeating(Duration::from_secs(600), None)
            .unwrap();
        assert!(forever.is_active(t(6_000_000)));
        forever.expire(t(6_000_010));
        assert!(forever.is_over(t(6_000_010)) && !forever.is_active(t(6_000_010)));
        let base = Silence::new(vec![m("a", "b", false)], t(0), t(3600), "x", "", t(0)).unwrap();
        assert_eq!(
            base.clone().repeating(Duration::from_secs(60), None),
            Err(SilenceError::Repeat)
        );
        assert_eq!(
            base.repeating(Duration::from_secs(7200), Some(t(0))),
            Err(SilenceError::RepeatUntil)
        );
    }

    #[test]
    fn matching_window_and_validation() {
        let s = Silence::new(
            vec![m("alertname", "endpoint-down", false), m("env", "dev", true)],
            t(10),
            t(20),
            "dina",
            "maintenance",
            t(0),
        )
        .unwrap();
        let prod: Labels = [("env".to_owned(), "prod".to_owned())].into();
        let dev: Labels = [("env".to_owned(), "dev".to_owned())].into();
        assert!(!s.silences("endpoint-down", &prod, t(9)), "not started");
        assert!(s.silences("endpoint-down", &prod, t(10)));
        assert!(!s.silences("endpoint-down", &dev, t(10)), "negated matcher");
        assert!(!s.silences("other", &prod, t(10)));
        assert!(!s.silences("endpoint-down", &prod, t(20)), "ended");
        assert_eq!(
            Silence::new(vec![], t(0), t(1), "x", "", t(0)),
            Err(SilenceError::NoMatchers)
        );
        assert!(matches!(
            Silence::new(vec![m("bad label", "x", false)], t(0), t(1), "x", "", t(0)),
            Err(SilenceError::Label { index: 0, .. })
        ));
        assert_eq!(
            Silence::new(vec![m("a", "b", false)], t(0), t(1), " ", "", t(0)),
            Err(SilenceError::NoAuthor)
        );
        assert_eq!(
            Silence::new(vec![m("a", "b", false)], t(5), t(1), "x", "", t(0)),
            Err(SilenceError::Window)
        );
        assert_eq!(
            Silence::new(vec![m("a", "b", false)], t(0), t(1), "x", "", t(2)),
            Err(SilenceError::Window)
        );
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(
            Silence::new(vec![m("a", "b", false)], t(0), far, "x", "", t(0)),
            Err(SilenceError::Window)
        );
    }
}
