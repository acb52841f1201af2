//! Evaluates a parsed condition over the [`SeriesStore`] at an instant.
//!
//! A condition yields the label sets it holds for (one alert each):
//! - a selector is the latest sample of each matching series no older than
//!   the staleness; as a bare fact it holds where its value is truthy;
//! - a range function reduces each matching series' samples in `[range]`;
//! - `x OP literal` keeps the series whose value compares true; two series
//!   compare where their label sets are equal; two literals are a constant;
//! - `a and b`: the label sets of `a` that agree with one of `b` on every
//!   label they share; `a or b`: those of `a`, then those of `b` not in `a`;
//! - `not a` holds (with no labels) exactly when `a` holds for nothing.
//!
//! Most rules are *local* ([`is_local`]): each label set they hold for
//! depends only on the series with exactly those labels (`check_up == 0`,
//! `avg_over_time(x[5m]) > 2000`, `a > 1 or b > 2`). A new sample of one
//! series then re-evaluates that one label set ([`evaluate_one`]), so the
//! cost of a fact does not grow with the number of series. `and`, `not`
//! and conditions without a selector relate label sets to each other and are
//! evaluated over every series ([`evaluate`]).

use std::time::{Duration, SystemTime};

use crate::lang::{CmpOp, Expr, RangeFn, Selector};
use crate::series::{Key, Labels, Series, SeriesStore, Value};

/// One label set a condition holds for, with the value that matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub labels: Labels,
    pub value: Value,
}

/// Where and when to evaluate.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub store: &'a SeriesStore,
    pub now: SystemTime,
    pub staleness: Duration,
}

/// The label sets `cond` holds for at `at.now`.
pub fn evaluate(cond: &Expr, at: At<'_>) -> Vec<Element> {
    match cond {
        Expr::Compare { op, lhs, rhs } => match compare_with_literal(*op, lhs, rhs, at) {
            Some(held) => held,
            None => compare(*op, operand(lhs, at), operand(rhs, at)),
        },
        Expr::And(a, b) => {
            let right = evaluate(b, at);
            evaluate(a, at)
                .into_iter()
                .filter(|l| right.iter().any(|r| agree(&l.labels, &r.labels)))
                .collect()
        }
        Expr::Or(a, b) => {
            let mut out = evaluate(a, at);
            for r in evaluate(b, at) {
                if !out.iter().any(|l| l.labels == r.labels) {
                    out.push(r);
                }
            }
            out
        }
        Expr::Not(a) => {
            if evaluate(a, at).is_empty() {
                vec![Element {
                    labels: Labels::new(),
                    value: Value::Num(1.0),
                }]
            } else {
                Vec::new()
            }
        }
        Expr::Selector(_) | Expr::Range { .. } => series_values(cond, at)
            .into_iter()
            .flatten()
            .filter(|(_, value)| value.truthy())
            .map(element)
            .collect(),
        Expr::Number(_) | Expr::Str(_) => match operand(cond, at) {
            Operand::Scalar(v) => {
                if v.truthy() {
                    vec![Element {
                        labels: Labels::new(),
                        value: v,
                    }]
                } else {
                    Vec::new()
                }
            }
            Operand::Vector(v) => v.into_iter().filter(|e| e.value.truthy()).collect(),
        },
    }
}

/// Whether every label set `cond` holds for depends only on the series of
/// exactly those labels: selectors and ranges, compared with a literal or
/// with each other, joined by `or`.
pub fn is_local(cond: &Expr) -> bool {
    fn vector(e: &Expr) -> bool {
        matches!(e, Expr::Selector(_) | Expr::Range { .. })
    }
    fn scalar(e: &Expr) -> bool {
        matches!(e, Expr::Number(_) | Expr::Str(_))
    }
    match cond {
        Expr::Selector(_) | Expr::Range { .. } => true,
        Expr::Compare { lhs, rhs, .. } => (vector(lhs) && (vector(rhs) || scalar(rhs))) || (scalar(lhs) && vector(rhs)),
        Expr::Or(a, b) => is_local(a) && is_local(b),
        Expr::Number(_) | Expr::Str(_) | Expr::And(..) | Expr::Not(_) => false,
    }
}

