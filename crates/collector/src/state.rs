//! Up/down state per target. A transition is kept in memory at once and
//! persisted by [`States::write_pending`] (one row per target, rewritten only
//! on change, many changes per transaction), so a restarted collector knows
//! since when a target has been down and checks never wait on the disk.
//!
//! A scheduled target keeps its state in its entry (a [`StateCell`], one
//! word: a map of every target's state by a copy of its id cost about 80
//! bytes a target). The states loaded at start, and those of targets taken
//! off the schedule, are parked here by id until the target's next result.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Most rows written in one transaction: state changes (see
/// [`States::write_pending`]) and history buckets (`History::flush`), so no
/// writer holds SQLite's write lock past the others' busy timeout.
pub const WRITE_CHUNK: usize = 1000;

/// A scheduled target's state in one word: 0 until its first result since
/// it was scheduled, else its start in milliseconds and whether it is up.
#[derive(Debug, Default)]
pub struct StateCell(AtomicU64);

impl StateCell {
    fn encode(s: State) -> u64 {
        // Never 0: the low bit is `up`, the next is always set.
        (u64::try_from(ms(s.since)).unwrap_or(0) << 2) | 0b10 | u64::from(s.up)
    }

    fn decode(v: u64) -> Option<State> {
        (v != 0).then(|| State {
            up: v & 1 == 1,
            since: UNIX_EPOCH + std::time::Duration::from_millis(v >> 2),
        })
    }

    /// The state, once the target has a result (or a parked state) here.
    pub fn get(&self) -> Option<State> {
        Self::decode(self.0.load(Ordering::Acquire))
    }
}

/// States of all targets, backed by the collector's store.
pub struct States {
    store: Store,
    /// States of targets not on the schedule, or not yet checked since they
    /// were put on it: loaded at start, parked at removal; taken by the
    /// target's next result.
    parked: Mutex<HashMap<String, State>>,
    /// Changes not yet written, by target (the newest wins).
    pending: Mutex<HashMap<String, Pending>>,
}

#[derive(Debug, Clone)]
struct Pending {
    up: bool,
    since_ms: i64,
    reason: String,
    message: String,
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
        let parked = rows
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
            parked: Mutex::new(parked),
            pending: Mutex::default(),
        })
    }

    /// The parked state of `target_id`: loaded at start or kept when it
    /// left the schedule, until its next result.
    pub fn get(&self, target_id: &str) -> Option<State> {
        self.parked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(target_id)
            .copied()
    }

    /// Keeps the state of `target_id`, taken off the schedule (or replaced),
    /// for its next result.
    pub fn park(&self, target_id: &str, cell: &StateCell) {
        if let Some(s) = cell.get() {
            self.parked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(target_id.to_owned(), s);
        }
    }

    /// Records `r` in its target's `cell`; on a change of state, queues it
    /// for writing and returns the transition. A cell's first result starts
    /// from the target's parked state, if it has one.
    pub fn observe(&self, cell: &StateCell, r: &CheckResult, now: SystemTime) -> Option<Transition> {
        let up = r.status() == CheckStatus::Up;
        let mut seen = cell.0.load(Ordering::Acquire);
        if seen == 0 {
            let parked = self
                .parked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&r.target_id);
            if let Some(p) = parked {
                let p = StateCell::encode(p);
                seen = match cell.0.compare_exchange(0, p, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => p,
                    Err(other) => other,
                };
            }
        }
        let new = StateCell::encode(State { up, since: now });
        let previous = loop {
            let previous = StateCell::decode(seen);
            if previous.is_some_and(|p| p.up == up) {
                return None;
            }
            match cell.0.compare_exchange(seen, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break previous,
                Err(other) => seen = other,
            }
        };
        let reason = r
            .reason()
            .as_str_name()
            .trim_start_matches("FAILURE_REASON_")
            .to_lowercase();
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                r.target_id.clone(),
                Pending {
                    up,
                    since_ms: ms(now),
                    reason,
                    message: r.message.clone(),
                },
            );
        Some(Transition {
            previous,
            current: State { up, since: now },
        })
    }

    /// Writes the queued changes, [`WRITE_CHUNK`] to a transaction; on
    /// failure what was not written stays queued (newer changes of the same
    /// target replace it). Returns how many were written.
    ///
    /// Chunks keep each transaction short: after 100,000 targets' first
    /// checks one transaction of every change held SQLite's only write lock
    /// for seconds, and the collector's other writers (history, traffic)
    /// timed out on it with "database is locked".
    pub async fn write_pending(&self) -> Result<usize, StoreError> {
        let batch: Vec<(String, Pending)> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
                .into_iter()
                .collect();
        let mut written = 0;
        let mut rest = batch.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<(String, Pending)> = rest.by_ref().take(WRITE_CHUNK).collect();
            if let Err(e) = self.write_chunk(&chunk).await {
                let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for (id, p) in chunk.into_iter().chain(rest) {
                    pending.entry(id).or_insert(p);
                }
                return Err(e.into());
            }
            written += chunk.len();
        }
        Ok(written)
    }

    async fn write_chunk(&self, chunk: &[(String, Pending)]) -> Result<(), sqlx::Error> {
        with_pool!(&self.store, pool => async {
            let mut tx = pool.begin().await?;
            for (id, p) in chunk {
                sqlx::query(
                    "INSERT INTO target_state (target_id, status, since_ms, reason, message, changed_ms)
                     VALUES ($1, $2, $3, $4, $5, $3)
                     ON CONFLICT (target_id) DO UPDATE SET status = $2, since_ms = $3, reason = $4, message = $5, changed_ms = $3",
                )
                .bind(id)
                .bind(if p.up { "up" } else { "down" })
                .bind(p.since_ms)
                .bind(&p.reason)
                .bind(&p.message)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }
        .await)
    }
}
