//! The flat wire shape of a target, as YAML and JSON write it, and back.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{CheckType, ConditionConfig, Grace, Interval, RecordType, TargetConfig, TargetSpec, Timeout, TlsFiles};
use crate::{duration, text};

/// One thing the collector watches, in its wire shape: every field of every
/// type, flat, as YAML and JSON write it. Which fields apply depends on
/// `type`; [`RawTarget::parse`] refuses a field of another type rather than
/// ignoring it, and is the only way to a [`TargetConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// Stable id: letters, digits, `-` and `_` (it is a bus subject token).
    #[serde(deserialize_with = "text::deserialize")]
    pub id: String,
    /// Human name; the id when unset.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub name: Option<String>,
    /// `http`, `tcp`, `tls`, `icmp`, `dns`, `push`, `grpc`, `redis`, `postgres`,
    /// `mysql`, `udp`, `ssh`, `kafka_producer`, `kafka_consumer`, `http_steps`,
    /// `websocket`, `mqtt` or `mail`.
    #[serde(rename = "type")]
    pub check: CheckType,
    /// How often; `collector.interval` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "duration::option")]
    pub interval: Option<Duration>,
    /// Longest a check may take; `collector.timeout` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "duration::option")]
    pub timeout: Option<Duration>,
    /// Free-form labels (env, team, location, …) carried on every result.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Multi-location consensus: how many locations must see the target down
    /// for the consensus to be DOWN (N of M); a majority when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// What it depends on: `target:<id>` (or `<id>`), `router:<id>`,
    /// `interface:<router>/<name>`; while one is down its alerts are
    /// suppressed and caused by it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,

    /// http: the URL to request. websocket: the `ws://` or `wss://` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// http: the method (GET, HEAD, POST, …); GET when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// http, websocket: request (handshake) headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// http: request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// http: follow redirects (up to 10); true when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    /// http, tls: verify the certificate chain and name; true when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_tls: Option<bool>,
    /// http: keep the connection open between checks (keep-alive); true when
    /// unset. `false` opens a new connection (DNS, connect, TLS) every check,
    /// measuring what a new visitor sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse_connection: Option<bool>,
    /// http: accepted status codes; empty means 200–399.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_status: Vec<u16>,
    /// http: further conditions on the response.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionConfig>,

    /// tcp, tls: `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// tcp: text to send after connecting (`\r\n` escapes are honoured).
    /// udp: the datagram to send. websocket: one text message to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// tcp, udp: text the answer must contain. ssh: text the version line must contain.
    /// websocket: text the first message must contain. mail: text the greeting must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// tls: the name to ask for (SNI) and verify; the address's host when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// http (https), tls: a certificate expiring within this many days is down
    /// (reason `tls`); 14 when unset, 0 to only report the days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_days: Option<u32>,
    /// http (https), tls: a PEM file of CA certificates trusted besides the
    /// system's (a private CA); the system's roots and `SSL_CERT_FILE` always are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// http (https), tls: a PEM client certificate (chain) to present; with `client_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<std::path::PathBuf>,
    /// http (https), tls: the PEM private key of `client_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<std::path::PathBuf>,

    /// icmp: host name or address to ping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// icmp: echo requests per check; 3 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u16>,
    /// icmp: more loss than this percentage is down (reason `icmp_loss`); 0 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_loss_percent: Option<f64>,

    /// dns: the name to resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_to_resolve: Option<String>,
    /// dns: A, AAAA, CNAME, MX, TXT or NS; A when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_type: Option<RecordType>,
    /// dns: `ip` or `ip:port` of the resolver to ask; the system's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
    /// dns: answers that must all be present (e.g. `127.0.0.1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_answers: Vec<String>,

    /// push: the secret in `POST /api/v1/push/{token}` (at least 16 characters).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub token: Option<String>,
    /// push: extra time after the interval before a missing push is down.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "duration::option")]
    pub grace: Option<Duration>,

    /// grpc: the service whose health is asked; the whole server when unset.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub service: Option<String>,
    /// grpc, mqtt: speak TLS; mail: implicit TLS (465, 993, 995); false when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_tls: Option<bool>,

    /// postgres, mysql: the database; the server's default for the user when unset.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub database: Option<String>,
    /// redis: the user to authenticate as (an ACL user); the default user when
    /// unset. postgres, mysql: the user to log in as (required). mqtt: the user name.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub username: Option<String>,
    /// redis, postgres, mysql, mqtt: the password (write only: shown as `***`).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub password: Option<String>,
    /// redis: the command to run (`GET health`); `PING` when unset.
    /// postgres, mysql: the SQL query; `SELECT 1` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub query: Option<String>,
    /// redis: the reply, as text, must equal this; `PONG` for `PING` when unset.
    /// postgres, mysql: the first column of the first row, as text, must equal this.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub expected_reply: Option<String>,
    /// kafka_producer, kafka_consumer: brokers, topic and what to measure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<super::RawKafka>,

    /// http, http_steps: a proxy every request goes through: `http://`,
    /// `https://`, `socks5://` or `socks5h://` (the proxy resolves names),
    /// with an optional `user:password@` (shown as `***`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// http, http_steps: host name → IP address used instead of DNS (like
    /// curl's `--resolve`; the URL's port is kept, TLS still checks the name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resolve: BTreeMap<String, String>,
    /// http, http_steps: `ip:port` (or `ip`, port 53) of the DNS server the
    /// URL's host names are resolved through instead of the system's.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::text::option"
    )]
    pub dns_server: Option<String>,
    /// http_steps: the requests, in order, each with its assertions and the
    /// variables it extracts for later steps (`{{name}}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<super::RawStep>,
    /// mqtt: the topic of a publish/subscribe round trip (no wildcards); the
    /// check only connects when unset.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub topic: Option<String>,
    /// mail: `smtp`, `imap` or `pop3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<super::MailProtocol>,
    /// mail: upgrade the plain connection with STARTTLS (STLS for POP3);
    /// false when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<bool>,
    /// websocket: a regular expression (case-insensitive) the first message
    /// received must match.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub expect_matches: Option<String>,
}

