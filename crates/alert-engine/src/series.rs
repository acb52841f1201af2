//! The in-memory window store: recent samples per series (metric name +
//! labels), bounded in age, in samples per series and in series.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
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

/// Milliseconds since the epoch (negative before it), saturating.
fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

fn from_ms(ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(d)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(d)
    }
    .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// One series' recent samples, oldest first, at millisecond precision. A
/// series of numbers (nearly all) takes 16 bytes a sample; one that has
/// held a state (`"unhealthy"`) keeps its values as they are. A series
/// that holds a single number (a metric no rule reads over a range keeps
/// only its latest) holds it inline: no allocation per series.
#[derive(Debug)]
pub enum Series {
    One(i64, f64),
    /// Boxed, so every series is 24 bytes, not 40.
    Num(Box<VecDeque<(i64, f64)>>),
    Any(Box<VecDeque<(i64, Value)>>),
}

impl Series {
    /// A series of its first sample.
    fn first(at: i64, value: Value) -> Self {
        match value {
            Value::Num(n) => Series::One(at, n),
            value @ Value::Str(_) => Series::Any(Box::new(VecDeque::from([(at, value)]))),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Series::One(..) => 1,
            Series::Num(v) => v.len(),
            Series::Any(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the samples before `cutoff`; whether any is left.
    fn keep_from(&mut self, cutoff: i64) -> bool {
        match self {
            Series::One(t, _) => *t >= cutoff,
            Series::Num(v) => {
                while v.front().is_some_and(|p| p.0 < cutoff) {
                    v.pop_front();
                }
                !v.is_empty()
            }
            Series::Any(v) => {
                while v.front().is_some_and(|p| p.0 < cutoff) {
                    v.pop_front();
                }
                !v.is_empty()
            }
        }
    }

    /// Adds a sample in time order (after samples of the same instant), then
    /// drops the oldest beyond `max` samples and those before `oldest`
    /// (always keeping the latest).
    fn add(&mut self, at: i64, value: Value, oldest: i64, max: usize) {
        if let (Series::One(t, n), Value::Num(new)) = (&mut *self, &value) {
            // The common case, a newer number replacing an old one, in place.
            if at >= *t && *t < oldest {
                (*t, *n) = (at, *new);
                return;
            }
            // An older number no rule looks back to.
            if at < *t && at < oldest {
                return;
            }
        }
        if let Series::One(t, n) = *self {
            *self = Series::Num(Box::new(VecDeque::from([(t, n)])));
        }
        if let (Series::Num(v), Value::Str(_)) = (&*self, &value) {
            *self = Series::Any(Box::new(v.iter().map(|&(t, n)| (t, Value::Num(n))).collect()));
        }
        match (&mut *self, value) {
            (Series::Num(v), Value::Num(n)) => {
                let pos = v.partition_point(|p| p.0 <= at);
                v.insert(pos, (at, n));
                while v.len() > max || (v.len() > 1 && v.front().is_some_and(|p| p.0 < oldest)) {
                    v.pop_front();
                }
            }
            (Series::Any(v), value) => {
                let pos = v.partition_point(|p| p.0 <= at);
                v.insert(pos, (at, value));
                while v.len() > max || (v.len() > 1 && v.front().is_some_and(|p| p.0 < oldest)) {
                    v.pop_front();
                }
            }
            (Series::One(..), _) | (Series::Num(_), Value::Str(_)) => unreachable!("converted above"),
        }
    }

    /// The latest sample at or before `now`.
    pub fn latest(&self, now: SystemTime) -> Option<Sample> {
        let now = to_ms(now);
        match self {
            Series::One(t, n) => (*t <= now).then(|| Sample {
                at: from_ms(*t),
                value: Value::Num(*n),
            }),
            Series::Num(v) => v.iter().rev().find(|p| p.0 <= now).map(|&(t, n)| Sample {
                at: from_ms(t),
                value: Value::Num(n),
            }),
            Series::Any(v) => v.iter().rev().find(|p| p.0 <= now).map(|(t, value)| Sample {
                at: from_ms(*t),
                value: value.clone(),
            }),
        }
    }

    /// Calls `f` with each sample in `(start, end]`, oldest first: its time
    /// in milliseconds and, when a finite number, its value. No allocation:
    /// a range function over a long window runs once per fact.
    pub fn each_in(&self, start: SystemTime, end: SystemTime, mut f: impl FnMut(i64, Option<f64>)) {
        let (start, end) = (to_ms(start), to_ms(end));
        let num = |n: f64| n.is_finite().then_some(n);
        match self {
            Series::One(t, n) => {
                if *t > start && *t <= end {
                    f(*t, num(*n));
                }
            }
            Series::Num(v) => {
                let from = v.partition_point(|p| p.0 <= start);
                for &(t, n) in v.range(from..).take_while(|p| p.0 <= end) {
                    f(t, num(n));
                }
            }
            Series::Any(v) => {
                let from = v.partition_point(|p| p.0 <= start);
                for (t, value) in v.range(from..).take_while(|p| p.0 <= end) {
                    f(
                        *t,
                        match value {
                            Value::Num(n) => num(*n),
                            Value::Str(_) => None,
                        },
                    );
                }
            }
        }
    }

    /// The samples in `(start, end]`: their time and, when a finite number,
    /// their value.
    pub fn window(&self, start: SystemTime, end: SystemTime) -> Vec<(SystemTime, Option<f64>)> {
        let mut out = Vec::new();
        self.each_in(start, end, |t, n| out.push((from_ms(t), n)));
        out
    }
}

/// A series' labels as the store keeps them: sorted pairs of interned
/// strings (a label value shared by many series is held once), and the set
/// itself interned too: a target's `check_up` and `check_duration_ms`
/// share one key. About a tenth of the memory of two [`Labels`] maps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(Arc<[(Sym, Sym)]>);

/// An interned label name or value: one pointer (a fat `Arc<str>` is two),
/// so a label pair in a [`Key`] is 16 bytes and a target's four labels fit
/// jemalloc's 80-byte class, not the 160 one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Sym(Arc<Box<str>>);

impl std::ops::Deref for Sym {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Sym {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<[(Sym, Sym)]> for Key {
    fn borrow(&self) -> &[(Sym, Sym)] {
        &self.0
    }
}

impl Key {
    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| &**k == name).map(|(_, v)| &**v)
    }

    /// The labels as a map.
    pub fn to_labels(&self) -> Labels {
        self.0.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

/// Interned label names and values, and label sets.
#[derive(Debug, Default)]
struct Strings {
    strings: HashSet<Sym>,
    keys: HashSet<Key>,
}

impl Strings {
    fn intern(&mut self, s: &str) -> Sym {
        if let Some(a) = self.strings.get(s) {
            return a.clone();
        }
        let a = Sym(Arc::new(s.into()));
        self.strings.insert(a.clone());
        a
    }

    /// The key of `labels`, interning what is new.
    fn key(&mut self, labels: &Labels) -> Key {
        let pairs: Vec<_> = labels.iter().map(|(k, v)| (self.intern(k), self.intern(v))).collect();
        if let Some(k) = self.keys.get(pairs.as_slice()) {
            return k.clone();
        }
        let k = Key(pairs.into());
        self.keys.insert(k.clone());
        k
    }

    /// The key of `labels` if it is known (else no series has it).
    fn lookup(&self, labels: &Labels) -> Option<Key> {
        let get = |s: &str| self.strings.get(s).cloned();
        let pairs = labels
            .iter()
            .map(|(k, v)| Some((get(k)?, get(v)?)))
            .collect::<Option<Vec<_>>>()?;
        self.keys.get(pairs.as_slice()).cloned()
    }

    /// Forgets label sets and strings no series uses any more.
    fn collect_garbage(&mut self) {
        self.keys.retain(|k| Arc::strong_count(&k.0) > 1);
        self.strings.retain(|a| Arc::strong_count(&a.0) > 1);
    }
}

/// Bounded recent history of every series.
#[derive(Debug)]
pub struct SeriesStore {
    by_name: HashMap<String, HashMap<Key, Series>>,
    strings: Strings,
    series: usize,
    window: Duration,
    max_series: usize,
    max_samples: usize,
    /// How far back the rules reading a metric look (its longest `[range]`);
    /// a metric not listed keeps its latest sample only.
    horizons: HashMap<String, Duration>,
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
            horizons: HashMap::new(),
            strings: Strings::default(),
        }
    }

    /// Sets how far back each metric's samples are kept (the longest range
    /// a rule reads it over); a metric not listed keeps only its latest
    /// sample, which is all a current value needs. Never past the window.
    pub fn set_horizons(&mut self, horizons: HashMap<String, Duration>) {
        self.horizons = horizons;
    }

    /// Adds a sample, keeping each series ordered by time, and drops the
    /// samples no rule looks back to.
    pub fn insert(&mut self, name: &str, labels: &Labels, sample: Sample, now: SystemTime) -> Inserted {
        if crate::lifecycle::later(sample.at, self.window) < now {
            return Inserted::TooOld;
        }
        let full = self.series >= self.max_series;
        let horizon = self
            .horizons
            .get(name)
            .copied()
            .unwrap_or(Duration::ZERO)
            .min(self.window);
        let existing = self.strings.lookup(labels);
        let by_labels = match self.by_name.get_mut(name) {
            Some(m) => m,
            None => self.by_name.entry(name.to_owned()).or_default(),
        };
        let oldest = to_ms(now.checked_sub(horizon).unwrap_or(SystemTime::UNIX_EPOCH));
        let at = to_ms(sample.at);
        match existing.as_ref().and_then(|k| by_labels.get_mut(k)) {
            Some(series) => series.add(at, sample.value, oldest, self.max_samples),
            None if full => return Inserted::TooManySeries,
            None => {
                self.series += 1;
                let key = self.strings.key(labels);
                by_labels.insert(key, Series::first(at, sample.value));
            }
        }
        Inserted::Stored
    }

    /// Every series of `name` with its samples.
    pub fn series<'a>(&'a self, name: &str) -> impl Iterator<Item = (&'a Key, &'a Series)> + 'a {
        self.by_name.get(name).into_iter().flat_map(|m| m.iter())
    }

    /// The samples of one series.
    pub fn get(&self, name: &str, labels: &Labels) -> Option<&Series> {
        self.by_name.get(name)?.get(&self.strings.lookup(labels)?)
    }

    /// Number of series of `name`.
    pub fn count(&self, name: &str) -> usize {
        self.by_name.get(name).map_or(0, HashMap::len)
    }

    /// Drops samples older than the window, and series left empty.
    pub fn prune(&mut self, now: SystemTime) {
        let cutoff = to_ms(now.checked_sub(self.window).unwrap_or(SystemTime::UNIX_EPOCH));
        let mut removed = 0;
        self.by_name.retain(|_, by_labels| {
            by_labels.retain(|_, samples| {
                let keep = samples.keep_from(cutoff);
                if !keep {
                    removed += 1;
                }
                keep
            });
            !by_labels.is_empty()
        });
        self.series -= removed;
        if removed > 0 {
            self.strings.collect_garbage();
        }
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
        s.set_horizons([("m".to_owned(), Duration::from_secs(600))].into());
        let put = |s: &mut SeriesStore, l: &str, t: u64, v: f64| {
            s.insert(
                "m",
                &labels(l),
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
        let values = |s: &SeriesStore| -> Vec<Option<f64>> {
            let (_, a) = s.series("m").find(|(l, _)| l.get("target") == Some("a")).unwrap();
            a.window(at(0), at(100)).into_iter().map(|(_, v)| v).collect()
        };
        assert_eq!(values(&s), [Some(3.0), Some(4.0), Some(5.0)]);
        // Out of order samples land in time order.
        s.insert(
            "m",
            &labels("a"),
            Sample {
                at: at(4) + Duration::from_millis(1),
                value: Value::Num(9.0),
            },
            at(5),
        );
        assert_eq!(values(&s), [Some(4.0), Some(9.0), Some(5.0)]);
        assert_eq!(
            s.insert(
                "m",
                &labels("a"),
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

    #[test]
    fn a_metric_no_rule_looks_back_on_keeps_its_latest_sample() {
        let mut s = SeriesStore::new(Duration::from_secs(3600), 10, 100);
        s.set_horizons([("ranged".to_owned(), Duration::from_secs(30))].into());
        for t in 0..100 {
            for name in ["ranged", "instant"] {
                s.insert(
                    name,
                    &labels("a"),
                    Sample {
                        at: at(t),
                        value: Value::Num(t as f64),
                    },
                    at(t),
                );
            }
        }
        let (_, instant) = s.series("instant").next().unwrap();
        assert_eq!(instant.len(), 1);
        assert_eq!(instant.latest(at(100)).unwrap().value, Value::Num(99.0));
        let (_, ranged) = s.series("ranged").next().unwrap();
        assert_eq!(ranged.len(), 31, "the last 30 s and the instant they start");
        // A state turns a series of numbers into one of values, in order.
        s.insert(
            "ranged",
            &labels("a"),
            Sample {
                at: at(100),
                value: Value::Str("down".into()),
            },
            at(100),
        );
        let (_, ranged) = s.series("ranged").next().unwrap();
        assert_eq!(ranged.latest(at(100)).unwrap().value, Value::Str("down".into()));
        assert_eq!(ranged.window(at(98), at(100)), [(at(99), Some(99.0)), (at(100), None)]);
    }

    #[test]
    fn a_single_number_is_held_inline_and_grows_when_needed() {
        let mut s = SeriesStore::new(Duration::from_secs(3600), 10, 100);
        let put = |s: &mut SeriesStore, t: u64, v: Value, now: u64| {
            s.insert("m", &labels("a"), Sample { at: at(t), value: v }, at(now))
        };
        assert!(
            std::mem::size_of::<Series>() <= 24,
            "a series inline in its map: {}",
            std::mem::size_of::<Series>()
        );
        let inline = |s: &SeriesStore| matches!(s.series("m").next().unwrap().1, Series::One(..));
        put(&mut s, 10, Value::Num(1.0), 10);
        put(&mut s, 20, Value::Num(2.0), 20);
        assert!(inline(&s), "a newer number replaces the old one in place");
        // An older number than the one held is dropped: nothing looks back.
        put(&mut s, 15, Value::Num(9.0), 20);
        assert!(inline(&s));
        let (_, m) = s.series("m").next().unwrap();
        assert_eq!(
            m.latest(at(30)).unwrap(),
            Sample {
                at: at(20),
                value: Value::Num(2.0)
            }
        );
        assert_eq!(m.latest(at(19)), None, "nothing at or before 19 s is held");
        assert_eq!(m.window(at(19), at(20)), [(at(20), Some(2.0))]);
        assert!(m.window(at(20), at(30)).is_empty(), "(start, end]");
        // Two samples of the same instant (nothing older than it is kept
        // with a zero horizon, but the instant itself is).
        put(&mut s, 20, Value::Num(3.0), 20);
        let (_, m) = s.series("m").next().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m.latest(at(20)).unwrap().value, Value::Num(3.0));
        // A state after a number: values as they are.
        put(&mut s, 30, Value::Str("down".into()), 30);
        let (_, m) = s.series("m").next().unwrap();
        assert_eq!(m.latest(at(30)).unwrap().value, Value::Str("down".into()));
        // Pruned past the window, the series goes.
        s.prune(at(30) + Duration::from_secs(3601));
        assert_eq!(s.len(), 0);
        put(&mut s, 5000, Value::Num(1.0), 5000);
        assert!(inline(&s));
        s.prune(at(5000) + Duration::from_secs(3599));
        assert_eq!(s.len(), 1, "within the window it stays");
    }
}
