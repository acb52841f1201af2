//! What the collector watches. A target arrives in its flat wire shape,
//! [`RawTarget`] (one YAML entry, one REST body, or the protobuf mapped by
//! [`crate::proto`]), and is parsed once, by [`RawTarget::parse`], into a
//! [`TargetConfig`] whose [`TargetSpec`] holds only the fields of its type, in
//! types that cannot hold a bad value. Every input path goes through that one
//! parser, so a target is refused the same way wherever it comes from.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::{self, format as fmt_d};
use super::types::{Grace, HostPort, HttpUrl, Interval, Timeout};
use super::{Invalid, Labels, text};

mod depends;
mod grpc;
mod http_options;
mod kafka;
mod mail;
mod mqtt;
mod parse;
mod raw;
mod redis;
mod sql;
mod ssh;
mod steps;
mod steps_proto;
mod udp;
mod websocket;

/// A target's refusals in one line (tests of each type's parser).
#[cfg(test)]
fn refused(r: RawTarget) -> String {
    r.parse("t")
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

pub use depends::{Dependency, MAX_DEPENDENCIES, cycles};
pub use grpc::GrpcTarget;
pub use http_options::{HttpOptions, MAX_RESOLVE, ProxyUrl};
pub use kafka::{
    Acks, ConsumerMode, DEFAULT_MAX_LAG, KafkaSasl, KafkaSecurity, KafkaTarget, KafkaTls, RawKafka, SaslMechanism,
};
pub(crate) use kafka::{from_proto as kafka_from_proto, to_proto as kafka_to_proto};
pub use mail::{MailProtocol, MailTarget, MailTls};
pub use mqtt::MqttTarget;
pub use redis::RedisTarget;
pub use sql::{DEFAULT_QUERY as SQL_DEFAULT_QUERY, SqlTarget};
pub use ssh::SshTarget;
pub use steps::{
    Extract, HttpStep, HttpStepsTarget, MAX_STEPS, MAX_VARIABLE_BYTES, MAX_VARIABLES, RawStep, references, render,
};
pub(crate) use steps_proto::{
    from_proto as steps_from_proto, options_from_proto, options_to_proto, to_proto as steps_to_proto,
};
pub use udp::UdpTarget;
pub use websocket::{WebSocketTarget, WsUrl};

pub use parse::TargetError;
pub(crate) use parse::deserialize_targets;
pub use raw::RawTarget;

/// The kind of check a target gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckType {
    /// An HTTP or HTTPS request (`url`).
    Http,
    /// A TCP connect, optionally sending and expecting bytes (`address`).
    Tcp,
    /// A TLS handshake and the certificate's expiry (`address`).
    Tls,
    /// ICMP echo (`host`); `ping`, the original specification's name, is an alias.
    #[serde(alias = "ping")]
    Icmp,
    /// A DNS query (`name`, `record_type`).
    Dns,
    /// A heartbeat: something calls `POST /api/v1/push/{token}` (`token`).
    Push,
    /// A gRPC health check (`address`, `service`).
    Grpc,
    /// Redis `PING`, or a command and its expected reply (`address`).
    Redis,
    /// PostgreSQL: log in and run a query (`address`, `username`).
    Postgres,
    /// MySQL or MariaDB: log in and run a query (`address`, `username`).
    #[serde(alias = "mariadb")]
    Mysql,
    /// A UDP datagram and its answer (`address`, `send`).
    Udp,
    /// An SSH server's version banner (`address`).
    Ssh,
    /// A canary record produced to a Kafka topic (`kafka`).
    KafkaProducer,
    /// A Kafka topic's canaries consumed, or a consumer group's lag (`kafka`).
    KafkaConsumer,
    /// Ordered HTTP requests passing variables from one to the next (`steps`).
    HttpSteps,
    /// A WebSocket opened, optionally a message sent and the answer compared (`url`).
    Websocket,
    /// An MQTT broker: connect, optionally a publish/subscribe round trip (`address`).
    Mqtt,
    /// An SMTP, IMAP or POP3 greeting, STARTTLS and the certificate (`protocol`, `address`).
    Mail,
}

