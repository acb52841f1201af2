//! The interfaces that went down while enabled, persisted in the
//! collector's store (`interface_down`), so a restarted collector keeps
//! firing `interface-down` for them instead of taking "down on the first
//! poll" for "always down" (and resolving the alert). Written only on a
//! change, never per poll.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pantau_core::store::{Store, StoreError};
use pantau_core::with_pool;
use sqlx::Row;

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The interfaces of `router` that went down and are still down.
pub async fn load(store: &Store, router: &str) -> Result<BTreeMap<u32, SystemTime>, StoreError> {
    let rows: Vec<(i64, i64)> = with_pool!(store, pool => sqlx::query("SELECT if_index, since_ms FROM interface_down WHERE router_id = $1")
        .bind(router)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1)))
        .collect());
    Ok(rows
        .into_iter()
        .filter_map(|(idx, since)| {
            let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(since).ok()?);
            Some((u32::try_from(idx).ok()?, at))
        })
        .collect())
}

/// Writes the difference from `before` to `after` in one transaction.
pub async fn save(
    store: &Store,
    router: &str,
    before: &BTreeMap<u32, SystemTime>,
    after: &BTreeMap<u32, SystemTime>,
) -> Result<(), StoreError> {
    let added: Vec<(u32, SystemTime)> = after
        .iter()
        .filter(|(i, _)| !before.contains_key(i))
        .map(|(i, t)| (*i, *t))
        .collect();
    let removed: Vec<u32> = before.keys().filter(|i| !after.contains_key(i)).copied().collect();
    if added.is_empty() && removed.is_empty() {
        return Ok(());
    }
    let done: Result<(), sqlx::Error> = with_pool!(store, pool => async {
        let mut tx = pool.begin().await?;
        for (idx, since) in &added {
            sqlx::query(
                "INSERT INTO interface_down (router_id, if_index, since_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (router_id, if_index) DO UPDATE SET since_ms = $3",
            )
            .bind(router)
            .bind(i64::from(*idx))
            .bind(ms(*since))
            .execute(&mut *tx)
            .await?;
        }
        for idx in &removed {
            sqlx::query("DELETE FROM interface_down WHERE router_id = $1 AND if_index = $2")
                .bind(router)
                .bind(i64::from(*idx))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
    .await);
    Ok(done?)
}
