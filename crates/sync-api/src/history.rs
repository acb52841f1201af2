//! The primary's history of each location's results: every result an
//! instance pushes (the primary's own included) is folded, in the same
//! transaction that accepts it, into a per-minute and a per-hour row of
//! its location and target — the collector's history model
//! ([`pantau_core::history`]: checks, up, latency min/avg/max/p95) with the
//! retention of `collector.history`. A duplicate push is refused by its
//! sequence before it gets here, so each result counts once.
//!
//! [`fold`] groups a batch into buckets; `write_history!` merges them into the rows inside the ingest transaction; [`query`]
//! reads a range; [`prune`] applies retention.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use pantau_config::HistoryConfig;
use pantau_core::history::{Bucket, MINUTE_MS, Point, Resolution, ms_of, time_of};
use pantau_core::store::{Store, StoreError};
use pantau_core::with_pool;
use sqlx::Row;

use crate::store::Incoming;

/// A histogram is dropped from rows this much older than their start:
/// late pushes (a dependent's outbox after an outage) still merge into it.
const HIST_KEPT_MS: i64 = 86_400_000;

/// (location, target, minute start in ms).
pub type Key = (String, String, i64);

/// Folds accepted results into one bucket per location, target and minute.
pub fn fold<'a>(results: impl IntoIterator<Item = &'a Incoming>) -> BTreeMap<Key, Bucket> {
    let mut out: BTreeMap<Key, Bucket> = BTreeMap::new();
    for r in results {
        let minute = r.checked_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        out.entry((r.location.clone(), r.target_id.clone(), minute))
            .or_default()
            .add(r.up, r.latency_us.max(0) as f64 / 1e3);
    }
    out
}

/// The row a bucket merges into, read back.
pub fn row_bucket(checks: i64, up: i64, lat_min: f64, lat_sum: f64, lat_max: f64, hist: &str) -> Bucket {
    Bucket {
        checks: checks.max(0) as u64,
        up: up.max(0) as u64,
        lat_min,
        lat_sum,
        lat_max,
        hist: pantau_core::history::Hist::from_json(hist),
    }
}

/// Merges `$buckets` ([`fold`]'s) into the minute and hour rows, inside the
/// transaction `$tx` (of either dialect: `with_pool!` expands it per pool).
#[macro_export]
#[doc(hidden)]
macro_rules! write_history {
    ($tx:expr, $buckets:expr) => {{
        for ((location, target, minute), b) in $buckets {
            let hour = minute.div_euclid(pantau_core::history::HOUR_MS) * pantau_core::history::HOUR_MS;
            for (table, start) in [("location_history_minute", *minute), ("location_history_hour", hour)] {
                let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT checks, up, lat_min, lat_sum, lat_max, hist FROM {table}
                     WHERE location = $1 AND target_id = $2 AND start_ms = $3"
                )))
                .bind(location)
                .bind(target)
                .bind(start)
                .fetch_optional(&mut *$tx)
                .await?;
                let mut merged = existing.map_or_else(pantau_core::history::Bucket::default, |r| {
                    $crate::history::row_bucket(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), &r.get::<String, _>(5))
                });
                merged.merge(b);
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {table} (location, target_id, start_ms, checks, up, lat_min, lat_sum, lat_max, lat_p95, hist)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (location, target_id, start_ms) DO UPDATE SET checks = $4, up = $5, lat_min = $6,
                       lat_sum = $7, lat_max = $8, lat_p95 = $9, hist = $10"
                )))
                .bind(location)
                .bind(target)
                .bind(start)
                .bind(merged.checks as i64)
                .bind(merged.up as i64)
                .bind(merged.lat_min)
                .bind(merged.lat_sum)
                .bind(merged.lat_max)
                .bind(merged.hist.p95())
                .bind(merged.hist.to_json())
                .execute(&mut *$tx)
                .await?;
            }
        }
    }};
}

/// The stored points of `target` at `location` with a start in `[from, to)`.
pub async fn query(
    store: &Store,
    location: &str,
    target: &str,
    from: SystemTime,
    to: SystemTime,
    res: Resolution,
) -> Result<Vec<Point>, StoreError> {
    let table = match res {
        Resolution::Minute => "location_history_minute",
        Resolution::Hour => "location_history_hour",
    };
    let sql = format!(
        "SELECT start_ms, checks, up, lat_min, lat_sum, lat_max, hist, lat_p95 FROM {table}
         WHERE location = $1 AND target_id = $2 AND start_ms >= $3 AND start_ms < $4 ORDER BY start_ms"
    );
    Ok(with_pool!(store, pool => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .bind(location)
        .bind(target)
        .bind(ms_of(from))
        .bind(ms_of(to))
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| {
            let b = row_bucket(r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), &r.get::<String, _>(6));
            let mut p = b.point(time_of(r.get(0)));
            if b.hist.total() == 0 {
                // The histogram was dropped: the p95 stored with the row stands.
                p.lat_p95 = r.get(7);
            }
            p
        })
        .collect()))
}

