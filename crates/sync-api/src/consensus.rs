//! Cross-location consensus: per target and check window, the latest result
//! of each location folds into an aggregate (locations total/reporting/
//! stale/successful, latency avg/min/max) and a status UP, DOWN or PARTIAL.
//!
//! The locations are those *known* for the target: the ones that reported
//! in this window and the stale ones, which reported it in an earlier
//! window (within `sync.retention`, their instance not removed) but not in
//! this one. A stale location counts with its last result, marked stale:
//! a location that stops reporting never turns a DOWN into PARTIAL or UP.
//!
//! - UP: no known location saw the target down.
//! - DOWN: at least `quorum` locations saw it down; the quorum is the
//!   target's `quorum` (N of M) or, by default, a majority of the known
//!   locations (`known / 2 + 1`). A configured quorum above the known
//!   locations is not capped: DOWN cannot be reached, and the aggregate
//!   says so (`quorum_unreachable`).
//! - PARTIAL: some locations saw it down, fewer than the quorum.

use std::time::Duration;

use pantau_proto::v1::ConsensusStatus;

/// One location's latest result in a window (or before it, when stale).
#[derive(Debug, Clone, PartialEq)]
pub struct LocationResult {
    pub location: String,
    pub up: bool,
    pub latency: Duration,
    /// No result in this window: this is the location's last one.
    pub stale: bool,
}

/// What the locations agree on.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub status: ConsensusStatus,
    /// Known locations: reporting and stale.
    pub total: u32,
    pub reporting: u32,
    pub successful: u32,
    pub quorum: u32,
    /// The configured quorum is larger than the known locations.
    pub quorum_unreachable: bool,
    /// Latency of the reporting locations.
    pub latency_avg: Duration,
    pub latency_min: Duration,
    pub latency_max: Duration,
    /// Locations that saw the target down, sorted.
    pub down: Vec<String>,
    /// Stale locations, sorted.
    pub stale: Vec<String>,
}

/// The quorum for `known` locations, and whether it is out of reach:
/// `configured` as it is (never capped) or a majority.
pub fn quorum(configured: Option<u32>, known: u32) -> (u32, bool) {
    match configured {
        Some(n) if n > 0 => (n, n > known),
        _ => (known / 2 + 1, false),
    }
}

/// Folds the locations' results; `None` when no location reported in the
/// window (stale ones alone decide nothing).
#[tracing::instrument(name = "sync.consensus.compute", level = "info", skip_all, fields(locations = results.len()))]
pub fn aggregate(results: &[LocationResult], configured_quorum: Option<u32>) -> Option<Aggregate> {
    let fresh: Vec<&LocationResult> = results.iter().filter(|r| !r.stale).collect();
    if fresh.is_empty() {
        return None;
    }
    let total = results.len() as u32;
    let successful = results.iter().filter(|r| r.up).count() as u32;
    let sorted = |keep: fn(&LocationResult) -> bool| {
        let mut v: Vec<String> = results.iter().filter(|r| keep(r)).map(|r| r.location.clone()).collect();
        v.sort();
        v
    };
    let (q, quorum_unreachable) = quorum(configured_quorum, total);
    let down_count = total - successful;
    let status = if down_count == 0 {
        ConsensusStatus::Up
    } else if down_count >= q {
        ConsensusStatus::Down
    } else {
        ConsensusStatus::Partial
    };
    let sum: Duration = fresh.iter().map(|r| r.latency).sum();
    Some(Aggregate {
        status,
        total,
        reporting: fresh.len() as u32,
        successful,
        quorum: q,
        quorum_unreachable,
        latency_avg: sum / fresh.len() as u32,
        latency_min: fresh.iter().map(|r| r.latency).min().unwrap_or_default(),
        latency_max: fresh.iter().map(|r| r.latency).max().unwrap_or_default(),
        down: sorted(|r| !r.up),
        stale: sorted(|r| r.stale),
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
            stale: false,
        }
    }

    fn stale(location: &str, up: bool) -> LocationResult {
        LocationResult {
            stale: true,
            ..r(location, up, 999)
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
        assert!(aggregate(&[], None).is_none());
    }

    #[test]
    fn a_quorum_above_the_known_locations_is_reported_not_capped() {
        assert_eq!(quorum(Some(3), 2), (3, true));
        assert_eq!(quorum(Some(2), 2), (2, false));
        let a = aggregate(&[r("a", false, 1), r("b", false, 1)], Some(3)).unwrap();
        assert_eq!(
            a.status,
            ConsensusStatus::Partial,
            "two of a quorum of three is not DOWN"
        );
        assert!(a.quorum_unreachable);
        assert_eq!(a.quorum, 3);
    }

    #[test]
    fn a_location_that_stops_reporting_is_stale_and_never_clears_a_down() {
        // DOWN 2 of 3; the location that saw it up dies: still DOWN.
        let a = aggregate(&[r("a", false, 1), r("b", false, 1), stale("c", true)], None).unwrap();
        assert_eq!(a.status, ConsensusStatus::Down);
        assert_eq!((a.total, a.reporting, a.successful, a.quorum), (3, 2, 1, 2));
        assert_eq!(a.stale, ["c"]);
        // A location that saw it down dies: its last result still counts.
        let a = aggregate(&[r("a", false, 1), stale("b", false), r("c", true, 1)], None).unwrap();
        assert_eq!(a.status, ConsensusStatus::Down);
        assert_eq!(a.down, ["a", "b"]);
        // Latency figures are the reporting locations' only.
        assert_eq!(a.latency_max, Duration::from_millis(1));
        // Stale locations alone decide nothing.
        assert!(aggregate(&[stale("a", false), stale("b", false)], None).is_none());
    }

    #[test]
    fn windows_align() {
        let w = Duration::from_secs(60);
        assert_eq!(window_start(125_000, w), 120_000);
        assert_eq!(window_start(120_000, w), 120_000);
        assert_eq!(window_start(119_999, w), 60_000);
    }
}
