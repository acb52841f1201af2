//! `POST /webhooks/alertmanager`: a grouped payload is routed through the
//! same channels; malformed payloads get a 400 naming the problem.

use std::sync::Arc;
use std::time::Duration;

use pantau_core::bus::memory::MemoryBus;
use serde_json::json;

use crate::harness::{Running, Sink, config};

pub fn payload(status: &str) -> serde_json::Value {
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"InstanceDown\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "pantau",
        "groupLabels": {"alertname": "InstanceDown"},
        "commonLabels": {"alertname": "InstanceDown", "job": "node", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [
            {"status": status, "labels": {"alertname": "InstanceDown", "job": "node", "severity": "critical", "instance": "r1:9100"},
             "annotations": {"summary": "r1 is down"}, "startsAt": "2026-11-23T10:00:00Z",
             "endsAt": if status == "resolved" { "2026-11-23T10:05:00Z" } else { "0001-01-01T00:00:00Z" },
             "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": "aaaa"},
            {"status": status, "labels": {"alertname": "InstanceDown", "job": "node", "severity": "critical", "instance": "r2:9100"},
             "annotations": {"summary": "r2 is down"}, "startsAt": "2026-11-23T10:00:02Z",
             "endsAt": if status == "resolved" { "2026-11-23T10:05:00Z" } else { "0001-01-01T00:00:00Z" },
             "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": "bbbb"},
        ],
    })
}

fn routes(sink: &str) -> serde_json::Value {
    json!({
        "channels": [
            {"name": "hook", "type": "webhook", "url": format!("{sink}/hook")},
            {"name": "oncall", "type": "whatsapp_gateway", "url": format!("{sink}/gw"), "to": ["6281100000009"]},
        ],
        "routes": [
            {"channels": ["hook"]},
            {"severity": ["critical"], "labels": {"job": "node"}, "channels": ["oncall"]},
        ],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_payloads_are_routed_and_bad_ones_named() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let n = Running::start(config(dir.path(), routes(&sink.url)), Arc::new(MemoryBus::new())).await;
    let http = reqwest::Client::new();
    let url = format!("{}/webhooks/alertmanager", n.admin);

    let r = http.post(&url).json(&payload("firing")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, json!({"accepted": 2, "deliveries": 2}));
    let got = sink.wait_for(2, Duration::from_secs(15)).await;
    let hook = got.iter().find(|r| r.path == "/hook").expect("the webhook got it");
    let b = hook.json();
    assert_eq!(b["notification"]["source"], "alertmanager");
    assert_eq!(b["notification"]["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(b["title"], "InstanceDown (2 alerts)");
    let gw = got
        .iter()
        .find(|r| r.path == "/gw")
        .expect("the critical route matched");
    let text = gw.json()["message"].as_str().unwrap().to_owned();
    assert!(text.contains("• r1 is down") && text.contains("• r2 is down"), "{text}");

    // Alertmanager resends the same group: nothing new goes out.
    let r = http.post(&url).json(&payload("firing")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    // The resolved group follows.
    let r = http.post(&url).json(&payload("resolved")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let got = sink.wait_for(4, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.requests().len(), 4);
    assert_eq!(
        got.iter().filter(|r| r.path == "/hook").last().unwrap().json()["status"],
        "resolved"
    );

    for (body, needle) in [
        (json!({"version": "4"}).to_string(), "missing field `groupKey`"),
        ("{not json".to_owned(), "not an Alertmanager webhook payload"),
        (
            {
                let mut p = payload("firing");
                p["version"] = json!("3");
                p.to_string()
            },
            "`version`",
        ),
        (
            {
                let mut p = payload("firing");
                p["alerts"] = json!([]);
                p.to_string()
            },
            "`alerts` is empty",
        ),
    ] {
        let r = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "invalid_argument");
        assert_eq!(e["error"]["reason"], "invalid_payload");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg} does not name {needle}");
    }
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_delivers_through_the_notifier() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let n = Running::start(config(dir.path(), routes(&sink.url)), Arc::new(MemoryBus::new())).await;
    let am_config = format!(
        "route:\n  receiver: pantau\n  group_by: [alertname]\n  group_wait: 100ms\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: pantau\n    webhook_configs:\n      - url: {}/webhooks/alertmanager\n        send_resolved: true\n",
        n.admin
    );
    let am = pantau_testkit::Alertmanager::start(&am_config)
        .await
        .expect("prometheus-alertmanager for the test");
    let http = reqwest::Client::new();
    let alert = |ends: Option<&str>| {
        let mut a = json!({
            "labels": {"alertname": "LinkDown", "severity": "critical", "job": "node", "instance": "r1:9100"},
            "annotations": {"summary": "uplink of r1 is down"},
            "generatorURL": "http://127.0.0.1:9090/graph",
        });
        if let Some(e) = ends {
            a["endsAt"] = json!(e);
        }
        json!([a])
    };
    let r = http
        .post(format!("{}/api/v2/alerts", am.url()))
        .json(&alert(None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", am.log_tail());
    let got = sink.wait_for(2, Duration::from_secs(20)).await;
    let hook = got
        .iter()
        .find(|r| r.path == "/hook")
        .expect("the webhook got the firing group");
    let b = hook.json();
    assert_eq!(b["status"], "firing");
    assert_eq!(b["notification"]["source"], "alertmanager");
    assert_eq!(b["title"], "uplink of r1 is down");
    assert!(got.iter().any(|r| r.path == "/gw"), "the critical route matched");

    // Resolve it: Alertmanager sends the resolved group, which follows the firing one.
    let past = pantau_core::time::rfc3339(std::time::SystemTime::now() - Duration::from_secs(1));
    let r = http
        .post(format!("{}/api/v2/alerts", am.url()))
        .json(&alert(Some(&past)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = sink.wait_for(4, Duration::from_secs(20)).await;
    let statuses: Vec<String> = got
        .iter()
        .filter(|r| r.path == "/hook")
        .map(|r| r.json()["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["firing", "resolved"], "{}", am.log_tail());
    n.stop().await;
}
