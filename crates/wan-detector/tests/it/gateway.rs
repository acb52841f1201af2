//! The gateway's router routes against the real detector over gRPC, and the
//! gateway's WebSocket stream carrying `wan_detected` from the bus.

use std::sync::Arc;
use std::time::Duration;

use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, publish_proto, subject};
use pantau_core::service::Context;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Running, config, eventually, mikrotik, sample};

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, path: &str, want: StatusCode) -> Value {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, want, "GET {path}: {body}");
        body
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_routes_through_the_gateway() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let detector = Running::start(config(dir.path()), Arc::clone(&bus)).await;
    let mut cfg = config(dir.path());
    cfg.gateway.wan_detector_url = format!("http://{}", detector.addr);
    let ctx = Context::new(Arc::new(cfg), Arc::clone(&bus));
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{}", web.local_addr().unwrap()),
    };
    let gateway = tokio::spawn(pantau_gateway::run(ctx.clone(), web));

    // Nothing polled yet: an empty list, and 404 for a router nobody polls.
    let v = eventually("the gateway", || async {
        let r = api.http.get(format!("{}/api/v1/routers", api.base)).send().await.ok()?;
        (r.status() == StatusCode::OK).then_some(r.json::<Value>().await.ok()?)
    })
    .await;
    assert_eq!(v["routers"], serde_json::json!([]));
    let v = api.get("/api/v1/routers/ghost/wan", StatusCode::NOT_FOUND).await;
    assert_eq!(v["error"]["code"], "not_found");
    assert!(v["error"]["message"].as_str().unwrap().contains("ghost"), "{v}");
    api.get("/api/v1/routers/ghost/interfaces", StatusCode::NOT_FOUND).await;

    for _ in 0..5 {
        publish_proto(
            bus.as_ref(),
            &subject::iface_sample("gw", 7),
            &sample("gw", 7, "pppoe-out1", 60e6, 3e6),
        )
        .await
        .unwrap();
    }
    // The samples arrive on their own subscription: wait for them before the info.
    eventually("gw's samples", || async {
        let r = api
            .http
            .get(format!("{}/api/v1/routers/gw/interfaces", api.base))
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        (v["interfaces"][0]["in_bits_per_second"].as_f64()? > 0.0).then_some(())
    })
    .await;
    publish_proto(bus.as_ref(), &subject::router_info("gw"), &mikrotik("gw"))
        .await
        .unwrap();
    let v = eventually("gw through the gateway", || async {
        let r = api
            .http
            .get(format!("{}/api/v1/routers/gw/wan", api.base))
            .send()
            .await
            .ok()?;
        (r.status() == StatusCode::OK).then_some(r.json::<Value>().await.ok()?)
    })
    .await;
    assert_eq!(v["router_id"], "gw");
    assert_eq!(v["reachable"], true);
    let wans = v["interfaces"].as_array().unwrap();
    assert_eq!(wans.len(), 2, "only WAN interfaces: {v}");
    assert_eq!(wans[0]["name"], "ether1");
    assert_eq!(wans[0]["is_wan"], true);
    assert_eq!(wans[0]["methods"][0]["method"], "route");
    assert_eq!(wans[0]["isp"]["name"], "telkom");
    assert_eq!(wans[0]["status"], "up");
    assert_eq!(wans[1]["name"], "pppoe-out1");
    assert_eq!(wans[1]["isp"]["name"], "biznet");
    assert_eq!(wans[1]["isp"]["source"], "pppoe_user");
    assert_eq!(wans[1]["methods"][0]["method"], "traffic");
    assert!(wans[1]["in_bits_per_second"].as_f64().unwrap() > 59e6);

    let all = api.get("/api/v1/routers/gw/wan?all=true", StatusCode::OK).await;
    assert_eq!(all["interfaces"].as_array().unwrap().len(), 3);
    assert_eq!(all["cached"], true);
    let fresh = api.get("/api/v1/routers/gw/wan?refresh=true", StatusCode::OK).await;
    assert_eq!(fresh["cached"], false);
    assert!(fresh["detected_at"].as_str().unwrap().ends_with('Z'), "{fresh}");

    let routers = api.get("/api/v1/routers", StatusCode::OK).await;
    let r = &routers["routers"][0];
    assert_eq!(r["id"], "gw");
    assert_eq!(r["name"], "gw name");
    assert_eq!(r["interface_count"], 3);
    assert_eq!(r["wan_count"], 2);
    assert_eq!(r["reachable"], true);

    let ifaces = api.get("/api/v1/routers/gw/interfaces", StatusCode::OK).await;
    let list = ifaces["interfaces"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["name"], "ether1");
    assert_eq!(list[0]["comment"], "Indihome 100M");
    assert_eq!(list[2]["status"], "up");
    assert!(list[2]["out_bits_per_second"].as_f64().unwrap() > 2e6);

    // Bad input names what is wrong.
    let v = api
        .get("/api/v1/routers/gw/wan?refresh=maybe", StatusCode::BAD_REQUEST)
        .await;
    assert_eq!(v["error"]["code"], "invalid_query");
    assert!(v["error"]["message"].as_str().unwrap().contains("refresh"), "{v}");
    let v = api
        .get("/api/v1/routers/gw/wan?refersh=true", StatusCode::BAD_REQUEST)
        .await;
    assert!(v["error"]["message"].as_str().unwrap().contains("refersh"), "{v}");
    let v = api.get("/api/v1/routers/a.b/wan", StatusCode::BAD_REQUEST).await;
    assert_eq!(v["error"]["code"], "invalid_router_id");

    ctx.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), gateway).await;
    detector.stop().await;

    // Without the detector the routes say so with 503, not 500.
    let dir2 = tempfile::tempdir().unwrap();
    let mut cfg = config(dir2.path());
    cfg.gateway.wan_detector_url = format!("http://127.0.0.1:{}", pantau_testkit::free_port());
    let ctx = Context::new(Arc::new(cfg), Arc::new(MemoryBus::new()));
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{}", web.local_addr().unwrap()),
    };
    let gateway = tokio::spawn(pantau_gateway::run(ctx.clone(), web));
    let v = eventually("the second gateway", || async {
        let r = api.http.get(format!("{}/api/v1/routers", api.base)).send().await.ok()?;
        Some((r.status(), r.json::<Value>().await.ok()?))
    })
    .await;
    assert_eq!(v.0, StatusCode::SERVICE_UNAVAILABLE, "{}", v.1);
    assert_eq!(v.1["error"]["code"], "unavailable");
    ctx.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_websocket_streams_wan_detected() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as Ws;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(config(dir.path())), Arc::clone(&bus));
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "ws://{}/api/v1/monitoring/events?types=wan_detected",
        web.local_addr().unwrap()
    );
    let gateway = tokio::spawn(pantau_gateway::run(ctx.clone(), web));
    let (mut ws, _) = eventually("the gateway's WebSocket", || {
        let url = url.clone();
        async move { tokio_tungstenite::connect_async(url).await.ok() }
    })
    .await;
    let detector = Running::start(config(dir.path()), Arc::clone(&bus)).await;
    publish_proto(bus.as_ref(), &subject::router_info("gw"), &mikrotik("gw"))
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await.expect("the socket stays open").unwrap() {
                Ws::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "wan_detected" {
                        break v;
                    }
                }
                Ws::Ping(p) => ws.send(Ws::Pong(p)).await.unwrap(),
                _ => {}
            }
        }
    })
    .await
    .expect("wan_detected reaches the WebSocket client");
    let data = &event["data"];
    assert_eq!(data["source"], "gw", "{event}");
    assert!(event.to_string().contains("ether1,pppoe-out1"), "{event}");
    ctx.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), gateway).await;
    detector.stop().await;
}
