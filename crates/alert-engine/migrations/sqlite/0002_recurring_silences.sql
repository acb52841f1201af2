-- Recurring maintenance windows: the [starts_ms, ends_ms) window comes back
-- every repeat_ms (0: no repeat) until repeat_until_ms (NULL: until expired).
ALTER TABLE alert_silences ADD COLUMN repeat_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE alert_silences ADD COLUMN repeat_until_ms BIGINT;