impl CheckType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Icmp => "icmp",
            Self::Dns => "dns",
            Self::Push => "push",
            Self::Grpc => "grpc",
            Self::Redis => "redis",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Udp => "udp",
            Self::Ssh => "ssh",
            Self::KafkaProducer => "kafka_producer",
            Self::KafkaConsumer => "kafka_consumer",
            Self::HttpSteps => "http_steps",
            Self::Websocket => "websocket",
            Self::Mqtt => "mqtt",
            Self::Mail => "mail",
        }
    }
}

/// DNS record types a DNS check can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
    #[default]
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
}

/// A condition an HTTP response must meet, besides its status code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ConditionConfig {
    /// The whole response arrives within this time.
    ResponseTimeBelow(#[serde(with = "duration")] Duration),
    /// The body contains this text.
    BodyContains(String),
    /// The body matches this regular expression.
    BodyMatches(String),
    /// A JSON path (RFC 9535) into the body, compared.
    Json(JsonCondition),
    /// A response header, compared.
    Header(HeaderCondition),
}

/// `json: {path: "$.status", equals: "ok"}`; exactly one comparison.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonCondition {
    /// JSONPath, e.g. `$.checks.database.status`.
    pub path: String,
    /// The value, as text, equals this (`"ok"`, `200`, `true`).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub equals: Option<String>,
    /// The value is a number greater than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greater_than: Option<f64>,
    /// The value is a number less than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub less_than: Option<f64>,
    /// The path matches something (`true`) or nothing (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
}

/// `header: {name: content-type, contains: json}`; exactly one comparison.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderCondition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
}

/// One thing the collector watches, parsed: the fields every target has and
/// the [`TargetSpec`] of its type. Made only by [`RawTarget::parse`] (serde
/// goes through it too), so it never holds an out-of-range interval, a URL
/// that is not http(s), or a field of another type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawTarget", into = "RawTarget")]
pub struct TargetConfig {
    /// Stable id: letters, digits, `-` and `_` (it is a bus subject token).
    pub id: String,
    /// How often; `collector.interval` when unset.
    pub interval: Option<Interval>,
    /// Longest a check may take; `collector.timeout` when unset.
    pub timeout: Option<Timeout>,
    /// Free-form labels carried on every result.
    pub labels: Labels,
    /// What the check does, by type.
    pub spec: TargetSpec,
    /// Its name, quorum and dependencies, which most targets leave unset:
    /// boxed, and `None` when all are (inline they took the target from
    /// jemalloc's 192-byte class to the 224 one). Read through
    /// [`TargetConfig::name`], [`TargetConfig::quorum`] and
    /// [`TargetConfig::depends_on`].
    more: Option<Box<TargetMore>>,
}

/// The parts of a [`TargetConfig`] most targets leave unset.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TargetMore {
    /// Human name; the id when unset.
    pub name: Option<String>,
    /// Locations that must see the target down for a DOWN consensus; a
    /// majority when unset.
    pub quorum: Option<NonZeroU32>,
    /// Its parents (targets, routers, router interfaces); no duplicates,
    /// never itself.
    pub depends_on: Vec<Dependency>,
}

impl TargetConfig {
    /// The same target with `more` (boxed only when some part is set).
    #[must_use]
    pub fn with_more(mut self, more: TargetMore) -> Self {
        self.more = (more != TargetMore::default()).then(|| Box::new(more));
        self
    }

    /// Takes its name, quorum and dependencies out (unset from here on).
    pub fn take_more(&mut self) -> TargetMore {
        self.more.take().map(|m| *m).unwrap_or_default()
    }

    /// Human name; the id when unset.
    pub fn name(&self) -> Option<&str> {
        self.more.as_ref()?.name.as_deref()
    }

