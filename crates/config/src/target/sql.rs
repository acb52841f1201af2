//! `postgres` and `mysql` (MariaDB too): connect, authenticate, run one
//! query and optionally compare the first column of its first row.

use super::parse::Problems;
use super::redis::credentials;
use super::{CheckType, HostPort, RawTarget, TargetSpec};

/// Longest database name (PostgreSQL's own limit is 63, MySQL's 64).
pub const MAX_DATABASE: usize = 64;
/// The query run when a target gives none.
pub const DEFAULT_QUERY: &str = "SELECT 1";

/// A PostgreSQL or MySQL check. Its `Debug` masks the password.
#[derive(Clone, PartialEq)]
pub struct SqlTarget {
    pub address: HostPort,
    /// Required: the role or user to log in as.
    pub username: String,
    /// Secret: masked in every answer and log.
    pub password: Option<String>,
    /// The server's default for the user when unset.
    pub database: Option<String>,
    /// `SELECT 1` when unset; run as a simple (text) query.
    pub query: Option<String>,
    /// The first column of the first row, as text, must equal this (`NULL`
    /// for a null, the empty text for no row).
    pub expected_reply: Option<String>,
}

impl std::fmt::Debug for SqlTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlTarget")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("query", &self.query)
            .field("expected_reply", &self.expected_reply)
            .finish()
    }
}

/// Fields a `postgres` or `mysql` target takes.
pub(super) const FIELDS: &[&str] = &["address", "username", "password", "database", "query", "expected_reply"];

/// The typed spec of a `postgres` or `mysql` target, or `None` with the
/// problems added.
pub(super) fn parse(check: CheckType, r: &RawTarget, p: &mut Problems<'_>) -> Option<TargetSpec> {
    credentials(r, p);
    if let Some(q) = &r.query
        && (q.trim().is_empty() || q.contains('\0'))
    {
        p.add("query", q, "must be an SQL query, e.g. SELECT 1");
    }
    if let Some(d) = &r.database
        && (d.is_empty() || d.len() > MAX_DATABASE || d.chars().any(char::is_control))
    {
        p.add(
            "database",
            d,
            format!("must be 1–{MAX_DATABASE} bytes without control characters"),
        );
    }
    let username = p.required(r.username.clone(), check, "username", "");
    let a = p.required(r.address.as_deref(), check, "address", ", as host:port")?;
    let address = a.parse::<HostPort>().map_err(|why| p.add("address", a, why)).ok()?;
    let t = SqlTarget {
        address,
        username: username?,
        password: r.password.clone(),
        database: r.database.clone(),
        query: r.query.clone(),
        expected_reply: r.expected_reply.clone(),
    };
    Some(if check == CheckType::Postgres {
        TargetSpec::Postgres(Box::new(t))
    } else {
        TargetSpec::Mysql(Box::new(t))
    })
}

/// Sets the raw fields of `x`.
pub(super) fn to_raw(x: SqlTarget, r: &mut RawTarget) {
    r.address = Some(x.address.to_string());
    r.username = Some(x.username);
    r.password = x.password;
    r.database = x.database;
    r.query = x.query;
    r.expected_reply = x.expected_reply;
}

#[cfg(test)]
mod tests {
    use crate::{CheckType, CollectorConfig, RawTarget, TargetSpec};

    fn sql(check: CheckType) -> RawTarget {
        let mut r = RawTarget::new("db", check);
        r.address = Some("127.0.0.1:5432".into());
        r.username = Some("pantau".into());
        r
    }

    #[test]
    fn sql_targets_parse_round_trip_and_mask_the_password() {
        for check in [CheckType::Postgres, CheckType::Mysql] {
            let mut r = sql(check);
            r.password = Some("s3cret".into());
            r.database = Some("app".into());
            r.query = Some("SELECT count(*) FROM pg_stat_activity".into());
            r.expected_reply = Some("1".into());
            let t = r.clone().parse("t").unwrap();
            assert_eq!(RawTarget::from(t.clone()), r);
            let mut c = CollectorConfig {
                targets: vec![t.into()],
                ..CollectorConfig::default()
            };
            c.mask();
            let (TargetSpec::Postgres(x) | TargetSpec::Mysql(x)) = &c.targets[0].spec else {
                panic!()
            };
            assert_eq!(x.password.as_deref(), Some("***"));
            let shown = format!("{:?}", r.clone().parse("t").unwrap());
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }

    #[test]
    fn a_bad_sql_target_is_refused_naming_the_field() {
        let cases: [(fn(&mut RawTarget), &str); 8] = [
            (|r| r.username = None, "t.username"),
            (|r| r.address = None, "t.address"),
            (|r| r.address = Some("db".into()), "t.address"),
            (|r| r.query = Some(" ".into()), "t.query"),
            (|r| r.query = Some("SELECT '\0'".into()), "t.query"),
            (|r| r.database = Some("d".repeat(65)), "t.database"),
            (|r| r.password = Some("p".repeat(513)), "t.password"),
            (|r| r.use_tls = Some(true), "t.use_tls"),
        ];
        for check in [CheckType::Postgres, CheckType::Mysql] {
            for (edit, key) in cases {
                let mut r = sql(check);
                edit(&mut r);
                let e = r
                    .parse("t")
                    .unwrap_err()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                assert!(e.contains(key), "{key}: {e}");
                assert!(!e.contains("ppppp"), "a password is never quoted: {e}");
            }
        }
    }
}
