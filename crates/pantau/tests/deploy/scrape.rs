//! A real Prometheus scraping a real `pantau all`, with the repository's
//! recording and alert rules loaded: every rule and dashboard expression runs
//! through Prometheus' query API without error, and every `pantau_*` metric
//! they name is one Pantau exports.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pantau_testkit::free_port;
use tokio::time::Instant;

use crate::support::{Killed, all_exprs, base_name, pantau_metrics, repo, spawn, tool};

/// Metrics Pantau exports only in a setup this test does not have (a TLS
/// target, a router counter going backwards) or a mode it does not run
/// (multi-location sync): they are checked to be declared in the services'
/// source instead of seen on /metrics. Error and drop counters are exported
/// as 0 from the start (unlabelled ones, and those of every known bus
/// family, configured channel type and alert state) and are not listed here.
const AFTER_A_FAULT: &[(&str, &str)] = &[
    // A gauge per TLS or HTTPS target: this configuration has none.
    (
        "pantau_collector_cert_expiry_seconds",
        "crates/collector/src/metrics.rs",
    ),
    // The sync-api runs only when sync is enabled (a primary or a dependent),
    // and its consensus metrics need results from several locations; this
    // standalone `pantau all` has neither.
    ("pantau_sync_location_up", "crates/sync-api/src/metrics.rs"),
    ("pantau_sync_consensus_status", "crates/sync-api/src/metrics.rs"),
    ("pantau_sync_primary", "crates/sync-api/src/metrics.rs"),
];

/// Metrics that exist once what they measure has happened at least once
/// (a histogram's buckets need an observation; a per-target series needs
/// its target's first result); the first scrape may lack them, the end of
/// the test may not.
const AFTER_ACTIVITY: &[&str] = &[
    // Histograms: buckets once something is measured.
    "pantau_alert_engine_evaluation_duration_seconds",
    "pantau_notifier_delivery_duration_seconds",
    // Rates of an interface need two polls of its counters.
    "pantau_collector_interface_in_bits_per_second",
    "pantau_collector_interface_out_bits_per_second",
    // Per router and ISP, once the WAN detector has judged the first poll.
    "pantau_wan_detector_wan_interfaces",
];

/// A readiness component of each service, registered once it has started.
const STARTED: [&str; 5] = [
    "collector.progress",
    "alert_engine.progress",
    "notifier.consumer",
    "wan_detector.consumer",
    "gateway.feed",
];