impl RawTarget {
    /// A target of `check` type with every optional field unset.
    pub fn new(id: impl Into<String>, check: CheckType) -> Self {
        Self {
            id: id.into(),
            name: None,
            check,
            interval: None,
            timeout: None,
            labels: BTreeMap::new(),
            quorum: None,
            depends_on: Vec::new(),
            url: None,
            method: None,
            headers: BTreeMap::new(),
            body: None,
            follow_redirects: None,
            verify_tls: None,
            reuse_connection: None,
            expected_status: Vec::new(),
            conditions: Vec::new(),
            address: None,
            send: None,
            expect: None,
            server_name: None,
            warn_days: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            host: None,
            count: None,
            max_loss_percent: None,
            name_to_resolve: None,
            record_type: None,
            resolver: None,
            expected_answers: Vec::new(),
            token: None,
            grace: None,
            service: None,
            use_tls: None,
            database: None,
            username: None,
            password: None,
            query: None,
            expected_reply: None,
            kafka: None,
            proxy: None,
            resolve: BTreeMap::new(),
            dns_server: None,
            steps: Vec::new(),
            topic: None,
            protocol: None,
            starttls: None,
            expect_matches: None,
        }
    }

    pub(super) fn set_tls(&mut self, tls: TlsFiles) {
        self.ca_file = tls.ca_file;
        if let Some(pair) = tls.client {
            let (cert, key) = *pair;
            self.client_cert = Some(cert);
            self.client_key = Some(key);
        }
    }

