//! Interface traffic history end to end: `pantau all` polls a real SNMP
//! agent (net-snmp's snmpd, this machine's interfaces, whose `lo` counters
//! move with the loopback traffic sent between polls); `GET
//! /api/v1/routers/{id}/interfaces/{name}/traffic` answers minutes, hours
//! and the range's p95, refuses hostile parameters naming them; the
//! console's router page draws the last 24 hours as an inline SVG with the
//! p95; a restart keeps the history.

#![allow(clippy::float_cmp)]

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde_json::Value;

use crate::console::{SOON, admin_password};
use crate::support::{Pantau, Ports, config_yaml, http, wait_json};

/// Sends `mib` MiB of UDP over loopback (moving `lo`'s counters).
fn loopback_traffic(mib: usize) {
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let src = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..mib * 256 {
        let _ = src.send_to(&[7_u8; 4096], sink.local_addr().unwrap());
    }
}

fn config(ports: Ports, dir: &std::path::Path, agent: std::net::SocketAddr) -> String {
    config_yaml(ports, dir, None).replace(
        "  targets:\n",
        &format!(
            "  history:\n    flush_interval: 1s\n  routers:\n    - id: edge\n      address: {agent}\n      interval: 1s\n      timeout: 900ms\n      snmp:\n        community: public\n  targets:\n"
        ),
    )
}

