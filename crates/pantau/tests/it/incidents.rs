//! Incidents end to end: `pantau all` over a real nats-server and its
//! SQLite stores, a parent TCP target `uplink` (the dependencies test's
//! fixture) and 50 targets that depend on it, notifications to a webhook.
//! When the parent's port closes: exactly one notification (for `uplink`),
//! 50 held alerts recorded with their cause, one incident holding the 51
//! alerts, announced on the WebSocket. Hostile requests are 400s naming
//! the field. Acknowledging the incident acknowledges the 51 alerts in the
//! user's name (and the gateway's audit log records the request); a kill -9
//! and restart keeps the incident, acknowledged and open; when the port
//! opens again, one resolve, and the incident resolves with its last alert.

use std::fmt::Write as _;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::support::{Pantau, Ports, config_yaml, http, token, wait_json};
use crate::traces::Sink;

const CHILDREN: usize = 50;

async fn listen(port: u16) -> tokio::task::JoinHandle<()> {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    })
}

fn config(ports: Ports, dir: &std::path::Path, nats: &str, sink: std::net::SocketAddr, up: u16) -> String {
    let mut targets = format!(
        "  circuit_breaker:\n    recovery_timeout: 1s\n  targets:\n    - {{ id: uplink, type: tcp, address: \"127.0.0.1:{up}\" }}\n"
    );
    for i in 0..CHILDREN {
        writeln!(
            targets,
            "    - {{ id: child-{i:02}, type: tcp, address: \"127.0.0.1:{up}\", depends_on: [\"target:uplink\"] }}"
        )
        .unwrap();
    }
    config_yaml(ports, &dir.join("data"), Some(nats))
        .replacen("  targets:\n", &targets, 1)
        .replacen(
            "alert_engine:\n",
            "alert_engine:\n  incidents: { group_by: [alertname, location], window: 5m }\n  rules:\n    - { id: endpoint-down, name: Endpoint down, expr: \"check_up == 0 for 2s\", severity: critical, message: \"{{ $labels.target }} is down from {{ $labels.location }}\" }\n",
            1,
        )
        .replacen(
            "notifier:\n",
            &format!(
                "notifier:\n  channels:\n    - {{ name: sink, type: webhook, url: \"http://{sink}/hook\" }}\n  routes:\n    - {{ channels: [sink] }}\n"
            ),
            1,
        )
}

