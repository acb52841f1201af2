-- One row per alert (a rule + labels, from firing to resolved), rewritten on
-- each transition; resolved alerts older than alert_engine.retention are
-- deleted with their transitions.
CREATE TABLE alerts (
    id                  TEXT PRIMARY KEY NOT NULL,
    fingerprint         TEXT NOT NULL,
    rule_id             TEXT NOT NULL,
    rule_name           TEXT NOT NULL,
    state               TEXT NOT NULL,
    severity            TEXT NOT NULL,
    summary             TEXT NOT NULL,
    labels              TEXT NOT NULL,
    source              TEXT NOT NULL,
    resource            TEXT NOT NULL,
    value               TEXT NOT NULL,
    started_ms          BIGINT NOT NULL,
    updated_ms          BIGINT NOT NULL,
    acknowledged_ms     BIGINT,
    acknowledged_by     TEXT NOT NULL,
    acknowledge_comment TEXT NOT NULL,
    resolved_ms         BIGINT,
    resolved_by         TEXT NOT NULL,
    -- `silence:<id>` or `depends:<alert id>` while nobody is notified.
    suppressed_by       TEXT NOT NULL,
    -- 1 once the firing event was published (so the resolve is published too).
    notified            BIGINT NOT NULL
);
CREATE INDEX alerts_started ON alerts (started_ms);
CREATE INDEX alerts_state ON alerts (state);
CREATE INDEX alerts_resolved ON alerts (resolved_ms);

-- The audit trail: every transition, who made it and why.
CREATE TABLE alert_transitions (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    state    TEXT NOT NULL,
    at_ms    BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    comment  TEXT NOT NULL
);
CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id);

-- Silences: alerts matching every matcher notify no one between starts_ms
-- and ends_ms; ended silences are deleted after alert_engine.retention.
CREATE TABLE alert_silences (
    id         TEXT PRIMARY KEY NOT NULL,
    matchers   TEXT NOT NULL,
    starts_ms  BIGINT NOT NULL,
    ends_ms    BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX alert_silences_ends ON alert_silences (ends_ms);

-- Rules created through the API; `config` is the rule as JSON. Rules from
-- files and the defaults are not stored.
CREATE TABLE alert_rules (
    id         TEXT PRIMARY KEY NOT NULL,
    config     TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
