//! Alerts raised by hand, `POST /api/v1/monitoring/alerts`: the route
//! against the real alert engine in one process (answers, hostile bodies,
//! the WebSocket), and `pantau all` as users run it (the page and its resolve
//! reach a webhook, the write is audited, the gRPC call is on /metrics).

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pantau_core::bus::Bus;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::service::Context;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::gateway_routes::{Api, engine_config, engine_ready, eventually};
use crate::support::{Pantau, Ports, Sink, config_yaml, http, metric_value};

fn backup() -> Value {
    json!({
        "severity": "critical",
        "source": "backup-job",
        "title": "Nightly backup failed",
        "message": "tar exited 2\nsee /var/log/backup.log",
        "resource": "db-1",
        "labels": {"team": "ops"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_alert_through_the_gateway_route() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc.local_addr().unwrap();
    let mut cfg = engine_config(dir.path());
    cfg.gateway.auth.enabled = false;
    cfg.gateway.alert_engine_url = format!("http://{grpc_addr}");
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(cfg), Arc::clone(&bus));
    let engine = tokio::spawn(pantau_alert_engine::run(ctx.clone(), grpc));
    engine_ready(&ctx, grpc_addr).await;
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = web.local_addr().unwrap();
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{addr}"),
    };
    let gateway = tokio::spawn(pantau_gateway::run(ctx.clone(), web));
    let url = format!("ws://{addr}/api/v1/monitoring/events?types=alert");
    let (mut ws, _) = eventually("the gateway's WebSocket", || {
        let url = url.clone();
        async move { tokio_tungstenite::connect_async(url).await.ok() }
    })
    .await;

    // Raised: 201, firing, as a rule's alert looks.
    let a = api
        .post("/api/v1/monitoring/alerts", &backup(), StatusCode::CREATED)
        .await;
    let id = a["id"].as_str().unwrap().to_owned();
    assert_eq!(a["rule_id"], "manual", "{a}");
    assert_eq!(a["rule_name"], "Nightly backup failed");
    assert_eq!(a["state"], "firing");
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["summary"], "tar exited 2\nsee /var/log/backup.log");
    assert_eq!(
        (a["source"].as_str(), a["resource"].as_str()),
        (Some("backup-job"), Some("db-1"))
    );
    assert_eq!(a["labels"]["team"], "ops");

    // On the WebSocket like any alert.
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await.expect("the socket stays open").unwrap() {
                Ws::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "alert" && v["data"]["id"] == id.as_str() {
                        break v;
                    }
                }
                Ws::Ping(p) => ws.send(Ws::Pong(p)).await.unwrap(),
                _ => {}
            }
        }
    })
    .await
    .expect("the alert reaches the WebSocket client");
    assert_eq!(event["data"]["state"], "firing", "{event}");
    assert_eq!(event["data"]["resource"], "db-1", "{event}");

    // The same again while open: 200, the same alert.
    let again = api.post("/api/v1/monitoring/alerts", &backup(), StatusCode::OK).await;
    assert_eq!(again["id"], id.as_str());
    let listed = api
        .get("/api/v1/monitoring/alerts?rule_id=manual&state=firing", StatusCode::OK)
        .await;
    assert_eq!(listed["alerts"].as_array().unwrap().len(), 1, "{listed}");
    // Only a person resolves it.
    let r = api
        .post(
            &format!("/api/v1/monitoring/alerts/{id}/resolve"),
            &json!({"actor": "dina", "comment": "restored"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        (r["state"].as_str(), r["resolved_by"].as_str()),
        (Some("resolved"), Some("dina"))
    );
    let a2 = api
        .post("/api/v1/monitoring/alerts", &backup(), StatusCode::CREATED)
        .await;
    assert_ne!(a2["id"], id.as_str(), "once resolved, a new alert");

    // Hostile bodies: 400 naming the field, nothing raised, nothing echoed in full.
    let huge = "x".repeat(100_000);
    let with = |k: &str, v: Value| {
        let mut b = backup();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = backup();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (without("severity"), "severity"),
        (with("severity", json!("fatal")), "severity"),
        (with("severity", json!(3)), "severity"),
        (with("severity", json!(null)), "severity"),
        (without("title"), "title"),
        (with("title", json!("")), "title"),
        (with("title", json!("two\nlines")), "title"),
        (with("title", json!("bell\u{7}")), "title"),
        (with("title", json!(huge)), "title"),
        (with("title", json!(["a"])), "title"),
        (with("message", json!(huge.repeat(2))), "message"),
        (with("message", json!("esc\u{1b}[31m")), "message"),
        (with("source", json!(huge)), "source"),
        (with("resource", json!({"a": 1})), "resource"),
        (with("labels", json!({"not a name": "v"})), "labels"),
        (with("labels", json!({"team": 7})), "labels"),
        (with("labels", json!({"team": "a\nb"})), "labels.team"),
        (with("labels", json!("team=ops")), "labels"),
        (with("expires_in", json!("1h")), "expires_in"),
        (json!([1, 2, 3]), "invalid type"),
        (json!("garbage"), "invalid type"),
    ];
    for (body, field) in cases {
        let v = api
            .post("/api/v1/monitoring/alerts", &body, StatusCode::BAD_REQUEST)
            .await;
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(v["error"]["code"], "invalid_argument", "{v}");
        assert!(msg.contains(field), "{field} not named in {msg}");
        assert!(msg.len() < 2_000, "bounded: {} bytes", msg.len());
    }
    let r = api
        .http
        .post(format!("{}/api/v1/monitoring/alerts", api.base))
        .header("content-type", "text/plain")
        .body("severity=critical")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = api
        .http
        .post(format!("{}/api/v1/monitoring/alerts", api.base))
        .header("content-type", "application/json")
        .body("{\"severity\": \"critical\", \"title\": \u{0}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = api
        .http
        .post(format!("{}/api/v1/monitoring/alerts", api.base))
        // The server answers before reading the whole body and closes the
        // connection: not one for the pool to hand the next request.
        .header("connection", "close")
        .json(&with("message", json!("m".repeat(2 << 20))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let listed = api
        .get("/api/v1/monitoring/alerts?rule_id=manual", StatusCode::OK)
        .await;
    assert_eq!(listed["alerts"].as_array().unwrap().len(), 2, "only the two valid ones");

    ctx.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), gateway).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), engine).await;
}

