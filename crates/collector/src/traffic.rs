//! Interface traffic history: every router interface's rates (bits/s in and
//! out), rolled up per minute and per hour (min/avg/max/p95) with the same
//! retention as the check history (`collector.history`); never a table of
//! raw samples.
//!
//! The router pollers [`record`](TrafficHistory::record) each valid rate.
//! Rates are kept in memory per router, interface and minute (at most
//! [`MAX_SAMPLES_PER_MINUTE`]; at most `max_interfaces_per_router`
//! interfaces per router, the first seen). Every `flush_interval`, finished
//! minutes are written as `traffic_minute` rows, each hour they touch is
//! recomputed into its `traffic_hour` row from the stored minutes, and rows
//! past retention are deleted; the current minute too at shutdown, so a
//! restart keeps the history.
//!
//! The 95th percentiles are exact, by nearest rank (the ⌈0.95·n⌉-th smallest
//! of n values):
//! - a minute's, of the poll rates in that minute;
//! - an hour's, of its minutes' average rates (up to 60 values);
//! - a queried range's (the burstable-billing figure), of the per-minute
//!   averages in the range, or of the per-hour averages when the range
//!   starts before the minute retention.
//!
//! A minute split by a restart (written at shutdown, then polled again) adds
//! its counts, sums, minimum and maximum exactly; its p95 is then the larger
//! of the two parts' (the samples of the first part are gone).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pantau_config::HistoryConfig;
use pantau_core::service::Context;
use pantau_core::store::{Store, StoreError};
use pantau_core::with_pool;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

pub use crate::history::Resolution;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
/// Rates kept per interface and minute: ten a second at the shortest
/// interval (1 s) would be 60; anything beyond is left out.
pub const MAX_SAMPLES_PER_MINUTE: usize = 600;
/// The longest interface name kept (ifName/ifDescr are at most 255 octets).
pub const MAX_NAME_BYTES: usize = 255;

/// A row of `SELECT start_ms, samples, in_min, in_sum, in_max, in_p95,
/// out_min, out_sum, out_max, out_p95` (a macro: the rows of both databases).
macro_rules! rollup_of {
    ($r:expr) => {{
        let r = $r;
        (
            r.get::<i64, _>(0),
            Rollup {
                samples: u64::try_from(r.get::<i64, _>(1)).unwrap_or(0),
                rx: Stat {
                    min: r.get(2),
                    sum: r.get(3),
                    max: r.get(4),
                    p95: r.get(5),
                },
                tx: Stat {
                    min: r.get(6),
                    sum: r.get(7),
                    max: r.get(8),
                    p95: r.get(9),
                },
            },
        )
    }};
}
/// `pantau_collector_traffic_interfaces_left_out_total{router}`.
pub const LEFT_OUT: &str = "pantau_collector_traffic_interfaces_left_out_total";

/// Describes the traffic history's metric.
pub fn describe() {
    metrics::describe_counter!(
        LEFT_OUT,
        metrics::Unit::Count,
        "Interface rates not kept in the traffic history because the router has more than collector.history.max_interfaces_per_router interfaces"
    );
}

/// The nearest-rank 95th percentile of `values` (sorted in place); 0 for none.
pub fn p95(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = (values.len() * 95).div_ceil(100);
    values[rank.max(1) - 1]
}

/// One direction's figures over a minute or an hour, in bits/s.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stat {
    pub min: f64,
    /// The sum of the rates (the average is `sum / samples`).
    pub sum: f64,
    pub max: f64,
    pub p95: f64,
}

impl Stat {
    fn of(values: &mut [f64]) -> Self {
        let (mut min, mut max, mut sum) = (f64::INFINITY, 0.0_f64, 0.0);
        for v in values.iter() {
            min = min.min(*v);
            max = max.max(*v);
            sum += v;
        }
        Self {
            min: if values.is_empty() { 0.0 } else { min },
            sum,
            max,
            p95: p95(values),
        }
    }

    /// Adds another part of the same minute (its p95 as the larger one).
    fn merge(&mut self, o: &Self, empty: bool) {
        self.min = if empty { o.min } else { self.min.min(o.min) };
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        self.p95 = self.p95.max(o.p95);
    }
}

/// An interface's traffic over one minute or hour.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rollup {
    /// The poll rates folded in.
    pub samples: u64,
    pub rx: Stat,
    pub tx: Stat,
}

