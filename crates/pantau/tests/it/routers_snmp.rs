//! Router polling over SNMP against a recorded agent (PyPI's `snmpsim`),
//! through the WAN detector and the gateway, in one process over the
//! in-process bus: interface addresses read from both MIB generations make
//! the ISP recognised by prefix (`wan_detector.isp_prefixes`), shown with
//! its source and the WAN method and confidence in `GET
//! /api/v1/routers/{id}/wan`; and the `traffic` events of the second poll
//! reach a WebSocket client that asked for them.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pantau_collector::routers::RouterPoller;
use pantau_config::types::{Cidr, IspName};
use pantau_config::{CollectorConfig, RouterConfig};
use pantau_core::bus::Bus;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::service::Context;
use pantau_testkit::{ISP_ADDRESSES_COMMUNITY, SnmpSim};
use reqwest::StatusCode;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::gateway_routes::{Api, Detector, detector_config, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snmp_addresses_recognise_the_isp_by_prefix_and_traffic_reaches_the_websocket() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let agent = SnmpSim::start().await.unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut cfg = detector_config(dir.path());
    let prefix = |c: &str, isp: &str| (c.parse::<Cidr>().unwrap(), IspName::try_from(isp).unwrap());
    cfg.wan_detector.isp_prefixes = [
        prefix("203.0.113.0/24", "biznet"),
        prefix("2001:db8:77::/48", "myrepublic"),
    ]
    .into();
    let detector = Detector::start(cfg, Arc::clone(&bus)).await;
    let mut gw = detector_config(dir.path());
    gw.gateway.wan_detector_url = format!("http://{}", detector.addr);
    let ctx = Context::new(Arc::new(gw), Arc::clone(&bus));
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{}", web.local_addr().unwrap()),
    };
    let ws_url = format!(
        "ws://{}/api/v1/monitoring/events?types=traffic",
        web.local_addr().unwrap()
    );
    let gateway = tokio::spawn(pantau_gateway::run(ctx.clone(), web));
    let (mut ws, _) = eventually("the gateway's WebSocket", || {
        let url = ws_url.clone();
        async move { tokio_tungstenite::connect_async(url).await.ok() }
    })
    .await;

    let mut r = RouterConfig::new("edge", agent.addr().to_string());
    r.snmp.community = Some(ISP_ADDRESSES_COMMUNITY.to_owned());
    r.interval = Some(Duration::from_secs(5));
    r.timeout = Some(Duration::from_secs(2));
    r.retries = Some(1);
    let mut poller = RouterPoller::new(&r, &CollectorConfig::default(), Arc::clone(&bus));
    for n in 0..2 {
        let (o, _) = poller.poll_once().await;
        assert!(o.up, "poll {n}: {:?}\n{}", o.events, agent.log_tail());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let v = eventually("edge's WAN through the gateway", || async {
        let r = api
            .http
            .get(format!("{}/api/v1/routers/edge/wan", api.base))
            .send()
            .await
            .ok()?;
        (r.status() == StatusCode::OK).then_some(r.json::<Value>().await.ok()?)
    })
    .await;
    assert_eq!(v["reachable"], true, "{v}");
    let wans = v["interfaces"].as_array().unwrap();
    let names: Vec<&str> = wans.iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ether1", "ether3"], "the default routes' interfaces: {v}");
    for (w, isp, matched) in [
        (&wans[0], "biznet", "203.0.113.7/29"),
        (&wans[1], "myrepublic", "2001:db8:77::2/64"),
    ] {
        assert_eq!(w["is_wan"], true, "{w}");
        assert_eq!(w["methods"][0]["method"], "route", "{w}");
        assert_eq!(w["methods"][0]["confidence"], 0.9, "{w}");
        assert_eq!(w["isp"]["name"], isp, "{w}");
        assert_eq!(w["isp"]["source"], "address", "{w}");
        assert_eq!(w["isp"]["matched"], matched, "{w}");
    }
    let ifaces = api.get("/api/v1/routers/edge/interfaces", StatusCode::OK).await;
    let lan = ifaces["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "ether2")
        .unwrap_or_else(|| panic!("{ifaces}"));
    assert_eq!(lan["addresses"], serde_json::json!(["192.168.88.1/24"]), "{lan}");

    // The second poll's traffic events, on the WebSocket.
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await.expect("the socket stays open").unwrap() {
                Ws::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "traffic" {
                        break v;
                    }
                }
                Ws::Ping(p) => ws.send(Ws::Pong(p)).await.unwrap(),
                _ => {}
            }
        }
    })
    .await
    .expect("a traffic event reaches the WebSocket client");
    let data = &event["data"];
    assert_eq!(data["source"], "edge", "{event}");
    assert!(data["attributes"]["in_bits_per_second"].is_string(), "{event}");
    assert_eq!(data["attributes"]["counter_bits"], "32", "{event}");
    ctx.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), gateway).await;
    detector.stop().await;
}
