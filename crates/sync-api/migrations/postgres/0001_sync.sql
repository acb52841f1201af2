-- Instances known to this sync-api (when it is or was primary). The token is
-- stored only as its SHA-256 hash; JSON columns hold small structured facts.
CREATE TABLE instances (
    id                TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL,
    location          TEXT NOT NULL,
    version           TEXT NOT NULL,
    capabilities      TEXT NOT NULL,
    failover_order    BIGINT NOT NULL,
    public_endpoint   TEXT NOT NULL,
    system            TEXT NOT NULL,
    token_hash        TEXT NOT NULL,
    token_expires_ms  BIGINT NOT NULL,
    permissions       TEXT NOT NULL,
    revoked           BIGINT NOT NULL DEFAULT 0,
    registered_ms     BIGINT NOT NULL,
    last_heartbeat_ms BIGINT NOT NULL,
    health            BIGINT NOT NULL DEFAULT 0,
    metrics           TEXT NOT NULL DEFAULT '{}',
    connection        TEXT NOT NULL DEFAULT '{}',
    uptime_ms         BIGINT NOT NULL DEFAULT 0,
    acked_seq         BIGINT NOT NULL DEFAULT 0,
    results_received  BIGINT NOT NULL DEFAULT 0,
    config_hash       TEXT NOT NULL DEFAULT '',
    config_synced_ms  BIGINT NOT NULL DEFAULT 0
);

-- The latest result per target, window and location; pruned by retention.
CREATE TABLE location_results (
    target_id  TEXT NOT NULL,
    window_ms  BIGINT NOT NULL,
    location   TEXT NOT NULL,
    instance   TEXT NOT NULL,
    up         BIGINT NOT NULL,
    latency_us BIGINT NOT NULL,
    checked_ms BIGINT NOT NULL,
    PRIMARY KEY (target_id, window_ms, location)
);
CREATE INDEX location_results_window ON location_results (window_ms);

-- One row per target and window: whether its consensus must be (re)published,
-- and what was published last; pruned by retention.
CREATE TABLE windows (
    target_id  TEXT NOT NULL,
    window_ms  BIGINT NOT NULL,
    dirty      BIGINT NOT NULL,
    status     BIGINT NOT NULL DEFAULT 0,
    total      BIGINT NOT NULL DEFAULT 0,
    successful BIGINT NOT NULL DEFAULT 0,
    epoch      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (target_id, window_ms)
);
CREATE INDEX windows_dirty ON windows (dirty, window_ms);

-- A dependent's results waiting for the primary, in order; bounded by
-- sync.buffer_max (oldest dropped). BIGSERIAL: a sequence is never reused.
CREATE TABLE outbox (
    seq        BIGSERIAL PRIMARY KEY,
    payload    BYTEA NOT NULL,
    created_ms BIGINT NOT NULL
);

-- Small facts: this instance's token, the config hash it applied, the ids of
-- targets it got from the primary.
CREATE TABLE facts (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
