//! The escalation table: one row per alert and policy (see
//! `migrations/*/0002_escalations.sql`). A step is sent by moving `next_at`
//! from the value it was read with and inserting its deliveries in the same
//! transaction: two replicas, or a replica and its restart, cannot both send
//! a step, and a step is never moved without its deliveries.

use pantau_core::store::{Store, StoreError};
use pantau_core::with_pool;
use sqlx::Row;

use crate::store::{INSERT, NewDelivery, now_ms};

pub const FIRING: &str = "firing";
pub const ACKNOWLEDGED: &str = "acknowledged";
pub const DONE: &str = "done";

/// One alert's escalation under one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub source: String,
    pub alert_key: String,
    pub policy: String,
    /// The route's channels.
    pub channels: Vec<String>,
    /// The notification to repeat, as JSON.
    pub notification: String,
    /// `firing`, `acknowledged` or `done`.
    pub state: String,
    pub started_at: i64,
    /// 0 when nothing is left to send.
    pub next_at: i64,
    pub sent: i64,
}

/// The columns read and written, as a literal for `concat!`.
macro_rules! columns {
    () => {
        "source, alert_key, policy, channels, notification, state, started_at, next_at, sent"
    };
}

const START: &str = concat!(
    "INSERT INTO escalations (",
    columns!(),
    ", updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (source, alert_key, policy) DO NOTHING"
);
const OF_ALERT: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM escalations WHERE source = $1 AND alert_key = $2 AND state = $3"
);
const DUE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM escalations WHERE state IN ('firing', 'acknowledged') AND next_at > 0 AND next_at <= $1 ORDER BY next_at LIMIT $2"
);

#[derive(Debug, Clone)]
pub struct EscalationStore {
    store: Store,
}

fn escalation<R: Row>(r: &R) -> Result<Escalation, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let channels: String = r.try_get("channels")?;
    Ok(Escalation {
        source: r.try_get("source")?,
        alert_key: r.try_get("alert_key")?,
        policy: r.try_get("policy")?,
        channels: serde_json::from_str(&channels).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        notification: r.try_get("notification")?,
        state: r.try_get("state")?,
        started_at: r.try_get("started_at")?,
        next_at: r.try_get("next_at")?,
        sent: r.try_get("sent")?,
    })
}

impl EscalationStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Starts escalations; an alert already escalating (or done) under a
    /// policy is kept as it is, so a redelivered firing restarts nothing.
    /// Returns how many are new.
    pub async fn start(&self, rows: &[Escalation]) -> Result<u64, StoreError> {
        let now = now_ms();
        let n = with_pool!(&self.store, pool => {
            let mut tx = pool.begin().await?;
            let mut n = 0;
            for e in rows {
                let channels = serde_json::to_string(&e.channels).unwrap_or_else(|_| "[]".to_owned());
                n += sqlx::query(START)
                    .bind(&e.source).bind(&e.alert_key).bind(&e.policy).bind(channels).bind(&e.notification)
                    .bind(&e.state).bind(e.started_at).bind(e.next_at).bind(e.sent).bind(now)
                    .execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            n
        });
        Ok(n)
    }

    /// The escalations of one alert in `state`.
    pub async fn of_alert(&self, source: &str, key: &str, state: &str) -> Result<Vec<Escalation>, StoreError> {
        let rows = with_pool!(&self.store, pool => {
            sqlx::query(OF_ALERT).bind(source).bind(key).bind(state).fetch_all(pool).await?
                .iter().map(escalation).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Moves a firing escalation to `state` (reminders, or done) with the
    /// acknowledged `notification`, starting at `started_at`.
    pub async fn acknowledge(
        &self,
        e: &Escalation,
        state: &str,
        notification: &str,
        started_at: i64,
        next_at: i64,
    ) -> Result<bool, StoreError> {
        let n = with_pool!(&self.store, pool => {
            sqlx::query(
                "UPDATE escalations SET state = $1, notification = $2, started_at = $3, next_at = $4, updated_at = $5 \
                 WHERE source = $6 AND alert_key = $7 AND policy = $8 AND state = 'firing'",
            )
            .bind(state).bind(notification).bind(started_at).bind(next_at).bind(now_ms())
            .bind(&e.source).bind(&e.alert_key).bind(&e.policy)
            .execute(pool).await?.rows_affected()
        });
        Ok(n == 1)
    }

    /// Ends every escalation of an alert (resolved); how many were running.
    pub async fn finish(&self, source: &str, key: &str) -> Result<u64, StoreError> {
        let n = with_pool!(&self.store, pool => {
            sqlx::query("UPDATE escalations SET state = 'done', next_at = 0, updated_at = $1 \
                 WHERE source = $2 AND alert_key = $3 AND state <> 'done'")
                .bind(now_ms()).bind(source).bind(key).execute(pool).await?.rows_affected()
        });
        Ok(n)
    }

    /// Escalations with a step due at `now`, earliest first.
    pub async fn due(&self, now: i64, limit: i64) -> Result<Vec<Escalation>, StoreError> {
        let rows = with_pool!(&self.store, pool => {
            sqlx::query(DUE).bind(now).bind(limit).fetch_all(pool).await?
                .iter().map(escalation).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Sends a step: moves `e` to `next_at` (0: none left) and inserts
    /// `deliveries`, in one transaction, only if `e` is still as it was read
    /// (same state and `next_at`). `false` when another replica, an
    /// acknowledgement or a resolve came first; then nothing is inserted.
    pub async fn advance(&self, e: &Escalation, next_at: i64, deliveries: &[NewDelivery]) -> Result<bool, StoreError> {
        let now = now_ms();
        let moved = with_pool!(&self.store, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE escalations SET next_at = $1, sent = sent + 1, updated_at = $2 \
                 WHERE source = $3 AND alert_key = $4 AND policy = $5 AND state = $6 AND next_at = $7",
            )
            .bind(next_at).bind(now).bind(&e.source).bind(&e.alert_key).bind(&e.policy).bind(&e.state).bind(e.next_at)
            .execute(&mut *tx).await?.rows_affected();
            if n == 1 {
                for r in deliveries {
                    sqlx::query(INSERT)
                        .bind(&r.id).bind(&r.channel).bind(&r.channel_type).bind(&r.recipient)
                        .bind(&r.alert_key).bind(&r.state).bind(&r.source).bind(&r.notification).bind(now).bind(now + r.delay_ms)
                        .execute(&mut *tx).await?;
                }
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            n == 1
        });
        Ok(moved)
    }

    /// Escalations still running (repeating, stepping or reminding).
    pub async fn active(&self) -> Result<i64, StoreError> {
        let n = with_pool!(&self.store, pool => {
            sqlx::query("SELECT COUNT(*) AS n FROM escalations WHERE state <> 'done'")
                .fetch_one(pool).await?.try_get::<i64, _>("n")?
        });
        Ok(n)
    }

    /// Deletes ended escalations last changed before `before`.
    pub async fn purge(&self, before: i64) -> Result<u64, StoreError> {
        let n = with_pool!(&self.store, pool => {
            sqlx::query("DELETE FROM escalations WHERE state = 'done' AND updated_at < $1")
                .bind(before).execute(pool).await?.rows_affected()
        });
        Ok(n)
    }
}