/// `/metrics` of the admin port once every service is ready and the
/// collector has polled its router and checked its targets once (at most a
/// minute after start).
async fn first_scrape(pantau: &mut Killed, admin: u16) -> BTreeSet<String> {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{admin}/metrics");
    let readyz = format!("http://127.0.0.1:{admin}/readyz");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        pantau.assert_running();
        // Ready, and every service has registered its checks (the admin
        // port answers before the services have started).
        let ready = match client.get(&readyz).send().await {
            Ok(r) if r.status().is_success() => r
                .json::<serde_json::Value>()
                .await
                .is_ok_and(|v| STARTED.iter().all(|c| v["components"][c]["status"] == "ok")),
            _ => false,
        };
        if ready
            && let Ok(r) = client.get(&url).send().await
            && let Ok(text) = r.text().await
        {
            let names = exported(&text);
            if names.contains("pantau_collector_router_up") && names.contains("pantau_collector_check_up") {
                return names;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no router poll and check within a minute:\n{}",
            pantau.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An HTTP sink standing in for a webhook receiver and Alertmanager:
/// `/fail` answers 500, everything else 200.
async fn sink() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route(
            "/fail",
            axum::routing::post(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no") }),
        )
        .fallback(|| async { "ok" });
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn pantau_config(dir: &Path, p: &Ports, sink: u16) -> String {
    // The router is a real snmpd on loopback (see `snmpd`).
    format!(
        "listen_host: 127.0.0.1
data_dir: {data}
admin_port: {admin}
shutdown_grace: 2s
log: {{ format: json, level: info }}
metrics: {{ enabled: true, collection_interval: 1s }}
collector:
  grpc_port: {cgrpc}
  admin_port: {cadmin}
  interval: 1s
  timeout: 900ms
  targets:
    - {{ id: gateway-healthz, type: http, url: 'http://127.0.0.1:{gw}/healthz' }}
    - {{ id: closed-port, type: tcp, address: '127.0.0.1:{closed}', timeout: 500ms }}
  routers:
    - {{ id: loopback-router, address: '127.0.0.1:{snmp}', snmp: {{ version: v2c, community: public }}, interval: 1s, timeout: 900ms }}
gateway:
  port: {gw}
  alert_engine_url: http://127.0.0.1:{agrpc}
  dashboard: {{ max_connections: 1 }}
  auth: {{ enabled: false }}
alert_engine:
  grpc_port: {agrpc}
  admin_port: {aadmin}
  sweep_interval: 1s
  alertmanager_url: http://127.0.0.1:{sink}
  rules:
    - {{ id: closed-port, name: Closed port, expr: 'check_up{{target=\"closed-port\"}} == 0', severity: critical, message: down }}
wan_detector: {{ grpc_port: {wgrpc}, admin_port: {wadmin} }}
notifier:
  grpc_port: {ngrpc}
  admin_port: {nadmin}
  poll_interval: 200ms
  retry: {{ initial_backoff: 100ms, max_attempts: 1 }}
  channels:
    - {{ name: ok, type: webhook, url: 'http://127.0.0.1:{sink}/ok' }}
    - {{ name: broken, type: webhook, url: 'http://127.0.0.1:{sink}/fail' }}
  routes:
    - channels: [ok, broken]
",
        data = dir.join("data").display(),
        admin = p.admin,
        cgrpc = p.cgrpc,
        cadmin = p.cadmin,
        gw = p.gateway,
        closed = p.closed,
        snmp = p.snmp,
        agrpc = p.agrpc,
        aadmin = p.aadmin,
        ngrpc = p.ngrpc,
        nadmin = p.nadmin,
        wgrpc = p.wgrpc,
        wadmin = p.wadmin,
    )
}

struct Ports {
    admin: u16,
    cgrpc: u16,
    cadmin: u16,
    gateway: u16,
    closed: u16,
    snmp: u16,
    agrpc: u16,
    aadmin: u16,
    ngrpc: u16,
    nadmin: u16,
    wgrpc: u16,
    wadmin: u16,
    prometheus: u16,
}

/// Debian's snmpd on 127.0.0.1:`port` (UDP), community `public`: the router
/// the collector polls, with this machine's real interfaces and counters.
fn snmpd(dir: &Path, port: u16) -> Killed {
    let bin = tool("snmpd", "snmpd");
    let conf = dir.join("snmpd.conf");
    std::fs::write(&conf, "rocommunity public 127.0.0.1\n").unwrap();
    std::fs::create_dir_all(dir.join("snmp-persist")).unwrap();
    spawn(
        "snmpd",
        Command::new(bin)
            .args(["-f", "-Le", "-C", "-c"])
            .arg(&conf)
            .arg("-p")
            .arg(dir.join("snmpd.pid"))
            .arg(format!("udp:127.0.0.1:{port}"))
            .env("SNMP_PERSISTENT_DIR", dir.join("snmp-persist"))
            .env("MIBS", ""),
        dir,
    )
}

/// The metric names in a Prometheus text exposition.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| base_name(n).to_owned())
        .collect()
}

/// `/api/v1/query?query=<expr, percent-encoded>` of the Prometheus on `port`.
fn query_url(port: u16, expr: &str) -> String {
    let mut q = String::new();
    for b in expr.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            q.push(char::from(b));
        } else {
            let _ = write!(q, "%{b:02X}");
        }
    }
    format!("http://127.0.0.1:{port}/api/v1/query?query={q}")
}

async fn query(client: &reqwest::Client, port: u16, expr: &str) -> serde_json::Value {
    client
        .get(query_url(port, expr))
        .send()
        .await
        .unwrap_or_else(|e| panic!("query {expr}: {e}"))
        .json()
        .await
        .unwrap()
}

fn non_empty(v: &serde_json::Value) -> bool {
    v["status"] == "success" && v["data"]["result"].as_array().is_some_and(|r| !r.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_and_panel_query_runs_against_pantau_all() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let prometheus_bin = tool("prometheus", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let p = Ports {
        admin: free_port(),
        cgrpc: free_port(),
        cadmin: free_port(),
        gateway: free_port(),
        closed: free_port(),
        snmp: free_port(),
        agrpc: free_port(),
        aadmin: free_port(),
        ngrpc: free_port(),
        nadmin: free_port(),
        wgrpc: free_port(),
        wadmin: free_port(),
        prometheus: free_port(),
    };
    let sink = sink().await;
    let _snmpd = snmpd(dir.path(), p.snmp);
    let cfg = dir.path().join("pantau.yaml");
    std::fs::write(&cfg, pantau_config(dir.path(), &p, sink)).unwrap();
    let mut pantau = spawn(
        "pantau",
        Command::new(env!("CARGO_BIN_EXE_pantau"))
            .arg("--config")
            .arg(&cfg)
            .arg("all")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default()),
        dir.path(),
    );

    // The first scrape once the first checks and the first router poll are
    // done: every name a panel or rule reads is there already, before any
    // alert, delivery or fault (a panel says 0, not "No data").
    let after_fault: BTreeSet<&str> = AFTER_A_FAULT.iter().map(|(n, _)| *n).collect();
    let early = first_scrape(&mut pantau, p.admin).await;
    let mut missing: BTreeSet<String> = BTreeSet::new();
    for e in all_exprs() {
        for m in pantau_metrics(&e.expr) {
            if !early.contains(&m) && !after_fault.contains(m.as_str()) && !AFTER_ACTIVITY.contains(&m.as_str()) {
                missing.insert(format!("{m} ({})", e.origin));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing from the first scrape of a fresh pantau all:\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
    // Pantau's own telemetry, which the System dashboard reads: the process
    // and the gateway's HTTP server, from the first scrape too.
    for name in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_threads",
        "http_requests_total",
        // Every gRPC server's calls per method (go-grpc-prometheus names),
        // and each service's store: pool gauges, operation latency and the
        // slow-query counter (the Database dashboard).
        "grpc_server_started_total",
        "grpc_server_handled_total",
        "grpc_server_handling_seconds",
        "pantau_db_pool_connections",
        "pantau_db_pool_idle_connections",
        "pantau_db_pool_in_use_connections",
        "pantau_db_pool_max_connections",
        "pantau_db_query_duration_seconds",
        "pantau_db_slow_queries_total",
    ] {
        assert!(early.contains(name), "{name} is not on the first scrape");
    }

    // Prometheus with the repository's rules, scraping the admin port every second.
    let rules = repo().join("prometheus/rules");
    let prom_cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}
rule_files: ['{r}/recording.yml', '{r}/alerts.yml']
scrape_configs:
  - job_name: pantau
    static_configs:
      - targets: ['127.0.0.1:{admin}']
        labels: {{ service: all, location: local }}
",
            r = rules.display(),
            admin = p.admin
        ),
    )
    .unwrap();
    let mut prometheus = spawn(
        "prometheus",
        Command::new(prometheus_bin)
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", p.prometheus)),
        dir.path(),
    );

    // A WebSocket client (and one over max_connections) so the gateway's gauges exist.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let ws_url = format!("ws://127.0.0.1:{}/api/v1/monitoring/events", p.gateway);
    let deadline = Instant::now() + Duration::from_secs(60);
    let ws = loop {
        pantau.assert_running();
        if let Ok(Ok((ws, _))) =
            tokio::time::timeout(Duration::from_secs(2), tokio_tungstenite::connect_async(&ws_url)).await
        {
            break ws;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway never accepted a WebSocket:\n{}",
            pantau.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let second = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(&ws_url)).await;
    assert!(
        !matches!(second, Ok(Ok(_))),
        "a second WebSocket client over max_connections 1 was accepted"
    );

    // Wait for data: checks scraped, recording rules evaluated, the alert raised
    // and its deliveries attempted (one ok, one failing and given up).
    let wanted = [
        "pantau_collector_check_up",
        "kind_location:pantau_collector_checks:rate5m",
        "target_location:pantau_collector_check_up:avg5m",
        // Counters exported as 0 from the start: wait for real activity.
        r#"pantau_notifier_deliveries_total{result="delivered"} > 0"#,
        "pantau_notifier_deliveries_given_up_total > 0",
        r#"pantau_alert_engine_alertmanager_pushes_total{result="ok"} > 0"#,
        "pantau_gateway_ws_rejected_total > 0",
        "pantau_collector_router_up == 1",
        "pantau_collector_interface_in_bits_per_second",
        "router:pantau_collector_interface_in_bits_per_second:sum",
        // The WAN detector judged the polled router's default-route interface.
        "pantau_wan_detector_wan_interfaces > 0",
        "rate(pantau_notifier_deliveries_total[5m])",
    ];
    let deadline = Instant::now() + Duration::from_secs(90);
    for w in wanted {
        loop {
            pantau.assert_running();
            prometheus.assert_running();
            if let Ok(r) = client.get(query_url(p.prometheus, w)).send().await
                && let Ok(v) = r.json::<serde_json::Value>().await
                && non_empty(&v)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus never had {w}\npantau log:\n{}\nprometheus log:\n{}",
                pantau.log(),
                prometheus.log()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    drop(ws);

    // The collector's health level is computed when readiness is asked.
    let ready = client
        .get(format!("http://127.0.0.1:{}/readyz", p.admin))
        .send()
        .await
        .unwrap();
    assert!(
        ready.status().is_success() || ready.status().as_u16() == 503,
        "{}",
        ready.status()
    );

    let metrics = client
        .get(format!("http://127.0.0.1:{}/metrics", p.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let names = exported(&metrics);
    for (name, file) in AFTER_A_FAULT {
        let src = std::fs::read_to_string(repo().join(file)).unwrap();
        assert!(src.contains(&format!("\"{name}\"")), "{name} is not declared in {file}");
    }

    let mut failures = Vec::new();
    let exprs = all_exprs();
    assert!(exprs.len() > 40, "only {} expressions found", exprs.len());
    for e in &exprs {
        let v = query(&client, p.prometheus, &e.expr).await;
        if v["status"] != "success" {
            failures.push(format!("{}: `{}` fails: {v}", e.origin, e.expr));
        }
        for m in pantau_metrics(&e.expr) {
            if !names.contains(&m) && !after_fault.contains(m.as_str()) {
                failures.push(format!(
                    "{}: `{}` reads {m}, which pantau all does not export",
                    e.origin, e.expr
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n/metrics names: {names:?}",
        failures.join("\n")
    );

    // The alert rules evaluate without errors against real data. Prometheus
    // staggers the groups' first evaluations: wait (bounded) until every rule
    // has been evaluated once, then every one must be healthy.
    let mut rules = serde_json::Value::Null;
    for _ in 0..120 {
        rules = client
            .get(format!("http://127.0.0.1:{}/api/v1/rules", p.prometheus))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pending = rules["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .any(|r| r["health"] == "unknown");
        if !pending {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    for g in rules["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "rule {} is unhealthy: {r}", r["name"]);
        }
    }
    // The endpoint that is down from the only location trips the per-location alert as pending or firing.
    let alerts = query(
        &client,
        p.prometheus,
        r#"ALERTS{alertname="PantauEndpointDownFromLocation", target="closed-port"}"#,
    )
    .await;
    assert!(
        non_empty(&alerts),
        "closed-port raised no alert in Prometheus: {alerts}"
    );
}
