//! Escalation policies (`notifier.escalations`), which routes name with
//! `notifier.routes[].escalation`: what happens to a firing alert nobody
//! acknowledges, and to an acknowledged one nobody resolves.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::duration::format as fmt_d;
use super::types::EscalationDelay;
use super::{Invalid, NotifierConfig, text};

/// Most policies, and most steps in one policy.
pub const MAX_ESCALATIONS: usize = 64;
pub const MAX_STEPS: usize = 16;

/// One escalation policy. While the alert is firing and not acknowledged,
/// the route's channels (and those of every step reached) are notified again
/// every `repeat_every`, and each step adds its channels `after` the firing;
/// once acknowledged, the route's channels are reminded every
/// `remind_every` until it resolves. Each repeat, step and reminder is a
/// delivery of its own (its own idempotency key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    /// Unique name routes refer to.
    #[serde(deserialize_with = "text::deserialize")]
    pub name: String,
    /// Notify again this often while nobody acknowledged (1s–30d); none: no repeats.
    #[serde(default)]
    pub repeat_every: Option<EscalationDelay>,
    /// Further channels, each `after` the firing (ascending, at most 16).
    #[serde(default)]
    pub steps: Vec<EscalationStep>,
    /// Acknowledged but not resolved: remind the route's channels this often
    /// (1s–30d); none: no reminders.
    #[serde(default)]
    pub remind_every: Option<EscalationDelay>,
}

/// "After 30 min also notify channel B".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    /// Time since the alert fired (1s–30d).
    pub after: EscalationDelay,
    /// Channel names notified from then on.
    pub channels: Vec<String>,
}

