//! Serde for durations written the way operators write them: `30s`, `5m`,
//! `1h30m`, `250ms`, or a bare number of seconds (the original
//! specification's `SYNC_INTERVAL=30`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de};

/// Parses `30s`, `1h30m`, `250ms` or a number of seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return secs_to_duration(secs, text);
    }
    humantime::parse_duration(t).map_err(|_| {
        format!("`{text}` is not a duration: use a non-negative duration such as `30s`, `5m`, `1h30m` or `250ms`")
    })
}

fn secs_to_duration(secs: f64, shown: &str) -> Result<Duration, String> {
    // `try_from`: a number of seconds no duration can hold (`1e300`) is an
    // error, not a panic.
    Duration::try_from_secs_f64(secs).map_err(|_| {
        format!(
            "`{}` is not a duration: use a non-negative duration such as `30s`, `5m`, `1h30m` or `250ms`",
            crate::types::quote(shown)
        )
    })
}

/// Renders a duration the way [`parse`] reads it.
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Text(String),
    Int(i64),
    Float(f64),
}

fn from_raw(raw: Raw) -> Result<Duration, String> {
    match raw {
        Raw::Text(t) => parse(&t),
        Raw::Int(i) => secs_to_duration(i as f64, &i.to_string()),
        Raw::Float(f) => secs_to_duration(f, &f.to_string()),
    }
}

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    from_raw(Raw::deserialize(d)?).map_err(de::Error::custom)
}

/// The same for `Option<Duration>`.
pub mod option {
    use super::{Deserialize, Deserializer, Duration, Raw, Serializer, de, format, from_raw};

    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&format(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<Raw>::deserialize(d)?
            .map(from_raw)
            .transpose()
            .map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_operator_forms() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("0.5"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn rejects_negative_and_garbage() {
        assert!(parse("-5s").unwrap_err().contains("`-5s` is not a duration"));
        assert!(parse("-5").is_err());
        assert!(parse("soon").is_err());
        assert!(parse("NaN").is_err());
        // Once a panic inside `Duration::from_secs_f64`.
        assert!(parse("1e300").unwrap_err().contains("is not a duration"));
        assert!(parse("inf").is_err());
    }
}
