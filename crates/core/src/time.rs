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

/// The last second of year 9999, the latest instant RFC 3339 (and so the
/// API) can write; a later timestamp from the bus or a client is malformed.
pub const MAX_SECONDS: i64 = 253_402_300_799;

/// The `SystemTime` of a protobuf `Timestamp`; `None` before the epoch,
/// after year 9999, or malformed (nanos outside 0..1e9).
pub fn from_timestamp(ts: &prost_types::Timestamp) -> Option<SystemTime> {
    if ts.seconds > MAX_SECONDS || !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    let secs = u64::try_from(ts.seconds).ok()?;
    let nanos = u32::try_from(ts.nanos).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

pub use pantau_proto::duration::{from_duration, to_duration};

/// RFC 3339 with milliseconds, UTC (`2026-11-23T16:51:27.123Z`); an instant
/// after year 9999 (which RFC 3339 cannot write) is written as the last
/// millisecond of 9999 rather than panicking.
pub fn rfc3339(t: SystemTime) -> String {
    let max = UNIX_EPOCH + Duration::new(MAX_SECONDS.unsigned_abs(), 999_000_000);
    humantime::format_rfc3339_millis(t.min(max)).to_string()
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
    fn out_of_range_timestamps_are_refused_not_panics() {
        let ts = |seconds, nanos| prost_types::Timestamp { seconds, nanos };
        assert_eq!(from_timestamp(&ts(MAX_SECONDS + 1, 0)), None, "year 10000");
        assert_eq!(from_timestamp(&ts(i64::MAX, 999_999_999)), None);
        assert_eq!(from_timestamp(&ts(-1, 0)), None, "before the epoch");
        assert_eq!(from_timestamp(&ts(0, -1)), None);
        assert_eq!(from_timestamp(&ts(0, 1_000_000_000)), None);
        let last = from_timestamp(&ts(MAX_SECONDS, 999_999_999)).expect("the end of 9999");
        assert_eq!(rfc3339(last), "9999-12-31T23:59:59.999Z");
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(rfc3339(far), "9999-12-31T23:59:59.999Z", "clamped, no panic");
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