/// Deletes rows past `cfg`'s retention and drops old histograms; returns
/// the rows deleted.
pub async fn prune(store: &Store, cfg: &HistoryConfig, now: SystemTime) -> Result<u64, StoreError> {
    let now_ms = ms_of(now);
    let cut = |d: Duration| now_ms.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let (minute_cut, hour_cut, hist_cut) = (
        cut(cfg.minute_retention),
        cut(cfg.hour_retention),
        now_ms - HIST_KEPT_MS,
    );
    Ok(with_pool!(store, pool => {
        let a = sqlx::query("DELETE FROM location_history_minute WHERE start_ms < $1")
            .bind(minute_cut)
            .execute(pool)
            .await?
            .rows_affected();
        let b = sqlx::query("DELETE FROM location_history_hour WHERE start_ms < $1")
            .bind(hour_cut)
            .execute(pool)
            .await?
            .rows_affected();
        for table in ["location_history_minute", "location_history_hour"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET hist = '' WHERE start_ms < $1 AND hist <> ''"
            )))
            .bind(hist_cut)
            .execute(pool)
            .await?;
        }
        a + b
    }))
}

/// A history request, checked field by field.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub location: String,
    pub target_id: String,
    pub from: SystemTime,
    pub to: SystemTime,
    pub res: Resolution,
}

/// Up to this span a query without a resolution gets minutes (as the
/// collector's `GetHistory`).
const MINUTES_UP_TO: Duration = Duration::from_secs(2 * 86_400);
/// The most points one answer may hold.
const MINUTES_AT_MOST: Duration = Duration::from_secs(8 * 86_400);
const HOURS_AT_MOST: Duration = Duration::from_secs(800 * 86_400);

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why a history request is refused: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {why}")]
pub struct BadQuery {
    pub field: &'static str,
    pub why: String,
}

fn bad(field: &'static str, why: impl Into<String>) -> BadQuery {
    BadQuery { field, why: why.into() }
}

/// Checks a `GetLocationHistory` request as of `now`.
pub fn check(r: &pantau_proto::v1::GetLocationHistoryRequest, now: SystemTime) -> Result<HistoryQuery, BadQuery> {
    use pantau_proto::v1::Resolution as R;
    let token = "must be 1–128 letters, digits, `-` or `_`";
    if !is_token(&r.location) {
        return Err(bad("location", token));
    }
    if !is_token(&r.target_id) {
        return Err(bad("target_id", token));
    }
    let time = |field: &'static str, t: &Option<prost_types::Timestamp>| {
        t.as_ref()
            .map(|t| pantau_core::time::from_timestamp(t).ok_or_else(|| bad(field, "is not a valid time")))
            .transpose()
    };
    let to = time("to", &r.to)?.unwrap_or(now);
    let from = match time("from", &r.from)? {
        Some(f) => f,
        None => to
            .checked_sub(Duration::from_secs(86_400))
            .unwrap_or(SystemTime::UNIX_EPOCH),
    };
    if from >= to {
        return Err(bad("from", "must be before `to`"));
    }
    let span = to.duration_since(from).unwrap_or_default();
    let res = match R::try_from(r.resolution) {
        Ok(R::Hour) => Resolution::Hour,
        Ok(R::Unspecified) if span > MINUTES_UP_TO => Resolution::Hour,
        Ok(R::Minute | R::Unspecified) => Resolution::Minute,
        Err(_) => {
            return Err(bad(
                "resolution",
                format!("{} is not a resolution: use MINUTE or HOUR", r.resolution),
            ));
        }
    };
    let (most, what) = match res {
        Resolution::Minute => (MINUTES_AT_MOST, "8 days in minutes"),
        Resolution::Hour => (HOURS_AT_MOST, "800 days in hours"),
    };
    if span > most {
        return Err(bad("from", format!("is too far before `to`: at most {what}")));
    }
    Ok(HistoryQuery {
        location: r.location.clone(),
        target_id: r.target_id.clone(),
        from,
        to,
        res,
    })
}

