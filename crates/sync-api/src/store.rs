//! The sync-api's tables: instances (token hashes, heartbeats, per-instance
//! result sequence and config sync status), per-location results and
//! consensus windows (bounded by `sync.retention`), the outbox of results a
//! dependent has not yet delivered (bounded by `sync.buffer_max`), and facts.

use pantau_core::store::{Store, StoreError};
use pantau_core::with_pool;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::consensus::LocationResult;

/// What registration stores about an instance.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Registration {
    pub id: String,
    pub name: String,
    pub location: String,
    pub version: String,
    pub capabilities: Vec<String>,
    pub failover_order: u32,
    pub public_endpoint: String,
    pub system: serde_json::Value,
    pub token_hash: String,
    pub token_expires_ms: i64,
    pub permissions: Vec<String>,
}

/// An instance as stored.
#[derive(Debug, Clone, Default)]
pub struct InstanceRow {
    pub reg: Registration,
    pub revoked: bool,
    pub registered_ms: i64,
    pub last_heartbeat_ms: i64,
    pub health: i32,
    pub metrics: serde_json::Value,
    pub connection: serde_json::Value,
    pub uptime_ms: i64,
    pub acked_seq: i64,
    pub results_received: i64,
    pub config_hash: String,
    pub config_synced_ms: i64,
}

/// What a heartbeat updates.
#[derive(Debug, Clone, Default)]
pub struct Beat {
    pub health: i32,
    pub metrics: serde_json::Value,
    pub connection: serde_json::Value,
    pub uptime_ms: i64,
}

/// One result to ingest: its sequence number and the fields consensus needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub seq: u64,
    pub target_id: String,
    pub location: String,
    pub up: bool,
    pub latency_us: i64,
    pub checked_ms: i64,
    pub window_ms: i64,
    /// The result's W3C `traceparent` (not stored; empty when untraced).
    pub trace_parent: String,
}

/// What an ingest did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    pub accepted: u32,
    pub duplicates: u32,
    pub acked_seq: u64,
}

pub async fn fact(store: &Store, key: &str) -> Result<Option<String>, StoreError> {
    Ok(
        with_pool!(store, pool => sqlx::query("SELECT value FROM facts WHERE key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await?
        .map(|r| r.get::<String, _>(0))),
    )
}

pub async fn set_fact(store: &Store, key: &str, value: &str) -> Result<(), StoreError> {
    with_pool!(store, pool => sqlx::query(
        "INSERT INTO facts (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2",
    )
    .bind(key)
    .bind(value)
    .execute(pool)
    .await
    .map(|_| ())?);
    Ok(())
}

pub async fn delete_fact(store: &Store, key: &str) -> Result<(), StoreError> {
    with_pool!(store, pool => sqlx::query("DELETE FROM facts WHERE key = $1").bind(key).execute(pool).await.map(|_| ())?);
    Ok(())
}

/// Appends a result to the outbox; drops the oldest beyond `max` and
/// returns how many were dropped.
pub async fn outbox_push(store: &Store, payload: &[u8], now_ms: i64, max: u64) -> Result<u64, StoreError> {
    let dropped = with_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("INSERT INTO outbox (payload, created_ms) VALUES ($1, $2)")
            .bind(payload)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM outbox").fetch_one(&mut *tx).await?.get(0);
        let excess = count - max as i64;
        let mut dropped = 0;
        if excess > 0 {
            dropped = sqlx::query("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT $1)")
                .bind(excess)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        dropped
    });
    Ok(dropped)
}

/// The oldest `limit` buffered results, in order.
pub async fn outbox_peek(store: &Store, limit: u32) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    Ok(
        with_pool!(store, pool => sqlx::query("SELECT seq, payload FROM outbox ORDER BY seq LIMIT $1")
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| (r.get::<i64, _>(0) as u64, r.get::<Vec<u8>, _>(1)))
        .collect()),
    )
}

/// Forgets buffered results up to `seq`, once delivered.
pub async fn outbox_ack(store: &Store, seq: u64) -> Result<u64, StoreError> {
    Ok(
        with_pool!(store, pool => sqlx::query("DELETE FROM outbox WHERE seq <= $1")
        .bind(seq as i64)
        .execute(pool)
        .await?
        .rows_affected()),
    )
}

