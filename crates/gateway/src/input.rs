//! What the API accepts, defined once: each bound here is both what a
//! handler checks and what the OpenAPI document declares (a `pattern`, an
//! `enum`), so a request the document allows is one the gateway takes, and
//! one it forbids is a 400 naming the field.
//!
//! - [`TOKEN`]: ids of targets, rules, alerts, silences, routers, instances
//!   and API keys (letters, digits, `-`, `_`; 1–128);
//! - [`USERNAME`]: user names;
//! - [`TIME`]: RFC 3339 times such as `2026-11-23T10:00:00Z` or
//!   `2026-11-23T17:00:00.5+07:00`;
//! - [`SPAN`]: periods and lifetimes such as `90s`, `15m`, `24h`, `30d`;
//! - [`list_pattern`]: comma-separated choices such as `firing,acknowledged`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pantau_core::error::{ApiError, ErrorCode};
use regex::Regex;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Object, RefOr, Schema};

/// Ids: letters, digits, `-` or `_`, 1–128 of them.
pub const TOKEN: &str = "^[A-Za-z0-9_-]{1,128}$";
/// User names: letters, digits, `-`, `_`, `.` or `@`, 1–64 of them.
pub const USERNAME: &str = "^[A-Za-z0-9._@-]{1,64}$";
/// An RFC 3339 time: date, `T`, time with optional fraction, `Z` or an offset.
/// Days past a month's end roll over into the next month (`02-30` is `03-02`).
pub const TIME: &str = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";
/// A span: a whole number of seconds, minutes, hours or days.
pub const SPAN: &str = "^[1-9][0-9]{0,5}[smhd]$";
/// A period or lifetime: a whole number of minutes, hours or days (at least 1m).
pub const PERIOD: &str = "^[1-9][0-9]{0,5}[mhd]$";

fn re(pattern: &str) -> Regex {
    // The patterns are constants, tested below.
    Regex::new(pattern).unwrap_or_else(|e| unreachable!("pattern {pattern}: {e}"))
}

fn matches(pattern: &'static str, s: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<&'static str, Regex>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    cache.entry(pattern).or_insert_with(|| re(pattern)).is_match(s)
}

/// A 400 naming the field.
pub fn bad(reason: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message).reason(reason)
}

/// A string schema with `pattern`.
pub fn pattern_schema(pattern: impl Into<String>, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern.into()))
        .description(Some(description.to_owned()))
        .build()
}

/// A string schema of one of `choices`.
pub fn enum_schema(choices: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(choices.iter().copied()))
        .build()
}

/// `^(a|b)(,(a|b))*$`: one or more of `choices`, comma-separated, no spaces.
pub fn list_pattern(choices: &[&str]) -> String {
    let one = choices.join("|");
    format!("^({one})(,({one}))*$")
}

/// Checks a path id against [`TOKEN`].
pub fn token(field: &str, id: String) -> Result<String, ApiError> {
    if matches(TOKEN, &id) {
        Ok(id)
    } else {
        Err(bad(
            "invalid_path",
            format!("{field} `{id}` is not valid: use 1–128 letters, digits, `-` or `_`"),
        ))
    }
}

/// Checks a path user name against [`USERNAME`].
pub fn username(name: String) -> Result<String, ApiError> {
    if matches(USERNAME, &name) {
        Ok(name)
    } else {
        Err(bad(
            "invalid_path",
            format!(
                "username `{}` is not valid: use 1–64 letters, digits, `-`, `_`, `.` or `@`",
                pantau_config::types::quote(&name)
            ),
        ))
    }
}

/// Parses `raw` as comma-separated labels, every one of which must parse.
pub fn list<T>(
    field: &str,
    raw: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    choices: &str,
) -> Result<Vec<T>, ApiError> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    raw.split(',')
        .map(|part| {
            parse(part).ok_or_else(|| {
                bad(
                    "invalid_query",
                    format!("{field} `{part}` is not allowed: use {choices}, comma-separated"),
                )
            })
        })
        .collect()
}

