//! Router polling over SNMP against recorded device data served by PyPI's
//! `snmpsim`: a MikroTik-like RB5009 (crates/testkit/data/snmpsim) with
//! 64-bit counters, an operationally down SFP uplink, a PPPoE client and the
//! default route in inetCidrRouteTable, and the same device with only
//! ipCidrRouteTable; an old switch-router with only RFC 1213 ipRouteTable
//! and writable counters and link state (a 32-bit wrap, `traffic` events,
//! interface-down on a change only, kept across a restart); an agent sending
//! wrongly typed values; addresses from both MIB generations.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_collector::routers::RouterPoller;
use pantau_config::{CollectorConfig, RouterConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{self, Bus, Subscription};
use pantau_proto::v1::{EventKind, InterfaceSample, RouterEvent, RouterInfo};
use pantau_testkit::{
    BAD_TYPES_COMMUNITY, BROCADE_IPROUTE_COMMUNITY, ISP_ADDRESSES_COMMUNITY, MIKROTIK_COMMUNITY,
    MIKROTIK_IPCIDR_COMMUNITY, SnmpSim,
};

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

/// Every message published so far (the bus is in-process: publishing is done).
async fn drain(stream: &mut pantau_core::bus::MessageStream) -> Vec<pantau_core::bus::Message> {
    let mut got = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
        got.push(m);
    }
    got
}

fn decoded<T: pantau_proto::prost::Message + Default>(got: &[pantau_core::bus::Message], prefix: &str) -> Vec<T> {
    got.iter()
        .filter(|m| m.subject.starts_with(prefix))
        .map(|m| bus::decode(m).unwrap())
        .collect()
}

/// SETs a writable (writecache) object of the recording.
async fn set(agent: &SnmpSim, community: &str, oid: &[u32], value: async_snmp::Value) {
    let client = async_snmp::Client::builder(agent.addr().to_string(), async_snmp::Auth::v2c(community))
        .connect()
        .await
        .unwrap();
    client
        .set(&async_snmp::Oid::from_slice(oid), value)
        .await
        .unwrap_or_else(|e| panic!("SET {oid:?}: {e}\n{}", agent.log_tail()));
}

const IF_IN_OCTETS_1: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 1];
const IF_OUT_OCTETS_1: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 16, 1];
const IF_OPER_STATUS_2: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 2];

