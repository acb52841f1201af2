//! Redis: resolve, connect and authenticate with the `redis` crate, then
//! `PING` (expecting `PONG`) or the operator's command, whose reply must
//! equal `expected_reply` when one is set.

use std::collections::HashMap;

use pantau_proto::v1::{FailureReason, ProbeDetail, check_result::Detail};
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Value};
use tokio::time::Instant;

use super::Outcome;

/// A compiled `redis` target.
#[derive(Clone)]
pub struct RedisSpec {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Never empty: `PING` when the target gave none.
    pub command: Vec<String>,
    pub expected: Option<String>,
}

impl std::fmt::Debug for RedisSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSpec")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("command", &self.command.first())
            .finish_non_exhaustive()
    }
}

impl RedisSpec {
    pub fn new(x: &pantau_config::RedisTarget) -> Self {
        let (command, expected) = if x.command.is_empty() {
            (
                vec!["PING".to_owned()],
                Some(x.expected_reply.clone().unwrap_or_else(|| "PONG".to_owned())),
            )
        } else {
            (x.command.clone(), x.expected_reply.clone())
        };
        Self {
            host: x.address.host().to_owned(),
            port: x.address.port(),
            username: x.username.clone(),
            password: x.password.clone(),
            command,
            expected,
        }
    }

    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Longest part of a reply shown in a message or the metadata.
const MAX_SHOWN: usize = 100;

fn shown(text: &str) -> String {
    let cut: String = text.chars().take(MAX_SHOWN).collect();
    let cut: String = cut.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if cut.len() < text.len() {
        format!("{cut}… ({} bytes)", text.len())
    } else {
        cut
    }
}

/// A reply as text: a status or string as it is, a number in decimal,
/// nil as `(nil)`, anything else (arrays, maps) as its debug form.
fn reply_text(v: &Value) -> String {
    match v {
        Value::Nil => "(nil)".to_owned(),
        Value::Int(i) => i.to_string(),
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".to_owned(),
        Value::Double(d) => d.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::VerbatimString { text, .. } => text.clone(),
        other => format!("{other:?}"),
    }
}

/// Runs the check of `spec`; the caller bounds the time.
pub async fn check(spec: &RedisSpec, started: Instant) -> Outcome {
    let address = spec.address();
    let (ip, peer) = match super::resolve(&spec.host, spec.port, started).await {
        Ok(a) => (a.ip(), a.to_string()),
        Err(down) => return down,
    };
    let mut settings = RedisConnectionInfo::default().set_skip_set_lib_name();
    if let Some(u) = &spec.username {
        settings = settings.set_username(u);
    }
    if let Some(p) = &spec.password {
        settings = settings.set_password(p);
    }
    let client = ConnectionAddr::Tcp(ip.to_string(), spec.port)
        .into_connection_info()
        .map(|i| i.set_redis_settings(settings))
        .and_then(redis::Client::open);
    let client = match client {
        Ok(c) => c,
        Err(e) => return down(started, &address, &e),
    };
    let mut con = match client.get_multiplexed_async_connection().await {
        Ok(c) => c,
        Err(e) => return down(started, &address, &e),
    };
    let mut cmd = redis::cmd(&spec.command[0]);
    for arg in &spec.command[1..] {
        cmd.arg(arg);
    }
    let reply: Value = match cmd.query_async(&mut con).await {
        Ok(v) => v,
        Err(e) => return down(started, &address, &e),
    };
    let latency = started.elapsed();
    let text = reply_text(&reply);
    let detail = Detail::Probe(ProbeDetail {
        peer,
        metadata: HashMap::from([
            ("command".to_owned(), spec.command[0].to_ascii_uppercase()),
            ("reply".to_owned(), shown(&text)),
        ]),
        certificate: None,
    });
    match &spec.expected {
        Some(want) if *want != text => Outcome::down(
            latency,
            FailureReason::Assertion,
            format!(
                "{address} answered {} with {:?}, not the expected {:?}",
                spec.command[0].to_ascii_uppercase(),
                shown(&text),
                shown(want)
            ),
        )
        .with_detail(detail),
        _ => Outcome::up(latency, Some(detail)),
    }
}

/// The down outcome of a client or server error, with its typed reason.
fn down(started: Instant, address: &str, e: &redis::RedisError) -> Outcome {
    let code = e.code().unwrap_or_default();
    let (reason, what) =
        if e.kind() == redis::ErrorKind::AuthenticationFailed || matches!(code, "WRONGPASS" | "NOAUTH" | "NOPERM") {
            (FailureReason::Auth, "refused the credentials")
        } else if e.is_connection_refusal() {
            (FailureReason::Refused, "refused the connection")
        } else if e.is_timeout() {
            (FailureReason::Timeout, "did not answer in time")
        } else if e.is_io_error() {
            (FailureReason::Connect, "could not be reached")
        } else {
            (FailureReason::Protocol, "answered with an error")
        };
    Outcome::down(
        started.elapsed(),
        reason,
        format!("{address} {what}: {}", shown(&e.to_string())),
    )
}
