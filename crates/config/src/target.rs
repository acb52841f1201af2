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
use super::{Invalid, text};

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
    /// `http`, `tcp`, `tls`, `icmp`, `dns` or `push`.
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

    /// http: the URL to request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// http: the method (GET, HEAD, POST, …); GET when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// http: request headers.
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// tcp: text the answer must contain.
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
    /// Human name; the id when unset.
    pub name: Option<String>,
    /// How often; `collector.interval` when unset.
    pub interval: Option<Interval>,
    /// Longest a check may take; `collector.timeout` when unset.
    pub timeout: Option<Timeout>,
    /// Free-form labels carried on every result.
    pub labels: BTreeMap<String, String>,
    /// Locations that must see the target down for a DOWN consensus; a
    /// majority when unset.
    pub quorum: Option<NonZeroU32>,
    /// What the check does, by type.
    pub spec: TargetSpec,
}

/// What a target's check does: exactly the fields of its type.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    Http(Box<HttpTarget>),
    Tcp(TcpTarget),
    Tls(TlsTarget),
    Icmp(IcmpTarget),
    Dns(DnsTarget),
    Push(PushTarget),
}

/// An HTTP(S) request and what its answer must be.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpTarget {
    pub url: HttpUrl,
    /// An HTTP method in capitals; GET when unset.
    pub method: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub follow_redirects: Option<bool>,
    pub verify_tls: Option<bool>,
    pub reuse_connection: Option<bool>,
    /// Status codes within 100–599; empty means 200–399.
    pub expected_status: Vec<u16>,
    /// Each checked: a valid regex, a valid JSONPath, exactly one comparison.
    pub conditions: Vec<ConditionConfig>,
    pub warn_days: Option<u32>,
    pub tls: TlsFiles,
}

/// What an `http` or `tls` check trusts and presents beyond the system's
/// roots: a private CA, a client certificate. Shared by both check types so
/// they trust the same certificates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFiles {
    pub ca_file: Option<std::path::PathBuf>,
    /// Certificate and key, both or neither.
    pub client: Option<(std::path::PathBuf, std::path::PathBuf)>,
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
        }
    }
}

impl TargetConfig {
    /// A target with `spec` and every other optional field unset.
    pub fn new(id: impl Into<String>, spec: TargetSpec) -> Self {
        Self {
            id: id.into(),
            name: None,
            interval: None,
            timeout: None,
            labels: BTreeMap::new(),
            quorum: None,
            spec,
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
            method: None,
            headers: BTreeMap::new(),
            body: None,
            follow_redirects: None,
            verify_tls: None,
            reuse_connection: None,
            expected_status: Vec::new(),
            conditions: Vec::new(),
            warn_days: None,
            tls: TlsFiles::default(),
        }
    }
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
        }
    }

    fn set_tls(&mut self, tls: TlsFiles) {
        self.ca_file = tls.ca_file;
        if let Some((cert, key)) = tls.client {
            self.client_cert = Some(cert);
            self.client_key = Some(key);
        }
    }

    /// Names of the type-specific fields that are set.
    fn set_fields(&self) -> Vec<&'static str> {
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
        f
    }

    /// Parses the target, or says every problem, each keyed under `prefix`
    /// (e.g. `collector.targets[3]`, or `target` for the APIs).
    pub fn parse(self, prefix: &str) -> Result<TargetConfig, Vec<Invalid>> {
        let mut problems = Problems {
            prefix,
            out: Vec::new(),
        };
        let p = &mut problems;
        if !super::validate::is_subject_token(&self.id) {
            p.add(
                "id",
                &self.id,
                "must be 1–128 characters of letters, digits, `-` or `_`",
            );
        }
        bounds(&self, p);
        let check = self.check;
        let own = allowed(check);
        for field in self.set_fields() {
            if !own.contains(&field) {
                p.add(
                    field,
                    "",
                    format!(
                        "does not apply to a {} target (it takes: {})",
                        check.as_str(),
                        own.join(", ")
                    ),
                );
            }
        }
        let interval = self
            .interval
            .and_then(|d| Interval::new(d).map_err(|why| p.add("interval", &fmt_d(d), why)).ok());
        let timeout = self
            .timeout
            .and_then(|d| Timeout::new(d).map_err(|why| p.add("timeout", &fmt_d(d), why)).ok());
        let quorum = match self.quorum {
            Some(0) => {
                p.add("quorum", "0", "must be at least 1 (locations that must agree)");
                None
            }
            q => q.and_then(NonZeroU32::new),
        };
        let spec = spec(self.check, &self, p);
        match spec {
            Some(spec) if problems.out.is_empty() => Ok(TargetConfig {
                id: self.id,
                name: self.name,
                interval,
                timeout,
                labels: self.labels,
                quorum,
                spec,
            }),
            _ => Err(problems.out),
        }
    }
}

