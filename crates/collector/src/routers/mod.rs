//! Router polling: every router in `collector.routers` is polled with its
//! driver (SNMP, the MikroTik RouterOS API or RouterOS v7 REST) on its
//! interval by one task, behind the same circuit breaker and backoff as
//! endpoint checks (`collector.circuit_breaker`).
//!
//! Each poll publishes one `InterfaceSample` per interface
//! (`pantau.iface.sample.<router_id>.<if_index>`), one `RouterInfo`
//! (`pantau.router.info.<router_id>`: identity, uptime, default-route
//! ifIndexes, interfaces; for the WAN detector) and the events the change
//! since the previous poll implies (`pantau.event.{reboot,counter_reset,
//! interface_up,interface_down}.<router_id>`; `target_down` / `target_up`
//! with `kind: router` when it stops or starts answering), and one `traffic`
//! event per interface with valid rates (`pantau.event.traffic.<router_id>`).
//!
//! Layout:
//! - [`driver`]: the driver a router is polled with → a [`reading::Reading`].
//! - [`snmp`]: one SNMP poll; [`mib`]: what its objects mean, strictly
//!   typed (a wrong type is a [`reading::BadValue`]: counted in
//!   `pantau_collector_snmp_bad_values_total{router,oid_name}`, logged once
//!   per router and object, never reinterpreted).
//! - [`routeros`]: one RouterOS poll over the API ([`routeros::api`], with
//!   its word codec [`routeros::word`]) or REST ([`routeros::rest`]).
//! - [`counters`]: wrap vs reset vs gap, reboot vs the 497-day uptime wrap.
//! - [`track`]: consecutive readings → samples, info and events; publishing.
//! - [`went_down`]: the interfaces that went down while enabled, persisted.
//! - Each valid rate also goes to the traffic history
//!   ([`crate::traffic`]) when the poller has one ([`RouterPoller::with_traffic`]).
//! - [`metrics`]: metric names.

pub mod counters;
pub mod driver;
pub mod metrics;
pub mod mib;
pub mod reading;
pub mod routeros;
pub mod snmp;
pub mod track;
pub mod went_down;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pantau_config::{CollectorConfig, RouterConfig};
use pantau_core::bus::Bus;
use pantau_core::service::Context;
use pantau_core::store::Store;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::breaker::{self, Admit, Breaker};
use crate::traffic::TrafficHistory;
use driver::{Driver, PollError};
use metrics as m;
use track::{Observed, Tracker};

/// Starts one supervised polling task per configured router on `ctx.tasks`;
/// with `store`, the interfaces that went down are kept across restarts;
/// with `traffic`, every valid rate goes to the traffic history.
pub fn start(ctx: &Context, store: Option<&Store>, traffic: Option<&Arc<TrafficHistory>>) {
    let windows = crate::maintenance::Windows::new(ctx.config.maintenance.clone());
    start_with(ctx, store, traffic, &windows);
}

/// [`start`] with the collector's maintenance windows (configured and from
/// the API), which pause a router's polling while they cover it.
pub fn start_with(
    ctx: &Context,
    store: Option<&Store>,
    traffic: Option<&Arc<TrafficHistory>>,
    windows: &Arc<crate::maintenance::Windows>,
) {
    let routers = &ctx.config.collector.routers;
    if routers.is_empty() {
        return;
    }
    m::describe();
    for r in routers {
        let (r, config, bus, stop, store, windows) = (
            r.clone(),
            Arc::clone(&ctx.config),
            Arc::clone(&ctx.bus),
            ctx.shutdown.clone(),
            store.cloned(),
            Arc::clone(windows),
        );
        let traffic = traffic.cloned();
        // Started again (with a new session) if it panics.
        ctx.spawn_supervised("router-poller", move || {
            let mut poller = RouterPoller::new(&r, &config.collector, Arc::clone(&bus))
                .with_windows(Arc::clone(&windows), &config.instance.location);
            if let Some(store) = &store {
                poller = poller.with_store(store.clone());
            }
            if let Some(traffic) = &traffic {
                poller = poller.with_traffic(Arc::clone(traffic));
            }
            let stop = stop.clone();
            async move { poller.run(stop).await }
        });
    }
    tracing::info!(routers = routers.len(), "router polling started");
}

