//! A target as the collector runs it: a validated [`TargetConfig`] compiled
//! into what the checks need, and its protobuf form.

use std::net::SocketAddr;
use std::time::Duration;

use pantau_config::types::{Grace, Interval, Timeout};
use pantau_config::{CheckType, CollectorConfig, Invalid, RecordType, TargetConfig, TargetSpec, validate_target};
use pantau_core::time::to_duration;
use pantau_proto::v1::{self, TargetSource};

use crate::checks::conditions::Condition;
use crate::checks::tcp;

/// HTTP request and what its answer must be: what compiling its
/// configuration made (the method, the headers, the conditions, a client of
/// its own). The URL, the body and the accepted statuses are read from the
/// target's configuration ([`Target::http`]), not copied: a hundred thousand
/// targets kept a second 30 MiB of them.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    pub method: reqwest::Method,
    /// `None` when the target sets no headers (an empty map is 96 bytes).
    pub headers: Option<Box<reqwest::header::HeaderMap>>,
    pub follow_redirects: bool,
    pub verify_tls: bool,
    /// Keep-alive between checks; `false` opens a new connection each time.
    pub reuse_connection: bool,
    pub warn_days: u32,
    pub conditions: Box<[Condition]>,
    /// Its own client, when the target has a `ca_file`, a client
    /// certificate, a proxy or `resolve`.
    pub client: Option<reqwest::Client>,
}

impl HttpSpec {
    /// What a target that sets no method, header, condition, TLS file or
    /// proxy compiles to: made from its configuration at each check (no
    /// allocation), not kept.
    pub fn plain(cfg: &pantau_config::HttpTarget) -> Self {
        Self {
            method: reqwest::Method::GET,
            headers: None,
            follow_redirects: cfg.follow_redirects.unwrap_or(true),
            verify_tls: cfg.verify_tls.unwrap_or(true),
            reuse_connection: cfg.reuse_connection.unwrap_or(true),
            warn_days: cfg.warn_days.unwrap_or(WARN_DAYS),
            conditions: Box::default(),
            client: None,
        }
    }

    /// Whether compiling made more than [`HttpSpec::plain`] would.
    fn needs_keeping(&self) -> bool {
        self.method != reqwest::Method::GET
            || self.headers.is_some()
            || !self.conditions.is_empty()
            || self.client.is_some()
    }
}

/// What a check does, by type.
#[derive(Debug, Clone)]
pub enum Spec {
    /// `None` for a plain target ([`HttpSpec::plain`]): most are.
    Http(Option<Box<HttpSpec>>),
    /// Boxed, as are the other larger checks: inline, the largest variant
    /// sets the size of every target's spec.
    Tcp(Box<TcpSpec>),
    Tls(Box<TlsSpec>),
    Icmp(Box<IcmpSpec>),
    Dns(Box<DnsSpec>),
    /// Its token is read from the configuration.
    Push {
        grace: Duration,
    },
    Grpc(Box<crate::checks::grpc::GrpcSpec>),
    Redis(Box<crate::checks::redis::RedisSpec>),
    /// `postgres` and `mysql`.
    Sql(Box<crate::checks::sql::SqlSpec>),
    Udp(Box<crate::checks::udp::UdpSpec>),
    Ssh(Box<crate::checks::ssh::SshSpec>),
    KafkaProducer(Box<crate::checks::kafka::KafkaSpec>),
    KafkaConsumer(Box<crate::checks::kafka::KafkaSpec>),
    HttpSteps(Box<crate::checks::steps::StepsSpec>),
    Websocket(Box<crate::checks::websocket::WebSocketSpec>),
    Mqtt(Box<crate::checks::mqtt::MqttSpec>),
    Mail(Box<crate::checks::mail::MailSpec>),
}

/// A compiled `tcp` check.
#[derive(Debug, Clone)]
pub struct TcpSpec {
    pub address: String,
    pub send: Option<Vec<u8>>,
    pub expect: Option<Vec<u8>>,
}

/// A compiled `tls` check.
#[derive(Debug, Clone)]
pub struct TlsSpec {
    pub address: String,
    pub server_name: String,
    pub verify: bool,
    pub warn_days: u32,
    /// Its own connector, when the target has a `ca_file` or a client certificate.
    pub connector: Option<crate::checks::tls::Connector>,
}

/// A compiled `icmp` check.
#[derive(Debug, Clone)]
pub struct IcmpSpec {
    pub host: String,
    pub count: u16,
    pub max_loss_percent: f64,
}

