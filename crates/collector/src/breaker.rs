//! A circuit breaker per target, with exponential backoff while failing.
//!
//! - Closed: checks run. A failure schedules the next check sooner, after
//!   1 s, 2 s, 4 s … (capped at 30 s and at the interval), to confirm it;
//!   `failure_threshold` consecutive failures open the breaker.
//! - Open: no probes; at each scheduled check the target is still reported
//!   DOWN ("circuit open"), never silently dropped. After `recovery_timeout`
//!   it turns half-open.
//! - Half-open: up to `half_open_max_calls` trial checks; a success closes
//!   the breaker, a failure opens it again.
//!
//! Time is tokio's, so tests drive it with `tokio::time::pause`.

use std::sync::Arc;
use std::time::Duration;

use pantau_config::CircuitBreakerConfig;
use pantau_proto::v1::BreakerState;
use tokio::time::Instant;

/// Longest backoff between confirming checks.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Whether a due check may probe the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Probe,
    /// Open: report down without probing, until `retry_at`.
    Reject {
        retry_at: Instant,
    },
}

/// One target's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    /// The configuration's, shared by every target.
    cfg: Arc<CircuitBreakerConfig>,
    state: BreakerState,
    failures: u32,
    opened_at: Option<Instant>,
    trials: u32,
}

impl Breaker {
    pub fn new(cfg: impl Into<Arc<CircuitBreakerConfig>>) -> Self {
        Self {
            cfg: cfg.into(),
            state: BreakerState::Closed,
            failures: 0,
            opened_at: None,
            trials: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// Decides a due check at `now`.
    pub fn admit(&mut self, now: Instant) -> Admit {
        match self.state {
            BreakerState::Open => {
                let retry_at = self.opened_at.unwrap_or(now) + self.cfg.recovery_timeout;
                if now >= retry_at {
                    self.state = BreakerState::HalfOpen;
                    self.trials = 1;
                    Admit::Probe
                } else {
                    Admit::Reject { retry_at }
                }
            }
            BreakerState::HalfOpen => {
                if self.trials < self.cfg.half_open_max_calls {
                    self.trials += 1;
                    Admit::Probe
                } else {
                    Admit::Reject { retry_at: now }
                }
            }
            BreakerState::Closed | BreakerState::Unspecified => Admit::Probe,
        }
    }

    /// Records a probe's outcome; returns how soon to check again when that
    /// should be sooner than the interval (backoff while confirming a failure).
    pub fn record(&mut self, success: bool, now: Instant) -> Option<Duration> {
        match self.state {
            BreakerState::HalfOpen => {
                self.trials = self.trials.saturating_sub(1);
                if success {
                    self.close();
                } else {
                    self.open(now);
                }
                None
            }
            BreakerState::Open => None,
            BreakerState::Closed | BreakerState::Unspecified => {
                if success {
                    self.failures = 0;
                    return None;
                }
                self.failures = self.failures.saturating_add(1);
                if !self.cfg.enabled {
                    return None;
                }
                if self.failures >= self.cfg.failure_threshold {
                    self.open(now);
                    None
                } else {
                    Some(backoff(self.failures))
                }
            }
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open;
        self.opened_at = Some(now);
        self.trials = 0;
    }

    fn close(&mut self) {
        self.state = BreakerState::Closed;
        self.failures = 0;
        self.opened_at = None;
        self.trials = 0;
    }
}

/// 1 s, 2 s, 4 s … after the n-th consecutive failure, capped at 30 s.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(5);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// The metric value of a state: 0 closed, 1 half-open, 2 open.
pub fn gauge(state: BreakerState) -> f64 {
    match state {
        BreakerState::Open => 2.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Closed | BreakerState::Unspecified => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CircuitBreakerConfig {
        CircuitBreakerConfig {
            enabled: true,
            failure_threshold: 5,
            recovery_timeout: Duration::from_secs(60),
            half_open_max_calls: 3,
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b: Vec<u64> = (1..=7).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(b, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn a_disabled_breaker_never_opens_nor_backs_off() {
        let mut b = Breaker::new(CircuitBreakerConfig {
            enabled: false,
            ..cfg()
        });
        let now = Instant::now();
        for _ in 0..50 {
            assert_eq!(b.admit(now), Admit::Probe);
            assert_eq!(b.record(false, now), None);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 50);
    }

    #[tokio::test(start_paused = true)]
    async fn full_cycle() {
        let mut b = Breaker::new(cfg());
        let t0 = Instant::now();
        for n in 1..5 {
            assert_eq!(b.admit(Instant::now()), Admit::Probe);
            assert_eq!(b.record(false, Instant::now()), Some(backoff(n)));
            assert_eq!(b.state(), BreakerState::Closed);
        }
        // The fifth consecutive failure opens it.
        assert_eq!(b.admit(Instant::now()), Admit::Probe);
        assert_eq!(b.record(false, Instant::now()), None);
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(
            b.admit(Instant::now()),
            Admit::Reject {
                retry_at: t0 + Duration::from_secs(60)
            }
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        // Half-open: three trials at most.
        assert_eq!(b.admit(Instant::now()), Admit::Probe);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.admit(Instant::now()), Admit::Probe);
        assert_eq!(b.admit(Instant::now()), Admit::Probe);
        assert!(matches!(b.admit(Instant::now()), Admit::Reject { .. }));
        // A failed trial opens it again, for another recovery timeout.
        b.record(false, Instant::now());
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(b.admit(Instant::now()), Admit::Probe);
        // A successful trial closes it and forgets the failures.
        b.record(true, Instant::now());
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 0);
        assert_eq!(b.record(false, Instant::now()), Some(Duration::from_secs(1)));
    }

    #[test]
    fn success_resets_the_count() {
        let mut b = Breaker::new(cfg());
        let now = Instant::now();
        for _ in 0..4 {
            b.record(false, now);
        }
        b.record(true, now);
        for _ in 0..4 {
            b.record(false, now);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
