//! A PostgreSQL outage under a running `pantau all` (every service's store
//! on one real PostgreSQL from the testkit): `/health` says `degraded` with
//! the reason while every check fails, `unhealthy` while the store is down, and every write sent through REST meanwhile answers
//! truthfully — a 2xx is applied, an error is not applied later, not even
//! once the database is back (an acknowledge that answered 503 used to be
//! applied after recovery).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::support::{JWT_SECRET, Pantau, Ports, token};

const WAIT: Duration = Duration::from_secs(60);

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        match self.try_call(method, path, body).await {
            Ok(answer) => answer,
            Err(e) => panic!("{path}: no answer at all: {e}"),
        }
    }

    async fn try_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await?;
        let code = r.status();
        Ok((code, r.json().await.unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str) -> Value {
        let (code, v) = self.call(Method::GET, path, None).await;
        assert_eq!(code, StatusCode::OK, "{path}: {v}");
        v
    }

    /// Polls `path` until `ok` holds.
    async fn until(&self, path: &str, p: &mut Pantau, ok: impl Fn(StatusCode, &Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            p.assert_running();
            // Not answering yet (the gateway still starting) is "not yet"
            // here; the calls that must be answered use `call`.
            let (code, v) = match self.try_call(Method::GET, path, None).await {
                Ok(answer) => answer,
                Err(e) => (StatusCode::BAD_GATEWAY, Value::String(e.to_string())),
            };
            if ok(code, &v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{path}: last {code} {v}\n{}", p.log());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn config(ports: Ports, data: &std::path::Path, db: &str, closed: [u16; 2]) -> String {
    format!(
        "listen_host: 127.0.0.1
data_dir: {data}
admin_port: {admin}
shutdown_grace: 5s
log: {{ format: json, level: info }}
database: {{ url: '{db}' }}
collector:
  grpc_port: {cgrpc}
  admin_port: {cadmin}
  interval: 1s
  timeout: 500ms
  targets:
    - {{ id: closed-a, type: tcp, address: '127.0.0.1:{a}' }}
    - {{ id: closed-b, type: tcp, address: '127.0.0.1:{b}' }}
gateway:
  port: {gw}
  collector_url: http://127.0.0.1:{cgrpc}
  auth: {{ jwt_secret: {JWT_SECRET} }}
alert_engine:
  sweep_interval: 1s
  default_rules: false
  rules:
    - {{ id: closed, expr: 'check_up == 0', severity: critical, message: 'down' }}
",
        data = data.display(),
        admin = ports.admin,
        cgrpc = ports.collector_grpc,
        cadmin = ports.collector_admin,
        gw = ports.gateway,
        a = closed[0],
        b = closed[1],
    )
}

/// One write sent during the outage, and how to see whether it was applied.
struct Write {
    what: &'static str,
    status: StatusCode,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_a_postgres_outage_answer_truthfully() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut pg = pantau_testkit::Postgres::start().await.expect("PostgreSQL starts");
    let db = pg.create_database("outage").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let closed = [pantau_testkit::free_port(), pantau_testkit::free_port()];
    let cfg = dir.path().join("pantau.yaml");
    std::fs::write(&cfg, config(ports, &dir.path().join("data"), &db, closed)).unwrap();
    let mut p = Pantau::start_with_env(dir.path(), &cfg, &["all"], &ports.other_services_env());
    // Each store call waits for a connection up to the pool's acquire
    // timeout (5 s) during the outage, and a write makes two (the service's,
    // then the gateway's audit entry): answers take about 10 s, but come
    // from the services, not from a timeout.
    let api = Api {
        base: format!("http://127.0.0.1:{}", ports.gateway),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(40))
            .default_headers(
                [(
                    reqwest::header::AUTHORIZATION,
                    format!("Bearer {}", token()).parse().unwrap(),
                )]
                .into_iter()
                .collect(),
            )
            .build()
            .unwrap(),
    };
    // Both targets' alerts fire.
    let firing = api
        .until("/api/v1/monitoring/alerts?state=firing", &mut p, |c, v| {
            c == StatusCode::OK && v["alerts"].as_array().is_some_and(|a| a.len() == 2)
        })
        .await;
    let id = |target: &str| {
        firing["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["target"] == target)
            .unwrap_or_else(|| panic!("no alert of {target}: {firing}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (a, b) = (id("closed-a"), id("closed-b"));
    // Every check fails: the collector works badly, which is degraded (200)
    // with the reason, not healthy and not unhealthy.
    let health = api
        .until("/api/v1/health", &mut p, |c, v| {
            c == StatusCode::OK && v["status"] == "degraded"
        })
        .await;
    assert!(
        health["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("collector.checks: critical")),
        "{health}"
    );

    pg.stop().await.unwrap();
    // The store is down: unhealthy, naming it.
    let health = api
        .until("/api/v1/health", &mut p, |c, v| {
            c == StatusCode::SERVICE_UNAVAILABLE && v["status"] == "unhealthy"
        })
        .await;
    assert!(
        health["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("store")),
        "{health}"
    );

    let mut writes = Vec::new();
    let mut send = async |what: &'static str, method: Method, path: String, body: Value| {
        let started = Instant::now();
        let (status, v) = api.call(method, &path, Some(body)).await;
        eprintln!("{what}: {status} after {:?}: {v}", started.elapsed());
        assert!(
            status.is_success() || status == StatusCode::SERVICE_UNAVAILABLE,
            "{what}: a store outage answers 2xx or 503, not {status}: {v}"
        );
        writes.push(Write { what, status });
    };
    send(
        "acknowledge",
        Method::POST,
        format!("/api/v1/monitoring/alerts/{a}/acknowledge"),
        json!({"comment": "during the outage"}),
    )
    .await;
    send(
        "resolve",
        Method::POST,
        format!("/api/v1/monitoring/alerts/{b}/resolve"),
        json!({"comment": "during the outage"}),
    )
    .await;
    send(
        "rule",
        Method::POST,
        "/api/v1/monitoring/alerts/rules".into(),
        json!({"id": "outage-rule", "expr": "cpu_usage > 99"}),
    )
    .await;
    send(
        "silence",
        Method::POST,
        "/api/v1/monitoring/silences".into(),
        json!({"matchers": [{"label": "target", "value": "outage"}], "ends_at": "2099-01-01T00:00:00Z", "created_by": "ops"}),
    )
    .await;
    send(
        "target",
        Method::POST,
        "/api/v1/targets".into(),
        json!({"id": "outage-target", "type": "tcp", "address": "127.0.0.1:9"}),
    )
    .await;
    send(
        "user",
        Method::POST,
        "/api/v1/users".into(),
        json!({"username": "outage-user", "password": "a long enough password", "role": "viewer"}),
    )
    .await;

    pg.start_again().await.unwrap();
    api.until("/api/v1/health", &mut p, |c, v| {
        c == StatusCode::OK && v["components"]["alert-engine"]["status"] == "ok"
    })
    .await;
    // Long enough for anything held back to be applied (several sweeps).
    tokio::time::sleep(Duration::from_secs(5)).await;

    let alert = |id: String| {
        let api = &api;
        async move { api.get(&format!("/api/v1/monitoring/alerts/{id}")).await }
    };
    let applied = async |what: &str| -> bool {
        match what {
            "acknowledge" => alert(a.clone()).await["acknowledged_by"] != "",
            "resolve" => alert(b.clone()).await["state"] == "resolved",
            "rule" => api.get("/api/v1/monitoring/alerts/rules").await["rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == "outage-rule"),
            "silence" => !api.get("/api/v1/monitoring/silences").await["silences"]
                .as_array()
                .unwrap()
                .is_empty(),
            "target" => api.get("/api/v1/targets").await["targets"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["id"] == "outage-target"),
            "user" => api.get("/api/v1/users").await["users"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["username"] == "outage-user"),
            other => unreachable!("{other}"),
        }
    };
    let mut lies = Vec::new();
    for w in &writes {
        let done = applied(w.what).await;
        if done != w.status.is_success() {
            lies.push(format!("{} answered {} but applied = {done}", w.what, w.status));
        }
    }
    assert!(lies.is_empty(), "{lies:?}\n{}", p.log());
    // With the store back, the same writes go through.
    let (code, v) = api
        .call(
            Method::POST,
            &format!("/api/v1/monitoring/alerts/{a}/acknowledge"),
            Some(json!({"comment": "after"})),
        )
        .await;
    if writes[0].status.is_success() {
        assert_eq!(code, StatusCode::CONFLICT, "{v}");
    } else {
        assert_eq!(code, StatusCode::OK, "{v}");
    }
    p.assert_running();
}