/// What `cond` holds for among the label set `labels` alone: the same as
/// the element of [`evaluate`] with exactly these labels, computed from
/// those series only when `cond` [`is_local`].
pub fn evaluate_one(cond: &Expr, at: At<'_>, labels: &Labels) -> Option<Element> {
    if !is_local(cond) {
        return evaluate(cond, at).into_iter().find(|e| &e.labels == labels);
    }
    let value = one(cond, at, labels)?;
    Some(Element {
        labels: labels.clone(),
        value,
    })
}

/// The value a local condition holds with for `labels`, if it holds.
fn one(cond: &Expr, at: At<'_>, labels: &Labels) -> Option<Value> {
    match cond {
        Expr::Compare { op, lhs, rhs } => {
            let (a, b) = (scalar_or_one(lhs, at, labels)?, scalar_or_one(rhs, at, labels)?);
            // The value is the series' (the left one when both are).
            let literal_first = matches!(**lhs, Expr::Number(_) | Expr::Str(_));
            holds(*op, &a, &b).then_some(if literal_first { b } else { a })
        }
        Expr::Or(a, b) => one(a, at, labels).or_else(|| one(b, at, labels)),
        Expr::Selector(_) | Expr::Range { .. } => scalar_or_one(cond, at, labels).filter(Value::truthy),
        Expr::Number(_) | Expr::Str(_) | Expr::And(..) | Expr::Not(_) => None,
    }
}

/// A literal, or the value of the selected series with exactly `labels`.
fn scalar_or_one(e: &Expr, at: At<'_>, labels: &Labels) -> Option<Value> {
    let matches = |sel: &Selector| {
        sel.matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.label).map(String::as_str)))
    };
    match e {
        Expr::Number(n) => Some(Value::Num(*n)),
        Expr::Str(s) => Some(Value::Str(s.clone())),
        Expr::Selector(sel) if matches(sel) => latest(at.store.get(&sel.name, labels)?, at),
        Expr::Range { func, selector, range } if matches(selector) => {
            let start = at.now.checked_sub(*range).unwrap_or(SystemTime::UNIX_EPOCH);
            reduce(*func, at.store.get(&selector.name, labels)?, start, at.now).map(Value::Num)
        }
        _ => None,
    }
}

/// The latest sample at or before `at.now`, unless it is stale.
fn latest(series: &Series, at: At<'_>) -> Option<Value> {
    let oldest = at.now.checked_sub(at.staleness).unwrap_or(SystemTime::UNIX_EPOCH);
    let last = series.latest(at.now)?;
    (last.at >= oldest).then_some(last.value)
}

enum Operand {
    Scalar(Value),
    Vector(Vec<Element>),
}

fn operand(e: &Expr, at: At<'_>) -> Operand {
    match e {
        Expr::Number(n) => Operand::Scalar(Value::Num(*n)),
        Expr::Str(s) => Operand::Scalar(Value::Str(s.clone())),
        Expr::Selector(_) | Expr::Range { .. } => {
            Operand::Vector(series_values(e, at).into_iter().flatten().map(element).collect())
        }
        // A nested condition used as an operand (the parser only allows
        // this through parentheses it rejects, but stay total).
        other => Operand::Vector(evaluate(other, at)),
    }
}

fn selected<'a>(sel: &'a Selector, at: At<'a>) -> impl Iterator<Item = (&'a Key, &'a Series)> + 'a {
    at.store
        .series(&sel.name)
        .filter(|(labels, _)| sel.matchers.iter().all(|m| m.matches(labels.get(&m.label))))
}

/// The series a selector or a range function selects, each with its value,
/// their labels not yet copied; `None` for any other expression.
fn series_values<'a>(e: &'a Expr, at: At<'a>) -> Option<Box<dyn Iterator<Item = (&'a Key, Value)> + 'a>> {
    match e {
        Expr::Selector(sel) => {
            Some(Box::new(selected(sel, at).filter_map(move |(labels, samples)| {
                latest(samples, at).map(|v| (labels, v))
            })))
        }
        Expr::Range { func, selector, range } => {
            let start = at.now.checked_sub(*range).unwrap_or(SystemTime::UNIX_EPOCH);
            Some(Box::new(selected(selector, at).filter_map(move |(labels, series)| {
                reduce(*func, series, start, at.now).map(|v| (labels, Value::Num(v)))
            })))
        }
        _ => None,
    }
}

