//! Persistence of alerts, their transitions (the audit trail) and the rules
//! created through the API, in SQLite or PostgreSQL through one portable SQL.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pantau_config::AlertRuleConfig;
use pantau_core::store::{Store, StoreError};
use pantau_core::with_pool;
use sqlx::Row;

use crate::lifecycle::{Alert, Change, State, Transition};
use crate::silence::Silence;

/// Which alerts to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Any of these; empty means all.
    pub states: Vec<State>,
    /// Any of these (`info`, `warning`, `critical`); empty means all.
    pub severities: Vec<String>,
    pub source: Option<String>,
    pub resource: Option<String>,
    pub rule_id: Option<String>,
    pub acknowledged: Option<bool>,
    /// Started at or after.
    pub since: Option<SystemTime>,
    /// Started before.
    pub until: Option<SystemTime>,
    pub limit: u32,
    pub offset: u64,
}

/// Most alerts one page may hold.
pub const MAX_PAGE: u32 = 500;
/// Page size when none is asked for.
pub const DEFAULT_PAGE: u32 = 50;

/// The alert engine's tables.
#[derive(Debug, Clone)]
pub struct AlertStore {
    store: Store,
}

pub(crate) fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

enum Bind {
    Text(String),
    Int(i64),
}

/// A WHERE clause under construction, with `$n` bind parameters.
#[derive(Default)]
struct Where {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Where {
    fn push(&mut self, clause: &str, b: Bind) {
        self.binds.push(b);
        self.clauses
            .push(clause.replace('?', &format!("${}", self.binds.len())));
    }

    fn any_of(&mut self, col: &str, values: &[String]) {
        let mut ph = Vec::new();
        for v in values {
            self.binds.push(Bind::Text(v.clone()));
            ph.push(format!("${}", self.binds.len()));
        }
        self.clauses.push(format!("{col} IN ({})", ph.join(", ")));
    }
}

const COLUMNS: &str = "id, fingerprint, rule_id, rule_name, state, severity, summary, labels, source, resource, value, \
     started_ms, updated_ms, acknowledged_ms, acknowledged_by, acknowledge_comment, resolved_ms, resolved_by, \
     suppressed_by, notified";

macro_rules! alert_from_row {
    ($r:expr) => {{
        let r = $r;
        let labels: String = r.try_get("labels")?;
        let state: String = r.try_get("state")?;
        Alert {
            id: r.try_get("id")?,
            fingerprint: r.try_get("fingerprint")?,
            rule_id: r.try_get("rule_id")?,
            rule_name: r.try_get("rule_name")?,
            state: State::parse(&state).unwrap_or(State::Resolved),
            severity: r.try_get("severity")?,
            summary: r.try_get("summary")?,
            labels: serde_json::from_str(&labels).unwrap_or_default(),
            source: r.try_get("source")?,
            resource: r.try_get("resource")?,
            value: r.try_get("value")?,
            started_at: time(r.try_get("started_ms")?),
            updated_at: time(r.try_get("updated_ms")?),
            acknowledged_at: r.try_get::<Option<i64>, _>("acknowledged_ms")?.map(time),
            acknowledged_by: r.try_get("acknowledged_by")?,
            acknowledge_comment: r.try_get("acknowledge_comment")?,
            resolved_at: r.try_get::<Option<i64>, _>("resolved_ms")?.map(time),
            resolved_by: r.try_get("resolved_by")?,
            suppressed_by: r.try_get("suppressed_by")?,
            notified: r.try_get::<i64, _>("notified")? != 0,
            restored: false,
        }
    }};
}

impl AlertStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn inner(&self) -> &Store {
        &self.store
    }

    /// Writes an alert's new state and its transition, atomically.
    pub async fn record(&self, c: &Change) -> Result<(), StoreError> {
        self.record_all(std::slice::from_ref(c), &[]).await
    }

