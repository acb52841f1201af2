//! Crafted consecutive readings through the tracker and onto an in-process
//! bus: traffic, a 32-bit wrap, a counter reset, a reboot, the 497-day
//! uptime wrap, a polling gap, interface up/down, and an unreachable router.

#![allow(clippy::float_cmp)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{self, Bus, Subscription};
use pantau_proto::v1::{EventKind, InterfaceSample, RouterEvent, RouterInfo};

use super::counters::{TIMETICKS_WRAP, Width};
use super::snmp::{IfReading, Reading};
use super::track::{self, Observed, Tracker};

const INTERVAL: Duration = Duration::from_secs(30);
const MBIT100: u64 = 100_000_000;

fn iface(index: u32, width: Width, in_octets: u64, out_octets: u64, up: bool) -> IfReading {
    IfReading {
        index,
        name: format!("ether{index}"),
        descr: format!("ether{index}"),
        alias: String::new(),
        if_type: 6,
        oper_up: up,
        admin_up: true,
        speed_bps: MBIT100,
        width: Some(width),
        in_octets,
        out_octets,
        ..IfReading::default()
    }
}

fn reading(at_secs: u64, uptime_centis: u64, ifaces: Vec<IfReading>) -> Reading {
    Reading {
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + at_secs),
        sys_name: "edge".into(),
        sys_descr: "RouterOS".into(),
        uptime_centis,
        interfaces: ifaces.into_iter().map(|i| (i.index, i)).collect(),
        default_route_if_indexes: vec![1],
        route_table: "inetCidrRouteTable",
        bad_values: Vec::new(),
    }
}

fn tracker() -> Tracker {
    Tracker::new("edge", "Edge", BTreeMap::new(), INTERVAL)
}

fn kinds(o: &Observed) -> Vec<&'static str> {
    o.events.iter().map(|(k, _)| *k).collect()
}

#[test]
fn first_poll_has_no_rate_then_traffic_has_one() {
    let mut t = tracker();
    let o = t.observe(reading(0, 100_000, vec![iface(1, Width::Bits64, 1000, 5000, true)]));
    assert!(o.events.is_empty());
    assert!(!o.samples[0].rates_valid);
    assert_eq!(o.samples[0].in_bits_per_second, 0.0);
    let info = o.info.unwrap();
    assert_eq!(info.default_route_if_indexes, [1]);
    assert_eq!(info.interfaces.len(), 1);
    // 30 s later: 375_000 octets in = 100_000 bit/s.
    let o = t.observe(reading(30, 103_000, vec![iface(1, Width::Bits64, 376_000, 5000, true)]));
    assert!(o.events.is_empty(), "{:?}", kinds(&o));
    let s = &o.samples[0];
    assert!(s.rates_valid);
    assert!(
        (s.in_bits_per_second - 100_000.0).abs() < 1e-6,
        "{}",
        s.in_bits_per_second
    );
    assert_eq!(s.out_bits_per_second, 0.0);
    assert_eq!(s.counter_bits, 64);
}

#[test]
fn a_32_bit_wrap_gives_the_true_rate_and_no_event() {
    let mut t = tracker();
    let near = (1u64 << 32) - 1_000_000;
    t.observe(reading(0, 100_000, vec![iface(1, Width::Bits32, near, 0, true)]));
    let o = t.observe(reading(30, 103_000, vec![iface(1, Width::Bits32, 2_750_000, 0, true)]));
    assert!(o.events.is_empty(), "{:?}", kinds(&o));
    let s = &o.samples[0];
    assert!(s.rates_valid);
    // 3_750_000 octets in 30 s = 1 Mbit/s.
    assert!(
        (s.in_bits_per_second - 1_000_000.0).abs() < 1e-6,
        "{}",
        s.in_bits_per_second
    );
}

#[test]
fn a_counter_reset_is_an_event_and_never_a_negative_or_giant_rate() {
    let mut t = tracker();
    t.observe(reading(
        0,
        100_000,
        vec![iface(1, Width::Bits32, 3_000_000_000, 7, true)],
    ));
    let o = t.observe(reading(30, 103_000, vec![iface(1, Width::Bits32, 1200, 9, true)]));
    assert_eq!(kinds(&o), ["counter_reset"]);
    let e = &o.events[0].1;
    assert_eq!(e.kind(), EventKind::CounterReset);
    assert_eq!(e.attributes["interface"], "ether1");
    assert_eq!(e.attributes["before"], "3000000000");
    assert_eq!(e.attributes["after"], "1200");
    assert_eq!(e.attributes["cause"], "went_backwards");
    let s = &o.samples[0];
    assert!(!s.rates_valid);
    assert_eq!((s.in_bits_per_second, s.out_bits_per_second), (0.0, 0.0));
    // The next poll measures from the new value again.
    let o = t.observe(reading(
        60,
        106_000,
        vec![iface(1, Width::Bits32, 1200 + 3750, 9, true)],
    ));
    assert!(o.events.is_empty());
    assert!((o.samples[0].in_bits_per_second - 1000.0).abs() < 1e-6);
}

#[test]
fn a_changed_discontinuity_time_is_a_reset_even_when_counters_grew() {
    let mut t = tracker();
    let with = |octets: u64, disc: u32| IfReading {
        discontinuity: Some(disc),
        ..iface(1, Width::Bits64, octets, octets, true)
    };
    t.observe(reading(0, 100_000, vec![with(1000, 50)]));
    let o = t.observe(reading(30, 103_000, vec![with(2000, 50)]));
    assert!(o.events.is_empty() && o.samples[0].rates_valid);
    let o = t.observe(reading(60, 106_000, vec![with(900_000, 105_500)]));
    assert_eq!(kinds(&o), ["counter_reset", "counter_reset"]);
    assert_eq!(o.events[0].1.attributes["cause"], "discontinuity");
    assert!(!o.samples[0].rates_valid);
}

