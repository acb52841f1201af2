//! `redis`: connect, authenticate (optional), then `PING` or a command of
//! the operator's, and compare the reply.

use super::parse::Problems;
use super::{CheckType, HostPort, RawTarget, TargetSpec};

/// Longest user name or password.
pub const MAX_CREDENTIAL: usize = 512;
/// Longest command (or SQL query) a probe sends.
pub const MAX_QUERY: usize = 4096;
/// Most words a Redis command may have.
pub const MAX_WORDS: usize = 32;

/// A Redis check. Its `Debug` masks the password.
#[derive(Clone, PartialEq)]
pub struct RedisTarget {
    pub address: HostPort,
    /// An ACL user (Redis 6+); the default user when unset.
    pub username: Option<String>,
    /// Secret: masked in every answer and log.
    pub password: Option<String>,
    /// The command, split into words (`GET health`); `PING` when empty.
    pub command: Vec<String>,
    /// The reply, as text, must equal this; `PONG` for `PING` when unset.
    pub expected_reply: Option<String>,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("command", &self.command)
            .field("expected_reply", &self.expected_reply)
            .finish()
    }
}

/// Fields a `redis` target takes.
pub(super) const FIELDS: &[&str] = &["address", "username", "password", "query", "expected_reply"];

/// `username`, `password`, `query` and `expected_reply` sizes, shared by the
/// database probes.
pub(super) fn credentials(r: &RawTarget, p: &mut Problems<'_>) {
    if let Some(u) = &r.username
        && (u.is_empty() || u.len() > MAX_CREDENTIAL || u.chars().any(char::is_control))
    {
        p.add(
            "username",
            u,
            format!("must be 1–{MAX_CREDENTIAL} bytes without control characters"),
        );
    }
    if let Some(pw) = &r.password
        && pw.len() > MAX_CREDENTIAL
    {
        // A password is never quoted.
        p.add("password", "***", format!("must be at most {MAX_CREDENTIAL} bytes"));
    }
    if let Some(q) = &r.query
        && q.len() > MAX_QUERY
    {
        p.add("query", q, format!("must be at most {MAX_QUERY} bytes"));
    }
    if let Some(e) = &r.expected_reply
        && e.len() > MAX_QUERY
    {
        p.add("expected_reply", e, format!("must be at most {MAX_QUERY} bytes"));
    }
}

/// The typed spec of a `redis` target, or `None` with the problems added.
pub(super) fn parse(r: &RawTarget, p: &mut Problems<'_>) -> Option<TargetSpec> {
    credentials(r, p);
    let command: Vec<String> = r
        .query
        .as_deref()
        .unwrap_or_default()
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect();
    if r.query.is_some() && command.is_empty() {
        p.add(
            "query",
            "",
            "must name a command, e.g. `GET health`, or be left out for PING",
        );
    } else if command.len() > MAX_WORDS {
        p.add(
            "query",
            &format!("{} words", command.len()),
            format!("must have at most {MAX_WORDS} words"),
        );
    } else if let Some(first) = command.first()
        && !first.bytes().all(|b| b.is_ascii_alphabetic() || b == b'.' || b == b'_')
    {
        p.add("query", first, "must start with a command name, e.g. GET, PING, INFO");
    }
    let a = p.required(r.address.as_deref(), CheckType::Redis, "address", ", as host:port")?;
    let address = a.parse::<HostPort>().map_err(|why| p.add("address", a, why)).ok()?;
    Some(TargetSpec::Redis(Box::new(RedisTarget {
        address,
        username: r.username.clone(),
        password: r.password.clone(),
        command,
        expected_reply: r.expected_reply.clone(),
    })))
}

/// Sets the raw fields of `x`.
pub(super) fn to_raw(x: RedisTarget, r: &mut RawTarget) {
    r.address = Some(x.address.to_string());
    r.username = x.username;
    r.password = x.password;
    r.query = (!x.command.is_empty()).then(|| x.command.join(" "));
    r.expected_reply = x.expected_reply;
}

#[cfg(test)]
mod tests {
    use super::super::refused;
    use crate::{CheckType, CollectorConfig, RawTarget, TargetSpec};

    fn redis() -> RawTarget {
        let mut r = RawTarget::new("r", CheckType::Redis);
        r.address = Some("127.0.0.1:6379".into());
        r
    }

    #[test]
    fn a_redis_target_parses_round_trips_and_masks_its_password() {
        let mut r = redis();
        r.password = Some("s3cret".into());
        r.query = Some("  GET   health ".into());
        r.expected_reply = Some("ok".into());
        let t = r.clone().parse("t").unwrap();
        let TargetSpec::Redis(x) = &t.spec else { panic!("{t:?}") };
        assert_eq!(x.command, ["GET", "health"]);
        let back = RawTarget::from(t.clone());
        assert_eq!(back.query.as_deref(), Some("GET health"));
        let mut c = CollectorConfig {
            targets: vec![t.into()],
            ..CollectorConfig::default()
        };
        c.mask();
        let TargetSpec::Redis(x) = &c.targets[0].spec else {
            panic!()
        };
        assert_eq!(x.password.as_deref(), Some("***"));
        let shown = format!("{:?}", r.parse("t").unwrap());
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn a_bad_redis_target_is_refused_naming_the_field() {
        for (edit, key) in [
            (
                Box::new(|r: &mut RawTarget| r.address = None) as Box<dyn Fn(&mut RawTarget)>,
                "t.address",
            ),
            (
                Box::new(|r: &mut RawTarget| r.address = Some("[::1".into())),
                "t.address",
            ),
            (Box::new(|r: &mut RawTarget| r.query = Some("   ".into())), "t.query"),
            (Box::new(|r: &mut RawTarget| r.query = Some("x ".repeat(40))), "t.query"),
            (
                Box::new(|r: &mut RawTarget| r.query = Some("G\u{0}ET k".into())),
                "t.query",
            ),
            (
                Box::new(|r: &mut RawTarget| r.query = Some("GET ".to_owned() + &"k".repeat(5000))),
                "t.query",
            ),
            (
                Box::new(|r: &mut RawTarget| r.username = Some(String::new())),
                "t.username",
            ),
            (
                Box::new(|r: &mut RawTarget| r.password = Some("p".repeat(600))),
                "t.password",
            ),
            (
                Box::new(|r: &mut RawTarget| r.expected_reply = Some("e".repeat(5000))),
                "t.expected_reply",
            ),
            (Box::new(|r: &mut RawTarget| r.service = Some("s".into())), "t.service"),
        ] {
            let mut r = redis();
            edit(&mut r);
            let e = refused(r);
            assert!(e.contains(key), "{key}: {e}");
            assert!(!e.contains(&"p".repeat(600)), "a password is never quoted: {e}");
        }
    }
}
