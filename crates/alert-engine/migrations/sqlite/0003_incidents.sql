-- Incidents: alerts that share a root cause (a dependency parent) or a
-- grouping key (alert_engine.incidents). Written in the same transaction as
-- the alert transitions that change them, so a restart finds them as the
-- alerts are. Resolved incidents older than alert_engine.retention are
-- deleted with their members and timeline.
CREATE TABLE incidents (
    id              TEXT PRIMARY KEY NOT NULL,
    -- `depends:<dependency>` or `group:<key>`.
    group_key       TEXT NOT NULL,
    -- The dependency its alerts share; empty for a grouping key.
    root_cause      TEXT NOT NULL,
    title           TEXT NOT NULL,
    -- open, acknowledged or resolved.
    state           TEXT NOT NULL,
    severity        TEXT NOT NULL,
    opened_ms       BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    -- When its latest alert joined (the grouping window counts from it).
    joined_ms       BIGINT NOT NULL,
    acknowledged_ms BIGINT,
    acknowledged_by TEXT NOT NULL,
    resolved_ms     BIGINT,
    alerts          BIGINT NOT NULL,
    open_alerts     BIGINT NOT NULL
);
CREATE INDEX incidents_opened ON incidents (opened_ms);
CREATE INDEX incidents_state ON incidents (state);

-- Which alerts joined which incident; left_ms once the alert resolved.
CREATE TABLE incident_alerts (
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    alert_id    TEXT NOT NULL,
    joined_ms   BIGINT NOT NULL,
    left_ms     BIGINT,
    PRIMARY KEY (incident_id, alert_id)
);
CREATE INDEX incident_alerts_alert ON incident_alerts (alert_id);

-- The timeline: alerts joining and leaving, acknowledgements, comments,
-- notifications.
CREATE TABLE incident_entries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    at_ms       BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    alert_id    TEXT NOT NULL,
    text        TEXT NOT NULL
);
CREATE INDEX incident_entries_incident ON incident_entries (incident_id);
