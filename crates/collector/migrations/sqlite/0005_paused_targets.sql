-- Targets whose scheduled checks are paused (`PauseTarget`), so a pause
-- outlives a restart: one row per paused target, deleted on resume or when
-- the target is deleted.
CREATE TABLE paused_targets (
    target_id TEXT PRIMARY KEY,
    since_ms  BIGINT NOT NULL,
    paused_by TEXT NOT NULL,
    reason    TEXT NOT NULL
);
