//! The console's administration pages in a real browser (headless Debian
//! chromium through `chromedriver`, started by pantau-testkit) against a
//! real `pantau all`: an admin writes a rule whose expression does not
//! parse and sees the engine's column under the field as they type, fixes
//! and saves it; sends a channel's test to a real webhook receiver without
//! any secret reaching the page; creates an API key shown once; reads the
//! audit log; a viewer, on a phone, is offered no write and no admin page.
//! Screenshots go to `$CARGO_TARGET_DIR/console-screenshots/admin-*.png`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use fantoccini::{Client, Locator};
use pantau_gateway::console::page::urlencode;
use pantau_testkit::ChromeDriver;
use serde_json::{Value, json};

use super::console::{SOON, admin_password, browser, fill, shot, sign_in, text, wait_text};
use crate::support::{Pantau, Ports, config_yaml, http, wait_json};

const URL_TOKEN: &str = "url-token-4f1e9a";
const HMAC_SECRET: &str = "hmac-secret-77c2d0";

/// A webhook receiver on loopback counting what it is sent.
async fn receiver() -> (Arc<AtomicUsize>, u16) {
    let got = Arc::new(AtomicUsize::new(0));
    let kept = Arc::clone(&got);
    let app = axum::Router::new().fallback(move || {
        kept.fetch_add(1, Ordering::SeqCst);
        async { "ok" }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (got, port)
}

/// The example targets; a routed webhook channel whose URL and HMAC key are
/// secrets, and one no route names.
fn config(ports: Ports, dir: &std::path::Path, hook: u16) -> String {
    config_yaml(ports, dir, None).replace(
        "notifier:\n",
        &format!(
            "notifier:\n  channels:\n    - {{ name: ops-hook, type: webhook, url: 'http://127.0.0.1:{hook}/hook?token={URL_TOKEN}', secret: {HMAC_SECRET} }}\n    - {{ name: idle-hook, type: webhook, url: 'http://127.0.0.1:{hook}/idle/{URL_TOKEN}' }}\n  routes:\n    - {{ severity: [critical], channels: [ops-hook] }}\n"
        ),
    )
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn absent(c: &Client, css: &str) -> bool {
    c.find(Locator::Css(css)).await.is_err()
}

/// `GET /api/v1/monitoring/alerts/rules/validate?expr=…` as the admin.
async fn validate(base: &str, expr: &str) -> (u16, Value) {
    let r = http()
        .get(format!(
            "{base}/api/v1/monitoring/alerts/rules/validate?expr={}",
            urlencode(expr)
        ))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn admin_pages_in_a_real_browser() {
    let driver = ChromeDriver::start()
        .await
        .expect("chromedriver (Debian: chromium-driver, chromium)");
    let (hooks, hook_port) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let mut p = Pantau::start(dir.path(), &config(ports, dir.path(), hook_port), &["all"]);
    let base = format!("http://127.0.0.1:{}", ports.gateway);
    let api = http();
    wait_json(
        &format!("{base}/api/v1/channels"),
        SOON,
        |v| v["routes"][0]["channels"][0] == "ops-hook",
        &mut p,
    )
    .await;

    // The REST check: the engine's column and reason, or what a rule reads.
    let bad = "check_up{target=\"gateway-healthz\"} == ";
    let (status, v) = validate(&base, bad).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["valid"], false, "{v}");
    let column = v["column"].as_u64().unwrap();
    assert!(column > 30, "{v}");
    let good = "check_up{target=\"gateway-healthz\"} == 0 for 1m";
    let (_, v) = validate(&base, good).await;
    assert_eq!(
        v,
        json!({"valid": true, "column": null, "reason": null, "metrics": ["check_up"], "for": "1m"})
    );
    let (status, v) = validate(&base, &"x".repeat(5000)).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("expr is 5000 bytes"),
        "{v}"
    );
    let r = api
        .get(format!("{base}/api/v1/monitoring/alerts/rules/validate?expression=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let channels = api
        .get(format!("{base}/api/v1/channels"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !channels.contains(URL_TOKEN) && !channels.contains(HMAC_SECRET),
        "{channels}"
    );

    let admin_password = admin_password(&p).await;
    let r = api
        .post(format!("{base}/api/v1/users"))
        .json(&json!({"username": "vi", "password": "vi-password-1", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let c = browser(&driver, 1280).await;
    sign_in(&c, &base, "admin", &admin_password).await;

    // A rule: the column of the fault under the field as it is typed, then saved.
    c.goto(&format!("{base}/console/rules")).await.unwrap();
    fill(&c, "#rule-form input[name=id]", "ui-rule").await;
    fill(&c, "#rule-form input[name=name]", "Gateway down").await;
    fill(&c, "#expr", bad).await;
    let error = wait_text(&c, "#expr-error", SOON, |t| t.starts_with("column ")).await;
    assert!(error.starts_with(&format!("column {column}:")), "{error}");
    let caret = wait_text(&c, "pre.caret", SOON, |t| t.ends_with('^')).await;
    assert_eq!(
        caret.lines().last().unwrap().chars().count(),
        usize::try_from(column).unwrap(),
        "the caret under the column: {caret}"
    );
    shot(&c, "admin-rules-error").await;
    fill(&c, "#expr", good).await;
    let ok = wait_text(&c, "#expr-ok", SOON, |t| t.contains("parses")).await;
    assert!(ok.contains("check_up") && ok.contains("1m"), "{ok}");
    fill(&c, "#rule-form input[name=labels]", "team=ops").await;
    c.find(Locator::Css("#rule-form select[name=severity] option[value=critical]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(&c, "#save-rule").await;
    let row = wait_text(&c, "tr[data-rule=ui-rule]", SOON, |t| t.contains("Gateway down")).await;
    assert!(row.contains("team=ops") && row.contains("critical"), "{row}");
    let rules = wait_json(
        &format!("{base}/api/v1/monitoring/alerts/rules"),
        SOON,
        |v| {
            v["rules"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["id"] == "ui-rule"))
        },
        &mut p,
    )
    .await;
    let saved = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "ui-rule")
        .unwrap()
        .clone();
    assert_eq!(saved["expr"], good);
    assert_eq!(saved["labels"], json!({"team": "ops"}));
    assert_eq!(saved["origin"], "api");
    shot(&c, "admin-rules").await;

    // Channels: a test reaches the receiver; no secret reaches the page.
    c.goto(&format!("{base}/console/channels")).await.unwrap();
    wait_text(&c, "tr[data-channel=idle-hook]", SOON, |t| t.contains("no route")).await;
    click(&c, "tr[data-channel=ops-hook] button").await;
    let outcome = wait_text(&c, "tr[data-channel=ops-hook] [aria-live]", SOON, |t| {
        t.starts_with("sent") || t.starts_with("failed")
    })
    .await;
    assert!(outcome.starts_with("sent"), "{outcome}");
    assert!(hooks.load(Ordering::SeqCst) >= 1, "the receiver got the test");
    let source = c.source().await.unwrap();
    assert!(
        !source.contains(URL_TOKEN) && !source.contains(HMAC_SECRET),
        "a secret is on the page"
    );
    // The "Add a channel" form offers every type with its own fields, and
    // writes the YAML of the channel (in the page only).
    let types = text(&c, "#new-channel select[name=type]").await.unwrap_or_default();
    for t in [
        "ntfy",
        "gotify",
        "pushover",
        "matrix",
        "mattermost",
        "google_chat",
        "opsgenie",
        "rocketchat",
        "signal",
        "sms",
    ] {
        assert!(types.contains(t), "the form does not offer {t}: {types}");
    }
    click(&c, "#new-channel select[name=type] option[value=signal]").await;
    assert!(
        absent(&c, "#new-channel fieldset[data-type=signal][hidden]").await,
        "signal's fields are hidden"
    );
    fill(&c, "#new-channel input[name=name]", "oncall-signal").await;
    fill(
        &c,
        "#new-channel fieldset[data-type=signal] input[name=url]",
        "http://127.0.0.1:8080",
    )
    .await;
    fill(
        &c,
        "#new-channel fieldset[data-type=signal] input[name=sender]",
        "+628111234560",
    )
    .await;
    fill(
        &c,
        "#new-channel fieldset[data-type=signal] input[name=to]",
        "+628111234561, group.b3Bz",
    )
    .await;
    click(&c, "#new-channel button[type=submit]").await;
    let yaml = wait_text(&c, "#channel-yaml", SOON, |t| t.contains("type")).await;
    assert_eq!(
        yaml.trim(),
        "- name: \"oncall-signal\"\n  type: \"signal\"\n  url: \"http://127.0.0.1:8080\"\n  sender: \"+628111234560\"\n  to: [\"+628111234561\",\"group.b3Bz\"]"
    );
    shot(&c, "admin-channels").await;

    // Users and API keys: a key is shown once, works, and is never shown again.
    c.goto(&format!("{base}/console/users")).await.unwrap();
    fill(&c, "#key-form input[name=name]", "ci-from-console").await;
    click(&c, "#key-form button[type=submit]").await;
    let key = wait_text(&c, "#new-key output", SOON, |t| t.starts_with("pk_")).await;
    shot(&c, "admin-users").await;
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/results/latest"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the new key reads");
    c.goto(&format!("{base}/console/users")).await.unwrap();
    wait_text(&c, "#keys", SOON, |t| t.contains("ci-from-console")).await;
    assert!(!c.source().await.unwrap().contains(&key), "the key is shown again");

    // The audit log has what the admin did, filtered by actor.
    c.goto(&format!("{base}/console/audit?actor=admin")).await.unwrap();
    let audit = wait_text(&c, "#audit", SOON, |t| t.contains("/api/v1/auth/keys")).await;
    assert!(
        audit.contains("POST /api/v1/monitoring/alerts/rules") && audit.contains("POST /api/v1/channels/{name}/test"),
        "{audit}"
    );
    shot(&c, "admin-audit").await;
    c.close().await.unwrap();

    // A viewer, on a phone: the rules without a write, no admin page.
    let phone = browser(&driver, 390).await;
    sign_in(&phone, &base, "vi", "vi-password-1").await;
    assert!(absent(&phone, "a[href='/console/users']").await, "a link to users");
    phone.goto(&format!("{base}/console/rules")).await.unwrap();
    wait_text(&phone, "tr[data-rule=ui-rule]", SOON, |t| t.contains("Gateway down")).await;
    for css in ["#rule-form", "main button[data-api]", "main a[href*='edit=']"] {
        assert!(absent(&phone, css).await, "a viewer is offered {css}");
    }
    shot(&phone, "admin-rules-phone-viewer").await;
    phone.goto(&format!("{base}/console/channels")).await.unwrap();
    wait_text(&phone, "#channels", SOON, |t| t.contains("ops-hook")).await;
    assert!(
        absent(&phone, "button[data-admin-api]").await,
        "a viewer may send a test"
    );
    phone.goto(&format!("{base}/console/users")).await.unwrap();
    wait_text(&phone, "main", SOON, |t| t.contains("for admins only")).await;
    phone.close().await.unwrap();
    p.assert_running();
}
