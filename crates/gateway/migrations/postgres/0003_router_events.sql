-- Each router's recent events for the console's timeline (reboots, counter
-- resets, interface and reachability changes, WAN detections), as the
-- protobuf RouterEvent; the newest 100 per router are kept.
CREATE TABLE router_events (
    seq    BIGSERIAL PRIMARY KEY,
    router TEXT NOT NULL,
    event  BYTEA NOT NULL
);
CREATE INDEX router_events_router ON router_events (router, seq);