/// The highest sequence number ever given (the outbox may be empty).
pub async fn outbox_high(store: &Store) -> Result<u64, StoreError> {
    let v: Option<i64> = match store {
        Store::Sqlite(pool, _) => sqlx::query("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'")
            .fetch_optional(pool)
            .await?
            .map(|r| r.get(0)),
        Store::Postgres { pool, .. } => sqlx::query("SELECT last_value, is_called FROM outbox_seq_seq")
            .fetch_optional(pool)
            .await?
            .and_then(|r| r.get::<bool, _>(1).then(|| r.get(0))),
    };
    Ok(v.unwrap_or(0).max(0) as u64)
}

pub async fn outbox_len(store: &Store) -> Result<u64, StoreError> {
    Ok(with_pool!(store, pool => sqlx::query("SELECT COUNT(*) FROM outbox")
        .fetch_one(pool)
        .await?
        .get::<i64, _>(0) as u64))
}

/// Registers or re-registers an instance: a new token hash, the revocation
/// kept, the result sequence kept (so a re-registered instance is not
/// counted twice).
pub async fn register(store: &Store, r: &Registration, now_ms: i64) -> Result<(), StoreError> {
    let caps = serde_json::to_string(&r.capabilities).unwrap_or_default();
    let perms = serde_json::to_string(&r.permissions).unwrap_or_default();
    let system = r.system.to_string();
    with_pool!(store, pool => sqlx::query(
        "INSERT INTO instances (id, name, location, version, capabilities, failover_order, public_endpoint, system,
            token_hash, token_expires_ms, permissions, registered_ms, last_heartbeat_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
         ON CONFLICT (id) DO UPDATE SET name = $2, location = $3, version = $4, capabilities = $5,
            failover_order = $6, public_endpoint = $7, system = $8, token_hash = $9, token_expires_ms = $10,
            permissions = $11, last_heartbeat_ms = $12",
    )
    .bind(&r.id)
    .bind(&r.name)
    .bind(&r.location)
    .bind(&r.version)
    .bind(caps)
    .bind(i64::from(r.failover_order))
    .bind(&r.public_endpoint)
    .bind(system)
    .bind(&r.token_hash)
    .bind(r.token_expires_ms)
    .bind(perms)
    .bind(now_ms)
    .execute(pool)
    .await
    .map(|_| ())?);
    Ok(())
}

const COLUMNS: &str = "id, name, location, version, capabilities, failover_order, public_endpoint, system, token_hash,
    token_expires_ms, permissions, revoked, registered_ms, last_heartbeat_ms, health, metrics, connection, uptime_ms,
    acked_seq, results_received, config_hash, config_synced_ms";

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

fn row<R: Row>(r: &R) -> InstanceRow
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let s = |c: &str| r.get::<String, _>(c);
    let i = |c: &str| r.get::<i64, _>(c);
    InstanceRow {
        reg: Registration {
            id: s("id"),
            name: s("name"),
            location: s("location"),
            version: s("version"),
            capabilities: serde_json::from_str(&s("capabilities")).unwrap_or_default(),
            failover_order: i("failover_order") as u32,
            public_endpoint: s("public_endpoint"),
            system: json(&s("system")),
            token_hash: s("token_hash"),
            token_expires_ms: i("token_expires_ms"),
            permissions: serde_json::from_str(&s("permissions")).unwrap_or_default(),
        },
        revoked: i("revoked") != 0,
        registered_ms: i("registered_ms"),
        last_heartbeat_ms: i("last_heartbeat_ms"),
        health: i("health") as i32,
        metrics: json(&s("metrics")),
        connection: json(&s("connection")),
        uptime_ms: i("uptime_ms"),
        acked_seq: i("acked_seq"),
        results_received: i("results_received"),
        config_hash: s("config_hash"),
        config_synced_ms: i("config_synced_ms"),
    }
}

pub async fn instance(store: &Store, id: &str) -> Result<Option<InstanceRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM instances WHERE id = $1");
    Ok(with_pool!(store, pool => sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| row(&r))))
}

