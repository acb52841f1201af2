//! Metric names of router polling, and their descriptions.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

pub const IN_BPS: &str = "pantau_collector_interface_in_bits_per_second";
pub const OUT_BPS: &str = "pantau_collector_interface_out_bits_per_second";
pub const IF_OPER_UP: &str = "pantau_collector_interface_up";
pub const IF_ADMIN_UP: &str = "pantau_collector_interface_admin_up";
pub const IF_WENT_DOWN: &str = "pantau_collector_interface_went_down";
pub const ROUTER_UP: &str = "pantau_collector_router_up";
pub const POLL_DURATION: &str = "pantau_collector_router_poll_duration_seconds";
pub const POLLS_TOTAL: &str = "pantau_collector_router_polls_total";
pub const COUNTER_RESETS: &str = "pantau_collector_interface_counter_resets_total";
pub const SNMP_BAD_VALUES: &str = "pantau_collector_snmp_bad_values_total";

pub const RESULT_OK: &str = "ok";
pub const RESULT_ERROR: &str = "error";
pub const RESULT_CIRCUIT_OPEN: &str = "circuit_open";
/// A poll skipped: a maintenance window with `checks: pause` covers the router.
pub const RESULT_MAINTENANCE: &str = "maintenance";

/// Describes every router metric once.
pub fn describe() {
    describe_gauge!(
        IN_BPS,
        "Received bits per second of a router interface over the last poll interval"
    );
    describe_gauge!(
        OUT_BPS,
        "Sent bits per second of a router interface over the last poll interval"
    );
    describe_gauge!(
        IF_OPER_UP,
        "1 when the router interface is operationally up, 0 otherwise"
    );
    describe_gauge!(
        IF_ADMIN_UP,
        "1 when the router interface is administratively up (enabled), 0 when an operator disabled it"
    );
    describe_gauge!(
        IF_WENT_DOWN,
        "1 when the router interface went down while administratively up, after a poll saw it up, and is still down (what PantauInterfaceDown reads); 0 otherwise"
    );
    describe_gauge!(
        ROUTER_UP,
        "1 when the router answered its last poll (SNMP, RouterOS API or REST), 0 when not"
    );
    describe_histogram!(
        POLL_DURATION,
        Unit::Seconds,
        "How long a whole poll of a router took, whatever its driver"
    );
    describe_counter!(
        POLLS_TOTAL,
        Unit::Count,
        "Router polls, by result (ok, error, circuit_open)"
    );
    describe_counter!(
        SNMP_BAD_VALUES,
        Unit::Count,
        "SNMP values of another type than their MIB says (or out of range, or missing from a row), by router and object (oid_name); never reinterpreted"
    );
    describe_counter!(
        COUNTER_RESETS,
        Unit::Count,
        "Interface counters that went backwards without a reboot, by router"
    );
}
