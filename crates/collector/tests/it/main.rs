//! The collector as a library: its gRPC service and results on the bus over
//! the in-process bus, and target state persisted in SQLite and PostgreSQL.

#![allow(
    clippy::many_single_char_names,
    clippy::field_reassign_with_default,
    clippy::assigning_clones
)]

mod backlog;
mod checks;
mod contract;
mod grpc;
mod grpc_health;
mod http_direct;
mod http_options;
mod kafka;
mod kafka_security;
mod mail;
mod maintenance;
mod mqtt;
mod panics;
mod pause;
mod redis;
mod routeros;
mod routers;
mod snmpsim;
mod sql;
mod state;
mod steps;
mod targets;
mod traffic;
mod trust;
mod udp_ssh;
mod websocket;
