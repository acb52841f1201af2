//! What consecutive polls of one router mean, without I/O: [`Tracker`] turns
//! each [`Reading`] (or a failed poll) into the `InterfaceSample`s, the
//! `RouterInfo` and the `RouterEvent`s to publish, which [`publish`] sends.
//!
//! - Rates come from counter deltas ([`counters::step`]); the first poll, a
//!   reboot, a counter reset and a 32-bit counter across a polling gap give
//!   no rate (`rates_valid: false`, rates 0), never a negative or giant one.
//! - `reboot` when the uptime went backwards (not the 497-day wrap);
//!   `counter_reset` per counter that went backwards without a reboot;
//!   `interface_up` / `interface_down` on oper-status changes.
//! - An interface that goes down while administratively up, after a poll
//!   saw it up, is *went down* until it is up again or disabled
//!   (`went_down` on its samples and its `interface_down` event; what the
//!   default `interface-down` rule reads): an interface that was always
//!   down, or that an operator disabled, is not. The poller persists these
//!   (`interface_down` table), so a restarted collector keeps them.
//! - `traffic`, one per interface per poll with valid rates: the rates over
//!   the poll interval, for dashboards (WebSocket type `traffic`).
//! - An unreachable router is one `target_down` event (attribute
//!   `kind: router`) and `router_up` 0; its interfaces are not reported down
//!   one by one. `target_up` when it answers again.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use pantau_core::bus::{self, Bus, subject};
use pantau_core::time::{to_duration, to_timestamp};
use pantau_proto::v1::{EventKind, InterfaceSample, RouterEvent, RouterInfo, RouterInterface, Severity};

use super::counters::{self, Step, Uptime, Width};
use super::reading::{IfReading, Reading};

/// Everything one poll produced, ready to publish.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Observed {
    pub samples: Vec<InterfaceSample>,
    pub info: Option<RouterInfo>,
    /// `(subject kind token, event)`: changes (reboot, counter reset,
    /// interface up/down, target up/down).
    pub events: Vec<(&'static str, RouterEvent)>,
    /// `traffic` events: one per interface with valid rates.
    pub traffic: Vec<RouterEvent>,
    /// Whether the router answered.
    pub up: bool,
}

/// One router's memory between polls.
#[derive(Debug)]
pub struct Tracker {
    id: String,
    name: String,
    labels: BTreeMap<String, String>,
    interval: Duration,
    prev: Option<Reading>,
    /// Whether the router answered its last poll; `None` before the first.
    reachable: Option<bool>,
    /// What the router is polled with, for messages: `SNMP`, `the RouterOS API`, …
    protocol: &'static str,
    /// The `reason` attribute of `target_down`: `snmp`, `routeros`, `routeros_rest`.
    reason: &'static str,
    /// ifIndex → since when, of the interfaces that went down while enabled
    /// and are still down.
    went_down: BTreeMap<u32, SystemTime>,
}

