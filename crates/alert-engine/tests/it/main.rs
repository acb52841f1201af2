//! Integration tests of the alert engine.
mod fuzz;
mod store;
