//! Issue 18, resolves are never swallowed, as users run it: `pantau all`
//! over nats-server watches a TCP port the test opens and closes; the
//! page for it reaches a webhook; a silence is created through the REST API;
//! the port comes back and the resolve still reaches the webhook. Then the
//! escalation metrics are read from `/metrics`.

use std::time::Duration;

use serde_json::json;

use crate::support::{Pantau, Ports, Sink, config_yaml, http, metric_value, token};

const WAIT: Duration = Duration::from_secs(60);

/// The notification statuses the sink received for alerts of target `svc`, in order.
fn statuses(sink: &Sink) -> Vec<String> {
    sink.all()
        .iter()
        .filter(|d| d.body["notification"]["alerts"][0]["labels"]["target"] == "svc")
        .map(|d| d.body["notification"]["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn wait_for(sink: &Sink, status: &str, p: &mut Pantau) {
    sink.wait(
        WAIT,
        |d| {
            d.body["notification"]["alerts"][0]["labels"]["target"] == "svc"
                && d.body["notification"]["status"] == status
        },
        p,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolve_after_a_silence_is_delivered() {
    let nats = pantau_testkit::Nats::start().await.expect("nats-server starts");
    let (hook, hook_addr) = Sink::start().await;
    let hook_port = hook_addr.port();
    let svc = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let svc_port = svc.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let base = config_yaml(ports, &dir.path().join("data"), Some(&nats.url()));
    let yaml = base
        .replace(
            "  targets:\n",
            &format!("  targets:\n    - id: svc\n      type: tcp\n      address: 127.0.0.1:{svc_port}\n"),
        )
        .replace(
            "alert_engine:\n",
            "alert_engine:\n  default_rules: false\n  rules:\n    - id: svc-down\n      expr: 'check_up{target=\"svc\"} == 0'\n      severity: critical\n",
        )
        .replace(
            "notifier:\n",
            &format!(
                "notifier:\n  poll_interval: 100ms\n  channels:\n    - {{ name: hook, type: webhook, url: 'http://127.0.0.1:{hook_port}/hook' }}\n  routes:\n    - {{ channels: [hook], escalation: page }}\n  escalations:\n    - {{ name: page, repeat_every: 1h }}\n"
            ),
        );
    let cfg = dir.path().join("pantau.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let mut p = Pantau::start_with_env(dir.path(), &cfg, &["all"], &ports.other_services_env());

    // The port closes: the page reaches the webhook.
    drop(svc);
    wait_for(&hook, "firing", &mut p).await;
    let gw = format!("http://127.0.0.1:{}", ports.gateway);
    let metrics = format!("http://127.0.0.1:{}/metrics", ports.admin);
    let text = http().get(&metrics).send().await.unwrap().text().await.unwrap();
    assert_eq!(
        metric_value(&text, "pantau_notifier_escalations_active", ""),
        Some(1.0),
        "the alert's escalation runs"
    );

    // Silenced through the API, then the port comes back.
    let r = http()
        .post(format!("{gw}/api/v1/monitoring/silences"))
        .bearer_auth(token())
        .json(&json!({
            "matchers": [{"label": "target", "value": "svc"}],
            "ends_at": "2099-01-01T00:00:00Z",
            "created_by": "e2e",
            "comment": "maintenance after the page",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let svc = std::net::TcpListener::bind(("127.0.0.1", svc_port)).expect("the port is free again");
    wait_for(&hook, "resolved", &mut p).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(statuses(&hook), ["firing", "resolved"], "one page, one resolve");
    let text = http().get(&metrics).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric_value(&text, "pantau_notifier_escalations_active", ""), Some(0.0));
    drop(svc);
    assert!(p.terminate().success(), "{}", p.log());
}
