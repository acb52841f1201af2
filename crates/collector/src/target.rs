//! A target as the collector runs it: a validated [`TargetConfig`] compiled
//! into what the checks need, and its protobuf form.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use pantau_config::{CheckType, CollectorConfig, Invalid, RecordType, TargetConfig, validate_target};
use pantau_core::time::to_duration;
use pantau_proto::v1::{self, TargetSource};

use crate::checks::conditions::Condition;
use crate::checks::{dns, tcp};

/// HTTP request and what its answer must be.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    pub url: reqwest::Url,
    pub method: reqwest::Method,
    pub headers: reqwest::header::HeaderMap,
    pub body: Option<String>,
    pub follow_redirects: bool,
    pub verify_tls: bool,
    /// Keep-alive between checks; `false` opens a new connection each time.
    pub reuse_connection: bool,
    /// Accepted status codes; empty means 200–399.
    pub expected_status: Vec<u16>,
    pub conditions: Vec<Condition>,
    pub warn_days: u32,
}

/// What a check does, by type.
#[derive(Debug, Clone)]
pub enum Spec {
    Http(Box<HttpSpec>),
    Tcp {
        address: String,
        send: Option<Vec<u8>>,
        expect: Option<Vec<u8>>,
    },
    Tls {
        address: String,
        server_name: String,
        verify: bool,
        warn_days: u32,
    },
    Icmp {
        host: String,
        count: u16,
        max_loss_percent: f64,
    },
    Dns {
        name: String,
        record_type: RecordType,
        resolver: Option<SocketAddr>,
        expected: Vec<String>,
    },
    Push {
        token: String,
        grace: Duration,
    },
}

/// One target to check.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: String,
    pub name: String,
    pub spec: Spec,
    pub interval: Duration,
    pub timeout: Duration,
    pub labels: BTreeMap<String, String>,
    pub source: TargetSource,
    /// What it was built from, for persistence and the API (shared with the
    /// configuration, not copied).
    pub config: std::sync::Arc<TargetConfig>,
}

/// Default certificate warning, in days.
pub const WARN_DAYS: u32 = 14;

impl Target {
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
        let spec = match t.check {
            CheckType::Http => {
                let raw = t.url.as_deref().unwrap_or_default();
                let url = reqwest::Url::parse(raw).map_err(|e| bad("url", raw, e.to_string()))?;
                let method_text = t.method.as_deref().unwrap_or("GET");
                let method = reqwest::Method::from_bytes(method_text.as_bytes())
                    .map_err(|e| bad("method", method_text, e.to_string()))?;
                let mut headers = reqwest::header::HeaderMap::new();
                for (k, v) in &t.headers {
                    let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                        .map_err(|e| bad("headers", k, format!("is not a header name: {e}")))?;
                    let value = reqwest::header::HeaderValue::from_str(v)
                        .map_err(|e| bad(&format!("headers.{k}"), "***", format!("is not a header value: {e}")))?;
                    headers.insert(name, value);
                }
                let conditions = t
                    .conditions
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        Condition::compile(c).map_err(|e| bad(&format!("conditions[{i}]"), &format!("{c:?}"), e))
                    })
                    .collect::<Result<_, _>>()?;
                Spec::Http(Box::new(HttpSpec {
                    url,
                    method,
                    headers,
                    body: t.body.clone(),
                    follow_redirects: t.follow_redirects.unwrap_or(true),
                    verify_tls: t.verify_tls.unwrap_or(true),
                    reuse_connection: t.reuse_connection.unwrap_or(true),
                    expected_status: t.expected_status.clone(),
                    conditions,
                    warn_days: t.warn_days.unwrap_or(WARN_DAYS),
                }))
            }
            CheckType::Tcp => Spec::Tcp {
                address: t.address.clone().unwrap_or_default(),
                send: t.send.as_deref().map(tcp::unescape),
                expect: t.expect.as_deref().map(tcp::unescape),
            },
            CheckType::Tls => {
                let address = t.address.clone().unwrap_or_default();
                let host = address.rsplit_once(':').map_or(address.as_str(), |(h, _)| h);
                Spec::Tls {
                    server_name: t
                        .server_name
                        .clone()
                        .unwrap_or_else(|| host.trim_matches(['[', ']']).to_owned()),
                    address,
                    verify: t.verify_tls.unwrap_or(true),
                    warn_days: t.warn_days.unwrap_or(WARN_DAYS),
                }
            }
            CheckType::Icmp => Spec::Icmp {
                host: t.host.clone().unwrap_or_default(),
                count: t.count.unwrap_or(3),
                max_loss_percent: t.max_loss_percent.unwrap_or(0.0),
            },
            CheckType::Dns => Spec::Dns {
                name: t.name_to_resolve.clone().unwrap_or_default(),
                record_type: t.record_type.unwrap_or_default(),
                resolver: match t.resolver.as_deref() {
                    None => None,
                    Some(r) => {
                        Some(dns::resolver_addr(r).ok_or_else(|| bad("resolver", r, "must be ip or ip:port".into()))?)
                    }
                },
                expected: t.expected_answers.clone(),
            },
            CheckType::Push => Spec::Push {
                token: t.token.clone().unwrap_or_default(),
                grace: t.grace.unwrap_or_default(),
            },
        };
        Ok(Self {
            id: t.id.clone(),
            name: t.name.clone().unwrap_or_else(|| t.id.clone()),
            spec,
            interval: t.interval.unwrap_or(cfg.interval),
            timeout: t.timeout.unwrap_or(cfg.timeout),
            labels: t.labels.clone(),
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
        self.config.check
    }

    pub fn kind(&self) -> v1::CheckKind {
        kind_of(self.config.check)
    }

    /// `http`, `tcp`, …, for metric labels and logs.
    pub fn kind_label(&self) -> &'static str {
        self.config.check.as_str()
    }

    /// The URL, `host:port`, host or name checked; never a secret.
    pub fn address(&self) -> String {
        match &self.spec {
            Spec::Http(h) => pantau_config::mask_url_password(h.url.as_str()),
            Spec::Tcp { address, .. } | Spec::Tls { address, .. } => address.clone(),
            Spec::Icmp { host, .. } => host.clone(),
            Spec::Dns { name, .. } => name.clone(),
            Spec::Push { .. } => "push".to_owned(),
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
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind().into(),
            address: self.address(),
            interval: Some(to_duration(self.interval)),
            timeout: Some(to_duration(self.timeout)),
            labels: self.labels.clone().into_iter().collect(),
            source: self.source.into(),
            breaker: breaker.into(),
            spec: Some(spec),
        }
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
    }
}

/// A duration field of a proto target, `None` when unset or negative.
pub use pantau_config::proto::opt_duration;