/// Problems of one target, keyed under its prefix.
struct Problems<'a> {
    prefix: &'a str,
    out: Vec<Invalid>,
}

impl Problems<'_> {
    fn add(&mut self, field: &str, value: &str, allowed: impl Into<String>) {
        self.out.push(Invalid {
            key: format!("{}.{field}", self.prefix),
            value: crate::types::quote(value).into_owned(),
            allowed: allowed.into(),
        });
    }

    fn required<T>(&mut self, v: Option<T>, check: CheckType, field: &str, what: &str) -> Option<T> {
        if v.is_none() {
            self.add(field, "", format!("is required for a {} target{what}", check.as_str()));
        }
        v
    }
}

/// The typed spec of `r`, or `None` with the problems added.
fn spec(check: CheckType, r: &RawTarget, p: &mut Problems<'_>) -> Option<TargetSpec> {
    match check {
        CheckType::Http => {
            let url = p.required(r.url.as_deref(), check, "url", "")?;
            let url = url.parse::<HttpUrl>().map_err(|why| p.add("url", url, why)).ok();
            if let Some(m) = &r.method
                && (m.is_empty() || m.len() > 16 || !m.bytes().all(|b| b.is_ascii_uppercase()))
            {
                p.add("method", m, "must be an HTTP method in capitals, e.g. GET, HEAD, POST");
            }
            for s in &r.expected_status {
                if !(100..=599).contains(s) {
                    p.add(
                        "expected_status",
                        &s.to_string(),
                        "must hold HTTP status codes between 100 and 599",
                    );
                }
            }
            for (i, c) in r.conditions.iter().enumerate() {
                if let Some(why) = check_condition(c) {
                    p.add(&format!("conditions[{i}]"), &format!("{c:?}"), why);
                }
            }
            Some(TargetSpec::Http(Box::new(HttpTarget {
                url: url?,
                method: r.method.clone(),
                headers: r.headers.clone(),
                body: r.body.clone(),
                follow_redirects: r.follow_redirects,
                verify_tls: r.verify_tls,
                reuse_connection: r.reuse_connection,
                expected_status: r.expected_status.clone(),
                conditions: r.conditions.clone(),
                warn_days: r.warn_days,
                tls: tls_files(r, p)?,
            })))
        }
        CheckType::Tcp | CheckType::Tls => {
            let a = p.required(r.address.as_deref(), check, "address", ", as host:port")?;
            let address = a.parse::<HostPort>().map_err(|why| p.add("address", a, why)).ok()?;
            let tls = tls_files(r, p)?;
            Some(if check == CheckType::Tcp {
                TargetSpec::Tcp(TcpTarget {
                    address,
                    send: r.send.clone(),
                    expect: r.expect.clone(),
                })
            } else {
                TargetSpec::Tls(TlsTarget {
                    address,
                    server_name: r.server_name.clone(),
                    verify_tls: r.verify_tls,
                    warn_days: r.warn_days,
                    tls,
                })
            })
        }
        CheckType::Icmp => {
            if let Some(c) = r.count
                && !(1..=100).contains(&c)
            {
                p.add("count", &c.to_string(), "must be between 1 and 100");
            }
            if let Some(l) = r.max_loss_percent
                && !(0.0..100.0).contains(&l)
            {
                p.add("max_loss_percent", &l.to_string(), "must be at least 0 and below 100");
            }
            let host = p.required(r.host.clone().filter(|h| !h.is_empty()), check, "host", "")?;
            Some(TargetSpec::Icmp(IcmpTarget {
                host,
                count: r.count,
                max_loss_percent: r.max_loss_percent,
            }))
        }
        CheckType::Dns => {
            let resolver = r.resolver.as_deref().map(|text| {
                resolver(text).ok_or_else(|| {
                    p.add("resolver", text, "must be an IP address or ip:port, e.g. 127.0.0.1:53");
                })
            });
            let name = p.required(
                r.name_to_resolve.clone().filter(|n| !n.is_empty()),
                check,
                "name_to_resolve",
                "",
            )?;
            Some(TargetSpec::Dns(DnsTarget {
                name_to_resolve: name,
                record_type: r.record_type,
                resolver: resolver.transpose().ok()?,
                expected_answers: r.expected_answers.clone(),
            }))
        }
        CheckType::Push => {
            let grace = r
                .grace
                .and_then(|g| Grace::new(g).map_err(|why| p.add("grace", &fmt_d(g), why)).ok());
            let token = p.required(r.token.clone(), check, "token", "")?;
            if token.len() < 16
                || !token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                p.add(
                    "token",
                    "***",
                    "must be at least 16 characters of letters, digits, `-` or `_`",
                );
                return None;
            }
            Some(TargetSpec::Push(PushTarget { token, grace }))
        }
    }
}

