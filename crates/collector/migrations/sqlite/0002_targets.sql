-- Targets added through CollectorService.UpsertTarget; the config file's
-- targets are not stored. `config` is the target's JSON configuration.
CREATE TABLE targets (
    id         TEXT PRIMARY KEY NOT NULL,
    config     TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
