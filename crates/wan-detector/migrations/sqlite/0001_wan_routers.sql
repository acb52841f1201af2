-- The last WAN answer published per router (`wan_detected`), so a restarted
-- detector does not announce an unchanged answer again. One row per router.
CREATE TABLE wan_routers (
    router_id     TEXT PRIMARY KEY NOT NULL,
    signature     TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