pub async fn instances(store: &Store) -> Result<Vec<InstanceRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM instances ORDER BY failover_order, id");
    Ok(with_pool!(store, pool => sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?
        .iter()
        .map(row)
        .collect()))
}

pub async fn heartbeat(store: &Store, id: &str, b: &Beat, now_ms: i64) -> Result<bool, StoreError> {
    Ok(with_pool!(store, pool => sqlx::query(
        "UPDATE instances SET last_heartbeat_ms = $2, health = $3, metrics = $4, connection = $5, uptime_ms = $6
         WHERE id = $1 AND revoked = 0",
    )
    .bind(id)
    .bind(now_ms)
    .bind(i64::from(b.health))
    .bind(b.metrics.to_string())
    .bind(b.connection.to_string())
    .bind(b.uptime_ms)
    .execute(pool)
    .await?
    .rows_affected()
        > 0))
}

/// Revokes an instance: its token no longer authenticates.
pub async fn revoke(store: &Store, id: &str) -> Result<bool, StoreError> {
    Ok(
        with_pool!(store, pool => sqlx::query("UPDATE instances SET revoked = 1, token_hash = '' WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
        > 0),
    )
}

pub async fn config_synced(store: &Store, id: &str, hash: &str, now_ms: i64) -> Result<(), StoreError> {
    with_pool!(store, pool => sqlx::query("UPDATE instances SET config_hash = $2, config_synced_ms = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(now_ms)
        .execute(pool)
        .await
        .map(|_| ())?);
    Ok(())
}

/// Ingests results of `instance` in one transaction: those at or below its
/// acknowledged sequence (or `floor`, what any primary acknowledged) are
/// duplicates; the rest update the per-location latest result of their
/// window (a newer check wins), mark the window for (re)publication and
/// are folded into the location history ([`crate::history`]).
/// `outbox_upto` also forgets this instance's own outbox up to that sequence
/// in the same transaction (the primary ingesting its own results).
pub async fn ingest(
    store: &Store,
    instance: &str,
    results: &[Incoming],
    floor: u64,
    outbox_upto: Option<u64>,
) -> Result<Ingested, StoreError> {
    let out = with_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        let acked: i64 = sqlx::query("SELECT acked_seq FROM instances WHERE id = $1")
            .bind(instance)
            .fetch_optional(&mut *tx)
            .await?
            .map_or(0, |r| r.get(0));
        let mut high = (acked as u64).max(floor);
        let mut done = Ingested::default();
        let mut accepted = Vec::with_capacity(results.len());
        for r in results {
            if r.seq <= high {
                done.duplicates += 1;
                continue;
            }
            high = r.seq;
            done.accepted += 1;
            accepted.push(r);
            sqlx::query(
                "INSERT INTO location_results (target_id, window_ms, location, instance, up, latency_us, checked_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (target_id, window_ms, location) DO UPDATE SET instance = $4, up = $5, latency_us = $6,
                    checked_ms = $7 WHERE location_results.checked_ms <= $7",
            )
            .bind(&r.target_id)
            .bind(r.window_ms)
            .bind(&r.location)
            .bind(instance)
            .bind(i64::from(r.up))
            .bind(r.latency_us)
            .bind(r.checked_ms)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO windows (target_id, window_ms, dirty) VALUES ($1, $2, 1)
                 ON CONFLICT (target_id, window_ms) DO UPDATE SET dirty = 1",
            )
            .bind(&r.target_id)
            .bind(r.window_ms)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE instances SET acked_seq = $2, results_received = results_received + $3 WHERE id = $1")
            .bind(instance)
            .bind(high as i64)
            .bind(i64::from(done.accepted))
            .execute(&mut *tx)
            .await?;
        if let Some(upto) = outbox_upto {
            sqlx::query("DELETE FROM outbox WHERE seq <= $1").bind(upto as i64).execute(&mut *tx).await?;
        }
        // The location history, in the same transaction: a result counts once.
        let buckets = crate::history::fold(accepted.iter().copied());
        crate::write_history!(tx, &buckets);
        tx.commit().await?;
        done.acked_seq = high;
        done
    });
    Ok(out)
}

