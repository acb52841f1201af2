-- The history of results at each location as the primary holds them (its
-- own and those its dependents pushed): one row per location, target and
-- minute or hour, the collector's history model (collector.history's
-- retention; latencies in ms). `hist` is the latency histogram the p95
-- comes from, as JSON {bucket: count}: kept on minute rows too, since a
-- location's results for one minute arrive in several pushes; emptied a day
-- after the row's start. No raw results.
CREATE TABLE location_history_minute (
    location   TEXT NOT NULL,
    target_id  TEXT NOT NULL,
    start_ms   BIGINT NOT NULL,
    checks     BIGINT NOT NULL,
    up         BIGINT NOT NULL,
    lat_min    DOUBLE PRECISION NOT NULL,
    lat_sum    DOUBLE PRECISION NOT NULL,
    lat_max    DOUBLE PRECISION NOT NULL,
    lat_p95    DOUBLE PRECISION NOT NULL,
    hist       TEXT NOT NULL,
    PRIMARY KEY (location, target_id, start_ms)
);
CREATE INDEX location_history_minute_start ON location_history_minute (start_ms);
CREATE TABLE location_history_hour (
    location   TEXT NOT NULL,
    target_id  TEXT NOT NULL,
    start_ms   BIGINT NOT NULL,
    checks     BIGINT NOT NULL,
    up         BIGINT NOT NULL,
    lat_min    DOUBLE PRECISION NOT NULL,
    lat_sum    DOUBLE PRECISION NOT NULL,
    lat_max    DOUBLE PRECISION NOT NULL,
    lat_p95    DOUBLE PRECISION NOT NULL,
    hist       TEXT NOT NULL,
    PRIMARY KEY (location, target_id, start_ms)
);
CREATE INDEX location_history_hour_start ON location_history_hour (start_ms);
