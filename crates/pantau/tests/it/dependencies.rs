//! Dependencies end to end: `pantau all` over a real nats-server with the
//! default rules (their `endpoint-down` shortened to 2 s), a parent TCP
//! target `uplink` and 51 targets that depend on it, notifications to a
//! webhook. When the parent's port closes exactly one notification goes
//! out, for `uplink`, naming the 51 affected targets; the 51 children's
//! alerts are recorded with the parent's alert as their cause. When it
//! opens again, one resolve; the child whose own port stays closed then
//! alerts on its own.

use std::fmt::Write as _;
use std::time::Duration;

use crate::support::{Pantau, Ports, config_yaml, wait_json};
use crate::traces::Sink;

const CHILDREN: usize = 50;

/// A TCP port that accepts while the returned task runs.
async fn listen(port: u16) -> tokio::task::JoinHandle<()> {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    })
}

fn config(ports: Ports, dir: &std::path::Path, nats: &str, sink: std::net::SocketAddr, up: u16, lone: u16) -> String {
    // A short breaker recovery, so a recovered port is seen within a second.
    let mut targets = format!(
        "  circuit_breaker:\n    recovery_timeout: 1s\n  targets:\n    - {{ id: uplink, type: tcp, address: \"127.0.0.1:{up}\" }}\n    - {{ id: lonely, type: tcp, address: \"127.0.0.1:{lone}\", depends_on: [uplink] }}\n"
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
            "alert_engine:\n  rules:\n    - { id: endpoint-down, name: Endpoint down, expr: \"check_up == 0 for 2s\", severity: critical, message: \"{{ $labels.target }} is down from {{ $labels.location }}\" }\n",
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

/// The deliveries about targets so far (the default rules may also page
/// about this machine, e.g. its disk): (status, target, summary).
fn deliveries(sink: &Sink) -> Vec<(String, String, String)> {
    sink.all()
        .iter()
        .filter(|h| h.body["notification"]["alerts"][0]["labels"]["target"].is_string())
        .map(|h| {
            let a = &h.body["notification"]["alerts"][0];
            (
                h.body["status"].as_str().unwrap_or_default().to_owned(),
                a["labels"]["target"].as_str().unwrap_or_default().to_owned(),
                a["summary"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_page_for_the_root_cause_and_children_on_their_own_after_it_recovers() {
    let nats = pantau_testkit::Nats::start().await.expect("nats-server starts");
    let (sink, sink_addr) = Sink::start().await;
    let (up_port, lone_port) = (pantau_testkit::free_port(), pantau_testkit::free_port());
    let up = listen(up_port).await;
    let lone = listen(lone_port).await;
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let mut p = Pantau::start(
        dir.path(),
        &config(ports, dir.path(), &nats.url(), sink_addr, up_port, lone_port),
        &["all"],
    );
    let base = format!("http://127.0.0.1:{}", ports.gateway);
    let everyone_up = |v: &serde_json::Value| {
        v["results"]
            .as_array()
            .is_some_and(|r| r.len() >= CHILDREN + 2 && r.iter().all(|x| x["status"] == "up"))
    };
    wait_json(
        &format!("{base}/api/v1/results/latest"),
        Duration::from_secs(60),
        everyone_up,
        &mut p,
    )
    .await;

    // The outage: both ports close.
    up.abort();
    lone.abort();
    let root = sink
        .wait(
            Duration::from_secs(30),
            |h| h.body["status"] == "firing" && h.body["notification"]["alerts"][0]["labels"]["target"].is_string(),
            &mut p,
        )
        .await;
    let summary = root.body["notification"]["alerts"][0]["summary"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(summary.starts_with("uplink is down"), "{summary}");
    assert!(summary.contains("51 dependent targets affected"), "{summary}");
    // Every child's alert is recorded, caused by the parent's.
    let firing = format!("{base}/api/v1/monitoring/alerts?state=firing&limit=200");
    let v = wait_json(
        &firing,
        Duration::from_secs(20),
        |v| {
            v["alerts"]
                .as_array()
                .is_some_and(|a| a.iter().filter(|x| x["labels"]["target"].is_string()).count() > CHILDREN + 1)
        },
        &mut p,
    )
    .await;
    let alerts = v["alerts"].as_array().unwrap();
    let parent = alerts
        .iter()
        .find(|a| a["resource"] == "uplink")
        .expect("the parent's alert");
    let cause = format!("depends:{}", parent["id"].as_str().unwrap());
    // (The default rules may also fire about this machine, e.g. its disk.)
    let children: Vec<_> = alerts
        .iter()
        .filter(|a| a["labels"]["target"].is_string() && a["resource"] != "uplink")
        .collect();
    assert_eq!(children.len(), CHILDREN + 1, "{v}");
    for c in &children {
        let why = c["suppressed_by"].as_str().unwrap_or_default();
        assert!(
            why == cause || why == "depends:target:uplink",
            "{} is caused by {why:?}, not the parent {cause}",
            c["resource"]
        );
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got = deliveries(&sink);
    assert_eq!(got.len(), 1, "one notification for one fault: {got:#?}");

    // The parent's port opens again: its resolve, then `lonely` (still down) on its own.
    let _up = listen(up_port).await;
    let lonely = sink
        .wait(
            Duration::from_secs(30),
            |h| h.body["status"] == "firing" && h.body["notification"]["alerts"][0]["labels"]["target"] == "lonely",
            &mut p,
        )
        .await;
    assert_eq!(lonely.body["status"], "firing");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut got = deliveries(&sink);
    got.sort();
    let kinds: Vec<(&str, &str)> = got.iter().map(|(s, t, _)| (s.as_str(), t.as_str())).collect();
    assert_eq!(
        kinds,
        [("firing", "lonely"), ("firing", "uplink"), ("resolved", "uplink")],
        "after the recovery: the parent's resolve and the lone child's own page, nothing else"
    );
    // The recovered children resolved without a page; `lonely` notifies now.
    let about_targets = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v["alerts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|x| x["labels"]["target"].is_string())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let v = wait_json(
        &firing,
        Duration::from_secs(20),
        |v| about_targets(v).len() == 1,
        &mut p,
    )
    .await;
    let left = about_targets(&v);
    assert_eq!(left[0]["resource"], "lonely", "{v}");
    assert_eq!(left[0]["suppressed_by"], "", "{v}");
    p.assert_running();
}