/// `ca_file`, `client_cert` and `client_key`: a client certificate needs its key.
fn tls_files(r: &RawTarget, p: &mut Problems<'_>) -> Option<TlsFiles> {
    let client = match (&r.client_cert, &r.client_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        (Some(_), None) => {
            p.add("client_key", "", "is required with client_cert");
            return None;
        }
        (None, Some(_)) => {
            p.add("client_cert", "", "is required with client_key");
            return None;
        }
    };
    Some(TlsFiles {
        ca_file: r.ca_file.clone(),
        client,
    })
}

/// `ip` (port 53) or `ip:port`.
fn resolver(text: &str) -> Option<std::net::SocketAddr> {
    text.parse::<std::net::SocketAddr>()
        .ok()
        .or_else(|| text.parse::<std::net::IpAddr>().ok().map(|ip| (ip, 53).into()))
}

impl TryFrom<RawTarget> for TargetConfig {
    type Error = TargetError;

    fn try_from(raw: RawTarget) -> Result<Self, TargetError> {
        raw.parse("target").map_err(TargetError)
    }
}

impl From<TargetConfig> for RawTarget {
    fn from(t: TargetConfig) -> Self {
        let check = t.check();
        let mut r = Self::new(t.id, check);
        r.name = t.name;
        r.interval = t.interval.map(Interval::get);
        r.timeout = t.timeout.map(Timeout::get);
        r.labels = t.labels;
        r.quorum = t.quorum.map(NonZeroU32::get);
        match t.spec {
            TargetSpec::Http(h) => {
                let h = *h;
                r.url = Some(h.url.into());
                r.method = h.method;
                r.headers = h.headers;
                r.body = h.body;
                r.follow_redirects = h.follow_redirects;
                r.verify_tls = h.verify_tls;
                r.reuse_connection = h.reuse_connection;
                r.expected_status = h.expected_status;
                r.conditions = h.conditions;
                r.warn_days = h.warn_days;
                r.set_tls(h.tls);
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
        }
        r
    }
}

/// Why a target was refused: every problem, each naming its key.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetError(pub Vec<Invalid>);

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TargetError {}

/// `collector.targets`: each entry parsed with its own key
/// (`collector.targets[3].url`), every problem of every entry reported.
pub(crate) fn deserialize_targets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Arc<TargetConfig>>, D::Error> {
    let raw = Vec::<RawTarget>::deserialize(d)?;
    let mut out = Vec::with_capacity(raw.len());
    let mut problems = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        match r.parse(&format!("collector.targets[{i}]")) {
            Ok(t) => out.push(Arc::new(t)),
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(serde::de::Error::custom(TargetError(problems)))
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
                    for (name, value) in &mut h.headers {
                        if is_secret_header(name) {
                            "***".clone_into(value);
                        }
                    }
                }
                TargetSpec::Push(p) => "***".clone_into(&mut p.token),
                _ => {}
            }
        }
    }
}

/// Header names whose values are credentials.
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["authorization", "cookie", "token", "secret", "key", "password"]
        .iter()
        .any(|s| n.contains(s))
}

