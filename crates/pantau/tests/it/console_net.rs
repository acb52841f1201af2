//! The console's network pages: routers (interfaces, WAN judgement, live
//! traffic, timeline), locations and instances, and editing a target. Over
//! HTTP against the gateway with the real services behind it (the RouterOS
//! simulator polled by the collector's poller, the WAN detector), and in a
//! real browser against `pantau all` (helpers of `console.rs`).

use std::sync::Arc;
use std::time::Duration;

use fantoccini::Locator;
use pantau_collector::routers::RouterPoller;
use pantau_config::{CollectorConfig, RouterConfig, RouterDriver};
use pantau_core::bus::Bus;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::service::Context;
use pantau_testkit::{ChromeDriver, Nats, ROUTEROS_PASSWORD, ROUTEROS_USER, RouterOsSim, free_port};
use reqwest::StatusCode;
use serde_json::json;

use crate::console::{SOON, admin_password, browser, fill, shot, sign_in, wait_text};
use crate::gateway_routes::{Detector, detector_config, eventually};
use crate::support::{Pantau, Ports, config_yaml, http, wait_json};

/// A page's status and HTML.
async fn page(http: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let r = http.get(url).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_pages_show_interfaces_wan_and_the_timeline() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = RouterOsSim::start().await.unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let detector = Detector::start(detector_config(dir.path()), Arc::clone(&bus)).await;
    let mut edge = RouterConfig::routeros(
        "edge",
        sim.api_addr().to_string(),
        RouterDriver::Routeros,
        ROUTEROS_USER,
        ROUTEROS_PASSWORD,
    );
    edge.interval = Some(Duration::from_secs(5));
    edge.timeout = Some(Duration::from_secs(2));
    let mut cfg = detector_config(dir.path());
    cfg.gateway.wan_detector_url = format!("http://{}", detector.addr);
    cfg.collector.routers.push(edge.clone());
    let cfg = Arc::new(cfg);
    let ctx = Context::new(Arc::clone(&cfg), Arc::clone(&bus));
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", web.local_addr().unwrap());
    let gateway = tokio::spawn(pantau_gateway::run(ctx.clone(), web));
    let http = reqwest::Client::new();

    // Nothing polled yet: the list says so; an unknown router is 404, a bad id 400.
    let (code, html) = eventually("the gateway", || async {
        let r = http.get(format!("{base}/console/routers")).send().await.ok()?;
        Some((r.status(), r.text().await.ok()?))
    })
    .await;
    assert_eq!(code, StatusCode::OK, "{html}");
    assert!(html.contains("No router has been polled yet"), "{html}");
    let (code, html) = page(&http, &format!("{base}/console/routers/ghost")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(html.contains("router `ghost` has not been seen"), "{html}");
    let (code, html) = page(&http, &format!("{base}/console/routers/a.b%3Cscript%3E")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(!html.contains("<script>") && html.contains("is not valid"), "{html}");

    // Polls: traffic, then a reboot and a LAN link going down.
    let mut poller = RouterPoller::new(&edge, &CollectorConfig::default(), Arc::clone(&bus));
    let mut poll = async || {
        let (o, _) = poller.poll_once().await;
        assert!(o.up, "the poll failed: {:?}", o.events);
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    poll().await;
    sim.add_traffic("ether1", 90_000_000, 4_000_000);
    poll().await;
    sim.reboot(Duration::from_secs(60));
    sim.set_running("ether2", false);
    poll().await;

    let list = eventually("edge in the list", || async {
        let (code, html) = page(&http, &format!("{base}/console/routers")).await;
        (code == StatusCode::OK && html.contains("/console/routers/edge")).then_some(html)
    })
    .await;
    assert!(list.contains("edge-jkt"), "sys_name: {list}");
    assert!(list.contains("routeros"), "the driver: {list}");
    assert!(list.contains(">reachable<"), "{list}");

    let html = eventually("edge's timeline", || async {
        let (code, html) = page(&http, &format!("{base}/console/routers/edge")).await;
        (code == StatusCode::OK && html.contains(r#"data-kind="interface_down""#)).then_some(html)
    })
    .await;
    for iface in ["ether1", "ether2", "pppoe-out1", "bridge1"] {
        assert!(html.contains(&format!("<b>{iface}</b>")), "{iface}: {html}");
    }
    // ether1 carries the active default route: WAN by route, ISP Telkom by its comment.
    let ether1 = row(&html, "ether1");
    assert!(ether1.contains("WAN ") && ether1.contains("route ("), "{ether1}");
    assert!(ether1.contains("telkom"), "{ether1}");
    assert!(!row(&html, "bridge1").contains("WAN "), "{html}");
    assert!(row(&html, "ether2").contains(">down<"), "{html}");
    assert!(html.contains(r#"data-kind="reboot""#), "{html}");
    assert!(html.contains("driver routeros"), "{html}");
    // A chart holder per interface, for the live traffic events.
    assert!(
        html.contains(r#"data-chart="1""#) && html.contains("/assets/net.js"),
        "{html}"
    );

    // The console's script is served.
    let js = http.get(format!("{base}/assets/net.js")).send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.text().await.unwrap().contains("types="));

    // A restarted gateway shows the same timeline (its store kept it).
    ctx.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), gateway)
        .await
        .expect("the gateway stops")
        .unwrap()
        .unwrap();
    let ctx = Context::new(Arc::clone(&cfg), Arc::clone(&bus));
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", web.local_addr().unwrap());
    let gateway = tokio::spawn(pantau_gateway::run(ctx.clone(), web));
    let again = eventually("the restarted gateway", || async {
        let (code, html) = page(&http, &format!("{base}/console/routers/edge")).await;
        (code == StatusCode::OK).then_some(html)
    })
    .await;
    for kind in ["reboot", "interface_down"] {
        assert!(
            again.contains(&format!(r#"data-kind="{kind}""#)),
            "{kind} after a restart: {again}"
        );
    }

    ctx.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), gateway).await;
    detector.stop().await;
}

/// The table row of interface `name` in a router page.
fn row<'a>(html: &'a str, name: &str) -> &'a str {
    let at = html
        .find(&format!("<b>{name}</b>"))
        .unwrap_or_else(|| panic!("no row of {name}"));
    let end = html[at..].find("</tr>").map_or(html.len(), |e| at + e);
    &html[at..end]
}

#[tokio::test]
async fn a_router_in_a_real_browser() {
    let driver = ChromeDriver::start()
        .await
        .expect("chromedriver (Debian: chromium-driver, chromium)");
    let sim = RouterOsSim::start().await.unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let config = config_yaml(ports, dir.path(), None).replace(
        "  targets:\n",
        &format!(
            "  routers:\n    - id: edge\n      address: {}\n      driver: routeros\n      username: {ROUTEROS_USER}\n      password: {ROUTEROS_PASSWORD}\n      interval: 1s\n      timeout: 900ms\n  targets:\n",
            sim.api_addr()
        ),
    );
    let mut p = Pantau::start(dir.path(), &config, &["all"]);
    let base = format!("http://127.0.0.1:{}", ports.gateway);
    wait_json(
        &format!("{base}/api/v1/routers/edge/interfaces"),
        SOON,
        |v| v["interfaces"].as_array().is_some_and(|i| i.len() == 4),
        &mut p,
    )
    .await;
    let password = admin_password(&p).await;

    // A phone-sized window: the page must be usable there.
    let c = browser(&driver, 420).await;
    sign_in(&c, &base, "admin", &password).await;
    c.find(Locator::Css("a[href='/console/routers']"))
        .await
        .expect("Routers in the nav")
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("a[href='/console/routers/edge']"))
        .await
        .expect("edge in the list")
        .click()
        .await
        .unwrap();
    wait_text(&c, "#interfaces", SOON, |t| {
        t.contains("ether1") && t.contains("pppoe-out1")
    })
    .await;
    // Traffic keeps flowing: the live chart of ether1 appears from the hub's events.
    for _ in 0..3 {
        sim.add_traffic("ether1", 50_000_000, 2_000_000);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    c.wait()
        .at_most(SOON)
        .for_element(Locator::Css("[data-chart='1'] canvas"))
        .await
        .expect("ether1's live traffic chart");
    shot(&c, "router").await;
}

/// `pantau all` as a cluster's primary (NATS for the lease), with the
/// console signed in: its config and the sync API's port.
fn primary_config(ports: Ports, dir: &std::path::Path, nats: &str) -> String {
    let (sync, sync_admin) = (free_port(), free_port());
    config_yaml(ports, dir, Some(nats)).replace(
        "gateway:\n",
        &format!("instance:\n  name: jkt-1\n  location: jkt\ngateway:\n  sync_url: http://127.0.0.1:{sync}\n"),
    ) + &format!(
        "sync:\n  enabled: true\n  role: primary\n  grpc_port: {sync}\n  admin_port: {sync_admin}\n  public_url: http://127.0.0.1:{sync}\n  collector_url: http://127.0.0.1:{}\n  token: {JOIN}\n  heartbeat_interval: 1s\n",
        ports.collector_grpc
    )
}

const JOIN: &str = "join-token-for-the-console-tests";

/// Sets the edit form's JSON and saves it.
async fn save_edit(c: &fantoccini::Client, body: &serde_json::Value) {
    c.execute(
        "document.querySelector('#edit-form textarea').value = arguments[0];",
        vec![json!(serde_json::to_string_pretty(body).unwrap())],
    )
    .await
    .unwrap();
    c.find(Locator::Css("#edit-save")).await.unwrap().click().await.unwrap();
}

/// The edit form's JSON once the target has loaded into it.
async fn edit_body(c: &fantoccini::Client) -> String {
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        let v = c
            .execute("return document.querySelector('#edit-form textarea').value;", vec![])
            .await
            .unwrap();
        let v = v.as_str().unwrap_or_default().to_owned();
        if !v.is_empty() {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "the edit form never loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_out(c: &fantoccini::Client) {
    c.find(Locator::Css("#sign-out")).await.unwrap().click().await.unwrap();
    c.wait()
        .at_most(SOON)
        .for_element(Locator::Css("#login"))
        .await
        .expect("signed out");
}

#[tokio::test]
async fn locations_instances_and_editing_a_target_in_a_real_browser() {
    let driver = ChromeDriver::start()
        .await
        .expect("chromedriver (Debian: chromium-driver, chromium)");
    let nats = Nats::start().await.unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let mut p = Pantau::start(dir.path(), &primary_config(ports, dir.path(), &nats.url()), &["all"]);
    let base = format!("http://127.0.0.1:{}", ports.gateway);
    wait_json(
        &format!("{base}/sync/api/status"),
        SOON,
        |v| v["role"] == "primary",
        &mut p,
    )
    .await;
    let api = http();
    for (name, role) in [("ed", "editor"), ("vi", "viewer")] {
        let r = api
            .post(format!("{base}/api/v1/users"))
            .json(&json!({"username": name, "password": format!("{name}-password-1"), "role": role}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let made = json!({"id": "api-web", "name": "API web", "type": "tcp", "address": "127.0.0.1:9", "interval": "30s"});
    let r = api
        .post(format!("{base}/api/v1/targets"))
        .json(&made)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let password = admin_password(&p).await;

    // An admin: the instances with this one as primary, the register form; registering shows the token once.
    let c = browser(&driver, 1280).await;
    sign_in(&c, &base, "admin", &password).await;
    c.goto(&format!("{base}/console/locations")).await.unwrap();
    wait_text(&c, "#role", SOON, |t| t == "primary").await;
    wait_text(&c, "tr[data-instance=jkt-1]", SOON, |t| {
        t.contains("primary") && t.contains("Demote") && !t.contains("Remove")
    })
    .await;
    fill(&c, "#register input[name=instance_id]", "sby-1").await;
    fill(&c, "#register input[name=location]", "sby").await;
    fill(&c, "#register input[name=join_token]", "not-the-join-token").await;
    c.find(Locator::Css("#register button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#flash", SOON, |t| t.contains("join token")).await;
    assert!(
        c.find(Locator::Css("#registered"))
            .await
            .unwrap()
            .attr("hidden")
            .await
            .unwrap()
            .is_some(),
        "a wrong join token registers nothing"
    );
    fill(&c, "#register input[name=instance_id]", "sby-1").await;
    fill(&c, "#register input[name=location]", "sby").await;
    fill(&c, "#register input[name=join_token]", JOIN).await;
    c.find(Locator::Css("#register button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#instance-token", SOON, |t| t.len() > 20).await;
    c.refresh().await.unwrap();
    wait_text(&c, "tr[data-instance=sby-1]", SOON, |t| {
        t.contains("sby") && t.contains("Remove")
    })
    .await;
    // Removing it through the console revokes its token (the REST route, confirmed first).
    c.find(Locator::Css("tr[data-instance=sby-1] button[data-method=DELETE]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.accept_alert().await.expect("the removal asks to confirm");
    wait_text(&c, "tr[data-instance=sby-1]", SOON, |t| t.contains("revoked")).await;
    // The matrix: the targets with this location's column.
    wait_text(&c, "#matrix", SOON, |t| t.contains("API web") && t.contains("jkt")).await;
    shot(&c, "locations-admin").await;
    sign_out(&c).await;

    // A viewer: the same page without a control, the target page without Edit.
    sign_in(&c, &base, "vi", "vi-password-1").await;
    c.goto(&format!("{base}/console/locations")).await.unwrap();
    wait_text(&c, "#instances", SOON, |t| t.contains("sby-1")).await;
    for control in ["#register", "#promote", "[data-api^='/sync/api/']"] {
        assert!(c.find(Locator::Css(control)).await.is_err(), "a viewer sees {control}");
    }
    c.goto(&format!("{base}/console/targets/api-web")).await.unwrap();
    wait_text(&c, "#target h1", SOON, |t| t.contains("API web")).await;
    assert!(
        c.find(Locator::Css("#edit-target")).await.is_err(),
        "a viewer sees Edit"
    );
    sign_out(&c).await;

    // An editor edits the target: a refusal names the field inline, a good body is saved.
    sign_in(&c, &base, "ed", "ed-password-1").await;
    c.goto(&format!("{base}/console/targets/api-web")).await.unwrap();
    c.find(Locator::Css("#edit-load")).await.unwrap().click().await.unwrap();
    let loaded = edit_body(&c).await;
    assert!(
        loaded.contains("\"api-web\"") && loaded.contains("127.0.0.1:9"),
        "{loaded}"
    );
    assert!(!loaded.contains("breaker") && !loaded.contains("source"), "{loaded}");
    let mut bad = made.clone();
    bad["interval"] = json!("0s");
    save_edit(&c, &bad).await;
    let error = wait_text(&c, "#edit-error", SOON, |t| !t.is_empty()).await;
    assert!(error.contains("target.interval"), "{error}");
    // Hostile bodies are refused by the API, by name, shown in place.
    let mut kind = made.clone();
    kind["type"] = json!("carrier-pigeon");
    save_edit(&c, &kind).await;
    wait_text(&c, "#edit-error", SOON, |t| t.contains("carrier-pigeon")).await;
    let mut huge = made.clone();
    huge["name"] = json!("n".repeat(100_000));
    save_edit(&c, &huge).await;
    let error = wait_text(&c, "#edit-error", SOON, |t| t.contains("name")).await;
    assert!(
        error.len() < 2_000,
        "the refusal quotes at most a little: {} bytes",
        error.len()
    );
    // A secret still masked as the API shows it is never saved as `***`.
    save_edit(&c, &json!({"id": "api-web", "type": "push", "token": "***"})).await;
    wait_text(&c, "#edit-error", SOON, |t| t.contains("still shown as ***")).await;
    let mut good = made.clone();
    good["name"] = json!("API web renamed");
    save_edit(&c, &good).await;
    wait_text(&c, "#target h1", SOON, |t| t.contains("API web renamed")).await;
    shot(&c, "target-edited").await;
    let v: serde_json::Value = api
        .get(format!("{base}/api/v1/targets/api-web"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["name"], "API web renamed", "{v}");
    // The edit is in the audit log under the editor's name.
    let audit: serde_json::Value = api
        .get(format!("{base}/api/v1/audit?actor=ed"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let puts: Vec<i64> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["method"] == "PUT" && e["path"] == "/api/v1/targets/api-web")
        .filter_map(|e| e["status"].as_i64())
        .collect();
    assert!(puts.contains(&400) && puts.contains(&200), "{audit}");
}
