//! Incidents in SQL: the `incidents`, `incident_alerts` and
//! `incident_entries` tables of the alert engine's store (migration
//! `0003_incidents.sql`), written with the alert transitions that change
//! them ([`write_incident!`] inside [`AlertStore::record_all`]).

use std::time::SystemTime;

use pantau_core::store::StoreError;
use pantau_core::with_pool;
use sqlx::Row;

use super::{Entry, EntryKind, Incident, IncidentState, MAX_DETAIL, Write};
use crate::lifecycle::Alert;
use crate::store::{AlertStore, DEFAULT_PAGE, MAX_PAGE, ms, time};

/// Which incidents to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentFilter {
    /// Any of these; empty means all.
    pub states: Vec<IncidentState>,
    /// Opened at or after.
    pub since: Option<SystemTime>,
    pub limit: u32,
    pub offset: u64,
}

pub(crate) const INCIDENT_COLUMNS: &str = "id, group_key, root_cause, title, state, severity, opened_ms, updated_ms, \
     joined_ms, acknowledged_ms, acknowledged_by, resolved_ms, alerts, open_alerts";

/// Writes one [`Write`] in the transaction `$tx` (a `&mut` transaction of
/// either backend).
macro_rules! write_incident {
    ($tx:expr, $w:expr) => {{
        let w: &$crate::incident::Write = $w;
        $crate::incident::store::write_incident_row!($tx, w);
        for e in &w.entries {
            sqlx::query(
                "INSERT INTO incident_entries (incident_id, kind, at_ms, actor, alert_id, text) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&w.incident.id)
            .bind(e.kind.as_str())
            .bind($crate::store::ms(e.at))
            .bind(&e.actor)
            .bind(&e.alert_id)
            .bind(&e.text)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}
pub(crate) use write_incident;

/// Writes one [`Write`]'s incident row and member (not its entries) in the
/// transaction `$tx`.
macro_rules! write_incident_row {
    ($tx:expr, $w:expr) => {{
        let w: &$crate::incident::Write = $w;
        let i = &w.incident;
        sqlx::query(
            "INSERT INTO incidents (id, group_key, root_cause, title, state, severity, opened_ms, updated_ms, \
             joined_ms, acknowledged_ms, acknowledged_by, resolved_ms, alerts, open_alerts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, state = excluded.state, \
             severity = excluded.severity, updated_ms = excluded.updated_ms, joined_ms = excluded.joined_ms, \
             acknowledged_ms = excluded.acknowledged_ms, acknowledged_by = excluded.acknowledged_by, \
             resolved_ms = excluded.resolved_ms, alerts = excluded.alerts, open_alerts = excluded.open_alerts",
        )
        .bind(&i.id)
        .bind(&i.group_key)
        .bind(&i.root_cause)
        .bind(&i.title)
        .bind(i.state.as_str())
        .bind(&i.severity)
        .bind($crate::store::ms(i.opened_at))
        .bind($crate::store::ms(i.updated_at))
        .bind($crate::store::ms(i.joined_at))
        .bind(i.acknowledged_at.map($crate::store::ms))
        .bind(&i.acknowledged_by)
        .bind(i.resolved_at.map($crate::store::ms))
        .bind(i64::from(i.alerts))
        .bind(i64::from(i.open_alerts))
        .execute(&mut *$tx)
        .await?;
        match &w.member {
            Some($crate::incident::Member::Join { alert_id, at }) => {
                sqlx::query(
                    "INSERT INTO incident_alerts (incident_id, alert_id, joined_ms, left_ms) VALUES ($1, $2, $3, NULL) \
                     ON CONFLICT (incident_id, alert_id) DO UPDATE SET left_ms = NULL",
                )
                .bind(&i.id)
                .bind(alert_id)
                .bind($crate::store::ms(*at))
                .execute(&mut *$tx)
                .await?;
            }
            Some($crate::incident::Member::Leave { alert_id, at }) => {
                sqlx::query("UPDATE incident_alerts SET left_ms = $1 WHERE incident_id = $2 AND alert_id = $3")
                    .bind($crate::store::ms(*at))
                    .bind(&i.id)
                    .bind(alert_id)
                    .execute(&mut *$tx)
                    .await?;
            }
            None => {}
        }
    }};
}
pub(crate) use write_incident_row;

macro_rules! incident_from_row {
    ($r:expr) => {{
        let r = $r;
        let state: String = r.try_get("state")?;
        Incident {
            id: r.try_get("id")?,
            group_key: r.try_get("group_key")?,
            root_cause: r.try_get("root_cause")?,
            title: r.try_get("title")?,
            state: IncidentState::parse(&state).unwrap_or(IncidentState::Open),
            severity: r.try_get("severity")?,
            opened_at: time(r.try_get("opened_ms")?),
            updated_at: time(r.try_get("updated_ms")?),
            joined_at: time(r.try_get("joined_ms")?),
            acknowledged_at: r.try_get::<Option<i64>, _>("acknowledged_ms")?.map(time),
            acknowledged_by: r.try_get("acknowledged_by")?,
            resolved_at: r.try_get::<Option<i64>, _>("resolved_ms")?.map(time),
            alerts: u32::try_from(r.try_get::<i64, _>("alerts")?).unwrap_or(u32::MAX),
            open_alerts: u32::try_from(r.try_get::<i64, _>("open_alerts")?).unwrap_or(u32::MAX),
        }
    }};
}

impl AlertStore {
    /// Stores incident changes that come with no alert transition (a comment).
    pub async fn write_incidents(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.record_all(&[], writes).await
    }

    /// Writes `w` whose one entry has the key `key` (unique per incident),
    /// in one transaction; `false`, and nothing written, when an entry with
    /// that key is there already.
    pub async fn write_keyed(&self, w: &Write, key: &str) -> Result<bool, StoreError> {
        let Some(e) = w.entries.first() else {
            return Ok(false);
        };
        let fresh = with_pool!(self.inner(), pool => {
            let mut tx = pool.begin().await?;
            // The row first: the entry refers to it.
            write_incident_row!(tx, w);
            let n = sqlx::query(
                "INSERT INTO incident_entries (incident_id, kind, at_ms, actor, alert_id, text, entry_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(&w.incident.id)
            .bind(e.kind.as_str())
            .bind(ms(e.at))
            .bind(&e.actor)
            .bind(&e.alert_id)
            .bind(&e.text)
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            n == 1
        });
        Ok(fresh)
    }

    /// The incident alert `alert_id` joined (the latest, if it joined more
    /// than one), resolved or not.
    pub async fn incident_of_alert(&self, alert_id: &str) -> Result<Option<String>, StoreError> {
        let found = with_pool!(self.inner(), pool => {
            match sqlx::query(
                "SELECT incident_id FROM incident_alerts WHERE alert_id = $1 ORDER BY joined_ms DESC, incident_id DESC LIMIT 1",
            )
            .bind(alert_id)
            .fetch_optional(pool)
            .await?
            {
                Some(r) => Some(r.try_get::<String, _>(0)?),
                None => None,
            }
        });
        Ok(found)
    }

    /// Incidents not resolved, for a restart.
    pub async fn open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE state <> 'resolved'");
        let rows = with_pool!(self.inner(), pool => {
            let mut out = Vec::new();
            for r in sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(pool).await? {
                out.push(incident_from_row!(r));
            }
            out
        });
        Ok(rows)
    }

    /// (incident id, alert id) of every member still open of an open incident.
    pub async fn open_members(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = with_pool!(self.inner(), pool => {
            let mut out = Vec::new();
            for r in sqlx::query(
                "SELECT m.incident_id, m.alert_id FROM incident_alerts m JOIN incidents i ON i.id = m.incident_id \
                 WHERE m.left_ms IS NULL AND i.state <> 'resolved'",
            )
            .fetch_all(pool)
            .await?
            {
                out.push((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?));
            }
            out
        });
        Ok(rows)
    }

    /// One incident.
    pub async fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1");
        let found = with_pool!(self.inner(), pool => {
            match sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await? {
                Some(r) => Some(incident_from_row!(r)),
                None => None,
            }
        });
        Ok(found)
    }

    /// The first [`MAX_DETAIL`] alerts that joined incident `id`, in order.
    pub async fn incident_members(&self, id: &str) -> Result<Vec<Alert>, StoreError> {
        let ids: Vec<String> = with_pool!(self.inner(), pool => {
            let mut out = Vec::new();
            for r in sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT alert_id FROM incident_alerts WHERE incident_id = $1 ORDER BY joined_ms, alert_id LIMIT {MAX_DETAIL}"
            )))
            .bind(id)
            .fetch_all(pool)
            .await?
            {
                out.push(r.try_get::<String, _>(0)?);
            }
            out
        });
        let mut out = Vec::with_capacity(ids.len());
        for a in ids {
            // An alert past retention is gone; the count keeps it.
            if let Some(alert) = self.get(&a).await? {
                out.push(alert);
            }
        }
        Ok(out)
    }

    /// The latest [`MAX_DETAIL`] entries of incident `id`'s timeline, oldest first.
    pub async fn incident_timeline(&self, id: &str) -> Result<Vec<Entry>, StoreError> {
        let mut rows = with_pool!(self.inner(), pool => {
            let mut out = Vec::new();
            for r in sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT kind, at_ms, actor, alert_id, text FROM incident_entries WHERE incident_id = $1 \
                 ORDER BY id DESC LIMIT {MAX_DETAIL}"
            )))
            .bind(id)
            .fetch_all(pool)
            .await?
            {
                let kind: String = r.try_get("kind")?;
                let Some(kind) = EntryKind::parse(&kind) else {
                    tracing::warn!(incident = %id, kind = %kind, "skipping a timeline entry of no known kind");
                    continue;
                };
                out.push(Entry {
                    kind,
                    at: time(r.try_get("at_ms")?),
                    actor: r.try_get("actor")?,
                    alert_id: r.try_get("alert_id")?,
                    text: r.try_get("text")?,
                });
            }
            out
        });
        rows.reverse();
        Ok(rows)
    }

    /// Incidents matching `f`, newest first, and whether more follow.
    pub async fn list_incidents(&self, f: &IncidentFilter) -> Result<(Vec<Incident>, bool), StoreError> {
        let mut clauses = Vec::new();
        let mut texts: Vec<&'static str> = Vec::new();
        if !f.states.is_empty() {
            let mut ph = Vec::new();
            for s in &f.states {
                texts.push(s.as_str());
                ph.push(format!("${}", texts.len()));
            }
            clauses.push(format!("state IN ({})", ph.join(", ")));
        }
        if f.since.is_some() {
            clauses.push(format!("opened_ms >= ${}", texts.len() + 1));
        }
        let limit = if f.limit == 0 {
            DEFAULT_PAGE
        } else {
            f.limit.min(MAX_PAGE)
        };
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents {filter} ORDER BY opened_ms DESC, id DESC LIMIT {} OFFSET {}",
            i64::from(limit) + 1,
            f.offset.min(i64::MAX as u64)
        );
        let mut found = with_pool!(self.inner(), pool => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for t in &texts {
                q = q.bind(*t);
            }
            if let Some(s) = f.since {
                q = q.bind(ms(s));
            }
            let mut out = Vec::new();
            for r in q.fetch_all(pool).await? {
                out.push(incident_from_row!(r));
            }
            out
        });
        let more = found.len() > limit as usize;
        found.truncate(limit as usize);
        Ok((found, more))
    }

    /// Deletes resolved incidents (their members and timeline) resolved before `cutoff`.
    pub async fn prune_incidents(&self, cutoff: SystemTime) -> Result<u64, StoreError> {
        let n = with_pool!(self.inner(), pool => {
            let mut tx = pool.begin().await?;
            for table in ["incident_entries", "incident_alerts"] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE incident_id IN \
                     (SELECT id FROM incidents WHERE state = 'resolved' AND resolved_ms < $1)"
                )))
                .bind(ms(cutoff))
                .execute(&mut *tx)
                .await?;
            }
            let n = sqlx::query("DELETE FROM incidents WHERE state = 'resolved' AND resolved_ms < $1")
                .bind(ms(cutoff))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n)
    }
}
