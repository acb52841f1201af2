//! The REST API of a real `pantau all`, route by route, happy and bad input,
//! with a token minted by `pantau token create`; and its OpenAPI document,
//! checked by openapi-spec-validator.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Pantau, Ports, both_up, config_yaml, http, wait_json};

const SOON: Duration = Duration::from_secs(20);

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let code = resp.status();
        let text = resp.text().await.unwrap();
        (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    /// A 400 whose message names `field`.
    async fn bad(&self, method: Method, path: &str, body: Option<Value>, field: &str) {
        let (code, v) = self.call(method, path, body).await;
        assert_eq!(code, 400, "{path}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(field), "{path}: the error does not name `{field}`: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_and_bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let config = config_yaml(ports, &dir.path().join("data"), None).replacen(
        "  interval: 1s\n",
        "  interval: 1s\n  history:\n    flush_interval: 1s\n",
        1,
    );
    let mut p = Pantau::start(dir.path(), &config, &["all"]);
    let api = Api {
        base: format!("http://127.0.0.1:{}", ports.gateway),
        client: http(),
    };
    wait_json(&format!("{}/api/v1/results/latest", api.base), SOON, both_up, &mut p).await;

    // Health: every backend answers gRPC health in `pantau all`.
    let (code, v) = api.get("/api/v1/health").await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "healthy", "{v}");
    for c in [
        "collector",
        "alert-engine",
        "notifier",
        "wan-detector",
        "bus",
        "gateway-store",
    ] {
        assert_eq!(v["components"][c]["status"], "ok", "{c}: {v}");
    }

    // Targets: create, read, run, replace, delete; configured ones are the file's.
    let addr = format!("127.0.0.1:{}", ports.collector_grpc);
    let (code, v) = api
        .call(
            Method::POST,
            "/api/v1/targets",
            Some(json!({"id": "api-tcp", "type": "tcp", "address": addr, "labels": {"team": "net"}})),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["source"].as_str(), v["type"].as_str()),
        (Some("api"), Some("tcp")),
        "{v}"
    );
    let (_, v) = api.get("/api/v1/targets").await;
    let ids: Vec<_> = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert!(
        ids.contains(&json!("api-tcp")) && ids.contains(&json!("collector-grpc")),
        "{v}"
    );
    let (code, v) = api.call(Method::POST, "/api/v1/targets/api-tcp/check", None).await;
    assert_eq!((code.as_u16(), v["status"].as_str()), (200, Some("up")), "{v}");
    pause_and_resume(&api).await;
    dependencies(&api, &addr).await;
    http_steps_over_rest(&api).await;
    let (code, v) = api
        .call(
            Method::PUT,
            "/api/v1/targets/api-tcp",
            Some(json!({"type": "tcp", "address": addr, "interval": "5s"})),
        )
        .await;
    assert_eq!((code.as_u16(), v["interval"].as_str()), (200, Some("5s")), "{v}");
    api.bad(
        Method::POST,
        "/api/v1/targets",
        Some(json!({"id": "x", "type": "tcp"})),
        "address",
    )
    .await;
    api.bad(
        Method::POST,
        "/api/v1/targets",
        Some(json!({"id": "x", "type": "tcp", "address": addr, "colour": "red"})),
        "colour",
    )
    .await;
    api.bad(
        Method::POST,
        "/api/v1/targets",
        Some(json!({"id": "x", "type": "gopher"})),
        "gopher",
    )
    .await;
    api.bad(
        Method::PUT,
        "/api/v1/targets/api-tcp",
        Some(json!({"id": "other", "type": "tcp", "address": addr})),
        "other",
    )
    .await;
    let (code, v) = api.call(Method::DELETE, "/api/v1/targets/collector-grpc", None).await;
    assert_eq!(code, 409, "a configured target cannot be deleted here: {v}");
    let (code, _) = api.call(Method::DELETE, "/api/v1/targets/api-tcp", None).await;
    assert_eq!(code, 204);
    let (code, v) = api.get("/api/v1/targets/api-tcp").await;
    assert_eq!(code, 404, "{v}");
    assert_eq!(v["error"]["code"], "not_found");

    // History and performance, from the rolled-up history.
    let v = wait_json(
        &format!("{}/api/v1/targets/collector-grpc/history?period=1h", api.base),
        SOON,
        |v| v["checks"].as_u64().is_some_and(|c| c > 0),
        &mut p,
    )
    .await;
    assert_eq!(v["resolution"], "minute", "{v}");
    assert!(v["uptime_percent"].as_f64().unwrap() > 0.0, "{v}");
    api.bad(
        Method::GET,
        "/api/v1/targets/collector-grpc/history?period=soon",
        None,
        "period",
    )
    .await;
    api.bad(
        Method::GET,
        "/api/v1/targets/collector-grpc/history?resolution=second",
        None,
        "second",
    )
    .await;
    let (code, v) = api.get("/api/v1/monitoring/performance?period=1h&metric=uptime").await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["unit"].as_str(), v["targets"].as_u64()),
        (Some("percent"), Some(2)),
        "{v}"
    );
    assert_eq!(
        v["timestamps"].as_array().unwrap().len(),
        v["values"].as_array().unwrap().len()
    );
    assert!(!v["values"].as_array().unwrap().is_empty(), "{v}");
    let (code, v) = api
        .get("/api/v1/monitoring/performance?period=1h&metric=response_time&target=collector-grpc")
        .await;
    assert_eq!((code.as_u16(), v["targets"].as_u64()), (200, Some(1)), "{v}");
    api.bad(
        Method::GET,
        "/api/v1/monitoring/performance?metric=happiness",
        None,
        "happiness",
    )
    .await;

    sla_report(&api).await;

    // Custom metrics: published on the bus, and back in the current metrics.
    let sample = json!({"metric_name": "queue_depth", "value": 7.5, "labels": {"queue": "billing"}});
    let (code, v) = api.call(Method::POST, "/api/v1/monitoring/metrics", Some(sample)).await;
    assert_eq!((code.as_u16(), v["accepted"].as_u64()), (202, Some(1)), "{v}");
    let v = wait_json(
        &format!("{}/api/v1/monitoring/metrics", api.base),
        SOON,
        |v| {
            v["custom"]
                .as_array()
                .is_some_and(|c| c.iter().any(|m| m["name"] == "queue_depth"))
        },
        &mut p,
    )
    .await;
    let m = v["custom"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "queue_depth")
        .unwrap();
    assert_eq!(
        (m["value"].as_f64(), m["source"].as_str()),
        (Some(7.5), Some("api:e2e")),
        "{v}"
    );
    assert!(v["business"]["results"].as_u64().unwrap() >= 2, "{v}");
    assert!(v["application"]["uptime_seconds"].is_u64(), "{v}");
    api.bad(
        Method::POST,
        "/api/v1/monitoring/metrics",
        Some(json!({"metric_name": "9lives", "value": 1})),
        "metric_name",
    )
    .await;
    api.bad(
        Method::POST,
        "/api/v1/monitoring/metrics",
        Some(json!({"metric_name": "ok", "value": 1, "labels": {"bad-label": "x"}})),
        "bad-label",
    )
    .await;

    // Alerts, channels and deliveries through their services.
    let (code, v) = api.get("/api/v1/monitoring/alerts?state=firing&limit=10").await;
    assert_eq!(code, 200, "{v}");
    api.bad(
        Method::GET,
        "/api/v1/monitoring/alerts?severity=apocalyptic",
        None,
        "apocalyptic",
    )
    .await;
    let (code, v) = api.get("/api/v1/channels").await;
    assert_eq!(code, 200, "{v}");
    let (code, v) = api
        .call(Method::POST, "/api/v1/channels/no-such-channel/test", None)
        .await;
    assert_eq!(code, 404, "{v}");
    let (code, v) = api.get("/api/v1/deliveries?limit=5").await;
    assert_eq!(code, 200, "{v}");
    api.bad(Method::GET, "/api/v1/deliveries?status=lost", None, "lost")
        .await;

    // The OpenAPI document is public and valid.
    let doc = reqwest::get(format!("{}/api/v1/openapi.json", api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &doc).unwrap();
    let validator =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-deploy/bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "{} is missing: run `make deps-deploy` (PyPI package openapi-spec-validator)",
        validator.display()
    );
    let out = std::process::Command::new(&validator).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "the OpenAPI document does not validate:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    p.assert_running();
}

