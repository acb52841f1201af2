//! Maintenance windows (`maintenance[]`): one-off or recurring spans of
//! time during which the things they cover — targets by id or by labels,
//! routers, whole locations — page no one. The collector skips (or, with
//! `checks: continue`, runs but does not count) the covered targets'
//! checks, so the window's time counts neither for nor against uptime; the
//! alert engine mutes covered alerts (`suppressed_by: maintenance:<id>`).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::validate::is_subject_token;
use crate::{Invalid, duration};

/// Shortest repeat of a recurring window.
const MIN_REPEAT: Duration = Duration::from_secs(60);
/// Most ids, labels, routers or locations one window lists.
const MAX_ITEMS: usize = 1000;

/// What a window does to the checks of the targets it covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceChecks {
    /// Skip them: no result, no history, as if paused.
    #[default]
    Pause,
    /// Run and publish them (the console stays live), but keep them out of
    /// the history, so uptime does not count the window.
    Continue,
}

/// One maintenance window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// Letters, digits, `-`, `_`; unique.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The (first) start, RFC 3339, e.g. `2026-12-05T02:00:00Z`.
    #[serde(with = "time")]
    pub start: SystemTime,
    /// The (first) end, after `start`.
    #[serde(with = "time")]
    pub end: SystemTime,
    /// Repeat every this long (`7d` for weekly, `1d` for daily); at least
    /// 1 minute and at least the window's length.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "duration::option")]
    pub repeat_every: Option<Duration>,
    /// No repeat starts at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::option")]
    pub repeat_until: Option<SystemTime>,
    /// Targets by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Targets (and alerts) carrying every one of these labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Routers by id: their alerts (and their interfaces') are muted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routers: Vec<String>,
    /// Whole locations: every target checked there, every alert about it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
    #[serde(default)]
    pub checks: MaintenanceChecks,
}

impl MaintenanceWindow {
    /// Whether the window holds at `now`.
    pub fn is_active(&self, now: SystemTime) -> bool {
        let Some(every) = self.repeat_every.filter(|e| !e.is_zero()) else {
            return self.start <= now && now < self.end;
        };
        if now < self.start || self.repeat_until.is_some_and(|u| now >= u) {
            return false;
        }
        let since = now.duration_since(self.start).unwrap_or_default().as_nanos();
        let len = self.end.duration_since(self.start).unwrap_or_default().as_nanos();
        since % every.as_nanos() < len
    }

    /// Whether it covers the target `id` with `labels`, checked at `location`.
    pub fn covers_target(&self, id: &str, labels: &BTreeMap<String, String>, location: &str) -> bool {
        self.targets.iter().any(|t| t == id)
            || self.locations.iter().any(|l| l == location)
            || (!self.labels.is_empty() && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v)))
    }

    /// Whether it covers an alert with `labels` (`target`, `router`,
    /// `location` and the target's own labels).
    pub fn covers_alert(&self, labels: &BTreeMap<String, String>) -> bool {
        let has = |key: &str, list: &[String]| labels.get(key).is_some_and(|v| list.contains(v));
        has("target", &self.targets)
            || has("router", &self.routers)
            || has("location", &self.locations)
            || (!self.labels.is_empty() && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v)))
    }
}