    /// Locations that must see the target down for a DOWN consensus; a
    /// majority when unset.
    pub fn quorum(&self) -> Option<NonZeroU32> {
        self.more.as_ref()?.quorum
    }

    /// Its parents (targets, routers, router interfaces).
    pub fn depends_on(&self) -> &[Dependency] {
        self.more.as_ref().map_or(&[], |m| &m.depends_on)
    }
}

/// What a target's check does: exactly the fields of its type. Types
/// larger than a TCP check are boxed, so a target costs what its own type
/// needs (every target of a hundred thousand carried the largest type's
/// 160 bytes).
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    Http(Box<HttpTarget>),
    Tcp(TcpTarget),
    Tls(Box<TlsTarget>),
    Icmp(IcmpTarget),
    Dns(Box<DnsTarget>),
    Push(PushTarget),
    Grpc(Box<GrpcTarget>),
    Redis(Box<RedisTarget>),
    Postgres(Box<SqlTarget>),
    Mysql(Box<SqlTarget>),
    Udp(Box<UdpTarget>),
    Ssh(SshTarget),
    KafkaProducer(Box<KafkaTarget>),
    KafkaConsumer(Box<KafkaTarget>),
    HttpSteps(Box<HttpStepsTarget>),
    Websocket(Box<WebSocketTarget>),
    Mqtt(Box<MqttTarget>),
    Mail(Box<MailTarget>),
}

/// An HTTP(S) request and what its answer must be.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpTarget {
    pub url: HttpUrl,
    pub follow_redirects: Option<bool>,
    pub verify_tls: Option<bool>,
    pub reuse_connection: Option<bool>,
    /// Status codes within 100–599; empty means 200–399. A boxed slice, as
    /// it never grows (a word less than a `Vec`).
    pub expected_status: Box<[u16]>,
    pub warn_days: Option<u32>,
    /// What most targets leave unset (method, headers, body, conditions,
    /// TLS files, proxy and resolution), boxed and `None` when all of it is
    /// unset: inline it was 190 of the 320 bytes every `http` target kept.
    /// Read through [`HttpTarget::more`] and its shortcuts.
    more: Option<Box<HttpMore>>,
}

/// The parts of an [`HttpTarget`] that most targets leave unset.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpMore {
    /// An HTTP method in capitals; GET when unset.
    pub method: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    /// Each checked: a valid regex, a valid JSONPath, exactly one comparison.
    pub conditions: Vec<ConditionConfig>,
    pub tls: TlsFiles,
    /// A proxy, fixed addresses for host names.
    pub options: HttpOptions,
}

/// Every part unset: what a target without its box reads.
static HTTP_UNSET: HttpMore = HttpMore {
    method: None,
    headers: BTreeMap::new(),
    body: None,
    conditions: Vec::new(),
    tls: TlsFiles {
        ca_file: None,
        client: None,
    },
    options: HttpOptions {
        proxy: None,
        resolve: BTreeMap::new(),
        dns_server: None,
    },
};

/// What an `http` or `tls` check trusts and presents beyond the system's
/// roots: a private CA, a client certificate. Shared by both check types so
/// they trust the same certificates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFiles {
    pub ca_file: Option<std::path::PathBuf>,
    /// Certificate and key, both or neither (boxed: most targets have
    /// none, and every `http` target carries this).
    pub client: Option<Box<(std::path::PathBuf, std::path::PathBuf)>>,
}

impl TlsFiles {
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.client.is_none()
    }
}

/// A TCP connect, optionally sending and expecting text.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpTarget {
    pub address: HostPort,
    pub send: Option<String>,
    pub expect: Option<String>,
}

/// A TLS handshake and the certificate's expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsTarget {
    pub address: HostPort,
    pub server_name: Option<String>,
    pub verify_tls: Option<bool>,
    pub warn_days: Option<u32>,
    pub tls: TlsFiles,
}

