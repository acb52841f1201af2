//! Integration tests of `pantau-core` against real servers.
//!
//! Layout:
//! - [`bus`]: the bus contract suite, generated for the in-process bus and
//!   for NATS JetStream (a `nats-server` per test from `pantau-testkit`), and
//!   the NATS-only tests: durable resume and a server restart.
//! - [`store`]: the store suite, generated for SQLite (a temporary directory)
//!   and PostgreSQL (a server per test from `pantau-testkit`), and the
//!   PostgreSQL-only schema-per-service test.
//!
//! A missing `nats-server` or PostgreSQL fails the tests with the Debian
//! package to install; nothing is skipped.

mod bus;
mod grpc_tls;
mod store;
