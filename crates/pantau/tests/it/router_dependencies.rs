//! Derived dependencies end to end: `pantau all` over a real nats-server, a
//! real snmpd as the site's router (label `site: branch`), its default-route
//! link made the WAN link (`wan_detector.manual`), and 50 TCP targets of the
//! same site. When the link goes down (an SNMP SET on the agent's
//! ifOperStatus) and the targets behind it with it, exactly one
//! notification reaches the webhook — the WAN link's, naming the 50 — and
//! the 50 targets' alerts are recorded with it as their cause; when the link
//! and the targets come back, one resolve.

use std::fmt::Write as _;
use std::time::Duration;

use crate::support::{Pantau, Ports, config_yaml, wait_json};
use crate::traces::Sink;

const BEHIND: usize = 50;

/// A TCP port that accepts while the returned task runs.
async fn listen(port: u16) -> tokio::task::JoinHandle<()> {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    })
}

fn config(
    ports: Ports,
    dir: &std::path::Path,
    nats: &str,
    sink: std::net::SocketAddr,
    agent: std::net::SocketAddr,
    link: &str,
    port: u16,
) -> String {
    let mut collector = format!(
        "  circuit_breaker:\n    recovery_timeout: 1s\n  routers:\n    - {{ id: edge, address: \"{agent}\", snmp: {{ version: v2c, community: {community} }}, interval: 1s, timeout: 900ms, retries: 1, labels: {{ site: branch }} }}\n  targets:\n",
        community = pantau_testkit::SNMP_COMMUNITY,
    );
    for i in 0..BEHIND {
        writeln!(
            collector,
            "    - {{ id: pos-{i:02}, type: tcp, address: \"127.0.0.1:{port}\", labels: {{ site: branch }} }}"
        )
        .unwrap();
    }
    config_yaml(ports, &dir.join("data"), Some(nats))
        .replacen("  targets:\n", &collector, 1)
        .replacen(
            "alert_engine:\n",
            "alert_engine:\n  default_rules: false\n  dependencies: { derive_from_wan: true }\n  rules:\n    - { id: endpoint-down, name: Endpoint down, expr: \"check_up == 0 for 2s\", severity: critical, message: \"{{ $labels.target }} is down from {{ $labels.location }}\" }\n    - { id: wan-down, name: WAN down, expr: 'interface_up{role=\"wan\"} == 0 for 2s', severity: critical, message: \"WAN link {{ $labels.interface }} of {{ $labels.router }} is down\" }\n",
            1,
        )
        .replacen(
            "wan_detector:\n",
            &format!("wan_detector:\n  manual:\n    - {{ router: edge, interface: {link}, wan: true }}\n"),
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

/// Every delivery so far: (status, rule, summary).
fn deliveries(sink: &Sink) -> Vec<(String, String, String)> {
    sink.all()
        .iter()
        .map(|h| {
            let a = &h.body["notification"]["alerts"][0];
            (
                h.body["status"].as_str().unwrap_or_default().to_owned(),
                a["labels"]["alertname"]
                    .as_str()
                    .or_else(|| a["rule_id"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
                a["summary"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routers_wan_link_going_down_pages_once_for_the_fifty_targets_behind_it() {
    let (link, index) = pantau_testkit::default_route_link().expect("this machine has an IPv4 default route");
    // The router answers only once every service is ready: the WAN
    // detector's verdict (published once, when it changes) then reaches
    // the alert engine's consumer, which exists by then.
    let agent_addr = std::net::SocketAddr::from(([127, 0, 0, 1], pantau_testkit::free_udp_port()));
    let nats = pantau_testkit::Nats::start().await.expect("nats-server starts");
    let (sink, sink_addr) = Sink::start().await;
    let port = pantau_testkit::free_port();
    let up = listen(port).await;
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let mut p = Pantau::start(
        dir.path(),
        &config(ports, dir.path(), &nats.url(), sink_addr, agent_addr, &link, port),
        &["all"],
    );
    let base = format!("http://127.0.0.1:{}", ports.gateway);
    wait_json(
        &format!("{base}/api/v1/results/latest"),
        Duration::from_secs(60),
        |v| {
            v["results"]
                .as_array()
                .is_some_and(|r| r.len() >= BEHIND && r.iter().all(|x| x["status"] == "up"))
        },
        &mut p,
    )
    .await;
    let readyz = format!("http://127.0.0.1:{}/readyz", ports.admin);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !reqwest::get(&readyz).await.is_ok_and(|r| r.status().is_success()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "pantau all is not ready:\n{}",
            p.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let agent = pantau_testkit::Snmpd::start_with_links_on(agent_addr.port(), &[index])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The router is polled, the WAN detector judges the link (manual), and
    // the alert engine learns it: a few polls.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        deliveries(&sink).is_empty(),
        "nothing pages while all is up: {:#?}",
        deliveries(&sink)
    );

    // The outage: the uplink goes down, and everything behind it.
    agent.set_link(index, false).await.unwrap();
    up.abort();
    let root = sink
        .wait(Duration::from_secs(30), |h| h.body["status"] == "firing", &mut p)
        .await;
    let summary = root.body["notification"]["alerts"][0]["summary"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !summary.starts_with(&format!("WAN link {link} of edge is down")) {
        let alerts = reqwest::get(format!("{base}/api/v1/monitoring/alerts?limit=200"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let log: Vec<String> = p
            .log()
            .lines()
            .filter(|l| l.contains("wan") || l.contains("router") || l.contains("interface"))
            .take(60)
            .map(str::to_owned)
            .collect();
        panic!(
            "the first page is not the WAN link's: {summary}\nalerts: {alerts:.4000}\nlog:\n{}",
            log.join("\n")
        );
    }
    assert!(summary.contains("50 dependent targets affected"), "{summary}");
    let firing = format!("{base}/api/v1/monitoring/alerts?state=firing&limit=200");
    let v = wait_json(
        &firing,
        Duration::from_secs(30),
        |v| {
            v["alerts"]
                .as_array()
                .is_some_and(|a| a.iter().filter(|x| x["labels"]["target"].is_string()).count() >= BEHIND)
        },
        &mut p,
    )
    .await;
    let alerts = v["alerts"].as_array().unwrap();
    let wan = alerts
        .iter()
        .find(|a| a["labels"]["router"] == "edge" && a["labels"]["interface"] == link.as_str())
        .unwrap_or_else(|| panic!("the WAN link's alert: {v}"));
    let cause = format!("depends:{}", wan["id"].as_str().unwrap());
    let behind: Vec<_> = alerts.iter().filter(|a| a["labels"]["target"].is_string()).collect();
    assert_eq!(behind.len(), BEHIND, "{v}");
    for a in &behind {
        let why = a["suppressed_by"].as_str().unwrap_or_default();
        assert!(
            why == cause || why == "depends:router:edge",
            "{} is caused by {why:?}, not the WAN link {cause}",
            a["resource"]
        );
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got = deliveries(&sink);
    assert_eq!(got.len(), 1, "one notification for one fault: {got:#?}");

    // The uplink and the targets come back: one resolve, nothing else.
    agent.set_link(index, true).await.unwrap();
    let _up = listen(port).await;
    sink.wait(Duration::from_secs(30), |h| h.body["status"] == "resolved", &mut p)
        .await;
    wait_json(
        &firing,
        Duration::from_secs(30),
        |v| {
            v["alerts"].as_array().is_some_and(|a| {
                !a.iter()
                    .any(|x| x["labels"]["target"].is_string() || x["labels"]["router"] == "edge")
            })
        },
        &mut p,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let statuses: Vec<String> = deliveries(&sink).into_iter().map(|(s, _, _)| s).collect();
    assert_eq!(statuses, ["firing", "resolved"], "{:#?}", deliveries(&sink));
    p.assert_running();
}