/// A compiled `dns` check.
#[derive(Debug, Clone)]
pub struct DnsSpec {
    pub name: String,
    pub record_type: RecordType,
    pub resolver: Option<SocketAddr>,
    pub expected: Vec<String>,
}

/// One target to check.
#[derive(Debug, Clone)]
pub struct Target {
    pub spec: Spec,
    pub interval: Duration,
    pub timeout: Duration,
    pub source: TargetSource,
    /// What it was built from, for persistence and the API (shared with the
    /// configuration, not copied).
    pub config: std::sync::Arc<TargetConfig>,
}

/// Default certificate warning, in days.
pub const WARN_DAYS: u32 = 14;

impl Target {
    /// Its id: the configuration's own string, not a copy.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// Its dependencies in their text form, as every result carries them
    /// (made from the configuration's: most targets have none).
    pub fn depends_on(&self) -> Vec<String> {
        self.config.depends_on().iter().map(ToString::to_string).collect()
    }

    /// Its labels: the configuration's own map, not a copy (a map of one
    /// label is a 540-byte B-tree leaf; a hundred thousand targets kept a
    /// second 52 MiB of them).
    pub fn labels(&self) -> &pantau_config::Labels {
        &self.config.labels
    }

    /// Its human name: the configuration's, or its id.
    pub fn name(&self) -> &str {
        self.config.name().unwrap_or(&self.config.id)
    }

    /// Its HTTP configuration (URL, body, accepted statuses), when it is an
    /// `http` target.
    pub fn http(&self) -> Option<&pantau_config::HttpTarget> {
        match &self.config.spec {
            TargetSpec::Http(h) => Some(h),
            _ => None,
        }
    }

