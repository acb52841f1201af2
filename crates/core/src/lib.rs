//! The foundation every Pantau service stands on.
//!
//! Layout:
//! - [`telemetry`]: `tracing` logs, OTLP trace export, the Prometheus recorder,
//!   and W3C trace context for bus headers.
//! - [`bus`]: the [`bus::Bus`] trait with a NATS JetStream and an in-process
//!   implementation, plus typed protobuf publish/decode helpers.
//! - [`store`]: sqlx pools for SQLite (default) and PostgreSQL (a schema per
//!   service) with per-service embedded migrations.
//! - [`shutdown`]: SIGINT/SIGTERM into a `CancellationToken`, drain with a deadline.
//! - [`lifecycle`]: a lifecycle per service: supervised background tasks,
//!   restarted with backoff or, when critical, stopping their service.
//! - [`health`]: readiness checks, the admin router (`/metrics`, `/healthz`,
//!   `/readyz`) and the JSON error body.
//! - [`error`]: one error vocabulary ([`error::ErrorCode`]): gRPC code, HTTP
//!   status and stable string per code; bounded messages; strict enum arguments.
//! - [`auth`]: the token model (JWT keys, scopes, the process's own
//!   `service` token) shared by the gateway and every gRPC server.
//! - [`grpc`]: serves a tonic service with `grpc.health.v1`, reflection, TLS
//!   and the auth guard; builds clients that present credentials.
//! - [`audit`]: the audit log of gRPC writes, in each service's store.
//! - [`history`]: the rolled-up history model (minute and hour buckets,
//!   the p95 histogram) the collector and the sync-api store.
//! - [`service`]: what a service's `run` receives from its caller.
//! - [`cluster`]: whether this instance evaluates alerts for the cluster
//!   (its role, set by the sync-api's election).

pub mod audit;
pub mod auth;
pub mod bus;
pub mod cluster;
pub mod error;
pub mod grpc;
pub mod health;
pub mod history;
pub mod lifecycle;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod time;
