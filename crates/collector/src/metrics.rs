//! The collector's metric names, label values and descriptions.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

pub const CHECKS_TOTAL: &str = "pantau_collector_checks_total";
pub const CHECK_DURATION: &str = "pantau_collector_check_duration_seconds";
pub const CHECK_UP: &str = "pantau_collector_check_up";
pub const CHECKS_IN_FLIGHT: &str = "pantau_collector_workers_busy";
pub const TARGETS: &str = "pantau_collector_targets";

pub const RESULT_UP: &str = "up";
pub const RESULT_DOWN: &str = "down";

/// Describes every collector metric once.
pub fn describe() {
    describe_counter!(
        CHECKS_TOTAL,
        Unit::Count,
        "Checks run, by check type and result (up, down)"
    );
    describe_histogram!(CHECK_DURATION, Unit::Seconds, "How long checks took, by check type");
    describe_gauge!(CHECK_UP, "1 when the target's last check was up, 0 when down");
    describe_gauge!(CHECKS_IN_FLIGHT, Unit::Count, "Checks running right now");
    describe_gauge!(TARGETS, Unit::Count, "Targets being checked");
}
