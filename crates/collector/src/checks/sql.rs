//! PostgreSQL and MySQL/MariaDB: resolve, log in with sqlx, run the query as
//! a simple (text-protocol) query, and compare the first column of the first
//! row as text. One connection per check, closed after it.

use std::collections::HashMap;
use std::net::SocketAddr;

use pantau_proto::v1::{FailureReason, ProbeDetail, check_result::Detail};
use sqlx::{AssertSqlSafe, Connection, Row};
use tokio::time::Instant;

use super::Outcome;

/// Which server a [`SqlSpec`] speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Mysql,
}

/// A compiled `postgres` or `mysql` target.
#[derive(Clone)]
pub struct SqlSpec {
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Option<String>,
    pub database: Option<String>,
    pub query: String,
    pub expected: Option<String>,
}

impl std::fmt::Debug for SqlSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSpec")
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl SqlSpec {
    pub fn new(engine: Engine, x: &pantau_config::SqlTarget) -> Self {
        Self {
            engine,
            host: x.address.host().to_owned(),
            port: x.address.port(),
            username: x.username.clone(),
            password: x.password.clone(),
            database: x.database.clone(),
            query: x
                .query
                .clone()
                .unwrap_or_else(|| pantau_config::SQL_DEFAULT_QUERY.to_owned()),
            expected: x.expected_reply.clone(),
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

/// Longest part of a value or server message shown.
const MAX_SHOWN: usize = 100;

fn shown(text: &str) -> String {
    let cut: String = text
        .chars()
        .take(MAX_SHOWN)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if cut.len() < text.len() {
        format!("{cut}… ({} bytes)", text.len())
    } else {
        cut
    }
}

/// Runs the check of `spec`; the caller bounds the time.
pub async fn check(spec: &SqlSpec, started: Instant) -> Outcome {
    let address = spec.address();
    let peer = match super::resolve(&spec.host, spec.port, started).await {
        Ok(a) => a,
        Err(down) => return down,
    };
    let first = match spec.engine {
        Engine::Postgres => postgres(spec, peer).await,
        Engine::Mysql => mysql(spec, peer).await,
    };
    let latency = started.elapsed();
    let (value, server) = match first {
        Ok(v) => v,
        Err(e) => return down(latency, &address, spec.engine, &e),
    };
    let mut metadata = HashMap::from([("value".to_owned(), shown(&value))]);
    if !server.is_empty() {
        metadata.insert("server_version".to_owned(), shown(&server));
    }
    let detail = Detail::Probe(ProbeDetail {
        peer: peer.to_string(),
        metadata,
        certificate: None,
    });
    match &spec.expected {
        Some(want) if *want != value => Outcome::down(
            latency,
            FailureReason::Assertion,
            format!(
                "the query on {address} gave {:?}, not the expected {:?}",
                shown(&value),
                shown(want)
            ),
        )
        .with_detail(detail),
        _ => Outcome::up(latency, Some(detail)),
    }
}

/// The first column of the first row as text (`NULL` for a null, empty for
/// no row or no column), and the server's version.
async fn postgres(spec: &SqlSpec, peer: SocketAddr) -> Result<(String, String), sqlx::Error> {
    let mut opts = sqlx::postgres::PgConnectOptions::new_without_pgpass()
        .host(&peer.ip().to_string())
        .port(peer.port())
        .username(&spec.username)
        .application_name("pantau");
    if let Some(p) = &spec.password {
        opts = opts.password(p);
    }
    if let Some(d) = &spec.database {
        opts = opts.database(d);
    }
    let mut conn = sqlx::PgConnection::connect_with(&opts).await?;
    let server = conn.server_version_num().map(|n| n.to_string()).unwrap_or_default();
    let row = sqlx::raw_sql(AssertSqlSafe(spec.query.clone()))
        .fetch_optional(&mut conn)
        .await?;
    let value = row.map(|r| first(r.try_get_unchecked::<Option<String>, _>(0)));
    conn.close().await.ok();
    Ok((value.unwrap_or_default(), server))
}

async fn mysql(spec: &SqlSpec, peer: SocketAddr) -> Result<(String, String), sqlx::Error> {
    let mut opts = sqlx::mysql::MySqlConnectOptions::new()
        .host(&peer.ip().to_string())
        .port(peer.port())
        .username(&spec.username)
        .ssl_mode(sqlx::mysql::MySqlSslMode::Preferred);
    if let Some(p) = &spec.password {
        opts = opts.password(p);
    }
    if let Some(d) = &spec.database {
        opts = opts.database(d);
    }
    let mut conn = sqlx::MySqlConnection::connect_with(&opts).await?;
    let row = sqlx::raw_sql(AssertSqlSafe(spec.query.clone()))
        .fetch_optional(&mut conn)
        .await?;
    let value = row.map(|r| first(r.try_get_unchecked::<Option<String>, _>(0)));
    conn.close().await.ok();
    Ok((value.unwrap_or_default(), String::new()))
}

/// A first value as text: `NULL` for a null, empty when there is no column.
fn first(v: Result<Option<String>, sqlx::Error>) -> String {
    match v {
        Ok(Some(s)) => s,
        Ok(None) => "NULL".to_owned(),
        Err(_) => String::new(),
    }
}

/// The down outcome of a connection or query error, with its typed reason.
fn down(latency: std::time::Duration, address: &str, engine: Engine, e: &sqlx::Error) -> Outcome {
    let server = match engine {
        Engine::Postgres => "PostgreSQL",
        Engine::Mysql => "MySQL",
    };
    let (reason, why) = match e {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default().into_owned();
            // SQLSTATE class 28: invalid authorization.
            let reason = if code.starts_with("28") {
                FailureReason::Auth
            } else {
                FailureReason::Protocol
            };
            (reason, format!("{server} said {code}: {}", shown(db.message())))
        }
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            (FailureReason::Refused, "connection refused".to_owned())
        }
        sqlx::Error::Io(io) => (
            FailureReason::Connect,
            format!("cannot connect: {}", shown(&io.to_string())),
        ),
        sqlx::Error::Tls(t) => (FailureReason::Tls, format!("TLS failed: {}", shown(&t.to_string()))),
        other => (
            FailureReason::Protocol,
            format!("{server} did not answer as expected: {}", shown(&other.to_string())),
        ),
    };
    Outcome::down(latency, reason, format!("{address}: {why}"))
}
