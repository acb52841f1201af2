//! Integration tests of the alert engine.
mod alertmanager;
mod cluster;
mod defaults;
mod deliveries;
mod derived;
mod engine;
mod fuzz;
mod incident_cluster;
mod incidents;
mod maintenance;
mod manual;
mod nats;
mod resolve;
mod service;
mod store;
mod suppress;
mod watchdog;
