//! The overview's rows: every target (the collector's list, kept for a few
//! seconds), its state per location (the feed's latest results), filters
//! and search done here on the server, one page at a time, and the uptime
//! of the page's targets over 24 h / 7 d / 30 d from the rolled-up history
//! (kept a minute per target).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use pantau_config::types::quote;
use pantau_core::error::ApiError;
use pantau_core::time::to_timestamp;
use pantau_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::labels::{BreakerState, CheckKind, CheckStatus, FailureReason};
use crate::targets::Client;

/// Rows per page.
pub const PAGE_SIZE: usize = 50;
/// How long the collector's target list is reused.
const TARGETS_FRESH: Duration = Duration::from_secs(3);
/// How long a target's uptime is reused.
const UPTIME_FRESH: Duration = Duration::from_secs(60);
/// History calls in flight for one page.
const HISTORY_CALLS: usize = 8;

/// What the overview knows of a target's configuration.
#[derive(Debug, Clone)]
pub struct TargetInfo {
    pub id: String,
    pub name: String,
    pub kind: CheckKind,
    /// URL, host:port or name (shown in the console only, never on status pages).
    pub address: String,
    pub labels: BTreeMap<String, String>,
    pub breaker: BreakerState,
    /// Its scheduled checks are paused.
    pub paused: bool,
}

impl From<&pb::Target> for TargetInfo {
    fn from(t: &pb::Target) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            kind: CheckKind::from(t.kind),
            address: t.address.clone(),
            labels: t.labels.clone().into_iter().collect(),
            breaker: BreakerState::from(t.breaker),
            paused: t.paused.is_some(),
        }
    }
}

/// A target's state over its locations: `up` everywhere, `down`
/// everywhere, `partial` (down from some: "degraded" on status pages), or
/// `pending` (no result yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Down,
    Partial,
    Pending,
    Up,
}

impl State {
    pub const ALL: [Self; 4] = [Self::Down, Self::Partial, Self::Pending, Self::Up];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::Partial => "partial",
            Self::Pending => "pending",
            Self::Up => "up",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The state of a target from its latest result per location.
    pub fn of(results: &[pb::CheckResult]) -> Self {
        let up = results
            .iter()
            .filter(|r| r.status == pb::CheckStatus::Up as i32)
            .count();
        match (up, results.len()) {
            (_, 0) => Self::Pending,
            (u, n) if u == n => Self::Up,
            (0, _) => Self::Down,
            _ => Self::Partial,
        }
    }
}

/// One location's latest result.
#[derive(Debug, Clone, Serialize)]
pub struct Loc {
    pub location: String,
    pub status: CheckStatus,
    pub latency_ms: Option<f64>,
    /// The failure reason in words, when down.
    pub reason: String,
    pub checked_at: Option<String>,
}

impl From<&pb::CheckResult> for Loc {
    fn from(r: &pb::CheckResult) -> Self {
        let v = crate::view::CheckResultView::from(r);
        Self {
            location: v.location,
            status: v.status,
            latency_ms: v.latency_ms,
            reason: reason_words(v.reason, &v.message),
            checked_at: v.checked_at,
        }
    }
}

/// A failure in words: the reason's sentence, then the check's message.
pub fn reason_words(reason: Option<FailureReason>, message: &str) -> String {
    let Some(r) = reason else { return String::new() };
    let words = match r {
        FailureReason::Dns => "the name did not resolve",
        FailureReason::Connect => "the connection failed",
        FailureReason::Refused => "the connection was refused",
        FailureReason::Timeout => "no answer in time",
        FailureReason::Tls => "the TLS handshake or certificate failed",
        FailureReason::HttpStatus => "an unexpected HTTP status",
        FailureReason::Assertion => "a condition on the answer failed",
        FailureReason::IcmpLoss => "pings were lost",
        FailureReason::Internal => "the check itself failed",
        FailureReason::Auth => "the credentials were refused",
        FailureReason::Protocol => "the server answered in an unexpected way",
        FailureReason::KafkaError => "the Kafka broker answered an error",
        FailureReason::TopicMissing => "the Kafka topic does not exist",
        FailureReason::Extraction => "a step's answer lacked a value to pass on",
        FailureReason::Unspecified => "failed",
    };
    if message.is_empty() {
        words.to_owned()
    } else {
        format!("{words}: {}", quote(message))
    }
}

