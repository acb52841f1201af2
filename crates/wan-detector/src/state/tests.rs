#![allow(clippy::field_reassign_with_default)]

use std::time::UNIX_EPOCH;

use futures::StreamExt;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{MessageStream, Subscription};
use pantau_proto::v1::{RouterInterface, WanMethod};

use super::*;

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn iface(index: u32, name: &str, comment: &str) -> RouterInterface {
    RouterInterface {
        if_index: index,
        if_name: name.into(),
        comment: comment.into(),
        if_type: 6,
        oper_up: true,
        admin_up: true,
        ..RouterInterface::default()
    }
}

fn info(default: &[u32]) -> RouterInfo {
    RouterInfo {
        router_id: "r1".into(),
        router_name: "Gedung A".into(),
        default_route_if_indexes: default.to_vec(),
        route_table: "ipCidrRouteTable".into(),
        interfaces: vec![
            iface(1, "ether1", "Indihome"),
            iface(2, "ether2", "Biznet"),
            iface(3, "bridge-lan", ""),
        ],
        ..RouterInfo::default()
    }
}

fn sample(index: u32, rx: f64, tx: f64, oper_up: bool) -> InterfaceSample {
    InterfaceSample {
        router_id: "r1".into(),
        if_index: index,
        if_name: format!("if{index}"),
        in_bits_per_second: rx,
        out_bits_per_second: tx,
        rates_valid: true,
        oper_up,
        admin_up: true,
        ..InterfaceSample::default()
    }
}

async fn setup(cfg: WanDetectorConfig) -> (Detector, MessageStream) {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let events = bus
        .subscribe(Subscription::live("pantau.event.wan_detected.>"))
        .await
        .unwrap();
    (Detector::new(&cfg, bus).unwrap(), events)
}

async fn published(events: &mut MessageStream) -> Vec<RouterEvent> {
    let mut out = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(100), events.next()).await {
        assert_eq!(m.subject, "pantau.event.wan_detected.r1");
        out.push(bus::decode(&m).unwrap());
    }
    out
}

fn no_cache() -> WanDetectorConfig {
    WanDetectorConfig {
        cache_ttl: Duration::ZERO,
        ..WanDetectorConfig::default()
    }
}

#[tokio::test]
async fn wan_detected_is_published_once_per_change_not_per_poll() {
    let (d, mut events) = setup(no_cache()).await;
    // The route makes ether1 a WAN; ether1's pattern too. ether2 has only a
    // comment naming an ISP (name method, 0.5): also WAN at the default threshold.
    d.on_info(info(&[1]), t(0)).await;
    let first = published(&mut events).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let e = &first[0];
    assert_eq!(e.kind(), EventKind::WanDetected);
    assert_eq!(e.source, "r1");
    assert_eq!(e.attributes["wan_interfaces"], "ether1,ether2");
    assert_eq!(e.attributes["isps"], "telkom,biznet");
    assert_eq!(e.attributes["wan_count"], "2");
    assert_eq!(e.attributes["previous_wan_interfaces"], "");
    assert!(e.message.contains("ether1 (telkom, 0.95)"), "{}", e.message);
    // Ten more polls with the same answer (judged every time: no cache):
    // nothing new on the bus.
    for s in 1..=10 {
        d.on_info(info(&[1]), t(s * 30)).await;
    }
    assert!(published(&mut events).await.is_empty());
    // The comment of ether2 goes away: it is no WAN any more -> one event.
    let mut changed = info(&[1]);
    changed.interfaces[1].comment.clear();
    d.on_info(changed.clone(), t(400)).await;
    d.on_info(changed, t(430)).await;
    let second = published(&mut events).await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0].attributes["wan_interfaces"], "ether1");
    assert_eq!(second[0].attributes["previous_wan_interfaces"], "ether1,ether2");
}