/// One router's poller: its driver session, breaker and memory of the last poll.
pub struct RouterPoller {
    cfg: RouterConfig,
    interval: Duration,
    timeout: Duration,
    tracker: Tracker,
    breaker: Breaker,
    session: Option<Driver>,
    bus: Arc<dyn Bus>,
    /// The MIB objects whose bad values were logged already (once each).
    logged_bad: std::collections::HashSet<&'static str>,
    /// Where the interfaces that went down are kept, and whether they were
    /// loaded from it yet.
    store: Option<Store>,
    loaded: bool,
    /// Where each valid rate is rolled up.
    traffic: Option<Arc<TrafficHistory>>,
    /// `maintenance[]` and the API's windows: one with `checks: pause`
    /// covering the router pauses its polling while it holds.
    maintenance: Arc<crate::maintenance::Windows>,
    /// This instance's location (windows may cover whole locations).
    location: String,
    /// The window pausing it now, logged when it starts and ends.
    paused_by: Option<String>,
}

impl RouterPoller {
    /// A poller for `r`, with the collector's defaults and breaker settings.
    pub fn new(r: &RouterConfig, col: &CollectorConfig, bus: Arc<dyn Bus>) -> Self {
        let interval = r.interval.unwrap_or(col.interval);
        // From the first scrape: no counter has gone backwards yet.
        ::metrics::counter!(m::COUNTER_RESETS, "router" => r.id.clone()).increment(0);
        if r.driver == pantau_config::RouterDriver::Snmp {
            // From the first scrape: 0 for every object Pantau reads.
            for object in mib::OBJECT_NAMES {
                ::metrics::counter!(m::SNMP_BAD_VALUES, "router" => r.id.clone(), "oid_name" => *object).increment(0);
            }
        }
        Self {
            cfg: r.clone(),
            interval,
            timeout: r.timeout.unwrap_or(col.timeout),
            tracker: {
                let (protocol, reason) = driver::protocol(r.driver);
                Tracker::new(&r.id, r.display_name(), r.labels.clone(), interval).with_protocol(protocol, reason)
            },
            breaker: Breaker::new(col.circuit_breaker.clone()),
            session: None,
            bus,
            logged_bad: std::collections::HashSet::new(),
            store: None,
            loaded: false,
            traffic: None,
            maintenance: crate::maintenance::Windows::new(Vec::new()),
            location: String::new(),
            paused_by: None,
        }
    }

    /// Pauses polling while a window of `windows` with `checks: pause`
    /// covers this router (polled from `location`).
    #[must_use]
    pub fn with_maintenance(self, windows: Vec<pantau_config::MaintenanceWindow>, location: &str) -> Self {
        self.with_windows(crate::maintenance::Windows::new(windows), location)
    }

    /// Like [`Self::with_maintenance`], with windows that change (the API's).
    #[must_use]
    pub fn with_windows(mut self, windows: Arc<crate::maintenance::Windows>, location: &str) -> Self {
        self.maintenance = windows;
        location.clone_into(&mut self.location);
        self
    }

    /// The id of the maintenance window pausing this router's polling at
    /// `now`, if one does.
    pub fn paused_at(&self, now: SystemTime) -> Option<String> {
        let windows = self.maintenance.current();
        if windows.is_empty() {
            return None;
        }
        let me = (self.cfg.id.as_str(), &self.cfg.labels, self.location.as_str());
        pantau_config::maintenance::pauses_router(&windows, me, now).map(|w| w.id.clone())
    }

    /// Keeps the interfaces that went down in `store` (loaded before the
    /// first poll), so a restart does not forget them.
    #[must_use]
    pub fn with_store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// Rolls every valid interface rate up into `traffic`.
    #[must_use]
    pub fn with_traffic(mut self, traffic: Arc<TrafficHistory>) -> Self {
        self.traffic = Some(traffic);
        self
    }