/// Parses an RFC 3339 time ([`TIME`]).
pub fn time(field: &str, raw: &str) -> Result<SystemTime, ApiError> {
    let refuse = || {
        bad(
            "invalid_query",
            format!(
                "{field} `{}` is not an RFC 3339 time such as 2026-11-23T10:00:00Z",
                pantau_config::types::quote(raw)
            ),
        )
    };
    if !matches(TIME, raw) {
        return Err(refuse());
    }
    // The pattern fixed every position: YYYY-MM-DDTHH:MM:SS[.f](Z|±HH:MM).
    let num = |from: usize, to: usize| raw[from..to].parse::<i64>().map_err(|_| refuse());
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let rest = &raw[19..];
    let (frac, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            (&r[..end], &r[end..])
        }
        None => ("", rest),
    };
    let nanos = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse::<u32>().map_err(|_| refuse())?
    };
    let offset = match zone {
        "Z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let hh = z[1..3].parse::<i64>().map_err(|_| refuse())?;
            let mm = z[4..6].parse::<i64>().map_err(|_| refuse())?;
            sign * (hh * 3600 + mm * 60)
        }
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let at = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs.unsigned_abs(), nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
    };
    at.ok_or_else(refuse)
}

/// Days since 1970-01-01 of a proleptic Gregorian date; a day past the
/// month's end counts on into the next month (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses a span ([`SPAN`]): `90s`, `15m`, `24h`, `30d`.
pub fn span(field: &str, raw: &str, code: &'static str) -> Result<Duration, ApiError> {
    spanned(SPAN, field, raw, code)
}

/// Parses a period ([`PERIOD`]): `15m`, `24h`, `30d`.
pub fn period(field: &str, raw: &str, code: &'static str) -> Result<Duration, ApiError> {
    spanned(PERIOD, field, raw, code)
}

fn spanned(pattern: &'static str, field: &str, raw: &str, code: &'static str) -> Result<Duration, ApiError> {
    if !matches(pattern, raw) {
        return Err(bad(
            code,
            format!("{field} `{raw}` is not a span such as 90s, 15m, 24h or 30d"),
        ));
    }
    let (n, unit) = raw.split_at(raw.len() - 1);
    let n: u64 = n
        .parse()
        .map_err(|_| bad(code, format!("{field} `{raw}` is not a number with a unit")))?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => 86_400,
    };
    Ok(Duration::from_secs(n * per))
}

/// [`TOKEN`] as a schema.
pub fn token_schema() -> Object {
    pattern_schema(TOKEN, "1–128 letters, digits, `-` or `_`")
}

/// [`TIME`] as a schema.
pub fn time_schema() -> Object {
    pattern_schema(TIME, "RFC 3339, e.g. 2026-11-23T10:00:00Z")
}

/// [`SPAN`] as a schema.
pub fn span_schema() -> Object {
    pattern_schema(SPAN, "a whole number of s, m, h or d, e.g. 24h")
}

/// [`PERIOD`] as a schema.
pub fn period_schema() -> Object {
    pattern_schema(PERIOD, "a whole number of m, h or d, e.g. 24h")
}

/// Control characters (`char::is_control`), as a regex class body.
const CONTROL: &str = r"\u0000-\u001F\u007F-\u009F";
/// Control characters but new lines, carriage returns and tabs.
const CONTROL_BUT_LINES: &str = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F";

/// A text of at most `max` characters without control characters
/// (`multiline`: but `\n`, `\r` and `\t`); `nonblank`: with at least one
/// character that is not white space.
pub fn text_schema(max: usize, multiline: bool, nonblank: bool) -> Object {
    let class = if multiline { CONTROL_BUT_LINES } else { CONTROL };
    let pattern = if nonblank {
        format!(r"^[^{class}]*[^\s{class}][^{class}]*$")
    } else {
        format!("^[^{class}]*$")
    };
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(nonblank.then_some(1))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .build()
}