/// Signs in to the console over HTTP; the session cookie.
async fn console_cookie(base: &str, password: &str) -> String {
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = anon
        .post(format!("{base}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username=admin&password={password}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snmp_traffic_history_through_rest_and_the_console_survives_a_restart() {
    let agent = pantau_testkit::Snmpd::start().await.unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let cfg = config(ports, dir.path(), agent.addr());
    let mut p = Pantau::start(dir.path(), &cfg, &["all"]);
    let base = format!("http://127.0.0.1:{}", ports.gateway);
    let url = format!("{base}/api/v1/routers/edge/interfaces/lo/traffic");
    let feeder = std::thread::spawn(|| {
        for _ in 0..8 {
            loopback_traffic(2);
            std::thread::sleep(Duration::from_millis(700));
        }
    });
    let v = wait_json(
        &format!("{url}?resolution=minute"),
        SOON,
        // Any minute with more than one sample: the first minute may hold a
        // single poll when the run starts just before a minute's end.
        |v| full_minute(v).is_some() && v["p95_in_bps"].as_f64() > Some(0.0),
        &mut p,
    )
    .await;
    feeder.join().unwrap();
    assert_eq!(v["router_id"], "edge", "{v}");
    assert_eq!(v["interface"], "lo", "{v}");
    assert_eq!(v["resolution"], "minute", "{v}");
    assert_eq!(v["p95_basis"], "minute", "{v}");
    let pt = full_minute(&v).unwrap();
    let f = |k: &str| pt[k].as_f64().unwrap();
    assert!(
        f("in_min_bps") <= f("in_avg_bps") && f("in_avg_bps") <= f("in_max_bps"),
        "{pt}"
    );
    assert!(f("in_p95_bps") <= f("in_max_bps"), "{pt}");
    assert_eq!(
        v["p95_bps"].as_f64().unwrap(),
        v["p95_in_bps"]
            .as_f64()
            .unwrap()
            .max(v["p95_out_bps"].as_f64().unwrap())
    );
    let hours = wait_json(
        &format!("{url}?resolution=hour"),
        SOON,
        |v| v["points"].as_array().is_some_and(|p| !p.is_empty()),
        &mut p,
    )
    .await;
    assert_eq!(hours["resolution"], "hour", "{hours}");

    // Hostile parameters: 400 naming the parameter; an unknown router 404.
    let client = http();
    let long = "x".repeat(300);
    for (path, says) in [
        ("/api/v1/routers/edge/interfaces/lo/traffic?resolution=second".to_owned(), "resolution"),
        ("/api/v1/routers/edge/interfaces/lo/traffic?resolution=".to_owned(), "resolution"),
        ("/api/v1/routers/edge/interfaces/lo/traffic?from=yesterday".to_owned(), "from"),
        ("/api/v1/routers/edge/interfaces/lo/traffic?to=2026-02-30T25:00:00Z".to_owned(), "to"),
        (
            "/api/v1/routers/edge/interfaces/lo/traffic?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z".to_owned(),
            "from must be before to",
        ),
        (
            "/api/v1/routers/edge/interfaces/lo/traffic?resolution=minute&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z".to_owned(),
            "8 days",
        ),
        ("/api/v1/routers/edge/interfaces/lo/traffic?colour=red".to_owned(), "colour"),
        ("/api/v1/routers/edge/interfaces/lo/traffic?from=1&from=2".to_owned(), "from"),
        ("/api/v1/routers/ed.ge/interfaces/lo/traffic".to_owned(), "router id"),
        (format!("/api/v1/routers/edge/interfaces/{long}/traffic"), "interface name"),
        ("/api/v1/routers/edge/interfaces/lo%00/traffic".to_owned(), "interface name"),
        ("/api/v1/routers/edge/interfaces/%FF%FE/traffic".to_owned(), "does not decode"),
    ] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_argument", "{path}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{path}: {body}"
        );
    }
    let r = client
        .get(format!("{base}/api/v1/routers/ghost/interfaces/lo/traffic"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let anon = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    // An interface never seen: no points, not an error.
    let none: Value = client
        .get(format!("{base}/api/v1/routers/edge/interfaces/Gi0%2F9%20spare/traffic"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none["interface"], "Gi0/9 spare", "{none}");
    assert_eq!(none["points"], serde_json::json!([]), "{none}");

    // The console's router page: an inline SVG of lo's last 24 hours and its p95.
    let password = admin_password(&p).await;
    let cookie = console_cookie(&base, &password).await;
    let page = wait_page(&base, &cookie, &mut p).await;
    let lo = page
        .split("data-history=\"lo\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no history of lo: {page}"));
    let lo = &lo[..lo.find("</div>").unwrap()];
    assert!(lo.contains("<svg class=\"traffic-history\""), "{lo}");
    assert!(lo.contains("class=\"p95\""), "{lo}");
    assert!(lo.contains("data-p95>") && lo.contains("bit/s"), "{lo}");
    assert!(!page.contains("<script>alert"), "nothing unescaped");

    // A restart keeps the history: the minutes polled before it are still there.
    let before = pt.clone();
    let status = p.terminate();
    assert!(status.success(), "{}", p.log());
    let stopped = SystemTime::now();
    let mut p = Pantau::start(dir.path(), &cfg, &["all"]);
    let kept_start = before["start"].as_str().unwrap().to_owned();
    let after = wait_json(
        &format!("{url}?resolution=minute"),
        SOON,
        |v| {
            v["points"]
                .as_array()
                .is_some_and(|p| p.iter().any(|x| x["start"] == kept_start.as_str()))
        },
        &mut p,
    )
    .await;
    let kept = after["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["start"] == kept_start.as_str())
        .unwrap();
    assert!(
        kept["samples"].as_u64() >= before["samples"].as_u64(),
        "{kept} vs {before}"
    );
    assert!(stopped.elapsed().unwrap() < Duration::from_secs(60));
    drop(p);
}

/// The first minute of an answer that holds more than one sample.
fn full_minute(v: &Value) -> Option<&Value> {
    v["points"].as_array()?.iter().find(|x| x["samples"].as_u64() > Some(1))
}

/// The router page, once the WAN detector has seen the router.
async fn wait_page(base: &str, cookie: &str, p: &mut Pantau) -> String {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        p.assert_running();
        let r = client
            .get(format!("{base}/console/routers/edge"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        if status == StatusCode::OK && text.contains("<svg class=\"traffic-history\"") {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the router page never drew the history: {status} {}",
            &text[..text.len().min(3000)]
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