    /// Loads the persisted interfaces that went down (once; retried on the
    /// next poll if the store fails).
    async fn load_went_down(&mut self) {
        let (Some(store), false) = (&self.store, self.loaded) else {
            return;
        };
        match went_down::load(store, &self.cfg.id).await {
            Ok(map) => {
                self.tracker.restore_went_down(map);
                self.loaded = true;
            }
            Err(e) => tracing::warn!(router = %self.cfg.id, error = %e, "cannot load the interfaces that went down"),
        }
    }

    /// Polls every interval (sooner while the breaker backs off) until
    /// `stop`; while a maintenance window pauses it, it only waits.
    pub async fn run(&mut self, stop: CancellationToken) {
        loop {
            let next = self.tick().await;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(next) => {}
            }
        }
    }

    /// Polls once unless a maintenance window pauses the router (then
    /// nothing is polled nor published: no samples, no `router_api_up`, no
    /// `target_down`); returns the delay until the next tick.
    pub async fn tick(&mut self) -> Duration {
        let window = self.paused_at(SystemTime::now());
        if window != self.paused_by {
            if let Some(w) = &window {
                tracing::info!(router = %self.cfg.id, window = %w, "router polling paused by a maintenance window");
            } else {
                tracing::info!(router = %self.cfg.id, "router polling resumed after its maintenance window");
            }
            self.paused_by.clone_from(&window);
        }
        if window.is_some() {
            ::metrics::counter!(m::POLLS_TOTAL, "result" => m::RESULT_MAINTENANCE).increment(1);
            // Checked again well within a minute: windows start on minutes.
            return self.interval.min(Duration::from_secs(10));
        }
        self.poll_once().await.1
    }

    /// Polls once (through the breaker), publishes what it found, and returns
    /// it with the delay until the next poll.
    pub async fn poll_once(&mut self) -> (Observed, Duration) {
        let id = self.cfg.id.clone();
        if let Admit::Reject { retry_at } = self.breaker.admit(Instant::now()) {
            ::metrics::counter!(m::POLLS_TOTAL, "result" => m::RESULT_CIRCUIT_OPEN).increment(1);
            let wait = retry_at.saturating_duration_since(Instant::now());
            return (
                Observed::default(),
                wait.clamp(Duration::from_millis(100), self.interval),
            );
        }
        self.load_went_down().await;
        let before = self.tracker.went_down().clone();
        let started = Instant::now();
        // A whole poll never takes longer than the interval.
        let polled = tokio::time::timeout(self.interval, self.poll()).await;
        ::metrics::histogram!(m::POLL_DURATION, "router" => id.clone()).record(started.elapsed().as_secs_f64());
        let observed = match polled {
            Ok(Ok(mut reading)) => {
                ::metrics::counter!(m::POLLS_TOTAL, "result" => m::RESULT_OK).increment(1);
                self.bad_values(std::mem::take(&mut reading.bad_values));
                self.tracker.observe(reading)
            }
            Ok(Err(e)) => self.failed(&e.to_string()),
            Err(_) => self.failed(&format!(
                "the poll took longer than the interval ({})",
                pantau_config::duration::format(self.interval)
            )),
        };
        if let (Some(store), true) = (&self.store, self.loaded)
            && let Err(e) = went_down::save(store, &id, &before, self.tracker.went_down()).await
        {
            // Kept in memory all the same; only a restart would forget it.
            tracing::warn!(router = %id, error = %e, "cannot store the interfaces that went down");
        }
        let sooner = self.breaker.record(observed.up, Instant::now());
        export(&id, &observed);
        if let Some(traffic) = &self.traffic {
            for s in observed.samples.iter().filter(|s| s.rates_valid) {
                let at = s
                    .sampled_at
                    .as_ref()
                    .and_then(pantau_core::time::from_timestamp)
                    .unwrap_or_else(SystemTime::now);
                traffic.record(&id, &s.if_name, at, s.in_bits_per_second, s.out_bits_per_second);
            }
        }
        track::publish(self.bus.as_ref(), &id, &observed).await;
        publish_up(self.bus.as_ref(), &id, observed.up).await;
        let next = sooner.filter(|d| *d < self.interval).unwrap_or(self.interval);
        ::metrics::gauge!(crate::metrics::BREAKER_STATE, "target" => id).set(breaker::gauge(self.breaker.state()));
        (observed, next)
    }

    /// Counts a poll's bad values by object, and logs each object's first
    /// one (once per router and object, whatever the number of polls).
    fn bad_values(&mut self, bad: Vec<reading::BadValue>) {
        if bad.is_empty() {
            return;
        }
        let mut by_object: std::collections::BTreeMap<&'static str, u64> = std::collections::BTreeMap::new();
        for b in bad {
            *by_object.entry(b.object).or_default() += 1;
            if self.logged_bad.insert(b.object) {
                tracing::warn!(
                    router = %self.cfg.id,
                    object = b.object,
                    oid = %b.oid,
                    want = %b.want,
                    got = %b.got,
                    counted_in = m::SNMP_BAD_VALUES,
                    "snmp value of the wrong type left out, not reinterpreted (logged once per router and object)"
                );
            }
        }
        for (object, n) in by_object {
            ::metrics::counter!(m::SNMP_BAD_VALUES, "router" => self.cfg.id.clone(), "oid_name" => object).increment(n);
        }
    }

    fn failed(&mut self, why: &str) -> Observed {
        ::metrics::counter!(m::POLLS_TOTAL, "result" => m::RESULT_ERROR).increment(1);
        if self.tracker.reachable() != Some(false) {
            tracing::warn!(router = %self.cfg.id, address = %self.cfg.address, driver = self.cfg.driver.as_str(), error = %why, "router does not answer");
        }
        // Start over (new socket, v3 engine discovery, new login) on the next poll.
        self.session = None;
        self.tracker.unreachable(SystemTime::now(), why)
    }

    async fn poll(&mut self) -> Result<reading::Reading, PollError> {
        let mut session = match self.session.take() {
            Some(s) => s,
            None => Driver::connect(&self.cfg, self.timeout).await?,
        };
        let reading = session.poll().await;
        self.session = Some(session);
        reading
    }
}

