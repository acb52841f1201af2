//! End-to-end tests of the `pantau` binary: the real process, real ports,
//! a real nats-server.

mod api;
mod cli;
mod cluster;
mod contract;
mod e2e;
mod lifecycle;
mod support;
mod sync;
mod traces;