/// Pause and resume of `api-tcp`: the view says who and why, hostile bodies
/// are refused naming the field, and both writes are audited.
async fn pause_and_resume(api: &Api) {
    let path = "/api/v1/targets/api-tcp/pause";
    let (code, v) = api
        .call(Method::POST, path, Some(json!({"reason": "switch swap"})))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["paused"]["reason"], "switch swap", "{v}");
    assert!(v["paused"]["since"].as_str().is_some_and(|s| s.ends_with('Z')), "{v}");
    assert!(!v["paused"]["by"].as_str().unwrap_or_default().is_empty(), "{v}");
    let (_, v) = api.get("/api/v1/targets/api-tcp").await;
    assert_eq!(v["paused"]["reason"], "switch swap", "{v}");
    api.bad(Method::POST, path, Some(json!({"reason": "x".repeat(501)})), "reason")
        .await;
    api.bad(Method::POST, path, Some(json!({"why": "no"})), "why").await;
    api.bad(Method::POST, path, Some(json!({"reason": 5})), "invalid type")
        .await;
    api.bad(Method::POST, "/api/v1/targets/bad%20id/pause", None, "target id")
        .await;
    let (code, v) = api.call(Method::POST, "/api/v1/targets/nope/pause", None).await;
    assert_eq!(code, 404, "{v}");
    let (code, v) = api.call(Method::POST, "/api/v1/targets/api-tcp/resume", None).await;
    assert_eq!(code, 200, "{v}");
    assert!(v["paused"].is_null(), "{v}");
    let (_, v) = api.get("/api/v1/audit?limit=200").await;
    let paths: Vec<(&str, i64)> = v["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .filter_map(|e| Some((e["path"].as_str()?, e["status"].as_i64()?)))
        .collect();
    for want in ["/api/v1/targets/api-tcp/pause", "/api/v1/targets/api-tcp/resume"] {
        assert!(paths.contains(&(want, 200)), "no audit of {want}: {paths:?}");
    }
}

