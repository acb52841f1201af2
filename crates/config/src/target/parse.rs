//! The one parser from [`RawTarget`] to [`TargetConfig`]: every field of
//! its type typed and bounded, every problem keyed and said.

use std::num::NonZeroU32;
use std::sync::Arc;

use super::{
    CheckType, ConditionConfig, DnsTarget, Grace, HostPort, HttpMore, HttpTarget, HttpUrl, IcmpTarget, Interval,
    PushTarget, RawTarget, TargetConfig, TargetMore, TargetSpec, TcpTarget, Timeout, TlsFiles, TlsTarget,
};
use crate::Invalid;
use crate::duration::format as fmt_d;

impl RawTarget {
    /// Parses the target, or says every problem, each keyed under `prefix`
    /// (e.g. `collector.targets[3]`, or `target` for the APIs).
    pub fn parse(self, prefix: &str) -> Result<TargetConfig, Vec<Invalid>> {
        let mut problems = Problems {
            prefix,
            out: Vec::new(),
        };
        let p = &mut problems;
        if !crate::validate::is_subject_token(&self.id) {
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
            Some(q) if q > crate::types::limits::QUORUM => {
                p.add(
                    "quorum",
                    &q.to_string(),
                    format!(
                        "must be at most {} (locations that must agree)",
                        crate::types::limits::QUORUM
                    ),
                );
                None
            }
            q => q.and_then(NonZeroU32::new),
        };
        let depends_on = super::depends::parse(&self.id, &self.depends_on, |field, value, why| {
            p.add(&field, value, why);
        });
        let spec = spec(self.check, &self, p);
        match spec {
            Some(spec) if problems.out.is_empty() => Ok(TargetConfig {
                interval,
                timeout,
                labels: self.labels.into(),
                ..TargetConfig::new(self.id, spec)
            }
            .with_more(TargetMore {
                name: self.name,
                quorum,
                depends_on,
            })),
            _ => Err(problems.out),
        }
    }
}

/// Problems of one target, keyed under its prefix.
pub(super) struct Problems<'a> {
    prefix: &'a str,
    out: Vec<Invalid>,
}

impl Problems<'_> {
    pub(super) fn add(&mut self, field: &str, value: &str, allowed: impl Into<String>) {
        self.out.push(Invalid {
            key: format!("{}.{field}", self.prefix),
            value: crate::types::quote(value).into_owned(),
            allowed: allowed.into(),
        });
    }

    /// How many problems so far.
    pub(super) fn len(&self) -> usize {
        self.out.len()
    }

    pub(super) fn required<T>(&mut self, v: Option<T>, check: CheckType, field: &str, what: &str) -> Option<T> {
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
            let more = HttpMore {
                method: r.method.clone(),
                headers: r.headers.clone(),
                body: r.body.clone(),
                conditions: r.conditions.clone(),
                tls: tls_files(r, p)?,
                options: super::http_options::parse(r, p)?,
            };
            Some(TargetSpec::Http(Box::new(
                HttpTarget {
                    follow_redirects: r.follow_redirects,
                    verify_tls: r.verify_tls,
                    reuse_connection: r.reuse_connection,
                    expected_status: r.expected_status.as_slice().into(),
                    warn_days: r.warn_days,
                    ..HttpTarget::new(url?)
                }
                .with_more(more),
            )))
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
                TargetSpec::Tls(Box::new(TlsTarget {
                    address,
                    server_name: r.server_name.clone(),
                    verify_tls: r.verify_tls,
                    warn_days: r.warn_days,
                    tls,
                }))
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
            Some(TargetSpec::Dns(Box::new(DnsTarget {
                name_to_resolve: name,
                record_type: r.record_type,
                resolver: resolver.transpose().ok()?,
                expected_answers: r.expected_answers.clone(),
            })))
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
        CheckType::Grpc => super::grpc::parse(r, p),
        CheckType::Redis => super::redis::parse(r, p),
        CheckType::Postgres | CheckType::Mysql => super::sql::parse(check, r, p),
        CheckType::Udp => super::udp::parse_udp(r, p),
        CheckType::Ssh => super::ssh::parse(r, p),
        CheckType::HttpSteps => super::steps::parse(r, p),
        CheckType::Websocket => super::websocket::parse(r, p),
        CheckType::Mqtt => super::mqtt::parse(r, p),
        CheckType::Mail => super::mail::parse(r, p),
        CheckType::KafkaProducer | CheckType::KafkaConsumer => {
            let raw = p.required(r.kafka.as_ref(), check, "kafka", ": bootstrap_servers, topic, …")?;
            let k = Box::new(raw.parse(check, &mut |field, value, why| p.add(field, value, why))?);
            Some(if check == CheckType::KafkaProducer {
                TargetSpec::KafkaProducer(k)
            } else {
                TargetSpec::KafkaConsumer(k)
            })
        }
    }
}

/// `ca_file`, `client_cert` and `client_key`: a client certificate needs its key.
pub(super) fn tls_files(r: &RawTarget, p: &mut Problems<'_>) -> Option<TlsFiles> {
    let client = match (&r.client_cert, &r.client_key) {
        (Some(c), Some(k)) => Some(Box::new((c.clone(), k.clone()))),
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
pub(super) fn resolver(text: &str) -> Option<std::net::SocketAddr> {
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
///
/// Each raw target is parsed as soon as it is read and dropped: a list of
/// every raw target first (about 2 KiB each) was a third of the memory a
/// configuration of many targets took to load, and the parsed targets took
/// the slots it left.
pub(crate) fn deserialize_targets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Arc<TargetConfig>>, D::Error> {
    struct Targets;
    impl<'de> serde::de::Visitor<'de> for Targets {
        type Value = Vec<Arc<TargetConfig>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of targets")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            // A hint is only a hint: never reserve more than a few MiB on it.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            let mut problems = Vec::new();
            let mut i = 0usize;
            while let Some(r) = seq.next_element::<RawTarget>()? {
                match r.parse(&format!("collector.targets[{i}]")) {
                    Ok(t) => out.push(Arc::new(t)),
                    Err(p) => problems.extend(p),
                }
                i += 1;
            }
            if problems.is_empty() {
                Ok(out)
            } else {
                Err(serde::de::Error::custom(TargetError(problems)))
            }
        }
    }
    // Any, so a list of the wrong kind is refused by the visitor, which
    // says what it expected (a YAML deserializer's own `deserialize_seq` may not).
    d.deserialize_any(Targets)
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
            "proxy",
            "resolve",
            "dns_server",
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
        CheckType::Grpc => super::grpc::FIELDS,
        CheckType::Redis => super::redis::FIELDS,
        CheckType::Postgres | CheckType::Mysql => super::sql::FIELDS,
        CheckType::Udp => super::udp::UDP_FIELDS,
        CheckType::Ssh => super::ssh::FIELDS,
        CheckType::HttpSteps => super::steps::FIELDS,
        CheckType::KafkaProducer | CheckType::KafkaConsumer => &["kafka"],
        CheckType::Websocket => super::websocket::FIELDS,
        CheckType::Mqtt => super::mqtt::FIELDS,
        CheckType::Mail => super::mail::FIELDS,
    }
}

pub(super) fn check_condition(c: &ConditionConfig) -> Option<String> {
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
