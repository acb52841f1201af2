//! Rolled-up history: per-minute and per-hour aggregates of every target's
//! results (checks, up, latency min/avg/max/p95), with retention; never a
//! table of raw results.
//!
//! Results are folded into an in-memory bucket per target and minute. Every
//! `flush_interval`, finished minutes are written as minute rows and merged
//! into their hour rows in one transaction, and rows past retention are
//! deleted. The p95 comes from a log-scale latency histogram (buckets 10 %
//! apart, so within ±5 %); an hour row keeps its histogram while later
//! minutes may still merge into it, and drops it once the hour is over.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pantau_config::HistoryConfig;
use pantau_core::service::Context;
use pantau_core::store::{Store, StoreError};
use pantau_core::with_pool;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

pub use pantau_core::history::{Bucket, Hist, Point, Resolution};
use pantau_core::history::{HOUR_MS, MINUTE_MS, ms_of, time_of};

/// The history of all targets.
pub struct History {
    store: Store,
    cfg: HistoryConfig,
    open: Arc<Mutex<Open>>,
}

/// The open buckets by minute, then by target. A flush takes whole minutes
/// and frees their tables with them (one map of every target and minute kept
/// the capacity the first checks' burst gave it: 12 MiB at 100,000 targets),
/// and a query looks its target up in each open minute.
type Open = BTreeMap<i64, HashMap<Box<str>, Bucket>>;

impl History {
    pub fn new(store: Store, cfg: &HistoryConfig) -> Self {
        Self {
            store,
            cfg: cfg.clone(),
            open: Arc::default(),
        }
    }

    /// Folds one result into its minute.
    pub fn record(&self, target_id: &str, up: bool, latency: Duration, at: SystemTime) {
        let minute = ms_of(at).div_euclid(MINUTE_MS) * MINUTE_MS;
        let ms = latency.as_secs_f64() * 1e3;
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let targets = open.entry(minute).or_default();
        if let Some(b) = targets.get_mut(target_id) {
            b.add(up, ms);
        } else {
            let mut b = Bucket::default();
            b.add(up, ms);
            targets.insert(target_id.into(), b);
        }
    }

    /// Flushes periodically (a supervised task), and once more at shutdown,
    /// the current minute too (a restart's checks add to its row), so a
    /// restart loses no result.
    pub fn start(self: &Arc<Self>, ctx: &Context) {
        let me = Arc::clone(self);
        let stop = ctx.shutdown.clone();
        ctx.spawn_supervised("history", move || Arc::clone(&me).flush_loop(stop.clone()));
    }

