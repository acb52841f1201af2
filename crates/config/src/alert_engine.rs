//! `alert_engine`: the alert engine's ports, evaluation cadence, retention
//! and rules (inline and from files). The rule expressions themselves are
//! parsed by the alert engine at start-up, which names the rule and the
//! position of a parse error.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;
use super::duration::format as fmt_d;
use super::validate::is_subject_token;
use super::{Config, Invalid};

/// The alert engine service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertEngineConfig {
    /// gRPC port of `AlertEngineService`.
    pub grpc_port: u16,
    /// Admin port (`/metrics`, `/healthz`, `/readyz`) when run alone.
    pub admin_port: u16,
    /// Period of the sweep that re-evaluates every rule (for `for` durations
    /// and for data that stopped arriving).
    #[serde(with = "duration")]
    pub sweep_interval: Duration,
    /// A sample older than this no longer counts as the current value of its series.
    #[serde(with = "duration")]
    pub staleness: Duration,
    /// How long samples stay in the in-memory window store (the longest
    /// `[range]` a rule can look back over).
    #[serde(with = "duration")]
    pub window: Duration,
    /// Most series (metric + labels) kept in memory; new series beyond it are dropped and counted.
    pub max_series: usize,
    /// Most samples kept per series.
    pub max_samples_per_series: usize,
    /// Cooldown of rules that do not set their own.
    #[serde(with = "duration")]
    pub default_cooldown: Duration,
    /// How long resolved alerts and their audit trail are kept.
    #[serde(with = "duration")]
    pub retention: Duration,
    /// Whether the shipped default rules are loaded (a rule with the same id replaces one).
    pub default_rules: bool,
    /// YAML files, each a list of rules (the same shape as `rules`).
    pub rules_files: Vec<PathBuf>,
    /// Rules written inline.
    pub rules: Vec<AlertRuleConfig>,
    /// A Prometheus Alertmanager to push firing and resolved alerts to (API
    /// v2, `POST /api/v2/alerts`), e.g. `http://127.0.0.1:9093`; open alerts
    /// are re-sent every sweep so Alertmanager does not time them out.
    pub alertmanager_url: Option<String>,
    /// An external dead man's switch (like Alertmanager's `Watchdog`): off
    /// until `watchdog.url` is set.
    pub watchdog: WatchdogConfig,
    /// How alerts form incidents: alerts held by the same dependency parent
    /// always share one; other alerts share one when they agree on the
    /// `group_by` labels and fire within `window` of its latest alert.
    pub incidents: IncidentsConfig,
    /// Dependencies the engine works out itself, besides each target's
    /// `depends_on`.
    pub dependencies: DependenciesConfig,
}

/// `alert_engine.dependencies`: dependencies derived from what the WAN
/// detector knows. Off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DependenciesConfig {
    /// Every target whose `site_label` names a site is held by that site's
    /// router (the router whose own `labels` carry the same value) while
    /// all of the router's WAN links (as the WAN detector classified them)
    /// are down: one page for the uplinks, none for what is behind them.
    pub derive_from_wan: bool,
    /// The label naming a target's and a router's site.
    pub site_label: String,
}

impl Default for DependenciesConfig {
    fn default() -> Self {
        Self {
            derive_from_wan: false,
            site_label: "site".to_owned(),
        }
    }
}

/// `alert_engine.incidents`: grouping alerts into incidents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentsConfig {
    /// Labels whose values, together, make an alert's grouping key;
    /// `alertname` is the rule id. Empty: one group for every alert.
    pub group_by: Vec<String>,
    /// An alert joins an open incident of its key only if that incident's
    /// latest alert joined less than this long ago; else it opens a new one.
    #[serde(with = "duration")]
    pub window: Duration,
}

/// Most labels `alert_engine.incidents.group_by` may list.
pub const MAX_GROUP_BY: usize = 16;

impl Default for IncidentsConfig {
    fn default() -> Self {
        Self {
            group_by: vec!["alertname".to_owned()],
            window: Duration::from_secs(300),
        }
    }
}

/// The always-firing heartbeat to an external dead man's switch
/// (healthchecks.io, Dead Man's Snitch, Opsgenie heartbeats, a cron
/// monitor): while the alert engine keeps evaluating its rules, it POSTs a
/// heartbeat to `url` every `interval`; when Pantau stops watching (the
/// process, the host or the evaluation stalls), the heartbeats stop and the
/// switch pages someone from outside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchdogConfig {
    /// Where heartbeats go (an http:// or https:// URL; its path often is
    /// the switch's secret, so `config print` masks it); unset = off.
    pub url: Option<String>,
    /// Time between heartbeats; the switch should expect one at least this
    /// often (allow it two or three missed ones).
    #[serde(with = "duration")]
    pub interval: Duration,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        Self {
            url: None,
            interval: Duration::from_secs(60),
        }
    }
}

