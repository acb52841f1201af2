-- Router interfaces that went down while administratively up and are still
-- down (what the default interface-down rule reads), so a restarted
-- collector still knows it was a change: one row per such interface,
-- written on the change down and deleted when it is up again or disabled.
CREATE TABLE interface_down (
    router_id TEXT NOT NULL,
    if_index  BIGINT NOT NULL,
    since_ms  BIGINT NOT NULL,
    PRIMARY KEY (router_id, if_index)
);