/// Dependencies through REST: kept in their text form, a bad one named, a
/// cycle refused.
async fn dependencies(api: &Api, addr: &str) {
    let (code, v) = api
        .call(
            Method::POST,
            "/api/v1/targets",
            Some(json!({"id": "dep-a", "type": "tcp", "address": addr, "depends_on": ["api-tcp", "router:core"]})),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["depends_on"], json!(["target:api-tcp", "router:core"]), "{v}");
    api.bad(
        Method::PUT,
        "/api/v1/targets/api-tcp",
        Some(json!({"type": "tcp", "address": addr, "depends_on": ["dep-a"]})),
        "cycle",
    )
    .await;
    api.bad(
        Method::POST,
        "/api/v1/targets",
        Some(json!({"id": "dep-b", "type": "tcp", "address": addr, "depends_on": ["bogus:1"]})),
        "depends_on[0]",
    )
    .await;
    let (code, v) = api.call(Method::DELETE, "/api/v1/targets/dep-a", None).await;
    assert_eq!(code, 204, "{v}");
}

/// The SLA report, as JSON and CSV, with hostile parameters named.
async fn sla_report(api: &Api) {
    let (code, v) = api.get("/api/v1/reports/sla?period=1h&group_by=team").await;
    assert_eq!(code, 200, "{v}");
    let grpc = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "collector-grpc")
        .unwrap_or_else(|| panic!("{v}"));
    assert!(
        grpc["checks"].as_u64().unwrap() > 0 && grpc["uptime_percent"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    assert!(
        v["overall"]["checks"].as_u64().unwrap() >= grpc["checks"].as_u64().unwrap(),
        "{v}"
    );
    // No target is labelled `team` by now: one group holds them all.
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{v}");
    assert_eq!(groups[0]["group"], "team=(none)", "{v}");
    assert_eq!(
        groups[0]["targets"].as_u64(),
        Some(v["targets"].as_array().unwrap().len() as u64),
        "{v}"
    );
    let (code, v) = api.get("/api/v1/reports/sla?period=1h&format=csv").await;
    assert_eq!(code, 200, "{v}");
    let text = v.as_str().unwrap_or_default();
    assert!(
        text.starts_with("kind,id,name,targets,checks,up,uptime_percent\n"),
        "{text}"
    );
    assert!(
        text.contains("\ntarget,collector-grpc,") && text.contains("\noverall,"),
        "{text}"
    );
    api.bad(Method::GET, "/api/v1/reports/sla?format=xml", None, "format")
        .await;
    api.bad(Method::GET, "/api/v1/reports/sla?group_by=", None, "group_by")
        .await;
    api.bad(Method::GET, "/api/v1/reports/sla?period=soon", None, "period")
        .await;
    api.bad(Method::GET, "/api/v1/reports/sla?colour=red", None, "colour")
        .await;
}

/// An `http_steps` target over REST: created, run (UP against a login API in
/// this test, each step in the `http_steps` detail), its credential header
/// masked when read back; bad steps refused naming the key.
async fn http_steps_over_rest(api: &Api) {
    async fn login() -> axum::Json<Value> {
        axum::Json(json!({"token": "tok-9"}))
    }
    async fn me(headers: axum::http::HeaderMap) -> (axum::http::StatusCode, &'static str) {
        if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer tok-9") {
            (axum::http::StatusCode::OK, "hello monitor")
        } else {
            (axum::http::StatusCode::UNAUTHORIZED, "who?")
        }
    }
    let app = axum::Router::new()
        .route("/login", axum::routing::post(login))
        .route("/me", axum::routing::get(me));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let body = |me_auth: &str| {
        json!({"id": "api-steps", "type": "http_steps", "steps": [
            {"name": "login", "method": "POST", "url": format!("{base}/login"),
             "extract": {"token": {"json": "$.token"}}},
            {"name": "me", "url": format!("{base}/me"), "headers": {"authorization": me_auth},
             "conditions": [{"body_contains": "monitor"}]},
        ]})
    };
    let (code, v) = api
        .call(Method::POST, "/api/v1/targets", Some(body("Bearer {{token}}")))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["type"], "http_steps", "{v}");
    assert_eq!(v["steps"][1]["headers"]["authorization"], "***", "masked: {v}");
    let (code, v) = api.call(Method::POST, "/api/v1/targets/api-steps/check", None).await;
    assert_eq!((code.as_u16(), v["status"].as_str()), (200, Some("up")), "{v}");
    assert_eq!(v["http_steps"]["steps"].as_array().map(Vec::len), Some(2), "{v}");
    assert!(v["http_steps"]["steps"][1]["latency_ms"].as_f64().is_some(), "{v}");
    // The token not passed on: the second step fails, by name.
    let (code, _) = api
        .call(Method::PUT, "/api/v1/targets/api-steps", Some(body("Bearer nothing")))
        .await;
    assert_eq!(code, 200);
    let (_, v) = api.call(Method::POST, "/api/v1/targets/api-steps/check", None).await;
    assert_eq!(v["status"], "down", "{v}");
    assert_eq!(v["http_steps"]["failed_step_name"], "me", "{v}");
    assert!(
        v["message"].as_str().unwrap_or_default().starts_with("step 2 (me)"),
        "{v}"
    );
    // Bad steps, each refused naming its key.
    api.bad(
        Method::POST,
        "/api/v1/targets",
        Some(body("Bearer {{tokn}}")),
        "steps[1].headers.authorization",
    )
    .await;
    let mut many = body("x");
    many["steps"] = Value::Array(vec![json!({"url": format!("{base}/me")}); 1000]);
    api.bad(Method::POST, "/api/v1/targets", Some(many), "steps").await;
    let mut odd = body("x");
    odd["steps"][0]["colour"] = json!("red");
    api.bad(Method::POST, "/api/v1/targets", Some(odd), "colour").await;
    let mut proxy = body("x");
    proxy["proxy"] = json!("gopher://127.0.0.1:70");
    api.bad(Method::POST, "/api/v1/targets", Some(proxy), "proxy").await;
    let (code, _) = api.call(Method::DELETE, "/api/v1/targets/api-steps", None).await;
    assert_eq!(code, 204);
}
