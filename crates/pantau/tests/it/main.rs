//! End-to-end tests of the `pantau` binary: the real process, real ports,
//! a real nats-server.

mod cli;
mod e2e;
mod support;
mod traces;
