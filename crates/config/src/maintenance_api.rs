//! Maintenance windows through the APIs: one window checked as `maintenance[]`
//! checks each (errors keyed by the field alone: `start`, `cron`,
//! `targets[2]`), its protobuf mapping (`MaintenanceWindow` of
//! `events.proto`, strict: an unknown `checks` value, a negative duration or
//! a time out of range is refused naming the field), and its JSON decoding
//! for REST bodies with the failing field's path.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pantau_proto::duration::{from_duration, to_duration};
use pantau_proto::v1 as pb;

use crate::maintenance::problems;
use crate::proto::{ConvertError, duration_field, enum_field};
use crate::{CronSchedule, Invalid, MaintenanceChecks, MaintenanceWindow};

/// Most windows the API keeps (besides the configured ones).
pub const MAX_API_WINDOWS: usize = 256;

/// Every problem of one window, keyed by its field (`end`, `targets[2]`).
pub fn check(w: &MaintenanceWindow) -> Vec<Invalid> {
    problems(std::slice::from_ref(w))
        .into_iter()
        .map(|mut i| {
            if let Some(rest) = i.key.strip_prefix("maintenance[0].") {
                i.key = rest.to_owned();
            }
            i
        })
        .collect()
}

/// The first problem of `w` as a one-line refusal naming the field.
pub fn refusal(w: &MaintenanceWindow) -> Option<Invalid> {
    check(w).into_iter().next()
}

/// Decodes a REST body (JSON, the same fields as `maintenance[]`): the error
/// names the field's path and what was wrong, quoting at most 100 bytes.
pub fn from_json(text: &[u8]) -> Result<MaintenanceWindow, Invalid> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    let w: MaintenanceWindow = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        let msg = msg.split(" at line ").next().unwrap_or_default();
        Invalid {
            key: if path == "." { "body".to_owned() } else { path },
            value: String::new(),
            allowed: quote_spans(msg),
        }
    })?;
    match refusal(&w) {
        Some(i) => Err(i),
        None => Ok(w),
    }
}