/// (status, target) of every delivery about a target so far.
fn deliveries(sink: &Sink) -> Vec<(String, String)> {
    sink.all()
        .iter()
        .filter(|h| h.body["notification"]["alerts"][0]["labels"]["target"].is_string())
        .map(|h| {
            (
                h.body["status"].as_str().unwrap_or_default().to_owned(),
                h.body["notification"]["alerts"][0]["labels"]["target"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// The root-cause incident, once it holds `alerts` alerts.
async fn root_incident(base: &str, alerts: u64, p: &mut Pantau) -> serde_json::Value {
    let v = wait_json(
        &format!("{base}/api/v1/incidents?state=open,acknowledged"),
        Duration::from_secs(30),
        |v| {
            v["incidents"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|i| i["root_cause"] == "target:uplink" && i["alerts"] == alerts)
            })
        },
        p,
    )
    .await;
    let all = v["incidents"].as_array().unwrap();
    let roots: Vec<_> = all.iter().filter(|i| i["root_cause"] == "target:uplink").collect();
    assert_eq!(roots.len(), 1, "one incident for the root cause: {v:#}");
    roots[0].clone()
}

async fn status_and_body(r: reqwest::RequestBuilder) -> (StatusCode, serde_json::Value) {
    let r = r.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_incident_for_a_root_cause_acknowledged_as_one_and_kept_across_a_restart() {
    let nats = pantau_testkit::Nats::start().await.expect("nats-server starts");
    let (sink, sink_addr) = Sink::start().await;
    let up_port = pantau_testkit::free_port();
    let up = listen(up_port).await;
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let yaml = config(ports, dir.path(), &nats.url(), sink_addr, up_port);
    let mut p = Pantau::start(dir.path(), &yaml, &["all"]);
    let base = format!("http://127.0.0.1:{}", ports.gateway);
    wait_json(
        &format!("{base}/api/v1/results/latest"),
        Duration::from_secs(60),
        |v| {
            v["results"]
                .as_array()
                .is_some_and(|r| r.len() > CHILDREN && r.iter().all(|x| x["status"] == "up"))
        },
        &mut p,
    )
    .await;
    // The WebSocket hub announces incidents.
    let ws_url = format!(
        "ws://127.0.0.1:{}/api/v1/monitoring/events?types=incident&token={}",
        ports.gateway,
        token()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .expect("websocket");

    // The outage.
    up.abort();
    let root = sink
        .wait(
            Duration::from_secs(30),
            |h| h.body["status"] == "firing" && h.body["notification"]["alerts"][0]["labels"]["target"].is_string(),
            &mut p,
        )
        .await;
    assert_eq!(root.body["notification"]["alerts"][0]["labels"]["target"], "uplink");
    let inc = root_incident(&base, (CHILDREN + 1) as u64, &mut p).await;
    let id = inc["id"].as_str().unwrap().to_owned();
    assert_eq!(inc["state"], "open");
    assert_eq!(inc["open_alerts"], CHILDREN + 1);
    assert_eq!(inc["severity"], "critical");
    assert!(inc["title"].as_str().unwrap().starts_with("uplink is down"), "{inc}");
    let one = http()
        .get(format!("{base}/api/v1/incidents/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), StatusCode::OK);
    let one: serde_json::Value = one.json().await.unwrap();
    let members = one["members"].as_array().unwrap();
    assert_eq!(members.len(), CHILDREN + 1);
    let parent = members.iter().find(|a| a["resource"] == "uplink").unwrap();
    let held: Vec<_> = members
        .iter()
        .filter(|a| a["resource"] != "uplink")
        .map(|a| a["suppressed_by"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(held.len(), CHILDREN);
    let cause = format!("depends:{}", parent["id"].as_str().unwrap());
    assert!(
        held.iter().all(|w| *w == cause || w == "depends:target:uplink"),
        "every child is recorded with its cause: {held:?}"
    );
    let kinds: Vec<&str> = one["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "joined").count(),
        CHILDREN + 1,
        "{kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| **k == "notified").count(), 1, "{kinds:?}");
    // A WebSocket client saw it.
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Ws::Text(t) = m {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "incident" && v["data"]["id"] == id.as_str() {
                    return v;
                }
            }
        }
        panic!("the websocket closed")
    })
    .await
    .expect("an incident event on the websocket");
    assert!(seen["data"]["entry"]["kind"].is_string(), "{seen}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        deliveries(&sink),
        [("firing".to_owned(), "uplink".to_owned())],
        "one notification for one fault"
    );

    // Hostile input: 400s naming the field, never a 500.
    let client = http();
    let incidents = format!("{base}/api/v1/incidents");
    for (url, field) in [
        (format!("{incidents}?state=bogus"), "state"),
        (format!("{incidents}?state=open,"), "state"),
        (format!("{incidents}?state={}", "x".repeat(5_000)), "state"),
        (format!("{incidents}?since=yesterday"), "since"),
        (format!("{incidents}?limit=0"), "limit"),
        (format!("{incidents}?page_token=-1"), "page_token"),
        (format!("{incidents}?colour=red"), "colour"),
        (format!("{incidents}/not%20an%20id"), "incident id"),
        (format!("{incidents}/{}", "y".repeat(300)), "incident id"),
    ] {
        let (status, b) = status_and_body(client.get(&url)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {b}");
        let msg = b["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(field), "{url}: {msg}");
        assert!(
            msg.len() < 600,
            "a hostile value is quoted briefly: {} bytes",
            msg.len()
        );
    }
    let (status, _) = status_and_body(client.get(format!("{incidents}/inc-nope"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let comments = format!("{incidents}/{id}/comments");
    for (body, field) in [
        (serde_json::json!({ "text": "z".repeat(5_000) }), "text"),
        (serde_json::json!({ "text": "" }), "text"),
        (serde_json::json!({ "text": 5 }), "text"),
        (serde_json::json!({ "text": "hi\u{0}" }), "text"),
        (serde_json::json!({}), "text"),
        (serde_json::json!({ "text": "ok", "colour": "red" }), "colour"),
    ] {
        let (status, b) = status_and_body(client.post(&comments).json(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {b}");
        assert!(
            b["error"]["message"].as_str().unwrap_or_default().contains(field),
            "{b}"
        );
    }
    let (status, b) = status_and_body(
        client
            .post(format!("{incidents}/{id}/acknowledge"))
            .json(&serde_json::json!({ "comment": "z".repeat(5_000) })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("comment"), "{b}");
    let (status, b) = status_and_body(
        client
            .post(format!("{incidents}/inc-nope/comments"))
            .json(&serde_json::json!({ "text": "hi" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{b}");

    // A comment, then the acknowledgement: the 51 alerts, in the user's name.
    let (status, b) = status_and_body(
        client
            .post(&comments)
            .json(&serde_json::json!({ "text": "ISP ticket 4711" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let (status, b) = status_and_body(
        client
            .post(format!("{incidents}/{id}/acknowledge"))
            .json(&serde_json::json!({ "comment": "cable cut" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["state"], "acknowledged");
    assert_eq!(b["acknowledged_by"], "e2e", "the token's subject");
    let (status, b) = status_and_body(client.post(format!("{incidents}/{id}/acknowledge"))).await;
    assert_eq!(status, StatusCode::CONFLICT, "a second acknowledgement: {b}");
    let v = wait_json(
        &format!("{base}/api/v1/monitoring/alerts?state=acknowledged&limit=200"),
        Duration::from_secs(10),
        |v| v["alerts"].as_array().is_some_and(|a| a.len() > CHILDREN),
        &mut p,
    )
    .await;
    let acked = v["alerts"].as_array().unwrap();
    assert_eq!(acked.len(), CHILDREN + 1, "{v:#}");
    assert!(acked.iter().all(|a| a["acknowledged_by"] == "e2e"), "{v:#}");
    let trail = client
        .get(format!(
            "{base}/api/v1/monitoring/alerts/{}",
            parent["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let last = trail["transitions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["state"].as_str(), last["actor"].as_str()),
        (Some("acknowledged"), Some("e2e"))
    );
    let audit = wait_json(
        &format!("{base}/api/v1/audit?limit=200"),
        Duration::from_secs(10),
        |v| v.to_string().contains(&format!("/api/v1/incidents/{id}/acknowledge")),
        &mut p,
    )
    .await;
    assert!(audit.to_string().contains("e2e"), "the audit names the user: {audit}");

    // kill -9 and start again: the incident is kept, acknowledged, every alert open.
    drop(p);
    let mut p = Pantau::start(dir.path(), &yaml, &["all"]);
    let after = wait_json(
        &format!("{incidents}/{id}"),
        Duration::from_secs(60),
        |v| v["id"] == id.as_str(),
        &mut p,
    )
    .await;
    assert_eq!(after["state"], "acknowledged", "{after:#}");
    assert_eq!(after["open_alerts"], CHILDREN + 1);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let still = client
        .get(format!("{incidents}/{id}"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(
        still["state"], "acknowledged",
        "a restart resolves nothing while it is down: {still:#}"
    );
    let comments_kept = still["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "commented" && e["text"] == "ISP ticket 4711" && e["actor"] == "e2e");
    assert!(comments_kept, "{still:#}");

    // Recovery: one resolve, and the incident resolves with its last alert.
    let _up = listen(up_port).await;
    let done = wait_json(
        &format!("{incidents}/{id}"),
        Duration::from_secs(60),
        |v| v["state"] == "resolved",
        &mut p,
    )
    .await;
    assert_eq!(done["open_alerts"], 0);
    assert!(done["resolved_at"].is_string());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = deliveries(&sink);
    let count = |s: &str| got.iter().filter(|(st, _)| st == s).count();
    assert_eq!(count("firing"), 1, "{got:?}");
    assert_eq!(count("resolved"), 1, "{got:?}");
    assert!(
        got.iter().all(|(_, t)| t == "uplink"),
        "only the root cause notifies: {got:?}"
    );
    let resolved = client
        .get(format!("{incidents}?state=resolved"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert!(
        resolved["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id.as_str()),
        "{resolved:#}"
    );
    p.assert_running();
}