/// Uptime in percent over 24 h, 7 d and 30 d (`None`: no check in that span).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Uptime {
    pub d1: Option<f64>,
    pub d7: Option<f64>,
    pub d30: Option<f64>,
}

impl Uptime {
    /// From hourly points, newest last, as of `now` (seconds since the epoch).
    pub fn from_points(points: &[pb::HistoryPoint], now: i64) -> Self {
        let span = |secs: i64| {
            let (checks, up) = points
                .iter()
                .filter(|p| p.start.as_ref().is_some_and(|t| t.seconds >= now - secs))
                .fold((0u64, 0u64), |(c, u), p| (c + p.checks, u + p.up));
            (checks > 0).then(|| up as f64 * 100.0 / checks as f64)
        };
        Self {
            d1: span(86_400),
            d7: span(7 * 86_400),
            d30: span(30 * 86_400),
        }
    }
}

/// One row of the overview.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub kind: CheckKind,
    pub address: String,
    pub state: State,
    pub locations: Vec<Loc>,
    /// The mean of the locations' latest latencies.
    pub latency_ms: Option<f64>,
    pub labels: Vec<String>,
    pub breaker: BreakerState,
    pub paused: bool,
    pub uptime: Uptime,
}

/// The overview's filters, as the query string gives them.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilterQuery {
    /// Search in id, name and address.
    pub q: Option<String>,
    pub state: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `key=value` or `key`.
    pub label: Option<String>,
    pub location: Option<String>,
    pub page: Option<String>,
}

/// The filters, checked.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub q: String,
    pub state: Option<State>,
    pub kind: Option<CheckKind>,
    pub label: Option<(String, Option<String>)>,
    pub location: Option<String>,
    /// From 1.
    pub page: usize,
}

/// The longest search or label filter, in bytes.
pub const MAX_FILTER: usize = 200;

fn invalid(field: &str, value: &str, allowed: &str) -> ApiError {
    crate::input::bad(
        "invalid_query",
        format!("{field} `{}` is not allowed: {allowed}", quote(value)),
    )
}

fn some(v: Option<&String>) -> Option<&str> {
    v.map(String::as_str).map(str::trim).filter(|s| !s.is_empty())
}

impl FilterQuery {
    /// The filters, or a 400 naming the first bad one.
    pub fn check(&self) -> Result<Filter, ApiError> {
        let q = some(self.q.as_ref()).unwrap_or_default();
        if q.len() > MAX_FILTER {
            return Err(invalid("q", q, "use at most 200 bytes"));
        }
        let state = some(self.state.as_ref())
            .map(|s| State::parse(s).ok_or_else(|| invalid("state", s, "use up, down, partial or pending")))
            .transpose()?;
        let kind = some(self.kind.as_ref())
            .map(|s| CheckKind::parse(s).ok_or_else(|| invalid("type", s, &format!("use {}", CheckKind::choices()))))
            .transpose()?;
        let label = some(self.label.as_ref())
            .map(|s| {
                if s.len() > MAX_FILTER {
                    return Err(invalid("label", s, "use key or key=value, at most 200 bytes"));
                }
                Ok(match s.split_once('=') {
                    Some((k, v)) => (k.trim().to_owned(), Some(v.trim().to_owned())),
                    None => (s.to_owned(), None),
                })
            })
            .transpose()?;
        let location = some(self.location.as_ref())
            .map(|s| {
                if pantau_config::is_token(s) {
                    Ok(s.to_owned())
                } else {
                    Err(invalid(
                        "location",
                        s,
                        "use a location name (letters, digits, `-`, `_`)",
                    ))
                }
            })
            .transpose()?;
        let page = match some(self.page.as_ref()) {
            None => 1,
            Some(p) => p
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| invalid("page", p, "use a whole number from 1"))?,
        };
        Ok(Filter {
            q: q.to_lowercase(),
            state,
            kind,
            label,
            location,
            page,
        })
    }
}

