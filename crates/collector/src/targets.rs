//! Targets added at run time, persisted so they survive a restart.

use std::time::{SystemTime, UNIX_EPOCH};

use pantau_config::TargetConfig;
use pantau_core::store::{Store, StoreError};
use pantau_core::with_pool;
use sqlx::Row;

/// A stored target that no longer reads as a configuration.
#[derive(Debug)]
pub struct Unreadable {
    pub id: String,
    pub error: String,
}

/// Every stored target, and the ones that could not be read.
pub async fn load(store: &Store) -> Result<(Vec<TargetConfig>, Vec<Unreadable>), StoreError> {
    let rows: Vec<(String, String)> = with_pool!(store, pool => sqlx::query("SELECT id, config FROM targets ORDER BY id")
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect());
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (id, json) in rows {
        match serde_json::from_str::<TargetConfig>(&json) {
            Ok(t) => ok.push(t),
            Err(e) => bad.push(Unreadable {
                id,
                error: e.to_string(),
            }),
        }
    }
    Ok((ok, bad))
}

/// Inserts or replaces `t`.
pub async fn save(store: &Store, t: &TargetConfig) -> Result<(), StoreError> {
    let json = serde_json::to_string(t).map_err(|e| StoreError::Query(sqlx::Error::Encode(Box::new(e))))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    with_pool!(store, pool => sqlx::query(
        "INSERT INTO targets (id, config, updated_ms) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET config = $2, updated_ms = $3",
    )
    .bind(&t.id)
    .bind(json)
    .bind(now)
    .execute(pool)
    .await
    .map(|_| ())?);
    Ok(())
}

/// Deletes `id`; says whether it existed.
pub async fn delete(store: &Store, id: &str) -> Result<bool, StoreError> {
    let n = with_pool!(store, pool => sqlx::query("DELETE FROM targets WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(n > 0)
}