    /// Validates and compiles `t`; errors carry keys under `prefix`.
    pub fn compile(
        t: &std::sync::Arc<TargetConfig>,
        prefix: &str,
        cfg: &CollectorConfig,
        source: TargetSource,
    ) -> Result<Self, Vec<Invalid>> {
        let problems = validate_target(t, prefix, cfg.interval, cfg.timeout);
        if !problems.is_empty() {
            return Err(problems);
        }
        let bad = |field: &str, value: &str, why: String| {
            vec![Invalid {
                key: format!("{prefix}.{field}"),
                value: value.to_owned(),
                allowed: why,
            }]
        };
        let spec = match &t.spec {
            TargetSpec::Http(h) => {
                let method_text = h.method().unwrap_or("GET");
                let method = reqwest::Method::from_bytes(method_text.as_bytes())
                    .map_err(|e| bad("method", method_text, e.to_string()))?;
                let mut headers = reqwest::header::HeaderMap::new();
                for (k, v) in h.headers() {
                    let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                        .map_err(|e| bad("headers", k, format!("is not a header name: {e}")))?;
                    let value = reqwest::header::HeaderValue::from_str(v)
                        .map_err(|e| bad(&format!("headers.{k}"), "***", format!("is not a header value: {e}")))?;
                    headers.insert(name, value);
                }
                let headers = (!headers.is_empty()).then(|| Box::new(headers));
                let conditions = h
                    .conditions()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        Condition::compile(c).map_err(|e| bad(&format!("conditions[{i}]"), &format!("{c:?}"), e))
                    })
                    .collect::<Result<_, _>>()?;
                let plain = HttpSpec::plain(h);
                let client = if h.tls().is_empty() && h.options().is_empty() {
                    None
                } else {
                    let (verify, follow, reuse) = (plain.verify_tls, plain.follow_redirects, plain.reuse_connection);
                    Some(
                        crate::checks::http::build(h.tls(), verify, follow, reuse, h.options())
                            .map_err(|e| bad(tls_key(&e.to_string()), "", e.to_string()))?,
                    )
                };
                let spec = HttpSpec {
                    method,
                    headers,
                    conditions,
                    client,
                    ..plain
                };
                Spec::Http(spec.needs_keeping().then(|| Box::new(spec)))
            }
            TargetSpec::Tcp(x) => Spec::Tcp(Box::new(TcpSpec {
                address: x.address.to_string(),
                send: x.send.as_deref().map(tcp::unescape),
                expect: x.expect.as_deref().map(tcp::unescape),
            })),
            TargetSpec::Tls(x) => {
                let verify = x.verify_tls.unwrap_or(true);
                let connector = if x.tls.is_empty() {
                    None
                } else {
                    Some(crate::checks::tls::Connector::new(&x.tls, verify).map_err(|e| bad(tls_key(&e), "", e))?)
                };
                Spec::Tls(Box::new(TlsSpec {
                    server_name: x.server_name.clone().unwrap_or_else(|| x.address.host().to_owned()),
                    address: x.address.to_string(),
                    verify,
                    warn_days: x.warn_days.unwrap_or(WARN_DAYS),
                    connector,
                }))
            }
            TargetSpec::Icmp(x) => Spec::Icmp(Box::new(IcmpSpec {
                host: x.host.clone(),
                count: x.count.unwrap_or(3),
                max_loss_percent: x.max_loss_percent.unwrap_or(0.0),
            })),
            TargetSpec::Dns(x) => Spec::Dns(Box::new(DnsSpec {
                name: x.name_to_resolve.clone(),
                record_type: x.record_type.unwrap_or_default(),
                resolver: x.resolver,
                expected: x.expected_answers.clone(),
            })),
            TargetSpec::Push(x) => Spec::Push {
                grace: x.grace.map(Grace::get).unwrap_or_default(),
            },
            TargetSpec::Grpc(x) => Spec::Grpc(Box::new(
                crate::checks::grpc::GrpcSpec::new(x).map_err(|(field, why)| bad(field, "", why))?,
            )),
            TargetSpec::Redis(x) => Spec::Redis(Box::new(crate::checks::redis::RedisSpec::new(x))),
            TargetSpec::Postgres(x) => Spec::Sql(Box::new(crate::checks::sql::SqlSpec::new(
                crate::checks::sql::Engine::Postgres,
                x,
            ))),
            TargetSpec::Mysql(x) => Spec::Sql(Box::new(crate::checks::sql::SqlSpec::new(
                crate::checks::sql::Engine::Mysql,
                x,
            ))),
            TargetSpec::Udp(x) => Spec::Udp(Box::new(crate::checks::udp::UdpSpec::new(x))),
            TargetSpec::Ssh(x) => Spec::Ssh(Box::new(crate::checks::ssh::SshSpec::new(x))),
            TargetSpec::KafkaProducer(k) => Spec::KafkaProducer(Box::new(
                crate::checks::kafka::KafkaSpec::new(k)
                    .map_err(|(field, why)| bad(&format!("kafka.{field}"), "", why))?,
            )),
            TargetSpec::KafkaConsumer(k) => Spec::KafkaConsumer(Box::new(
                crate::checks::kafka::KafkaSpec::new(k)
                    .map_err(|(field, why)| bad(&format!("kafka.{field}"), "", why))?,
            )),
            TargetSpec::HttpSteps(x) => Spec::HttpSteps(Box::new(crate::checks::steps::StepsSpec::new(x, prefix)?)),
            TargetSpec::Websocket(x) => Spec::Websocket(Box::new(
                crate::checks::websocket::WebSocketSpec::new(x).map_err(|(field, why)| bad(&field, "", why))?,
            )),
            TargetSpec::Mqtt(x) => Spec::Mqtt(Box::new(
                crate::checks::mqtt::MqttSpec::new(x).map_err(|(field, why)| bad(field, "", why))?,
            )),
            TargetSpec::Mail(x) => Spec::Mail(Box::new(
                crate::checks::mail::MailSpec::new(x).map_err(|(field, why)| bad(field, "", why))?,
            )),
        };
        Ok(Self {
            spec,
            interval: t.interval.map_or(cfg.interval, Interval::get),
            timeout: t.timeout.map_or(cfg.timeout, Timeout::get),
            source,
            config: std::sync::Arc::clone(t),
        })
    }

    /// Every target of the configuration file.
    pub fn from_config(cfg: &CollectorConfig) -> Result<Vec<Self>, Vec<Invalid>> {
        cfg.targets
            .iter()
            .enumerate()
            .map(|(i, t)| Self::compile(t, &format!("collector.targets[{i}]"), cfg, TargetSource::Config))
            .collect()
    }

    pub fn check_type(&self) -> CheckType {
        self.config.check()
    }

    pub fn kind(&self) -> v1::CheckKind {
        kind_of(self.config.check())
    }

    /// `http`, `tcp`, …, for metric labels and logs.
    pub fn kind_label(&self) -> &'static str {
        self.config.check().as_str()
    }

    /// The URL, `host:port`, host or name checked; never a secret.
    pub fn address(&self) -> String {
        match &self.spec {
            Spec::Http(_) => self
                .http()
                .map_or_else(String::new, |h| pantau_config::mask_url_password(h.url.as_str())),
            Spec::Tcp(t) => t.address.clone(),
            Spec::Tls(t) => t.address.clone(),
            Spec::Icmp(i) => i.host.clone(),
            Spec::Dns(d) => d.name.clone(),
            Spec::Push { .. } => "push".to_owned(),
            Spec::Grpc(g) => g.address.clone(),
            Spec::Redis(r) => r.address(),
            Spec::Sql(s) => s.address(),
            Spec::Udp(u) => u.address(),
            Spec::Ssh(s) => s.address.clone(),
            Spec::KafkaProducer(k) | Spec::KafkaConsumer(k) => format!("{}/{}", k.target.servers(), k.target.topic),
            Spec::HttpSteps(s) => s.address.clone(),
            Spec::Websocket(w) => w.shown_url.clone(),
            Spec::Mqtt(m) => m.address(),
            Spec::Mail(m) => m.address.clone(),
        }
    }

    /// The protobuf form; secrets (push token, credential headers, URL
    /// passwords) are masked.
    pub fn to_proto(&self, breaker: v1::BreakerState) -> v1::Target {
        let mut masked = pantau_config::CollectorConfig {
            targets: vec![std::sync::Arc::clone(&self.config)],
            ..CollectorConfig::default()
        };
        masked.mask();
        let spec = pantau_config::proto::spec_to_proto(&masked.targets[0]);
        v1::Target {
            id: self.id().to_owned(),
            name: self.name().to_owned(),
            kind: self.kind().into(),
            address: self.address(),
            interval: Some(to_duration(self.interval)),
            timeout: Some(to_duration(self.timeout)),
            labels: self.labels().clone().into_iter().collect(),
            source: self.source.into(),
            breaker: breaker.into(),
            spec: Some(spec),
            quorum: self.config.quorum().map(std::num::NonZeroU32::get),
            paused: None,
            depends_on: self.depends_on(),
        }
    }
}