impl Filter {
    fn keeps(&self, t: &TargetInfo, state: State, results: &[pb::CheckResult]) -> bool {
        if self.state.is_some_and(|s| s != state) || self.kind.is_some_and(|k| k != t.kind) {
            return false;
        }
        if let Some((k, v)) = &self.label
            && t.labels.get(k).is_none_or(|have| v.as_ref().is_some_and(|v| v != have))
        {
            return false;
        }
        if let Some(l) = &self.location
            && !results.iter().any(|r| &r.location == l)
        {
            return false;
        }
        self.q.is_empty()
            || [&t.id, &t.name, &t.address]
                .iter()
                .any(|s| s.to_lowercase().contains(&self.q))
    }
}

/// One page of the overview.
#[derive(Debug, Clone, Serialize)]
pub struct OverviewPage {
    pub rows: Vec<Row>,
    /// Targets that pass the filters.
    pub matched: usize,
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    /// Targets per state, of all targets.
    pub counts: BTreeMap<&'static str, usize>,
    /// Every location that reported, for the filter.
    pub locations: Vec<String>,
}

/// The targets and uptimes the overview reuses.
pub struct Model {
    collector: Client,
    targets: tokio::sync::Mutex<Option<(Instant, Arc<Vec<TargetInfo>>)>>,
    uptime: Mutex<HashMap<String, (Instant, Uptime)>>,
}

impl Model {
    pub fn new(collector: Client) -> Self {
        Self {
            collector,
            targets: tokio::sync::Mutex::default(),
            uptime: Mutex::default(),
        }
    }

    /// Every target, from the collector at most every few seconds.
    pub async fn targets(&self) -> Result<Arc<Vec<TargetInfo>>, ApiError> {
        let mut kept = self.targets.lock().await;
        if let Some((at, t)) = kept.as_ref()
            && at.elapsed() < TARGETS_FRESH
        {
            return Ok(Arc::clone(t));
        }
        let list = self
            .collector
            .clone()
            .list_targets(pb::ListTargetsRequest {})
            .await
            .map_err(|s| crate::grpc_error(&s, "collector"))?
            .into_inner()
            .targets;
        let mut infos: Vec<TargetInfo> = list.iter().map(TargetInfo::from).collect();
        infos.sort_by(|a, b| a.id.cmp(&b.id));
        let infos = Arc::new(infos);
        *kept = Some((Instant::now(), Arc::clone(&infos)));
        Ok(infos)
    }

    /// Forgets the target list, after a write changed it.
    pub async fn forget_targets(&self) {
        *self.targets.lock().await = None;
    }

    /// The uptime of each of `ids` (kept a minute each).
    pub async fn uptimes(&self, ids: &[String]) -> HashMap<String, Uptime> {
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        {
            let kept = self.uptime.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for id in ids {
                match kept.get(id) {
                    Some((at, u)) if at.elapsed() < UPTIME_FRESH => {
                        out.insert(id.clone(), *u);
                    }
                    _ => missing.push(id.clone()),
                }
            }
        }
        let fetched: Vec<(String, Option<Uptime>)> = futures::stream::iter(missing)
            .map(|id| {
                let c = self.collector.clone();
                async move { (id.clone(), fetch_uptime(c, id).await.ok()) }
            })
            .buffer_unordered(HISTORY_CALLS)
            .collect()
            .await;
        let mut kept = self.uptime.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() > 100_000 {
            kept.clear();
        }
        for (id, u) in fetched {
            if let Some(u) = u {
                kept.insert(id.clone(), (Instant::now(), u));
                out.insert(id, u);
            }
        }
        out
    }
}

