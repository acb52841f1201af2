//! The notifier's metric names, label values and descriptions.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// Attempts by `channel_type` and `result` (`delivered`, `retry`, `failed`).
pub const DELIVERIES_TOTAL: &str = "pantau_notifier_deliveries_total";
/// How long attempts took, by `channel_type`.
pub const DELIVERY_DURATION: &str = "pantau_notifier_delivery_duration_seconds";
/// Deliveries given up, by `channel_type`.
pub const GIVEN_UP_TOTAL: &str = "pantau_notifier_deliveries_given_up_total";
/// Deliveries held back by a channel's rate limit, by `channel_type`.
pub const RATE_LIMITED_TOTAL: &str = "pantau_notifier_rate_limited_total";
/// Notifications received, by `source` (`alert`, `alertmanager`).
pub const NOTIFICATIONS_TOTAL: &str = "pantau_notifier_notifications_total";
/// Final delivery outcomes told to the alert engine on
/// `pantau.delivery.>`, by `outcome` (`delivered`, `failed`) and `result`
/// (`published`, `unpublished`).
pub const OUTCOMES_TOTAL: &str = "pantau_notifier_delivery_outcomes_total";
/// Deliveries waiting for an attempt.
pub const PENDING: &str = "pantau_notifier_deliveries_pending";
/// Escalation steps sent, by `policy` and `kind` (`escalation`, `reminder`).
pub const ESCALATION_STEPS_TOTAL: &str = "pantau_notifier_escalation_steps_total";
/// Escalations running (alerts repeating, stepping or reminding).
pub const ESCALATIONS_ACTIVE: &str = "pantau_notifier_escalations_active";

pub const RESULT_DELIVERED: &str = "delivered";
pub const RESULT_RETRY: &str = "retry";
pub const RESULT_FAILED: &str = "failed";

/// Exports the delivery counters of every configured channel type as 0, so
/// the panels read 0 from the first scrape instead of "No data".
pub fn zero(channel_types: impl IntoIterator<Item = &'static str>) {
    for kind in channel_types {
        for result in [RESULT_DELIVERED, RESULT_RETRY, RESULT_FAILED] {
            metrics::counter!(DELIVERIES_TOTAL, "channel_type" => kind, "result" => result).increment(0);
        }
        metrics::counter!(GIVEN_UP_TOTAL, "channel_type" => kind).increment(0);
        metrics::counter!(RATE_LIMITED_TOTAL, "channel_type" => kind).increment(0);
    }
    for source in [
        crate::notification::SOURCE_ALERT,
        crate::notification::SOURCE_ALERTMANAGER,
    ] {
        metrics::counter!(NOTIFICATIONS_TOTAL, "source" => source).increment(0);
    }
    metrics::gauge!(ESCALATIONS_ACTIVE).set(0.0);
}

/// Exports the step counters of every configured policy as 0.
pub fn zero_escalations<'a>(policies: impl IntoIterator<Item = &'a str>) {
    for policy in policies {
        for kind in [crate::escalation::KIND_ESCALATION, crate::escalation::KIND_REMINDER] {
            metrics::counter!(ESCALATION_STEPS_TOTAL, "policy" => policy.to_owned(), "kind" => kind).increment(0);
        }
    }
}

/// Describes every notifier metric once.
pub fn describe() {
    describe_counter!(
        OUTCOMES_TOTAL,
        Unit::Count,
        "Final delivery outcomes of alert engine notifications published on pantau.delivery.>, by outcome (delivered, failed) and result (published, unpublished)"
    );
    describe_counter!(
        DELIVERIES_TOTAL,
        Unit::Count,
        "Delivery attempts, by channel type and result (delivered, retry, failed)"
    );
    describe_histogram!(
        DELIVERY_DURATION,
        Unit::Seconds,
        "How long delivery attempts took, by channel type"
    );
    describe_counter!(
        GIVEN_UP_TOTAL,
        Unit::Count,
        "Deliveries given up after a permanent error or the last retry, by channel type"
    );
    describe_counter!(
        RATE_LIMITED_TOTAL,
        Unit::Count,
        "Deliveries postponed by a channel's rate limit, by channel type"
    );
    describe_counter!(
        NOTIFICATIONS_TOTAL,
        Unit::Count,
        "Notifications received, by source (alert, alertmanager)"
    );
    describe_counter!(
        ESCALATION_STEPS_TOTAL,
        Unit::Count,
        "Escalation steps sent (repeats and steps of unacknowledged alerts, reminders of acknowledged ones), by policy and kind"
    );
    describe_gauge!(
        ESCALATIONS_ACTIVE,
        Unit::Count,
        "Alerts whose escalation is running (neither resolved nor acknowledged without reminders)"
    );
    describe_gauge!(
        PENDING,
        Unit::Count,
        "Deliveries waiting for their first or next attempt"
    );
}
