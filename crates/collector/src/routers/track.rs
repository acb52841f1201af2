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
    /// `(subject kind token, event)`.
    pub events: Vec<(&'static str, RouterEvent)>,
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
        }
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
            let sample = self.sample(i, before, &r, elapsed, gap, rebooted, &mut out.events);
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
        events: &mut Vec<(&'static str, RouterEvent)>,
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
        };
        let Some(b) = before else { return s };
        if b.oper_up != i.oper_up {
            let (token, kind, sev, word) = if i.oper_up {
                ("interface_up", EventKind::InterfaceUp, Severity::Info, "up")
            } else {
                ("interface_down", EventKind::InterfaceDown, Severity::Warning, "down")
            };
            events.push(self.event(
                token,
                kind,
                r.at,
                sev,
                format!("interface {} of router {} is {word}", i.name, self.name),
                vec![
                    ("interface", i.name.clone()),
                    ("if_index", i.index.to_string()),
                    ("admin_up", i.admin_up.to_string()),
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
                events.push(self.event(
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

fn fmt_centis(c: u64) -> String {
    pantau_config::duration::format(Duration::from_secs(c / 100))
}

/// Publishes what a poll produced: samples on `pantau.iface.sample.<router>.<ifIndex>`,
/// the info on `pantau.router.info.<router>`, events on `pantau.event.<kind>.<router>`.
/// Returns how many publishes failed (each is logged).
pub async fn publish(bus: &dyn Bus, router_id: &str, o: &Observed) -> usize {
    let mut failed = 0;
    for (token, e) in &o.events {
        if let Err(err) = bus::publish_proto(bus, &subject::event(token, router_id), e).await {
            tracing::warn!(router = %router_id, event = token, error = %err, "cannot publish a router event");
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
