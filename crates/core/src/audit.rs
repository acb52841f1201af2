//! The audit log of writes that arrive over gRPC, kept in the service's own
//! store (table `grpc_audit`, created on first use in the service's SQLite
//! file or PostgreSQL schema): who, what, when, from where, and the outcome,
//! allowed or refused — the record the gateway keeps for REST writes.

use sqlx::Row;

use crate::store::{Store, StoreError};
use crate::with_pool;

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// One write to record.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    /// Who: the token's subject (`ana`, `cli:ops`, `ana (via service:pantau)`),
    /// `anonymous` without a valid token.
    pub actor: &'a str,
    /// What: the method, `pantau.v1.CollectorService/UpsertTarget`.
    pub method: &'a str,
    /// The outcome: the gRPC status code's name (`OK`, `PERMISSION_DENIED`, …).
    pub outcome: &'a str,
    /// The caller's address.
    pub remote: &'a str,
    /// Why it was refused, when it was.
    pub detail: &'a str,
}

/// One recorded write.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub seq: i64,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    pub actor: String,
    pub method: String,
    pub outcome: String,
    pub remote: String,
    pub detail: String,
}

/// A service's gRPC audit log.
#[derive(Debug, Clone)]
pub struct Audit {
    store: Store,
}

const SQLITE: &str = "CREATE TABLE IF NOT EXISTS grpc_audit (\
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL, method TEXT NOT NULL, \
    outcome TEXT NOT NULL, remote TEXT NOT NULL, detail TEXT NOT NULL)";
const POSTGRES: &str = "CREATE TABLE IF NOT EXISTS grpc_audit (\
    seq BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, method TEXT NOT NULL, \
    outcome TEXT NOT NULL, remote TEXT NOT NULL, detail TEXT NOT NULL)";

impl Audit {
    /// The audit log in `store`, its table created when missing.
    pub async fn open(store: &Store) -> Result<Self, StoreError> {
        match store {
            Store::Sqlite(pool, _) => {
                sqlx::query(SQLITE).execute(pool).await?;
            }
            Store::Postgres { pool, .. } => {
                sqlx::query(POSTGRES).execute(pool).await?;
            }
        }
        Ok(Self { store: store.clone() })
    }

    /// Records one write.
    pub async fn record(&self, e: &NewEntry<'_>) -> Result<(), StoreError> {
        with_pool!(&self.store, pool => {
            sqlx::query(
                "INSERT INTO grpc_audit (at, actor, method, outcome, remote, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(now_ms())
            .bind(e.actor)
            .bind(e.method)
            .bind(e.outcome)
            .bind(e.remote)
            .bind(e.detail)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The newest `limit` entries, newest first.
    pub async fn entries(&self, limit: i64) -> Result<Vec<Entry>, StoreError> {
        Ok(with_pool!(&self.store, pool => {
            sqlx::query(
                "SELECT seq, at, actor, method, outcome, remote, detail FROM grpc_audit ORDER BY seq DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| Entry {
                seq: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                method: r.get(3),
                outcome: r.get(4),
                remote: r.get(5),
                detail: r.get(6),
            })
            .collect()
        }))
    }

    /// Deletes entries older than `before_ms`; how many.
    pub async fn prune(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(with_pool!(&self.store, pool => {
            sqlx::query("DELETE FROM grpc_audit WHERE at < $1").bind(before_ms).execute(pool).await?.rows_affected()
        }))
    }
}
