//! Paused targets: their scheduled checks are skipped until they are
//! resumed. Kept in memory for the scheduler's per-check look-up and in the
//! store so a pause outlives a restart; the store is written first, so an
//! answered pause is never lost.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pantau_core::store::{Store, StoreError};
use pantau_core::time::to_timestamp;
use pantau_core::with_pool;
use pantau_proto::v1;
use sqlx::Row;

/// Longest reason, in characters.
pub const MAX_REASON: usize = 500;
/// Longest `by` kept (an audit name), in characters.
const MAX_BY: usize = 200;

/// Why and since when a target is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub since: SystemTime,
    pub by: String,
    pub reason: String,
}

impl Pause {
    pub fn to_proto(&self) -> v1::Pause {
        v1::Pause {
            since: Some(to_timestamp(self.since)),
            by: self.by.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// A reason refused, naming the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`reason` is {0} characters long; at most {MAX_REASON} are accepted")]
pub struct ReasonTooLong(pub usize);

/// Checks a pause reason: at most [`MAX_REASON`] characters, control
/// characters other than newlines replaced.
pub fn reason(raw: &str) -> Result<String, ReasonTooLong> {
    let n = raw.chars().count();
    if n > MAX_REASON {
        return Err(ReasonTooLong(n));
    }
    Ok(raw
        .trim()
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect())
}

/// The paused targets.
pub struct Pauses {
    store: Store,
    map: RwLock<HashMap<String, Pause>>,
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Pauses {
    /// Every stored pause.
    pub async fn load(store: Store) -> Result<Self, StoreError> {
        let rows = with_pool!(&store, pool => sqlx::query(
            "SELECT target_id, since_ms, paused_by, reason FROM paused_targets",
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| {
            let since = UNIX_EPOCH + Duration::from_millis(r.get::<i64, _>(1).max(0) as u64);
            (r.get::<String, _>(0), Pause { since, by: r.get(2), reason: r.get(3) })
        })
        .collect::<HashMap<_, _>>());
        Ok(Self {
            store,
            map: RwLock::new(rows),
        })
    }

    pub fn get(&self, id: &str) -> Option<Pause> {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    pub fn is_paused(&self, id: &str) -> bool {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pauses `id` (replacing an earlier pause's reason and author, keeping
    /// its start).
    pub async fn pause(&self, id: &str, by: &str, reason: String) -> Result<Pause, StoreError> {
        // In whole milliseconds, as stored, so a restart reads the same time.
        let now = || UNIX_EPOCH + Duration::from_millis(ms(SystemTime::now()) as u64);
        let since = self.get(id).map_or_else(now, |p| p.since);
        let p = Pause {
            since,
            by: by.chars().take(MAX_BY).collect(),
            reason,
        };
        with_pool!(&self.store, pool => sqlx::query(
            "INSERT INTO paused_targets (target_id, since_ms, paused_by, reason) VALUES ($1, $2, $3, $4)
             ON CONFLICT (target_id) DO UPDATE SET paused_by = $3, reason = $4",
        )
        .bind(id)
        .bind(ms(p.since))
        .bind(&p.by)
        .bind(&p.reason)
        .execute(pool)
        .await
        .map(|_| ())?);
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned(), p.clone());
        Ok(p)
    }

    /// Resumes `id`; says whether it was paused.
    pub async fn resume(&self, id: &str) -> Result<bool, StoreError> {
        let n = with_pool!(&self.store, pool => sqlx::query("DELETE FROM paused_targets WHERE target_id = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        let was = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id)
            .is_some();
        Ok(n > 0 || was)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_bounded_and_cleaned() {
        assert_eq!(reason("  switch swap\u{0}\tnight  ").unwrap(), "switch swap  night");
        assert_eq!(reason(&"é".repeat(MAX_REASON)).unwrap().chars().count(), MAX_REASON);
        let e = reason(&"x".repeat(MAX_REASON + 1)).unwrap_err();
        assert_eq!(e, ReasonTooLong(MAX_REASON + 1));
        assert!(e.to_string().starts_with("`reason` is 501 characters"));
    }
}