/// The key a TLS file error is about (its message starts with the field).
pub(crate) fn tls_key(message: &str) -> &'static str {
    let m = message.trim_start_matches("cannot set up TLS for checks: ");
    if m.starts_with("cannot set up the dns_server resolver") {
        "dns_server"
    } else if m.starts_with("cannot build the HTTP client") {
        // TLS is set up before the builder; what it refuses is the proxy.
        "proxy"
    } else if m.starts_with("client_cert") {
        "client_cert"
    } else if m.starts_with("client_key") {
        "client_key"
    } else {
        "ca_file"
    }
}

pub fn kind_of(c: CheckType) -> v1::CheckKind {
    match c {
        CheckType::Http => v1::CheckKind::Http,
        CheckType::Tcp => v1::CheckKind::Tcp,
        CheckType::Tls => v1::CheckKind::Tls,
        CheckType::Icmp => v1::CheckKind::Icmp,
        CheckType::Dns => v1::CheckKind::Dns,
        CheckType::Push => v1::CheckKind::Push,
        CheckType::Grpc => v1::CheckKind::Grpc,
        CheckType::Redis => v1::CheckKind::Redis,
        CheckType::Postgres => v1::CheckKind::Postgres,
        CheckType::Mysql => v1::CheckKind::Mysql,
        CheckType::Udp => v1::CheckKind::Udp,
        CheckType::Ssh => v1::CheckKind::Ssh,
        CheckType::KafkaProducer => v1::CheckKind::KafkaProducer,
        CheckType::KafkaConsumer => v1::CheckKind::KafkaConsumer,
        CheckType::HttpSteps => v1::CheckKind::HttpSteps,
        CheckType::Websocket => v1::CheckKind::Websocket,
        CheckType::Mqtt => v1::CheckKind::Mqtt,
        CheckType::Mail => v1::CheckKind::Mail,
    }
}

/// A duration field of a proto target, `None` when unset or negative.
pub use pantau_config::proto::opt_duration;

#[cfg(test)]
mod size {
    /// What every target costs in the schedule: a hundred thousand targets
    /// multiply each byte (`make bench-system BENCH_MODE=memory`). A field
    /// that most targets leave empty is boxed, not carried inline.
    #[test]
    fn a_scheduled_target_stays_small() {
        use std::mem::size_of;
        assert!(
            size_of::<super::HttpSpec>() <= 64,
            "HttpSpec: {}",
            size_of::<super::HttpSpec>()
        );
        assert!(size_of::<super::Spec>() <= 16, "Spec: {}", size_of::<super::Spec>());
        assert!(
            size_of::<super::Target>() <= 64,
            "Target: {}",
            size_of::<super::Target>()
        );
        // With the `Arc`'s two counters, 192 bytes: jemalloc's size class
        // (320 before every larger check type was boxed and the id,
        // dependencies and push token were read from the configuration; 160
        // before the latest result and the state moved here from two maps
        // keyed by copies of the id, about 170 bytes a target).
        let entry = size_of::<crate::scheduler::Entry>();
        assert!(entry <= 176, "Entry: {entry}");
    }
}
