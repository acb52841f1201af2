//! The collector as a library: its gRPC service and results on the bus over
//! the in-process bus, and target state persisted in SQLite and PostgreSQL.

mod checks;
mod grpc;
mod state;
mod targets;
