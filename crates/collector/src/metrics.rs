//! The collector's metric names, label values and descriptions.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

pub const CHECKS_TOTAL: &str = "pantau_collector_checks_total";
pub const CHECK_PANICS: &str = "pantau_collector_check_panics_total";
pub const CHECKS_SKIPPED: &str = "pantau_collector_checks_skipped_total";
pub const SCHEDULE_LAG: &str = "pantau_collector_schedule_lag_seconds";
pub const CHECK_DURATION: &str = "pantau_collector_check_duration_seconds";
/// Written at scrape time from the schedule's entries (`Collector`'s
/// `GaugeSource`), one series per target checked at least once.
pub const CHECK_UP: &str = "pantau_collector_check_up";
pub const CHECK_UP_HELP: &str = "1 when the target's last check was up, 0 when down";
pub const CERT_EXPIRY: &str = "pantau_collector_cert_expiry_seconds";
pub const BREAKER_STATE: &str = "pantau_collector_breaker_state";
pub const QUEUE_DEPTH: &str = "pantau_collector_queue_depth";
pub const CHECKS_IN_FLIGHT: &str = "pantau_collector_workers_busy";
pub const TARGETS: &str = "pantau_collector_targets";
pub const TARGETS_PAUSED: &str = "pantau_collector_targets_paused";
pub const HEALTH_LEVEL: &str = "pantau_collector_health_level";
pub const ERROR_RATIO: &str = "pantau_collector_check_error_ratio";
pub const LAST_CHECK: &str = "pantau_collector_last_check_timestamp_seconds";

pub const RESULT_UP: &str = "up";
pub const RESULT_DOWN: &str = "down";

/// Describes every collector metric once.
pub fn describe() {
    // On /metrics from the first scrape (0 until it happens), so a panel reads 0, not "No data".
    metrics::counter!(CHECKS_SKIPPED).increment(0);
    crate::checks::kafka::describe();
    describe_gauge!(
        LAST_CHECK,
        Unit::Seconds,
        "Unix time the collector last completed a check (of any target): the dead man's switch of checking itself"
    );
    describe_counter!(
        CHECKS_TOTAL,
        Unit::Count,
        "Checks run, by check type and result (up, down)"
    );
    describe_counter!(
        CHECK_PANICS,
        Unit::Count,
        "Checks that panicked (each a failed result of its target), by check type"
    );
    describe_counter!(
        CHECKS_SKIPPED,
        Unit::Count,
        "Due checks skipped: the target's previous check still waited or ran, or every worker queue was full"
    );
    describe_histogram!(SCHEDULE_LAG, Unit::Seconds, "How late checks start after they were due");
    describe_histogram!(CHECK_DURATION, Unit::Seconds, "How long checks took, by check type");
    describe_gauge!(
        CERT_EXPIRY,
        Unit::Seconds,
        "Time until the target's TLS certificate expires (whole days)"
    );
    describe_gauge!(
        BREAKER_STATE,
        "The target's circuit breaker: 0 closed, 1 half-open, 2 open"
    );
    describe_gauge!(QUEUE_DEPTH, Unit::Count, "Due checks waiting for a worker");
    describe_gauge!(CHECKS_IN_FLIGHT, Unit::Count, "Checks running right now");
    describe_gauge!(TARGETS, Unit::Count, "Targets being checked");
    describe_gauge!(
        TARGETS_PAUSED,
        Unit::Count,
        "Targets whose scheduled checks are paused (PauseTarget)"
    );
    describe_gauge!(
        HEALTH_LEVEL,
        "The collector's health from its check error rate: 0 healthy, 1 degraded, 2 critical"
    );
    describe_gauge!(ERROR_RATIO, "Share of checks that failed over the health window");
}

/// A check type's counters and duration histogram, registered once: the
/// macros build, hash and look up a labelled key at every call, which at
/// 10,000 checks a second was a few per cent of the process's CPU.
pub struct KindMetrics {
    up: metrics::Counter,
    down: metrics::Counter,
    duration: metrics::Histogram,
}

impl KindMetrics {
    fn new(kind: &'static str) -> Self {
        Self {
            up: metrics::counter!(CHECKS_TOTAL, "kind" => kind, "result" => RESULT_UP),
            down: metrics::counter!(CHECKS_TOTAL, "kind" => kind, "result" => RESULT_DOWN),
            duration: metrics::histogram!(CHECK_DURATION, "kind" => kind),
        }
    }

    fn record(&self, up: bool, took: std::time::Duration) {
        if up { &self.up } else { &self.down }.increment(1);
        self.duration.record(took.as_secs_f64());
    }
}

/// [`KindMetrics`] by check type, made on a type's first check.
#[derive(Default)]
pub struct ByKind(std::sync::RwLock<std::collections::HashMap<pantau_config::CheckType, KindMetrics>>);

impl ByKind {
    /// Counts one check of `kind` and its duration.
    pub fn record(&self, kind: pantau_config::CheckType, up: bool, took: std::time::Duration) {
        if let Some(k) = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&kind)
        {
            k.record(up, took);
            return;
        }
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(kind)
            .or_insert_with(|| KindMetrics::new(kind.as_str()))
            .record(up, took);
    }
}