    /// Writes alerts' new states, their transitions and what they do to
    /// incidents in one transaction: all of it or nothing (one commit for a
    /// whole evaluation, so 10,000 children held by one parent cost one
    /// fsync, not 10,000).
    pub async fn record_all(&self, changes: &[Change], writes: &[crate::incident::Write]) -> Result<(), StoreError> {
        if changes.is_empty() && writes.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO alerts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, summary = excluded.summary, value = excluded.value, \
             updated_ms = excluded.updated_ms, acknowledged_ms = excluded.acknowledged_ms, \
             acknowledged_by = excluded.acknowledged_by, acknowledge_comment = excluded.acknowledge_comment, \
             resolved_ms = excluded.resolved_ms, resolved_by = excluded.resolved_by, \
             suppressed_by = excluded.suppressed_by, notified = excluded.notified"
        );
        with_pool!(&self.store, pool => {
            let mut tx = pool.begin().await?;
            for c in changes {
                let a = &c.alert;
                let t = &c.transition;
                let labels = serde_json::to_string(&a.labels).unwrap_or_else(|_| "{}".to_owned());
                sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(&a.id)
                    .bind(&a.fingerprint)
                    .bind(&a.rule_id)
                    .bind(&a.rule_name)
                    .bind(a.state.as_str())
                    .bind(&a.severity)
                    .bind(&a.summary)
                    .bind(&labels)
                    .bind(&a.source)
                    .bind(&a.resource)
                    .bind(&a.value)
                    .bind(ms(a.started_at))
                    .bind(ms(a.updated_at))
                    .bind(a.acknowledged_at.map(ms))
                    .bind(&a.acknowledged_by)
                    .bind(&a.acknowledge_comment)
                    .bind(a.resolved_at.map(ms))
                    .bind(&a.resolved_by)
                    .bind(&a.suppressed_by)
                    .bind(i64::from(a.notified))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO alert_transitions (alert_id, state, at_ms, actor, comment) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&t.alert_id)
                    .bind(t.state.as_str())
                    .bind(ms(t.at))
                    .bind(&t.actor)
                    .bind(&t.comment)
                    .execute(&mut *tx)
                    .await?;
            }
            for w in writes {
                crate::incident::store::write_incident!(tx, w);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// One alert.
    pub async fn get(&self, id: &str) -> Result<Option<Alert>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM alerts WHERE id = $1");
        let found = with_pool!(&self.store, pool => {
            match sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await? {
                Some(r) => Some(alert_from_row!(r)),
                None => None,
            }
        });
        Ok(found)
    }

    /// An alert's transitions, oldest first.
    pub async fn transitions(&self, id: &str) -> Result<Vec<Transition>, StoreError> {
        let rows = with_pool!(&self.store, pool => {
            let mut out = Vec::new();
            for r in sqlx::query("SELECT alert_id, state, at_ms, actor, comment FROM alert_transitions WHERE alert_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(pool)
                .await?
            {
                let state: String = r.try_get("state")?;
                out.push(Transition {
                    alert_id: r.try_get("alert_id")?,
                    state: State::parse(&state).unwrap_or(State::Resolved),
                    at: time(r.try_get("at_ms")?),
                    actor: r.try_get("actor")?,
                    comment: r.try_get("comment")?,
                });
            }
            out
        });
        Ok(rows)
    }

    /// Alerts matching `f`, newest first, and whether more follow.
    pub async fn list(&self, f: &Filter) -> Result<(Vec<Alert>, bool), StoreError> {
        let mut w = Where::default();
        if !f.states.is_empty() {
            let states: Vec<String> = f.states.iter().map(|s| s.as_str().to_owned()).collect();
            w.any_of("state", &states);
        }
        if !f.severities.is_empty() {
            w.any_of("severity", &f.severities);
        }
        if let Some(s) = &f.source {
            w.push("source = ?", Bind::Text(s.clone()));
        }
        if let Some(r) = &f.resource {
            w.push("resource = ?", Bind::Text(r.clone()));
        }
        if let Some(r) = &f.rule_id {
            w.push("rule_id = ?", Bind::Text(r.clone()));
        }
        match f.acknowledged {
            Some(true) => w.clauses.push("acknowledged_ms IS NOT NULL".into()),
            Some(false) => w.clauses.push("acknowledged_ms IS NULL".into()),
            None => {}
        }
        if let Some(t) = f.since {
            w.push("started_ms >= ?", Bind::Int(ms(t)));
        }
        if let Some(t) = f.until {
            w.push("started_ms < ?", Bind::Int(ms(t)));
        }
        let Where { clauses, binds } = w;
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
            "SELECT {COLUMNS} FROM alerts {filter} ORDER BY started_ms DESC, id DESC LIMIT {} OFFSET {}",
            i64::from(limit) + 1,
            f.offset.min(i64::MAX as u64)
        );
        let mut alerts = with_pool!(&self.store, pool => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for b in &binds {
                q = match b {
                    Bind::Text(s) => q.bind(s.as_str()),
                    Bind::Int(i) => q.bind(*i),
                };
            }
            let mut out = Vec::new();
            for r in q.fetch_all(pool).await? {
                out.push(alert_from_row!(r));
            }
            out
        });
        let more = alerts.len() > limit as usize;
        alerts.truncate(limit as usize);
        Ok((alerts, more))
    }