    async fn flush_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                () = stop.cancelled() => true,
                _ = tick.tick() => false,
            };
            if stopping {
                if let Err(e) = self.write_before(i64::MAX).await {
                    tracing::warn!(error = %e, "cannot write the last history at shutdown");
                }
                return;
            }
            if let Err(e) = self.flush(SystemTime::now()).await {
                tracing::warn!(error = %e, "cannot write history; it stays in memory for the next flush");
            }
        }
    }

    /// Writes every minute that ended before `now`; returns how many.
    pub async fn flush(&self, now: SystemTime) -> Result<usize, StoreError> {
        let current = ms_of(now).div_euclid(MINUTE_MS) * MINUTE_MS;
        let n = self.write_before(current).await?;
        if n == 0 {
            return Ok(0);
        }
        let now_ms = ms_of(now);
        let minute_cut = now_ms - self.cfg.minute_retention.as_millis() as i64;
        let hour_cut = now_ms - self.cfg.hour_retention.as_millis() as i64;
        // A histogram is only needed while minutes may still merge into its
        // hour; a finished hour keeps its p95 and drops the histogram.
        let finished_hours = current.div_euclid(HOUR_MS) * HOUR_MS - HOUR_MS;
        with_pool!(&self.store, pool => {
            sqlx::query("DELETE FROM history_minute WHERE start_ms < $1").bind(minute_cut).execute(pool).await?;
            sqlx::query("DELETE FROM history_hour WHERE start_ms < $1").bind(hour_cut).execute(pool).await?;
            sqlx::query("UPDATE history_hour SET hist = '' WHERE start_ms < $1 AND hist <> ''")
                .bind(finished_hours)
                .execute(pool)
                .await?;
        });
        Ok(n)
    }

    /// Writes every minute starting before `current` (ms); returns how many.
    async fn write_before(&self, current: i64) -> Result<usize, StoreError> {
        let done: Open = {
            let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let later = open.split_off(&current);
            std::mem::replace(&mut *open, later)
        };
        if done.is_empty() {
            return Ok(0);
        }
        // A transaction per chunk: one for a hundred thousand targets held
        // SQLite's write lock for seconds, past the other writers' busy
        // timeout ("database is locked" for the target states). Each chunk
        // is taken from the finished minutes as it is written: gathering
        // every bucket first made a second copy of them all (at 100,000
        // targets, jemalloc's allocated figure rose by 32 MiB during the
        // first minute's flush; 10 MiB taken this way, SQLite's included).
        let mut rest = done
            .into_iter()
            .flat_map(|(minute, targets)| targets.into_iter().map(move |(id, b)| ((id, minute), b)));
        let mut chunk = Vec::with_capacity(crate::state::WRITE_CHUNK);
        let mut written = 0;
        loop {
            chunk.clear();
            chunk.extend(rest.by_ref().take(crate::state::WRITE_CHUNK));
            if chunk.is_empty() {
                return Ok(written);
            }
            if let Err(e) = self.write(&chunk).await {
                // Put back what was not written, so nothing accepted is lost
                // (and nothing written is added twice).
                let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for ((id, minute), b) in chunk.drain(..).chain(rest) {
                    open.entry(minute).or_default().entry(id).or_default().merge(&b);
                }
                return Err(e);
            }
            written += chunk.len();
        }
    }

    async fn write(&self, done: &[((Box<str>, i64), Bucket)]) -> Result<(), StoreError> {
        with_pool!(&self.store, pool => {
            let mut tx = pool.begin().await?;
            for ((id, minute), b) in done {
                sqlx::query(
                    "INSERT INTO history_minute (target_id, start_ms, checks, up, lat_min, lat_sum, lat_max, lat_p95)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (target_id, start_ms) DO UPDATE SET checks = history_minute.checks + $3,
                       up = history_minute.up + $4,
                       lat_min = CASE WHEN history_minute.lat_min < $5 THEN history_minute.lat_min ELSE $5 END,
                       lat_sum = history_minute.lat_sum + $6,
                       lat_max = CASE WHEN history_minute.lat_max > $7 THEN history_minute.lat_max ELSE $7 END,
                       lat_p95 = $8",
                )
                .bind(&**id)
                .bind(minute)
                .bind(b.checks as i64)
                .bind(b.up as i64)
                .bind(b.lat_min)
                .bind(b.lat_sum)
                .bind(b.lat_max)
                .bind(b.hist.p95())
                .execute(&mut *tx)
                .await?;
                let hour = minute.div_euclid(HOUR_MS) * HOUR_MS;
                let existing = sqlx::query(
                    "SELECT checks, up, lat_min, lat_sum, lat_max, hist FROM history_hour WHERE target_id = $1 AND start_ms = $2",
                )
                .bind(&**id)
                .bind(hour)
                .fetch_optional(&mut *tx)
                .await?;
                let mut merged = match existing {
                    Some(r) => Bucket {
                        checks: r.get::<i64, _>(0) as u64,
                        up: r.get::<i64, _>(1) as u64,
                        lat_min: r.get(2),
                        lat_sum: r.get(3),
                        lat_max: r.get(4),
                        hist: Hist::from_json(&r.get::<String, _>(5)),
                    },
                    None => Bucket::default(),
                };
                merged.merge(b);
                sqlx::query(
                    "INSERT INTO history_hour (target_id, start_ms, checks, up, lat_min, lat_sum, lat_max, lat_p95, hist)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (target_id, start_ms) DO UPDATE SET checks = $3, up = $4, lat_min = $5,
                       lat_sum = $6, lat_max = $7, lat_p95 = $8, hist = $9",
                )
                .bind(&**id)
                .bind(hour)
                .bind(merged.checks as i64)
                .bind(merged.up as i64)
                .bind(merged.lat_min)
                .bind(merged.lat_sum)
                .bind(merged.lat_max)
                .bind(merged.hist.p95())
                .bind(merged.hist.to_json())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stored points of `target_id` with a start in `[from, to)`.
    pub async fn query(
        &self,
        target_id: &str,
        from: SystemTime,
        to: SystemTime,
        res: Resolution,
    ) -> Result<Vec<Point>, StoreError> {
        let table = match res {
            Resolution::Minute => "history_minute",
            Resolution::Hour => "history_hour",
        };
        let sql = format!(
            "SELECT start_ms, checks, up, lat_min, lat_sum, lat_max, lat_p95 FROM {table}
             WHERE target_id = $1 AND start_ms >= $2 AND start_ms < $3 ORDER BY start_ms"
        );
        let rows = with_pool!(&self.store, pool => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(target_id)
            .bind(ms_of(from))
            .bind(ms_of(to))
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| {
                let checks = r.get::<i64, _>(1) as u64;
                Point {
                    start: time_of(r.get(0)),
                    checks,
                    up: r.get::<i64, _>(2) as u64,
                    lat_min: r.get(3),
                    lat_avg: if checks == 0 { 0.0 } else { r.get::<f64, _>(4) / checks as f64 },
                    lat_max: r.get(5),
                    lat_p95: r.get(6),
                }
            })
            .collect::<Vec<_>>());
        Ok(self.with_open(target_id, from, to, res, rows))
    }

    /// Adds the minutes not yet flushed (the current one, at least), so a
    /// query sees results as soon as they are checked.
    fn with_open(
        &self,
        target_id: &str,
        from: SystemTime,
        to: SystemTime,
        res: Resolution,
        mut rows: Vec<Point>,
    ) -> Vec<Point> {
        let (lo, hi) = (ms_of(from), ms_of(to));
        let step = match res {
            Resolution::Minute => MINUTE_MS,
            Resolution::Hour => HOUR_MS,
        };
        let mut extra: BTreeMap<i64, Bucket> = BTreeMap::new();
        {
            let open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // `range` panics on a reversed range; an empty one has no rows.
            if lo < hi {
                for (minute, targets) in open.range(lo..hi) {
                    if let Some(b) = targets.get(target_id) {
                        extra.entry(minute.div_euclid(step) * step).or_default().merge(b);
                    }
                }
            }
        }
        for (start, b) in extra {
            let at = time_of(start);
            match rows.iter_mut().find(|p| p.start == at) {
                // An hour already written: fold the open minutes in (p95 as the larger).
                Some(p) => {
                    let sum = p.lat_avg * p.checks as f64 + b.lat_sum;
                    p.lat_min = if p.checks == 0 {
                        b.lat_min
                    } else {
                        p.lat_min.min(b.lat_min)
                    };
                    p.lat_max = p.lat_max.max(b.lat_max);
                    p.checks += b.checks;
                    p.up += b.up;
                    p.lat_avg = if p.checks == 0 { 0.0 } else { sum / p.checks as f64 };
                    p.lat_p95 = p.lat_p95.max(b.hist.p95());
                }
                None => rows.push(Point {
                    start: at,
                    checks: b.checks,
                    up: b.up,
                    lat_min: b.lat_min,
                    lat_avg: if b.checks == 0 {
                        0.0
                    } else {
                        b.lat_sum / b.checks as f64
                    },
                    lat_max: b.lat_max,
                    lat_p95: b.hist.p95(),
                }),
            }
        }
        rows.sort_by_key(|p| p.start);
        rows
    }
}
