//! Maintenance windows (`maintenance[]`): one-off or recurring spans of
//! time during which the things they cover — targets by id or by labels,
//! routers, whole locations — page no one. The collector skips (or, with
//! `checks: continue`, runs but does not count) the covered targets'
//! checks, so the window's time counts neither for nor against uptime; the
//! alert engine mutes covered alerts (`suppressed_by: maintenance:<id>`).
//!
//! A window is either `start`/`end` (repeated every `repeat_every`, if set)
//! or a `cron` expression (five fields, UTC, parsed once by `croner`) giving
//! each start, with a `duration`; `start` then bounds the first, and
//! `repeat_until` the last.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::validate::is_subject_token;
use crate::{Invalid, duration};

/// Shortest repeat of a recurring window.
const MIN_REPEAT: Duration = Duration::from_secs(60);
/// Longest window of a cron schedule.
const MAX_CRON_DURATION: Duration = Duration::from_secs(31 * 86_400);
/// Longest cron expression, in bytes.
const MAX_CRON: usize = 256;
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
    /// The (first) start, RFC 3339, e.g. `2026-12-05T02:00:00Z`; with
    /// `cron`, optional: no window starts before it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::option")]
    pub start: Option<SystemTime>,
    /// The (first) end, after `start`; not with `cron` (say `duration`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::option")]
    pub end: Option<SystemTime>,
    /// When each window starts: a cron expression of five fields (minute,
    /// hour, day of month, month, day of week), in UTC, e.g. `0 2 * * SAT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<CronSchedule>,
    /// How long each window of `cron` lasts (1 minute to 31 days).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "duration::option")]
    pub duration: Option<Duration>,
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
        if let (Some(cron), Some(len)) = (&self.cron, self.duration) {
            return cron.holds(now, len, self.start, self.repeat_until);
        }
        let (Some(start), Some(end)) = (self.start, self.end) else {
            return false;
        };
        let Some(every) = self.repeat_every.filter(|e| !e.is_zero()) else {
            return start <= now && now < end;
        };
        if now < start || self.repeat_until.is_some_and(|u| now >= u) {
            return false;
        }
        let since = now.duration_since(start).unwrap_or_default().as_nanos();
        let len = end.duration_since(start).unwrap_or_default().as_nanos();
        since % every.as_nanos() < len
    }

    /// Whether it covers the router `id` (with `labels`, polled from
    /// `location`): by id, by location, or by labels.
    pub fn covers_router(&self, id: &str, labels: &BTreeMap<String, String>, location: &str) -> bool {
        self.routers.iter().any(|r| r == id)
            || self.locations.iter().any(|l| l == location)
            || (!self.labels.is_empty() && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v)))
    }

    /// Whether it covers the target `id` with `labels`, checked at `location`.
    pub fn covers_target(&self, id: &str, labels: &crate::Labels, location: &str) -> bool {
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

/// A cron expression (five fields, UTC), parsed once where it is read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CronSchedule {
    text: String,
    cron: croner::Cron,
}