impl Rollup {
    fn merge(&mut self, o: &Self) {
        if o.samples == 0 {
            return;
        }
        let empty = self.samples == 0;
        self.rx.merge(&o.rx, empty);
        self.tx.merge(&o.tx, empty);
        self.samples += o.samples;
    }

    pub fn rx_avg(&self) -> f64 {
        avg(self.rx.sum, self.samples)
    }

    pub fn tx_avg(&self) -> f64 {
        avg(self.tx.sum, self.samples)
    }

    /// An hour from its minutes: counts, sums, minimum and maximum added up,
    /// the p95 that of the minutes' averages.
    fn hour_of(minutes: &[Rollup]) -> Self {
        let mut h = Rollup::default();
        for m in minutes {
            h.merge(m);
        }
        let mut rx: Vec<f64> = minutes.iter().filter(|m| m.samples > 0).map(Rollup::rx_avg).collect();
        let mut tx: Vec<f64> = minutes.iter().filter(|m| m.samples > 0).map(Rollup::tx_avg).collect();
        h.rx.p95 = p95(&mut rx);
        h.tx.p95 = p95(&mut tx);
        h
    }
}

fn avg(sum: f64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// The rates of one interface in one minute, as polled.
#[derive(Debug, Default)]
struct Samples {
    rx: Vec<f64>,
    tx: Vec<f64>,
}

impl Samples {
    fn rollup(&self) -> Rollup {
        Rollup {
            samples: self.rx.len() as u64,
            rx: Stat::of(&mut self.rx.clone()),
            tx: Stat::of(&mut self.tx.clone()),
        }
    }
}

/// A point of a traffic query.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub start: SystemTime,
    pub rollup: Rollup,
}

/// The burstable-billing figures over a range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    pub rx_p95: f64,
    pub tx_p95: f64,
    /// Whose averages the figures were taken over.
    pub basis: Resolution,
    /// How many averages.
    pub samples: u64,
}

type Key = (String, String, i64);

/// What is not written yet, and which interfaces of each router are kept.
#[derive(Debug, Default)]
struct Open {
    minutes: HashMap<Key, Samples>,
    kept: HashMap<String, HashSet<String>>,
    /// The routers whose left-out interfaces were logged (once each).
    logged: HashSet<String>,
}

/// The traffic history of every router's interfaces.
pub struct TrafficHistory {
    store: Store,
    cfg: HistoryConfig,
    open: Mutex<Open>,
}