#[tokio::test]
async fn the_cache_answers_until_its_ttl_and_force_refresh_bypasses_it() {
    let (d, mut events) = setup(WanDetectorConfig::default()).await;
    d.on_info(info(&[1]), t(0)).await;
    let r = d.detect("r1", false, t(10)).await.unwrap();
    assert!(r.cached);
    assert_eq!(r.router_name, "Gedung A");
    let wans: Vec<&str> = r
        .interfaces
        .iter()
        .filter(|i| i.is_wan)
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(wans, ["ether1", "ether2"], "WAN first, strongest first");
    assert_eq!(r.interfaces[0].evidence[0].method(), WanMethod::Route);
    assert_eq!(r.interfaces[0].isp.as_ref().unwrap().source, "comment");
    // A sample with download-heavy traffic on ether2 does not change the
    // cached answer; force_refresh does (traffic needs 5 samples).
    for _ in 0..5 {
        d.on_sample(sample(2, 50e6, 2e6, true), t(20));
    }
    let cached = d.detect("r1", false, t(30)).await.unwrap();
    assert!(cached.cached);
    let e2 = cached.interfaces.iter().find(|i| i.name == "ether2").unwrap();
    assert_eq!(e2.evidence.len(), 1);
    // Current rates are live even from the cache.
    assert!((e2.in_bits_per_second - 50e6).abs() < 1.0);
    let fresh = d.detect("r1", true, t(31)).await.unwrap();
    assert!(!fresh.cached);
    let e2 = fresh.interfaces.iter().find(|i| i.name == "ether2").unwrap();
    let methods: Vec<WanMethod> = e2.evidence.iter().map(WanEvidence::method).collect();
    assert_eq!(methods, [WanMethod::Traffic, WanMethod::Name]);
    assert!((e2.confidence - 0.85).abs() < 1e-9);
    // After the TTL the next poll judges again by itself.
    let r = d.detect("r1", false, t(31 + 301)).await.unwrap();
    assert!(!r.cached);
    // Same WAN set and ISPs throughout: one event only.
    assert_eq!(published(&mut events).await.len(), 1);
}

#[tokio::test]
async fn a_moved_default_route_is_judged_at_once_despite_the_cache() {
    let mut cfg = WanDetectorConfig::default();
    cfg.patterns = Some(Vec::new());
    let (d, mut events) = setup(cfg).await;
    let mut plain = info(&[1]);
    for i in &mut plain.interfaces {
        i.comment.clear();
    }
    d.on_info(plain.clone(), t(0)).await;
    plain.default_route_if_indexes = vec![2];
    d.on_info(plain, t(30)).await;
    let got = published(&mut events).await;
    let wans: Vec<&str> = got.iter().map(|e| e.attributes["wan_interfaces"].as_str()).collect();
    assert_eq!(wans, ["ether1", "ether2"]);
}

#[tokio::test]
async fn an_unreachable_router_has_unknown_links_not_down() {
    let (d, _events) = setup(WanDetectorConfig::default()).await;
    d.on_info(info(&[1]), t(0)).await;
    d.on_sample(sample(1, 1e6, 1e5, true), t(0));
    d.on_sample(sample(3, 1e6, 1e5, false), t(0));
    let r = d.detect("r1", false, t(1)).await.unwrap();
    assert!(r.reachable);
    let status = |r: &DetectWanResponse, name: &str| r.interfaces.iter().find(|i| i.name == name).unwrap().status();
    assert_eq!(status(&r, "ether1"), LinkStatus::Up);
    assert_eq!(status(&r, "bridge-lan"), LinkStatus::Down);
    // The collector reports it down: every link unknown, the judgement stands.
    d.on_reachability("r1", false, t(2));
    let r = d.detect("r1", false, t(3)).await.unwrap();
    assert!(!r.reachable);
    assert!(r.interfaces.iter().all(|i| i.status() == LinkStatus::Unknown), "{r:?}");
    assert!(r.interfaces[0].is_wan);
    let (ifaces, reachable) = d.interfaces("r1", t(3)).unwrap();
    assert!(!reachable);
    assert!(ifaces.iter().all(|i| i.status() == LinkStatus::Unknown));
    assert!(!d.routers(t(3))[0].reachable);
    // It answers again.
    d.on_reachability("r1", true, t(4));
    assert!(d.detect("r1", false, t(5)).await.unwrap().reachable);
    // Not polled within stale_after (5m): unknown too.
    let r = d.detect("r1", false, t(4 + 301)).await.unwrap();
    assert!(!r.reachable);
    assert_eq!(status(&r, "ether1"), LinkStatus::Unknown);
}

