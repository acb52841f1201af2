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

/// `std::time::Duration` to and from protobuf `Duration`.
pub mod duration {
    use std::time::Duration;

    /// A protobuf `Duration` for `d`.
    pub fn to_duration(d: Duration) -> prost_types::Duration {
        prost_types::Duration {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        }
    }

    /// The `Duration` of a protobuf `Duration`; `None` when negative or malformed.
    pub fn from_duration(d: &prost_types::Duration) -> Option<Duration> {
        let secs = u64::try_from(d.seconds).ok()?;
        let nanos = u32::try_from(d.nanos).ok()?;
        Some(Duration::new(secs, nanos))
    }
}

pub use prost;
pub use prost_types;
