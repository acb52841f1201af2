//! The collector's own health: its check error rate over a sliding window.
//! Below `degraded_percent` it is healthy, above `critical_percent` critical,
//! degraded between. Reported as detail on `/readyz` (targets being down is
//! what a monitor is for, so it never makes the collector unready) and as
//! `pantau_collector_health_level` (0, 1, 2) and `…_check_error_ratio`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

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
    pub fn new(cfg: CollectorHealthConfig) -> Self {
        Self {
            cfg,
            seconds: Mutex::new(VecDeque::new()),
        }
    }

    pub fn record(&self, up: bool, now: Instant) {
        let mut s = self.seconds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match s.back_mut() {
            Some((at, checks, failed)) if now.duration_since(*at) < Duration::from_secs(1) => {
                *checks += 1;
                *failed += u64::from(!up);
            }
            _ => s.push_back((now, 1, u64::from(!up))),
        }
        while s
            .front()
            .is_some_and(|(at, _, _)| now.duration_since(*at) > self.cfg.window)
        {
            s.pop_front();
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

#[cfg(test)]
mod tests {
    use super::*;

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
