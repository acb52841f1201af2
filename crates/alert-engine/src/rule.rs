//! Rules: a parsed expression with its severity, message template, labels,
//! `for` and cooldown; loading them from configuration and files; and the
//! default rules shipped with Pantau.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use pantau_config::{AlertEngineConfig, AlertRuleConfig, AlertSeverity};

use crate::lang::{self, ParseError, RuleExpr};
use crate::series::{Labels, Value};

/// Where a rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Shipped with Pantau ([`defaults`]).
    Default,
    /// `alert_engine.rules` or `alert_engine.rules_files`.
    File,
    /// Created through gRPC or REST, persisted in the store.
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Default => "default",
            Origin::File => "file",
            Origin::Api => "api",
        }
    }
}

/// A rule that parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub config: AlertRuleConfig,
    pub expr: RuleExpr,
    /// How long the condition must hold (the expression's `for`, else the rule's).
    pub hold: Duration,
    pub cooldown: Duration,
    pub origin: Origin,
}

/// Why a rule is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("rule `{rule}` does not parse {source}")]
    Parse {
        rule: String,
        #[source]
        source: ParseError,
    },
    #[error("rule id `{0}` is not valid: use 1–128 letters, digits, `-` or `_`")]
    Id(String),
    #[error("rule `{rule}` sets `for` twice: {in_expr} in its expression and {in_field} in its `for` field; keep one")]
    TwoFors {
        rule: String,
        in_expr: String,
        in_field: String,
    },
    #[error("rule id `{0}` is reserved for alerts raised by hand: choose another id")]
    Reserved(String),
    #[error("rule `{0}` depends on itself")]
    SelfParent(String),
    #[error("rule `{rule}` depends on `{parent}`, which is not a rule")]
    UnknownParent { rule: String, parent: String },
    /// A rule of a file or of the configuration (`path` says which).
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

