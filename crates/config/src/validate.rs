//! Every rule a configuration value must follow, each problem naming its key.

use std::collections::HashSet;
use std::time::Duration;

use super::duration::format as fmt_d;
use super::{Config, Invalid};

const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The most interfaces per router whose traffic history may be kept.
const MAX_TRAFFIC_INTERFACES: u32 = 4096;

struct Problems(Vec<Invalid>);

impl Problems {
    #[allow(clippy::needless_pass_by_value)]
    fn add(&mut self, key: impl Into<String>, value: impl ToString, allowed: impl Into<String>) {
        self.0.push(Invalid {
            key: key.into(),
            value: value.to_string(),
            allowed: allowed.into(),
        });
    }

    fn duration_at_least(&mut self, key: &str, d: Duration, min: Duration) {
        if d < min {
            self.add(key, fmt_d(d), format!("must be at least {}", fmt_d(min)));
        }
    }

    fn duration_between(&mut self, key: &str, d: Duration, min: Duration, max: Duration) {
        if !(min..=max).contains(&d) {
            self.add(
                key,
                fmt_d(d),
                format!("must be between {} and {}", fmt_d(min), fmt_d(max)),
            );
        }
    }

    #[allow(clippy::needless_pass_by_value)]
    fn positive<T: PartialOrd + Default + ToString>(&mut self, key: &str, v: T) {
        if v <= T::default() {
            self.add(key, v.to_string(), "must be greater than 0");
        }
    }
}

/// A token that can stand in a NATS subject: letters, digits, `-` and `_`.
pub fn is_subject_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(super) fn problems(c: &Config) -> Vec<Invalid> {
    let mut p = Problems(Vec::new());
    const TOKEN: &str = "must be 1–128 characters of letters, digits, `-` or `_`";
    if !is_subject_token(&c.instance.name) {
        p.add("instance.name", &c.instance.name, TOKEN);
    }
    if !is_subject_token(&c.instance.location) {
        p.add("instance.location", &c.instance.location, TOKEN);
    }
    if let Some(d) = &c.exporters.datadog {
        for (key, value, allowed) in d.problems() {
            p.add(key, value, allowed);
        }
    }
    if c.listen_host.parse::<std::net::IpAddr>().is_err() {
        p.add(
            "listen_host",
            &c.listen_host,
            "must be an IP address such as 0.0.0.0 or 127.0.0.1",
        );
    }
    if c.shutdown_grace.is_zero() || c.shutdown_grace > Duration::from_secs(600) {
        p.add("shutdown_grace", fmt_d(c.shutdown_grace), "must be between 1ms and 10m");
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&c.log.level) {
        p.add(
            "log.level",
            &c.log.level,
            format!("must be a filter such as `info` or `warn,pantau_collector=debug` ({e})"),
        );
    }
    nats(c, &mut p);
    database(c, &mut p);
    p.duration_at_least(
        "metrics.collection_interval",
        c.metrics.collection_interval,
        MIN_INTERVAL,
    );
    collector(c, &mut p);
    p.0.extend(super::routers::router_problems(&c.collector));
    gateway(c, &mut p);
    p.0.extend(super::auth::problems(
        &c.gateway.auth,
        &c.gateway.rate_limit,
        &c.gateway.cors,
        c.gateway.max_body_bytes,
    ));
    p.0.extend(super::console::problems(&c.gateway.console, &c.gateway.status_pages));
    p.0.extend(super::grpc::problems(&c.grpc));
    p.0.extend(super::sync::config_problems(c));
    p.0.extend(super::notifier::problems(&c.notifier));
    p.0.extend(super::alert_engine::problems(c));
    p.0.extend(super::wan_detector::problems(c));
    p.0.extend(super::maintenance::problems(&c.maintenance));
    ports(c, &mut p);
    p.0
}

fn nats(c: &Config, p: &mut Problems) {
    if let Some(url) = &c.nats.url {
        let ok = url.split(',').map(str::trim).all(|url| {
            ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|s| url.starts_with(s))
                && url.len() > 7
        });
        if !ok {
            p.add(
                "nats.url",
                super::mask_urls_passwords(url),
                "must be a URL such as nats://127.0.0.1:4222, or several separated by commas \
                 (schemes nats, tls, ws, wss)",
            );
        }
    }
    let s = &c.nats.stream;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        p.add("nats.stream", s, "must be a stream name of letters, digits, `-` or `_`");
    }
    p.duration_at_least("nats.max_age", c.nats.max_age, Duration::from_secs(60));
    if c.nats.max_bytes != -1 && c.nats.max_bytes < 1 << 20 {
        p.add(
            "nats.max_bytes",
            c.nats.max_bytes,
            "must be at least 1048576 (1 MiB), or -1 for unlimited",
        );
    }
    p.duration_at_least(
        "nats.publish_timeout",
        c.nats.publish_timeout,
        Duration::from_millis(100),
    );
    if !(1..=5).contains(&c.nats.replicas) {
        p.add(
            "nats.replicas",
            c.nats.replicas,
            "must be between 1 and 5 (3 survives losing one server of a 3-node cluster)",
        );
    }
}