fn element((labels, value): (&Key, Value)) -> Element {
    Element {
        labels: labels.to_labels(),
        value,
    }
}

/// `series OP literal` (or `literal OP series`), the labels of only the
/// series it holds for copied. A sweep evaluates every rule over every
/// series: copying the labels of all 100,000 `check_up` series first took
/// about 90 MiB for the moment of each sweep (and its time), where a few
/// hold. `None` when neither side is a literal.
fn compare_with_literal(op: CmpOp, lhs: &Expr, rhs: &Expr, at: At<'_>) -> Option<Vec<Element>> {
    let literal = |e: &Expr| match e {
        Expr::Number(n) => Some(Value::Num(*n)),
        Expr::Str(s) => Some(Value::Str(s.clone())),
        _ => None,
    };
    if let (Some(series), Some(b)) = (series_values(lhs, at), literal(rhs)) {
        return Some(series.filter(|(_, a)| holds(op, a, &b)).map(element).collect());
    }
    if let (Some(a), Some(series)) = (literal(lhs), series_values(rhs, at)) {
        return Some(series.filter(|(_, b)| holds(op, &a, b)).map(element).collect());
    }
    None
}

/// Reduces one series' samples in `(start, end]` in a single pass.
fn reduce(func: RangeFn, series: &Series, start: SystemTime, end: SystemTime) -> Option<f64> {
    let (mut count, mut nums, mut sum) = (0usize, 0usize, 0.0);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut first, mut last): (Option<i64>, Option<(i64, f64)>) = (None, None);
    let mut increase = 0.0;
    series.each_in(start, end, |t, n| {
        count += 1;
        let Some(n) = n else { return };
        nums += 1;
        sum += n;
        min = min.min(n);
        max = max.max(n);
        first.get_or_insert(t);
        if let Some((_, prev)) = last {
            // A counter that went down was reset: count from zero again.
            increase += if n >= prev { n - prev } else { n };
        }
        last = Some((t, n));
    });
    if func == RangeFn::Count {
        return (count > 0).then_some(count as f64);
    }
    let (first, (last_t, _)) = (first?, last?);
    Some(match func {
        RangeFn::Avg => sum / nums as f64,
        RangeFn::Sum => sum,
        RangeFn::Min => min,
        RangeFn::Max => max,
        RangeFn::Rate => {
            let secs = (last_t - first) as f64 / 1000.0;
            if nums < 2 || secs <= 0.0 {
                return None;
            }
            increase / secs
        }
        RangeFn::Count => unreachable!("handled above"),
    })
}

fn compare(op: CmpOp, lhs: Operand, rhs: Operand) -> Vec<Element> {
    match (lhs, rhs) {
        (Operand::Vector(v), Operand::Scalar(s)) => v.into_iter().filter(|e| holds(op, &e.value, &s)).collect(),
        (Operand::Scalar(s), Operand::Vector(v)) => v.into_iter().filter(|e| holds(op, &s, &e.value)).collect(),
        (Operand::Scalar(a), Operand::Scalar(b)) => {
            if holds(op, &a, &b) {
                vec![Element {
                    labels: Labels::new(),
                    value: a,
                }]
            } else {
                Vec::new()
            }
        }
        (Operand::Vector(a), Operand::Vector(b)) => a
            .into_iter()
            .filter(|l| b.iter().any(|r| r.labels == l.labels && holds(op, &l.value, &r.value)))
            .collect(),
    }
}

fn holds(op: CmpOp, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => op.holds(x, y),
        (Value::Str(x), Value::Str(y)) if op.is_equality() => op.holds(x.as_str(), y.as_str()),
        // A state against a number, or ordering strings: never true.
        _ => false,
    }
}

