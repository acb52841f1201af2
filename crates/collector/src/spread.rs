//! When targets are first checked: spread over a window at start so they
//! do not all start in the same instant, at once when added at run time,
//! and a push monitor only once its interval and grace have passed.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::target::{Spec, Target};

/// Longest delay before a target's first check, for small target sets.
pub(crate) const MAX_FIRST_DELAY: Duration = Duration::from_secs(2);
/// First checks started per second at most when many targets start at once
/// (their spread window grows with their number, up to their interval).
const FIRST_CHECKS_PER_SECOND: f64 = 2000.0;

/// When a target added at run time is first checked: at once, but a push
/// monitor only once its interval and grace have passed with no push (it
/// was DOWN "no push received yet" at once before).
pub(crate) fn added_delay(t: &Target) -> Duration {
    match &t.spec {
        Spec::Push { grace, .. } => t.interval.saturating_add(*grace),
        _ => Duration::ZERO,
    }
}

/// When a target is first checked at start: spread over `window`, but a
/// push monitor only once its interval and grace have passed.
pub(crate) fn start_delay(t: &Target, window: Duration) -> Duration {
    match &t.spec {
        Spec::Push { .. } => added_delay(t),
        _ => first_delay(t.id(), t.interval, window),
    }
}

/// How long first checks of `targets` targets are spread over: 2 s for a
/// few, longer for many, so no more than about 2000 start per second.
pub fn spread_window(targets: usize) -> Duration {
    MAX_FIRST_DELAY.max(Duration::from_secs_f64(targets as f64 / FIRST_CHECKS_PER_SECOND))
}

/// Where in `[0, min(interval, window))` a target's first check falls, stable per id.
pub fn first_delay(id: &str, interval: Duration, window: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    let span = interval.min(window);
    let frac = (h.finish() % 10_000) as f64 / 10_000.0;
    span.mul_f64(frac)
}