fn database(c: &Config, p: &mut Problems) {
    if let Some(url) = &c.database.url {
        let ok = ["postgres://", "postgresql://", "sqlite://"]
            .iter()
            .any(|s| url.starts_with(s));
        if !ok {
            p.add(
                "database.url",
                super::mask_url_password(url),
                "must start with postgres://, postgresql:// or sqlite://",
            );
        }
    }
    let prefix = &c.database.schema_prefix;
    let ok = prefix.len() <= 40
        && prefix
            .chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_lowercase() || ch == '_')
        && prefix
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
    if !ok {
        p.add(
            "database.schema_prefix",
            prefix,
            "must be up to 40 lower-case letters, digits or `_`, not starting with a digit",
        );
    }
    p.positive("database.max_connections", c.database.max_connections);
    p.duration_between(
        "database.slow_query_threshold",
        c.database.slow_query_threshold,
        Duration::from_millis(1),
        Duration::from_secs(3600),
    );
}

fn collector(c: &Config, p: &mut Problems) {
    let col = &c.collector;
    p.duration_between(
        "collector.interval",
        col.interval,
        MIN_INTERVAL,
        super::target::MAX_INTERVAL,
    );
    p.duration_at_least("collector.timeout", col.timeout, Duration::from_millis(10));
    p.positive("collector.workers.concurrency", col.workers.concurrency);
    p.positive("collector.workers.count", col.workers.count);
    p.positive("collector.shard.count", col.shard.count);
    if col.shard.index >= col.shard.count.max(1) {
        p.add(
            "collector.shard.index",
            col.shard.index,
            format!("must be below collector.shard.count ({})", col.shard.count),
        );
    }
    p.duration_at_least(
        "collector.shard.reload_interval",
        col.shard.reload_interval,
        MIN_INTERVAL,
    );
    p.duration_at_least(
        "collector.history.minute_retention",
        col.history.minute_retention,
        Duration::from_secs(3600),
    );
    p.duration_at_least(
        "collector.history.hour_retention",
        col.history.hour_retention,
        Duration::from_secs(86_400),
    );
    p.duration_at_least(
        "collector.history.flush_interval",
        col.history.flush_interval,
        MIN_INTERVAL,
    );
    if !(1..=MAX_TRAFFIC_INTERFACES).contains(&col.history.max_interfaces_per_router) {
        p.add(
            "collector.history.max_interfaces_per_router",
            col.history.max_interfaces_per_router,
            format!("must be between 1 and {MAX_TRAFFIC_INTERFACES}"),
        );
    }
    p.duration_at_least("collector.health.window", col.health.window, Duration::from_secs(10));
    let h = &col.health;
    if !(0.0..=100.0).contains(&h.degraded_percent) || !(h.degraded_percent..=100.0).contains(&h.critical_percent) {
        p.add(
            "collector.health.critical_percent",
            h.critical_percent,
            format!(
                "must be between collector.health.degraded_percent ({}) and 100",
                h.degraded_percent
            ),
        );
    }
    if col.workers.count > col.workers.concurrency {
        p.add(
            "collector.workers.count",
            col.workers.count,
            "must not exceed collector.workers.concurrency",
        );
    }
    p.positive(
        "collector.circuit_breaker.failure_threshold",
        col.circuit_breaker.failure_threshold,
    );
    p.positive(
        "collector.circuit_breaker.half_open_max_calls",
        col.circuit_breaker.half_open_max_calls,
    );
    p.duration_at_least(
        "collector.circuit_breaker.recovery_timeout",
        col.circuit_breaker.recovery_timeout,
        MIN_INTERVAL,
    );
    let index: std::collections::HashMap<&str, usize> = col
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    p.0.extend(super::target::cycles(
        col.targets.iter().map(|t| (t.id.as_str(), t.depends_on())),
        |id| {
            format!(
                "collector.targets[{}].depends_on",
                index.get(id).copied().unwrap_or_default()
            )
        },
    ));
    let mut seen = HashSet::new();
    for (i, t) in col.targets.iter().enumerate() {
        let prefix = format!("collector.targets[{i}]");
        p.0.extend(super::validate_target(t, &prefix, col.interval, col.timeout));
        if is_subject_token(&t.id) && !seen.insert(t.id.as_str()) {
            p.add(
                format!("{prefix}.id"),
                &t.id,
                "must be unique: another target has this id",
            );
        }
        if let Some(tok) = t.push_token()
            && col.targets[..i].iter().any(|o| o.push_token() == Some(tok))
        {
            p.add(
                format!("{prefix}.token"),
                "***",
                "must be unique: another push target has this token",
            );
        }
    }
}

