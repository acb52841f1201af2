//! The maintenance windows the collector applies: `maintenance[]` of the
//! configuration and those made through the API, which the alert engine
//! owns and publishes whole ([`pb::MaintenanceSnapshot`]) on
//! `pantau.maintenance.<changed|deleted|snapshot>.<token>`.
//!
//! How the collector learns them ([`follow`]): a live subscription to
//! `pantau.maintenance.>`, then a request on
//! `pantau.maintenance.wanted.<instance>`, which the alert engine answers
//! with a snapshot (it also publishes one at its start and every 30 s).
//! Each snapshot carries a strictly increasing revision; an older one than
//! the last applied is ignored. So a collector started before the alert
//! engine, after it, or after the stream forgot the last change has every
//! window within one request (or at worst 30 s), and a change reaches it at
//! once. An API window is applied exactly as a configured one: the
//! scheduler skips (or keeps out of the history) the targets it covers, the
//! router pollers pause.

use std::sync::{Arc, RwLock};

use futures::StreamExt;
use pantau_config::MaintenanceWindow;
use pantau_core::bus::{Bus, Subscription, decode, publish_encoded, subject};
use pantau_proto::v1 as pb;
use tokio_util::sync::CancellationToken;

/// How far ahead of this clock a snapshot's revision may be (clock skew).
const MAX_AHEAD_MS: i64 = 86_400_000;

/// The windows in force: the configured ones, then the API's.
#[derive(Debug)]
pub struct Windows {
    config: Vec<MaintenanceWindow>,
    state: RwLock<State>,
}

#[derive(Debug)]
struct State {
    revision: i64,
    current: Arc<[MaintenanceWindow]>,
}

impl Windows {
    /// The configured windows only, until a snapshot arrives.
    pub fn new(config: Vec<MaintenanceWindow>) -> Arc<Self> {
        let current = Arc::from(config.clone());
        Arc::new(Self {
            config,
            state: RwLock::new(State {
                revision: i64::MIN,
                current,
            }),
        })
    }

    /// Every window in force now (cheap: one `Arc`).
    pub fn current(&self) -> Arc<[MaintenanceWindow]> {
        Arc::clone(
            &self
                .state
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .current,
        )
    }

    /// The revision of the API windows applied (`i64::MIN`: none yet).
    pub fn revision(&self) -> i64 {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .revision
    }

    /// Takes the API windows of `snap` unless an equal or later revision
    /// was applied; a window that does not parse, or has a configured
    /// window's id, is skipped (logged). Whether it was applied.
    pub fn apply(&self, snap: &pb::MaintenanceSnapshot) -> bool {
        // A revision is the alert engine's clock (ms); one far ahead of ours
        // would hold every later snapshot back: refused.
        let now_ms = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(i64::MAX);
        if snap.revision > now_ms.saturating_add(MAX_AHEAD_MS) {
            tracing::warn!(
                revision = snap.revision,
                "ignoring a maintenance snapshot from more than a day ahead"
            );
            return false;
        }
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if snap.revision <= state.revision {
            return false;
        }
        let mut all = self.config.clone();
        for p in &snap.windows {
            match pantau_config::maintenance_api::from_proto(p) {
                Ok(w) if self.config.iter().any(|c| c.id == w.id) => {
                    tracing::warn!(window = %w.id, "an API maintenance window has a configured window's id: the configured one applies");
                }
                Ok(w) => all.push(w),
                Err(e) => tracing::warn!(error = %e, "skipping a maintenance window that does not parse"),
            }
        }
        let api = all.len() - self.config.len();
        state.revision = snap.revision;
        state.current = Arc::from(all);
        drop(state);
        tracing::debug!(
            revision = snap.revision,
            windows = api,
            "maintenance windows from the API applied"
        );
        true
    }
}

/// Follows the alert engine's maintenance snapshots until `shutdown` (see
/// the module): subscribes, asks for a snapshot as `instance`, applies each
/// one. Ends with an error when the subscription ends, for its supervisor
/// to subscribe and ask again.
pub async fn follow(
    windows: Arc<Windows>,
    bus: Arc<dyn Bus>,
    instance: String,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let mut sub = bus
        .subscribe(Subscription::live(subject::ALL_MAINTENANCE))
        .await
        .map_err(|e| format!("cannot subscribe to {}: {e}", subject::ALL_MAINTENANCE))?;
    let wanted = subject::maintenance("wanted", &subject::instance_token(&instance));
    if let Err(e) = publish_encoded(bus.as_ref(), &wanted, bytes::Bytes::new()).await {
        // The alert engine's next periodic snapshot carries them.
        tracing::warn!(error = %e, "cannot ask for the maintenance windows; waiting for the next snapshot");
    }
    loop {
        let msg = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            m = sub.next() => m,
        };
        let Some(msg) = msg else {
            return Err("the subscription to maintenance windows ended".to_owned());
        };
        if msg.subject.starts_with("pantau.maintenance.wanted.") {
            continue;
        }
        // A message that does not decode is counted and logged by `decode`.
        if let Some(snap) = decode::<pb::MaintenanceSnapshot>(&msg) {
            windows.apply(&snap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(json: &str) -> MaintenanceWindow {
        pantau_config::maintenance_api::from_json(json.as_bytes()).unwrap()
    }

    fn snap(revision: i64, windows: &[MaintenanceWindow]) -> pb::MaintenanceSnapshot {
        pb::MaintenanceSnapshot {
            windows: windows.iter().map(pantau_config::maintenance_api::to_proto).collect(),
            revision,
            instance: "a".into(),
        }
    }

    #[test]
    fn the_latest_snapshot_wins_and_configured_ids_stay() {
        let config =
            window(r#"{"id":"cfg","start":"2026-12-05T02:00:00Z","end":"2026-12-05T04:00:00Z","targets":["x"]}"#);
        let api = window(r#"{"id":"api","cron":"0 2 * * *","duration":"1h","targets":["web"]}"#);
        let clash = window(r#"{"id":"cfg","cron":"0 3 * * *","duration":"1h","targets":["other"]}"#);
        let w = Windows::new(vec![config.clone()]);
        assert_eq!(w.current().len(), 1);
        assert!(w.apply(&snap(10, &[api.clone(), clash])));
        let ids: Vec<String> = w.current().iter().map(|w| w.id.clone()).collect();
        assert_eq!(ids, ["cfg", "api"]);
        assert_eq!(w.current()[0], config, "the configured window is not replaced");
        assert!(!w.apply(&snap(9, &[])), "an older snapshot is ignored");
        assert_eq!(w.current().len(), 2);
        assert!(w.apply(&snap(11, &[])), "a deletion");
        assert_eq!(w.current().len(), 1);
        // A hostile window in a snapshot is skipped, not applied as a default.
        let mut bad = pantau_config::maintenance_api::to_proto(&api);
        bad.checks = 99;
        let mut s = snap(12, &[]);
        s.windows.push(bad);
        assert!(w.apply(&s));
        assert_eq!(w.current().len(), 1);
        // A revision from far ahead would block every later one: refused.
        assert!(!w.apply(&snap(i64::MAX, std::slice::from_ref(&api))));
        assert!(w.apply(&snap(13, &[api])));
        assert_eq!(w.current().len(), 2);
    }
}