/// The uptime of `id` over 24 h / 7 d / 30 d, from its hourly history.
async fn fetch_uptime(mut c: Client, id: String) -> Result<Uptime, tonic::Status> {
    let now = std::time::SystemTime::now();
    let h = c
        .get_history(pb::GetHistoryRequest {
            target_id: id,
            from: Some(to_timestamp(now - Duration::from_secs(30 * 86_400))),
            to: Some(to_timestamp(now)),
            resolution: pb::Resolution::Hour.into(),
        })
        .await?
        .into_inner();
    let secs = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    Ok(Uptime::from_points(&h.points, secs))
}

/// The row of `t`, without uptime.
pub fn row(t: &TargetInfo, results: &[pb::CheckResult]) -> Row {
    let mut locations: Vec<Loc> = results.iter().map(Loc::from).collect();
    locations.sort_by(|a, b| a.location.cmp(&b.location));
    let lat: Vec<f64> = locations.iter().filter_map(|l| l.latency_ms).collect();
    Row {
        id: t.id.clone(),
        name: if t.name.is_empty() {
            t.id.clone()
        } else {
            t.name.clone()
        },
        kind: t.kind,
        address: t.address.clone(),
        state: State::of(results),
        latency_ms: (!lat.is_empty()).then(|| lat.iter().sum::<f64>() / lat.len() as f64),
        locations,
        labels: t.labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        breaker: t.breaker,
        paused: t.paused,
        uptime: Uptime::default(),
    }
}