fn gateway(c: &Config, p: &mut Problems) {
    for (key, u, example) in [
        (
            "gateway.collector_url",
            &c.gateway.collector_url,
            "http://127.0.0.1:50051",
        ),
        (
            "gateway.notifier_url",
            &c.gateway.notifier_url,
            "http://127.0.0.1:50054",
        ),
    ] {
        if crate::types::check_http_url(u).is_err() {
            p.add(key, u, format!("must be an http:// or https:// URL such as {example}"));
        }
    }
    let d = &c.gateway.dashboard;
    p.positive("gateway.dashboard.max_connections", d.max_connections);
    p.positive("gateway.dashboard.client_buffer", d.client_buffer);
    p.duration_at_least("gateway.dashboard.ping_interval", d.ping_interval, MIN_INTERVAL);
    if d.idle_timeout <= d.ping_interval {
        p.add(
            "gateway.dashboard.idle_timeout",
            fmt_d(d.idle_timeout),
            format!(
                "must be longer than gateway.dashboard.ping_interval ({})",
                fmt_d(d.ping_interval)
            ),
        );
    }
}

fn ports(c: &Config, p: &mut Problems) {
    let mut ports = vec![
        ("admin_port", c.admin_port),
        ("gateway.port", c.gateway.port),
        ("collector.grpc_port", c.collector.grpc_port),
        ("collector.admin_port", c.collector.admin_port),
    ];
    if c.sync.active() {
        ports.push(("sync.grpc_port", c.sync.grpc_port));
        ports.push(("sync.admin_port", c.sync.admin_port));
    }
    ports.push(("notifier.grpc_port", c.notifier.grpc_port));
    ports.push(("notifier.admin_port", c.notifier.admin_port));
    ports.push(("alert_engine.grpc_port", c.alert_engine.grpc_port));
    ports.push(("alert_engine.admin_port", c.alert_engine.admin_port));
    ports.push(("wan_detector.grpc_port", c.wan_detector.grpc_port));
    ports.push(("wan_detector.admin_port", c.wan_detector.admin_port));
    for (i, (key, port)) in ports.iter().enumerate() {
        if *port == 0 {
            continue;
        }
        if let Some((other, _)) = ports[..i].iter().find(|(_, q)| q == port) {
            p.add(
                *key,
                port,
                format!("must differ from {other}, which uses the same port"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckType, ConditionConfig, JsonCondition, RawTarget, TargetConfig};

    fn keys(c: &Config) -> Vec<String> {
        problems(c).into_iter().map(|i| i.key).collect()
    }

    #[test]
    fn traffic_interfaces_per_router_are_bounded() {
        let mut c = Config::default();
        assert_eq!(c.collector.history.max_interfaces_per_router, 256);
        for ok in [1, 4096] {
            c.collector.history.max_interfaces_per_router = ok;
            assert!(keys(&c).is_empty(), "{ok}");
        }
        for bad in [0, 4097, u32::MAX] {
            c.collector.history.max_interfaces_per_router = bad;
            let p = problems(&c);
            assert_eq!(keys(&c), ["collector.history.max_interfaces_per_router"]);
            assert!(p[0].allowed.contains("between 1 and 4096"), "{}", p[0].allowed);
        }
        // From YAML: a wrong type or a typo names the key.
        let wrong: Result<crate::HistoryConfig, _> = serde_yaml::from_str("max_interfaces_per_router: lots");
        assert!(wrong.unwrap_err().to_string().contains("max_interfaces_per_router"));
        let typo: Result<crate::HistoryConfig, _> = serde_yaml::from_str("max_interface_per_router: 3");
        assert!(typo.unwrap_err().to_string().contains("max_interface_per_router"));
    }

    #[test]
    fn nats_replicas_and_cluster_seeds() {
        let mut c = Config::default();
        c.nats.url = Some("nats://n0:4222, nats://n1:4222,tls://tok@n2:4222".into());
        for ok in 1..=5 {
            c.nats.replicas = ok;
            assert!(keys(&c).is_empty(), "replicas {ok}");
        }
        for bad in [0, 6] {
            c.nats.replicas = bad;
            let p = problems(&c);
            assert_eq!(keys(&c), ["nats.replicas"]);
            assert!(p[0].allowed.contains("between 1 and 5"), "{}", p[0].allowed);
        }
        c.nats.replicas = 3;
        c.nats.url = Some("nats://tok@n0:4222,n1:4222".into());
        let p = problems(&c);
        assert_eq!(keys(&c), ["nats.url"]);
        assert_eq!(p[0].value, "nats://***@n0:4222,n1:4222", "the token stays hidden");
    }

    /// The keys [`RawTarget::parse`] refuses, as `collector.targets[0]`.
    fn refused(r: RawTarget) -> Vec<String> {
        r.parse("collector.targets[0]")
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.key)
            .collect()
    }

    fn parsed(r: RawTarget) -> std::sync::Arc<TargetConfig> {
        r.parse("t").unwrap_or_else(|p| panic!("{p:?}")).into()
    }

    #[test]
    fn targets_need_their_address() {
        let mut web = RawTarget::new("web", CheckType::Http);
        let mut ssh = RawTarget::new("ssh", CheckType::Tcp);
        assert_eq!(refused(web.clone()), ["collector.targets[0].url"]);
        assert_eq!(refused(ssh.clone()), ["collector.targets[0].address"]);
        web.url = Some("ftp://x".into());
        ssh.address = Some("localhost".into());
        assert_eq!(refused(web.clone()), ["collector.targets[0].url"]);
        assert_eq!(refused(ssh.clone()), ["collector.targets[0].address"]);
        for bad in ["127.0.0.1:0", ":22", "::1:22", "h:65536", "h :1"] {
            ssh.address = Some(bad.into());
            assert_eq!(refused(ssh.clone()), ["collector.targets[0].address"], "{bad}");
        }
        web.url = Some("http://127.0.0.1:8080/healthz".into());
        ssh.address = Some("[::1]:22".into());
        let mut c = Config::default();
        c.collector.targets = vec![parsed(web), parsed(ssh)];
        assert!(keys(&c).is_empty());
    }

    #[test]
    fn fields_of_another_type_are_errors() {
        let mut t = RawTarget::new("ping", CheckType::Icmp);
        t.host = Some("127.0.0.1".into());
        t.url = Some("http://x".into());
        let p = t.parse("collector.targets[0]").unwrap_err();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "collector.targets[0].url");
        assert!(
            p[0].allowed.contains("does not apply to a icmp target"),
            "{}",
            p[0].allowed
        );
    }

    #[test]
    fn conditions_are_checked() {
        let mut t = RawTarget::new("api", CheckType::Http);
        t.url = Some("http://127.0.0.1/".into());
        t.conditions = vec![
            ConditionConfig::BodyMatches("(unclosed".into()),
            ConditionConfig::Json(JsonCondition {
                path: "status".into(),
                equals: Some("ok".into()),
                ..Default::default()
            }),
            ConditionConfig::Json(JsonCondition {
                path: "$.a".into(),
                ..Default::default()
            }),
            ConditionConfig::BodyContains("fine".into()),
        ];
        assert_eq!(
            refused(t),
            [
                "collector.targets[0].conditions[0]",
                "collector.targets[0].conditions[1]",
                "collector.targets[0].conditions[2]"
            ]
        );
    }

    #[test]
    fn duplicate_ids_tokens_and_bad_tokens() {
        let mut bad = RawTarget::new("a.b", CheckType::Push);
        bad.token = Some("short".into());
        assert_eq!(refused(bad), ["collector.targets[0].id", "collector.targets[0].token"]);
        let mut a = RawTarget::new("a", CheckType::Push);
        a.token = Some("0123456789abcdef".into());
        let mut b = RawTarget::new("x", CheckType::Push);
        b.token = Some("0123456789abcdef".into());
        let mut d = RawTarget::new("x", CheckType::Push);
        d.token = Some("fedcba9876543210".into());
        let mut c = Config::default();
        c.collector.targets = vec![parsed(a), parsed(b), parsed(d)];
        assert_eq!(keys(&c), ["collector.targets[1].token", "collector.targets[2].id"]);
    }

    #[test]
    fn timeout_beyond_interval_and_port_clash() {
        let mut c = Config::default();
        c.collector.timeout = Duration::from_secs(60);
        let mut t = RawTarget::new("t", CheckType::Tcp);
        t.address = Some("h:1".into());
        c.collector.targets = vec![parsed(t)];
        c.gateway.port = 9100;
        assert_eq!(keys(&c), ["collector.targets[0].timeout", "gateway.port"]);
    }
}