impl Rule {
    /// Parses and checks `config`.
    pub fn new(config: AlertRuleConfig, default_cooldown: Duration, origin: Origin) -> Result<Self, RuleError> {
        if !pantau_config::is_token(&config.id) {
            return Err(RuleError::Id(config.id));
        }
        if config.id == pantau_config::MANUAL_RULE {
            return Err(RuleError::Reserved(config.id));
        }
        if config.depends_on.contains(&config.id) {
            return Err(RuleError::SelfParent(config.id));
        }
        let expr = lang::parse(&config.expr).map_err(|source| RuleError::Parse {
            rule: config.id.clone(),
            source,
        })?;
        let hold = match (expr.hold, config.for_) {
            (Some(a), Some(b)) if a != b => {
                return Err(RuleError::TwoFors {
                    rule: config.id,
                    in_expr: humantime::format_duration(a).to_string(),
                    in_field: humantime::format_duration(b).to_string(),
                });
            }
            (Some(d), _) | (None, Some(d)) => d,
            (None, None) => Duration::ZERO,
        };
        let cooldown = config.cooldown.unwrap_or(default_cooldown);
        Ok(Self {
            config,
            expr,
            hold,
            cooldown,
            origin,
        })
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn name(&self) -> &str {
        self.config.name.as_deref().unwrap_or(&self.config.id)
    }

    /// The first metric the expression reads: an alert's `source`.
    pub fn source(&self) -> String {
        self.expr.metric_names().into_iter().next().unwrap_or_default()
    }

    /// The alert's summary: the message with `{{ $labels.NAME }}` and
    /// `{{ $value }}` filled in; a generated one when the rule has none.
    pub fn summary(&self, labels: &Labels, value: &Value) -> String {
        if self.config.message.trim().is_empty() {
            let ls: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            return format!("{} ({}) is {value}", self.name(), ls.join(", "));
        }
        render(&self.config.message, labels, value)
    }
}

/// Fills `{{ $labels.NAME }}` and `{{ $value }}`; other text is kept as written.
pub fn render(template: &str, labels: &Labels, value: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let key = after[..close].trim();
        if key == "$value" {
            out.push_str(&value.to_string());
        } else if let Some(name) = key.strip_prefix("$labels.") {
            out.push_str(labels.get(name).map_or("", String::as_str));
        } else {
            out.push_str(&rest[open..open + 2 + close + 2]);
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

/// The default rules (when enabled), then the files', then the inline ones,
/// each parsed; a later rule with the same id replaces an earlier one. An
/// error names the file or the `alert_engine.rules[i]` entry.
pub fn load_configured(cfg: &AlertEngineConfig) -> Result<BTreeMap<String, Rule>, RuleError> {
    let mut base = BTreeMap::new();
    if cfg.default_rules {
        for r in defaults() {
            let rule = Rule::new(r, cfg.default_cooldown, Origin::Default)?;
            base.insert(rule.id().to_owned(), rule);
        }
    }
    for path in &cfg.rules_files {
        for r in load_file(path)? {
            let rule = Rule::new(r, cfg.default_cooldown, Origin::File).map_err(|e| RuleError::File {
                path: format!("rules file {}", path.display()),
                reason: e.to_string(),
            })?;
            base.insert(rule.id().to_owned(), rule);
        }
    }
    for (i, r) in cfg.rules.iter().enumerate() {
        let rule = Rule::new(r.clone(), cfg.default_cooldown, Origin::File).map_err(|e| RuleError::File {
            path: format!("alert_engine.rules[{i}]"),
            reason: e.to_string(),
        })?;
        base.insert(rule.id().to_owned(), rule);
    }
    Ok(base)
}

/// Reads a YAML file holding a list of rules.
pub fn load_file(path: &Path) -> Result<Vec<AlertRuleConfig>, RuleError> {
    let file = |reason: String| RuleError::File {
        path: format!("rules file {}", path.display()),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file(format!("cannot be read: {e}")))?;
    serde_yaml::from_str(&text).map_err(|e| file(format!("is not a list of rules: {e}")))
}

fn rule(id: &str, name: &str, expr: &str, severity: AlertSeverity, message: &str) -> AlertRuleConfig {
    AlertRuleConfig {
        id: id.to_owned(),
        name: Some(name.to_owned()),
        expr: expr.to_owned(),
        severity,
        message: message.to_owned(),
        labels: std::collections::BTreeMap::new(),
        for_: None,
        cooldown: None,
        enabled: true,
        depends_on: Vec::new(),
    }
}

/// The rules of the original design, shipped enabled; a configured rule with
/// the same id replaces one, and `alert_engine.default_rules: false` drops them.
pub fn defaults() -> Vec<AlertRuleConfig> {
    use AlertSeverity::{Critical, Info, Warning};
    vec![
        rule(
            "high-cpu",
            "High CPU",
            "cpu_usage > 80 for 5m",
            Warning,
            "CPU at {{ $value }}% on {{ $labels.host }}",
        ),
        rule(
            "low-disk",
            "Low disk space",
            "disk_usage > 90",
            Critical,
            "disk {{ $labels.mount }} on {{ $labels.host }} is {{ $value }}% full",
        ),
        rule(
            "database-unhealthy",
            "Database unhealthy",
            r#"health{component="database"} == "unhealthy""#,
            Critical,
            "the database is unhealthy",
        ),
        rule(
            "router-api-down",
            "Router API down",
            "router_api_up == 0 for 1m",
            Critical,
            "the API of router {{ $labels.router }} does not answer",
        ),
        rule(
            "slow-api",
            "Slow API responses",
            "avg_over_time(check_duration_ms[5m]) > 2000",
            Warning,
            "{{ $labels.target }} answers in {{ $value }} ms on average over 5m",
        ),
        rule(
            "queue-size-high",
            "Queue size high",
            "queue_size > 100 for 5m",
            Warning,
            "queue {{ $labels.queue }} holds {{ $value }} items",
        ),
        rule(
            "storage-capacity-warning",
            "Storage capacity above 80%",
            "storage_usage > 80 and storage_usage <= 95",
            Warning,
            "storage {{ $labels.volume }} is {{ $value }}% full",
        ),
        rule(
            "storage-capacity-critical",
            "Storage capacity above 95%",
            "storage_usage > 95",
            Critical,
            "storage {{ $labels.volume }} is {{ $value }}% full",
        ),
        rule(
            "task-failures",
            "Task failures in the last hour",
            "sum_over_time(task_failures[60m]) > 0",
            Warning,
            "{{ $value }} task failures in the last 60 minutes",
        ),
        rule(
            "endpoint-down",
            "Endpoint down",
            "check_up == 0 for 1m",
            Critical,
            "{{ $labels.target }} is down from {{ $labels.location }}",
        ),
        rule(
            "interface-down",
            "Interface down",
            "interface_went_down == 1",
            Warning,
            "interface {{ $labels.interface }} of {{ $labels.router }} is down",
        ),
        rule(
            "wan-down",
            "WAN link down",
            r#"interface_up{role="wan"} == 0"#,
            Critical,
            "WAN link {{ $labels.interface }} of {{ $labels.router }} is down",
        ),
        rule(
            "router-reboot",
            "Router rebooted",
            "count_over_time(router_reboot[10m]) > 0",
            Info,
            "router {{ $labels.router }} rebooted",
        ),
        rule(
            "counter-reset",
            "Interface counter reset",
            "count_over_time(counter_reset[10m]) > 0",
            Info,
            "counters of {{ $labels.interface }} on {{ $labels.router }} were reset",
        ),
        rule(
            "endpoint-down-majority",
            "Endpoint down from the majority of locations",
            "consensus_up == 0",
            Critical,
            "{{ $labels.target }} is down from the majority (the quorum) of locations",
        ),
        rule(
            "cert-expiring",
            "Certificate expiring",
            "cert_expiry_days < 14",
            Warning,
            "the certificate of {{ $labels.target }} expires in {{ $value }} days",
        ),
        rule(
            "kafka-consumer-lag",
            "Kafka consumer group lagging",
            "kafka_consumer_lag_over == 1 for 5m",
            Warning,
            "consumer group {{ $labels.group }} is behind on {{ $labels.topic }} beyond the max_lag of {{ $labels.target }}",
        ),
    ]
}

/// A stable hash of the rule id and the labels: one problem, one alert.
pub fn fingerprint(rule_id: &str, labels: &Labels) -> String {
    // FNV-1a, 64 bits: stable across processes and versions, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(rule_id.as_bytes());
    for (k, v) in labels {
        eat(&[0]);
        eat(k.as_bytes());
        eat(&[1]);
        eat(v.as_bytes());
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_rule_parses() {
        for r in defaults() {
            let id = r.id.clone();
            Rule::new(r, Duration::from_secs(300), Origin::Default).unwrap_or_else(|e| panic!("{id}: {e}"));
        }
    }

    #[test]
    fn errors_name_the_rule_and_position() {
        let mut c = rule("x", "X", "cpu >", AlertSeverity::Info, "");
        let e = Rule::new(c.clone(), Duration::ZERO, Origin::Api).unwrap_err();
        assert_eq!(
            e.to_string(),
            "rule `x` does not parse at column 6: expected a condition, found the end of the expression"
        );
        c.expr = "cpu > 1 for 5m".into();
        c.for_ = Some(Duration::from_secs(60));
        assert!(matches!(
            Rule::new(c.clone(), Duration::ZERO, Origin::Api),
            Err(RuleError::TwoFors { .. })
        ));
        c.for_ = Some(Duration::from_secs(300));
        assert_eq!(
            Rule::new(c.clone(), Duration::ZERO, Origin::Api).unwrap().hold,
            Duration::from_secs(300)
        );
        c.depends_on = vec!["x".into()];
        assert_eq!(
            Rule::new(c, Duration::ZERO, Origin::Api),
            Err(RuleError::SelfParent("x".into()))
        );
    }

    #[test]
    fn configured_rules_override_defaults_and_errors_name_the_entry() {
        let mut cfg = AlertEngineConfig::default();
        let mut mine = rule("high-cpu", "CPU", "cpu_usage > 95", AlertSeverity::Critical, "");
        cfg.rules = vec![mine.clone()];
        let rules = load_configured(&cfg).unwrap();
        assert_eq!(rules.len(), defaults().len());
        assert_eq!(rules["high-cpu"].config.expr, "cpu_usage > 95");
        assert_eq!(rules["high-cpu"].origin, Origin::File);
        mine.expr = "cpu_usage >> 95".into();
        cfg.rules = vec![mine];
        assert_eq!(
            load_configured(&cfg).unwrap_err().to_string(),
            "alert_engine.rules[0]: rule `high-cpu` does not parse at column 12: expected a number, a string, a metric, `not` or `(`, found `>`"
        );
        cfg.default_rules = false;
        cfg.rules.clear();
        assert!(load_configured(&cfg).unwrap().is_empty());
    }

    #[test]
    fn templates_and_fingerprints() {
        let l: Labels = [("target".to_owned(), "api".to_owned())].into();
        assert_eq!(
            render(
                "{{ $labels.target }} at {{$value}} {{ other }} {{ $labels.none }}",
                &l,
                &Value::Num(2.5)
            ),
            "api at 2.5 {{ other }} "
        );
        assert_eq!(render("open {{ never", &l, &Value::Num(1.0)), "open {{ never");
        assert_eq!(fingerprint("r", &l), fingerprint("r", &l.clone()));
        assert_ne!(fingerprint("r", &l), fingerprint("s", &l));
        assert_ne!(fingerprint("r", &l), fingerprint("r", &Labels::new()));
        assert_eq!(fingerprint("r", &Labels::new()).len(), 16);
    }
}