fn secs(t: Option<&prost_types::Timestamp>) -> f64 {
    let t = t.unwrap();
    t.seconds as f64 + f64::from(t.nanos) / 1e9
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_route_is_found_in_ip_route_table_alone() {
    let agent = SnmpSim::start().await.unwrap_or_else(|e| panic!("{e}"));
    let bus = Arc::new(MemoryBus::new());
    let mut p = RouterPoller::new(
        &router("icx", &agent, BROCADE_IPROUTE_COMMUNITY),
        &CollectorConfig::default(),
        bus,
    );
    let (o, _) = p.poll_once().await;
    assert!(o.up, "{:?}\n{}", o.events, agent.log_tail());
    let info = o.info.unwrap();
    assert_eq!(info.sys_name, "icx-core");
    // ipRouteIfIndex.0.0.0.0 = 1, read itself (a walk from it skipped it),
    // and not 10.0.0.0 or 192.168.1.0 after it.
    assert_eq!(info.default_route_if_indexes, [1]);
    assert_eq!(info.route_table, "ipRouteTable");
    assert_eq!(o.samples[0].counter_bits, 32);
}

/// A 32-bit wrap gives the true rate in a `traffic` event; an enabled port
/// going down is `went_down` (on its sample and its event), while one always
/// down and one disabled never are; it stays so across a restart of the
/// poller (the store), and clears when the port is up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_across_a_wrap_and_interface_down_only_on_a_change() {
    use async_snmp::Value;
    let agent = SnmpSim::start().await.unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let db = pantau_config::DatabaseConfig::default();
    let store = pantau_core::store::Store::connect(&db, dir.path(), "collector", pantau_collector::MIGRATIONS)
        .await
        .unwrap();
    let bus = Arc::new(MemoryBus::new());
    let mut stream = bus.subscribe(Subscription::live("pantau.>")).await.unwrap();
    let col = CollectorConfig::default();
    let cfg = router("icx", &agent, BROCADE_IPROUTE_COMMUNITY);
    let mut p = RouterPoller::new(&cfg, &col, bus.clone()).with_store(store.clone());
    let (o, _) = p.poll_once().await;
    assert!(o.up, "{:?}\n{}", o.events, agent.log_tail());
    // The first poll: eth2 (enabled) and eth3 (disabled) are down, but
    // nothing changed: no event, nothing went down, no traffic yet.
    assert!(o.events.is_empty() && o.traffic.is_empty(), "{:?}", o.events);
    assert!(o.samples.iter().all(|s| !s.went_down), "{:?}", o.samples);
    let first_at = o.samples[0].sampled_at;
    drain(&mut stream).await;

    // eth0's counters wrap (2^32 - 1000 -> 2000: 3000 octets in, 1000 out),
    // eth1 goes down.
    set(
        &agent,
        BROCADE_IPROUTE_COMMUNITY,
        IF_IN_OCTETS_1,
        Value::Counter32(2000),
    )
    .await;
    set(
        &agent,
        BROCADE_IPROUTE_COMMUNITY,
        IF_OUT_OCTETS_1,
        Value::Counter32(1100),
    )
    .await;
    set(&agent, BROCADE_IPROUTE_COMMUNITY, IF_OPER_STATUS_2, Value::Integer(2)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (o, _) = p.poll_once().await;
    assert!(o.up);
    let got = drain(&mut stream).await;
    let samples: Vec<InterfaceSample> = decoded(&got, "pantau.iface.sample.icx.");
    assert_eq!(o.samples.len(), 4);
    let by = |n: &str| samples.iter().find(|s| s.if_name == n).unwrap().clone();
    let eth0 = by("eth0");
    assert!(eth0.rates_valid && eth0.counter_bits == 32, "{eth0:?}");
    let traffic: Vec<RouterEvent> = decoded(&got, "pantau.event.traffic.icx");
    assert_eq!(traffic.len(), 4, "one per interface with valid rates: {traffic:?}");
    let t0 = traffic.iter().find(|e| e.attributes["interface"] == "eth0").unwrap();
    assert_eq!(t0.kind(), EventKind::Traffic);
    let interval: f64 = t0.attributes["interval_seconds"].parse().unwrap();
    let in_bps: f64 = t0.attributes["in_bits_per_second"].parse().unwrap();
    let out_bps: f64 = t0.attributes["out_bits_per_second"].parse().unwrap();
    assert!((0.3..5.0).contains(&interval), "{interval}");
    let close = |a: f64, b: f64| (a - b).abs() <= b * 1e-9;
    assert!(close(in_bps, 3000.0 * 8.0 / interval), "{in_bps} over {interval}s");
    assert!(close(out_bps, 1000.0 * 8.0 / interval), "{out_bps} over {interval}s");
    assert!(close(eth0.in_bits_per_second, in_bps) && close(eth0.out_bits_per_second, out_bps));
    assert_eq!(t0.attributes["counter_bits"], "32");
    assert!(
        !got.iter().any(|m| m.subject.starts_with("pantau.event.counter_reset.")),
        "a wrap is no reset"
    );
    // Only eth1 went down: one event, with went_down.
    let downs: Vec<RouterEvent> = decoded(&got, "pantau.event.interface_down.icx");
    assert_eq!(downs.len(), 1, "{downs:?}");
    assert_eq!(downs[0].attributes["interface"], "eth1");
    assert_eq!(downs[0].attributes["went_down"], "true");
    let went: Vec<(&str, bool)> = samples.iter().map(|s| (s.if_name.as_str(), s.went_down)).collect();
    assert_eq!(
        went,
        [("eth0", false), ("eth1", true), ("eth2", false), ("eth3", false)]
    );
    // The interval is the time between the two readings.
    let between = secs(eth0.sampled_at.as_ref()) - secs(first_at.as_ref());
    assert!((interval - between).abs() < 1e-5, "{interval} vs {between}");
    drain(&mut stream).await;

    // A restart: a new poller on the same store still knows eth1 went down
    // (its first poll has no previous reading to compare with).
    let mut again = RouterPoller::new(&cfg, &col, bus.clone()).with_store(store.clone());
    let (o, _) = again.poll_once().await;
    let went: Vec<(&str, bool)> = o.samples.iter().map(|s| (s.if_name.as_str(), s.went_down)).collect();
    assert_eq!(
        went,
        [("eth0", false), ("eth1", true), ("eth2", false), ("eth3", false)]
    );
    assert!(o.events.is_empty(), "{:?}", o.events);
    // Without the store, a restart could not tell it from always down.
    let (o, _) = RouterPoller::new(&cfg, &col, bus.clone()).poll_once().await;
    assert!(o.samples.iter().all(|s| !s.went_down));

    // Up again: cleared, in memory and in the store.
    set(&agent, BROCADE_IPROUTE_COMMUNITY, IF_OPER_STATUS_2, Value::Integer(1)).await;
    let (o, _) = again.poll_once().await;
    assert!(o.samples.iter().all(|s| !s.went_down), "{:?}", o.samples);
    assert_eq!(o.events.len(), 1);
    assert_eq!(o.events[0].0, "interface_up");
    let (o, _) = RouterPoller::new(&cfg, &col, bus)
        .with_store(store.clone())
        .poll_once()
        .await;
    assert!(o.samples.iter().all(|s| !s.went_down), "{:?}", o.samples);
    store.close().await;
}

/// Wrongly typed values are left out, counted per router and object, and
/// logged once per router and object however many polls see them.
#[test]
fn wrongly_typed_values_are_counted_and_logged_once_never_reinterpreted() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let observed = tracing::subscriber::with_default(subscriber, || {
        metrics::with_local_recorder(&recorder, || {
            rt.block_on(async {
                let agent = SnmpSim::start().await.unwrap_or_else(|e| panic!("{e}"));
                let bus = Arc::new(MemoryBus::new());
                let mut p = RouterPoller::new(
                    &router("bad", &agent, BAD_TYPES_COMMUNITY),
                    &CollectorConfig::default(),
                    bus,
                );
                let mut all = Vec::new();
                for _ in 0..3 {
                    let (o, _) = p.poll_once().await;
                    assert!(o.up, "{:?}\n{}", o.events, agent.log_tail());
                    all.push(o);
                }
                all
            })
        })
    });
    // ether1 (ifOperStatus "up") is left out, not taken for down; ether2
    // (ifHCInOctets as text) has no counters, not a 32-bit fallback or 0;
    // the ghost row (ifXTable only) is left out.
    let info = observed[2].info.clone().unwrap();
    let names: Vec<&str> = info.interfaces.iter().map(|i| i.if_name.as_str()).collect();
    assert_eq!(names, ["ether2", "ether3"]);
    assert!(
        observed.iter().all(|o| o.events.is_empty()),
        "no interface_down from a bad value"
    );
    let s2 = observed[2].samples.iter().find(|s| s.if_name == "ether2").unwrap();
    assert_eq!((s2.counter_bits, s2.rates_valid), (0, false), "{s2:?}");
    let s3 = observed[2].samples.iter().find(|s| s.if_name == "ether3").unwrap();
    assert_eq!((s3.counter_bits, s3.in_octets), (64, 3000));
    assert_eq!(info.default_route_if_indexes, [3]);
    let mut counted = std::collections::BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if key.key().name() != "pantau_collector_snmp_bad_values_total" {
            continue;
        }
        let labels: std::collections::BTreeMap<String, String> = key
            .key()
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        if let DebugValue::Counter(n) = value {
            assert_eq!(labels["router"], "bad");
            counted.insert(labels["oid_name"].clone(), n);
        }
    }
    assert_eq!(counted["ifOperStatus"], 3, "{counted:?}");
    assert_eq!(counted["ifHCInOctets"], 3);
    assert_eq!(counted["ifXEntry"], 3);
    assert_eq!(counted["ifInOctets"], 0, "exported from the start");
    assert_eq!(counted.values().sum::<u64>(), 9, "{counted:?}");
    let text = logs.text();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("wrong type")).collect();
    assert_eq!(lines.len(), 3, "once per object: {text}");
    let oper = lines.iter().find(|l| l.contains("ifOperStatus")).unwrap();
    assert!(
        oper.contains("1.3.6.1.2.1.2.2.1.8.1") && oper.contains("INTEGER 1..7") && oper.contains("octet_string \"up\""),
        "{oper}"
    );
}

/// A log sink for one test.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_come_from_both_mib_generations() {
    let agent = SnmpSim::start().await.unwrap_or_else(|e| panic!("{e}"));
    let bus = Arc::new(MemoryBus::new());
    let mut p = RouterPoller::new(
        &router("edge", &agent, ISP_ADDRESSES_COMMUNITY),
        &CollectorConfig::default(),
        bus,
    );
    let (o, _) = p.poll_once().await;
    assert!(o.up, "{:?}\n{}", o.events, agent.log_tail());
    let info = o.info.unwrap();
    let addrs: Vec<(&str, Vec<&str>)> = info
        .interfaces
        .iter()
        .map(|i| (i.if_name.as_str(), i.addresses.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        addrs,
        [
            ("ether1", vec!["203.0.113.7/29", "2001:db8:42::7/48"]),
            ("ether2", vec!["192.168.88.1/24"]),
            ("ether3", vec!["2001:db8:77::2/64"]),
        ]
    );
    assert_eq!(info.default_route_if_indexes, [1, 3]);
    assert_eq!(info.route_table, "inetCidrRouteTable");
}
