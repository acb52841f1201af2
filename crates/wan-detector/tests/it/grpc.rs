//! `WanDetectorService` over gRPC, fed through the bus: the in-process bus,
//! and a real nats-server with a restart of the detector in between (the
//! durable consumers resume where they stopped).

use std::sync::Arc;
use std::time::Duration;

use pantau_config::{ManualWan, NatsConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::nats::NatsBus;
use pantau_core::bus::{Bus, publish_proto, subject};
use pantau_proto::v1::{
    DetectWanRequest, EventKind, LinkStatus, ListInterfacesRequest, ListRoutersRequest, RouterEvent, Severity,
    WanMethod,
};
use tonic::Code;

use crate::support::{Running, config, eventually, mikrotik, sample};

async fn detect(
    c: &mut pantau_proto::v1::wan_detector_service_client::WanDetectorServiceClient<pantau_core::grpc::Channel>,
    id: &str,
    force: bool,
) -> Result<pantau_proto::v1::DetectWanResponse, tonic::Status> {
    c.detect_wan(DetectWanRequest {
        router_id: id.into(),
        force_refresh: force,
    })
    .await
    .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_list_and_errors_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut cfg = config(dir.path());
    cfg.wan_detector.manual = vec![ManualWan {
        router: "gw".into(),
        interface: "bridge-lan".into(),
        wan: false,
        isp: None,
    }];
    let d = Running::start(cfg, Arc::clone(&bus)).await;
    let mut c = d.client();

    let e = detect(&mut c, "", false).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = detect(&mut c, "ghost", false).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("ghost"), "{}", e.message());

    // Samples come first in a poll, then the info.
    for _ in 0..5 {
        publish_proto(
            bus.as_ref(),
            &subject::iface_sample("gw", 7),
            &sample("gw", 7, "pppoe-out1", 60e6, 3e6),
        )
        .await
        .unwrap();
    }
    let e = eventually("samples of gw", || {
        let mut c = c.clone();
        async move {
            detect(&mut c, "gw", false)
                .await
                .err()
                .filter(|e| e.code() == Code::FailedPrecondition)
        }
    })
    .await;
    assert!(e.message().contains("no RouterInfo yet"), "{}", e.message());
    publish_proto(bus.as_ref(), &subject::router_info("gw"), &mikrotik("gw"))
        .await
        .unwrap();
    // Samples and infos come on separate subscriptions: judge again until all
    // five samples have arrived (the traffic method needs the window).
    let r = eventually("a judgement of gw with its traffic", || {
        let mut c = c.clone();
        async move {
            detect(&mut c, "gw", true).await.ok().filter(|r| {
                r.interfaces
                    .iter()
                    .any(|i| i.name == "pppoe-out1" && i.evidence.iter().any(|e| e.method() == WanMethod::Traffic))
            })
        }
    })
    .await;
    assert_eq!(r.router_name, "gw name");
    assert!(r.reachable);
    let names: Vec<(&str, bool)> = r.interfaces.iter().map(|i| (i.name.as_str(), i.is_wan)).collect();
    assert_eq!(
        names,
        [("ether1", true), ("pppoe-out1", true), ("bridge-lan", false)],
        "{r:?}"
    );
    let ether1 = &r.interfaces[0];
    assert_eq!(ether1.evidence[0].method(), WanMethod::Route);
    assert!(
        (ether1.confidence - 0.95).abs() < 1e-9,
        "route + name (comment names ISP)"
    );
    let isp = ether1.isp.as_ref().unwrap();
    assert_eq!((isp.name.as_str(), isp.source.as_str()), ("telkom", "comment"));
    let pppoe = &r.interfaces[1];
    let methods: Vec<WanMethod> = pppoe
        .evidence
        .iter()
        .map(pantau_proto::v1::WanEvidence::method)
        .collect();
    assert_eq!(methods, [WanMethod::Traffic, WanMethod::Name]);
    assert_eq!(pppoe.isp.as_ref().unwrap().name, "biznet");
    assert_eq!(pppoe.isp.as_ref().unwrap().source, "pppoe_user");
    assert!((pppoe.in_bits_per_second - 60e6).abs() < 1.0);
    assert_eq!(r.interfaces[2].evidence[0].method(), WanMethod::Manual);
    // From the cache, then forced.
    assert!(detect(&mut c, "gw", false).await.unwrap().cached);
    assert!(!detect(&mut c, "gw", true).await.unwrap().cached);

    let routers = c
        .list_routers(ListRoutersRequest {})
        .await
        .unwrap()
        .into_inner()
        .routers;
    assert_eq!(routers.len(), 1);
    assert_eq!(
        (
            routers[0].router_id.as_str(),
            routers[0].interface_count,
            routers[0].wan_count
        ),
        ("gw", 3, 2)
    );
    assert!(routers[0].reachable && routers[0].last_seen.is_some());
    let ifaces = c
        .list_interfaces(ListInterfacesRequest { router_id: "gw".into() })
        .await
        .unwrap()
        .into_inner();
    let idx: Vec<u32> = ifaces.interfaces.iter().map(|i| i.if_index).collect();
    assert_eq!(idx, [1, 2, 7]);
    assert_eq!(ifaces.interfaces[0].addresses, ["36.70.1.2/24"]);
    let e = c
        .list_interfaces(ListInterfacesRequest {
            router_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // The collector reports the router unreachable: links unknown, not down.
    let down = RouterEvent {
        id: "gw-target_down-1".into(),
        kind: EventKind::TargetDown.into(),
        source: "gw".into(),
        severity: Severity::Critical.into(),
        message: "router gw does not answer SNMP".into(),
        attributes: [("kind".to_owned(), "router".to_owned())].into(),
        ..RouterEvent::default()
    };
    publish_proto(bus.as_ref(), &subject::event("target_down", "gw"), &down)
        .await
        .unwrap();
    let r = eventually("gw unreachable", || {
        let mut c = c.clone();
        async move { detect(&mut c, "gw", false).await.ok().filter(|r| !r.reachable) }
    })
    .await;
    assert!(r.interfaces.iter().all(|i| i.status() == LinkStatus::Unknown), "{r:?}");
    assert!(r.interfaces[0].is_wan, "the judgement stands");
    // An endpoint's target_down (no `kind: router`) is not about a router.
    let mut endpoint = down.clone();
    endpoint.source = "web".into();
    endpoint.attributes.clear();
    publish_proto(bus.as_ref(), &subject::event("target_down", "web"), &endpoint)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        c.list_routers(ListRoutersRequest {})
            .await
            .unwrap()
            .into_inner()
            .routers
            .len(),
        1
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats_the_detector_resumes_after_a_restart() {
    let nats = pantau_testkit::Nats::start().await.expect("nats-server for the test");
    let nats_cfg = NatsConfig {
        url: Some(nats.url()),
        ..NatsConfig::default()
    };
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&nats_cfg, "wan-detector-test").await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.nats = nats_cfg;
    let mut events = bus
        .subscribe(pantau_core::bus::Subscription::live("pantau.event.wan_detected.>"))
        .await
        .unwrap();

    let d = Running::start(cfg.clone(), Arc::clone(&bus)).await;
    publish_proto(bus.as_ref(), &subject::router_info("r1"), &mikrotik("r1"))
        .await
        .unwrap();
    let mut c = d.client();
    eventually("a judgement of r1", || {
        let mut c = c.clone();
        async move { detect(&mut c, "r1", false).await.ok() }
    })
    .await;
    let first = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut events))
        .await
        .expect("wan_detected on NATS")
        .unwrap();
    assert_eq!(first.subject, "pantau.event.wan_detected.r1");
    d.stop().await;

    // Published while the detector is down: taken in after its restart.
    publish_proto(bus.as_ref(), &subject::router_info("r2"), &mikrotik("r2"))
        .await
        .unwrap();
    let d = Running::start(cfg, Arc::clone(&bus)).await;
    c = d.client();
    let r = eventually("a judgement of r2", || {
        let mut c = c.clone();
        async move { detect(&mut c, "r2", false).await.ok() }
    })
    .await;
    assert!(r.interfaces[0].is_wan);
    d.stop().await;
}