impl Tracker {
    pub fn new(id: &str, name: &str, labels: BTreeMap<String, String>, interval: Duration) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            labels,
            interval,
            prev: None,
            reachable: None,
            protocol: "SNMP",
            reason: "snmp",
            went_down: BTreeMap::new(),
        }
    }

    /// The interfaces that went down while enabled and are still down
    /// (ifIndex → since when).
    pub fn went_down(&self) -> &BTreeMap<u32, SystemTime> {
        &self.went_down
    }

    /// Restores what [`Tracker::went_down`] said before a restart.
    pub fn restore_went_down(&mut self, went_down: BTreeMap<u32, SystemTime>) {
        self.went_down = went_down;
    }

    /// Names the protocol in messages (`router x does not answer <protocol>`)
    /// and the `reason` attribute of `target_down`.
    #[must_use]
    pub fn with_protocol(mut self, protocol: &'static str, reason: &'static str) -> Self {
        self.protocol = protocol;
        self.reason = reason;
        self
    }

    /// Whether the router answered its last poll.
    pub fn reachable(&self) -> Option<bool> {
        self.reachable
    }

    /// A poll that answered.
    pub fn observe(&mut self, r: Reading) -> Observed {
        let mut out = Observed {
            up: true,
            ..Observed::default()
        };
        if self.reachable == Some(false) {
            out.events.push(self.event(
                "target_up",
                EventKind::TargetUp,
                r.at,
                Severity::Info,
                format!("router {} answers {} again", self.name, self.protocol),
                vec![("kind", "router".to_owned())],
            ));
        }
        self.reachable = Some(true);
        let prev = self.prev.take();
        let elapsed = prev
            .as_ref()
            .and_then(|p| r.at.duration_since(p.at).ok())
            .unwrap_or_default();
        let gap = counters::is_gap(elapsed, self.interval);
        let rebooted = prev
            .as_ref()
            .is_some_and(|p| counters::uptime(p.uptime_centis, r.uptime_centis, elapsed) == Uptime::Rebooted);
        if let Some(p) = &prev
            && rebooted
        {
            out.events.push(self.event(
                "reboot",
                EventKind::Reboot,
                r.at,
                Severity::Warning,
                format!(
                    "router {} rebooted: uptime went from {} to {}",
                    self.name,
                    fmt_centis(p.uptime_centis),
                    fmt_centis(r.uptime_centis)
                ),
                vec![
                    ("uptime_before_seconds", (p.uptime_centis / 100).to_string()),
                    ("uptime_after_seconds", (r.uptime_centis / 100).to_string()),
                ],
            ));
        }
        let mut interfaces = Vec::with_capacity(r.interfaces.len());
        for i in r.interfaces.values() {
            let before = prev.as_ref().and_then(|p| p.interfaces.get(&i.index));
            if i.oper_up || !i.admin_up {
                self.went_down.remove(&i.index);
            } else if before.is_some_and(|b| b.oper_up) {
                self.went_down.insert(i.index, r.at);
            }
            let sample = self.sample(i, before, &r, elapsed, gap, rebooted, &mut out);
            interfaces.push(RouterInterface {
                if_index: i.index,
                if_name: i.name.clone(),
                if_alias: i.alias.clone(),
                if_descr: i.descr.clone(),
                oper_up: i.oper_up,
                admin_up: i.admin_up,
                speed_bits_per_second: i.speed_bps,
                in_bits_per_second: sample.in_bits_per_second,
                out_bits_per_second: sample.out_bits_per_second,
                if_type: i.if_type,
                comment: i.comment.clone(),
                pppoe_user: i.pppoe_user.clone(),
                addresses: i.addresses.clone(),
            });
            out.samples.push(sample);
        }
        out.info = Some(RouterInfo {
            router_id: self.id.clone(),
            router_name: self.name.clone(),
            sys_name: r.sys_name.clone(),
            sys_descr: r.sys_descr.clone(),
            uptime: Some(to_duration(Duration::from_millis(r.uptime_centis * 10))),
            polled_at: Some(to_timestamp(r.at)),
            default_route_if_indexes: r.default_route_if_indexes.clone(),
            route_table: r.route_table.to_owned(),
            interfaces,
            labels: self.labels.clone().into_iter().collect(),
        });
        self.prev = Some(r);
        out
    }

    /// A poll that failed: one `target_down` when the router was answering
    /// (or on the first poll), nothing while it stays unreachable.
    pub fn unreachable(&mut self, at: SystemTime, why: &str) -> Observed {
        let mut out = Observed::default();
        if self.reachable != Some(false) {
            out.events.push(self.event(
                "target_down",
                EventKind::TargetDown,
                at,
                Severity::Critical,
                format!("router {} does not answer {}: {why}", self.name, self.protocol),
                vec![("kind", "router".to_owned()), ("reason", self.reason.to_owned())],
            ));
        }
        self.reachable = Some(false);
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn sample(
        &self,
        i: &IfReading,
        before: Option<&IfReading>,
        r: &Reading,
        elapsed: Duration,
        gap: bool,
        rebooted: bool,
        out: &mut Observed,
    ) -> InterfaceSample {
        let mut s = InterfaceSample {
            router_id: self.id.clone(),
            if_index: i.index,
            if_name: i.name.clone(),
            sampled_at: Some(to_timestamp(r.at)),
            in_octets: i.in_octets,
            out_octets: i.out_octets,
            in_bits_per_second: 0.0,
            out_bits_per_second: 0.0,
            oper_up: i.oper_up,
            speed_bits_per_second: i.speed_bps,
            if_alias: i.alias.clone(),
            admin_up: i.admin_up,
            in_errors: 0,
            out_errors: 0,
            in_discards: 0,
            out_discards: 0,
            in_packets_per_second: 0.0,
            out_packets_per_second: 0.0,
            counter_bits: i.width.map_or(0, Width::bits),
            rates_valid: false,
            went_down: self.went_down.contains_key(&i.index),
        };
        let Some(b) = before else { return s };
        if b.oper_up != i.oper_up {
            let (token, kind, sev, word) = if i.oper_up {
                ("interface_up", EventKind::InterfaceUp, Severity::Info, "up")
            } else {
                ("interface_down", EventKind::InterfaceDown, Severity::Warning, "down")
            };
            out.events.push(self.event(
                token,
                kind,
                r.at,
                sev,
                format!("interface {} of router {} is {word}", i.name, self.name),
                vec![
                    ("interface", i.name.clone()),
                    ("if_index", i.index.to_string()),
                    ("admin_up", i.admin_up.to_string()),
                    ("went_down", s.went_down.to_string()),
                ],
            ));
        }
        // A reboot explains every counter going back; a changed counter
        // width (agent upgrade) makes the deltas meaningless.
        let (Some(width), true, false) = (i.width, b.width == i.width, rebooted) else {
            return s;
        };
        // ifCounterDiscontinuityTime changed: the agent says its counters
        // restarted, whatever their values look like.
        let discontinuous =
            b.discontinuity.is_some() && i.discontinuity.is_some() && b.discontinuity != i.discontinuity;
        let st = |p: u64, c: u64| {
            if discontinuous {
                Step::Reset
            } else {
                counters::step(p, c, width, i.speed_bps, elapsed, gap)
            }
        };
        let (si, so) = (st(b.in_octets, i.in_octets), st(b.out_octets, i.out_octets));
        let cause = if discontinuous {
            "discontinuity"
        } else {
            "went_backwards"
        };
        for (step, counter, p, c) in [
            (si, "in_octets", b.in_octets, i.in_octets),
            (so, "out_octets", b.out_octets, i.out_octets),
        ] {
            if step == Step::Reset {
                out.events.push(self.event(
                    "counter_reset",
                    EventKind::CounterReset,
                    r.at,
                    Severity::Info,
                    format!(
                        "counter {counter} of interface {} on router {} was reset ({p} before, {c} after)",
                        i.name, self.name
                    ),
                    vec![
                        ("interface", i.name.clone()),
                        ("if_index", i.index.to_string()),
                        ("counter", counter.to_owned()),
                        ("before", p.to_string()),
                        ("after", c.to_string()),
                        ("cause", cause.to_owned()),
                    ],
                ));
            }
        }
        let (Some(din), Some(dout)) = (si.delta(), so.delta()) else {
            return s;
        };
        if elapsed.is_zero() {
            return s;
        }
        s.in_bits_per_second = counters::bits_per_second(din, elapsed);
        s.out_bits_per_second = counters::bits_per_second(dout, elapsed);
        let fwd = |p: u64, c: u64| c.saturating_sub(p);
        s.in_errors = fwd(b.in_errors, i.in_errors);
        s.out_errors = fwd(b.out_errors, i.out_errors);
        s.in_discards = fwd(b.in_discards, i.in_discards);
        s.out_discards = fwd(b.out_discards, i.out_discards);
        s.in_packets_per_second = counters::per_second(fwd(b.in_ucast, i.in_ucast), elapsed);
        s.out_packets_per_second = counters::per_second(fwd(b.out_ucast, i.out_ucast), elapsed);
        s.rates_valid = true;
        out.traffic.push(
            self.event(
                "traffic",
                EventKind::Traffic,
                r.at,
                Severity::Info,
                format!(
                    "interface {} of router {}: in {}, out {}",
                    i.name,
                    self.name,
                    fmt_bps(s.in_bits_per_second),
                    fmt_bps(s.out_bits_per_second)
                ),
                vec![
                    ("interface", i.name.clone()),
                    ("if_index", i.index.to_string()),
                    ("in_bits_per_second", s.in_bits_per_second.to_string()),
                    ("out_bits_per_second", s.out_bits_per_second.to_string()),
                    ("in_packets_per_second", s.in_packets_per_second.to_string()),
                    ("out_packets_per_second", s.out_packets_per_second.to_string()),
                    ("interval_seconds", elapsed.as_secs_f64().to_string()),
                    ("counter_bits", width.bits().to_string()),
                ],
            )
            .1,
        );
        s
    }

    fn event(
        &self,
        token: &'static str,
        kind: EventKind,
        at: SystemTime,
        severity: Severity,
        message: String,
        attributes: Vec<(&str, String)>,
    ) -> (&'static str, RouterEvent) {
        let millis = at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let suffix = attributes
            .iter()
            .find(|(k, _)| *k == "if_index")
            .map_or(String::new(), |(_, v)| format!("-{v}"));
        let counter = attributes
            .iter()
            .find(|(k, _)| *k == "counter")
            .map_or(String::new(), |(_, v)| format!("-{v}"));
        let mut attrs: std::collections::HashMap<String, String> =
            attributes.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        attrs.insert("router".to_owned(), self.id.clone());
        (
            token,
            RouterEvent {
                id: format!("{}-{token}{suffix}{counter}-{millis}", self.id),
                kind: kind.into(),
                source: self.id.clone(),
                occurred_at: Some(to_timestamp(at)),
                severity: severity.into(),
                message,
                attributes: attrs,
            },
        )
    }
}

