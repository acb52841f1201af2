//! What happened at each router, for the console's router page: reboots,
//! counter resets, interfaces going up or down, the router stopping or
//! starting to answer, and WAN detections, taken from the bus by the feed
//! (`pantau.event.<kind>.<router>`; `traffic` and metric events are not
//! kept). Bounded: the newest [`PER_ROUTER`] events of at most
//! [`MAX_ROUTERS`] routers.
//!
//! Kept in memory for the pages and, once [`Timeline::persist`] ran, in the
//! gateway's store (table `router_events`, the protobuf `RouterEvent`,
//! written by the supervised task `timeline`, the newest [`PER_ROUTER`] per
//! router): a restarted gateway shows the timeline it had.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock, RwLock};

use pantau_core::service::Context;
use pantau_core::store::{Store, StoreError};
use pantau_core::with_pool;
use pantau_proto::prost::Message as _;
use pantau_proto::v1::RouterEvent;
use sqlx::Row as _;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use crate::labels::EventKind;
use crate::view::RouterEventView;

/// Events kept per router (the oldest goes first).
pub const PER_ROUTER: usize = 100;
/// Routers kept; events of further routers are not kept.
pub const MAX_ROUTERS: usize = 10_000;
/// The largest event kept, encoded (a router's events are a few hundred
/// bytes; anything larger on the bus is not one the collector made).
pub const MAX_EVENT_BYTES: usize = 4096;
/// Events waiting for the store; beyond it an event is kept in memory only
/// (and that is logged).
const QUEUE: usize = 4096;

/// Each router's recent events, oldest first.
#[derive(Debug, Default)]
pub struct Timeline {
    by_router: RwLock<HashMap<String, VecDeque<RouterEventView>>>,
    /// To the store's writer, once [`Timeline::persist`] ran.
    store: OnceLock<mpsc::Sender<(String, RouterEvent)>>,
}

/// The router an event belongs to, if it is one the timeline keeps: the
/// collector names it in the `router` attribute; the WAN detector's events
/// are about the router itself.
fn router_of(e: &RouterEventView) -> Option<&str> {
    match e.kind {
        EventKind::Reboot
        | EventKind::CounterReset
        | EventKind::InterfaceUp
        | EventKind::InterfaceDown
        | EventKind::TargetUp
        | EventKind::TargetDown => e.attributes.get("router").map(String::as_str),
        EventKind::WanDetected => Some(e.attributes.get("router").unwrap_or(&e.source).as_str()),
        _ => None,
    }
}

impl Timeline {
    /// Keeps `e` (whose view is `view`) if it is a router's event (see the
    /// module's doc), and stores it when the timeline is persisted.
    pub fn keep(&self, e: &RouterEvent, view: &RouterEventView) {
        let Some(router) = router_of(view) else { return };
        if e.encoded_len() > MAX_EVENT_BYTES {
            tracing::debug!(bytes = e.encoded_len(), "not keeping an oversized router event");
            return;
        }
        if !self.remember(router, view.clone()) {
            return;
        }
        if let Some(tx) = self.store.get()
            && let Err(err) = tx.try_send((router.to_owned(), e.clone()))
        {
            tracing::warn!(router, error = %err, "a router event is kept in memory only: its store is behind");
        }
    }

    /// Adds `e` to `router`'s events; false when the router is one too many.
    fn remember(&self, router: &str, e: RouterEventView) -> bool {
        let mut map = self
            .by_router
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_ROUTERS && !map.contains_key(router) {
            return false;
        }
        let events = map.entry(router.to_owned()).or_default();
        if events.len() >= PER_ROUTER {
            events.pop_front();
        }
        events.push_back(e);
        true
    }