/// The answer to a checked query: the points and their totals.
pub fn answer(q: &HistoryQuery, points: Vec<Point>) -> pantau_proto::v1::GetHistoryResponse {
    use pantau_proto::v1 as pb;
    let checks: u64 = points.iter().map(|p| p.checks).sum();
    let up: u64 = points.iter().map(|p| p.up).sum();
    pb::GetHistoryResponse {
        target_id: q.target_id.clone(),
        resolution: match q.res {
            Resolution::Minute => pb::Resolution::Minute,
            Resolution::Hour => pb::Resolution::Hour,
        }
        .into(),
        checks,
        up,
        uptime_percent: if checks == 0 {
            0.0
        } else {
            up as f64 * 100.0 / checks as f64
        },
        points: points
            .into_iter()
            .map(|p| pb::HistoryPoint {
                start: Some(pantau_core::time::to_timestamp(p.start)),
                checks: p.checks,
                up: p.up,
                latency_min_ms: p.lat_min,
                latency_avg_ms: p.lat_avg,
                latency_max_ms: p.lat_max,
                latency_p95_ms: p.lat_p95,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pantau_proto::v1 as pb;

    fn req(location: &str, target: &str) -> pb::GetLocationHistoryRequest {
        pb::GetLocationHistoryRequest {
            location: location.into(),
            target_id: target.into(),
            ..Default::default()
        }
    }

    fn field_of(r: &pb::GetLocationHistoryRequest) -> &'static str {
        check(r, SystemTime::now()).expect_err("refused").field
    }

    #[test]
    fn a_query_defaults_to_a_day_of_minutes_and_a_long_one_to_hours() {
        let now = SystemTime::now();
        let q = check(&req("bdg", "web"), now).unwrap();
        assert_eq!((q.to, q.res), (now, Resolution::Minute));
        assert_eq!(now.duration_since(q.from).unwrap(), Duration::from_secs(86_400));
        let mut r = req("bdg", "web");
        r.from = Some(pantau_core::time::to_timestamp(now - Duration::from_secs(30 * 86_400)));
        assert_eq!(check(&r, now).unwrap().res, Resolution::Hour);
    }

    #[test]
    fn hostile_queries_are_refused_naming_the_field() {
        for bad_loc in [
            "",
            "bad loc",
            "ü",
            "a/b",
            "x\u{0}",
            &"l".repeat(129),
            &"l".repeat(100_000),
        ] {
            assert_eq!(field_of(&req(bad_loc, "web")), "location", "{bad_loc:?}");
        }
        for bad_target in ["", "a b", &"t".repeat(129)] {
            assert_eq!(field_of(&req("bdg", bad_target)), "target_id");
        }
        let mut r = req("bdg", "web");
        r.resolution = 42;
        assert_eq!(field_of(&r), "resolution");
        r.resolution = -1;
        assert_eq!(field_of(&r), "resolution");
        let mut r = req("bdg", "web");
        r.to = Some(prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        });
        assert_eq!(field_of(&r), "to");
        let mut r = req("bdg", "web");
        r.from = Some(prost_types::Timestamp { seconds: 0, nanos: -5 });
        assert_eq!(field_of(&r), "from");
        let mut r = req("bdg", "web");
        r.from = Some(pantau_core::time::to_timestamp(
            SystemTime::now() + Duration::from_secs(60),
        ));
        assert_eq!(field_of(&r), "from", "after `to`");
        let mut r = req("bdg", "web");
        r.from = Some(prost_types::Timestamp { seconds: 0, nanos: 0 });
        r.resolution = pb::Resolution::Minute.into();
        assert_eq!(field_of(&r), "from", "decades in minutes");
        r.resolution = pb::Resolution::Hour.into();
        assert_eq!(field_of(&r), "from", "decades in hours");
    }

    #[test]
    fn fold_groups_by_location_target_and_minute() {
        let inc = |loc: &str, t: &str, at: i64, up: bool, us: i64| Incoming {
            seq: 1,
            target_id: t.into(),
            location: loc.into(),
            up,
            latency_us: us,
            checked_ms: at,
            window_ms: 0,
            trace_parent: String::new(),
        };
        let batch = [
            inc("a", "x", 60_000, true, 2_000),
            inc("a", "x", 119_999, false, 4_000),
            inc("a", "x", 120_000, true, 1_000),
            inc("b", "x", 60_000, true, -7),
        ];
        let f = fold(&batch);
        assert_eq!(f.len(), 3);
        let b = &f[&("a".to_owned(), "x".to_owned(), 60_000)];
        assert_eq!((b.checks, b.up), (2, 1));
        assert!((b.lat_sum - 6.0).abs() < 1e-9);
        assert!(
            f[&("b".to_owned(), "x".to_owned(), 60_000)].lat_max.abs() < 1e-12,
            "a negative latency counts as 0"
        );
    }
}