impl CronSchedule {
    /// Parses `text`; the error says what is wrong.
    pub fn new(text: &str) -> Result<Self, String> {
        if text.len() > MAX_CRON {
            return Err(format!(
                "`{}` is too long: a cron expression has at most {MAX_CRON} bytes",
                crate::types::quote(text)
            ));
        }
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .build();
        let cron = parser.parse(text.trim()).map_err(|e| {
            format!(
                "`{}` is not a cron expression of five fields (minute hour day-of-month month day-of-week, e.g. `0 2 * * SAT`): {e}",
                crate::types::quote(text)
            )
        })?;
        // A pattern that never matches (`0 0 30 2 *`) is no schedule.
        let epoch = chrono::DateTime::<chrono::Utc>::from(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600));
        cron.find_next_occurrence(&epoch, true)
            .map_err(|e| format!("`{}` never starts a window: {e}", crate::types::quote(text)))?;
        Ok(Self {
            text: text.trim().to_owned(),
            cron,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether a window of `len` started by this schedule holds at `now`:
    /// its latest start at or before `now` is less than `len` ago, not
    /// before `from` and before `until`.
    pub fn holds(&self, now: SystemTime, len: Duration, from: Option<SystemTime>, until: Option<SystemTime>) -> bool {
        let at = chrono::DateTime::<chrono::Utc>::from(now);
        let Ok(last) = self.cron.find_previous_occurrence(&at, true) else {
            return false;
        };
        let last = SystemTime::from(last);
        now.duration_since(last).is_ok_and(|ago| ago < len)
            && from.is_none_or(|f| last >= f)
            && until.is_none_or(|u| last < u)
    }
}

impl TryFrom<String> for CronSchedule {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Self::new(&s)
    }
}

impl From<CronSchedule> for String {
    fn from(c: CronSchedule) -> Self {
        c.text
    }
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
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
    target: (&str, &crate::Labels, &str),
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

/// Whether a window of `windows` that pauses checks holds the router `id`
/// (with `labels`, polled from `location`) at `now`: its polling pauses.
pub fn pauses_router<'a>(
    windows: &'a [MaintenanceWindow],
    router: (&str, &BTreeMap<String, String>, &str),
    now: SystemTime,
) -> Option<&'a MaintenanceWindow> {
    let (id, labels, location) = router;
    windows
        .iter()
        .find(|w| w.checks == MaintenanceChecks::Pause && w.covers_router(id, labels, location) && w.is_active(now))
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
        if w.cron.is_some() {
            match w.duration {
                None => add(
                    i,
                    "duration",
                    "",
                    "is required with `cron`: how long each window lasts, e.g. 2h",
                ),
                Some(d) if !(MIN_REPEAT..=MAX_CRON_DURATION).contains(&d) => {
                    add(i, "duration", &duration::format(d), "must be between 1m and 31d");
                }
                Some(_) => {}
            }
            if let Some(end) = w.end {
                add(i, "end", &time_text(end), "is not used with `cron`: say `duration`");
            }
            if let Some(every) = w.repeat_every {
                add(
                    i,
                    "repeat_every",
                    &duration::format(every),
                    "is not used with `cron`: the expression repeats it",
                );
            }
            if let (Some(start), Some(until)) = (w.start, w.repeat_until)
                && until <= start
            {
                add(i, "repeat_until", &time_text(until), "must be after `start`");
            }
        } else {
            if let Some(d) = w.duration {
                add(
                    i,
                    "duration",
                    &duration::format(d),
                    "needs `cron` (with `start`, say `end`)",
                );
            }
            match (w.start, w.end) {
                (None, _) => add(
                    i,
                    "start",
                    "",
                    "is required (an RFC 3339 time), or give `cron` and `duration`",
                ),
                (Some(_), None) => add(i, "end", "", "is required (an RFC 3339 time after `start`)"),
                (Some(start), Some(end)) => {
                    if end <= start {
                        add(i, "end", &time_text(end), "must be after `start`");
                    }
                    let len = end.duration_since(start).unwrap_or_default();
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
                            add(i, "repeat_until", &time_text(until), "needs `repeat_every` or `cron`");
                        } else if until <= start {
                            add(i, "repeat_until", &time_text(until), "must be after `start`");
                        }
                    }
                }
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
        if w.labels.len() > MAX_ITEMS {
            add(i, "labels", "", "must list at most 1000 labels");
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
        let site_labels = crate::Labels::from(site.clone());
        assert!(w.covers_target("web", &site_labels, "local"));
        assert!(!w.covers_target("web", &crate::Labels::new(), "local"));
        assert!(w.covers_alert(&site));
        let one = std::slice::from_ref(&w);
        let now = at("2026-12-19T02:01:00Z");
        assert!(holds(one, ("web", &site_labels, "x"), MaintenanceChecks::Pause, now));
        assert!(holds(one, ("web", &site_labels, "x"), MaintenanceChecks::Continue, now));
        let mut going_on = w.clone();
        going_on.checks = MaintenanceChecks::Continue;
        let one = std::slice::from_ref(&going_on);
        assert!(
            !holds(one, ("web", &site_labels, "x"), MaintenanceChecks::Pause, now),
            "checks go on"
        );
        assert!(holds(one, ("web", &site_labels, "x"), MaintenanceChecks::Continue, now));
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

    #[test]
    fn a_cron_window_holds_for_its_duration_after_each_start() {
        let w: MaintenanceWindow =
            serde_yaml::from_str("{id: sat, cron: '0 2 * * SAT', duration: 2h, routers: [core-1], checks: pause}")
                .unwrap();
        assert!(
            problems(std::slice::from_ref(&w)).is_empty(),
            "{:?}",
            problems(std::slice::from_ref(&w))
        );
        assert!(!w.is_active(at("2026-12-05T01:59:59Z")));
        assert!(w.is_active(at("2026-12-05T02:00:00Z")));
        assert!(w.is_active(at("2026-12-05T03:59:59Z")));
        assert!(!w.is_active(at("2026-12-05T04:00:00Z")));
        assert!(!w.is_active(at("2026-12-06T02:30:00Z")), "a Sunday");
        assert!(w.is_active(at("2027-03-06T02:30:00Z")));
        let none = BTreeMap::new();
        let now = at("2026-12-12T03:00:00Z");
        assert_eq!(
            pauses_router(std::slice::from_ref(&w), ("core-1", &none, "jkt"), now).map(|w| w.id.as_str()),
            Some("sat")
        );
        assert!(pauses_router(std::slice::from_ref(&w), ("core-2", &none, "jkt"), now).is_none());
        let mut going_on = w.clone();
        going_on.checks = MaintenanceChecks::Continue;
        assert!(
            pauses_router(std::slice::from_ref(&going_on), ("core-1", &none, "jkt"), now).is_none(),
            "polls go on with `checks: continue`"
        );
        // Bounded by `start` and `repeat_until`.
        let bounded: MaintenanceWindow = serde_yaml::from_str(
            "{id: b, cron: '*/10 * * * *', duration: 5m, start: '2026-12-05T00:00:00Z', repeat_until: '2026-12-06T00:00:00Z', targets: [x]}",
        )
        .unwrap();
        assert!(problems(std::slice::from_ref(&bounded)).is_empty());
        assert!(!bounded.is_active(at("2026-12-04T23:52:00Z")));
        assert!(bounded.is_active(at("2026-12-05T00:04:59Z")));
        assert!(!bounded.is_active(at("2026-12-05T00:05:00Z")));
        assert!(bounded.is_active(at("2026-12-05T23:51:00Z")));
        assert!(!bounded.is_active(at("2026-12-06T00:01:00Z")));
        // It prints back as it was written.
        let text = serde_yaml::to_string(&w).unwrap();
        assert!(
            text.contains("cron: 0 2 * * SAT") && text.contains("duration: 2h"),
            "{text}"
        );
        assert_eq!(serde_yaml::from_str::<MaintenanceWindow>(&text).unwrap(), w);
    }

    #[test]
    fn hostile_cron_windows_are_refused_naming_the_key() {
        let huge = "1 ".repeat(1 << 19);
        for (cron, why) in [
            ("61 * * * *", "not a cron expression"),
            ("* * * *", "not a cron expression"),
            ("0 0 * * * *", "not a cron expression"),
            ("every saturday", "not a cron expression"),
            ("0 0 30 2 *", "never starts"),
            ("", "not a cron expression"),
            ("0 2 * * FUNDAY", "not a cron expression"),
            (huge.as_str(), "too long"),
        ] {
            let yaml = format!("{{id: a, cron: '{cron}', duration: 1h, targets: [x]}}");
            let e = serde_yaml::from_str::<MaintenanceWindow>(&yaml)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{cron:.30}: {e:.300}");
            assert!(e.len() < 1000, "quoted briefly: {}", e.len());
        }
        for bad in [
            "{id: a, cron: [0, 2], duration: 1h, targets: [x]}",
            "{id: a, cron: 5, duration: 1h, targets: [x]}",
            "{id: a, cron: '0 2 * * *', duration: soon, targets: [x]}",
            "{id: a, cron: '0 2 * * *', duration: -1h, targets: [x]}",
            "{id: a, cron: '0 2 * * *', duration: 1h, targets: [x], timezone: WIB}",
        ] {
            assert!(serde_yaml::from_str::<MaintenanceWindow>(bad).is_err(), "{bad}");
        }
        for (yaml, key) in [
            ("{id: a, cron: '0 2 * * *', targets: [x]}", "maintenance[0].duration"),
            (
                "{id: a, cron: '0 2 * * *', duration: 0s, targets: [x]}",
                "maintenance[0].duration",
            ),
            (
                "{id: a, cron: '0 2 * * *', duration: 40d, targets: [x]}",
                "maintenance[0].duration",
            ),
            (
                "{id: a, cron: '0 2 * * *', duration: 1h, end: '2026-12-05T04:00:00Z', targets: [x]}",
                "maintenance[0].end",
            ),
            (
                "{id: a, cron: '0 2 * * *', duration: 1h, repeat_every: 7d, targets: [x]}",
                "maintenance[0].repeat_every",
            ),
            (
                "{id: a, cron: '0 2 * * *', duration: 1h, start: '2026-12-05T00:00:00Z', repeat_until: '2026-12-04T00:00:00Z', targets: [x]}",
                "maintenance[0].repeat_until",
            ),
            (
                "{id: a, start: '2026-12-05T02:00:00Z', end: '2026-12-05T04:00:00Z', duration: 1h, targets: [x]}",
                "maintenance[0].duration",
            ),
            ("{id: a, targets: [x]}", "maintenance[0].start"),
            (
                "{id: a, start: '2026-12-05T02:00:00Z', targets: [x]}",
                "maintenance[0].end",
            ),
        ] {
            let w: MaintenanceWindow = serde_yaml::from_str(yaml).unwrap();
            let p = problems(&[w]);
            assert!(p.iter().any(|i| i.key == key), "{yaml}: {p:?}");
        }
    }
}
