//! The gateway's routes against the real services behind them, in one
//! process over the in-process bus: the alert routes against the alert
//! engine, the router routes and the WebSocket's `wan_detected` against the
//! WAN detector. (They lived in the services' own tests, which made services
//! depend on the gateway; services depend on core and proto only.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pantau_config::{AlertRuleConfig, AlertSeverity, Config};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, publish_proto, subject};
use pantau_core::service::Context;
use pantau_proto::v1::{CheckResult, CheckStatus, InterfaceSample, RouterInfo, RouterInterface};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// A result of `target` from `jkt`.
fn check(target: &str, up: bool) -> CheckResult {
    CheckResult {
        target_id: target.into(),
        location: "jkt".into(),
        status: if up { CheckStatus::Up } else { CheckStatus::Down }.into(),
        latency: Some(pantau_core::time::to_duration(Duration::from_millis(12))),
        checked_at: Some(pantau_core::time::to_timestamp(std::time::SystemTime::now())),
        ..Default::default()
    }
}

/// The alert engine with one rule: `closed` down pages as critical.
pub(crate) fn engine_config(dir: &std::path::Path) -> Config {
    let mut c = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    c.alert_engine.default_rules = false;
    c.alert_engine.rules = vec![AlertRuleConfig {
        id: "closed-port".into(),
        name: Some("Closed port".into()),
        expr: r#"check_up{target="closed"} == 0"#.into(),
        severity: AlertSeverity::Critical,
        message: "{{ $labels.target }} is down from {{ $labels.location }}".into(),
        labels: std::collections::BTreeMap::new(),
        for_: None,
        cooldown: Some(Duration::from_secs(60)),
        enabled: true,
        depends_on: Vec::new(),
    }];
    c.validate().unwrap();
    c
}

/// Waits until `addr` serves `service` per `grpc.health.v1`.
async fn serving(addr: SocketAddr, service: &str) {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(ch) = tonic::transport::Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                && let Ok(r) = HealthClient::new(ch)
                    .check(HealthCheckRequest {
                        service: service.into(),
                    })
                    .await
                && r.into_inner().status == 1
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{service} serves gRPC on {addr} within {WAIT:?}"));
}

/// Waits until the engine answers (it subscribes to the bus before it serves gRPC).
pub(crate) async fn engine_ready(ctx: &Context, addr: SocketAddr) {
    use pantau_proto::v1::ListRulesRequest;
    use pantau_proto::v1::alert_engine_service_client::AlertEngineServiceClient;
    let channel = ctx
        .security
        .channel_as(&format!("http://{addr}"), "test", "monitoring:read")
        .unwrap();
    eventually("the alert engine", || async {
        let mut c = AlertEngineServiceClient::new(channel.clone());
        c.list_rules(ListRulesRequest {}).await.ok()
    })
    .await;
}

pub(crate) fn detector_config(dir: &std::path::Path) -> Config {
    let mut c = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    c.gateway.auth.enabled = false;
    c.validate().unwrap();
    c
}

/// A WAN detector on `bus`, stopped by [`Detector::stop`].
pub(crate) struct Detector {
    pub(crate) ctx: Context,
    pub(crate) addr: SocketAddr,
    task: tokio::task::JoinHandle<Result<(), pantau_wan_detector::WanError>>,
}

impl Detector {
    pub(crate) async fn start(cfg: Config, bus: Arc<dyn Bus>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ctx = Context::new(Arc::new(cfg), bus);
        let task = tokio::spawn(pantau_wan_detector::run(ctx.clone(), listener));
        serving(addr, "pantau.v1.WanDetectorService").await;
        Self { ctx, addr, task }
    }

    pub(crate) async fn stop(self) {
        self.ctx.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the detector stops")
            .unwrap()
            .unwrap();
    }
}

/// Retries `f` until it gives `Some`.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn iface(index: u32, name: &str) -> RouterInterface {
    RouterInterface {
        if_index: index,
        if_name: name.into(),
        if_descr: name.into(),
        if_type: 6,
        oper_up: true,
        admin_up: true,
        ..RouterInterface::default()
    }
}

/// A MikroTik-like router: ether1 to Telkom (default route), a PPPoE uplink
/// to Biznet, and a LAN bridge.
fn mikrotik(id: &str) -> RouterInfo {
    let mut pppoe = iface(7, "pppoe-out1");
    pppoe.pppoe_user = "1234567@biznet".into();
    pppoe.if_type = 23;
    let mut ether1 = iface(1, "ether1");
    ether1.comment = "Indihome 100M".into();
    ether1.addresses = vec!["36.70.1.2/24".into()];
    RouterInfo {
        router_id: id.into(),
        router_name: format!("{id} name"),
        sys_name: "MikroTik".into(),
        sys_descr: "RouterOS CCR2004".into(),
        default_route_if_indexes: vec![1],
        route_table: "ipCidrRouteTable".into(),
        interfaces: vec![ether1, iface(2, "bridge-lan"), pppoe],
        polled_at: Some(pantau_core::time::to_timestamp(std::time::SystemTime::now())),
        ..RouterInfo::default()
    }
}

