//! What the collector watches: one [`TargetConfig`] per target, from the
//! YAML file or from `CollectorService.UpsertTarget`, and its validation
//! (shared by both, so a target is judged the same way wherever it comes from).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::{self, format as fmt_d};
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

/// One thing the collector watches. Which fields apply depends on `type`;
/// a field of another type is an error, not silently ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
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

impl TargetConfig {
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
}

impl super::CollectorConfig {
    /// Replaces the targets' credentials (push tokens, URL passwords,
    /// credential headers) by `***`.
    pub fn mask(&mut self) {
        self.mask_routers();
        for t in &mut self.targets {
            let t = std::sync::Arc::make_mut(t);
            t.url = t.url.as_deref().map(super::mask_url_password);
            if t.token.is_some() {
                t.token = Some("***".to_owned());
            }
            for (name, value) in &mut t.headers {
                if is_secret_header(name) {
                    "***".clone_into(value);
                }
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
        ],
        CheckType::Tcp => &["address", "send", "expect"],
        CheckType::Tls => &["address", "server_name", "verify_tls", "warn_days"],
        CheckType::Icmp => &["host", "count", "max_loss_percent"],
        CheckType::Dns => &["name_to_resolve", "record_type", "resolver", "expected_answers"],
        CheckType::Push => &["token", "grace"],
    }
}

/// Shortest interval a target may have.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest interval (and push grace) a target or router may have: 30 days.
/// The scheduler's timer wheel cannot hold a delay past about 795 days;
/// before this bound, `interval: 3000d` passed validation and stopped every
/// check.
pub const MAX_INTERVAL: Duration = Duration::from_secs(30 * 86_400);
/// Shortest timeout a target may have.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(10);

/// Every problem of one target; keys start with `prefix` (e.g.
/// `collector.targets[3]`). `default_interval`/`default_timeout` are the
/// collector's, for targets that do not set their own.
pub fn validate_target(
    t: &TargetConfig,
    prefix: &str,
    default_interval: Duration,
    default_timeout: Duration,
) -> Vec<Invalid> {
    let mut out = Vec::new();
    let mut add = |field: &str, value: String, allowed: String| {
        out.push(Invalid {
            key: format!("{prefix}.{field}"),
            value,
            allowed,
        });
    };
    if !super::validate::is_subject_token(&t.id) {
        add(
            "id",
            t.id.clone(),
            "must be 1–128 characters of letters, digits, `-` or `_`".into(),
        );
    }
    bounds(t, &mut add);
    let own = allowed(t.check);
    for field in t.set_fields() {
        if !own.contains(&field) {
            add(
                field,
                String::new(),
                format!(
                    "does not apply to a {} target (it takes: {})",
                    t.check.as_str(),
                    own.join(", ")
                ),
            );
        }
    }
    let required = |v: bool, field: &'static str, what: &str, add: &mut dyn FnMut(&str, String, String)| {
        if !v {
            add(
                field,
                String::new(),
                format!("is required for a {} target{what}", t.check.as_str()),
            );
        }
    };
    match t.check {
        CheckType::Http => {
            required(t.url.is_some(), "url", "", &mut add);
            if let Some(u) = &t.url
                && let Err(why) = check_http_url(u)
            {
                add("url", u.clone(), why.into());
            }
            if let Some(m) = &t.method
                && (m.is_empty() || m.len() > 16 || !m.bytes().all(|b| b.is_ascii_uppercase()))
            {
                add(
                    "method",
                    m.clone(),
                    "must be an HTTP method in capitals, e.g. GET, HEAD, POST".into(),
                );
            }
            for s in &t.expected_status {
                if !(100..=599).contains(s) {
                    add(
                        "expected_status",
                        s.to_string(),
                        "must hold HTTP status codes between 100 and 599".into(),
                    );
                }
            }
            for (i, c) in t.conditions.iter().enumerate() {
                if let Some(why) = check_condition(c) {
                    add(&format!("conditions[{i}]"), format!("{c:?}"), why);
                }
            }
        }
        CheckType::Tcp | CheckType::Tls => {
            required(t.address.is_some(), "address", ", as host:port", &mut add);
            if let Some(a) = &t.address
                && let Err(why) = check_host_port(a)
            {
                add("address", a.clone(), why.into());
            }
        }
        CheckType::Icmp => {
            required(t.host.as_ref().is_some_and(|h| !h.is_empty()), "host", "", &mut add);
            if let Some(c) = t.count
                && !(1..=100).contains(&c)
            {
                add("count", c.to_string(), "must be between 1 and 100".into());
            }
            if let Some(l) = t.max_loss_percent
                && !(0.0..100.0).contains(&l)
            {
                add(
                    "max_loss_percent",
                    l.to_string(),
                    "must be at least 0 and below 100".into(),
                );
            }
        }
        CheckType::Dns => {
            required(
                t.name_to_resolve.as_ref().is_some_and(|n| !n.is_empty()),
                "name_to_resolve",
                "",
                &mut add,
            );
            if let Some(r) = &t.resolver
                && r.parse::<std::net::IpAddr>().is_err()
                && r.parse::<std::net::SocketAddr>().is_err()
            {
                add(
                    "resolver",
                    r.clone(),
                    "must be an IP address or ip:port, e.g. 127.0.0.1:53".into(),
                );
            }
        }
        CheckType::Push => match &t.token {
            None => add("token", String::new(), "is required for a push target".into()),
            Some(tok)
                if tok.len() < 16 || !tok.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                add(
                    "token",
                    "***".into(),
                    "must be at least 16 characters of letters, digits, `-` or `_`".into(),
                );
            }
            Some(_) => {}
        },
    }
    let interval = t.interval.unwrap_or(default_interval);
    let timeout = t.timeout.unwrap_or(default_timeout);
    if let Some(iv) = t.interval
        && !(MIN_INTERVAL..=MAX_INTERVAL).contains(&iv)
    {
        add(
            "interval",
            fmt_d(iv),
            format!("must be between {} and {}", fmt_d(MIN_INTERVAL), fmt_d(MAX_INTERVAL)),
        );
    }
    if let Some(g) = t.grace
        && g > MAX_INTERVAL
    {
        add("grace", fmt_d(g), format!("must be at most {}", fmt_d(MAX_INTERVAL)));
    }
    if let Some(to) = t.timeout
        && to < MIN_TIMEOUT
    {
        add("timeout", fmt_d(to), format!("must be at least {}", fmt_d(MIN_TIMEOUT)));
    }
    if timeout > interval && t.check != CheckType::Push {
        add(
            "timeout",
            fmt_d(timeout),
            format!("must not exceed the target's interval ({})", fmt_d(interval)),
        );
    }
    if t.quorum == Some(0) {
        add(
            "quorum",
            "0".into(),
            "must be at least 1 (locations that must agree)".into(),
        );
    }
    out
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

fn check_http_url(u: &str) -> Result<(), &'static str> {
    crate::types::check_http_url(u).map(drop)
}

fn check_host_port(a: &str) -> Result<(), &'static str> {
    let (host, port) = a.rsplit_once(':').ok_or("must be host:port, e.g. 127.0.0.1:22")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("must be host:port with a host");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err("must be host:port with a port between 1 and 65535"),
    }
}

/// The size limits of [`crate::types::limits`], for every text and list of a target.
fn bounds(t: &TargetConfig, add: &mut dyn FnMut(&str, String, String)) {
    use crate::types::limits as l;
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
