-- The current state of each target: one row per target, written only when
-- the state changes (never a row per check).
CREATE TABLE target_state (
    target_id  TEXT PRIMARY KEY NOT NULL,
    status     TEXT NOT NULL,
    since_ms   BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    message    TEXT NOT NULL,
    changed_ms BIGINT NOT NULL
);