/// The first notification of `status` for a `team: ops` alert.
async fn wait_for(sink: &Sink, status: &str, p: &mut Pantau) -> Value {
    sink.wait(
        Duration::from_secs(60),
        |d| {
            d.body["notification"]["status"] == status && d.body["notification"]["alerts"][0]["labels"]["team"] == "ops"
        },
        p,
    )
    .await
    .body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_alert_reaches_a_webhook_under_pantau_all() {
    let (hook, hook_addr) = Sink::start().await;
    let hook_port = hook_addr.port();
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let yaml = config_yaml(ports, &dir.path().join("data"), None).replace(
        "notifier:\n",
        &format!(
            "notifier:\n  poll_interval: 100ms\n  channels:\n    - {{ name: hook, type: webhook, url: 'http://127.0.0.1:{hook_port}/hook' }}\n  routes:\n    - {{ labels: {{ team: ops }}, channels: [hook] }}\n"
        ),
    );
    let cfg = dir.path().join("pantau.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let mut p = Pantau::start_with_env(dir.path(), &cfg, &["all"], &ports.other_services_env());
    let gw = format!("http://127.0.0.1:{}", ports.gateway);

    let created = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(r) = http()
                .post(format!("{gw}/api/v1/monitoring/alerts"))
                .json(&backup())
                .send()
                .await
                // 200: an earlier attempt raised it, though its answer was
                // lost (a client timeout on a loaded machine): the same alert.
                && (r.status() == StatusCode::CREATED || r.status() == StatusCode::OK)
            {
                break r.json::<Value>().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the alert is raised within a minute:\n{}", p.log()));
    let id = created["id"].as_str().unwrap().to_owned();

    let page = wait_for(&hook, "firing", &mut p).await;
    let alert = &page["notification"]["alerts"][0];
    assert_eq!(alert["labels"]["team"], "ops", "{page}");
    assert!(page.to_string().contains("Nightly backup failed"), "{page}");

    let r = http()
        .post(format!("{gw}/api/v1/monitoring/alerts/{id}/resolve"))
        .json(&json!({"comment": "restored"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    wait_for(&hook, "resolved", &mut p).await;

    // Audited in the gateway's log, as the token's subject.
    let audit: Value = http()
        .get(format!("{gw}/api/v1/audit?limit=200"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().cloned().unwrap_or_default();
    assert!(
        entries
            .iter()
            .any(|e| e["method"] == "POST" && e["path"] == "/api/v1/monitoring/alerts" && e["actor"] == "e2e"),
        "{audit}"
    );
    // The gRPC call behind it, counted by method.
    let text = http()
        .get(format!("http://127.0.0.1:{}/metrics", ports.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric_value(
            &text,
            "grpc_server_handled_total",
            r#"grpc_service="pantau.v1.AlertEngineService",grpc_method="CreateAlert",grpc_code="OK""#
        ),
        Some(1.0),
        "{}",
        text.lines()
            .filter(|l| l.contains("CreateAlert"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        text.contains("pantau_db_query_duration_seconds_bucket{service=\"alert-engine\""),
        "the alert engine's store is measured"
    );
    assert!(p.terminate().success(), "{}", p.log());
}
