//! The delivery table: a delivery is written here before it is attempted,
//! claimed with a lease (so replicas sharing a PostgreSQL schema never
//! attempt one delivery at the same time, and a dead replica's deliveries are
//! taken over when its lease ends), and every attempt is logged. Finished
//! deliveries are purged after `notifier.retention`.

use pantau_core::store::{Store, StoreError};
use pantau_core::with_pool;
use sqlx::Row;

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// A delivery to persist.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: String,
    pub channel: String,
    pub channel_type: String,
    pub recipient: String,
    pub alert_key: String,
    pub state: String,
    pub source: String,
    /// The notification as JSON.
    pub notification: String,
    /// Milliseconds before the first attempt (a grouping channel's `group_wait`).
    pub delay_ms: i64,
}

/// A delivery this replica holds the lease of.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub seq: i64,
    pub id: String,
    pub channel: String,
    pub recipient: String,
    pub notification: String,
    pub attempts: i64,
    /// The alert id (or Alertmanager group key) and what is notified
    /// (`firing`, `acknowledged`, `resolved`), from `source`.
    pub alert_key: String,
    pub state: String,
    pub source: String,
}

/// One attempt, for the log.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub attempt: i64,
    pub at: i64,
    pub status_code: i64,
    pub error: String,
    pub latency_ms: i64,
}

/// An attempt to record with the delivery's new status.
#[derive(Debug, Clone)]
pub struct Record {
    pub seq: i64,
    pub attempt: Attempt,
    /// `pending` (retry at `next_attempt_at`), `delivered` or `failed`.
    pub status: &'static str,
    pub next_attempt_at: i64,
}

/// A delivery with its log, for the API.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: String,
    pub channel: String,
    pub channel_type: String,
    pub recipient: String,
    pub alert_key: String,
    pub state: String,
    pub source: String,
    pub status: String,
    pub attempts: i64,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub log: Vec<Attempt>,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub channel: Option<String>,
    pub status: Option<&'static str>,
    pub alert_key: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct DeliveryStore {
    store: Store,
}

pub(crate) const INSERT: &str = "INSERT INTO deliveries (id, channel, channel_type, recipient, alert_key, state, source, notification, status, attempts, next_attempt_at, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $10, $9, $9) ON CONFLICT (id) DO NOTHING";

// Due, not leased, and not behind an earlier pending delivery of the same
// alert to the same channel and recipient (a resolved waits for its firing).
// The outer conditions are checked again on the row being updated, so two
// replicas cannot both take it.
const CLAIM: &str = "UPDATE deliveries SET lease_owner = $1, lease_until = $2 \
     WHERE seq IN (SELECT d.seq FROM deliveries d \
        WHERE d.status = 'pending' AND d.next_attempt_at <= $3 AND d.lease_until <= $3 \
        AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.status = 'pending' AND e.channel = d.channel \
            AND e.recipient = d.recipient AND e.alert_key = d.alert_key AND e.seq < d.seq) \
        ORDER BY d.seq LIMIT $4) \
     AND status = 'pending' AND lease_until <= $3 \
     RETURNING seq, id, channel, recipient, notification, attempts, alert_key, state, source";

// The same for one channel and recipient, due or not: a grouping channel's
// companions ride along with the send that is happening now.
const CLAIM_FOR: &str = "UPDATE deliveries SET lease_owner = $1, lease_until = $2 \
     WHERE seq IN (SELECT d.seq FROM deliveries d \
        WHERE d.status = 'pending' AND d.lease_until <= $3 \
        AND d.channel = $5 AND d.recipient = $6 \
        AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.status = 'pending' AND e.channel = d.channel \
            AND e.recipient = d.recipient AND e.alert_key = d.alert_key AND e.seq < d.seq) \
        ORDER BY d.seq LIMIT $4) \
     AND status = 'pending' AND lease_until <= $3 \
     RETURNING seq, id, channel, recipient, notification, attempts, alert_key, state, source";

const RECORD: &str = "UPDATE deliveries SET status = $1, attempts = $2, next_attempt_at = $3, lease_owner = '', lease_until = 0, updated_at = $4 \
     WHERE seq = $5 AND lease_owner = $6";

const LOG: &str = "INSERT INTO delivery_attempts (delivery_seq, attempt, at, status_code, error, latency_ms) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_seq, attempt) DO NOTHING";