/// `t` as RFC 3339, to the second.
fn time_text(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Whether a window of `windows` active at `now` covers the target `id`
/// (with `labels`, checked at `location`) and, when `mode` is `Pause`,
/// pauses its checks (`Continue`: any active window covering it).
pub fn holds(
    windows: &[MaintenanceWindow],
    target: (&str, &BTreeMap<String, String>, &str),
    mode: MaintenanceChecks,
    now: SystemTime,
) -> bool {
    let (id, labels, location) = target;
    windows.iter().any(|w| {
        (mode == MaintenanceChecks::Continue || w.checks == mode)
            && w.covers_target(id, labels, location)
            && w.is_active(now)
    })
}

/// Every problem of `maintenance[]`, keyed `maintenance[i].<field>`.
pub(crate) fn problems(windows: &[MaintenanceWindow]) -> Vec<Invalid> {
    let mut out = Vec::new();
    let mut add = |i: usize, field: &str, value: &str, allowed: &str| {
        out.push(Invalid {
            key: format!("maintenance[{i}].{field}"),
            value: crate::types::quote(value).into_owned(),
            allowed: allowed.to_owned(),
        });
    };
    const TOKEN: &str = "must be 1–128 characters of letters, digits, `-` or `_`";
    let mut seen = HashSet::new();
    for (i, w) in windows.iter().enumerate() {
        if !is_subject_token(&w.id) {
            add(i, "id", &w.id, TOKEN);
        } else if !seen.insert(w.id.as_str()) {
            add(i, "id", &w.id, "must be unique: another window has this id");
        }
        if w.name.as_ref().is_some_and(|n| n.len() > crate::types::limits::NAME) {
            add(i, "name", "", "must be at most 200 bytes");
        }
        if w.end <= w.start {
            add(i, "end", &time_text(w.end), "must be after `start`");
        }
        let len = w.end.duration_since(w.start).unwrap_or_default();
        if let Some(every) = w.repeat_every
            && (every < MIN_REPEAT || every < len)
        {
            add(
                i,
                "repeat_every",
                &duration::format(every),
                "must be at least 1m and at least the window's length (end - start)",
            );
        }
        if let Some(until) = w.repeat_until {
            if w.repeat_every.is_none() {
                add(i, "repeat_until", &time_text(until), "needs `repeat_every`");
            } else if until <= w.start {
                add(i, "repeat_until", &time_text(until), "must be after `start`");
            }
        }
        if w.targets.is_empty() && w.labels.is_empty() && w.routers.is_empty() && w.locations.is_empty() {
            add(
                i,
                "targets",
                "",
                "a window must cover something: list `targets`, `labels`, `routers` or `locations`",
            );
        }
        for (field, list) in [
            ("targets", &w.targets),
            ("routers", &w.routers),
            ("locations", &w.locations),
        ] {
            if list.len() > MAX_ITEMS {
                add(i, field, "", "must list at most 1000 entries");
            }
            for (j, v) in list.iter().enumerate() {
                if !is_subject_token(v) {
                    add(i, &format!("{field}[{j}]"), v, TOKEN);
                }
            }
        }
        for (k, v) in &w.labels {
            if k.is_empty() || k.len() > crate::types::limits::LABEL_KEY || v.len() > crate::types::limits::LABEL_VALUE
            {
                add(
                    i,
                    &format!("labels.{}", crate::types::quote(k)),
                    v,
                    "a label key of 1–64 bytes, a value of at most 256",
                );
            }
        }
    }
    out
}

/// RFC 3339 times for serde.
mod time {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::time_text(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(text.trim()).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{}` is not an RFC 3339 time such as 2026-12-05T02:00:00Z",
                crate::types::quote(&text)
            ))
        })
    }

    pub mod option {
        use std::time::SystemTime;

        use serde::{Deserializer, Serializer};

        #[allow(clippy::ref_option)]
        pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339(text).unwrap()
    }

    fn weekly() -> MaintenanceWindow {
        serde_yaml::from_str(
            "{id: sat, start: '2026-12-05T02:00:00Z', end: '2026-12-05T04:00:00Z', repeat_every: 7d, labels: {site: jkt}}",
        )
        .unwrap()
    }

    #[test]
    fn a_weekly_window_holds_each_week_and_covers_by_label() {
        let w = weekly();
        assert!(problems(std::slice::from_ref(&w)).is_empty());
        assert!(!w.is_active(at("2026-12-05T01:59:59Z")));
        assert!(w.is_active(at("2026-12-05T02:00:00Z")));
        assert!(!w.is_active(at("2026-12-05T04:00:00Z")));
        assert!(w.is_active(at("2026-12-12T03:30:00Z")));
        assert!(!w.is_active(at("2026-12-11T03:30:00Z")));
        let site: BTreeMap<String, String> = [("site".to_owned(), "jkt".to_owned())].into();
        assert!(w.covers_target("web", &site, "local"));
        assert!(!w.covers_target("web", &BTreeMap::new(), "local"));
        assert!(w.covers_alert(&site));
        let one = std::slice::from_ref(&w);
        let now = at("2026-12-19T02:01:00Z");
        assert!(holds(one, ("web", &site, "x"), MaintenanceChecks::Pause, now));
        assert!(holds(one, ("web", &site, "x"), MaintenanceChecks::Continue, now));
        let mut going_on = w.clone();
        going_on.checks = MaintenanceChecks::Continue;
        let one = std::slice::from_ref(&going_on);
        assert!(
            !holds(one, ("web", &site, "x"), MaintenanceChecks::Pause, now),
            "checks go on"
        );
        assert!(holds(one, ("web", &site, "x"), MaintenanceChecks::Continue, now));
    }

    #[test]
    fn hostile_windows_are_refused_naming_the_key() {
        let cases = [
            (
                "{id: 'a b', start: '2026-12-05T02:00:00Z', end: '2026-12-05T04:00:00Z', targets: [x]}",
                "maintenance[0].id",
            ),
            (
                "{id: a, start: '2026-12-05T02:00:00Z', end: '2026-12-05T01:00:00Z', targets: [x]}",
                "maintenance[0].end",
            ),
            (
                "{id: a, start: '2026-12-05T02:00:00Z', end: '2026-12-05T04:00:00Z', repeat_every: 1h, targets: [x]}",
                "maintenance[0].repeat_every",
            ),
            (
                "{id: a, start: '2026-12-05T02:00:00Z', end: '2026-12-05T04:00:00Z', repeat_until: '2027-01-01T00:00:00Z', targets: [x]}",
                "maintenance[0].repeat_until",
            ),
            (
                "{id: a, start: '2026-12-05T02:00:00Z', end: '2026-12-05T04:00:00Z'}",
                "maintenance[0].targets",
            ),
            (
                "{id: a, start: '2026-12-05T02:00:00Z', end: '2026-12-05T04:00:00Z', routers: ['r 1']}",
                "maintenance[0].routers[0]",
            ),
        ];
        for (yaml, key) in cases {
            let w: MaintenanceWindow = serde_yaml::from_str(yaml).unwrap();
            let p = problems(&[w]);
            assert!(p.iter().any(|i| i.key == key), "{yaml}: {p:?}");
        }
        for bad in [
            "{id: a, start: tomorrow, end: '2026-12-05T04:00:00Z', targets: [x]}",
            "{id: a, start: '2026-12-05T02:00:00Z', end: '2026-12-05T04:00:00Z', targets: [x], checks: stop}",
            "{id: a, start: '2026-12-05T02:00:00Z', end: '2026-12-05T04:00:00Z', targets: [x], colour: red}",
        ] {
            assert!(serde_yaml::from_str::<MaintenanceWindow>(bad).is_err(), "{bad}");
        }
        let two = [weekly(), weekly()];
        assert!(problems(&two).iter().any(|i| i.key == "maintenance[1].id"));
    }
}
