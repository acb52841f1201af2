//! From the bus to clients: the latest result per target, and every event
//! (check results, alerts, incidents, router/target/instance events, metrics)
//! serialised once and handed to the [`Hub`], which offers it to the
//! interested WebSocket clients only. The latest results are also filled
//! from the collector ([`crate::refill`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use pantau_core::bus::{self, BusEvent, Consumer, Delivery, HandleError, Subscription, subject};
use pantau_core::service::Context;
use pantau_proto::v1::{AlertEvent, CheckResult, IncidentEvent, MetricSample, RouterEvent};
use serde::Serialize;

use crate::hub::{Hub, HubEvent};
use crate::incidents::IncidentEventView;
use crate::labels::{ConsensusStatus, EventKind, Severity};
use crate::latest::Latest;
use crate::metrics as m;
use crate::timeline::Timeline;
use crate::view::{AlertView, CheckResultView, ConsensusView, Event, MetricView, RouterEventView};

/// The bus subjects the hub listens to.
pub const PATTERNS: [&str; 6] = [
    subject::ALL_CHECK_RESULTS,
    subject::ALL_ALERTS,
    subject::ALL_INCIDENTS,
    subject::ALL_EVENTS,
    subject::ALL_CONSENSUS,
    subject::ALL_METRICS,
];

/// The feed's consumer name (its dead letters go to `pantau.deadletter.gateway-feed`).
pub const CONSUMER: &str = "gateway-feed";

/// Most metric series kept for `GET /api/v1/monitoring/metrics`; samples of
/// further series are still streamed but not kept.
pub const MAX_SERIES: usize = 10_000;

/// Latest results and the event fan-out.
pub struct Feed {
    /// The latest result per location and target, encoded (about a fifth
    /// of the memory of its view; it is read far less often than written).
    latest: RwLock<Latest>,
    metrics: RwLock<HashMap<String, MetricView>>,
    hub: Arc<Hub>,
    /// Each router's recent events, for the console's router page.
    timeline: Timeline,
}

impl Feed {
    pub fn new(buffer: usize) -> Self {
        Self {
            latest: RwLock::default(),
            metrics: RwLock::default(),
            hub: Arc::new(Hub::new(buffer.max(1))),
            timeline: Timeline::default(),
        }
    }

    /// Every target's latest result, by target id.
    pub fn latest(&self) -> Vec<CheckResultView> {
        use pantau_proto::prost::Message as _;
        let map = self.latest.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        // What was encoded here decodes; a failure would only drop that entry.
        let mut v: Vec<CheckResultView> = map
            .iter()
            .filter_map(|b| CheckResult::decode(&b[..]).ok())
            .map(|r| CheckResultView::from(&r))
            .collect();
        drop(map);
        v.sort_by(|a, b| a.target_id.cmp(&b.target_id).then_with(|| a.location.cmp(&b.location)));
        v
    }

    /// Every target's latest results (one per location), decoded, by target
    /// id: what the console's overview and status pages read.
    pub fn latest_by_target(&self) -> HashMap<String, Vec<CheckResult>> {
        self.latest_where(|_| true)
    }

    /// The latest results of the targets `keep` accepts, by target id.
    pub fn latest_where(&self, keep: impl Fn(&str) -> bool) -> HashMap<String, Vec<CheckResult>> {
        use pantau_proto::prost::Message as _;
        let map = self.latest.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: HashMap<String, Vec<CheckResult>> = HashMap::new();
        for b in map.iter() {
            if !crate::latest::head(b).is_some_and(|h| keep(h.target)) {
                continue;
            }
            if let Ok(r) = CheckResult::decode(&b[..]) {
                out.entry(r.target_id.clone()).or_default().push(r);
            }
        }
        out
    }

