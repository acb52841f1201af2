//! This machine, polled over SNMP by the collector's router poller from a
//! real net-snmp agent (Debian's `snmpd`) on a loopback port, judged by the
//! detector from what the poller publishes on the in-process bus: the
//! interface of the kernel's default route is a WAN by the route method.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_collector::routers::RouterPoller;
use pantau_config::{CollectorConfig, RouterConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{self, Bus, Subscription};
use pantau_proto::v1::{DetectWanRequest, EventKind, LinkStatus, ListInterfacesRequest, RouterEvent, WanMethod};
use pantau_testkit::Snmpd;

use crate::support::{Running, config, eventually};

/// The interface of this machine's IPv4 default route, from /proc/net/route.
fn default_route_interface() -> String {
    let table = std::fs::read_to_string("/proc/net/route").expect("/proc/net/route is readable");
    table
        .lines()
        .skip(1)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 7 && f[1] == "00000000" && f[7] == "00000000").then(|| f[0].to_owned())
        })
        .expect("this test needs an IPv4 default route on the machine (see /proc/net/route)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_route_interface_of_this_machine_is_detected_as_wan() {
    let agent = Snmpd::start().await.unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut events = bus
        .subscribe(Subscription::live("pantau.event.wan_detected.>"))
        .await
        .unwrap();
    let mut cfg = config(dir.path());
    // Judge on every poll, so "published once" is about the answer, not the cache.
    cfg.wan_detector.cache_ttl = Duration::ZERO;
    let detector = Running::start(cfg, Arc::clone(&bus)).await;
    let mut client = detector.client();

    let mut r = RouterConfig::new("local", agent.addr().to_string());
    r.interval = Some(Duration::from_secs(5));
    r.timeout = Some(Duration::from_secs(2));
    r.retries = Some(1);
    let mut poller = RouterPoller::new(&r, &CollectorConfig::default(), Arc::clone(&bus));
    for n in 0..3 {
        let (o, _) = poller.poll_once().await;
        assert!(o.up, "poll {n}: {:?}\n{}", o.events, agent.log_tail());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let want = default_route_interface();
    let answer = eventually("a judgement of router local", || {
        let mut c = client.clone();
        async move {
            c.detect_wan(DetectWanRequest {
                router_id: "local".into(),
                force_refresh: false,
            })
            .await
            .ok()
            .map(tonic::Response::into_inner)
        }
    })
    .await;
    assert!(answer.reachable);
    let wan = answer
        .interfaces
        .iter()
        .find(|i| i.name == want)
        .unwrap_or_else(|| panic!("no {want} in {answer:?}"));
    assert!(wan.is_wan, "{wan:?}");
    assert!(wan.confidence >= 0.9, "{wan:?}");
    let route = wan
        .evidence
        .iter()
        .find(|e| e.method() == WanMethod::Route)
        .unwrap_or_else(|| panic!("not by the route method: {wan:?}"));
    assert!((route.confidence - 0.9).abs() < 1e-9);
    assert_eq!(wan.status(), LinkStatus::Up);
    let lo = answer.interfaces.iter().find(|i| i.name == "lo").unwrap();
    assert!(!lo.is_wan, "{lo:?}");
    assert_eq!(answer.interfaces[0].name, want, "WAN first");

    // Three polls, one answer: one wan_detected.
    let mut got: Vec<RouterEvent> = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), events.next()).await {
        assert_eq!(m.subject, "pantau.event.wan_detected.local");
        got.push(bus::decode(&m).unwrap());
    }
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].kind(), EventKind::WanDetected);
    assert!(
        got[0].attributes["wan_interfaces"].split(',').any(|n| n == want),
        "{got:?}"
    );
    // Another poll does not publish it again either.
    poller.poll_once().await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), events.next())
            .await
            .is_err(),
        "wan_detected published again without a change"
    );

    // The interfaces, with real rates from the second poll on.
    let ifaces = client
        .list_interfaces(ListInterfacesRequest {
            router_id: "local".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ifaces.reachable);
    let lo = ifaces.interfaces.iter().find(|i| i.name == "lo").unwrap();
    assert_eq!(lo.status(), LinkStatus::Up);
    assert!(lo.sampled_at.is_some());
    assert!(lo.in_bits_per_second.is_finite() && lo.in_bits_per_second >= 0.0);
    detector.stop().await;
}

/// `examples/routers.yaml` validates and, with the collector's router
/// polling (`routers::start`) on the agent's port, gives the detector this
/// machine's WAN; its manual entry keeps `lo` out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_file_detects_this_machines_wan() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/routers.yaml");
    let mut cfg = pantau_config::Config::load(&pantau_config::LoadOptions {
        file: Some(file.into()),
        env: Vec::new(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.wan_detector.manual.len(), 1);
    let (pattern, isp) = cfg.wan_detector.isp_map.iter().next().unwrap();
    assert_eq!((pattern.as_str(), isp.as_str()), ("cbn|cyber ?net", "cbn"));
    let agent = Snmpd::start().await.unwrap_or_else(|e| panic!("{e}"));
    for r in &mut cfg.collector.routers {
        r.address = agent.addr().to_string();
        r.snmp.user = r.snmp.user.as_ref().map(|_| pantau_testkit::V3_USER.to_owned());
    }
    let dir = tempfile::tempdir().unwrap();
    cfg.data_dir = dir.path().to_owned();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let detector = Running::start(cfg, Arc::clone(&bus)).await;
    pantau_collector::routers::start(&detector.ctx, None, None);
    let want = default_route_interface();
    let mut client = detector.client();
    let answer = eventually("a judgement of the example's router", || {
        let mut c = client.clone();
        async move {
            c.detect_wan(DetectWanRequest {
                router_id: "local".into(),
                force_refresh: true,
            })
            .await
            .ok()
            .map(tonic::Response::into_inner)
        }
    })
    .await;
    let wan = answer.interfaces.iter().find(|i| i.name == want).unwrap();
    assert!(wan.is_wan && wan.confidence >= 0.9, "{wan:?}");
    assert!(wan.evidence.iter().any(|e| e.method() == WanMethod::Route), "{wan:?}");
    let lo = answer.interfaces.iter().find(|i| i.name == "lo").unwrap();
    assert_eq!(lo.evidence[0].method(), WanMethod::Manual);
    let routers = client
        .list_routers(pantau_proto::v1::ListRoutersRequest {})
        .await
        .unwrap()
        .into_inner()
        .routers;
    assert!(
        routers
            .iter()
            .any(|r| r.router_id == "local" && r.router_name == "This machine")
    );
    detector.stop().await;
}