fn agree(a: &Labels, b: &Labels) -> bool {
    b.iter().all(|(k, v)| a.get(k).is_none_or(|x| x == v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::parse;
    use crate::series::Sample;

    /// A store keeping an hour of every metric the tests use.
    fn store() -> SeriesStore {
        let mut s = SeriesStore::new(Duration::from_secs(3600), 1000, 100);
        s.set_horizons(
            [
                "check_up",
                "check_duration_ms",
                "octets",
                "health",
                "maintenance",
                "a",
                "b",
            ]
            .iter()
            .map(|n| ((*n).to_owned(), Duration::from_secs(3600)))
            .collect(),
        );
        s
    }

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn put(s: &mut SeriesStore, name: &str, l: &[(&str, &str)], at: u64, v: Value) {
        s.insert(name, &labels(l), Sample { at: t(at), value: v }, t(at));
    }

    fn eval(s: &SeriesStore, expr: &str, now: u64) -> Vec<Labels> {
        let r = parse(expr).unwrap();
        let mut out: Vec<Labels> = evaluate(
            &r.cond,
            At {
                store: s,
                now: t(now),
                staleness: Duration::from_secs(300),
            },
        )
        .into_iter()
        .map(|e| e.labels)
        .collect();
        out.sort();
        out
    }

    #[test]
    fn comparisons_matchers_and_staleness() {
        let mut s = store();
        put(&mut s, "check_up", &[("target", "api")], 0, Value::Num(0.0));
        put(&mut s, "check_up", &[("target", "web")], 0, Value::Num(1.0));
        assert_eq!(eval(&s, "check_up == 0", 10), [labels(&[("target", "api")])]);
        assert_eq!(
            eval(&s, r#"check_up{target!="api"} == 1"#, 10),
            [labels(&[("target", "web")])]
        );
        assert_eq!(eval(&s, r#"check_up{target="nope"} == 0"#, 10), Vec::<Labels>::new());
        assert_eq!(eval(&s, "0 == check_up", 10).len(), 1);
        assert!(eval(&s, "check_up == 0", 301).is_empty(), "stale after 5m");
        assert_eq!(
            eval(&s, "check_up", 10),
            [labels(&[("target", "web")])],
            "bare fact: truthy"
        );
        assert!(eval(&s, "not check_up", 10).is_empty());
        assert_eq!(eval(&s, "not missing_metric", 10), [Labels::new()]);
        assert_eq!(eval(&s, "1 < 2", 10), [Labels::new()]);
    }

    #[test]
    fn strings_and_boolean_logic() {
        let mut s = store();
        put(
            &mut s,
            "health",
            &[("component", "database")],
            0,
            Value::Str("unhealthy".into()),
        );
        put(
            &mut s,
            "health",
            &[("component", "queue")],
            0,
            Value::Str("healthy".into()),
        );
        put(&mut s, "maintenance", &[("component", "queue")], 0, Value::Num(1.0));
        let db = labels(&[("component", "database")]);
        let q = labels(&[("component", "queue")]);
        assert_eq!(
            eval(&s, r#"health{component="database"} == "unhealthy""#, 1),
            vec![db.clone()]
        );
        assert_eq!(eval(&s, r#"health != "unhealthy""#, 1), vec![q.clone()]);
        assert!(eval(&s, "health == 1", 1).is_empty(), "a state is never a number");
        assert_eq!(
            eval(&s, r#"health == "healthy" and maintenance == 1"#, 1),
            vec![q.clone()]
        );
        assert!(eval(&s, r#"health == "unhealthy" and maintenance == 1"#, 1).is_empty());
        assert_eq!(eval(&s, r#"health == "unhealthy" or health == "healthy""#, 1), [db, q]);
    }

    #[test]
    fn range_functions() {
        let mut s = store();
        for (i, v) in [1000.0, 2000.0, 3000.0, 4000.0].iter().enumerate() {
            put(
                &mut s,
                "check_duration_ms",
                &[("target", "api")],
                i as u64 * 60,
                Value::Num(*v),
            );
        }
        let api = vec![labels(&[("target", "api")])];
        // At 180s the last 5m hold all four: avg 2500.
        assert_eq!(
            eval(&s, r#"avg_over_time(check_duration_ms{target="api"}[5m]) > 2000"#, 180),
            api
        );
        assert!(eval(&s, "avg_over_time(check_duration_ms[5m]) > 2600", 180).is_empty());
        // The last 90s hold only 3000 and 4000.
        assert_eq!(eval(&s, "min_over_time(check_duration_ms[90s]) >= 3000", 180), api);
        assert_eq!(eval(&s, "max_over_time(check_duration_ms[5m]) == 4000", 180), api);
        assert_eq!(eval(&s, "count_over_time(check_duration_ms[5m]) == 4", 180), api);
        assert_eq!(eval(&s, "sum_over_time(check_duration_ms[5m]) == 10000", 180), api);
        // 1000 per minute.
        assert_eq!(
            eval(
                &s,
                "rate(check_duration_ms[5m]) > 16.6 and rate(check_duration_ms[5m]) < 16.7",
                180
            ),
            api
        );
        let mut c = store();
        for (i, v) in [100.0, 160.0, 10.0, 70.0].iter().enumerate() {
            put(&mut c, "octets", &[], i as u64 * 10, Value::Num(*v));
        }
        // 60 + reset to 10 + 60 = 130 over 30s.
        let r = parse("rate(octets[1m])").unwrap();
        let got = evaluate(
            &r.cond,
            At {
                store: &c,
                now: t(30),
                staleness: Duration::from_secs(300),
            },
        );
        assert_eq!(got[0].value, Value::Num(130.0 / 30.0));
    }

    #[test]
    fn which_conditions_are_local() {
        for (expr, local) in [
            ("check_up == 0", true),
            ("0 == check_up", true),
            ("check_up", true),
            ("avg_over_time(check_duration_ms[5m]) > 2000", true),
            ("check_up == 0 or check_duration_ms > 100", true),
            ("check_duration_ms > other_ms", true),
            ("check_up == 0 and maintenance == 0", false),
            ("not check_up", false),
            ("1 < 2", false),
            ("check_up == 0 or 1 < 2", false),
        ] {
            assert_eq!(is_local(&parse(expr).unwrap().cond), local, "{expr}");
        }
    }

    proptest::proptest! {
        /// For every label set, a local evaluation of one series gives what
        /// the evaluation over every series gives for that label set.
        #[test]
        fn one_label_set_agrees_with_every_series(
            samples in proptest::collection::vec((0u8..2, 0u8..6, 0u8..3, 0u64..400, -5i32..5), 1..60),
            now in 0u64..700,
        ) {
            let names = ["a", "b"];
            let mut s = store();
            for (n, target, loc, at, v) in &samples {
                let l = if *loc == 2 {
                    labels(&[("target", &target.to_string())])
                } else {
                    labels(&[("target", &target.to_string()), ("loc", &loc.to_string())])
                };
                let value = if *v == 4 { Value::Str("down".into()) } else { Value::Num(f64::from(*v)) };
                s.insert(names[usize::from(*n)], &l, Sample { at: t(*at), value }, t(*at));
            }
            for expr in [
                "a == 0",
                "a",
                "0 < a",
                r#"a{loc="1"} > 0"#,
                r#"a{loc!="1"} != 2"#,
                r#"a == "down""#,
                "a > b",
                "a >= 1 or b < 0",
                "avg_over_time(a[2m]) > 0",
                "rate(b[5m]) > 0.01",
                "count_over_time(a[1m]) >= 2 or max_over_time(b[3m]) == 4",
            ] {
                let cond = parse(expr).unwrap().cond;
                assert!(is_local(&cond), "{expr}");
                let at = At { store: &s, now: t(now), staleness: Duration::from_secs(120) };
                let all = evaluate(&cond, at);
                let mut sets: Vec<Labels> = names.iter().flat_map(|n| s.series(n).map(|(l, _)| l.to_labels())).collect();
                sets.sort();
                sets.dedup();
                for l in &sets {
                    let want = all.iter().find(|e| &e.labels == l).cloned();
                    proptest::prop_assert_eq!(evaluate_one(&cond, at, l), want, "{} for {:?}", expr, l);
                }
            }
        }
    }
}
