//! The alert engine watching itself: when it last evaluated every rule
//! ([`Progress`], exported as `pantau_alert_engine_last_evaluation_timestamp_seconds`,
//! read by Prometheus' `PantauAlertEngineStalled` and by `/readyz` as
//! `alert_engine.progress`), and the optional always-firing heartbeat to an
//! external dead man's switch ([`run`], `alert_engine.watchdog`), sent only
//! while evaluation goes on, so a Pantau that stopped watching is noticed
//! from outside.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use pantau_config::WatchdogConfig;
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics as m;

/// When the engine last completed a sweep (every rule over every series,
/// stored): the measure of whether it still evaluates.
pub struct Progress {
    started: Instant,
    /// Milliseconds after `started` of the last completed sweep; 0 = none yet.
    last: AtomicU64,
    /// The sweep interval: three of them, at least [`Self::MIN_STALL`], without
    /// a completed sweep is a stall.
    sweep_interval: Duration,
    min_stall: Duration,
}

impl Progress {
    /// The least time without a completed sweep that counts as a stall.
    pub const MIN_STALL: Duration = Duration::from_secs(30);

    /// Progress of an engine that sweeps every `sweep_interval`, starting
    /// now: the exported timestamp is the start until the first sweep, so a
    /// sweep that never happens is a stall after [`Self::stall_after`].
    pub fn new(sweep_interval: Duration) -> Self {
        Self::with_min_stall(sweep_interval, Self::MIN_STALL)
    }

    /// As [`Self::new`] with another least stall than [`Self::MIN_STALL`]
    /// (tests that cannot wait half a minute).
    pub fn with_min_stall(sweep_interval: Duration, min_stall: Duration) -> Self {
        metrics::gauge!(m::LAST_EVALUATION).set(unix_now());
        Self {
            started: Instant::now(),
            last: AtomicU64::new(0),
            sweep_interval,
            min_stall,
        }
    }

    /// A sweep completed now.
    pub fn record(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.last.fetch_max(ms, Ordering::Relaxed);
        metrics::gauge!(m::LAST_EVALUATION).set(unix_now());
    }

    /// How long the engine may go without a completed sweep before it is stalled.
    pub fn stall_after(&self) -> Duration {
        self.sweep_interval.saturating_mul(3).max(self.min_stall)
    }

    /// Time since the last completed sweep (since start when none has).
    pub fn quiet(&self) -> Duration {
        let last = match self.last.load(Ordering::Relaxed) {
            0 => self.started,
            ms => self.started + Duration::from_millis(ms),
        };
        last.elapsed()
    }

    /// `Some(quiet)` when no sweep has completed for longer than [`Self::stall_after`].
    pub fn stalled(&self) -> Option<Duration> {
        let quiet = self.quiet();
        (quiet > self.stall_after()).then_some(quiet)
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `alert_engine.progress` on `/readyz`: 503 naming the stall while no sweep
/// has completed for three sweep intervals (at least 30 s).
pub struct Stall(pub Arc<Progress>);

#[async_trait::async_trait]
impl pantau_core::health::ReadinessCheck for Stall {
    async fn check(&self) -> Result<(), String> {
        match self.0.stalled() {
            Some(quiet) => Err(format!(
                "no rule evaluation has completed for {}s: the alert engine has stalled",
                quiet.as_secs()
            )),
            None => Ok(()),
        }
    }
}

/// The body of a heartbeat: an always-firing alert, as Alertmanager's
/// `Watchdog` is, so a receiver that expects alerts takes it too.
#[derive(Debug, Serialize)]
pub struct Heartbeat<'a> {
    pub status: &'static str,
    pub alertname: &'static str,
    pub instance: &'a str,
    pub location: &'a str,
    /// When the alert engine last evaluated every rule (RFC 3339).
    pub last_evaluation: String,
    pub sent_at: String,
}

/// `heartbeat` label values of [`m::WATCHDOG_HEARTBEATS_TOTAL`].
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";
pub const WITHHELD: &str = "withheld";

/// Sends a heartbeat to `cfg.url` every `cfg.interval` while `progress` is
/// not stalled, until `shutdown`. A stalled engine sends nothing (that
/// silence is what the switch pages on); a refused or failed send is
/// logged and counted, and the next one is tried at the next interval.
pub async fn run(
    cfg: WatchdogConfig,
    url: String,
    progress: Arc<Progress>,
    instance: String,
    location: String,
    shutdown: CancellationToken,
) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(cfg.interval.min(Duration::from_secs(10)))
        .build()
        .unwrap_or_default();
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Some(quiet) = progress.stalled() {
            metrics::counter!(m::WATCHDOG_HEARTBEATS_TOTAL, "result" => WITHHELD).increment(1);
            tracing::warn!(
                quiet_s = quiet.as_secs(),
                "watchdog heartbeat withheld: no rule evaluation has completed"
            );
            continue;
        }
        let now = SystemTime::now();
        let last = now.checked_sub(progress.quiet()).unwrap_or(now);
        let body = Heartbeat {
            status: "firing",
            alertname: "PantauWatchdog",
            instance: &instance,
            location: &location,
            last_evaluation: pantau_core::time::rfc3339(last),
            sent_at: pantau_core::time::rfc3339(now),
        };
        let sent = tokio::select! {
            () = shutdown.cancelled() => break,
            r = http.post(&url).json(&body).send() => r,
        };
        match sent.and_then(reqwest::Response::error_for_status) {
            Ok(_) => {
                metrics::counter!(m::WATCHDOG_HEARTBEATS_TOTAL, "result" => SENT).increment(1);
            }
            Err(e) => {
                metrics::counter!(m::WATCHDOG_HEARTBEATS_TOTAL, "result" => FAILED).increment(1);
                // reqwest's error names the URL, whose path is often the switch's secret.
                let e = e.without_url();
                tracing::warn!(error = %e, "watchdog heartbeat not accepted");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stall_is_no_completed_sweep_for_three_intervals() {
        let p = Progress::new(Duration::from_secs(1));
        assert_eq!(p.stalled(), None);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(p.stalled().is_some(), "no sweep since start");
        p.record();
        assert_eq!(p.stalled(), None);
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(p.stalled(), None, "30 s at the least");
        let slow = Progress::new(Duration::from_secs(60));
        tokio::time::advance(Duration::from_secs(179)).await;
        assert_eq!(slow.stalled(), None, "179 s < 3 × 60 s");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(slow.stalled(), Some(Duration::from_secs(181)));
    }
}
