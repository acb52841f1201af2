//! Conversions between `std` time and the protobuf well-known types.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A protobuf `Timestamp` for `t`.
pub fn to_timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// The `SystemTime` of a protobuf `Timestamp`; `None` before the epoch or malformed.
pub fn from_timestamp(ts: &prost_types::Timestamp) -> Option<SystemTime> {
    let secs = u64::try_from(ts.seconds).ok()?;
    let nanos = u32::try_from(ts.nanos).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

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

/// RFC 3339 with milliseconds, UTC (`2026-11-23T16:51:27.123Z`).
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_000_000);
        assert_eq!(from_timestamp(&to_timestamp(t)), Some(t));
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn negative_duration_is_rejected() {
        let d = prost_types::Duration { seconds: -1, nanos: 0 };
        assert_eq!(from_duration(&d), None);
        assert_eq!(
            from_duration(&to_duration(Duration::from_millis(1500))),
            Some(Duration::from_millis(1500))
        );
    }
}
