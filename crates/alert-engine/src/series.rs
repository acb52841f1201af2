//! The in-memory window store: recent samples per series (metric name +
//! labels), bounded in age, in samples per series and in series.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, SystemTime};

/// Labels of a series, sorted so equal sets compare and hash equal.
pub type Labels = BTreeMap<String, String>;

/// A sample's value: most facts are numbers, some are states (`"unhealthy"`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Num(f64),
    Str(String),
}

impl Value {
    /// Whether a bare fact counts as true: a non-zero number, or a string
    /// other than empty, `0` and `false`.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Num(n) => *n != 0.0 && !n.is_nan(),
            Value::Str(s) => !(s.is_empty() || s == "0" || s.eq_ignore_ascii_case("false")),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Num(n) => write!(f, "{n}"),
            Value::Str(s) => f.write_str(s),
        }
    }
}

/// One observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub at: SystemTime,
    pub value: Value,
}

/// Bounded recent history of every series.
#[derive(Debug)]
pub struct SeriesStore {
    by_name: HashMap<String, HashMap<Labels, VecDeque<Sample>>>,
    series: usize,
    window: Duration,
    max_series: usize,
    max_samples: usize,
}

/// What happened to an inserted sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Stored,
    /// The series is new and the store already holds `max_series`.
    TooManySeries,
    /// Older than the window.
    TooOld,
}

impl SeriesStore {
    pub fn new(window: Duration, max_series: usize, max_samples: usize) -> Self {
        Self {
            by_name: HashMap::new(),
            series: 0,
            window,
            max_series,
            max_samples: max_samples.max(2),
        }
    }

    /// Adds a sample, keeping each series ordered by time.
    pub fn insert(&mut self, name: &str, labels: Labels, sample: Sample, now: SystemTime) -> Inserted {
        if crate::lifecycle::later(sample.at, self.window) < now {
            return Inserted::TooOld;
        }
        let full = self.series >= self.max_series;
        let by_labels = self.by_name.entry(name.to_owned()).or_default();
        let samples = match by_labels.get_mut(&labels) {
            Some(s) => s,
            None if full => return Inserted::TooManySeries,
            None => {
                self.series += 1;
                by_labels.entry(labels).or_default()
            }
        };
        let pos = samples.partition_point(|s| s.at <= sample.at);
        samples.insert(pos, sample);
        while samples.len() > self.max_samples {
            samples.pop_front();
        }
        Inserted::Stored
    }

    /// Every series of `name` with its samples, oldest first.
    pub fn series<'a>(&'a self, name: &str) -> impl Iterator<Item = (&'a Labels, &'a VecDeque<Sample>)> + 'a {
        self.by_name.get(name).into_iter().flat_map(|m| m.iter())
    }

    /// Drops samples older than the window, and series left empty.
    pub fn prune(&mut self, now: SystemTime) {
        let cutoff = now.checked_sub(self.window).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut removed = 0;
        self.by_name.retain(|_, by_labels| {
            by_labels.retain(|_, samples| {
                while samples.front().is_some_and(|s| s.at < cutoff) {
                    samples.pop_front();
                }
                let keep = !samples.is_empty();
                if !keep {
                    removed += 1;
                }
                keep
            });
            !by_labels.is_empty()
        });
        self.series -= removed;
    }

    /// Number of series held.
    pub fn len(&self) -> usize {
        self.series
    }

    pub fn is_empty(&self) -> bool {
        self.series == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn labels(v: &str) -> Labels {
        [("target".to_owned(), v.to_owned())].into()
    }

    #[test]
    fn bounded_in_series_samples_and_age() {
        let mut s = SeriesStore::new(Duration::from_secs(60), 2, 3);
        let put = |s: &mut SeriesStore, l: &str, t: u64, v: f64| {
            s.insert(
                "m",
                labels(l),
                Sample {
                    at: at(t),
                    value: Value::Num(v),
                },
                at(t),
            )
        };
        assert_eq!(put(&mut s, "a", 0, 1.0), Inserted::Stored);
        assert_eq!(put(&mut s, "b", 0, 1.0), Inserted::Stored);
        assert_eq!(put(&mut s, "c", 0, 1.0), Inserted::TooManySeries);
        for t in 1..=5 {
            put(&mut s, "a", t, t as f64);
        }
        let (_, a) = s.series("m").find(|(l, _)| l["target"] == "a").unwrap();
        let values: Vec<_> = a.iter().map(|x| x.value.clone()).collect();
        assert_eq!(values, [Value::Num(3.0), Value::Num(4.0), Value::Num(5.0)]);
        // Out of order samples land in time order.
        s.insert(
            "m",
            labels("a"),
            Sample {
                at: at(4) + Duration::from_millis(1),
                value: Value::Num(9.0),
            },
            at(5),
        );
        let (_, a) = s.series("m").find(|(l, _)| l["target"] == "a").unwrap();
        assert_eq!(a[1].value, Value::Num(9.0));
        assert_eq!(a.len(), 3);
        assert_eq!(
            s.insert(
                "m",
                labels("a"),
                Sample {
                    at: at(0),
                    value: Value::Num(0.0)
                },
                at(100)
            ),
            Inserted::TooOld
        );
        s.prune(at(63));
        assert_eq!(s.len(), 1, "b aged out");
        s.prune(at(200));
        assert!(s.is_empty());
        assert_eq!(put(&mut s, "c", 200, 1.0), Inserted::Stored, "room again");
    }
}
