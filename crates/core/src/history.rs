//! The rolled-up history model shared by every service that keeps one
//! (the collector's check history, the sync-api's per-location history):
//! per-minute and per-hour [`Bucket`]s of checks, up, latency
//! min/sum/max, and a log-scale latency [`Hist`] the p95 comes from
//! (buckets 10 % apart, so within ±5 %). Each service owns the tables it
//! writes them to; the arithmetic is here once.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A minute, in ms.
pub const MINUTE_MS: i64 = 60_000;
/// An hour, in ms.
pub const HOUR_MS: i64 = 3_600_000;
/// Histogram: bucket i holds latencies in [0.1 ms · 1.1^i, 0.1 ms · 1.1^(i+1)).
const BUCKETS: usize = 160;
const BASE_MS: f64 = 0.1;
const GROWTH: f64 = 1.1;

fn bucket_of(ms: f64) -> usize {
    if ms <= BASE_MS {
        return 0;
    }
    ((ms / BASE_MS).ln() / GROWTH.ln())
        .floor()
        .clamp(0.0, (BUCKETS - 1) as f64) as usize
}

/// The geometric middle of a bucket, in ms.
fn bucket_mid(i: usize) -> f64 {
    BASE_MS * GROWTH.powf(i as f64 + 0.5)
}

/// A sparse latency histogram: (bucket, count) pairs sorted by bucket, a
/// few bytes per bucket in use (most minutes use one or two).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hist(Vec<(u16, u32)>);

impl Hist {
    fn add_n(&mut self, bucket: usize, n: u32) {
        let b = bucket as u16;
        match self.0.binary_search_by_key(&b, |(i, _)| *i) {
            Ok(at) => self.0[at].1 = self.0[at].1.saturating_add(n),
            Err(at) => self.0.insert(at, (b, n)),
        }
    }

    pub fn merge(&mut self, o: &Hist) {
        for (i, n) in &o.0 {
            self.add_n(usize::from(*i), *n);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| u64::from(*n)).sum()
    }

    /// The 95th percentile, in ms.
    pub fn p95(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        let rank = (total as f64 * 0.95).ceil() as u64;
        let mut seen = 0;
        for (i, n) in &self.0 {
            seen += u64::from(*n);
            if seen >= rank {
                return bucket_mid(usize::from(*i));
            }
        }
        0.0
    }

    /// `{"bucket": count}`, as stored.
    pub fn to_json(&self) -> String {
        let map: BTreeMap<u16, u32> = self.0.iter().copied().collect();
        serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_owned())
    }

    /// What [`Hist::to_json`] wrote; empty when the text is empty (a
    /// finished hour) or unreadable.
    pub fn from_json(text: &str) -> Self {
        let map: BTreeMap<u16, u32> = serde_json::from_str(text).unwrap_or_default();
        Self(map.into_iter().collect())
    }
}

/// One target's results in one minute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    pub checks: u64,
    pub up: u64,
    pub lat_min: f64,
    pub lat_sum: f64,
    pub lat_max: f64,
    pub hist: Hist,
}

impl Bucket {
    /// Adds one result of `ms` latency.
    pub fn add(&mut self, up: bool, ms: f64) {
        if self.checks == 0 || ms < self.lat_min {
            self.lat_min = ms;
        }
        self.lat_max = self.lat_max.max(ms);
        self.lat_sum += ms;
        self.checks += 1;
        self.up += u64::from(up);
        self.hist.add_n(bucket_of(ms), 1);
    }

    /// Adds another bucket's results.
    pub fn merge(&mut self, o: &Bucket) {
        if o.checks == 0 {
            return;
        }
        if self.checks == 0 || o.lat_min < self.lat_min {
            self.lat_min = o.lat_min;
        }
        self.lat_max = self.lat_max.max(o.lat_max);
        self.lat_sum += o.lat_sum;
        self.checks += o.checks;
        self.up += o.up;
        self.hist.merge(&o.hist);
    }
}

/// A point of a history query.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub start: SystemTime,
    pub checks: u64,
    pub up: u64,
    pub lat_min: f64,
    pub lat_avg: f64,
    pub lat_max: f64,
    pub lat_p95: f64,
}

/// Per-minute or per-hour rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Minute,
    Hour,
}

impl Bucket {
    /// The bucket as a query point starting at `start`.
    pub fn point(&self, start: SystemTime) -> Point {
        Point {
            start,
            checks: self.checks,
            up: self.up,
            lat_min: self.lat_min,
            lat_avg: if self.checks == 0 {
                0.0
            } else {
                self.lat_sum / self.checks as f64
            },
            lat_max: self.lat_max,
            lat_p95: self.hist.p95(),
        }
    }
}

impl Resolution {
    /// Its step, in ms.
    pub fn step_ms(self) -> i64 {
        match self {
            Self::Minute => MINUTE_MS,
            Self::Hour => HOUR_MS,
        }
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn ms_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The time `ms` after the Unix epoch (the epoch for a negative `ms`).
pub fn time_of(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn histogram_p95_is_within_five_percent() {
        let mut b = Bucket::default();
        for i in 1..=1000 {
            b.add(true, f64::from(i));
        }
        let got = b.hist.p95();
        assert!((got - 950.0).abs() / 950.0 < 0.05, "p95 {got}");
        assert_eq!(b.lat_min, 1.0);
        assert_eq!(b.lat_max, 1000.0);
        assert_eq!(b.checks, 1000);
    }

    #[test]
    fn merge_adds_up() {
        let mut a = Bucket::default();
        a.add(true, 5.0);
        let mut b = Bucket::default();
        b.add(false, 2.0);
        b.add(true, 9.0);
        a.merge(&b);
        assert_eq!(
            (a.checks, a.up, a.lat_min, a.lat_max, a.lat_sum),
            (3, 2, 2.0, 9.0, 16.0)
        );
        assert_eq!(a.hist.total(), 3);
        assert_eq!(Hist::from_json(&a.hist.to_json()), a.hist);
    }
}
