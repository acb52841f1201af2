//! The WAN detector as a library: fed by the collector's router poller
//! against a real `snmpd`, over gRPC, and over a real nats-server. (The
//! gateway's router routes are tested in `crates/pantau/tests/it`.)

mod grpc;
mod snmpd;
mod store;
mod support;
