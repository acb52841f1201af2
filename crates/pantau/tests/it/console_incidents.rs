//! The incident pages live, in a real browser (headless chromium through
//! chromedriver) against a real `pantau all` with a webhook channel: the
//! list gains the incident when its target goes down, without a reload; on
//! the incident's page a comment made through the REST API and the
//! notifier's `delivered` entry (the webhook took the firing) appear on the
//! timeline, and the state turns `resolved` when the target is back, with
//! the resolve's own `delivered` entry — all from the WebSocket's
//! `incident` events.

use std::net::SocketAddr;
use std::time::Duration;

use fantoccini::Locator;
use pantau_testkit::{ChromeDriver, free_port};
use serde_json::json;
use tokio::net::TcpListener;

use crate::console::{SOON, admin_password, browser, shot, sign_in, wait_text};
use crate::support::{Pantau, Ports, Sink, config_yaml, http, wait_json};

fn config(ports: Ports, dir: &std::path::Path, web: SocketAddr, sink: SocketAddr) -> String {
    config_yaml(ports, dir, None)
        .replace(
            "  targets:\n",
            &format!("  targets:\n    - id: incident-web\n      type: tcp\n      address: {web}\n"),
        )
        .replace(
            "alert_engine:\n",
            "alert_engine:\n  default_rules: false\n  rules:\n    - id: incident-web-down\n      expr: check_up{target=\"incident-web\"} == 0\n      severity: critical\n      message: \"{{ $labels.target }} is down\"\n",
        )
        .replace(
            "notifier:\n",
            &format!(
                "notifier:\n  poll_interval: 200ms\n  channels:\n    - {{ name: hook, type: webhook, url: 'http://{sink}/hook' }}\n  routes:\n    - channels: [hook]\n"
            ),
        )
}

async fn listen(addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    let listener = TcpListener::bind(addr).await.expect("bind the test service");
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    })
}

/// Whether the page is still the one marked by `window.__same`.
async fn same_document(c: &fantoccini::Client) -> bool {
    c.execute("return window.__same === true;", vec![]).await.unwrap() == json!(true)
}

#[tokio::test]
async fn the_incident_pages_follow_their_incidents_live() {
    let driver = ChromeDriver::start()
        .await
        .expect("chromedriver (Debian: chromium-driver, chromium)");
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let web: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (sink, sink_addr) = Sink::start().await;
    let service = listen(web).await;
    let mut p = Pantau::start(dir.path(), &config(ports, dir.path(), web, sink_addr), &["all"]);
    let base = format!("http://127.0.0.1:{}", ports.gateway);
    wait_json(
        &format!("{base}/api/v1/results/latest"),
        SOON,
        |v| {
            v["results"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|r| r["target_id"] == "incident-web" && r["status"] == "up")
            })
        },
        &mut p,
    )
    .await;
    let password = admin_password(&p).await;
    let c = browser(&driver, 1280).await;
    sign_in(&c, &base, "admin", &password).await;

    // The list, empty; the incident appears without a reload.
    c.goto(&format!("{base}/console/incidents")).await.unwrap();
    wait_text(&c, "#incidents tbody", SOON, |t| !t.contains("incident-web")).await;
    c.wait()
        .at_most(SOON)
        .for_element(Locator::Css("body[data-incidents-live]"))
        .await
        .expect("the list follows the hub");
    c.execute("window.__same = true;", vec![]).await.unwrap();
    service.abort();
    let _ = service.await;
    wait_text(&c, "#incidents tbody", SOON, |t| t.contains("incident-web is down")).await;
    let state = c
        .execute(
            "for (const a of document.querySelectorAll('#incidents [data-incident-title]')) { \
               if (a.textContent === 'incident-web is down') \
                 return a.closest('tr').querySelector('[data-incident-state]').textContent; } return null;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(state, json!("open"));
    assert!(same_document(&c).await, "the row came without a reload");
    shot(&c, "incidents-live").await;

    // One incident's page: a comment and the webhook's delivery arrive live.
    let v = wait_json(
        &format!("{base}/api/v1/incidents?state=open"),
        SOON,
        |v| v["incidents"].as_array().is_some_and(|a| !a.is_empty()),
        &mut p,
    )
    .await;
    let id = v["incidents"][0]["id"].as_str().unwrap().to_owned();
    c.goto(&format!("{base}/console/incidents/{id}")).await.unwrap();
    c.wait()
        .at_most(SOON)
        .for_element(Locator::Css("body[data-incidents-live]"))
        .await
        .expect("the page follows its incident");
    c.execute("window.__same = true;", vec![]).await.unwrap();
    let r = http()
        .post(format!("{base}/api/v1/incidents/{id}/comments"))
        .json(&json!({"text": "<b>ISP</b> ticket 4711"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    wait_text(&c, "#timeline tr.entry-commented", SOON, |t| {
        t.contains("<b>ISP</b> ticket 4711")
    })
    .await;
    let delivered = wait_text(&c, "#timeline tr.entry-delivered", SOON, |t| !t.is_empty()).await;
    assert!(
        delivered.contains("its firing delivered via channel hook (webhook)"),
        "{delivered}"
    );
    assert!(!sink.all().is_empty(), "the webhook took the firing");
    // The page's text stays text: no element came from the comment.
    let bold = c
        .execute("return document.querySelectorAll('#timeline b').length;", vec![])
        .await
        .unwrap();
    assert_eq!(bold, json!(0));

    // Back up: the alert and the incident resolve, seen on the page.
    let service = listen(web).await;
    wait_text(&c, "#incident-state", Duration::from_secs(60), |t| t == "resolved").await;
    wait_text(&c, "#incident-open", SOON, |t| t == "0").await;
    // The resolve's delivery came after the page was loaded: from the hub.
    wait_text(&c, "#timeline", SOON, |t| {
        t.contains("its resolve delivered via channel hook (webhook)")
    })
    .await;
    assert!(same_document(&c).await, "all of it without a reload");
    shot(&c, "incident-live").await;
    service.abort();
    c.close().await.unwrap();
}
