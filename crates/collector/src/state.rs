//! Up/down state per target. A transition is logged and persisted (one row
//! per target, rewritten only on change), so a restarted collector knows
//! since when a target has been down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use pantau_core::store::{Store, StoreError};
use pantau_core::with_pool;
use pantau_proto::v1::{CheckResult, CheckStatus};
use sqlx::Row;

/// A target's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub up: bool,
    pub since: SystemTime,
}

/// A change of a target's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub previous: Option<State>,
    pub current: State,
}

/// States of all targets, backed by the collector's store.
pub struct States {
    store: Store,
    current: Mutex<HashMap<String, State>>,
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl States {
    /// Loads the persisted states.
    pub async fn load(store: Store) -> Result<Self, StoreError> {
        let rows = with_pool!(&store, pool => sqlx::query("SELECT target_id, status, since_ms FROM target_state").fetch_all(pool).await?
            .into_iter()
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1), r.get::<i64, _>(2)))
            .collect::<Vec<_>>());
        let current = rows
            .into_iter()
            .map(|(id, status, since)| {
                let since = UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(since).unwrap_or(0));
                (
                    id,
                    State {
                        up: status == "up",
                        since,
                    },
                )
            })
            .collect();
        Ok(Self {
            store,
            current: Mutex::new(current),
        })
    }

    /// The state of `target_id`, if it was ever checked.
    pub fn get(&self, target_id: &str) -> Option<State> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(target_id)
            .copied()
    }

    /// Records `r`; on a change of state, persists it and returns the transition.
    pub async fn observe(&self, r: &CheckResult, now: SystemTime) -> Result<Option<Transition>, StoreError> {
        let up = r.status() == CheckStatus::Up;
        let previous = {
            let mut map = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let previous = map.get(&r.target_id).copied();
            if previous.is_some_and(|p| p.up == up) {
                return Ok(None);
            }
            map.insert(r.target_id.clone(), State { up, since: now });
            previous
        };
        let reason = r
            .reason()
            .as_str_name()
            .trim_start_matches("FAILURE_REASON_")
            .to_lowercase();
        with_pool!(&self.store, pool => sqlx::query(
            "INSERT INTO target_state (target_id, status, since_ms, reason, message, changed_ms)
             VALUES ($1, $2, $3, $4, $5, $3)
             ON CONFLICT (target_id) DO UPDATE SET status = $2, since_ms = $3, reason = $4, message = $5, changed_ms = $3",
        )
        .bind(&r.target_id)
        .bind(if up { "up" } else { "down" })
        .bind(ms(now))
        .bind(reason)
        .bind(&r.message)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(Some(Transition {
            previous,
            current: State { up, since: now },
        }))
    }
}