/// `12.3 Mbit/s`, `950 bit/s`.
fn fmt_bps(bps: f64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "Tbit/s"), (1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")];
    UNITS.iter().find(|(scale, _)| bps >= *scale).map_or_else(
        || format!("{bps:.0} bit/s"),
        |(scale, unit)| format!("{:.1} {unit}", bps / scale),
    )
}

fn fmt_centis(c: u64) -> String {
    pantau_config::duration::format(Duration::from_secs(c / 100))
}

/// Publishes what a poll produced: events on `pantau.event.<kind>.<router>`
/// (`traffic` ones too), samples on `pantau.iface.sample.<router>.<ifIndex>`,
/// the info on `pantau.router.info.<router>`.
/// Returns how many publishes failed (each is logged).
pub async fn publish(bus: &dyn Bus, router_id: &str, o: &Observed) -> usize {
    let mut failed = 0;
    for (token, e) in &o.events {
        if let Err(err) = bus::publish_proto(bus, &subject::event(token, router_id), e).await {
            tracing::warn!(router = %router_id, event = token, error = %err, "cannot publish a router event");
            failed += 1;
        }
    }
    for e in &o.traffic {
        if let Err(err) = bus::publish_proto(bus, &subject::event("traffic", router_id), e).await {
            tracing::debug!(router = %router_id, error = %err, "cannot publish a traffic event");
            failed += 1;
        }
    }
    for s in &o.samples {
        if let Err(err) = bus::publish_proto(bus, &subject::iface_sample(router_id, s.if_index), s).await {
            tracing::debug!(router = %router_id, if_index = s.if_index, error = %err, "cannot publish an interface sample");
            failed += 1;
        }
    }
    if let Some(info) = &o.info
        && let Err(err) = bus::publish_proto(bus, &subject::router_info(router_id), info).await
    {
        tracing::warn!(router = %router_id, error = %err, "cannot publish the router info");
        failed += 1;
    }
    failed
}
