-- One row per alert and escalation policy: the notification to repeat (the
-- firing one, then the acknowledged one), the route's channels, and when the
-- next step is due. A step is sent by inserting its deliveries and moving
-- `next_at` in one transaction, so a restart neither loses nor repeats one.
CREATE TABLE escalations (
    source TEXT NOT NULL,
    alert_key TEXT NOT NULL,
    policy TEXT NOT NULL,
    -- JSON array of the route's channel names.
    channels TEXT NOT NULL,
    notification TEXT NOT NULL,
    -- `firing` (repeats and steps), `acknowledged` (reminders) or `done`.
    state TEXT NOT NULL,
    -- When the firing (or the acknowledgement) was taken in, in ms.
    started_at BIGINT NOT NULL,
    -- When the next step is due, in ms; 0 when none is left.
    next_at BIGINT NOT NULL,
    -- Steps sent so far.
    sent BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (source, alert_key, policy)
);
CREATE INDEX escalations_due ON escalations (state, next_at);
CREATE INDEX escalations_updated ON escalations (updated_at);

-- Acknowledgements and resolves look up where the firing went.
CREATE INDEX deliveries_alert ON deliveries (alert_key, source);
