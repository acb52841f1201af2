//! The gateway as a library over the in-process bus: REST, WebSocket,
//! health, bad input, and undecodable bus messages.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::{SinkExt, StreamExt};
use pantau_config::Config;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, publish_proto, subject};
use pantau_core::health::ReadinessCheck;
use pantau_core::service::Context;
use pantau_core::time::to_timestamp;
use pantau_proto::v1;

mod auth;
mod console;
mod console_admin;
mod console_net;
mod hub;
mod refill;

struct Gateway {
    base: String,
    ws: String,
    bus: Arc<dyn Bus>,
    ctx: Context,
    _data: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.ctx.shutdown.cancel();
    }
}

/// A gateway with authentication off (the routes' own behaviour is under
/// test); `auth::start_secured` starts one with it on.
async fn start(edit: impl FnOnce(&mut Config)) -> Gateway {
    start_with(|c| {
        c.gateway.auth.enabled = false;
        edit(c);
    })
    .await
}

async fn start_with(edit: impl FnOnce(&mut Config)) -> Gateway {
    pantau_core::telemetry::prometheus();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: data.path().to_owned(),
        ..Config::default()
    };
    // No collector unless a test starts one (never whatever listens on the default port).
    config.gateway.collector_url = format!("http://127.0.0.1:{}", pantau_testkit::free_port());
    edit(&mut config);
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(config), Arc::clone(&bus));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let c = ctx.clone();
    tokio::spawn(async move { pantau_gateway::run(c, l).await.expect("gateway runs") });
    // The gateway subscribes before it serves: once it answers, it listens to the bus.
    let base = format!("http://{addr}");
    for _ in 0..100 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Gateway {
        ws: format!("ws://{addr}/api/v1/monitoring/events"),
        base,
        bus,
        ctx,
        _data: data,
    }
}

fn result(id: &str, up: bool) -> v1::CheckResult {
    v1::CheckResult {
        target_id: id.into(),
        target_name: id.into(),
        kind: v1::CheckKind::Tcp.into(),
        location: "jkt".into(),
        instance: "test".into(),
        status: if up { v1::CheckStatus::Up } else { v1::CheckStatus::Down }.into(),
        checked_at: Some(to_timestamp(SystemTime::now())),
        latency: Some(prost_types::Duration {
            seconds: 0,
            nanos: 2_000_000,
        }),
        reason: if up {
            v1::FailureReason::Unspecified
        } else {
            v1::FailureReason::Refused
        }
        .into(),
        message: if up { String::new() } else { "connection refused".into() },
        ..Default::default()
    }
}

async fn publish(g: &Gateway, r: &v1::CheckResult) {
    publish_proto(g.bus.as_ref(), &subject::check_result(&r.location, &r.target_id), r)
        .await
        .unwrap();
}

async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(url).await.unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap())
}

async fn eventually<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) {
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition never held");
}

#[tokio::test]
async fn latest_results_with_filters() {
    let g = start(|_| {}).await;
    publish(&g, &result("web", true)).await;
    publish(&g, &result("db", false)).await;
    let url = format!("{}/api/v1/results/latest", g.base);
    eventually(|| async {
        get_json(&url).await.1["results"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
    })
    .await;
    let (code, v) = get_json(&format!("{url}?status=down")).await;
    assert_eq!(code, 200);
    let rs = v["results"].as_array().unwrap();
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0]["target_id"], "db");
    assert_eq!(rs[0]["reason"], "refused");
    assert_eq!(rs[0]["latency_ms"], 2.0);
    // A newer result replaces the older one.
    publish(&g, &result("db", true)).await;
    eventually(|| async { get_json(&format!("{url}?target_id=db")).await.1["results"][0]["status"] == "up" }).await;
}

#[tokio::test]
async fn bad_queries_and_unknown_paths_get_json_errors() {
    let g = start(|_| {}).await;
    let (code, v) = get_json(&format!("{}/api/v1/results/latest?bogus=1", g.base)).await;
    assert_eq!(code, 400);
    assert_eq!(v["error"]["code"], "invalid_argument");
    assert_eq!(v["error"]["reason"], "invalid_query");
    assert!(v["error"]["message"].as_str().unwrap().contains("bogus"), "{v}");
    let (code, v) = get_json(&format!("{}/api/v1/results/latest?status=sideways", g.base)).await;
    assert_eq!(code, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("sideways"), "{v}");
    let (code, v) = get_json(&format!("{}/api/v1/nope", g.base)).await;
    assert_eq!(code, 404);
    assert_eq!(v["error"]["code"], "not_found");
}