/// Windows with new results that ended before `before_ms` (window start).
pub async fn due_windows(store: &Store, before_ms: i64) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(with_pool!(store, pool => sqlx::query(
        "SELECT target_id, window_ms FROM windows WHERE dirty = 1 AND window_ms < $1 ORDER BY window_ms LIMIT 1000",
    )
    .bind(before_ms)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
    .collect()))
}

/// The locations' results for a window: those that reported in it, then
/// the stale ones: each location that reported `target` in an earlier
/// window but not in this one, with its last result, unless its instance
/// was removed.
pub async fn window_results(store: &Store, target: &str, window_ms: i64) -> Result<Vec<LocationResult>, StoreError> {
    let rows = with_pool!(store, pool => sqlx::query(
        "SELECT location, up, latency_us, CAST(0 AS BIGINT) AS stale FROM location_results WHERE target_id = $1 AND window_ms = $2
         UNION ALL
         SELECT r.location, r.up, r.latency_us, CAST(1 AS BIGINT) AS stale FROM location_results r
         JOIN (SELECT location, MAX(window_ms) AS last FROM location_results
               WHERE target_id = $1 AND window_ms < $2 GROUP BY location) l
           ON r.location = l.location AND r.window_ms = l.last
         WHERE r.target_id = $1
           AND r.location NOT IN (SELECT location FROM location_results WHERE target_id = $1 AND window_ms = $2)
           AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = r.instance AND i.revoked <> 0)
         ORDER BY 4, 1",
    )
    .bind(target)
    .bind(window_ms)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| LocationResult {
        location: r.get(0),
        up: r.get::<i64, _>(1) != 0,
        latency: std::time::Duration::from_micros(r.get::<i64, _>(2).max(0) as u64),
        stale: r.get::<i64, _>(3) != 0,
    })
    .collect());
    Ok(rows)
}

/// Each target's latest result at `location` (only `target` when given):
/// target, up, latency and check time (ms), at most `limit` rows.
pub async fn latest_at(
    store: &Store,
    location: &str,
    target: Option<&str>,
    limit: i64,
) -> Result<Vec<(String, bool, std::time::Duration, i64)>, StoreError> {
    let rows = with_pool!(store, pool => sqlx::query(
        "SELECT r.target_id, r.up, r.latency_us, r.checked_ms FROM location_results r
         JOIN (SELECT target_id, MAX(window_ms) AS last FROM location_results
               WHERE location = $1 AND ($2 = '' OR target_id = $2) GROUP BY target_id) l
           ON r.target_id = l.target_id AND r.window_ms = l.last
         WHERE r.location = $1
         ORDER BY r.target_id
         LIMIT $3",
    )
    .bind(location)
    .bind(target.unwrap_or(""))
    .bind(limit)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        (
            r.get::<String, _>(0),
            r.get::<i64, _>(1) != 0,
            std::time::Duration::from_micros(r.get::<i64, _>(2).max(0) as u64),
            r.get::<i64, _>(3),
        )
    })
    .collect());
    Ok(rows)
}

pub async fn mark_published(
    store: &Store,
    target: &str,
    window_ms: i64,
    (status, total, successful): (i32, u32, u32),
    epoch: u64,
) -> Result<(), StoreError> {
    with_pool!(store, pool => sqlx::query(
        "UPDATE windows SET dirty = 0, status = $3, total = $4, successful = $5, epoch = $6
         WHERE target_id = $1 AND window_ms = $2",
    )
    .bind(target)
    .bind(window_ms)
    .bind(i64::from(status))
    .bind(i64::from(total))
    .bind(i64::from(successful))
    .bind(epoch as i64)
    .execute(pool)
    .await
    .map(|_| ())?);
    Ok(())
}

/// Per-location results and windows older than `before_ms`.
pub async fn prune(store: &Store, before_ms: i64) -> Result<u64, StoreError> {
    let a = with_pool!(store, pool => sqlx::query("DELETE FROM location_results WHERE window_ms < $1")
        .bind(before_ms)
        .execute(pool)
        .await?
        .rows_affected());
    let b = with_pool!(store, pool => sqlx::query("DELETE FROM windows WHERE window_ms < $1")
        .bind(before_ms)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(a + b)
}
