//! End-to-end tests of the `pantau` binary: the real process, real ports,
//! a real nats-server; and the gateway's routes against the real services
//! behind them, in process (`gateway_routes`).

mod api;
mod cli;
mod cluster;
mod console;
mod console_admin;
mod console_incidents;
mod console_net;
mod contract;
mod dependencies;
mod e2e;
mod fuzz_bus;
mod gateway_routes;
mod grpc_auth;
mod incidents;
mod lifecycle;
mod maintenance_api;
mod manual_alerts;
mod multilocation;
mod openapi_contract;
mod outage;
mod probes_e2e;
mod resolve_after_silence;
mod router_dependencies;
mod routers_snmp;
mod support;
mod sync;
mod sync_contract;
mod traces;
mod traces_cluster;
mod traffic;