/// A map of label names (`[A-Za-z_][A-Za-z0-9_]*`, 1–64) to one-line values
/// of at most `max_value` characters, at most `most` of them.
pub fn labels_schema(most: usize, max_value: usize) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(pattern_schema("^[A-Za-z_][A-Za-z0-9_]{0,63}$", "a label name")))
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::RefOr(schema(
            text_schema(max_value, false, false),
        ))))
        .max_properties(Some(most))
        .build()
}

/// `o`, or `null`: for an optional field of a body.
pub fn or_null(mut o: Object) -> Object {
    use utoipa::openapi::schema::SchemaType;
    o.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    o
}

/// Wraps a schema for `schema_with`.
pub fn schema(o: Object) -> RefOr<Schema> {
    RefOr::T(Schema::Object(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn text_patterns_say_what_the_parsers_take() {
        let re = |o: Object| regex::Regex::new(&o.pattern.unwrap()).unwrap();
        let line = re(text_schema(10, false, false));
        assert!(line.is_match("ok text") && line.is_match(""));
        for bad in ["a\nb", "\u{1a}", "\u{85}", "\u{7f}"] {
            assert!(!line.is_match(bad), "{bad:?}");
        }
        let multi = re(text_schema(10, true, false));
        assert!(multi.is_match("a\nb\r\tc") && !multi.is_match("a\u{15}"));
        let title = re(text_schema(10, false, true));
        assert!(title.is_match(" x ") && !title.is_match("  ") && !title.is_match(""));
        // Every character the schema allows, the parsers take (and the reverse).
        for c in (0u32..0x200).filter_map(char::from_u32) {
            let s = c.to_string();
            assert_eq!(line.is_match(&s), !c.is_control(), "{c:?}");
            assert_eq!(
                multi.is_match(&s),
                !c.is_control() || matches!(c, '\n' | '\r' | '\t'),
                "{c:?}"
            );
        }
    }

    #[test]
    fn times_parse_as_the_pattern_says() {
        assert_eq!(secs(time("since", "1970-01-01T00:00:00Z").unwrap()), 0);
        assert_eq!(secs(time("since", "2026-11-23T10:00:00Z").unwrap()), 1_795_428_000);
        assert_eq!(
            secs(time("since", "2026-11-23T17:00:00.5+07:00").unwrap()),
            1_795_428_000
        );
        // Past the month's end: 2026-02-30 is 2026-03-02.
        assert_eq!(
            time("since", "2026-02-30T00:00:00Z").unwrap(),
            time("since", "2026-03-02T00:00:00Z").unwrap()
        );
        assert!(time("since", "0001-01-01T00:00:00Z").is_ok());
        for bad in [
            "yesterday",
            "2026-11-23 10:00:00Z",
            "2026-11-23T10:00:00",
            "2026-13-01T00:00:00Z",
            "",
        ] {
            let e = time("since", bad).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn spans_tokens_and_lists() {
        assert_eq!(span("period", "24h", "q").unwrap(), Duration::from_secs(86_400));
        assert_eq!(span("period", "90s", "q").unwrap(), Duration::from_secs(90));
        assert!(period("period", "90s", "q").is_err(), "a period is at least 1m");
        assert_eq!(period("period", "30d", "q").unwrap(), Duration::from_secs(30 * 86_400));
        for bad in ["0h", "1h30m", "1 h", "", "1w", "1234567d"] {
            assert!(span("period", bad, "q").is_err(), "{bad}");
        }
        assert!(token("id", "web-1_a".into()).is_ok());
        assert!(token("id", "a.b".into()).is_err());
        assert!(token("id", "x".repeat(129)).is_err());
        assert!(username("ana@example.net".into()).is_ok());
        let p = |s: &str| ["a", "b"].contains(&s).then(|| s.to_owned());
        assert_eq!(list("state", Some("a,b"), p, "a or b").unwrap(), ["a", "b"]);
        assert!(list("state", Some(""), p, "a or b").is_err(), "empty is no list");
        assert!(list("state", Some("a,"), p, "a or b").is_err());
        assert!(matches(Box::leak(list_pattern(&["a", "b"]).into_boxed_str()), "a,b,a"));
    }
}