impl DeliveryStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Persists `rows` in one transaction; rows whose id exists already are
    /// skipped. Returns how many were new.
    pub async fn insert(&self, rows: &[NewDelivery]) -> Result<u64, StoreError> {
        let now = now_ms();
        let inserted = with_pool!(&self.store, pool => {
            let mut tx = pool.begin().await?;
            let mut n = 0;
            for r in rows {
                n += sqlx::query(INSERT)
                    .bind(&r.id).bind(&r.channel).bind(&r.channel_type).bind(&r.recipient)
                    .bind(&r.alert_key).bind(&r.state).bind(&r.source).bind(&r.notification).bind(now).bind(now + r.delay_ms)
                    .execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            n
        });
        Ok(inserted)
    }

    /// Leases up to `limit` due deliveries to `owner` until `lease_until`.
    pub async fn claim(&self, owner: &str, lease_until: i64, limit: i64) -> Result<Vec<Claimed>, StoreError> {
        let now = now_ms();
        let rows = with_pool!(&self.store, pool => {
            sqlx::query(CLAIM).bind(owner).bind(lease_until).bind(now).bind(limit)
                .fetch_all(pool).await?
                .into_iter()
                .map(|r| claimed(&r))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        let mut rows = rows;
        rows.sort_by_key(|c| c.seq);
        Ok(rows)
    }

    /// Like [`Self::claim`], for deliveries to `channel` and `recipient`, and
    /// including those not due yet (waiting for `group_wait` or a retry).
    pub async fn claim_for(
        &self,
        owner: &str,
        lease_until: i64,
        limit: i64,
        channel: &str,
        recipient: &str,
    ) -> Result<Vec<Claimed>, StoreError> {
        let now = now_ms();
        let mut rows = with_pool!(&self.store, pool => {
            sqlx::query(CLAIM_FOR).bind(owner).bind(lease_until).bind(now).bind(limit).bind(channel).bind(recipient)
                .fetch_all(pool).await?
                .into_iter()
                .map(|r| claimed(&r))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        rows.sort_by_key(|c| c.seq);
        Ok(rows)
    }

    /// Frees the leases `owner` held before a restart, so its deliveries resume now.
    pub async fn release(&self, owner: &str) -> Result<u64, StoreError> {
        let n = with_pool!(&self.store, pool => {
            sqlx::query("UPDATE deliveries SET lease_owner = '', lease_until = 0 WHERE lease_owner = $1 AND status = 'pending'")
                .bind(owner).execute(pool).await?.rows_affected()
        });
        Ok(n)
    }

    /// Gives a leased delivery back, due at `at`, without counting an attempt.
    pub async fn postpone(&self, seq: i64, owner: &str, at: i64) -> Result<(), StoreError> {
        with_pool!(&self.store, pool => {
            sqlx::query("UPDATE deliveries SET next_attempt_at = $1, lease_owner = '', lease_until = 0 WHERE seq = $2 AND lease_owner = $3")
                .bind(at).bind(seq).bind(owner).execute(pool).await?;
        });
        Ok(())
    }

    /// [`Self::record`] for many deliveries in one transaction; one `bool`
    /// per record, in order.
    pub async fn record_many(&self, owner: &str, records: &[Record]) -> Result<Vec<bool>, StoreError> {
        let now = now_ms();
        let kept = with_pool!(&self.store, pool => {
            let mut tx = pool.begin().await?;
            let mut kept = Vec::with_capacity(records.len());
            for r in records {
                let a = &r.attempt;
                let n = sqlx::query(RECORD)
                    .bind(r.status).bind(a.attempt).bind(r.next_attempt_at).bind(now).bind(r.seq).bind(owner)
                    .execute(&mut *tx).await?.rows_affected();
                if n == 1 {
                    sqlx::query(LOG)
                        .bind(r.seq).bind(a.attempt).bind(a.at).bind(a.status_code).bind(&a.error).bind(a.latency_ms)
                        .execute(&mut *tx).await?;
                }
                kept.push(n == 1);
            }
            tx.commit().await?;
            kept
        });
        Ok(kept)
    }

    /// Records an attempt and the delivery's new status; `false` when the
    /// lease was lost meanwhile (another replica owns it now).
    pub async fn record(
        &self,
        seq: i64,
        owner: &str,
        attempt: &Attempt,
        status: &str,
        next_attempt_at: i64,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let kept = with_pool!(&self.store, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(RECORD)
                .bind(status).bind(attempt.attempt).bind(next_attempt_at).bind(now).bind(seq).bind(owner)
                .execute(&mut *tx).await?.rows_affected();
            if n == 1 {
                sqlx::query(LOG)
                    .bind(seq).bind(attempt.attempt).bind(attempt.at).bind(attempt.status_code)
                    .bind(&attempt.error).bind(attempt.latency_ms)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n == 1
        });
        Ok(kept)
    }

    /// Deliveries, newest first, with their attempt logs.
    pub async fn list(&self, f: &Filter) -> Result<Vec<Listed>, StoreError> {
        let sql = "SELECT seq, id, channel, channel_type, recipient, alert_key, state, source, status, attempts, created_at, next_attempt_at \
             FROM deliveries WHERE ($1 = '' OR channel = $1) AND ($2 = '' OR status = $2) AND ($3 = '' OR alert_key = $3) \
             ORDER BY seq DESC LIMIT $4";
        let channel = f.channel.clone().unwrap_or_default();
        let status = f.status.unwrap_or_default();
        let key = f.alert_key.clone().unwrap_or_default();
        let mut out = Vec::new();
        with_pool!(&self.store, pool => {
            let rows = sqlx::query(sql).bind(&channel).bind(status).bind(&key).bind(f.limit).fetch_all(pool).await?;
            for r in rows {
                let seq: i64 = r.try_get("seq")?;
                let log = sqlx::query("SELECT attempt, at, status_code, error, latency_ms FROM delivery_attempts WHERE delivery_seq = $1 ORDER BY attempt")
                    .bind(seq).fetch_all(pool).await?
                    .into_iter()
                    .map(|a| Ok::<_, sqlx::Error>(Attempt {
                        attempt: a.try_get("attempt")?,
                        at: a.try_get("at")?,
                        status_code: a.try_get("status_code")?,
                        error: a.try_get("error")?,
                        latency_ms: a.try_get("latency_ms")?,
                    }))
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(Listed {
                    id: r.try_get("id")?,
                    channel: r.try_get("channel")?,
                    channel_type: r.try_get("channel_type")?,
                    recipient: r.try_get("recipient")?,
                    alert_key: r.try_get("alert_key")?,
                    state: r.try_get("state")?,
                    source: r.try_get("source")?,
                    status: r.try_get("status")?,
                    attempts: r.try_get("attempts")?,
                    created_at: r.try_get("created_at")?,
                    next_attempt_at: r.try_get("next_attempt_at")?,
                    log,
                });
            }
        });
        Ok(out)
    }

    /// The channels and recipients a firing of `key` (from `source`) was
    /// delivered to or is waiting for: its acknowledgement and resolve go
    /// there too, whatever the routes say now.
    pub async fn firing_sent_to(&self, source: &str, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = with_pool!(&self.store, pool => {
            sqlx::query("SELECT channel, recipient, MIN(seq) AS first FROM deliveries \
                 WHERE source = $1 AND alert_key = $2 AND state = 'firing' AND status IN ('pending', 'delivered') \
                 GROUP BY channel, recipient ORDER BY first")
                .bind(source).bind(key).fetch_all(pool).await?
                .into_iter()
                .map(|r| Ok::<_, sqlx::Error>((r.try_get("channel")?, r.try_get("recipient")?)))
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Pending deliveries right now.
    pub async fn pending(&self) -> Result<i64, StoreError> {
        let n = with_pool!(&self.store, pool => {
            sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE status = 'pending'")
                .fetch_one(pool).await?.try_get::<i64, _>("n")?
        });
        Ok(n)
    }

    /// Deletes finished deliveries (and their logs) last updated before `before`.
    pub async fn purge(&self, before: i64) -> Result<u64, StoreError> {
        let n = with_pool!(&self.store, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM delivery_attempts WHERE delivery_seq IN (SELECT seq FROM deliveries WHERE status <> 'pending' AND updated_at < $1)")
                .bind(before).execute(&mut *tx).await?;
            let n = sqlx::query("DELETE FROM deliveries WHERE status <> 'pending' AND updated_at < $1")
                .bind(before).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n)
    }
}

fn claimed<R: Row>(r: &R) -> Result<Claimed, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Claimed {
        seq: r.try_get("seq")?,
        id: r.try_get("id")?,
        channel: r.try_get("channel")?,
        recipient: r.try_get("recipient")?,
        notification: r.try_get("notification")?,
        attempts: r.try_get("attempts")?,
        alert_key: r.try_get("alert_key")?,
        state: r.try_get("state")?,
        source: r.try_get("source")?,
    })
}