impl Default for AlertEngineConfig {
    fn default() -> Self {
        Self {
            grpc_port: 50053,
            admin_port: 9103,
            sweep_interval: Duration::from_secs(30),
            staleness: Duration::from_secs(300),
            window: Duration::from_secs(3600),
            max_series: 1_000_000,
            max_samples_per_series: 1_000,
            default_cooldown: Duration::from_secs(300),
            retention: Duration::from_secs(30 * 86_400),
            default_rules: true,
            rules_files: Vec::new(),
            rules: Vec::new(),
            alertmanager_url: None,
            watchdog: WatchdogConfig::default(),
            incidents: IncidentsConfig::default(),
            dependencies: DependenciesConfig::default(),
        }
    }
}

/// Severity of a rule's alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    Info,
    #[default]
    Warning,
    Critical,
}

/// One alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleConfig {
    /// Unique id: letters, digits, `-` or `_`.
    pub id: String,
    /// Human name; the id when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The condition, e.g. `check_up{target="api"} == 0 for 1m`.
    pub expr: String,
    /// info, warning or critical.
    #[serde(default)]
    pub severity: AlertSeverity,
    /// Summary template: `{{ $labels.NAME }}` and `{{ $value }}` are filled in.
    #[serde(default)]
    pub message: String,
    /// Labels added to every alert of the rule.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How long the condition must hold before firing (a `for` in `expr` wins).
    #[serde(default, rename = "for", with = "duration::option")]
    pub for_: Option<Duration>,
    /// Minimum time between a resolve and the next firing; `default_cooldown` when absent.
    #[serde(default, with = "duration::option")]
    pub cooldown: Option<Duration>,
    /// Disabled rules are kept but not evaluated.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Rule ids this rule depends on: while an alert of one of them is open
    /// with the same values of the labels both share, this rule's alerts are
    /// recorded but notify no one (one page per root cause).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// 1–64 letters, digits or `_`, not starting with a digit.