/// `router_api_up{router}` — 1 when the router answered this poll, 0 when
/// not — on `pantau.metric.router_api_up` after every poll (not only on a
/// change, so the fact never goes stale while the router stays down): what
/// the alert engine's default `router-api-down` rule reads.
async fn publish_up(bus: &dyn pantau_core::bus::Bus, router: &str, up: bool) {
    let msg = pantau_proto::v1::MetricSample {
        name: ROUTER_API_UP.to_owned(),
        value: if up { 1.0 } else { 0.0 },
        labels: [("router".to_owned(), router.to_owned())].into(),
        observed_at: Some(pantau_core::time::to_timestamp(std::time::SystemTime::now())),
        source: router.to_owned(),
    };
    let subject = pantau_core::bus::subject::metric(ROUTER_API_UP);
    if let Err(e) = pantau_core::bus::publish_proto(bus, &subject, &msg).await {
        tracing::debug!(router, error = %e, "cannot publish router_api_up");
    }
}

/// The fact name of a router's reachability on the bus.
pub const ROUTER_API_UP: &str = "router_api_up";

/// Sets the router's gauges from what a poll found.
fn export(router: &str, o: &Observed) {
    ::metrics::gauge!(m::ROUTER_UP, "router" => router.to_owned()).set(if o.up { 1.0 } else { 0.0 });
    for s in &o.samples {
        let labels = [("router", router.to_owned()), ("interface", s.if_name.clone())];
        ::metrics::gauge!(m::IF_OPER_UP, &labels).set(if s.oper_up { 1.0 } else { 0.0 });
        ::metrics::gauge!(m::IF_ADMIN_UP, &labels).set(if s.admin_up { 1.0 } else { 0.0 });
        ::metrics::gauge!(m::IF_WENT_DOWN, &labels).set(if s.went_down { 1.0 } else { 0.0 });
        if s.rates_valid {
            ::metrics::gauge!(m::IN_BPS, &labels).set(s.in_bits_per_second);
            ::metrics::gauge!(m::OUT_BPS, &labels).set(s.out_bits_per_second);
        }
    }
    let resets = o.events.iter().filter(|(k, _)| *k == "counter_reset").count();
    if resets > 0 {
        ::metrics::counter!(m::COUNTER_RESETS, "router" => router.to_owned()).increment(resets as u64);
    }
}

#[cfg(test)]
mod tests;