/// ICMP echo.
#[derive(Debug, Clone, PartialEq)]
pub struct IcmpTarget {
    /// Non-empty.
    pub host: String,
    /// 1–100.
    pub count: Option<u16>,
    /// At least 0, below 100.
    pub max_loss_percent: Option<f64>,
}

/// A DNS query.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsTarget {
    /// Non-empty.
    pub name_to_resolve: String,
    pub record_type: Option<RecordType>,
    /// The resolver to ask (port 53 when `resolver` gave only an address);
    /// the system's when unset.
    pub resolver: Option<std::net::SocketAddr>,
    pub expected_answers: Vec<String>,
}

/// A heartbeat someone sends to `POST /api/v1/push/{token}`.
#[derive(Debug, Clone, PartialEq)]
pub struct PushTarget {
    /// At least 16 characters of letters, digits, `-` or `_`.
    pub token: String,
    pub grace: Option<Grace>,
}

impl TargetSpec {
    pub fn check(&self) -> CheckType {
        match self {
            Self::Http(_) => CheckType::Http,
            Self::Tcp(_) => CheckType::Tcp,
            Self::Tls(_) => CheckType::Tls,
            Self::Icmp(_) => CheckType::Icmp,
            Self::Dns(_) => CheckType::Dns,
            Self::Push(_) => CheckType::Push,
            Self::Grpc(_) => CheckType::Grpc,
            Self::Redis(_) => CheckType::Redis,
            Self::Postgres(_) => CheckType::Postgres,
            Self::Mysql(_) => CheckType::Mysql,
            Self::Udp(_) => CheckType::Udp,
            Self::Ssh(_) => CheckType::Ssh,
            Self::KafkaProducer(_) => CheckType::KafkaProducer,
            Self::KafkaConsumer(_) => CheckType::KafkaConsumer,
            Self::HttpSteps(_) => CheckType::HttpSteps,
            Self::Websocket(_) => CheckType::Websocket,
            Self::Mqtt(_) => CheckType::Mqtt,
            Self::Mail(_) => CheckType::Mail,
        }
    }
}

impl TargetConfig {
    /// A target with `spec` and every other optional field unset.
    pub fn new(id: impl Into<String>, spec: TargetSpec) -> Self {
        Self {
            id: id.into(),
            interval: None,
            timeout: None,
            labels: Labels::new(),
            spec,
            more: None,
        }
    }

    pub fn check(&self) -> CheckType {
        self.spec.check()
    }

    /// The push token, for a push target.
    pub fn push_token(&self) -> Option<&str> {
        match &self.spec {
            TargetSpec::Push(p) => Some(&p.token),
            _ => None,
        }
    }
}

impl HttpTarget {
    /// A GET of `url` with every option unset.
    pub fn new(url: HttpUrl) -> Self {
        Self {
            url,
            follow_redirects: None,
            verify_tls: None,
            reuse_connection: None,
            expected_status: Box::default(),
            warn_days: None,
            more: None,
        }
    }

    /// The same target with `more` (boxed only when some part of it is set).
    #[must_use]
    pub fn with_more(mut self, more: HttpMore) -> Self {
        self.more = (more != HTTP_UNSET).then(|| Box::new(more));
        self
    }

    /// Its method, headers, body, conditions, TLS files and options.
    pub fn more(&self) -> &HttpMore {
        self.more.as_deref().unwrap_or(&HTTP_UNSET)
    }

    /// Takes those parts out (every part unset from here on).
    pub fn take_more(&mut self) -> HttpMore {
        self.more.take().map(|m| *m).unwrap_or_default()
    }

    /// Its method in capitals, when set (GET otherwise).
    pub fn method(&self) -> Option<&str> {
        self.more().method.as_deref()
    }

    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.more().headers
    }

    pub fn body(&self) -> Option<&str> {
        self.more().body.as_deref()
    }

    pub fn conditions(&self) -> &[ConditionConfig] {
        &self.more().conditions
    }

    pub fn tls(&self) -> &TlsFiles {
        &self.more().tls
    }

    pub fn options(&self) -> &HttpOptions {
        &self.more().options
    }
}