fn is_label_name(l: &str) -> bool {
    (1..=64).contains(&l.len())
        && l.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn yes() -> bool {
    true
}

/// Every problem of the `alert_engine` section (and `gateway.alert_engine_url`), each naming its key.
pub(super) fn problems(c: &Config) -> Vec<Invalid> {
    let a = &c.alert_engine;
    let mut out = Vec::new();
    let mut add = |key: String, value: String, allowed: &str| {
        out.push(Invalid {
            key,
            value,
            allowed: allowed.to_owned(),
        });
    };
    if a.sweep_interval < Duration::from_secs(1) {
        add(
            "alert_engine.sweep_interval".into(),
            fmt_d(a.sweep_interval),
            "must be at least 1s",
        );
    }
    if a.staleness < Duration::from_secs(1) {
        add(
            "alert_engine.staleness".into(),
            fmt_d(a.staleness),
            "must be at least 1s",
        );
    }
    if a.window < Duration::from_secs(60) {
        add("alert_engine.window".into(), fmt_d(a.window), "must be at least 1m");
    }
    if a.max_series == 0 {
        add("alert_engine.max_series".into(), "0".into(), "must be greater than 0");
    }
    if a.max_samples_per_series < 2 {
        add(
            "alert_engine.max_samples_per_series".into(),
            a.max_samples_per_series.to_string(),
            "must be at least 2",
        );
    }
    if a.retention < Duration::from_secs(3600) {
        add(
            "alert_engine.retention".into(),
            fmt_d(a.retention),
            "must be at least 1h",
        );
    }
    let u = &c.gateway.alert_engine_url;
    if crate::types::check_http_url(u).is_err() {
        add(
            "gateway.alert_engine_url".into(),
            u.clone(),
            "must be an http:// or https:// URL such as http://127.0.0.1:50053",
        );
    }
    if let Some(u) = &a.alertmanager_url
        && crate::types::check_http_url(u).is_err()
    {
        add(
            "alert_engine.alertmanager_url".into(),
            super::mask_url_password(u),
            "must be an http:// or https:// URL such as http://127.0.0.1:9093",
        );
    }
    if let Some(u) = &a.watchdog.url
        && crate::types::check_http_url(u).is_err()
    {
        add(
            "alert_engine.watchdog.url".into(),
            crate::notifier::mask_channel_url(crate::ChannelType::Webhook, u),
            "must be an http:// or https:// URL such as https://hc-ping.com/<uuid>",
        );
    }
    if a.watchdog.interval < Duration::from_secs(1) || a.watchdog.interval > Duration::from_secs(86_400) {
        add(
            "alert_engine.watchdog.interval".into(),
            fmt_d(a.watchdog.interval),
            "must be between 1s and 24h",
        );
    }
    let inc = &a.incidents;
    if inc.window < Duration::from_secs(1) || inc.window > Duration::from_secs(86_400) {
        add(
            "alert_engine.incidents.window".into(),
            fmt_d(inc.window),
            "must be between 1s and 24h",
        );
    }
    if inc.group_by.len() > MAX_GROUP_BY {
        add(
            "alert_engine.incidents.group_by".into(),
            format!("{} labels", inc.group_by.len()),
            "must list at most 16 labels",
        );
    }
    if !is_label_name(&a.dependencies.site_label) {
        add(
            "alert_engine.dependencies.site_label".into(),
            crate::types::quote(&a.dependencies.site_label).into_owned(),
            "must be a label name: 1–64 letters, digits or `_`, not starting with a digit",
        );
    }
    let mut labels = HashSet::new();
    for (i, l) in inc.group_by.iter().enumerate().take(MAX_GROUP_BY) {
        if !is_label_name(l) {
            add(
                format!("alert_engine.incidents.group_by[{i}]"),
                crate::types::quote(l).into_owned(),
                "must be a label name: 1–64 letters, digits or `_`, not starting with a digit",
            );
        } else if !labels.insert(l.as_str()) {
            add(
                format!("alert_engine.incidents.group_by[{i}]"),
                l.clone(),
                "must be unique: the label is listed twice",
            );
        }
    }
    let mut seen = HashSet::new();
    for (i, r) in a.rules.iter().enumerate() {
        if !is_subject_token(&r.id) {
            add(
                format!("alert_engine.rules[{i}].id"),
                r.id.clone(),
                "must be 1–128 characters of letters, digits, `-` or `_`",
            );
        } else if r.id == crate::MANUAL_RULE {
            add(
                format!("alert_engine.rules[{i}].id"),
                r.id.clone(),
                "is reserved for alerts raised by hand: choose another id",
            );
        } else if !seen.insert(r.id.as_str()) {
            add(
                format!("alert_engine.rules[{i}].id"),
                r.id.clone(),
                "must be unique: another rule has this id",
            );
        }
        if r.expr.trim().is_empty() {
            add(
                format!("alert_engine.rules[{i}].expr"),
                String::new(),
                "is required, e.g. `check_up == 0 for 1m`",
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_from_yaml_and_bad_ids_are_named() {
        let yaml = "alert_engine:\n  rules:\n    - id: down\n      expr: check_up == 0\n      for: 1m\n      severity: critical\n    - id: down\n      expr: ' '\n";
        let c: Config = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(c.alert_engine.rules[0].for_, Some(Duration::from_secs(60)));
        assert_eq!(c.alert_engine.rules[0].severity, AlertSeverity::Critical);
        assert!(c.alert_engine.rules[0].enabled);
        let keys: Vec<String> = problems(&c).into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["alert_engine.rules[1].id", "alert_engine.rules[1].expr"]);
    }

    #[test]
    fn the_manual_rule_id_is_reserved() {
        let yaml = "alert_engine:\n  rules:\n    - id: manual\n      expr: check_up == 0\n";
        let c: Config = serde_yaml::from_str(yaml).unwrap();
        let p = problems(&c);
        assert_eq!(p[0].key, "alert_engine.rules[0].id");
        assert!(p[0].allowed.contains("reserved"), "{}", p[0].allowed);
    }

    #[test]
    fn incidents_have_sane_defaults_and_bad_values_are_named() {
        let c = Config::default();
        assert_eq!(c.alert_engine.incidents.group_by, ["alertname"]);
        assert_eq!(c.alert_engine.incidents.window, Duration::from_secs(300));
        let yaml = "alert_engine:\n  incidents:\n    group_by: [site, alertname]\n    window: 10m\n";
        let c: Config = serde_yaml::from_str(yaml).unwrap();
        assert!(problems(&c).is_empty());
        assert_eq!(c.alert_engine.incidents.window, Duration::from_secs(600));
        let huge = "x".repeat(10_000);
        let yaml = format!(
            "alert_engine:\n  incidents:\n    group_by: [site, site, '9lives', 'a b', '{huge}']\n    window: 0s\n"
        );
        let c: Config = serde_yaml::from_str(&yaml).unwrap();
        let found = problems(&c);
        let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "alert_engine.incidents.window",
                "alert_engine.incidents.group_by[1]",
                "alert_engine.incidents.group_by[2]",
                "alert_engine.incidents.group_by[3]",
                "alert_engine.incidents.group_by[4]",
            ]
        );
        assert!(
            found.iter().all(|p| p.value.len() < 200),
            "a huge label is quoted briefly"
        );
        let many: Vec<String> = (0..17).map(|i| format!("l{i}")).collect();
        let yaml = format!("alert_engine:\n  incidents:\n    group_by: [{}]\n", many.join(", "));
        let c: Config = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(problems(&c)[0].key, "alert_engine.incidents.group_by");
        for bad in [
            "alert_engine:\n  incidents:\n    group_by: site\n",
            "alert_engine:\n  incidents:\n    window: soon\n",
            "alert_engine:\n  incidents:\n    window: -5m\n",
            "alert_engine:\n  incidents:\n    grup_by: [site]\n",
            "alert_engine:\n  incidents:\n    group_by: [1, {a: b}]\n",
        ] {
            assert!(serde_yaml::from_str::<Config>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_dependencies_are_off_by_default_and_their_label_is_checked() {
        let c = Config::default();
        assert!(!c.alert_engine.dependencies.derive_from_wan);
        assert_eq!(c.alert_engine.dependencies.site_label, "site");
        let yaml = "alert_engine:\n  dependencies:\n    derive_from_wan: true\n    site_label: branch\n";
        let c: Config = serde_yaml::from_str(yaml).unwrap();
        assert!(problems(&c).is_empty());
        assert!(c.alert_engine.dependencies.derive_from_wan);
        let huge = "y".repeat(100_000);
        for label in ["''", "'9x'", "'a b'", "'a\\u0000'", huge.as_str()] {
            let yaml = format!("alert_engine:\n  dependencies:\n    site_label: {label}\n");
            let c: Config = serde_yaml::from_str(&yaml).unwrap();
            let found = problems(&c);
            assert_eq!(found.len(), 1, "{label:.20}: {found:?}");
            assert_eq!(found[0].key, "alert_engine.dependencies.site_label");
            assert!(found[0].value.len() < 200, "quoted briefly");
        }
        for bad in [
            "alert_engine:\n  dependencies:\n    derive_from_wan: maybe\n",
            "alert_engine:\n  dependencies:\n    derive_from_wan: 1.5\n",
            "alert_engine:\n  dependencies:\n    site_label: [a]\n",
            "alert_engine:\n  dependencies:\n    derive: true\n",
        ] {
            let e = serde_yaml::from_str::<Config>(bad).unwrap_err().to_string();
            assert!(
                e.contains("dependencies") || e.contains("derive") || e.contains("site_label"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn the_watchdog_is_off_by_default_and_checked_when_on() {
        let c = Config::default();
        assert_eq!(c.alert_engine.watchdog.url, None);
        assert!(problems(&c).is_empty());
        let yaml = "alert_engine:\n  watchdog:\n    url: ftp://switch/abc\n    interval: 0s\n";
        let c: Config = serde_yaml::from_str(yaml).unwrap();
        let keys: Vec<String> = problems(&c).into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["alert_engine.watchdog.url", "alert_engine.watchdog.interval"]);
        let yaml = "alert_engine:\n  watchdog:\n    url: https://hc-ping.com/0b1c2d3e\n    interval: 30s\n";
        let c: Config = serde_yaml::from_str(yaml).unwrap();
        assert!(problems(&c).is_empty());
        assert_eq!(c.alert_engine.watchdog.interval, Duration::from_secs(30));
        let shown = c.masked().alert_engine.watchdog.url.unwrap();
        assert!(
            !shown.contains("0b1c2d3e"),
            "the switch's secret path is masked: {shown}"
        );
        let yaml = "alert_engine:\n  watchdog:\n    urll: https://x\n";
        assert!(serde_yaml::from_str::<Config>(yaml).is_err());
    }

    #[test]
    fn unknown_rule_keys_are_rejected() {
        let yaml = "alert_engine:\n  rules:\n    - id: x\n      expr: a > 1\n      severty: info\n";
        assert!(serde_yaml::from_str::<Config>(yaml).is_err());
    }
}
