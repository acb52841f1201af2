//! The collector as a library: its gRPC service and results on the bus over
//! the in-process bus, and target state persisted in SQLite and PostgreSQL.

#![allow(
    clippy::many_single_char_names,
    clippy::field_reassign_with_default,
    clippy::assigning_clones
)]

mod checks;
mod contract;
mod grpc;
mod kafka;
mod panics;
mod pause;
mod routeros;
mod routers;
mod snmpsim;
mod state;
mod targets;
mod trust;