/// serde's message with each `quoted` span cut to what an error may quote.
fn quote_spans(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                crate::types::quote(part).into_owned()
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

fn ts(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// Latest time a window may name (9999-12-31T23:59:59Z).
const MAX_SECONDS: i64 = 253_402_300_799;

fn time_field(field: &str, t: Option<&prost_types::Timestamp>) -> Result<Option<SystemTime>, ConvertError> {
    let Some(t) = t else { return Ok(None) };
    if !(0..=MAX_SECONDS).contains(&t.seconds) || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(ConvertError {
            field: field.to_owned(),
            reason: format!("{}s {}ns is not a time between 1970 and 9999", t.seconds, t.nanos),
        });
    }
    Ok(Some(
        UNIX_EPOCH
            + Duration::new(
                u64::try_from(t.seconds).unwrap_or(0),
                u32::try_from(t.nanos).unwrap_or(0),
            ),
    ))
}

/// The protobuf view of a window (`source`, `created_by`, `updated_at` and
/// `active` are the caller's to set).
pub fn to_proto(w: &MaintenanceWindow) -> pb::MaintenanceWindow {
    pb::MaintenanceWindow {
        id: w.id.clone(),
        name: w.name.clone().unwrap_or_default(),
        start: w.start.map(ts),
        end: w.end.map(ts),
        cron: w.cron.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_default(),
        duration: w.duration.map(to_duration),
        repeat_every: w.repeat_every.map(to_duration),
        repeat_until: w.repeat_until.map(ts),
        targets: w.targets.clone(),
        labels: w.labels.clone().into_iter().collect(),
        routers: w.routers.clone(),
        locations: w.locations.clone(),
        checks: match w.checks {
            MaintenanceChecks::Pause => pb::MaintenanceChecks::Pause,
            MaintenanceChecks::Continue => pb::MaintenanceChecks::Continue,
        } as i32,
        source: pb::MaintenanceSource::Unspecified as i32,
        created_by: String::new(),
        updated_at: None,
        active: false,
    }
}

/// A window from its protobuf, checked like a `maintenance[]` entry; the
/// error names the field.
pub fn from_proto(p: &pb::MaintenanceWindow) -> Result<MaintenanceWindow, ConvertError> {
    let checks = match enum_field::<pb::MaintenanceChecks>("checks", p.checks)? {
        pb::MaintenanceChecks::Unspecified | pb::MaintenanceChecks::Pause => MaintenanceChecks::Pause,
        pb::MaintenanceChecks::Continue => MaintenanceChecks::Continue,
    };
    let cron = if p.cron.is_empty() {
        None
    } else {
        Some(CronSchedule::new(&p.cron).map_err(|reason| ConvertError {
            field: "cron".to_owned(),
            reason,
        })?)
    };
    let w = MaintenanceWindow {
        id: p.id.clone(),
        name: Some(p.name.clone()).filter(|n| !n.is_empty()),
        start: time_field("start", p.start.as_ref())?,
        end: time_field("end", p.end.as_ref())?,
        cron,
        duration: duration_field("duration", p.duration.as_ref())?,
        repeat_every: duration_field("repeat_every", p.repeat_every.as_ref())?,
        repeat_until: time_field("repeat_until", p.repeat_until.as_ref())?,
        targets: p.targets.clone(),
        labels: p
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        routers: p.routers.clone(),
        locations: p.locations.clone(),
        checks,
    };
    match refusal(&w) {
        Some(i) => Err(ConvertError {
            field: i.key,
            reason: if i.value.is_empty() {
                i.allowed
            } else {
                format!("`{}` {}", i.value, i.allowed)
            },
        }),
        None => Ok(w),
    }
}

/// A duration of a protobuf answer, for views.
pub fn view_duration(d: Option<&prost_types::Duration>) -> Option<Duration> {
    d.and_then(from_duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Result<MaintenanceWindow, Invalid> {
        from_json(text.as_bytes())
    }

    #[test]
    fn a_window_round_trips_through_protobuf() {
        for yaml in [
            "{id: sat, start: '2026-12-05T02:00:00Z', end: '2026-12-05T04:00:00Z', repeat_every: 7d, repeat_until: '2027-06-01T00:00:00Z', labels: {site: jkt}, routers: [core-1], checks: continue, name: Core swap}",
            "{id: c, cron: '0 2 * * SAT', duration: 2h, start: '2026-12-05T00:00:00Z', targets: [web, api], locations: [jkt]}",
        ] {
            let w: MaintenanceWindow = serde_yaml::from_str(yaml).unwrap();
            assert!(check(&w).is_empty(), "{:?}", check(&w));
            assert_eq!(from_proto(&to_proto(&w)).unwrap(), w);
        }
    }

    #[test]
    fn hostile_protobuf_windows_are_refused_naming_the_field() {
        let good: MaintenanceWindow =
            serde_yaml::from_str("{id: a, start: '2026-12-05T02:00:00Z', end: '2026-12-05T04:00:00Z', targets: [x]}")
                .unwrap();
        let base = to_proto(&good);
        let cases: Vec<(pb::MaintenanceWindow, &str)> = vec![
            (
                pb::MaintenanceWindow {
                    checks: 7,
                    ..base.clone()
                },
                "checks",
            ),
            (
                pb::MaintenanceWindow {
                    checks: -1,
                    ..base.clone()
                },
                "checks",
            ),
            (
                pb::MaintenanceWindow {
                    start: Some(prost_types::Timestamp { seconds: -5, nanos: 0 }),
                    ..base.clone()
                },
                "start",
            ),
            (
                pb::MaintenanceWindow {
                    end: Some(prost_types::Timestamp {
                        seconds: i64::MAX,
                        nanos: 0,
                    }),
                    ..base.clone()
                },
                "end",
            ),
            (
                pb::MaintenanceWindow {
                    end: Some(prost_types::Timestamp {
                        seconds: 0,
                        nanos: 2_000_000_000,
                    }),
                    ..base.clone()
                },
                "end",
            ),
            (
                pb::MaintenanceWindow {
                    end: base.start,
                    ..base.clone()
                },
                "end",
            ),
            (
                pb::MaintenanceWindow {
                    repeat_every: Some(prost_types::Duration { seconds: -60, nanos: 0 }),
                    ..base.clone()
                },
                "repeat_every",
            ),
            (
                pb::MaintenanceWindow {
                    cron: "0 0 30 2 *".into(),
                    ..base.clone()
                },
                "cron",
            ),
            (
                pb::MaintenanceWindow {
                    cron: "0 2 * * *".into(),
                    duration: Some(prost_types::Duration {
                        seconds: 3600,
                        nanos: 0,
                    }),
                    ..base.clone()
                },
                "end",
            ),
            (
                pb::MaintenanceWindow {
                    targets: vec!["ok".into(), "x".into(), "b a d".into()],
                    ..base.clone()
                },
                "targets[2]",
            ),
            (
                pb::MaintenanceWindow {
                    targets: vec!["x".into(); 1001],
                    ..base.clone()
                },
                "targets",
            ),
            (
                pb::MaintenanceWindow {
                    id: "x".repeat(1 << 20),
                    ..base.clone()
                },
                "id",
            ),
            (
                pb::MaintenanceWindow {
                    id: String::new(),
                    ..base.clone()
                },
                "id",
            ),
            (
                pb::MaintenanceWindow {
                    targets: vec![],
                    ..base.clone()
                },
                "targets",
            ),
        ];
        for (p, field) in cases {
            let e = from_proto(&p).expect_err(field);
            assert_eq!(e.field, field, "{e}");
            assert!(e.to_string().len() < 1100, "quoted briefly: {}", e.to_string().len());
        }
        assert!(from_proto(&base).is_ok());
    }

    #[test]
    fn hostile_json_windows_are_refused_naming_the_field() {
        let huge = "y".repeat(1 << 20);
        let cases = [
            (
                r#"{"id":"a","start":"2026-12-05T02:00:00Z","end":"2026-12-05T01:00:00Z","targets":["x"]}"#,
                "end",
            ),
            (
                r#"{"id":"a","start":"soon","end":"2026-12-05T01:00:00Z","targets":["x"]}"#,
                "start",
            ),
            (
                r#"{"id":"a","start":5,"end":"2026-12-05T01:00:00Z","targets":["x"]}"#,
                "start",
            ),
            (r#"{"id":"a","cron":"0 2 * *","duration":"1h","targets":["x"]}"#, "cron"),
            (
                r#"{"id":"a","cron":"0 0 30 2 *","duration":"1h","targets":["x"]}"#,
                "cron",
            ),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":"1h","end":"2026-12-05T01:00:00Z","targets":["x"]}"#,
                "end",
            ),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":"1h","repeat_every":"7d","targets":["x"]}"#,
                "repeat_every",
            ),
            (r#"{"id":"a","cron":"0 2 * * *","targets":["x"]}"#, "duration"),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":"forever","targets":["x"]}"#,
                "duration",
            ),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":"1h","targets":["x","y","z z"]}"#,
                "targets[2]",
            ),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":"1h","targets":"x"}"#,
                "targets",
            ),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":"1h","targets":["x"],"checks":"stop"}"#,
                "checks",
            ),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":"1h","targets":["x"],"colour":"red"}"#,
                "colour",
            ),
            (
                r#"{"id":"a","cron":"0 2 * * *","duration":"1h","targets":[1]}"#,
                "targets[0]",
            ),
            ("[]", "body"),
            ("garbage", "body"),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(body, field)| {
                let e = json(body).expect_err(body);
                (e.key != *field).then(|| format!("{body}: {} ({e})", e.key))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
        let e = json(&format!(
            r#"{{"id":"a","cron":"{huge}","duration":"1h","targets":["x"]}}"#
        ))
        .unwrap_err();
        assert_eq!(e.key, "cron");
        assert!(e.to_string().len() < 1000, "{}", e.to_string().len());
        let e = json(&format!(
            r#"{{"id":"a","cron":"0 2 * * *","duration":"1h","targets":["x"],"name":"{huge}"}}"#
        ))
        .unwrap_err();
        assert_eq!(e.key, "name");
        let many: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
        let body = serde_json::json!({"id": "a", "cron": "0 2 * * *", "duration": "1h", "targets": many}).to_string();
        assert_eq!(json(&body).unwrap_err().key, "targets");
        let w = json(r#"{"id":"a","cron":"0 2 * * *","duration":"1h","targets":["x"]}"#).unwrap();
        assert_eq!(w.duration, Some(Duration::from_secs(3600)));
    }
}
