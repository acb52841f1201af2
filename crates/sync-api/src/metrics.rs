//! Metric names of the sync-api and their descriptions. Labels are bounded:
//! target ids and locations come from configuration, never from free text.

pub const ROLE_PRIMARY: &str = "pantau_sync_primary";
pub const EPOCH: &str = "pantau_sync_epoch";
pub const PROMOTIONS: &str = "pantau_sync_promotions_total";
pub const RESULTS_RECEIVED: &str = "pantau_sync_results_received_total";
pub const RESULTS_DUPLICATE: &str = "pantau_sync_results_duplicate_total";
pub const RESULTS_PUSHED: &str = "pantau_sync_results_pushed_total";
pub const BUFFERED: &str = "pantau_sync_buffered_results";
pub const BUFFER_DROPPED: &str = "pantau_sync_buffer_dropped_total";
pub const SYNC_ERRORS: &str = "pantau_sync_errors_total";
pub const LOCATION_UP: &str = "pantau_sync_location_up";
pub const LOCATION_STALE: &str = "pantau_sync_location_stale";
pub const LOCATION_LATENCY: &str = "pantau_sync_location_latency_seconds";
pub const CONSENSUS_STATUS: &str = "pantau_sync_consensus_status";
pub const CONSENSUS_LOCATIONS: &str = "pantau_sync_consensus_locations";
pub const INSTANCES: &str = "pantau_sync_instances";

pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge};
    describe_gauge!(ROLE_PRIMARY, Unit::Count, "1 while this instance is the primary");
    describe_gauge!(EPOCH, Unit::Count, "The fencing epoch this instance knows");
    describe_counter!(PROMOTIONS, Unit::Count, "Times this instance took the primary lease");
    describe_counter!(
        RESULTS_RECEIVED,
        Unit::Count,
        "Check results accepted by the primary, by location"
    );
    describe_counter!(
        RESULTS_DUPLICATE,
        Unit::Count,
        "Check results the primary already had, dropped"
    );
    describe_counter!(
        RESULTS_PUSHED,
        Unit::Count,
        "Check results a dependent delivered to the primary"
    );
    describe_gauge!(BUFFERED, Unit::Count, "Check results waiting in the on-disk buffer");
    describe_counter!(
        BUFFER_DROPPED,
        Unit::Count,
        "Buffered results dropped because the buffer was full"
    );
    describe_counter!(SYNC_ERRORS, Unit::Count, "Failed calls to the primary, by operation");
    describe_gauge!(
        LOCATION_UP,
        Unit::Count,
        "1 when the location saw the target up in the last window (its last result while it is stale)"
    );
    describe_gauge!(
        LOCATION_STALE,
        Unit::Count,
        "1 while the location has not reported the target since an earlier window (its location_up is its last value)"
    );
    describe_gauge!(
        LOCATION_LATENCY,
        Unit::Seconds,
        "The target's latency from the location"
    );
    describe_gauge!(
        CONSENSUS_STATUS,
        Unit::Count,
        "Consensus of the last window: 1 up, 0.5 partial, 0 down"
    );
    describe_gauge!(
        CONSENSUS_LOCATIONS,
        Unit::Count,
        "Locations in the last window: total (reporting and stale), successful, reporting, stale"
    );
    describe_gauge!(INSTANCES, Unit::Count, "Known instances by state");
}

pub fn role(primary: bool, epoch: u64) {
    metrics::gauge!(ROLE_PRIMARY).set(if primary { 1.0 } else { 0.0 });
    metrics::gauge!(EPOCH).set(epoch as f64);
}

pub fn promotion() {
    metrics::counter!(PROMOTIONS).increment(1);
}
