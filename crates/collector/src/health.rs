//! The collector's own health: its check error rate over a sliding window.
//! Below `degraded_percent` it is healthy, above `critical_percent` critical,
//! degraded between. Reported as detail on `/readyz` (targets being down is
//! what a monitor is for, so it never makes the collector unready) and as
//! `pantau_collector_health_level` (0, 1, 2) and `…_check_error_ratio`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use pantau_config::CollectorHealthConfig;
use tokio::time::Instant;

use crate::metrics as m;

/// Per-second counts of checks and failures over the window.
pub struct ErrorRate {
    cfg: CollectorHealthConfig,
    seconds: Mutex<VecDeque<(Instant, u64, u64)>>,
}

/// The health level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Healthy,
    Degraded,
    Critical,
}

impl ErrorRate {
    /// A rate with no checks yet: healthy, and its gauges say so from the
    /// first scrape.
    pub fn new(cfg: CollectorHealthConfig) -> Self {
        let r = Self {
            cfg,
            seconds: Mutex::new(VecDeque::new()),
        };
        let _ = r.level(Instant::now());
        r
    }

    /// Counts a completed check; the level gauges follow at most once a
    /// second (when a new second starts), not only when readiness is asked.
    pub fn record(&self, up: bool, now: Instant) {
        let mut s = self.seconds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let new_second = match s.back_mut() {
            Some((at, checks, failed)) if now.duration_since(*at) < Duration::from_secs(1) => {
                *checks += 1;
                *failed += u64::from(!up);
                false
            }
            _ => {
                s.push_back((now, 1, u64::from(!up)));
                true
            }
        };
        while s
            .front()
            .is_some_and(|(at, _, _)| now.duration_since(*at) > self.cfg.window)
        {
            s.pop_front();
        }
        drop(s);
        if new_second {
            let _ = self.level(now);
        }
    }

    /// Error percentage over the window (0 without checks) and the level.
    pub fn level(&self, now: Instant) -> (f64, Level) {
        let s = self.seconds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (checks, failed) = s
            .iter()
            .filter(|(at, _, _)| now.duration_since(*at) <= self.cfg.window)
            .fold((0, 0), |(c, f), (_, c2, f2)| (c + c2, f + f2));
        let pct = if checks == 0 {
            0.0
        } else {
            failed as f64 * 100.0 / checks as f64
        };
        let level = if pct > self.cfg.critical_percent {
            Level::Critical
        } else if pct >= self.cfg.degraded_percent {
            Level::Degraded
        } else {
            Level::Healthy
        };
        metrics::gauge!(m::HEALTH_LEVEL).set(match level {
            Level::Healthy => 0.0,
            Level::Degraded => 1.0,
            Level::Critical => 2.0,
        });
        metrics::gauge!(m::ERROR_RATIO).set(pct / 100.0);
        (pct, level)
    }
}

#[async_trait::async_trait]
impl pantau_core::health::ReadinessCheck for ErrorRate {
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }

    async fn level(&self) -> pantau_core::health::Level {
        match self.level(Instant::now()).1 {
            Level::Healthy => pantau_core::health::Level::Ok,
            Level::Degraded => pantau_core::health::Level::Degraded,
            Level::Critical => pantau_core::health::Level::Critical,
        }
    }

    async fn detail(&self) -> Option<String> {
        let (pct, level) = self.level(Instant::now());
        let word = match level {
            Level::Healthy => "healthy",
            Level::Degraded => "degraded",
            Level::Critical => "critical",
        };
        Some(format!(
            "{word}: {pct:.1}% of checks failed in the last {}s",
            self.cfg.window.as_secs()
        ))
    }
}

/// Whether checking itself goes on: when the last check completed. With
/// targets to check and none completed for [`Progress::stall_after`] the
/// collector is not ready (`collector.progress` on `/readyz`), whatever the
/// cause (a stuck scheduler, a pool that took no work, a clock jump).
pub struct Progress {
    started: Instant,
    /// Milliseconds after `started` of the last completed check; 0 = none yet.
    last: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            last: AtomicU64::new(0),
        }
    }
}

impl Progress {
    /// The least time without a completed check that counts as a stall.
    pub const MIN_STALL: Duration = Duration::from_secs(30);

    /// A check completed now.
    pub fn record(&self, now: Instant) {
        let ms = u64::try_from(now.duration_since(self.started).as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.last.fetch_max(ms, Ordering::Relaxed);
        let unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        metrics::gauge!(m::LAST_CHECK).set(unix);
    }

    /// How long checking may pause before it is a stall: three of the
    /// shortest interval, at least [`Self::MIN_STALL`].
    pub fn stall_after(shortest_interval: Duration) -> Duration {
        shortest_interval.saturating_mul(3).max(Self::MIN_STALL)
    }

    /// How long no check has completed (since start when none has), when
    /// that is a stall for targets whose shortest interval is `shortest`.
    pub fn stalled(&self, now: Instant, shortest: Option<Duration>) -> Option<Duration> {
        let shortest = shortest?;
        let last = match self.last.load(Ordering::Relaxed) {
            0 => self.started,
            ms => self.started + Duration::from_millis(ms),
        };
        let quiet = now.saturating_duration_since(last);
        (quiet > Self::stall_after(shortest)).then_some(quiet)
    }
}

/// `collector.progress` on `/readyz`: 503 naming the stall while targets
/// exist and no check has completed for three of the shortest interval.
pub struct Stall(pub std::sync::Arc<crate::scheduler::Collector>);

#[async_trait::async_trait]
impl pantau_core::health::ReadinessCheck for Stall {
    async fn check(&self) -> Result<(), String> {
        match self.0.stalled() {
            Some(quiet) => Err(format!(
                "no check has completed for {}s although targets exist: checking has stalled",
                quiet.as_secs()
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stall_is_no_completed_check_for_three_intervals() {
        let p = Progress::default();
        let second = Some(Duration::from_secs(1));
        assert_eq!(p.stalled(Instant::now(), second), None);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(
            p.stalled(Instant::now(), second).is_some(),
            "nothing completed since start"
        );
        assert_eq!(p.stalled(Instant::now(), None), None, "no targets, nothing to stall");
        p.record(Instant::now());
        assert_eq!(p.stalled(Instant::now(), second), None);
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(p.stalled(Instant::now(), second), None, "30 s at the least");
        let minute = Some(Duration::from_secs(60));
        tokio::time::advance(Duration::from_secs(150)).await;
        assert_eq!(p.stalled(Instant::now(), minute), None, "170 s < 3 × 60 s");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(p.stalled(Instant::now(), minute), Some(Duration::from_secs(181)));
    }

    #[tokio::test(start_paused = true)]
    async fn levels_follow_the_error_rate_over_the_window() {
        let r = ErrorRate::new(CollectorHealthConfig::default());
        for i in 0..1000 {
            r.record(i % 50 != 0, Instant::now());
        }
        assert_eq!(r.level(Instant::now()), (2.0, Level::Degraded));
        for _ in 0..100 {
            r.record(false, Instant::now());
        }
        assert_eq!(r.level(Instant::now()).1, Level::Critical);
        tokio::time::advance(Duration::from_secs(301)).await;
        r.record(true, Instant::now());
        assert_eq!(r.level(Instant::now()), (0.0, Level::Healthy));
    }
}