    /// `router`'s kept events, newest first.
    pub fn of(&self, router: &str) -> Vec<RouterEventView> {
        let map = self.by_router.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(router)
            .map(|v| v.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// Loads what `store` kept and, from now on, writes each kept event there
    /// (the supervised task `timeline` of `ctx`). Once per timeline.
    pub async fn persist(&self, store: &Store, ctx: &Context) -> Result<(), StoreError> {
        for (router, bytes) in load(store).await? {
            match RouterEvent::decode(&bytes[..]) {
                Ok(e) => {
                    self.remember(&router, RouterEventView::from(&e));
                }
                Err(err) => {
                    tracing::warn!(%router, error = %err, "skipping a stored router event that does not decode");
                }
            }
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        if self.store.set(tx).is_err() {
            return Ok(());
        }
        let rx = Arc::new(Mutex::new(rx));
        let (store, stop) = (store.clone(), ctx.shutdown.clone());
        ctx.spawn_supervised("timeline", move || write(Arc::clone(&rx), store.clone(), stop.clone()));
        Ok(())
    }
}

/// Every stored event, oldest first.
async fn load(store: &Store) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let limit = (PER_ROUTER * MAX_ROUTERS) as i64;
    Ok(with_pool!(store, pool => {
        sqlx::query("SELECT router, event FROM router_events ORDER BY seq LIMIT $1")
            .bind(limit)
            .fetch_all(pool)
            .await
            .map_err(StoreError::Query)?
            .into_iter()
            .map(|r| (r.get::<String, _>(0), r.get::<Vec<u8>, _>(1)))
            .collect()
    }))
}

/// Stores one event and forgets its router's beyond the newest [`PER_ROUTER`].
async fn insert(store: &Store, router: &str, e: &RouterEvent) -> Result<(), sqlx::Error> {
    let bytes = e.encode_to_vec();
    with_pool!(store, pool => {
        sqlx::query("INSERT INTO router_events (router, event) VALUES ($1, $2)")
            .bind(router)
            .bind(&bytes)
            .execute(pool)
            .await?;
        sqlx::query(
            "DELETE FROM router_events WHERE router = $1 AND seq NOT IN \
             (SELECT seq FROM router_events WHERE router = $1 ORDER BY seq DESC LIMIT $2)",
        )
        .bind(router)
        .bind(PER_ROUTER as i64)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// The writer: stores events as they come, and what is queued when `stop`
/// is cancelled; a failure is logged and the event stays in memory only
/// (the store's readiness says it is down).
async fn write(rx: Arc<Mutex<mpsc::Receiver<(String, RouterEvent)>>>, store: Store, stop: CancellationToken) {
    let mut rx = rx.lock().await;
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => break,
            next = rx.recv() => next,
        };
        let Some((router, e)) = next else { return };
        store_one(&store, &router, &e).await;
    }
    while let Ok((router, e)) = rx.try_recv() {
        store_one(&store, &router, &e).await;
    }
}

async fn store_one(store: &Store, router: &str, e: &RouterEvent) {
    if let Err(err) = insert(store, router, e).await {
        tracing::warn!(%router, error = %err, "cannot store a router event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Severity;

    fn keep(t: &Timeline, v: &RouterEventView) {
        t.keep(&RouterEvent::default(), v);
    }

    fn event(kind: EventKind, router: Option<&str>, n: usize) -> RouterEventView {
        RouterEventView {
            id: format!("e{n}"),
            kind,
            source: "src".into(),
            occurred_at: None,
            severity: Severity::Info,
            message: format!("event {n}"),
            attributes: router
                .map(|r| ("router".to_owned(), r.to_owned()))
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn keeps_router_events_newest_first_and_bounded() {
        let t = Timeline::default();
        for n in 0..PER_ROUTER + 5 {
            keep(&t, &event(EventKind::CounterReset, Some("r1"), n));
        }
        let kept = t.of("r1");
        assert_eq!(kept.len(), PER_ROUTER);
        assert_eq!(kept[0].id, format!("e{}", PER_ROUTER + 4));
        assert_eq!(kept[PER_ROUTER - 1].id, "e5");
        assert!(t.of("r2").is_empty());
    }

    #[test]
    fn skips_traffic_and_events_of_no_router() {
        let t = Timeline::default();
        keep(&t, &event(EventKind::Traffic, Some("r1"), 1));
        keep(&t, &event(EventKind::TargetDown, None, 2));
        keep(&t, &event(EventKind::MetricsUpdate, Some("r1"), 3));
        assert!(t.of("r1").is_empty());
        keep(&t, &event(EventKind::WanDetected, None, 4));
        assert_eq!(t.of("src").len(), 1, "a WAN detection is about its source");
    }

    #[test]
    fn oversized_events_are_not_kept() {
        let t = Timeline::default();
        let huge = RouterEvent {
            message: "x".repeat(MAX_EVENT_BYTES),
            ..RouterEvent::default()
        };
        t.keep(&huge, &event(EventKind::Reboot, Some("r1"), 1));
        assert!(t.of("r1").is_empty());
    }

    #[test]
    fn routers_beyond_the_bound_are_not_kept() {
        let t = Timeline::default();
        for n in 0..MAX_ROUTERS {
            keep(&t, &event(EventKind::Reboot, Some(&format!("r{n}")), n));
        }
        keep(&t, &event(EventKind::Reboot, Some("one-too-many"), 0));
        assert!(t.of("one-too-many").is_empty());
        keep(&t, &event(EventKind::Reboot, Some("r0"), 1));
        assert_eq!(t.of("r0").len(), 2, "a known router still gets its events");
    }
}
