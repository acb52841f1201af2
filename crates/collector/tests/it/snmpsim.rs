//! Router polling over SNMP against recorded device data served by PyPI's
//! `snmpsim`: a MikroTik-like RB5009 (crates/testkit/data/snmpsim) with
//! 64-bit counters, an operationally down SFP uplink, a PPPoE client and the
//! default route in inetCidrRouteTable, and the same device with only
//! ipCidrRouteTable.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_collector::routers::RouterPoller;
use pantau_config::{CollectorConfig, RouterConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{self, Bus, Subscription};
use pantau_proto::v1::{InterfaceSample, RouterInfo};
use pantau_testkit::{MIKROTIK_COMMUNITY, MIKROTIK_IPCIDR_COMMUNITY, SnmpSim};

fn router(id: &str, agent: &SnmpSim, community: &str) -> RouterConfig {
    let mut r = RouterConfig::new(id, agent.addr().to_string());
    r.snmp.community = Some(community.to_owned());
    r.interval = Some(Duration::from_secs(5));
    r.timeout = Some(Duration::from_secs(2));
    r.retries = Some(1);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorded_mikrotik_has_its_interfaces_counters_and_default_route() {
    let agent = SnmpSim::start().await.unwrap_or_else(|e| panic!("{e}"));
    let bus = Arc::new(MemoryBus::new());
    let mut stream = bus.subscribe(Subscription::live("pantau.>")).await.unwrap();
    let col = CollectorConfig::default();
    let mut poller = RouterPoller::new(&router("rb5009", &agent, MIKROTIK_COMMUNITY), &col, bus.clone());
    let (o, _) = poller.poll_once().await;
    assert!(o.up, "{:?}\n{}", o.events, agent.log_tail());
    let info = o.info.clone().unwrap();
    assert_eq!(info.sys_name, "mt-edge-sim");
    assert_eq!(info.sys_descr, "RouterOS RB5009UG+S+");
    // sysUpTime 123456789 hundredths.
    assert_eq!(info.uptime.map(|u| u.seconds), Some(1_234_567));
    assert_eq!(info.default_route_if_indexes, [1]);
    assert_eq!(info.route_table, "inetCidrRouteTable");
    let names: Vec<&str> = info.interfaces.iter().map(|i| i.if_name.as_str()).collect();
    assert_eq!(names, ["ether1", "ether2", "sfp-sfpplus1", "pppoe-out1", "bridge"]);
    let e1 = &info.interfaces[0];
    assert_eq!(e1.if_alias, "WAN Telkom IndiHome");
    assert_eq!(e1.speed_bits_per_second, 1_000_000_000);
    assert!(e1.oper_up && e1.admin_up);
    let sfp = &info.interfaces[2];
    assert!(!sfp.oper_up && sfp.admin_up, "{sfp:?}");
    assert_eq!(
        sfp.speed_bits_per_second, 10_000_000_000,
        "ifHighSpeed wins over ifSpeed"
    );
    assert_eq!(info.interfaces[3].if_type, 23, "ppp");
    // The ipCidrRouteTable-only recording: the fallback table.
    let mut old = RouterPoller::new(&router("rb-old", &agent, MIKROTIK_IPCIDR_COMMUNITY), &col, bus.clone());
    let (o2, _) = old.poll_once().await;
    assert!(o2.up, "{:?}", o2.events);
    let info2 = o2.info.unwrap();
    assert_eq!(info2.default_route_if_indexes, [1]);
    assert_eq!(info2.route_table, "ipCidrRouteTable");
    // On the bus: ether1's sample with the 64-bit counters.
    let mut got = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
        got.push(m);
    }
    let s: InterfaceSample = got
        .iter()
        .find(|m| m.subject == "pantau.iface.sample.rb5009.1")
        .map(|m| bus::decode(m).unwrap())
        .expect("ether1's sample");
    assert_eq!(s.counter_bits, 64);
    assert_eq!((s.in_octets, s.out_octets), (123_456_789_012_345, 9_876_543_210_987));
    let on_bus: RouterInfo = got
        .iter()
        .find(|m| m.subject == "pantau.router.info.rb5009")
        .map(|m| bus::decode(m).unwrap())
        .expect("the router info");
    assert_eq!(on_bus.default_route_if_indexes, [1]);
    assert!(!got.iter().any(|m| m.subject.starts_with("pantau.event.")));
}
