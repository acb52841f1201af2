//! Router polling against the real net-snmp agent (Debian's `snmpd`) on a
//! loopback port: this machine's interfaces and counters, its default route,
//! v2c and v3 authPriv, and an unreachable router, all seen on the
//! in-process bus.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_collector::routers::RouterPoller;
use pantau_config::{CollectorConfig, RouterConfig, SnmpAuthProtocol, SnmpConfig, SnmpPrivProtocol, SnmpVersion};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{self, Bus, MessageStream, Subscription};
use pantau_proto::v1::{EventKind, InterfaceSample, RouterEvent, RouterInfo};
use pantau_testkit::Snmpd;

fn router(id: &str, agent: &Snmpd) -> RouterConfig {
    let mut r = RouterConfig::new(id, agent.addr().to_string());
    r.interval = Some(Duration::from_secs(5));
    r.timeout = Some(Duration::from_secs(2));
    r.retries = Some(1);
    r
}

fn v3(id: &str, agent: &Snmpd, auth_password: &str) -> RouterConfig {
    let mut r = router(id, agent);
    r.snmp = SnmpConfig {
        version: SnmpVersion::V3,
        community: None,
        user: Some(pantau_testkit::V3_USER.into()),
        auth_protocol: Some(SnmpAuthProtocol::Sha),
        auth_password: Some(auth_password.into()),
        priv_protocol: Some(SnmpPrivProtocol::Aes),
        priv_password: Some(pantau_testkit::V3_PRIV_PASSWORD.into()),
    };
    r
}

async fn start() -> (Snmpd, Arc<MemoryBus>, MessageStream) {
    let agent = Snmpd::start().await.unwrap_or_else(|e| panic!("{e}"));
    let bus = Arc::new(MemoryBus::new());
    let stream = bus.subscribe(Subscription::live("pantau.>")).await.unwrap();
    (agent, bus, stream)
}

/// Every message published so far (the bus is in-process: publishing is done).
async fn drain(stream: &mut MessageStream) -> Vec<pantau_core::bus::Message> {
    let mut out = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
        out.push(m);
    }
    out
}

/// The interface of this machine's IPv4 default route, from /proc/net/route.
fn default_route_interface() -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 7 && f[1] == "00000000" && f[7] == "00000000").then(|| f[0].to_owned())
    })
}

/// The default route's ifIndex the agent reported is the kernel's.
fn assert_default_route(info: &RouterInfo) {
    match default_route_interface() {
        Some(name) => {
            let want = info
                .interfaces
                .iter()
                .find(|i| i.if_name == name)
                .unwrap_or_else(|| panic!("no {name} in {:?}", info.interfaces))
                .if_index;
            assert!(
                info.default_route_if_indexes.contains(&want),
                "default route via {name} (ifIndex {want}), got {:?} from {}",
                info.default_route_if_indexes,
                info.route_table
            );
            assert!(!info.route_table.is_empty());
        }
        None => assert!(info.default_route_if_indexes.is_empty(), "{info:?}"),
    }
}