/// Every problem of `notifier.escalations` and of the routes' `escalation`.
pub(super) fn problems(n: &NotifierConfig) -> Vec<Invalid> {
    let mut out = Vec::new();
    let mut add = |key: String, value: String, allowed: &str| {
        out.push(Invalid {
            key,
            value,
            allowed: allowed.to_owned(),
        });
    };
    if n.escalations.len() > MAX_ESCALATIONS {
        add(
            "notifier.escalations".into(),
            n.escalations.len().to_string(),
            "must list at most 64 policies",
        );
    }
    let mut names = HashSet::new();
    for (i, e) in n.escalations.iter().enumerate() {
        let key = |f: &str| format!("notifier.escalations[{i}].{f}");
        if !super::is_token(&e.name) {
            add(
                key("name"),
                e.name.clone(),
                "must be 1–128 characters of letters, digits, `-` or `_`",
            );
        } else if !names.insert(e.name.as_str()) {
            add(
                key("name"),
                e.name.clone(),
                "must be unique: another policy has this name",
            );
        }
        if e.repeat_every.is_none() && e.steps.is_empty() && e.remind_every.is_none() {
            add(
                key("repeat_every"),
                String::new(),
                "a policy needs repeat_every, steps or remind_every",
            );
        }
        if e.steps.len() > MAX_STEPS {
            add(key("steps"), e.steps.len().to_string(), "must list at most 16 steps");
        }
        let mut last = None;
        for (j, s) in e.steps.iter().enumerate() {
            let skey = |f: &str| format!("notifier.escalations[{i}].steps[{j}].{f}");
            if last.is_some_and(|l| s.after <= l) {
                add(
                    skey("after"),
                    fmt_d(s.after.get()),
                    "must be later than the step before it",
                );
            }
            last = Some(s.after);
            if s.channels.is_empty() {
                add(skey("channels"), String::new(), "must name at least one channel");
            }
            for ch in &s.channels {
                if !n.channels.iter().any(|c| &c.name == ch) {
                    add(
                        skey("channels"),
                        ch.clone(),
                        "must name a channel defined in notifier.channels",
                    );
                }
            }
        }
    }
    for (i, r) in n.routes.iter().enumerate() {
        if let Some(name) = &r.escalation
            && !n.escalations.iter().any(|e| &e.name == name)
        {
            add(
                format!("notifier.routes[{i}].escalation"),
                name.clone(),
                "must name a policy defined in notifier.escalations",
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// What the YAML loader says: the key, never a panic or a default.
    fn load(yaml: &str) -> Result<crate::Config, String> {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), yaml).unwrap();
        let opts = crate::LoadOptions {
            file: Some(f.path().to_owned()),
            env: vec![],
        };
        crate::Config::load(&opts).map_err(|e| e.to_string())
    }

    const CHANNELS: &str = "notifier:\n  channels:\n    - {name: a, type: webhook, url: 'http://127.0.0.1:9/a'}\n    - {name: b, type: webhook, url: 'http://127.0.0.1:9/b'}\n";

    fn with(rest: &str) -> String {
        format!("{CHANNELS}{rest}")
    }

    #[test]
    fn hostile_environment_is_refused_naming_the_key() {
        for (name, value) in [
            ("PANTAU_NOTIFIER__ESCALATIONS", "nope"),
            ("PANTAU_NOTIFIER__ESCALATIONS", "[{name: p, repeat_every: 0s}]"),
        ] {
            let opts = crate::LoadOptions {
                file: None,
                env: vec![(name.to_owned(), value.to_owned())],
            };
            let e = crate::Config::load(&opts).unwrap_err().to_string();
            assert!(e.contains("escalations"), "{name}={value} → {e}");
        }
    }

    #[test]
    fn a_policy_loads_into_bounded_types() {
        let c = load(&with(
            "  routes: [{channels: [a], escalation: oncall}]\n  escalations:\n    - name: oncall\n      repeat_every: 10m\n      steps: [{after: 30m, channels: [b]}]\n      remind_every: 4h\n",
        ))
        .unwrap();
        let e = &c.notifier.escalations[0];
        assert_eq!(e.repeat_every.unwrap().get().as_secs(), 600);
        assert_eq!(e.steps[0].after.get().as_secs(), 1800);
        assert_eq!(e.remind_every.unwrap().get().as_secs(), 4 * 3600);
        assert_eq!(c.notifier.routes[0].escalation.as_deref(), Some("oncall"));
    }

    #[test]
    fn hostile_policies_are_refused_naming_the_key() {
        let cases = [
            // wrong types
            ("  escalations: 12\n", "escalations"),
            ("  escalations: [{name: p, repeat_every: [1]}]\n", "repeat_every"),
            ("  escalations: [{name: p, steps: nope}]\n", "steps"),
            (
                "  escalations: [{name: p, steps: [{after: 1m, channels: b}]}]\n",
                "channels",
            ),
            ("  escalations: [{name: p, repeat_every: true}]\n", "repeat_every"),
            // unknown fields
            ("  escalations: [{name: p, repeat_every: 1m, colour: red}]\n", "colour"),
            (
                "  escalations: [{name: p, steps: [{after: 1m, channels: [b], then: x}]}]\n",
                "then",
            ),
            // out of range and garbage durations
            ("  escalations: [{name: p, repeat_every: 0s}]\n", "repeat_every"),
            ("  escalations: [{name: p, repeat_every: 500ms}]\n", "repeat_every"),
            ("  escalations: [{name: p, remind_every: 3000d}]\n", "remind_every"),
            ("  escalations: [{name: p, repeat_every: -5s}]\n", "repeat_every"),
            ("  escalations: [{name: p, repeat_every: soon}]\n", "repeat_every"),
            (
                "  escalations: [{name: p, steps: [{after: 99999999999999999999s, channels: [b]}]}]\n",
                "after",
            ),
            // missing fields and semantic errors
            ("  escalations: [{repeat_every: 1m}]\n", "name"),
            ("  escalations: [{name: p, steps: [{channels: [b]}]}]\n", "after"),
            ("  escalations: [{name: p}]\n", "notifier.escalations[0].repeat_every"),
            (
                "  escalations: [{name: 'p q', repeat_every: 1m}]\n",
                "notifier.escalations[0].name",
            ),
            (
                "  escalations: [{name: p, repeat_every: 1m}, {name: p, repeat_every: 2m}]\n",
                "notifier.escalations[1].name",
            ),
            (
                "  escalations: [{name: p, steps: [{after: 2m, channels: [b]}, {after: 1m, channels: [a]}]}]\n",
                "notifier.escalations[0].steps[1].after",
            ),
            (
                "  escalations: [{name: p, steps: [{after: 2m, channels: [nope]}]}]\n",
                "notifier.escalations[0].steps[0].channels",
            ),
            (
                "  escalations: [{name: p, steps: [{after: 2m, channels: []}]}]\n",
                "notifier.escalations[0].steps[0].channels",
            ),
            (
                "  routes: [{channels: [a], escalation: nope}]\n",
                "notifier.routes[0].escalation",
            ),
            ("  routes: [{channels: [a], escalation: 7}]\n", "escalation"),
        ];
        for (yaml, key) in cases {
            let e = load(&with(yaml)).err().unwrap_or_else(|| panic!("{yaml:?} loaded"));
            assert!(e.contains(key), "{yaml:?} → {e}");
        }
        let huge = with(&format!(
            "  escalations: [{{name: \"{}\", repeat_every: 1m}}]\n",
            "x".repeat(1 << 20)
        ));
        let e = load(&huge).unwrap_err();
        assert!(
            e.contains("notifier.escalations[0].name") || e.contains("name"),
            "{}",
            &e[..200.min(e.len())]
        );
        assert!(
            e.len() < 2000,
            "quotes at most a little of the input: {} bytes",
            e.len()
        );
        let many = (0..17)
            .map(|i| format!("{{after: {}s, channels: [b]}}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let e = load(&with(&format!("  escalations: [{{name: p, steps: [{many}]}}]\n"))).unwrap_err();
        assert!(e.contains("notifier.escalations[0].steps"), "{e}");
    }
}
