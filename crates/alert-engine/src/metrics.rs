//! The alert engine's metric names and their descriptions.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

pub const FACTS_TOTAL: &str = "pantau_alert_engine_facts_total";
pub const SERIES_DROPPED_TOTAL: &str = "pantau_alert_engine_series_dropped_total";
pub const SERIES: &str = "pantau_alert_engine_series";
pub const EVALUATION_DURATION: &str = "pantau_alert_engine_evaluation_duration_seconds";
pub const TRANSITIONS_TOTAL: &str = "pantau_alert_engine_transitions_total";
pub const OPEN_ALERTS: &str = "pantau_alert_engine_open_alerts";
pub const OPEN_INCIDENTS: &str = "pantau_alert_engine_open_incidents";
pub const RULES: &str = "pantau_alert_engine_rules";
pub const PERSIST_ERRORS_TOTAL: &str = "pantau_alert_engine_persist_errors_total";
pub const PUBLISH_ERRORS_TOTAL: &str = "pantau_alert_engine_publish_errors_total";
pub const ALERTMANAGER_PUSHES_TOTAL: &str = "pantau_alert_engine_alertmanager_pushes_total";
pub const LAST_EVALUATION: &str = "pantau_alert_engine_last_evaluation_timestamp_seconds";
pub const WATCHDOG_HEARTBEATS_TOTAL: &str = "pantau_alert_engine_watchdog_heartbeats_total";
pub const DELIVERIES_TOTAL: &str = "pantau_alert_engine_deliveries_total";
pub const INCIDENT_COPIES_TOTAL: &str = "pantau_alert_engine_incident_copies_total";

/// `result` label values of [`DELIVERIES_TOTAL`]: written on a timeline, a
/// redelivered outcome already there, an alert in no incident (or unknown).
pub const DELIVERY_RECORDED: &str = "recorded";
pub const DELIVERY_DUPLICATE: &str = "duplicate";
pub const DELIVERY_NO_INCIDENT: &str = "no_incident";

/// `result` label values of [`INCIDENT_COPIES_TOTAL`].
pub const COPY_STORED: &str = "stored";
pub const COPY_DUPLICATE: &str = "duplicate";

/// `trigger` label values of [`EVALUATION_DURATION`].
pub const TRIGGER_EVENT: &str = "event";
pub const TRIGGER_SWEEP: &str = "sweep";
pub const TRIGGER_BATCH: &str = "batch";

/// Describes every alert engine metric once.
pub fn describe() {
    // On /metrics from the first scrape (0 until it happens), so a panel reads 0, not "No data".
    metrics::counter!(SERIES_DROPPED_TOTAL).increment(0);
    metrics::counter!(PERSIST_ERRORS_TOTAL).increment(0);
    metrics::counter!(PUBLISH_ERRORS_TOTAL).increment(0);
    for family in ["check", "metric", "event", "iface", "consensus"] {
        metrics::counter!(FACTS_TOTAL, "family" => family).increment(0);
    }
    metrics::gauge!(SERIES).set(0.0);
    for result in [DELIVERY_RECORDED, DELIVERY_DUPLICATE, DELIVERY_NO_INCIDENT] {
        metrics::counter!(DELIVERIES_TOTAL, "result" => result).increment(0);
    }
    describe_counter!(
        DELIVERIES_TOTAL,
        Unit::Count,
        "The notifier's delivery outcomes taken from the bus, by result (recorded on an incident's timeline, duplicate of one recorded, no_incident: an alert in no incident or unknown)"
    );
    describe_counter!(
        INCIDENT_COPIES_TOTAL,
        Unit::Count,
        "A dependent's copies of the primary's incident events, by result (stored, duplicate)"
    );
    for state in ["firing", "acknowledged", "resolved"] {
        metrics::counter!(TRANSITIONS_TOTAL, "state" => state).increment(0);
    }
    describe_gauge!(
        LAST_EVALUATION,
        Unit::Seconds,
        "Unix time of the last completed sweep over every rule (the start until the first): the alert engine's dead man's switch"
    );
    describe_counter!(
        WATCHDOG_HEARTBEATS_TOTAL,
        Unit::Count,
        "Heartbeats to alert_engine.watchdog.url, by result (sent, failed, withheld while evaluation stalls)"
    );
    describe_counter!(
        FACTS_TOTAL,
        Unit::Count,
        "Facts taken from the bus, by family (check, metric, event, iface)"
    );
    describe_counter!(
        SERIES_DROPPED_TOTAL,
        Unit::Count,
        "Samples of new series dropped because alert_engine.max_series was reached"
    );
    describe_gauge!(SERIES, Unit::Count, "Series held in the in-memory window store");
    describe_histogram!(
        EVALUATION_DURATION,
        Unit::Seconds,
        "Time to evaluate rules, by trigger (event, sweep)"
    );
    describe_counter!(
        TRANSITIONS_TOTAL,
        Unit::Count,
        "Alert transitions, by state (firing, acknowledged, resolved)"
    );
    describe_gauge!(OPEN_ALERTS, Unit::Count, "Alerts firing or acknowledged");
    describe_gauge!(
        OPEN_INCIDENTS,
        Unit::Count,
        "Incidents open or acknowledged (at least one of their alerts is open)"
    );
    describe_gauge!(RULES, Unit::Count, "Rules loaded, enabled or not");
    describe_counter!(
        PERSIST_ERRORS_TOTAL,
        Unit::Count,
        "Transitions that could not be stored yet (retried)"
    );
    describe_counter!(
        ALERTMANAGER_PUSHES_TOTAL,
        Unit::Count,
        "Alerts pushed to Alertmanager, by result (ok, failed, dropped)"
    );
    describe_counter!(
        PUBLISH_ERRORS_TOTAL,
        Unit::Count,
        "Alert events that could not be published on the bus"
    );
}