fn sys_counter(iface: &str, name: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/statistics/{name}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2c_poll_sees_this_machines_interfaces_counters_and_default_route() {
    let (agent, bus, mut stream) = start().await;
    let col = CollectorConfig::default();
    let mut poller = RouterPoller::new(&router("local", &agent), &col, bus.clone());
    let (first, next) = poller.poll_once().await;
    assert!(first.up, "{:?}\n{}", first.events, agent.log_tail());
    assert_eq!(next, Duration::from_secs(5));
    let info = first.info.clone().unwrap();
    assert!(info.sys_descr.contains("Linux"), "{}", info.sys_descr);
    assert!(!info.sys_name.is_empty());
    assert!(info.uptime.is_some_and(|u| u.seconds > 0 || u.nanos > 0));
    let lo = info
        .interfaces
        .iter()
        .find(|i| i.if_name == "lo")
        .unwrap_or_else(|| panic!("no lo in {:?}", info.interfaces));
    assert!(lo.oper_up && lo.admin_up);
    assert_eq!(lo.if_type, 24, "softwareLoopback");
    // Real counters: what the kernel counted, at most what it counts now
    // (snmpd caches its table for a few seconds).
    let sample = first.samples.iter().find(|s| s.if_name == "lo").unwrap();
    assert_eq!(sample.counter_bits, 64, "snmpd has ifHCInOctets");
    let now = sys_counter("lo", "rx_bytes");
    assert!(
        sample.in_octets > 0 && sample.in_octets <= now,
        "{} vs {now}",
        sample.in_octets
    );
    assert!(!sample.rates_valid, "no rate on the first poll");
    assert_default_route(&info);
    // A second poll has rates.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (second, _) = poller.poll_once().await;
    assert!(second.up);
    let lo2 = second.samples.iter().find(|s| s.if_name == "lo").unwrap();
    assert!(lo2.rates_valid, "{lo2:?}");
    assert!(lo2.in_bits_per_second >= 0.0 && lo2.in_bits_per_second.is_finite());
    assert!(second.events.is_empty(), "{:?}", second.events);
    // On the bus: a sample per interface per poll and the info.
    let got = drain(&mut stream).await;
    let per_poll = info.interfaces.len();
    let samples: Vec<InterfaceSample> = got
        .iter()
        .filter(|m| m.subject.starts_with("pantau.iface.sample.local."))
        .map(|m| bus::decode(m).unwrap())
        .collect();
    assert_eq!(samples.len(), 2 * per_poll);
    let lo_subject = format!("pantau.iface.sample.local.{}", lo.if_index);
    assert_eq!(got.iter().filter(|m| m.subject == lo_subject).count(), 2);
    let infos: Vec<RouterInfo> = got
        .iter()
        .filter(|m| m.subject == "pantau.router.info.local")
        .map(|m| bus::decode(m).unwrap())
        .collect();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].default_route_if_indexes, info.default_route_if_indexes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_auth_priv_polls_and_a_wrong_password_is_down() {
    let (agent, bus, mut stream) = start().await;
    let col = CollectorConfig::default();
    let mut good = RouterPoller::new(&v3("v3ok", &agent, pantau_testkit::V3_AUTH_PASSWORD), &col, bus.clone());
    let (o, _) = good.poll_once().await;
    assert!(o.up, "{:?}\n{}", o.events, agent.log_tail());
    assert!(o.samples.iter().any(|s| s.if_name == "lo"));
    let info = o.info.clone().unwrap();
    assert_default_route(&info);
    let mut bad = RouterPoller::new(&v3("v3bad", &agent, "wrongpass123"), &col, bus.clone());
    let (o, _) = bad.poll_once().await;
    assert!(!o.up);
    assert!(o.samples.is_empty());
    let got = drain(&mut stream).await;
    assert!(got.iter().any(|m| m.subject == "pantau.router.info.v3ok"));
    assert!(got.iter().any(|m| m.subject == "pantau.event.target_down.v3bad"));
    assert!(!got.iter().any(|m| m.subject.starts_with("pantau.iface.sample.v3bad")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_community_is_one_router_down_event() {
    let (agent, bus, mut stream) = start().await;
    let col = CollectorConfig::default();
    let mut r = router("badcomm", &agent);
    r.snmp.community = Some("not-the-community".into());
    r.timeout = Some(Duration::from_millis(300));
    r.retries = Some(0);
    let mut poller = RouterPoller::new(&r, &col, bus.clone());
    let (o, next) = poller.poll_once().await;
    assert!(!o.up);
    assert!(
        next < Duration::from_secs(5),
        "the breaker backs off to confirm: {next:?}"
    );
    let (o2, _) = poller.poll_once().await;
    assert!(!o2.up && o2.events.is_empty(), "still down: no second event");
    let got = drain(&mut stream).await;
    let downs: Vec<RouterEvent> = got
        .iter()
        .filter(|m| m.subject.starts_with("pantau.event."))
        .map(|m| bus::decode(m).unwrap())
        .collect();
    assert_eq!(downs.len(), 1, "{downs:?}");
    assert_eq!(downs[0].kind(), EventKind::TargetDown);
    assert_eq!(downs[0].attributes["kind"], "router");
    assert!(downs[0].message.contains("does not answer"), "{}", downs[0].message);
    assert!(!got.iter().any(|m| m.subject.contains("interface_down")));
    // Every poll says the router is down, for the alert engine's router-api-down.
    let ups: Vec<pantau_proto::v1::MetricSample> = got
        .iter()
        .filter(|m| m.subject == "pantau.metric.router_api_up")
        .map(|m| bus::decode(m).unwrap())
        .collect();
    assert_eq!(ups.len(), 2, "one per poll");
    assert!(
        ups.iter().all(|u| u.value == 0.0 && u.labels["router"] == "badcomm"),
        "{ups:?}"
    );
    drop(agent);
}

/// `examples/routers.yaml` validates, and its two routers (v2c and v3), run
/// by `routers::start` on the agent's port, publish their info on the bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_file_polls_through_start() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/routers.yaml");
    let mut cfg = pantau_config::Config::load(&pantau_config::LoadOptions {
        file: Some(file.into()),
        env: Vec::new(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.collector.routers.len(), 2);
    assert_eq!(cfg.collector.routers[0].address, "127.0.0.1:1161");
    let (agent, bus, mut stream) = start().await;
    for r in &mut cfg.collector.routers {
        r.address = agent.addr().to_string();
        r.snmp.user = r.snmp.user.as_ref().map(|_| pantau_testkit::V3_USER.to_owned());
    }
    let ctx = pantau_core::service::Context::new(Arc::new(cfg), bus.clone());
    pantau_collector::routers::start(&ctx, None, None);
    let mut seen = std::collections::BTreeSet::new();
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while seen.len() < 2 {
            let m = stream.next().await.expect("the bus is open");
            if let Some(id) = m.subject.strip_prefix("pantau.router.info.") {
                let info: RouterInfo = bus::decode(&m).unwrap();
                assert!(info.interfaces.iter().any(|i| i.if_name == "lo"));
                seen.insert(id.to_owned());
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "router info of {seen:?} only\n{}", agent.log_tail());
    ctx.shutdown.cancel();
    ctx.tasks.close();
    tokio::time::timeout(Duration::from_secs(5), ctx.tasks.wait())
        .await
        .expect("the pollers stop on shutdown");
}

/// `pantau_collector_router_up{router}` and the interface rate gauges, read
/// back from a recorder local to this test's thread.
#[test]
fn router_up_and_interface_rates_are_exported() {
    use metrics_util::debugging::DebugValue;
    let ((), snapshotter) = crate::recorded(async {
        let (agent, bus, _stream) = start().await;
        let col = CollectorConfig::default();
        let mut good = RouterPoller::new(&router("mgood", &agent), &col, bus.clone());
        assert!(good.poll_once().await.0.up, "{}", agent.log_tail());
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(good.poll_once().await.0.up);
        let mut bad = router("mbad", &agent);
        bad.snmp.community = Some("wrong-community".into());
        bad.timeout = Some(Duration::from_millis(200));
        bad.retries = Some(0);
        assert!(!RouterPoller::new(&bad, &col, bus).poll_once().await.0.up);
    });
    let mut up = std::collections::BTreeMap::new();
    let mut lo_rates = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: std::collections::BTreeMap<String, String> = key
            .key()
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        match (key.key().name(), value) {
            ("pantau_collector_router_up", DebugValue::Gauge(v)) => {
                up.insert(labels["router"].clone(), v.into_inner());
            }
            (
                name @ ("pantau_collector_interface_in_bits_per_second"
                | "pantau_collector_interface_out_bits_per_second"),
                DebugValue::Gauge(v),
            ) if labels["router"] == "mgood" && labels["interface"] == "lo" => {
                lo_rates.push((name.to_owned(), v.into_inner()));
            }
            _ => {}
        }
    }
    assert_eq!(up.get("mgood"), Some(&1.0), "{up:?}");
    assert_eq!(up.get("mbad"), Some(&0.0), "{up:?}");
    assert_eq!(lo_rates.len(), 2, "{lo_rates:?}");
    assert!(lo_rates.iter().all(|(_, v)| v.is_finite() && *v >= 0.0), "{lo_rates:?}");
}

/// A window of `cron` lasting `duration`, with `checks`, covering `routers`.
fn cron_window(
    id: &str,
    cron: &str,
    duration: Duration,
    routers: &[&str],
    checks: pantau_config::MaintenanceChecks,
) -> pantau_config::MaintenanceWindow {
    pantau_config::MaintenanceWindow {
        id: id.into(),
        name: None,
        start: None,
        end: None,
        cron: Some(pantau_config::CronSchedule::new(cron).unwrap()),
        duration: Some(duration),
        repeat_every: None,
        repeat_until: None,
        targets: Vec::new(),
        labels: std::collections::BTreeMap::new(),
        routers: routers.iter().map(|r| (*r).to_owned()).collect(),
        locations: Vec::new(),
        checks,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pausing_maintenance_window_stops_the_routers_polling_while_it_holds() {
    let (agent, bus, mut stream) = start().await;
    let col = CollectorConfig::default();
    // Every minute, for the whole minute: it always holds.
    let always = cron_window(
        "always",
        "* * * * *",
        Duration::from_secs(60),
        &["paused"],
        pantau_config::MaintenanceChecks::Pause,
    );
    // One that does not hold now (03:00 on February 29th only).
    let later = cron_window(
        "later",
        "0 3 29 2 *",
        Duration::from_secs(60),
        &["polled"],
        pantau_config::MaintenanceChecks::Pause,
    );
    // `checks: continue` keeps polling.
    let live = cron_window(
        "live",
        "* * * * *",
        Duration::from_secs(60),
        &["polled"],
        pantau_config::MaintenanceChecks::Continue,
    );
    let windows = vec![always, later, live];
    let mut paused =
        RouterPoller::new(&router("paused", &agent), &col, bus.clone()).with_maintenance(windows.clone(), "jkt");
    let mut polled = RouterPoller::new(&router("polled", &agent), &col, bus.clone()).with_maintenance(windows, "jkt");
    assert_eq!(
        paused.paused_at(std::time::SystemTime::now()).as_deref(),
        Some("always")
    );
    assert_eq!(polled.paused_at(std::time::SystemTime::now()), None);
    let next = paused.tick().await;
    assert!(next <= Duration::from_secs(5), "looked at again soon: {next:?}");
    polled.tick().await;
    let got = drain(&mut stream).await;
    let from = |r: &str| {
        got.iter()
            .filter(|m| m.subject.ends_with(&format!(".{r}")) || m.subject.contains(&format!(".{r}.")))
            .count()
    };
    assert_eq!(
        from("paused"),
        0,
        "nothing polled, nothing published: {:?}",
        got.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(from("polled") > 0, "the other router is polled\n{}", agent.log_tail());
    assert!(
        got.iter().any(|m| m.subject.starts_with("pantau.iface.sample.polled.")),
        "its samples go out"
    );
}
