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

    /// Without `entry_json`: it holds the channel's secrets.
    impl std::fmt::Debug for NotificationChannelRef {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("NotificationChannelRef")
                .field("id", &self.id)
                .field("kind", &self.kind)
                .field("entry_json", &"<redacted>")
                .finish()
        }
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_channel_ref_never_prints_its_secrets() {
        let c = super::v1::NotificationChannelRef {
            id: "ops".into(),
            kind: "slack".into(),
            entry_json: r#"{"url":"https://hooks.slack.com/services/T0/B0/very-secret"}"#.into(),
        };
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("ops") && shown.contains("<redacted>"), "{shown}");
    }
}