    /// Open alerts, and alerts resolved after `resolved_since` (their cooldown may still run).
    pub async fn load_for_restore(&self, resolved_since: SystemTime) -> Result<Vec<Alert>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM alerts WHERE state <> 'resolved' OR resolved_ms >= $1");
        let rows = with_pool!(&self.store, pool => {
            let mut out = Vec::new();
            for r in sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(ms(resolved_since)).fetch_all(pool).await? {
                out.push(alert_from_row!(r));
            }
            out
        });
        Ok(rows)
    }

    /// Deletes resolved alerts (and their transitions) resolved before `cutoff`.
    pub async fn prune(&self, cutoff: SystemTime) -> Result<u64, StoreError> {
        let n = with_pool!(&self.store, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM alert_transitions WHERE alert_id IN (SELECT id FROM alerts WHERE state = 'resolved' AND resolved_ms < $1)")
                .bind(ms(cutoff))
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query("DELETE FROM alerts WHERE state = 'resolved' AND resolved_ms < $1")
                .bind(ms(cutoff))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n)
    }

    /// Rules created through the API.
    pub async fn rules(&self) -> Result<Vec<AlertRuleConfig>, StoreError> {
        let rows: Vec<(String, String)> = with_pool!(&self.store, pool => {
            let mut out = Vec::new();
            for r in sqlx::query("SELECT id, config FROM alert_rules ORDER BY id").fetch_all(pool).await? {
                out.push((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?));
            }
            out
        });
        let mut out = Vec::new();
        for (id, json) in rows {
            match serde_json::from_str(&json) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(rule = %id, error = %e, "skipping a stored rule that does not decode"),
            }
        }
        Ok(out)
    }

    /// Creates or replaces an API rule.
    pub async fn put_rule(&self, rule: &AlertRuleConfig, now: SystemTime) -> Result<(), StoreError> {
        let json = serde_json::to_string(rule).unwrap_or_else(|_| "{}".to_owned());
        with_pool!(&self.store, pool => { sqlx::query(
            "INSERT INTO alert_rules (id, config, updated_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET config = excluded.config, updated_ms = excluded.updated_ms",
        )
        .bind(&rule.id)
        .bind(&json)
        .bind(ms(now))
        .execute(pool)
        .await?; });
        Ok(())
    }

    /// Deletes an API rule; whether it existed.
    pub async fn delete_rule(&self, id: &str) -> Result<bool, StoreError> {
        let n = with_pool!(&self.store, pool => sqlx::query("DELETE FROM alert_rules WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n > 0)
    }
}

impl AlertStore {
    /// Records whether an open alert notifies, without a transition.
    pub async fn set_delivery(&self, a: &Alert) -> Result<(), StoreError> {
        with_pool!(&self.store, pool => {
            sqlx::query("UPDATE alerts SET suppressed_by = $1, notified = $2 WHERE id = $3")
                .bind(&a.suppressed_by)
                .bind(i64::from(a.notified))
                .bind(&a.id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Stores a new or changed silence.
    pub async fn put_silence(&self, s: &Silence) -> Result<(), StoreError> {
        let matchers = serde_json::to_string(&s.matchers).unwrap_or_else(|_| "[]".to_owned());
        with_pool!(&self.store, pool => {
            sqlx::query(
                "INSERT INTO alert_silences (id, matchers, starts_ms, ends_ms, created_by, comment, created_ms, repeat_ms, repeat_until_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (id) DO UPDATE SET ends_ms = excluded.ends_ms, repeat_until_ms = excluded.repeat_until_ms",
            )
            .bind(&s.id)
            .bind(&matchers)
            .bind(ms(s.starts_at))
            .bind(ms(s.ends_at))
            .bind(&s.created_by)
            .bind(&s.comment)
            .bind(ms(s.created_at))
            .bind(s.repeat_every.map_or(0, |d| d.as_millis() as i64))
            .bind(s.repeat_until.map(ms))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Silences that end at or after `ends_after`, soonest start first.
    pub async fn silences(&self, ends_after: SystemTime) -> Result<Vec<Silence>, StoreError> {
        let rows = with_pool!(&self.store, pool => {
            let mut out = Vec::new();
            for r in sqlx::query(
                "SELECT id, matchers, starts_ms, ends_ms, created_by, comment, created_ms, repeat_ms, repeat_until_ms \
                 FROM alert_silences WHERE (repeat_ms = 0 AND ends_ms >= $1) \
                 OR (repeat_ms > 0 AND (repeat_until_ms IS NULL OR repeat_until_ms >= $1)) ORDER BY starts_ms, id",
            )
            .bind(ms(ends_after))
            .fetch_all(pool)
            .await?
            {
                let matchers: String = r.try_get("matchers")?;
                out.push(Silence {
                    id: r.try_get("id")?,
                    matchers: serde_json::from_str(&matchers).unwrap_or_default(),
                    starts_at: time(r.try_get("starts_ms")?),
                    ends_at: time(r.try_get("ends_ms")?),
                    created_by: r.try_get("created_by")?,
                    comment: r.try_get("comment")?,
                    created_at: time(r.try_get("created_ms")?),
                    repeat_every: match r.try_get::<i64, _>("repeat_ms")? {
                        0 => None,
                        n => Some(Duration::from_millis(u64::try_from(n).unwrap_or(0))),
                    },
                    repeat_until: r.try_get::<Option<i64>, _>("repeat_until_ms")?.map(time),
                });
            }
            out
        });
        Ok(rows)
    }

    /// Deletes silences that ended before `cutoff`.
    pub async fn prune_silences(&self, cutoff: SystemTime) -> Result<u64, StoreError> {
        let n = with_pool!(&self.store, pool => sqlx::query(
            "DELETE FROM alert_silences WHERE (repeat_ms = 0 AND ends_ms < $1) OR (repeat_ms > 0 AND repeat_until_ms < $1)",
        )
            .bind(ms(cutoff))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n)
    }
}