#[test]
fn a_reboot_is_one_event_without_counter_resets() {
    let mut t = tracker();
    let ifs = |a: u64| vec![iface(1, Width::Bits64, a, a, true), iface(2, Width::Bits64, a, a, true)];
    t.observe(reading(0, 50_000_000, ifs(9_000_000)));
    let o = t.observe(reading(30, 1500, ifs(10)));
    assert_eq!(kinds(&o), ["reboot"]);
    assert_eq!(o.events[0].1.attributes["uptime_before_seconds"], "500000");
    assert!(o.samples.iter().all(|s| !s.rates_valid && s.in_bits_per_second == 0.0));
}

#[test]
fn the_497_day_uptime_wrap_is_not_a_reboot() {
    let mut t = tracker();
    t.observe(reading(
        0,
        TIMETICKS_WRAP - 1000,
        vec![iface(1, Width::Bits64, 0, 0, true)],
    ));
    let o = t.observe(reading(30, 2000, vec![iface(1, Width::Bits64, 3750, 0, true)]));
    assert!(o.events.is_empty(), "{:?}", kinds(&o));
    assert!(o.samples[0].rates_valid);
}

#[test]
fn a_polling_gap_gives_no_32_bit_rate_but_keeps_64_bit_averages() {
    let mut t = tracker();
    t.observe(reading(
        0,
        100_000,
        vec![
            iface(1, Width::Bits32, 10, 10, true),
            iface(2, Width::Bits64, 10, 10, true),
        ],
    ));
    // 20 minutes later (the collector was paused).
    let o = t.observe(reading(
        1200,
        220_000,
        vec![
            iface(1, Width::Bits32, 5, 20, true),
            iface(2, Width::Bits64, 150_010, 10, true),
        ],
    ));
    assert!(o.events.is_empty(), "a gap is not a reset: {:?}", kinds(&o));
    assert!(!o.samples[0].rates_valid);
    assert!(o.samples[1].rates_valid);
    assert!((o.samples[1].in_bits_per_second - 1000.0).abs() < 1e-6);
}

#[test]
fn interface_transitions_are_events() {
    let mut t = tracker();
    t.observe(reading(0, 100_000, vec![iface(1, Width::Bits64, 0, 0, true)]));
    let o = t.observe(reading(30, 103_000, vec![iface(1, Width::Bits64, 0, 0, false)]));
    assert_eq!(kinds(&o), ["interface_down"]);
    assert_eq!(o.events[0].1.attributes["interface"], "ether1");
    let o = t.observe(reading(60, 106_000, vec![iface(1, Width::Bits64, 0, 0, false)]));
    assert!(o.events.is_empty());
    let o = t.observe(reading(90, 109_000, vec![iface(1, Width::Bits64, 0, 0, true)]));
    assert_eq!(kinds(&o), ["interface_up"]);
}

#[test]
fn an_unreachable_router_is_one_event_not_one_per_interface() {
    let mut t = tracker();
    let ifs = || (1..=8).map(|i| iface(i, Width::Bits64, 0, 0, true)).collect::<Vec<_>>();
    t.observe(reading(0, 100_000, ifs()));
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_030);
    let o = t.unreachable(at, "timeout");
    assert_eq!(kinds(&o), ["target_down"]);
    assert!(!o.up);
    assert!(o.samples.is_empty());
    assert_eq!(o.events[0].1.attributes["kind"], "router");
    assert!(
        t.unreachable(at, "timeout").events.is_empty(),
        "still down: no new event"
    );
    // Back, with the same interfaces up: one target_up, no interface events.
    let o = t.observe(reading(90, 109_000, ifs()));
    assert_eq!(kinds(&o), ["target_up"]);
}

#[tokio::test]
async fn samples_info_and_events_arrive_on_the_bus() {
    let bus = MemoryBus::new();
    let mut all = bus.subscribe(Subscription::live("pantau.>")).await.unwrap();
    let mut t = tracker();
    let o = t.observe(reading(
        0,
        100_000,
        vec![iface(3, Width::Bits32, 3_000_000_000, 0, true)],
    ));
    assert_eq!(track::publish(&bus, "edge", &o).await, 0);
    let o = t.observe(reading(30, 103_000, vec![iface(3, Width::Bits32, 5, 0, false)]));
    assert_eq!(track::publish(&bus, "edge", &o).await, 0);
    let mut got = Vec::new();
    while got.len() < 6 {
        let m = tokio::time::timeout(Duration::from_secs(5), all.next())
            .await
            .expect("a message within 5 s")
            .expect("the stream is open");
        got.push(m);
    }
    let subjects: Vec<&str> = got.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "pantau.iface.sample.edge.3",
            "pantau.router.info.edge",
            "pantau.event.interface_down.edge",
            "pantau.event.counter_reset.edge",
            "pantau.iface.sample.edge.3",
            "pantau.router.info.edge",
        ]
    );
    let s: InterfaceSample = bus::decode(&got[0]).unwrap();
    assert_eq!((s.if_index, s.in_octets), (3, 3_000_000_000));
    let info: RouterInfo = bus::decode(&got[1]).unwrap();
    assert_eq!(info.sys_name, "edge");
    let e: RouterEvent = bus::decode(&got[3]).unwrap();
    assert_eq!(e.kind(), EventKind::CounterReset);
    assert_eq!(e.attributes["after"], "5");
}
