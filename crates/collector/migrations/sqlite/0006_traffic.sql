-- Interface traffic history (crates/collector/src/traffic.rs): one row per
-- router interface per minute and per hour, in bits per second; no raw
-- samples. Averages are `*_sum / samples`. A minute's p95 is the exact
-- nearest-rank p95 of its poll rates; an hour's, that of its minutes'
-- averages. Retention: collector.history.minute_retention / hour_retention.
CREATE TABLE traffic_minute (
    router_id  TEXT NOT NULL,
    if_name    TEXT NOT NULL,
    start_ms   BIGINT NOT NULL,
    samples    BIGINT NOT NULL,
    in_min     DOUBLE PRECISION NOT NULL,
    in_sum     DOUBLE PRECISION NOT NULL,
    in_max     DOUBLE PRECISION NOT NULL,
    in_p95     DOUBLE PRECISION NOT NULL,
    out_min    DOUBLE PRECISION NOT NULL,
    out_sum    DOUBLE PRECISION NOT NULL,
    out_max    DOUBLE PRECISION NOT NULL,
    out_p95    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (router_id, if_name, start_ms)
) WITHOUT ROWID;
CREATE INDEX traffic_minute_start ON traffic_minute (start_ms);
CREATE TABLE traffic_hour (
    router_id  TEXT NOT NULL,
    if_name    TEXT NOT NULL,
    start_ms   BIGINT NOT NULL,
    samples    BIGINT NOT NULL,
    in_min     DOUBLE PRECISION NOT NULL,
    in_sum     DOUBLE PRECISION NOT NULL,
    in_max     DOUBLE PRECISION NOT NULL,
    in_p95     DOUBLE PRECISION NOT NULL,
    out_min    DOUBLE PRECISION NOT NULL,
    out_sum    DOUBLE PRECISION NOT NULL,
    out_max    DOUBLE PRECISION NOT NULL,
    out_p95    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (router_id, if_name, start_ms)
) WITHOUT ROWID;
CREATE INDEX traffic_hour_start ON traffic_hour (start_ms);
