-- One row per notification per channel (and recipient); `id` is the
-- idempotency key, so a redelivered bus message or webhook adds nothing.
CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    channel_type TEXT NOT NULL,
    recipient TEXT NOT NULL,
    alert_key TEXT NOT NULL,
    state TEXT NOT NULL,
    source TEXT NOT NULL,
    notification TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_order ON deliveries (channel, recipient, alert_key, status);
CREATE INDEX deliveries_updated ON deliveries (updated_at);

-- The delivery log: one row per attempt, removed with its delivery.
CREATE TABLE delivery_attempts (
    delivery_seq INTEGER NOT NULL REFERENCES deliveries (seq) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    at BIGINT NOT NULL,
    status_code INTEGER NOT NULL,
    error TEXT NOT NULL,
    latency_ms BIGINT NOT NULL,
    PRIMARY KEY (delivery_seq, attempt)
);