fn sample(router: &str, index: u32, name: &str, rx: f64, tx: f64) -> InterfaceSample {
    InterfaceSample {
        router_id: router.into(),
        if_index: index,
        if_name: name.into(),
        in_bits_per_second: rx,
        out_bits_per_second: tx,
        rates_valid: true,
        oper_up: true,
        admin_up: true,
        sampled_at: Some(pantau_core::time::to_timestamp(std::time::SystemTime::now())),
        ..InterfaceSample::default()
    }
}

pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
}

impl Api {
    pub(crate) async fn get(&self, path: &str, want: StatusCode) -> Value {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, want, "GET {path}: {body}");
        body
    }

    pub(crate) async fn post(&self, path: &str, body: &Value, want: StatusCode) -> Value {
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
    let mut cfg = engine_config(dir.path());
    // The alert routes are under test here; the gateway's auth has its own tests.
    cfg.gateway.auth.enabled = false;
    cfg.gateway.alert_engine_url = format!("http://{grpc_addr}");
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(cfg), Arc::clone(&bus));
    let engine = tokio::spawn(pantau_alert_engine::run(ctx.clone(), grpc));
    engine_ready(&ctx, grpc_addr).await;
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

    // The original alerting document's names: `status`, and `active` for open.
    let v = api.get("/api/v1/monitoring/alerts?status=active", StatusCode::OK).await;
    assert_eq!(v["alerts"][0]["id"], id.as_str(), "{v}");
    let v = api
        .get("/api/v1/monitoring/alerts?state=resolved,active", StatusCode::OK)
        .await;
    assert_eq!(v["alerts"].as_array().unwrap().len(), 1, "{v}");
    let v = api
        .get("/api/v1/monitoring/alerts?status=resolved", StatusCode::OK)
        .await;
    assert_eq!(v["alerts"], json!([]));
    let v = api
        .get("/api/v1/monitoring/alerts?status=activ", StatusCode::BAD_REQUEST)
        .await;
    assert!(v["error"]["message"].as_str().unwrap().contains("`activ`"), "{v}");
    let v = api.get("/api/v1/monitoring/alerts?severity=info", StatusCode::OK).await;
    assert_eq!(v["alerts"], json!([]));
    let v = api
        .get("/api/v1/monitoring/alerts?severity=critical,warning&resource=closed&acknowledged=false&since=2020-01-01T00:00:00Z&limit=10", StatusCode::OK)
        .await;
    assert_eq!(v["alerts"].as_array().unwrap().len(), 1);
    let v = api
        .get("/api/v1/monitoring/alerts?state=burning", StatusCode::BAD_REQUEST)
        .await;
    assert_eq!(v["error"]["code"], "invalid_argument");
    assert_eq!(v["error"]["reason"], "invalid_query");
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
    assert_eq!(v["error"]["code"], "invalid_argument");
    assert_eq!(v["error"]["reason"], "invalid_body");
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
    // The document's `condition` is the expression; a bad one is refused the same way.
    let v = api
        .post(
            "/api/v1/monitoring/alerts/rules",
            &json!({"id": "cpu", "condition": "cpu_usage > 90", "for": "5m", "severity": "warning"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(v["expr"], "cpu_usage > 90", "{v}");
    let v = api
        .post(
            "/api/v1/monitoring/alerts/rules",
            &json!({"id": "cpu", "condition": "cpu_usage >> 80"}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(v["error"]["message"].as_str().unwrap().contains("column 12"), "{v}");
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
    let mut cfg = engine_config(dir.path());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_routes_through_the_gateway() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let detector = Detector::start(detector_config(dir.path()), Arc::clone(&bus)).await;
    let mut cfg = detector_config(dir.path());
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
    assert_eq!(v["error"]["code"], "invalid_argument");
    assert_eq!(v["error"]["reason"], "invalid_query");
    assert!(v["error"]["message"].as_str().unwrap().contains("refresh"), "{v}");
    let v = api
        .get("/api/v1/routers/gw/wan?refersh=true", StatusCode::BAD_REQUEST)
        .await;
    assert!(v["error"]["message"].as_str().unwrap().contains("refersh"), "{v}");
    let v = api.get("/api/v1/routers/a.b/wan", StatusCode::BAD_REQUEST).await;
    assert_eq!(v["error"]["code"], "invalid_argument");
    assert_eq!(v["error"]["reason"], "invalid_router_id");

    ctx.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), gateway).await;
    detector.stop().await;

    // Without the detector the routes say so with 503, not 500.
    let dir2 = tempfile::tempdir().unwrap();
    let mut cfg = detector_config(dir2.path());
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
    let ctx = Context::new(Arc::new(detector_config(dir.path())), Arc::clone(&bus));
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
    let detector = Detector::start(detector_config(dir.path()), Arc::clone(&bus)).await;
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
