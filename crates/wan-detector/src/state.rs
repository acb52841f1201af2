//! The [`Detector`]: the latest state of every router seen on the bus
//! (its `RouterInfo`, a window of `InterfaceSample`s per interface, whether
//! it answers), the cached WAN judgement per router, and the `wan_detected`
//! event when a judgement differs from the last one published.
//!
//! - A judgement is reused for `wan_detector.cache_ttl`; a new `RouterInfo`
//!   whose interfaces or default routes differ from the judged one, and
//!   `force_refresh`, judge again at once.
//! - `wan_detected` (`pantau.event.wan_detected.<router_id>`) is published
//!   when the set of WAN interfaces or their ISPs changes — not on every
//!   poll, and not when only a confidence moves.
//! - A router the collector reported unreachable (`target_down` with
//!   `kind: router`), or not polled within `wan_detector.stale_after`, has
//!   every link `UNKNOWN`, never `DOWN`; its last judgement stands.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use pantau_config::WanDetectorConfig;
use pantau_core::bus::{self, Bus, subject};
use pantau_core::time::to_timestamp;
use pantau_proto::v1::{
    DetectWanResponse, EventKind, InterfaceSample, InterfaceState, Isp, LinkStatus, RouterEvent, RouterInfo,
    RouterSummary, Severity, WanEvidence, WanInterface,
};

use crate::detect::{Judged, Rules};
use crate::metrics as m;

/// Why a request about a router cannot be answered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LookupError {
    #[error("a router id is required")]
    Empty,
    #[error("no router `{0}` has been seen: it is not polled by any collector, or not yet")]
    NotFound(String),
    #[error("router `{0}` has sent interface samples but no RouterInfo yet; try again after its next poll")]
    NotJudged(String),
}

impl pantau_core::error::ServiceError for LookupError {
    fn code(&self) -> pantau_core::error::ErrorCode {
        use pantau_core::error::ErrorCode;
        match self {
            Self::Empty => ErrorCode::InvalidArgument,
            Self::NotFound(_) => ErrorCode::NotFound,
            // The detector works; the router's description has not come yet.
            Self::NotJudged(_) => ErrorCode::FailedPrecondition,
        }
    }
}

/// A cached judgement.
#[derive(Debug, Clone)]
struct Cached {
    judged: Vec<Judged>,
    at: SystemTime,
    /// What it was judged from: (ifIndex, name) pairs and default routes.
    shape: Shape,
}

type Shape = (Vec<(u32, String)>, Vec<u32>);

fn shape(info: &RouterInfo) -> Shape {
    let mut ifaces: Vec<(u32, String)> = info
        .interfaces
        .iter()
        .map(|i| (i.if_index, i.if_name.clone()))
        .collect();
    ifaces.sort();
    let mut routes = info.default_route_if_indexes.clone();
    routes.sort_unstable();
    (ifaces, routes)
}

#[derive(Debug, Default)]
struct RouterState {
    info: Option<RouterInfo>,
    /// When the latest info or sample arrived (our clock, not the router's).
    last_seen: Option<SystemTime>,
    /// The collector said it does not answer (until it answers again).
    reported_down: bool,
    samples: HashMap<u32, VecDeque<InterfaceSample>>,
    cache: Option<Cached>,
    /// Signature of the last `wan_detected` published (empty: no WAN).
    published: String,
    /// `isp` labels of the wan_interfaces gauge set for this router.
    gauged: Vec<String>,
}

/// The WAN detector's state.
pub struct Detector {
    rules: Rules,
    cache_ttl: Duration,
    stale_after: Duration,
    window: usize,
    routers: Mutex<HashMap<String, RouterState>>,
    bus: Arc<dyn Bus>,
    /// Where published answers are kept across restarts, if anywhere.
    store: Option<crate::store::WanStore>,
    /// Answers published before a restart, by router, until the router is seen.
    seeds: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

/// What a judgement means for the bus: the event to publish, if it changed.
struct Outcome {
    judged: Vec<Judged>,
    event: Option<(String, RouterEvent)>,
    cached: bool,
}

impl Detector {
    pub fn new(cfg: &WanDetectorConfig, bus: Arc<dyn Bus>) -> Result<Self, crate::WanError> {
        Ok(Self {
            rules: Rules::new(cfg)?,
            cache_ttl: cfg.cache_ttl,
            stale_after: cfg.stale_after,
            window: cfg.traffic.window.max(1),
            routers: Mutex::default(),
            bus,
            store: None,
            seeds: Mutex::default(),
        })
    }

