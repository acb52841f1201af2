//! Silences: alerts whose labels (plus `alertname`, the rule id) match every
//! matcher notify no one between `starts_at` and `ends_at`. They still fire
//! and resolve in the history.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

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
    #[error("ends_at must be after starts_at and in the future")]
    Window,
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
        if ends_at <= starts_at || ends_at <= now {
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
        })
    }

    pub fn is_active(&self, now: SystemTime) -> bool {
        self.starts_at <= now && now < self.ends_at
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
    }
}
