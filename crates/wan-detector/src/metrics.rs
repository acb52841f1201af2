//! The WAN detector's metric names and their descriptions.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// WAN interfaces per router and ISP (`isp` is a built-in or configured ISP
/// name, or `unknown`).
pub const WAN_INTERFACES: &str = "pantau_wan_detector_wan_interfaces";
/// Judgements made, by `result` (`changed`, `unchanged`).
pub const DETECTIONS_TOTAL: &str = "pantau_wan_detector_detections_total";
/// `DetectWan` answers, by `cache` (`hit`, `miss`, `bypass`).
pub const CACHE_REQUESTS_TOTAL: &str = "pantau_wan_detector_cache_requests_total";
/// Time to judge one router.
pub const DETECTION_DURATION: &str = "pantau_wan_detector_detection_duration_seconds";
/// Routers seen on the bus.
pub const ROUTERS: &str = "pantau_wan_detector_routers";
/// Bus messages taken in, by `family` (`info`, `sample`, `event`).
pub const MESSAGES_TOTAL: &str = "pantau_wan_detector_messages_total";
/// `wan_detected` events that could not be published.
pub const PUBLISH_ERRORS_TOTAL: &str = "pantau_wan_detector_publish_errors_total";
/// Published answers that could not be recorded in the store.
pub const PERSIST_ERRORS_TOTAL: &str = "pantau_wan_detector_persist_errors_total";

pub const RESULT_CHANGED: &str = "changed";
pub const RESULT_UNCHANGED: &str = "unchanged";
pub const CACHE_HIT: &str = "hit";
pub const CACHE_MISS: &str = "miss";
pub const CACHE_BYPASS: &str = "bypass";
/// The `isp` label of a WAN whose ISP was not recognised.
pub const ISP_UNKNOWN: &str = "unknown";

/// Describes every WAN detector metric once.
pub fn describe() {
    // On /metrics from the first scrape (0 until it happens), so a panel reads 0, not "No data".
    ::metrics::counter!(PUBLISH_ERRORS_TOTAL).increment(0);
    ::metrics::counter!(PERSIST_ERRORS_TOTAL).increment(0);
    describe_gauge!(
        WAN_INTERFACES,
        Unit::Count,
        "Interfaces judged WAN, by router and ISP (unknown when not recognised)"
    );
    describe_counter!(
        DETECTIONS_TOTAL,
        Unit::Count,
        "Router WAN judgements made, by result (changed, unchanged)"
    );
    describe_counter!(
        CACHE_REQUESTS_TOTAL,
        Unit::Count,
        "DetectWan requests, by cache outcome (hit, miss, bypass)"
    );
    describe_histogram!(
        DETECTION_DURATION,
        Unit::Seconds,
        "Time to judge one router's interfaces"
    );
    describe_gauge!(ROUTERS, Unit::Count, "Routers seen on the bus");
    describe_counter!(
        MESSAGES_TOTAL,
        Unit::Count,
        "Bus messages taken in, by family (info, sample, event)"
    );
    describe_counter!(PUBLISH_ERRORS_TOTAL, Unit::Count, "wan_detected events the bus refused");
    describe_counter!(
        PERSIST_ERRORS_TOTAL,
        Unit::Count,
        "Published WAN answers the store could not record"
    );
}
