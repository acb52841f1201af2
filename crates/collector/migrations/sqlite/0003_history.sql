-- Rolled-up history: one row per target per minute and per hour; no raw
-- results. Latencies are in milliseconds. `hist` (hours only) is the
-- latency histogram the hour's p95 is computed from, as JSON {bucket: count},
-- emptied once the hour is over. (SQLite: WITHOUT ROWID, so the key is stored once.)
CREATE TABLE history_minute (
    target_id  TEXT NOT NULL,
    start_ms   BIGINT NOT NULL,
    checks     BIGINT NOT NULL,
    up         BIGINT NOT NULL,
    lat_min    DOUBLE PRECISION NOT NULL,
    lat_sum    DOUBLE PRECISION NOT NULL,
    lat_max    DOUBLE PRECISION NOT NULL,
    lat_p95    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (target_id, start_ms)
) WITHOUT ROWID;
CREATE INDEX history_minute_start ON history_minute (start_ms);
CREATE TABLE history_hour (
    target_id  TEXT NOT NULL,
    start_ms   BIGINT NOT NULL,
    checks     BIGINT NOT NULL,
    up         BIGINT NOT NULL,
    lat_min    DOUBLE PRECISION NOT NULL,
    lat_sum    DOUBLE PRECISION NOT NULL,
    lat_max    DOUBLE PRECISION NOT NULL,
    lat_p95    DOUBLE PRECISION NOT NULL,
    hist       TEXT NOT NULL,
    PRIMARY KEY (target_id, start_ms)
) WITHOUT ROWID;
CREATE INDEX history_hour_start ON history_hour (start_ms);