/// Fields each type takes (besides id, name, type, interval, timeout, labels).
fn allowed(check: CheckType) -> &'static [&'static str] {
    match check {
        CheckType::Http => &[
            "url",
            "method",
            "headers",
            "body",
            "follow_redirects",
            "verify_tls",
            "reuse_connection",
            "expected_status",
            "conditions",
            "warn_days",
            "ca_file",
            "client_cert",
            "client_key",
        ],
        CheckType::Tcp => &["address", "send", "expect"],
        CheckType::Tls => &[
            "address",
            "server_name",
            "verify_tls",
            "warn_days",
            "ca_file",
            "client_cert",
            "client_key",
        ],
        CheckType::Icmp => &["host", "count", "max_loss_percent"],
        CheckType::Dns => &["name_to_resolve", "record_type", "resolver", "expected_answers"],
        CheckType::Push => &["token", "grace"],
    }
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

fn check_condition(c: &ConditionConfig) -> Option<String> {
    match c {
        ConditionConfig::ResponseTimeBelow(d) if d.is_zero() => Some("response_time_below must be above 0".into()),
        ConditionConfig::BodyMatches(re) => regex::Regex::new(re)
            .err()
            .map(|e| format!("body_matches is not a regular expression: {e}")),
        ConditionConfig::Json(j) => {
            if let Err(e) = serde_json_path::JsonPath::parse(&j.path) {
                return Some(format!("json.path `{}` is not a JSONPath: {e}", j.path));
            }
            let n = usize::from(j.equals.is_some())
                + usize::from(j.greater_than.is_some())
                + usize::from(j.less_than.is_some())
                + usize::from(j.exists.is_some());
            (n != 1).then(|| "json needs exactly one of equals, greater_than, less_than, exists".into())
        }
        ConditionConfig::Header(h) => {
            if h.name.is_empty() {
                return Some("header.name is required".into());
            }
            (usize::from(h.equals.is_some()) + usize::from(h.contains.is_some()) != 1)
                .then(|| "header needs exactly one of equals, contains".into())
        }
        _ => None,
    }
}

/// The size limits of [`crate::types::limits`], for every text and list of a target.
fn bounds(t: &RawTarget, p: &mut Problems<'_>) {
    use crate::types::limits as l;
    let mut add = |field: &str, value: String, allowed: String| p.add(field, &value, allowed);
    let add = &mut add;
    fn text(add: &mut dyn FnMut(&str, String, String), field: &str, v: Option<&str>, max: usize) {
        if let Some(v) = v
            && v.len() > max
        {
            add(field, v.to_owned(), format!("must be at most {max} bytes"));
        }
    }
    text(add, "name", t.name.as_deref(), l::NAME);
    text(add, "url", t.url.as_deref(), l::URL);
    text(add, "body", t.body.as_deref(), l::BODY);
    text(add, "address", t.address.as_deref(), l::HOST + 6);
    text(add, "send", t.send.as_deref(), l::PAYLOAD);
    text(add, "expect", t.expect.as_deref(), l::PAYLOAD);
    text(add, "server_name", t.server_name.as_deref(), l::HOST);
    text(add, "host", t.host.as_deref(), l::HOST);
    text(add, "name_to_resolve", t.name_to_resolve.as_deref(), l::HOST);
    text(add, "resolver", t.resolver.as_deref(), l::HOST);
    for (field, path) in [
        ("ca_file", &t.ca_file),
        ("client_cert", &t.client_cert),
        ("client_key", &t.client_key),
    ] {
        text(
            add,
            field,
            path.as_deref().map(|p| p.to_string_lossy()).as_deref(),
            l::PATH,
        );
    }
    for (k, v) in &t.labels {
        text(add, "labels", Some(k), l::LABEL_KEY);
        text(
            add,
            &format!("labels.{}", crate::types::quote(k)),
            Some(v),
            l::LABEL_VALUE,
        );
    }
    for (k, v) in &t.headers {
        text(add, "headers", Some(k), l::HEADER_NAME);
        if v.len() > l::HEADER_VALUE {
            // A header may carry a credential: never quoted.
            add(
                &format!("headers.{}", crate::types::quote(k)),
                "***".into(),
                format!("must be at most {} bytes", l::HEADER_VALUE),
            );
        }
    }
    for a in &t.expected_answers {
        text(add, "expected_answers", Some(a), l::HOST);
    }
    for (i, c) in t.conditions.iter().enumerate() {
        let field = format!("conditions[{i}]");
        match c {
            ConditionConfig::BodyContains(v) | ConditionConfig::BodyMatches(v) => {
                text(add, &field, Some(v), l::PAYLOAD);
            }
            ConditionConfig::Json(j) => {
                text(add, &format!("{field}.json.path"), Some(&j.path), l::PAYLOAD);
                text(add, &format!("{field}.json.equals"), j.equals.as_deref(), l::PAYLOAD);
            }
            ConditionConfig::Header(h) => {
                text(add, &format!("{field}.header.name"), Some(&h.name), l::HEADER_NAME);
                text(add, &format!("{field}.header.equals"), h.equals.as_deref(), l::PAYLOAD);
                text(
                    add,
                    &format!("{field}.header.contains"),
                    h.contains.as_deref(),
                    l::PAYLOAD,
                );
            }
            ConditionConfig::ResponseTimeBelow(_) => {}
        }
    }
    if let Some(tok) = &t.token
        && tok.len() > l::TOKEN
    {
        add("token", "***".into(), format!("must be at most {} bytes", l::TOKEN));
    }
    for (field, n) in [
        ("labels", t.labels.len()),
        ("headers", t.headers.len()),
        ("conditions", t.conditions.len()),
        ("expected_status", t.expected_status.len()),
        ("expected_answers", t.expected_answers.len()),
    ] {
        if n > l::ENTRIES {
            add(
                field,
                format!("{n} entries"),
                format!("must have at most {} entries", l::ENTRIES),
            );
        }
    }
}