    /// Names of the type-specific fields that are set.
    pub(super) fn set_fields(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        let mut mark = |set: bool, name| {
            if set {
                f.push(name);
            }
        };
        mark(self.url.is_some(), "url");
        mark(self.method.is_some(), "method");
        mark(!self.headers.is_empty(), "headers");
        mark(self.body.is_some(), "body");
        mark(self.follow_redirects.is_some(), "follow_redirects");
        mark(self.verify_tls.is_some(), "verify_tls");
        mark(self.reuse_connection.is_some(), "reuse_connection");
        mark(!self.expected_status.is_empty(), "expected_status");
        mark(!self.conditions.is_empty(), "conditions");
        mark(self.address.is_some(), "address");
        mark(self.send.is_some(), "send");
        mark(self.expect.is_some(), "expect");
        mark(self.server_name.is_some(), "server_name");
        mark(self.warn_days.is_some(), "warn_days");
        mark(self.ca_file.is_some(), "ca_file");
        mark(self.client_cert.is_some(), "client_cert");
        mark(self.client_key.is_some(), "client_key");
        mark(self.host.is_some(), "host");
        mark(self.count.is_some(), "count");
        mark(self.max_loss_percent.is_some(), "max_loss_percent");
        mark(self.name_to_resolve.is_some(), "name_to_resolve");
        mark(self.record_type.is_some(), "record_type");
        mark(self.resolver.is_some(), "resolver");
        mark(!self.expected_answers.is_empty(), "expected_answers");
        mark(self.token.is_some(), "token");
        mark(self.grace.is_some(), "grace");
        mark(self.service.is_some(), "service");
        mark(self.use_tls.is_some(), "use_tls");
        mark(self.database.is_some(), "database");
        mark(self.username.is_some(), "username");
        mark(self.password.is_some(), "password");
        mark(self.query.is_some(), "query");
        mark(self.expected_reply.is_some(), "expected_reply");
        mark(self.kafka.is_some(), "kafka");
        mark(self.proxy.is_some(), "proxy");
        mark(!self.resolve.is_empty(), "resolve");
        mark(self.dns_server.is_some(), "dns_server");
        mark(!self.steps.is_empty(), "steps");
        mark(self.topic.is_some(), "topic");
        mark(self.protocol.is_some(), "protocol");
        mark(self.starttls.is_some(), "starttls");
        mark(self.expect_matches.is_some(), "expect_matches");
        f
    }
}

impl From<TargetConfig> for RawTarget {
    fn from(mut t: TargetConfig) -> Self {
        let check = t.check();
        let more = t.take_more();
        let mut r = Self::new(t.id, check);
        r.name = more.name;
        r.interval = t.interval.map(Interval::get);
        r.timeout = t.timeout.map(Timeout::get);
        r.labels = t.labels.into();
        r.quorum = more.quorum.map(NonZeroU32::get);
        r.depends_on = more.depends_on.iter().map(ToString::to_string).collect();
        match t.spec {
            TargetSpec::Http(h) => {
                let mut h = *h;
                let more = h.take_more();
                r.url = Some(h.url.into());
                r.method = more.method;
                r.headers = more.headers;
                r.body = more.body;
                r.follow_redirects = h.follow_redirects;
                r.verify_tls = h.verify_tls;
                r.reuse_connection = h.reuse_connection;
                r.expected_status = h.expected_status.into_vec();
                r.conditions = more.conditions;
                r.warn_days = h.warn_days;
                r.set_tls(more.tls);
                super::http_options::to_raw(more.options, &mut r);
            }
            TargetSpec::Tcp(x) => {
                r.address = Some(x.address.to_string());
                r.send = x.send;
                r.expect = x.expect;
            }
            TargetSpec::Tls(x) => {
                r.address = Some(x.address.to_string());
                r.server_name = x.server_name;
                r.verify_tls = x.verify_tls;
                r.warn_days = x.warn_days;
                r.set_tls(x.tls);
            }
            TargetSpec::Icmp(x) => {
                r.host = Some(x.host);
                r.count = x.count;
                r.max_loss_percent = x.max_loss_percent;
            }
            TargetSpec::Dns(x) => {
                r.name_to_resolve = Some(x.name_to_resolve);
                r.record_type = x.record_type;
                r.resolver = x.resolver.map(|a| a.to_string());
                r.expected_answers = x.expected_answers;
            }
            TargetSpec::Push(x) => {
                r.token = Some(x.token);
                r.grace = x.grace.map(Grace::get);
            }
            TargetSpec::Grpc(x) => super::grpc::to_raw(*x, &mut r),
            TargetSpec::Redis(x) => super::redis::to_raw(*x, &mut r),
            TargetSpec::Postgres(x) | TargetSpec::Mysql(x) => super::sql::to_raw(*x, &mut r),
            TargetSpec::Udp(x) => super::udp::udp_to_raw(*x, &mut r),
            TargetSpec::Ssh(x) => super::ssh::to_raw(x, &mut r),
            TargetSpec::HttpSteps(x) => super::steps::to_raw(*x, &mut r),
            TargetSpec::KafkaProducer(k) | TargetSpec::KafkaConsumer(k) => r.kafka = Some((&*k).into()),
            TargetSpec::Websocket(x) => super::websocket::to_raw(*x, &mut r),
            TargetSpec::Mqtt(x) => super::mqtt::to_raw(*x, &mut r),
            TargetSpec::Mail(x) => super::mail::to_raw(*x, &mut r),
        }
        r
    }
}
