//! Cross-location consensus: per target and check window, the latest result
//! of each location folds into an aggregate (locations total/successful,
//! latency avg/min/max) and a status UP, DOWN or PARTIAL.
//!
//! - UP: every location that reported saw the target up.
//! - DOWN: at least `quorum` locations saw it down; the quorum is the
//!   target's `quorum` (N of M) or, by default, a majority of the locations
//!   that reported (`total / 2 + 1`).
//! - PARTIAL: some locations saw it down, fewer than the quorum.

use std::time::Duration;

use pantau_proto::v1::ConsensusStatus;

/// One location's latest result in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationResult {
    pub location: String,
    pub up: bool,
    pub latency: Duration,
}

/// What the locations agree on.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub status: ConsensusStatus,
    pub total: u32,
    pub successful: u32,
    pub quorum: u32,
    pub latency_avg: Duration,
    pub latency_min: Duration,
    pub latency_max: Duration,
    /// Locations that saw the target down, sorted.
    pub down: Vec<String>,
}

/// The quorum for `total` reporting locations: `configured` (capped at
/// `total`, so a target seen by fewer locations than its quorum can still be
/// DOWN when all of them agree) or a majority.
pub fn quorum(configured: Option<u32>, total: u32) -> u32 {
    match configured {
        Some(n) if n > 0 => n.min(total.max(1)),
        _ => total / 2 + 1,
    }
}

/// Folds the locations' results; `None` when no location reported.
#[tracing::instrument(name = "sync.consensus.compute", level = "info", skip_all, fields(locations = results.len()))]
pub fn aggregate(results: &[LocationResult], configured_quorum: Option<u32>) -> Option<Aggregate> {
    if results.is_empty() {
        return None;
    }
    let total = results.len() as u32;
    let successful = results.iter().filter(|r| r.up).count() as u32;
    let mut down: Vec<String> = results.iter().filter(|r| !r.up).map(|r| r.location.clone()).collect();
    down.sort();
    let q = quorum(configured_quorum, total);
    let down_count = total - successful;
    let status = if down_count == 0 {
        ConsensusStatus::Up
    } else if down_count >= q {
        ConsensusStatus::Down
    } else {
        ConsensusStatus::Partial
    };
    let sum: Duration = results.iter().map(|r| r.latency).sum();
    Some(Aggregate {
        status,
        total,
        successful,
        quorum: q,
        latency_avg: sum / total,
        latency_min: results.iter().map(|r| r.latency).min().unwrap_or_default(),
        latency_max: results.iter().map(|r| r.latency).max().unwrap_or_default(),
        down,
    })
}

/// The start (ms since the epoch) of the window holding `at_ms`.
pub fn window_start(at_ms: i64, window: Duration) -> i64 {
    let w = window.as_millis().max(1) as i64;
    at_ms.div_euclid(w) * w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(location: &str, up: bool, ms: u64) -> LocationResult {
        LocationResult {
            location: location.into(),
            up,
            latency: Duration::from_millis(ms),
        }
    }

    #[test]
    fn all_up_is_up_with_latency_figures() {
        let a = aggregate(&[r("jkt", true, 10), r("bdg", true, 30), r("sby", true, 20)], None).unwrap();
        assert_eq!(a.status, ConsensusStatus::Up);
        assert_eq!((a.total, a.successful, a.quorum), (3, 3, 2));
        assert_eq!(a.latency_avg, Duration::from_millis(20));
        assert_eq!(a.latency_min, Duration::from_millis(10));
        assert_eq!(a.latency_max, Duration::from_millis(30));
        assert!(a.down.is_empty());
    }

    #[test]
    fn majority_decides_down_and_a_minority_is_partial() {
        let down = aggregate(&[r("jkt", false, 5), r("bdg", false, 5), r("sby", true, 5)], None).unwrap();
        assert_eq!(down.status, ConsensusStatus::Down);
        assert_eq!(down.down, ["bdg", "jkt"]);
        let partial = aggregate(&[r("jkt", false, 5), r("bdg", true, 5), r("sby", true, 5)], None).unwrap();
        assert_eq!(partial.status, ConsensusStatus::Partial);
        assert_eq!(partial.successful, 2);
        // Two locations split evenly: one down is not a majority of two.
        let split = aggregate(&[r("jkt", false, 5), r("bdg", true, 5)], None).unwrap();
        assert_eq!(split.status, ConsensusStatus::Partial);
        let alone = aggregate(&[r("jkt", false, 5)], None).unwrap();
        assert_eq!(alone.status, ConsensusStatus::Down);
    }

    #[test]
    fn n_of_m_quorum() {
        // Two of three must agree: one is PARTIAL, two are DOWN.
        let one = aggregate(&[r("a", false, 1), r("b", true, 1), r("c", true, 1)], Some(2)).unwrap();
        assert_eq!(one.status, ConsensusStatus::Partial);
        assert_eq!(one.quorum, 2);
        let two = aggregate(&[r("a", false, 1), r("b", false, 1), r("c", true, 1)], Some(2)).unwrap();
        assert_eq!(two.status, ConsensusStatus::Down);
        // Quorum 1: any location down pages.
        let any = aggregate(&[r("a", false, 1), r("b", true, 1), r("c", true, 1)], Some(1)).unwrap();
        assert_eq!(any.status, ConsensusStatus::Down);
        // Quorum 3 of 5: three down is DOWN, two is PARTIAL.
        let five = |downs: usize| {
            let v: Vec<_> = (0..5).map(|i| r(&format!("l{i}"), i >= downs, 1)).collect();
            aggregate(&v, Some(3)).unwrap().status
        };
        assert_eq!(five(2), ConsensusStatus::Partial);
        assert_eq!(five(3), ConsensusStatus::Down);
        // A quorum above the locations that reported is capped at them.
        assert_eq!(quorum(Some(3), 2), 2);
        assert!(aggregate(&[], None).is_none());
    }

    #[test]
    fn windows_align() {
        let w = Duration::from_secs(60);
        assert_eq!(window_start(125_000, w), 120_000);
        assert_eq!(window_start(120_000, w), 120_000);
        assert_eq!(window_start(119_999, w), 60_000);
    }
}
