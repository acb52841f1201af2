//! alertmanager/: amtool check-config, the webhook to the notifier, the inhibitions.

use std::process::Command;

use crate::support::{repo, run_fails, run_ok, tool, yaml};

#[test]
fn amtool_checks_the_config() {
    let out = run_ok(
        Command::new(tool("amtool", "prometheus-alertmanager"))
            .args(["check-config"])
            .arg(repo().join("alertmanager/alertmanager.yml")),
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

/// The check above can fail: amtool rejects a route to an unknown receiver.
#[test]
fn amtool_rejects_an_unknown_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("am.yml");
    std::fs::write(&f, "route:\n  receiver: nobody\nreceivers:\n  - name: someone\n").unwrap();
    let out = run_fails(
        Command::new(tool("amtool", "prometheus-alertmanager"))
            .arg("check-config")
            .arg(&f),
    );
    assert!(out.contains("nobody"), "{out}");
}

#[test]
fn alerts_go_to_the_notifier_webhook_with_inhibitions() {
    let v = yaml("alertmanager/alertmanager.yml");
    let receivers = v["receivers"].as_sequence().unwrap();
    let urls: Vec<&str> = receivers
        .iter()
        .flat_map(|r| r["webhook_configs"].as_sequence().into_iter().flatten())
        .filter_map(|w| w["url"].as_str())
        .collect();
    assert_eq!(urls, ["http://notifier:9104/webhooks/alertmanager"]);
    let severities: Vec<String> = v["route"]["routes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r["matchers"][0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        severities,
        [r#"severity="critical""#, r#"severity="warning""#, r#"severity="info""#]
    );
    let inhibit = serde_yaml::to_string(&v["inhibit_rules"]).unwrap();
    assert!(
        inhibit.contains("wan-down") && inhibit.contains("endpoint-down"),
        "{inhibit}"
    );
}

/// A real Alertmanager with this configuration: while a WAN-down alert fires
/// at a location, the endpoint-down alert from that location is inhibited;
/// the one from another location is not; a critical inhibits the warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_inhibits_endpoints_behind_a_down_wan() {
    let config = std::fs::read_to_string(repo().join("alertmanager/alertmanager.yml")).unwrap();
    let am = pantau_testkit::Alertmanager::start(&config)
        .await
        .expect("alertmanager starts");
    let base = am.url();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let alerts = serde_json::json!([
        {"labels": {"alertname": "wan-down", "severity": "critical", "location": "jakarta", "router": "core1"}},
        {"labels": {"alertname": "endpoint-down", "severity": "critical", "location": "jakarta", "target": "api"}},
        {"labels": {"alertname": "endpoint-down", "severity": "critical", "location": "bandung", "target": "api"}},
        {"labels": {"alertname": "PantauHostDiskFull", "severity": "critical", "instance": "c:9101", "mount": "/"}},
        {"labels": {"alertname": "PantauHostDiskFull", "severity": "warning", "instance": "c:9101", "mount": "/"}},
    ]);
    let r = client
        .post(format!("{base}/api/v2/alerts"))
        .json(&alerts)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let got: serde_json::Value = client
            .get(format!("{base}/api/v2/alerts"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let state = |name: &str, key: &str, val: &str| -> Option<String> {
            got.as_array()?
                .iter()
                .find(|a| a["labels"]["alertname"] == name && a["labels"][key] == val)
                .map(|a| a["status"]["state"].as_str().unwrap_or_default().to_owned())
        };
        let jakarta = state("endpoint-down", "location", "jakarta");
        let bandung = state("endpoint-down", "location", "bandung");
        let warn = state("PantauHostDiskFull", "severity", "warning");
        let crit = state("PantauHostDiskFull", "severity", "critical");
        if jakarta.as_deref() == Some("suppressed")
            && bandung.as_deref() == Some("active")
            && warn.as_deref() == Some("suppressed")
            && crit.as_deref() == Some("active")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "inhibition not as expected: jakarta {jakarta:?}, bandung {bandung:?}, warning {warn:?}, critical {crit:?}: {got}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Receives the notifier's webhook deliveries: every body posted, in order.
async fn receiver() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .fallback(
            |axum::extract::State(got): axum::extract::State<std::sync::Arc<std::sync::Mutex<Vec<String>>>>,
             body: String| async move {
                got.lock().unwrap().push(body);
                "ok"
            },
        )
        .with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, got)
}

/// Pointing Alertmanager at the notifier works: a real Alertmanager with
/// this file (the notifier's address moved to a real `pantau all`) delivers
/// an alert to `/webhooks/alertmanager`, and the notifier sends it on to its
/// webhook channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_delivers_to_the_notifier_webhook() {
    use pantau_testkit::free_port;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (hook, got) = receiver().await;
    let admin = free_port();
    let cfg = dir.path().join("pantau.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen_host: 127.0.0.1
data_dir: {data}
admin_port: {admin}
shutdown_grace: 2s
log: {{ format: json, level: info }}
collector: {{ grpc_port: {cgrpc}, admin_port: {cadmin} }}
gateway: {{ port: {gw}, alert_engine_url: 'http://127.0.0.1:{agrpc}' }}
alert_engine: {{ grpc_port: {agrpc}, admin_port: {aadmin} }}
wan_detector: {{ grpc_port: {wgrpc}, admin_port: {wadmin} }}
notifier:
  grpc_port: {ngrpc}
  admin_port: {nadmin}
  poll_interval: 200ms
  channels:
    - {{ name: ops, type: webhook, url: 'http://127.0.0.1:{hook}/hook' }}
  routes:
    - channels: [ops]
",
            data = dir.path().join("data").display(),
            cgrpc = free_port(),
            cadmin = free_port(),
            gw = free_port(),
            agrpc = free_port(),
            aadmin = free_port(),
            ngrpc = free_port(),
            nadmin = free_port(),
            wgrpc = free_port(),
            wadmin = free_port(),
        ),
    )
    .unwrap();
    let mut pantau = crate::support::spawn(
        "pantau",
        Command::new(env!("CARGO_BIN_EXE_pantau"))
            .arg("--config")
            .arg(&cfg)
            .arg("all")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default()),
        dir.path(),
    );
    let config = std::fs::read_to_string(repo().join("alertmanager/alertmanager.yml"))
        .unwrap()
        .replace(
            "http://notifier:9104/webhooks/alertmanager",
            &format!("http://127.0.0.1:{admin}/webhooks/alertmanager"),
        );
    let am = pantau_testkit::Alertmanager::start(&config)
        .await
        .expect("alertmanager starts");
    let client = reqwest::Client::new();
    let alert = serde_json::json!([{
        "labels": {"alertname": "PantauEndpointDown", "severity": "critical", "target": "shop-api"},
        "annotations": {"summary": "shop-api is down from 2 locations, a majority"}
    }]);
    let r = client
        .post(format!("{}/api/v2/alerts", am.url()))
        .json(&alert)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    // Critical alerts wait group_wait (10 s) in Alertmanager before they go out.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        pantau.assert_running();
        if got.lock().unwrap().iter().any(|b| b.contains("shop-api")) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the alert never reached the notifier's channel; pantau log:\n{}\nalertmanager log:\n{}",
            pantau.log(),
            am.log_tail()
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