#[tokio::test]
async fn a_router_that_never_answered_is_unreachable_not_an_error() {
    let (d, _events) = setup(WanDetectorConfig::default()).await;
    d.on_reachability("never", false, t(0));
    let never = d.detect("never", false, t(0)).await.unwrap();
    assert!(!never.reachable && never.interfaces.is_empty(), "{never:?}");
    assert_eq!(never.router_id, "never");
}

#[tokio::test]
async fn routers_and_interfaces_show_the_latest_state() {
    let (d, _events) = setup(WanDetectorConfig::default()).await;
    assert_eq!(
        d.detect("nope", false, t(0)).await.unwrap_err(),
        LookupError::NotFound("nope".into())
    );
    assert_eq!(d.interfaces("", t(0)).unwrap_err(), LookupError::Empty);
    // Samples before the first info: listed, not judged yet.
    d.on_sample(sample(1, 8e6, 1e6, true), t(0));
    assert_eq!(
        d.detect("r1", false, t(0)).await.unwrap_err(),
        LookupError::NotJudged("r1".into())
    );
    d.on_info(info(&[1]), t(1)).await;
    // The window keeps only the newest samples; rates come from the newest valid one.
    for k in 0..30 {
        d.on_sample(sample(1, f64::from(k) * 1e6, 1e5, true), t(2));
    }
    let mut invalid = sample(1, 0.0, 0.0, true);
    invalid.rates_valid = false;
    d.on_sample(invalid, t(3));
    let (ifaces, reachable) = d.interfaces("r1", t(3)).unwrap();
    assert!(reachable);
    assert_eq!(ifaces.len(), 3);
    assert_eq!(ifaces[0].comment, "Indihome");
    assert!((ifaces[0].in_bits_per_second - 29e6).abs() < 1.0);
    {
        let map = d.lock();
        assert_eq!(map["r1"].samples[&1].len(), 10);
    }
    let routers = d.routers(t(3));
    assert_eq!(routers.len(), 1);
    assert_eq!(routers[0].router_name, "Gedung A");
    assert_eq!(routers[0].interface_count, 3);
    assert_eq!(routers[0].wan_count, 2);
    // An interface that disappears from the router takes its samples along.
    let mut fewer = info(&[1]);
    fewer.interfaces.remove(0);
    d.on_info(fewer, t(4)).await;
    assert_eq!(d.interfaces("r1", t(4)).unwrap().0.len(), 2);
}

#[tokio::test]
async fn metrics_count_cache_hits_and_wan_interfaces_by_isp() {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (d, _events) = setup(WanDetectorConfig::default()).await;
    metrics::with_local_recorder(&recorder, || {
        futures::executor::block_on(async {
            d.on_info(info(&[1]), t(0)).await;
            d.detect("r1", false, t(1)).await.unwrap();
            d.detect("r1", true, t(2)).await.unwrap();
        });
    });
    let snap = snapshotter.snapshot().into_hashmap();
    let find = |name: &str, label: (&str, &str)| {
        snap.iter()
            .find(|(k, _)| {
                k.key().name() == name && k.key().labels().any(|l| l.key() == label.0 && l.value() == label.1)
            })
            .map(|(_, (_, _, v))| format!("{v:?}"))
    };
    assert_eq!(
        find(m::CACHE_REQUESTS_TOTAL, ("cache", "hit")).as_deref(),
        Some("Counter(1)")
    );
    assert_eq!(
        find(m::CACHE_REQUESTS_TOTAL, ("cache", "bypass")).as_deref(),
        Some("Counter(1)")
    );
    assert_eq!(
        find(m::WAN_INTERFACES, ("isp", "telkom")).as_deref(),
        Some("Gauge(1.0)")
    );
    assert_eq!(
        find(m::WAN_INTERFACES, ("isp", "biznet")).as_deref(),
        Some("Gauge(1.0)")
    );
}
