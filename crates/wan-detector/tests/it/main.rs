//! The WAN detector as a library: fed by the collector's router poller
//! against a real `snmpd`, over gRPC, over a real nats-server, and behind the
//! gateway's router routes.

mod gateway;
mod grpc;
mod snmpd;
mod store;
mod support;
