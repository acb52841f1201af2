-- Maintenance windows made through the REST or gRPC API (`maintenance[]` of
-- the configuration is not stored: it is read-only through the APIs). The
-- window is kept as the JSON of `pantau_config::MaintenanceWindow`, parsed
-- again (and checked) when the engine starts.
CREATE TABLE maintenance_windows (
    id         TEXT PRIMARY KEY NOT NULL,
    body       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