/// Filters `targets`, sorts the worst first (down, partial, pending, up;
/// then by id) and cuts out the page.
pub fn page<S: std::hash::BuildHasher>(
    targets: &[TargetInfo],
    latest: &HashMap<String, Vec<pb::CheckResult>, S>,
    f: &Filter,
) -> OverviewPage {
    let none = Vec::new();
    let mut counts: BTreeMap<&'static str, usize> = State::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut locations = BTreeSet::new();
    let mut kept: Vec<(State, &TargetInfo)> = Vec::new();
    for t in targets {
        let results = latest.get(&t.id).unwrap_or(&none);
        let state = State::of(results);
        *counts.entry(state.as_str()).or_default() += 1;
        locations.extend(results.iter().map(|r| r.location.as_str()));
        if f.keeps(t, state, results) {
            kept.push((state, t));
        }
    }
    kept.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let pages = kept.len().div_ceil(PAGE_SIZE).max(1);
    let page = f.page.min(pages);
    let rows = kept
        .iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|(_, t)| row(t, latest.get(&t.id).unwrap_or(&none)))
        .collect();
    OverviewPage {
        rows,
        matched: kept.len(),
        total: targets.len(),
        page,
        pages,
        counts,
        locations: locations.into_iter().map(str::to_owned).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(target: &str, location: &str, up: bool) -> pb::CheckResult {
        pb::CheckResult {
            target_id: target.to_owned(),
            location: location.to_owned(),
            status: if up { pb::CheckStatus::Up } else { pb::CheckStatus::Down } as i32,
            ..pb::CheckResult::default()
        }
    }

    fn info(id: &str, kind: CheckKind, labels: &[(&str, &str)]) -> TargetInfo {
        TargetInfo {
            id: id.to_owned(),
            name: String::new(),
            kind,
            address: format!("https://{id}.example"),
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            breaker: BreakerState::Closed,
            paused: false,
        }
    }

    #[test]
    fn state_is_partial_when_some_locations_see_it_down() {
        assert_eq!(State::of(&[]), State::Pending);
        assert_eq!(State::of(&[result("a", "x", true), result("a", "y", true)]), State::Up);
        assert_eq!(
            State::of(&[result("a", "x", true), result("a", "y", false)]),
            State::Partial
        );
        assert_eq!(State::of(&[result("a", "x", false)]), State::Down);
    }

    #[test]
    fn filters_search_and_pages() {
        let mut targets: Vec<TargetInfo> = (0..120)
            .map(|i| {
                info(
                    &format!("t{i:03}"),
                    CheckKind::Http,
                    &[("env", if i % 2 == 0 { "prod" } else { "dev" })],
                )
            })
            .collect();
        targets.push(info("db", CheckKind::Tcp, &[]));
        let mut latest = HashMap::new();
        latest.insert("t005".to_owned(), vec![result("t005", "jkt", false)]);
        latest.insert(
            "t006".to_owned(),
            vec![result("t006", "jkt", true), result("t006", "bdg", false)],
        );
        latest.insert("db".to_owned(), vec![result("db", "bdg", true)]);
        let all = |q: FilterQuery| page(&targets, &latest, &q.check().unwrap());
        let p = all(FilterQuery::default());
        assert_eq!((p.total, p.matched, p.pages, p.rows.len()), (121, 121, 3, PAGE_SIZE));
        assert_eq!(p.rows[0].id, "t005", "down first");
        assert_eq!(p.rows[1].id, "t006", "then partial");
        assert_eq!(p.locations, ["bdg", "jkt"]);
        assert_eq!(p.counts["down"], 1);
        let q = |f: &str, v: &str| {
            let mut q = FilterQuery::default();
            match f {
                "q" => q.q = Some(v.to_owned()),
                "state" => q.state = Some(v.to_owned()),
                "type" => q.kind = Some(v.to_owned()),
                "label" => q.label = Some(v.to_owned()),
                "location" => q.location = Some(v.to_owned()),
                _ => q.page = Some(v.to_owned()),
            }
            q
        };
        assert_eq!(all(q("type", "tcp")).matched, 1);
        assert_eq!(all(q("label", "env=prod")).matched, 60);
        assert_eq!(all(q("label", "env")).matched, 120);
        assert_eq!(all(q("state", "pending")).matched, 118);
        assert_eq!(all(q("location", "bdg")).matched, 2);
        assert_eq!(all(q("q", "T11")).matched, 10);
        assert_eq!(all(q("page", "3")).rows.len(), 21);
        assert_eq!(all(q("page", "99")).page, 3, "past the end is the last page");
    }

    #[test]
    fn hostile_filters_are_refused_naming_the_field() {
        let cases = [
            ("state", "sideways"),
            ("type", "gopher"),
            ("page", "0"),
            ("page", "-1"),
            ("page", "1e9"),
            ("page", "99999999999999999999999"),
            ("location", "../../etc"),
            ("q", &"x".repeat(100_000)),
            ("label", &"k=".repeat(1000)),
            ("state", "\u{0}\u{1}garbage"),
        ];
        for (field, value) in cases {
            let mut q = FilterQuery::default();
            let v = Some(value.to_owned());
            match field {
                "state" => q.state = v,
                "type" => q.kind = v,
                "page" => q.page = v,
                "location" => q.location = v,
                "q" => q.q = v,
                _ => q.label = v,
            }
            let e = q.check().unwrap_err();
            assert!(e.message.starts_with(&format!("{field} `")), "{field}: {}", e.message);
            assert!(
                e.message.len() < 400,
                "{field}: quoted at most a little: {}",
                e.message.len()
            );
        }
    }

    #[test]
    fn uptime_spans_from_hourly_points() {
        let now = 1_000_000_000;
        let p = |ago_h: i64, checks, up| pb::HistoryPoint {
            start: Some(prost_types::Timestamp {
                seconds: now - ago_h * 3600,
                nanos: 0,
            }),
            checks,
            up,
            ..pb::HistoryPoint::default()
        };
        let u = Uptime::from_points(&[p(24 * 20, 10, 0), p(24 * 3, 10, 5), p(1, 10, 10)], now);
        assert_eq!(u.d1, Some(100.0));
        assert_eq!(u.d7, Some(75.0));
        assert!((u.d30.unwrap() - 50.0).abs() < 1e-9);
        assert!(Uptime::from_points(&[], now).d1.is_none());
    }
}