    /// The latest sample of every metric series, by name then labels.
    pub fn metrics(&self) -> Vec<MetricView> {
        let map = self.metrics.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut v: Vec<_> = map.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.labels.cmp(&b.labels)));
        v
    }

    /// How many metric series are kept.
    pub fn metric_series(&self) -> usize {
        self.metrics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Takes in a metric sample: keeps it as its series' latest and streams
    /// it as `metrics_update`.
    pub fn accept_metric(&self, m: &MetricSample) {
        let view = MetricView::from(m);
        let key = format!("{}{:?}", view.name, view.labels);
        {
            let mut map = self.metrics.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            if map.len() < MAX_SERIES || map.contains_key(&key) {
                map.insert(key, view.clone());
            }
        }
        self.send("metrics_update", &view.source, "", || &view);
    }

    /// Each router's recent events.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The WebSocket clients' hub.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Counts the event, then serialises it (made by `data`) and hands it to
    /// the hub only when some client takes it: with no dashboard open (or
    /// none on this resource) an event costs no view and no JSON.
    fn send<T: Serialize>(&self, kind: &'static str, resource: &str, severity: &str, data: impl FnOnce() -> T) {
        ::metrics::counter!(m::EVENTS, "type" => kind).increment(1);
        if !self.hub.wants(kind, resource, severity) {
            return;
        }
        match serde_json::to_string(&Event { kind, data: &data() }) {
            Ok(text) => {
                self.hub.publish(&Arc::new(HubEvent {
                    kind: kind.to_owned(),
                    resource: resource.to_owned(),
                    severity: severity.to_owned(),
                    json: text.into(),
                    received: std::time::Instant::now(),
                }));
            }
            Err(e) => tracing::warn!(error = %e, kind, "cannot serialise an event"),
        }
    }

    /// Takes in one result: keeps it if it is the newest of its target and
    /// location, and sends it to WebSocket clients.
    pub fn accept(&self, r: &CheckResult, encoded: Bytes) {
        self.keep(r, || encoded);
        self.send("check_result", &r.target_id, "", || CheckResultView::from(r));
    }

    /// Keeps the collector's latest results (`ListLatestResults`) where they
    /// are newer than what the bus brought; clients are not sent them again.
    pub fn fill(&self, results: &[CheckResult]) -> usize {
        use pantau_proto::prost::Message as _;
        results
            .iter()
            .filter(|r| self.keep(r, || Bytes::from(r.encode_to_vec())))
            .count()
    }

    /// Keeps `r` (encoded by `encoded`) if it is the newest of its target
    /// and location.
    fn keep(&self, r: &CheckResult, encoded: impl FnOnce() -> Bytes) -> bool {
        self.latest
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keep(r, encoded)
    }

    /// Takes in an alert lifecycle event.
    pub fn accept_alert(&self, a: &AlertEvent) {
        let view = AlertView::from(a);
        self.send("alert", &view.resource, view.severity.as_str(), || &view);
    }

    /// Takes in an incident's change; its resource is the incident's id.
    pub fn accept_incident(&self, i: &IncidentEvent) {
        let view = IncidentEventView::from(i);
        self.send("incident", &view.incident.id, view.incident.severity.as_str(), || &view);
    }

    /// Takes in a router, target or instance event.
    pub fn accept_event(&self, e: &RouterEvent) {
        let view = RouterEventView::from(e);
        if view.kind == EventKind::Unspecified {
            tracing::debug!("skipping an event of no known kind");
            return;
        }
        self.timeline.keep(e, &view);
        self.send(view.kind.as_str(), &view.source, view.severity.as_str(), || &view);
    }

    fn dispatch(&self, event: BusEvent, payload: Bytes) {
        match event {
            BusEvent::CheckResult(r) => self.accept(&r, payload),
            BusEvent::Alert { alert, .. } => self.accept_alert(&alert),
            BusEvent::Incident { incident, .. } => self.accept_incident(&incident),
            BusEvent::Consensus(c) => {
                let view = ConsensusView::from(&c);
                let severity = match view.status {
                    ConsensusStatus::Down => Severity::Critical,
                    ConsensusStatus::Partial => Severity::Warning,
                    ConsensusStatus::Up | ConsensusStatus::Unknown => Severity::Info,
                };
                self.send("consensus", &view.target_id, severity.as_str(), || &view);
            }
            BusEvent::Event { event, .. } => self.accept_event(&event),
            BusEvent::Metric(m) => self.accept_metric(&m),
            BusEvent::InterfaceSample(_) | BusEvent::RouterInfo(_) | BusEvent::Delivery { .. } => {}
        }
    }
}

/// Subscribes to every event the hub carries (failing if the bus refuses),
/// registers the subscription's readiness as `gateway.feed`, and spawns the
/// consumer as a critical task (it subscribes again whenever a subscription
/// ends; if it stops before shutdown, the gateway stops with that failure).
pub async fn start(feed: &Arc<Feed>, ctx: &Context) -> Result<(), bus::BusError> {
    let consumer = Consumer::new(Arc::clone(&ctx.bus), CONSUMER, PATTERNS.map(Subscription::live));
    ctx.health.register("gateway.feed", consumer.readiness());
    let feed = Arc::clone(feed);
    let run = consumer
        .start(ctx.shutdown.clone(), move |d: Delivery| {
            let span = tracing::debug_span!("gateway.event", subject = %d.subject);
            span.in_scope(|| feed.dispatch(d.event, d.payload));
            std::future::ready(Ok::<(), HandleError>(()))
        })
        .await?;
    ctx.spawn_critical("feed", run);
    Ok(())
}