    /// Keeps published answers in `store`, starting from those it holds.
    #[must_use]
    pub fn with_store(mut self, store: crate::store::WanStore, published: HashMap<String, String>) -> Self {
        self.store = Some(store);
        self.seeds = Mutex::new(published);
        self
    }

    /// The state of `id`, created (with its answer from before a restart) when new.
    fn entry<'m>(&self, map: &'m mut HashMap<String, RouterState>, id: &str) -> &'m mut RouterState {
        map.entry(id.to_owned()).or_insert_with(|| {
            let published = self
                .seeds
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(id)
                .unwrap_or_default();
            RouterState {
                published,
                ..RouterState::default()
            }
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RouterState>> {
        self.routers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes in a router's poll; judges again when the cache expired or the
    /// router's shape changed, and publishes `wan_detected` on a change.
    pub async fn on_info(&self, info: RouterInfo, now: SystemTime) {
        let id = info.router_id.clone();
        let outcome = {
            let mut map = self.lock();
            let st = self.entry(&mut map, &id);
            // Interfaces that vanished take their samples with them.
            st.samples
                .retain(|idx, _| info.interfaces.iter().any(|i| i.if_index == *idx));
            st.info = Some(info);
            st.last_seen = Some(now);
            st.reported_down = false;
            let n = map.len();
            ::metrics::gauge!(m::ROUTERS).set(n as f64);
            let st = map.get_mut(&id).expect("inserted above");
            self.judge_locked(&id, st, false, now)
        };
        if let Some(o) = outcome {
            self.publish(&id, o.event).await;
        }
    }

    /// Takes in one interface sample.
    pub fn on_sample(&self, s: InterfaceSample, now: SystemTime) {
        let mut map = self.lock();
        let st = self.entry(&mut map, &s.router_id);
        st.last_seen = Some(now);
        st.reported_down = false;
        let w = st.samples.entry(s.if_index).or_default();
        while w.len() >= self.window {
            w.pop_front();
        }
        w.push_back(s);
    }

    /// The collector reported the router unreachable (`false`) or answering again.
    pub fn on_reachability(&self, router_id: &str, reachable: bool, now: SystemTime) {
        let mut map = self.lock();
        let st = self.entry(&mut map, router_id);
        st.reported_down = !reachable;
        if reachable {
            st.last_seen = Some(now);
        }
    }

    fn reachable(&self, st: &RouterState, now: SystemTime) -> bool {
        !st.reported_down
            && st
                .last_seen
                .is_some_and(|t| now.duration_since(t).unwrap_or_default() <= self.stale_after)
    }

    /// Judges `st` (from the cache unless it expired, the shape changed or
    /// `force`); `None` before the router's first RouterInfo.
    fn judge_locked(&self, id: &str, st: &mut RouterState, force: bool, now: SystemTime) -> Option<Outcome> {
        let info = st.info.as_ref()?;
        let current = shape(info);
        if !force
            && let Some(c) = &st.cache
            && c.shape == current
            && now.duration_since(c.at).unwrap_or_default() < self.cache_ttl
        {
            return Some(Outcome {
                judged: c.judged.clone(),
                event: None,
                cached: true,
            });
        }
        let started = tokio::time::Instant::now();
        let judged = self.rules.judge(info, |idx| st.samples.get(&idx));
        ::metrics::histogram!(m::DETECTION_DURATION).record(started.elapsed().as_secs_f64());
        let sig = signature(&judged);
        let event = if sig == st.published {
            ::metrics::counter!(m::DETECTIONS_TOTAL, "result" => m::RESULT_UNCHANGED).increment(1);
            None
        } else {
            ::metrics::counter!(m::DETECTIONS_TOTAL, "result" => m::RESULT_CHANGED).increment(1);
            let ev = wan_event(id, info, &judged, &st.published, now);
            st.published.clone_from(&sig);
            Some((sig, ev))
        };
        gauge(id, st, &judged);
        st.cache = Some(Cached {
            judged: judged.clone(),
            at: now,
            shape: current,
        });
        Some(Outcome {
            judged,
            event,
            cached: false,
        })
    }
}

fn gauge(id: &str, st: &mut RouterState, judged: &[Judged]) {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for j in judged.iter().filter(|j| j.is_wan) {
        let isp = j.isp.as_ref().map_or(m::ISP_UNKNOWN.to_owned(), |i| i.name.clone());
        *counts.entry(isp).or_default() += 1;
    }
    for old in &st.gauged {
        if !counts.contains_key(old) {
            ::metrics::gauge!(m::WAN_INTERFACES, "router" => id.to_owned(), "isp" => old.clone()).set(0.0);
        }
    }
    for (isp, n) in &counts {
        ::metrics::gauge!(m::WAN_INTERFACES, "router" => id.to_owned(), "isp" => isp.clone()).set(f64::from(*n));
    }
    st.gauged = counts.into_keys().collect();
}

impl Detector {
    async fn publish(&self, id: &str, event: Option<(String, RouterEvent)>) {
        let Some((sig, ev)) = event else { return };
        let subj = subject::event("wan_detected", id);
        if let Err(e) = bus::publish_proto(self.bus.as_ref(), &subj, &ev).await {
            ::metrics::counter!(m::PUBLISH_ERRORS_TOTAL).increment(1);
            tracing::warn!(router = %id, error = %e, "cannot publish wan_detected; it is published again at the next judgement");
            // Forget it was published so the next judgement tries again.
            let mut map = self.lock();
            if let Some(st) = map.get_mut(id)
                && st.published == sig
            {
                st.published = String::from("\u{0}unpublished");
                st.cache = None;
            }
        } else {
            tracing::info!(router = %id, wan = %ev.attributes.get("wan_interfaces").map_or("", String::as_str), "wan interfaces changed");
            if let Some(store) = &self.store
                && let Err(e) = store.save(id, &sig, SystemTime::now()).await
            {
                ::metrics::counter!(m::PERSIST_ERRORS_TOTAL).increment(1);
                tracing::warn!(router = %id, error = %e, "cannot record the published WAN answer; a restart may publish it again");
            }
        }
    }

    /// `DetectWan`: the router's judgement with its links' current state.
    pub async fn detect(
        &self,
        router_id: &str,
        force: bool,
        now: SystemTime,
    ) -> Result<DetectWanResponse, LookupError> {
        if router_id.is_empty() {
            return Err(LookupError::Empty);
        }
        let (outcome, resp) = {
            let mut map = self.lock();
            let Some(st) = map.get_mut(router_id) else {
                return Err(LookupError::NotFound(router_id.to_owned()));
            };
            if st.info.is_none() && st.samples.is_empty() {
                // Known only as unreachable: say so, as `/interfaces` does,
                // rather than claim the detector or the samples are at fault.
                return Ok(DetectWanResponse {
                    router_id: router_id.to_owned(),
                    reachable: self.reachable(st, now),
                    ..DetectWanResponse::default()
                });
            }
            let Some(o) = self.judge_locked(router_id, st, force, now) else {
                return Err(LookupError::NotJudged(router_id.to_owned()));
            };
            let label = if force {
                m::CACHE_BYPASS
            } else if o.cached {
                m::CACHE_HIT
            } else {
                m::CACHE_MISS
            };
            ::metrics::counter!(m::CACHE_REQUESTS_TOTAL, "cache" => label).increment(1);
            let resp = self.response(router_id, st, &o, now);
            (o, resp)
        };
        self.publish(router_id, outcome.event).await;
        Ok(resp)
    }

    fn response(&self, id: &str, st: &RouterState, o: &Outcome, now: SystemTime) -> DetectWanResponse {
        let reachable = self.reachable(st, now);
        let info = st.info.as_ref();
        let mut interfaces: Vec<WanInterface> = o
            .judged
            .iter()
            .map(|j| {
                let live = iface_state(st, j.if_index, reachable);
                WanInterface {
                    if_index: j.if_index,
                    name: j.name.clone(),
                    is_wan: j.is_wan,
                    confidence: j.confidence,
                    evidence: j
                        .evidence
                        .iter()
                        .map(|e| WanEvidence {
                            method: e.method.into(),
                            confidence: e.confidence,
                            detail: e.detail.clone(),
                        })
                        .collect(),
                    isp: j.isp.as_ref().map(|i| Isp {
                        name: i.name.clone(),
                        source: i.source.as_str().to_owned(),
                        matched: i.matched.clone(),
                    }),
                    in_bits_per_second: live.in_bits_per_second,
                    out_bits_per_second: live.out_bits_per_second,
                    status: live.status,
                    alias: live.alias,
                    comment: live.comment,
                }
            })
            .collect();
        interfaces.sort_by(|a, b| {
            b.is_wan
                .cmp(&a.is_wan)
                .then_with(|| {
                    if a.is_wan {
                        b.confidence.total_cmp(&a.confidence)
                    } else {
                        std::cmp::Ordering::Equal
                    }
                })
                .then_with(|| a.if_index.cmp(&b.if_index))
        });
        DetectWanResponse {
            router_id: id.to_owned(),
            router_name: info.map(|i| i.router_name.clone()).unwrap_or_default(),
            interfaces,
            detected_at: st.cache.as_ref().map(|c| to_timestamp(c.at)),
            cached: o.cached,
            reachable,
        }
    }
}

/// One interface's current state from the latest info and samples.
fn iface_state(st: &RouterState, if_index: u32, reachable: bool) -> InterfaceState {
    let info_if = st
        .info
        .as_ref()
        .and_then(|i| i.interfaces.iter().find(|x| x.if_index == if_index));
    let window = st.samples.get(&if_index);
    let latest = window.and_then(|w| w.back());
    let rated = window.and_then(|w| w.iter().rev().find(|s| s.rates_valid));
    let (oper, admin) = match (latest, info_if) {
        (Some(s), _) => (s.oper_up, s.admin_up),
        (None, Some(i)) => (i.oper_up, i.admin_up),
        (None, None) => (false, false),
    };
    let status = if !reachable {
        LinkStatus::Unknown
    } else if !admin {
        LinkStatus::AdminDown
    } else if oper {
        LinkStatus::Up
    } else {
        LinkStatus::Down
    };
    let mut out = InterfaceState {
        if_index,
        name: latest
            .map(|s| s.if_name.clone())
            .or_else(|| info_if.map(|i| i.if_name.clone()))
            .unwrap_or_default(),
        status: status.into(),
        sampled_at: latest.and_then(|s| s.sampled_at),
        ..InterfaceState::default()
    };
    if let Some(i) = info_if {
        out.alias.clone_from(&i.if_alias);
        out.descr.clone_from(&i.if_descr);
        out.comment.clone_from(&i.comment);
        out.if_type = i.if_type;
        out.speed_bits_per_second = i.speed_bits_per_second;
        out.addresses.clone_from(&i.addresses);
    } else if let Some(s) = latest {
        out.alias.clone_from(&s.if_alias);
        out.speed_bits_per_second = s.speed_bits_per_second;
    }
    if let Some(s) = rated {
        out.in_bits_per_second = s.in_bits_per_second;
        out.out_bits_per_second = s.out_bits_per_second;
        out.in_packets_per_second = s.in_packets_per_second;
        out.out_packets_per_second = s.out_packets_per_second;
        out.in_errors = s.in_errors;
        out.out_errors = s.out_errors;
        out.in_discards = s.in_discards;
        out.out_discards = s.out_discards;
    }
    out
}

impl Detector {
    /// `ListRouters`: every router seen, by id.
    pub fn routers(&self, now: SystemTime) -> Vec<RouterSummary> {
        let map = self.lock();
        let mut out: Vec<RouterSummary> = map
            .iter()
            .map(|(id, st)| {
                let info = st.info.as_ref();
                RouterSummary {
                    router_id: id.clone(),
                    router_name: info.map_or_else(|| id.clone(), |i| i.router_name.clone()),
                    sys_name: info.map(|i| i.sys_name.clone()).unwrap_or_default(),
                    sys_descr: info.map(|i| i.sys_descr.clone()).unwrap_or_default(),
                    last_seen: st.last_seen.map(to_timestamp),
                    reachable: self.reachable(st, now),
                    interface_count: info.map_or(st.samples.len(), |i| i.interfaces.len()) as u32,
                    wan_count: st
                        .cache
                        .as_ref()
                        .map_or(0, |c| c.judged.iter().filter(|j| j.is_wan).count())
                        as u32,
                    uptime: info.and_then(|i| i.uptime),
                    labels: info.map(|i| i.labels.clone()).unwrap_or_default(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.router_id.cmp(&b.router_id));
        out
    }

    /// `ListInterfaces`: one router's interfaces by ifIndex, and whether it answers.
    pub fn interfaces(&self, router_id: &str, now: SystemTime) -> Result<(Vec<InterfaceState>, bool), LookupError> {
        if router_id.is_empty() {
            return Err(LookupError::Empty);
        }
        let map = self.lock();
        let st = map
            .get(router_id)
            .ok_or_else(|| LookupError::NotFound(router_id.to_owned()))?;
        let reachable = self.reachable(st, now);
        let mut indexes: Vec<u32> = st.samples.keys().copied().collect();
        if let Some(info) = &st.info {
            indexes.extend(info.interfaces.iter().map(|i| i.if_index));
        }
        indexes.sort_unstable();
        indexes.dedup();
        Ok((
            indexes.into_iter().map(|i| iface_state(st, i, reachable)).collect(),
            reachable,
        ))
    }
}

/// What `wan_detected` compares: each WAN interface and its ISP.
fn signature(judged: &[Judged]) -> String {
    let mut parts: Vec<String> = judged
        .iter()
        .filter(|j| j.is_wan)
        .map(|j| {
            format!(
                "{}:{}:{}",
                j.if_index,
                j.name,
                j.isp.as_ref().map_or("", |i| i.name.as_str())
            )
        })
        .collect();
    parts.sort();
    parts.join(",")
}

fn wan_event(id: &str, info: &RouterInfo, judged: &[Judged], previous: &str, now: SystemTime) -> RouterEvent {
    let wans: Vec<&Judged> = judged.iter().filter(|j| j.is_wan).collect();
    let names: Vec<&str> = wans.iter().map(|j| j.name.as_str()).collect();
    let isps: Vec<&str> = wans
        .iter()
        .map(|j| j.isp.as_ref().map_or(m::ISP_UNKNOWN, |i| i.name.as_str()))
        .collect();
    let described: Vec<String> = wans
        .iter()
        .map(|j| {
            let isp = j.isp.as_ref().map_or(m::ISP_UNKNOWN, |i| i.name.as_str());
            format!("{} ({isp}, {:.2})", j.name, j.confidence)
        })
        .collect();
    let router = if info.router_name.is_empty() {
        id
    } else {
        info.router_name.as_str()
    };
    let message = if wans.is_empty() {
        format!("router {router} has no WAN interface any more")
    } else {
        format!("router {router} WAN: {}", described.join(", "))
    };
    let methods: Vec<String> = wans
        .iter()
        .map(|j| {
            j.evidence
                .iter()
                .map(|e| method_name(e.method))
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    let mut attributes = std::collections::HashMap::new();
    attributes.insert("router".to_owned(), id.to_owned());
    attributes.insert("wan_interfaces".to_owned(), names.join(","));
    attributes.insert("wan_count".to_owned(), wans.len().to_string());
    attributes.insert("isps".to_owned(), isps.join(","));
    attributes.insert("methods".to_owned(), methods.join(","));
    let previous_names: Vec<&str> = previous.split(',').filter_map(|p| p.split(':').nth(1)).collect();
    attributes.insert("previous_wan_interfaces".to_owned(), previous_names.join(","));
    if let Some(first) = wans.first() {
        attributes.insert("interface".to_owned(), first.name.clone());
        attributes.insert("if_index".to_owned(), first.if_index.to_string());
    }
    let millis = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    RouterEvent {
        id: format!("{id}-wan_detected-{millis}"),
        kind: EventKind::WanDetected.into(),
        source: id.to_owned(),
        occurred_at: Some(to_timestamp(now)),
        severity: Severity::Info.into(),
        message,
        attributes,
    }
}

/// The lower-case name of a method, as the API shows it.
pub fn method_name(m: pantau_proto::v1::WanMethod) -> &'static str {
    use pantau_proto::v1::WanMethod;
    match m {
        WanMethod::Route => "route",
        WanMethod::Traffic => "traffic",
        WanMethod::Name => "name",
        WanMethod::Manual => "manual",
        WanMethod::Unspecified => "unspecified",
    }
}

#[cfg(test)]
mod tests;
