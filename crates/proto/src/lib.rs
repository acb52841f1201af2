//! Pantau's wire contracts: the protobuf messages published on the bus
//! (`events.proto`) and the gRPC services (`collector.proto`, …), generated
//! at build time from `proto/pantau/v1` with protox, so no system `protoc` is
//! needed.
//!
//! Everything lives in [`v1`]; [`FILE_DESCRIPTOR_SET`] feeds gRPC server
//! reflection.

/// Package `pantau.v1`.
#[allow(clippy::pedantic, clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("pantau.v1");
}

/// Encoded `FileDescriptorSet` of every Pantau `.proto`, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pantau_descriptor.bin"));

pub use prost;
pub use prost_types;