impl super::CollectorConfig {
    /// Replaces the targets' credentials (push tokens, URL passwords,
    /// credential headers) by `***`.
    pub fn mask(&mut self) {
        self.mask_routers();
        for t in &mut self.targets {
            let t = Arc::make_mut(t);
            match &mut t.spec {
                TargetSpec::Http(h) => {
                    h.url = h.url.masked();
                    if let Some(more) = h.more.as_deref_mut() {
                        for (name, value) in &mut more.headers {
                            if is_secret_header(name) {
                                "***".clone_into(value);
                            }
                        }
                        more.options = more.options.masked();
                    }
                }
                TargetSpec::HttpSteps(s) => s.mask(),
                TargetSpec::Push(p) => "***".clone_into(&mut p.token),
                TargetSpec::Redis(x) => mask_password(&mut x.password),
                TargetSpec::Postgres(x) | TargetSpec::Mysql(x) => mask_password(&mut x.password),
                TargetSpec::Mqtt(x) => mask_password(&mut x.password),
                TargetSpec::KafkaProducer(k) | TargetSpec::KafkaConsumer(k) => {
                    if let Some(s) = &mut k.sasl {
                        "***".clone_into(&mut s.password);
                    }
                }
                TargetSpec::Websocket(w) => {
                    w.url = w.url.masked();
                    for (name, value) in &mut w.headers {
                        if is_secret_header(name) {
                            "***".clone_into(value);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// A probe's password, when set, becomes `***`.
fn mask_password(p: &mut Option<String>) {
    if let Some(p) = p {
        "***".clone_into(p);
    }
}

/// Header names whose values are credentials.
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["authorization", "cookie", "token", "secret", "key", "password"]
        .iter()
        .any(|s| n.contains(s))
}

/// Shortest interval a target may have.
pub const MIN_INTERVAL: Duration = Interval::MIN;
/// Longest interval (and push grace) a target or router may have: 30 days.
pub const MAX_INTERVAL: Duration = Interval::MAX;
/// Shortest timeout a target may have.
pub const MIN_TIMEOUT: Duration = Timeout::MIN;

/// What only the collector's defaults can decide about a parsed target: its
/// timeout, or the collector's, must not exceed its interval, or the
/// collector's. Keys start with `prefix` (e.g. `collector.targets[3]`).
pub fn validate_target(
    t: &TargetConfig,
    prefix: &str,
    default_interval: Duration,
    default_timeout: Duration,
) -> Vec<Invalid> {
    let interval = t.interval.map_or(default_interval, Interval::get);
    let timeout = t.timeout.map_or(default_timeout, Timeout::get);
    if timeout > interval && t.check() != CheckType::Push {
        return vec![Invalid {
            key: format!("{prefix}.timeout"),
            value: fmt_d(timeout),
            allowed: format!("must not exceed the target's interval ({})", fmt_d(interval)),
        }];
    }
    Vec::new()
}

#[cfg(test)]
mod size {
    /// A loaded target is kept for as long as it is checked, a hundred
    /// thousand of them in one process: the common types (`http`, `tcp`)
    /// carry no inline room for fields that most targets leave empty.
    #[test]
    fn a_loaded_target_stays_small() {
        use std::mem::size_of;
        assert!(
            size_of::<super::TargetSpec>() <= 80,
            "TargetSpec: {}",
            size_of::<super::TargetSpec>()
        );
        // With the `Arc`'s two counters, 224 bytes: jemalloc's size class
        // (256 before `dns` was boxed).
        assert!(
            size_of::<super::TargetConfig>() <= 176,
            "TargetConfig: {}",
            size_of::<super::TargetConfig>()
        );
        assert!(
            size_of::<super::HttpTarget>() <= 56,
            "HttpTarget: {}",
            size_of::<super::HttpTarget>()
        );
    }
}