fn ms_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn time_of(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn floor(ms: i64, step: i64) -> i64 {
    ms.div_euclid(step) * step
}

impl TrafficHistory {
    pub fn new(store: Store, cfg: &HistoryConfig) -> Self {
        Self {
            store,
            cfg: cfg.clone(),
            open: Mutex::default(),
        }
    }

    fn open(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Folds one poll's rates of `interface` into its minute. A rate that is
    /// not a finite number ≥ 0, an empty or over-long name, an interface
    /// beyond the router's bound or a minute already full is left out.
    pub fn record(&self, router: &str, interface: &str, at: SystemTime, rx_bps: f64, tx_bps: f64) {
        let valid = |v: f64| v.is_finite() && v >= 0.0;
        if !valid(rx_bps) || !valid(tx_bps) || interface.is_empty() || interface.len() > MAX_NAME_BYTES {
            return;
        }
        let minute = floor(ms_of(at), MINUTE_MS);
        let mut guard = self.open();
        let open = &mut *guard;
        let limit = self.cfg.max_interfaces_per_router as usize;
        let kept = open.kept.entry(router.to_owned()).or_default();
        if !kept.contains(interface) {
            if kept.len() >= limit {
                metrics::counter!(LEFT_OUT, "router" => router.to_owned()).increment(1);
                if open.logged.insert(router.to_owned()) {
                    tracing::warn!(
                        router,
                        interface,
                        limit,
                        key = "collector.history.max_interfaces_per_router",
                        "router has more interfaces than the traffic history keeps; the rest are left out (logged once per router)"
                    );
                }
                return;
            }
            kept.insert(interface.to_owned());
        }
        let s = open
            .minutes
            .entry((router.to_owned(), interface.to_owned(), minute))
            .or_default();
        if s.rx.len() < MAX_SAMPLES_PER_MINUTE {
            s.rx.push(rx_bps);
            s.tx.push(tx_bps);
        }
    }

    /// Flushes periodically (a supervised task), and once more at shutdown,
    /// the current minute too.
    pub fn start(self: &Arc<Self>, ctx: &Context) {
        describe();
        let me = Arc::clone(self);
        let stop = ctx.shutdown.clone();
        ctx.spawn_supervised("traffic-history", move || Arc::clone(&me).flush_loop(stop.clone()));
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
                    tracing::warn!(error = %e, "cannot write the last traffic history at shutdown");
                }
                return;
            }
            if let Err(e) = self.flush(SystemTime::now()).await {
                tracing::warn!(error = %e, "cannot write traffic history; it stays in memory for the next flush");
            }
        }
    }

    /// Writes every minute that ended before `now` and deletes rows past
    /// retention; returns how many minutes were written.
    pub async fn flush(&self, now: SystemTime) -> Result<usize, StoreError> {
        let n = self.write_before(floor(ms_of(now), MINUTE_MS)).await?;
        let now_ms = ms_of(now);
        let minute_cut =
            now_ms.saturating_sub(i64::try_from(self.cfg.minute_retention.as_millis()).unwrap_or(i64::MAX));
        let hour_cut = now_ms.saturating_sub(i64::try_from(self.cfg.hour_retention.as_millis()).unwrap_or(i64::MAX));
        with_pool!(&self.store, pool => {
            sqlx::query("DELETE FROM traffic_minute WHERE start_ms < $1").bind(minute_cut).execute(pool).await?;
            sqlx::query("DELETE FROM traffic_hour WHERE start_ms < $1").bind(hour_cut).execute(pool).await?;
        });
        Ok(n)
    }

    /// Writes the current minute too (what shutdown does); returns how many.
    pub async fn flush_all(&self) -> Result<usize, StoreError> {
        self.write_before(i64::MAX).await
    }

    async fn write_before(&self, current: i64) -> Result<usize, StoreError> {
        let done: Vec<(Key, Rollup)> = {
            let mut open = self.open();
            let keys: Vec<Key> = open.minutes.keys().filter(|k| k.2 < current).cloned().collect();
            keys.into_iter()
                .filter_map(|k| open.minutes.remove(&k).map(|s| (k, s.rollup())))
                .collect()
        };
        if done.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.write(&done).await {
            // Not lost: kept as one more minute part (p95 as the larger).
            let mut open = self.open();
            for ((r, i, m), rollup) in &done {
                let s = open.minutes.entry((r.clone(), i.clone(), *m)).or_default();
                // The exact samples are gone; their average stands for them.
                for _ in 0..rollup.samples.min(MAX_SAMPLES_PER_MINUTE as u64) {
                    s.rx.push(rollup.rx_avg());
                    s.tx.push(rollup.tx_avg());
                }
            }
            return Err(e);
        }
        Ok(done.len())
    }

    async fn write(&self, done: &[(Key, Rollup)]) -> Result<(), StoreError> {
        let hours: HashSet<(String, String, i64)> = done
            .iter()
            .map(|((r, i, m), _)| (r.clone(), i.clone(), floor(*m, HOUR_MS)))
            .collect();
        with_pool!(&self.store, pool => {
            let mut tx = pool.begin().await?;
            for ((router, iface, minute), m) in done {
                sqlx::query(
                    "INSERT INTO traffic_minute (router_id, if_name, start_ms, samples,
                       in_min, in_sum, in_max, in_p95, out_min, out_sum, out_max, out_p95)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     ON CONFLICT (router_id, if_name, start_ms) DO UPDATE SET
                       samples = traffic_minute.samples + $4,
                       in_min = CASE WHEN traffic_minute.in_min < $5 THEN traffic_minute.in_min ELSE $5 END,
                       in_sum = traffic_minute.in_sum + $6,
                       in_max = CASE WHEN traffic_minute.in_max > $7 THEN traffic_minute.in_max ELSE $7 END,
                       in_p95 = CASE WHEN traffic_minute.in_p95 > $8 THEN traffic_minute.in_p95 ELSE $8 END,
                       out_min = CASE WHEN traffic_minute.out_min < $9 THEN traffic_minute.out_min ELSE $9 END,
                       out_sum = traffic_minute.out_sum + $10,
                       out_max = CASE WHEN traffic_minute.out_max > $11 THEN traffic_minute.out_max ELSE $11 END,
                       out_p95 = CASE WHEN traffic_minute.out_p95 > $12 THEN traffic_minute.out_p95 ELSE $12 END",
                )
                .bind(router)
                .bind(iface)
                .bind(minute)
                .bind(i64::try_from(m.samples).unwrap_or(i64::MAX))
                .bind(m.rx.min)
                .bind(m.rx.sum)
                .bind(m.rx.max)
                .bind(m.rx.p95)
                .bind(m.tx.min)
                .bind(m.tx.sum)
                .bind(m.tx.max)
                .bind(m.tx.p95)
                .execute(&mut *tx)
                .await?;
            }
            for (router, iface, hour) in &hours {
                let minutes: Vec<Rollup> = sqlx::query(
                    "SELECT start_ms, samples, in_min, in_sum, in_max, in_p95, out_min, out_sum, out_max, out_p95
                     FROM traffic_minute WHERE router_id = $1 AND if_name = $2 AND start_ms >= $3 AND start_ms < $4",
                )
                .bind(router)
                .bind(iface)
                .bind(*hour)
                .bind(hour + HOUR_MS)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| rollup_of!(r).1)
                .collect();
                let h = Rollup::hour_of(&minutes);
                sqlx::query(
                    "INSERT INTO traffic_hour (router_id, if_name, start_ms, samples,
                       in_min, in_sum, in_max, in_p95, out_min, out_sum, out_max, out_p95)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     ON CONFLICT (router_id, if_name, start_ms) DO UPDATE SET samples = $4,
                       in_min = $5, in_sum = $6, in_max = $7, in_p95 = $8,
                       out_min = $9, out_sum = $10, out_max = $11, out_p95 = $12",
                )
                .bind(router)
                .bind(iface)
                .bind(*hour)
                .bind(i64::try_from(h.samples).unwrap_or(i64::MAX))
                .bind(h.rx.min)
                .bind(h.rx.sum)
                .bind(h.rx.max)
                .bind(h.rx.p95)
                .bind(h.tx.min)
                .bind(h.tx.sum)
                .bind(h.tx.max)
                .bind(h.tx.p95)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stored rows of one table in `[lo, hi)` (ms).
    async fn rows(
        &self,
        table: &str,
        router: &str,
        iface: &str,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<(i64, Rollup)>, StoreError> {
        let sql = format!(
            "SELECT start_ms, samples, in_min, in_sum, in_max, in_p95, out_min, out_sum, out_max, out_p95
             FROM {table} WHERE router_id = $1 AND if_name = $2 AND start_ms >= $3 AND start_ms < $4 ORDER BY start_ms"
        );
        Ok(
            with_pool!(&self.store, pool => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(router)
            .bind(iface)
            .bind(lo)
            .bind(hi)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| rollup_of!(r))
            .collect::<Vec<_>>()),
        )
    }

    /// Minutes in `[lo, hi)`, stored and not yet written, merged.
    async fn minutes(&self, router: &str, iface: &str, lo: i64, hi: i64) -> Result<BTreeMap<i64, Rollup>, StoreError> {
        let mut out: BTreeMap<i64, Rollup> = self
            .rows("traffic_minute", router, iface, lo, hi)
            .await?
            .into_iter()
            .collect();
        let open = self.open();
        for ((r, i, m), s) in &open.minutes {
            if r == router && i == iface && (lo..hi).contains(m) {
                out.entry(*m).or_default().merge(&s.rollup());
            }
        }
        Ok(out)
    }

    /// The points of `interface` with a start in `[from, to)`: minutes, or
    /// hours (the hours with minutes not yet written recomputed from their
    /// minutes), so a query sees rates as soon as they are polled.
    pub async fn query(
        &self,
        router: &str,
        iface: &str,
        from: SystemTime,
        to: SystemTime,
        res: Resolution,
    ) -> Result<Vec<Point>, StoreError> {
        let (lo, hi) = (ms_of(from), ms_of(to));
        let points: BTreeMap<i64, Rollup> = match res {
            Resolution::Minute => self.minutes(router, iface, lo, hi).await?,
            Resolution::Hour => {
                let mut hours: BTreeMap<i64, Rollup> = self
                    .rows("traffic_hour", router, iface, lo, hi)
                    .await?
                    .into_iter()
                    .collect();
                let open_hours: HashSet<i64> = {
                    let open = self.open();
                    open.minutes
                        .keys()
                        .filter(|(r, i, _)| r == router && i == iface)
                        .map(|k| floor(k.2, HOUR_MS))
                        .filter(|h| (lo..hi).contains(h))
                        .collect()
                };
                for h in open_hours {
                    let minutes: Vec<Rollup> = self
                        .minutes(router, iface, h, h + HOUR_MS)
                        .await?
                        .into_values()
                        .collect();
                    hours.insert(h, Rollup::hour_of(&minutes));
                }
                hours
            }
        };
        Ok(points
            .into_iter()
            .map(|(start, rollup)| Point {
                start: time_of(start),
                rollup,
            })
            .collect())
    }

    /// The 95th percentiles over `range` of the per-minute averages, or
    /// of the per-hour averages when `from` is older than the minute
    /// retention at `now`. `points` are the query's own, reused when they
    /// are of that basis.
    pub async fn burst(
        &self,
        router: &str,
        iface: &str,
        range: std::ops::Range<SystemTime>,
        now: SystemTime,
        res: Resolution,
        points: &[Point],
    ) -> Result<Burst, StoreError> {
        let std::ops::Range { start: from, end: to } = range;
        let minutes_cover = now.checked_sub(self.cfg.minute_retention).is_none_or(|cut| from >= cut);
        let basis = if minutes_cover {
            Resolution::Minute
        } else {
            Resolution::Hour
        };
        let fetched;
        let points = if basis == res {
            points
        } else {
            fetched = self.query(router, iface, from, to, basis).await?;
            &fetched
        };
        let used: Vec<&Rollup> = points.iter().map(|p| &p.rollup).filter(|r| r.samples > 0).collect();
        let mut rx: Vec<f64> = used.iter().map(|r| r.rx_avg()).collect();
        let mut tx: Vec<f64> = used.iter().map(|r| r.tx_avg()).collect();
        Ok(Burst {
            rx_p95: p95(&mut rx),
            tx_p95: p95(&mut tx),
            basis,
            samples: used.len() as u64,
        })
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn p95_is_the_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(p95(&mut v), 95.0);
        let mut v: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        assert_eq!(p95(&mut v), 19.0, "⌈0.95·20⌉ = 19th of 20");
        let mut v = vec![7.0];
        assert_eq!(p95(&mut v), 7.0);
        let mut v: Vec<f64> = (1..=60).map(f64::from).collect();
        assert_eq!(p95(&mut v), 57.0, "⌈57⌉");
        let mut v: Vec<f64> = (1..=61).map(f64::from).collect();
        assert_eq!(p95(&mut v), 58.0, "⌈57.95⌉");
        assert_eq!(p95(&mut []), 0.0);
    }

    #[test]
    fn a_minute_and_its_hour() {
        let s = Samples {
            rx: vec![10.0, 30.0, 20.0],
            tx: vec![1.0, 1.0, 4.0],
        };
        let m = s.rollup();
        assert_eq!(m.samples, 3);
        assert_eq!((m.rx.min, m.rx.sum, m.rx.max, m.rx.p95), (10.0, 60.0, 30.0, 30.0));
        assert_eq!(m.tx_avg(), 2.0);
        let quiet = Samples {
            rx: vec![0.0],
            tx: vec![0.0],
        }
        .rollup();
        let h = Rollup::hour_of(&[m, quiet]);
        assert_eq!(h.samples, 4);
        assert_eq!((h.rx.min, h.rx.max, h.rx.sum), (0.0, 30.0, 60.0));
        // The p95 of the minutes' averages (20 and 0), not of the samples.
        assert_eq!(h.rx.p95, 20.0);
        assert_eq!(h.tx.p95, 2.0);
    }

    #[test]
    fn merging_a_split_minute_keeps_counts_exact() {
        let a = Samples {
            rx: vec![5.0],
            tx: vec![9.0],
        }
        .rollup();
        let mut b = Samples {
            rx: vec![1.0, 3.0],
            tx: vec![2.0, 2.0],
        }
        .rollup();
        b.merge(&a);
        assert_eq!(b.samples, 3);
        assert_eq!((b.rx.min, b.rx.max, b.rx.sum, b.rx.p95), (1.0, 5.0, 9.0, 5.0));
        let mut empty = Rollup::default();
        empty.merge(&a);
        assert_eq!(empty, a);
    }
}