#[tokio::test]
async fn undecodable_messages_are_counted_and_skipped() {
    let g = start(|_| {}).await;
    let metric = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("pantau_bus_decode_errors_total") && l.contains("pantau.check.result"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = metric(
        &reqwest::get(format!("{}/metrics", g.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    g.bus
        .publish(
            "pantau.check.result.x.y",
            pantau_core::bus::Headers::default(),
            bytes_of(b"\xff\xff\xff garbage"),
        )
        .await
        .unwrap();
    publish(&g, &result("after-garbage", true)).await;
    let url = format!("{}/api/v1/results/latest?target_id=after-garbage", g.base);
    eventually(|| async {
        get_json(&url).await.1["results"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    })
    .await;
    let after = metric(
        &reqwest::get(format!("{}/metrics", g.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(after >= before + 1.0, "decode errors {before} -> {after}");
}

fn bytes_of(b: &'static [u8]) -> bytes::Bytes {
    bytes::Bytes::from_static(b)
}

#[tokio::test]
async fn websocket_clients_receive_results_and_the_limit_holds() {
    let g = start(|c| c.gateway.dashboard.max_connections = 1).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(&g.ws).await.unwrap();
    // The slot is taken: a second client is refused with 503.
    match tokio_tungstenite::connect_async(&g.ws).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("second client was not refused: {other:?}"),
    }
    // Results published after the client connected reach it.
    let r = result("live", false);
    let recv = async {
        loop {
            publish(&g, &r).await;
            if let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
                return msg;
            }
        }
    };
    let msg = tokio::time::timeout(Duration::from_secs(10), recv)
        .await
        .expect("an event arrives");
    let v: serde_json::Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
    assert_eq!(v["type"], "check_result");
    assert_eq!(v["data"]["target_id"], "live");
    assert_eq!(v["data"]["status"], "down");
    // Closing frees the slot.
    ws.close(None).await.unwrap();
    drop(ws);
    eventually(|| async { tokio_tungstenite::connect_async(&g.ws).await.is_ok() }).await;
}

/// A component that fails: a store (essential) or not.
struct Down {
    essential: bool,
}

#[async_trait::async_trait]
impl ReadinessCheck for Down {
    async fn check(&self) -> Result<(), String> {
        Err("connection refused".into())
    }

    fn essential(&self) -> bool {
        self.essential
    }
}

#[tokio::test]
async fn health_is_503_naming_the_failing_component() {
    let g = start(|_| {}).await;
    let (code, v) = get_json(&format!("{}/health", g.base)).await;
    // No backend service runs here: degraded (200), each named, none critical.
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "degraded", "{v}");
    for backend in ["collector", "alert-engine", "notifier", "wan-detector"] {
        assert_eq!(v["components"][backend]["status"], "failing", "{v}");
        assert_eq!(v["components"][backend]["critical"], false, "{v}");
    }
    assert_eq!(v["components"]["gateway-store"]["status"], "ok", "{v}");
    assert_eq!(v["components"]["gateway-store"]["critical"], true, "{v}");
    let reasons = v["reasons"].as_array().unwrap();
    assert!(
        reasons.iter().any(|r| r.as_str().unwrap().starts_with("collector: ")),
        "{v}"
    );
    // A failing task or consumer is not a dead store: still degraded, naming it.
    g.ctx
        .health
        .register("collector.tasks", Arc::new(Down { essential: false }));
    let (code, v) = get_json(&format!("{}/health", g.base)).await;
    assert_eq!((code, v["status"].as_str()), (200, Some("degraded")), "{v}");
    assert!(
        v["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "collector.tasks: connection refused"),
        "{v}"
    );
    g.ctx
        .health
        .register("store.collector", Arc::new(Down { essential: true }));
    for path in ["/health", "/api/v1/health", "/readyz"] {
        let (code, v) = get_json(&format!("{}{path}", g.base)).await;
        assert_eq!(code, 503, "{path}: {v}");
        if path != "/readyz" {
            assert_eq!(v["status"], "unhealthy", "{v}");
            assert_eq!(v["reasons"][0], "store.collector: connection refused", "{v}");
        }
        assert_eq!(v["components"]["store.collector"]["error"], "connection refused");
    }
}

#[tokio::test]
async fn websocket_clients_get_what_they_subscribed_to() {
    let g = start(|_| {}).await;
    // Connect-time filter: alerts only.
    let (mut alerts_only, _) = tokio_tungstenite::connect_async(format!("{}?types=alert", g.ws))
        .await
        .unwrap();
    // A bad filter is refused before the upgrade.
    match tokio_tungstenite::connect_async(format!("{}?types=alerts", g.ws)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 400),
        other => panic!("a bad filter was accepted: {other:?}"),
    }
    // Message filter: reboots of r1.
    let (mut reboots, _) = tokio_tungstenite::connect_async(&g.ws).await.unwrap();
    reboots
        .send(tokio_tungstenite::tungstenite::Message::Text(
            r#"{"subscribe": ["reboot"], "filters": {"router": ["r1"]}}"#.into(),
        ))
        .await
        .unwrap();
    let ack = tokio::time::timeout(Duration::from_secs(5), reboots.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(ack.to_text().unwrap()).unwrap()["type"],
        "subscribed"
    );
    reboots
        .send(tokio_tungstenite::tungstenite::Message::Text(
            r#"{"subscribe": ["nope"]}"#.into(),
        ))
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(5), reboots.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let err: serde_json::Value = serde_json::from_str(err.to_text().unwrap()).unwrap();
    assert_eq!(err["type"], "error");
    assert!(err["error"]["message"].as_str().unwrap().contains("nope"), "{err}");

    let alert = v1::AlertEvent {
        alert_id: "a1".into(),
        rule_id: "endpoint_down".into(),
        state: v1::AlertState::Firing.into(),
        severity: v1::Severity::Critical.into(),
        summary: "web is down".into(),
        labels: [("target".to_owned(), "web".to_owned())].into(),
        ..Default::default()
    };
    let reboot = |router: &str| v1::RouterEvent {
        id: format!("{router}-boot"),
        kind: v1::EventKind::Reboot.into(),
        source: router.into(),
        severity: v1::Severity::Warning.into(),
        message: "uptime went backwards".into(),
        ..Default::default()
    };
    // Keep publishing until both clients have theirs (the subscription of
    // the second is asynchronous); each must get only what it asked for.
    let got = async {
        let (mut a, mut r) = (None, None);
        while a.is_none() || r.is_none() {
            publish(&g, &result("web", false)).await;
            publish_proto(g.bus.as_ref(), "pantau.alert.firing.a1", &alert)
                .await
                .unwrap();
            publish_proto(g.bus.as_ref(), "pantau.event.reboot.r2", &reboot("r2"))
                .await
                .unwrap();
            publish_proto(g.bus.as_ref(), "pantau.event.reboot.r1", &reboot("r1"))
                .await
                .unwrap();
            for (ws, slot) in [(&mut alerts_only, &mut a), (&mut reboots, &mut r)] {
                while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(100), ws.next()).await {
                    let v: serde_json::Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
                    slot.get_or_insert_with(Vec::new).push(v);
                }
            }
        }
        (a.unwrap(), r.unwrap())
    };
    let (a, r) = tokio::time::timeout(Duration::from_secs(10), got)
        .await
        .expect("both clients get events");
    assert!(
        a.iter().all(|v| v["type"] == "alert"
            && v["data"]["severity"] == "critical"
            // The REST alert's shape: `id`, `resource`, `started_at`.
            && v["data"]["id"] == "a1"
            && v["data"]["resource"] == "web"
            && v["data"].get("started_at").is_some()),
        "{a:?}"
    );
    assert!(
        r.iter().all(|v| v["type"] == "reboot" && v["data"]["source"] == "r1"),
        "{r:?}"
    );
}
