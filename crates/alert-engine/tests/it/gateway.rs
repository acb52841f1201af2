//! The gateway's alert routes against the real alert engine over gRPC: list
//! with filters, get with the audit trail, acknowledge, resolve, rules; errors
//! as `{"error": {"code", "message"}}` with the HTTP status of the gRPC code.

use std::sync::Arc;
use std::time::Duration;

use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, publish_proto, subject};
use pantau_core::service::Context;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::service::{check, config, ready};

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

    async fn post(&self, path: &str, body: &Value, want: StatusCode) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, want, "POST {path}: {body}");
        body
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_routes_through_the_gateway() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc.local_addr().unwrap();
    let mut cfg = config(dir.path());
    // The alert routes are under test here; the gateway's auth has its own tests.
    cfg.gateway.auth.enabled = false;
    cfg.gateway.alert_engine_url = format!("http://{grpc_addr}");
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(cfg), Arc::clone(&bus));
    let engine = tokio::spawn(pantau_alert_engine::run(ctx.clone(), grpc));
    ready(grpc_addr).await;
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{}", web.local_addr().unwrap()),
    };
    let gateway = tokio::spawn(pantau_gateway::run(ctx.clone(), web));

    publish_proto(
        bus.as_ref(),
        &subject::check_result("jkt", "closed"),
        &check("closed", false),
    )
    .await
    .unwrap();
    let firing = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let v = api.get("/api/v1/monitoring/alerts?state=firing", StatusCode::OK).await;
            if v["alerts"].as_array().is_some_and(|a| !a.is_empty()) {
                break v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the alert fires");
    let alert = &firing["alerts"][0];
    let id = alert["id"].as_str().unwrap().to_owned();
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["resource"], "closed");
    assert_eq!(alert["summary"], "closed is down from jkt");
    assert_eq!(alert["acknowledged"], false);

    let v = api.get("/api/v1/monitoring/alerts?severity=info", StatusCode::OK).await;
    assert_eq!(v["alerts"], json!([]));
    let v = api
        .get("/api/v1/monitoring/alerts?severity=critical,warning&resource=closed&acknowledged=false&since=2020-01-01T00:00:00Z&limit=10", StatusCode::OK)
        .await;
    assert_eq!(v["alerts"].as_array().unwrap().len(), 1);
    let v = api
        .get("/api/v1/monitoring/alerts?state=burning", StatusCode::BAD_REQUEST)
        .await;
    assert_eq!(v["error"]["code"], "invalid_query");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("state `burning`"),
        "{v}"
    );
    let v = api
        .get("/api/v1/monitoring/alerts?since=yesterday", StatusCode::BAD_REQUEST)
        .await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("since `yesterday`"),
        "{v}"
    );

    let v = api
        .post(
            &format!("/api/v1/monitoring/alerts/{id}/acknowledge"),
            &json!({"comment": 5}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(v["error"]["code"], "invalid_body");
    assert!(v["error"]["message"].as_str().unwrap().contains("comment"), "{v}");
    let v = api
        .post(
            &format!("/api/v1/monitoring/alerts/{id}/acknowledge"),
            &json!({"actor": "dina", "comment": "checking"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        (v["state"].as_str(), v["acknowledged_by"].as_str()),
        (Some("acknowledged"), Some("dina"))
    );
    let v = api
        .post(
            &format!("/api/v1/monitoring/alerts/{id}/acknowledge"),
            &json!({"actor": "budi"}),
            StatusCode::CONFLICT,
        )
        .await;
    assert_eq!(v["error"]["code"], "failed_precondition");
    let v = api
        .post(
            "/api/v1/monitoring/alerts/nope/resolve",
            &json!({"actor": "budi"}),
            StatusCode::NOT_FOUND,
        )
        .await;
    assert_eq!(v["error"]["code"], "not_found");
    let v = api
        .get("/api/v1/monitoring/alerts?acknowledged=true", StatusCode::OK)
        .await;
    assert_eq!(v["alerts"][0]["acknowledged_by"], "dina");
    api.post(
        &format!("/api/v1/monitoring/alerts/{id}/resolve"),
        &json!({"actor": "dina", "comment": "port opened"}),
        StatusCode::OK,
    )
    .await;
    let v = api
        .get(&format!("/api/v1/monitoring/alerts/{id}"), StatusCode::OK)
        .await;
    assert_eq!(v["state"], "resolved");
    assert_eq!(v["resolved_by"], "dina");
    let trail: Vec<(&str, &str)> = v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["state"].as_str().unwrap(), t["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(trail, [("firing", ""), ("acknowledged", "dina"), ("resolved", "dina")]);
    api.get("/api/v1/monitoring/alerts/missing", StatusCode::NOT_FOUND)
        .await;

    // Rules.
    let v = api
        .post(
            "/api/v1/monitoring/alerts/rules",
            &json!({"id": "cpu", "expr": "cpu_usage >> 80"}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(v["error"]["code"], "invalid_argument");
    assert_eq!(
        v["error"]["message"],
        "rule `cpu` does not parse at column 12: expected a number, a string, a metric, `not` or `(`, found `>`"
    );
    let v = api
        .post(
            "/api/v1/monitoring/alerts/rules",
            &json!({"id": "cpu", "expr": "cpu_usage > 80", "for": "5m", "severity": "warning"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        (v["id"].as_str(), v["for"].as_str(), v["origin"].as_str()),
        (Some("cpu"), Some("5m"), Some("api"))
    );
    let v = api
        .post(
            "/api/v1/monitoring/alerts/rules",
            &json!({"id": "x", "expr": "a > 1", "severty": "info"}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(v["error"]["message"].as_str().unwrap().contains("severty"), "{v}");
    let v = api.get("/api/v1/monitoring/alerts/rules", StatusCode::OK).await;
    assert_eq!(v["rules"].as_array().unwrap().len(), 2);
    let r = api
        .http
        .delete(format!("{}/api/v1/monitoring/alerts/rules/cpu", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // Silences.
    let v = api
        .post(
            "/api/v1/monitoring/silences",
            &json!({"matchers": [], "ends_at": "2099-01-01T00:00:00Z", "created_by": "dina"}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(v["error"]["message"], "a silence needs at least one matcher");
    let v = api
        .post(
            "/api/v1/monitoring/silences",
            &json!({"matchers": [{"label": "target", "value": "closed"}], "ends_at": "soon", "created_by": "dina"}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("ends_at `soon`"),
        "{v}"
    );
    let s = api
        .post(
            "/api/v1/monitoring/silences",
            &json!({"matchers": [{"label": "target", "value": "closed"}], "ends_at": "2099-01-01T00:00:00Z", "created_by": "dina", "comment": "maintenance"}),
            StatusCode::OK,
        )
        .await;
    let sid = s["id"].as_str().unwrap().to_owned();
    assert_eq!(s["matchers"][0]["label"], "target");
    let v = api.get("/api/v1/monitoring/silences", StatusCode::OK).await;
    assert_eq!(v["silences"].as_array().unwrap().len(), 1);
    let r = api
        .http
        .delete(format!("{}/api/v1/monitoring/silences/{sid}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v = api.get("/api/v1/monitoring/silences", StatusCode::OK).await;
    assert_eq!(v["silences"], json!([]));
    let v = api
        .get("/api/v1/monitoring/silences?include_expired=true", StatusCode::OK)
        .await;
    assert_eq!(v["silences"][0]["id"], sid.as_str());
    let v = api
        .post(
            "/api/v1/monitoring/silences",
            &json!({"matchers": [{"label": "alertname", "value": "closed-port"}], "ends_at": "2099-01-01T01:00:00Z",
                    "starts_at": "2099-01-01T00:00:00Z", "created_by": "dina", "repeat_every": "1d"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(v["repeat_every"], "1day");
    let v = api
        .post(
            "/api/v1/monitoring/silences",
            &json!({"matchers": [{"label": "alertname", "value": "x"}], "ends_at": "2099-01-01T01:00:00Z",
                    "starts_at": "2099-01-01T00:00:00Z", "created_by": "dina", "repeat_every": "30m"}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("repeat_every must be at least 1m and at least as long as the window"),
        "{v}"
    );
    let r = api
        .http
        .delete(format!("{}/api/v1/monitoring/silences/nope", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Both stop on shutdown.
    ctx.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), engine)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), gateway)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_alert_engine_is_a_503() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let mut cfg = config(dir.path());
    // The alert routes are under test here; the gateway's auth has its own tests.
    cfg.gateway.auth.enabled = false;
    cfg.gateway.alert_engine_url = format!("http://{closed_addr}");
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(cfg), bus);
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{}", web.local_addr().unwrap()),
    };
    let gateway = tokio::spawn(pantau_gateway::run(ctx.clone(), web));
    let v = tokio::time::timeout(
        Duration::from_secs(15),
        api.get("/api/v1/monitoring/alerts", StatusCode::SERVICE_UNAVAILABLE),
    )
    .await
    .expect("an answer, not a hang");
    assert_eq!(v["error"]["code"], "unavailable");
    assert_eq!(v["error"]["message"], "the alert engine is unavailable; try again");
    ctx.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), gateway)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
