//! The console's sessions (cookie, CSRF, sign-out, a deleted user) and the
//! public status pages and badges, over HTTP against the gateway alone
//! (the browser tests are in crates/pantau/tests/it/console.rs).

use std::time::Duration;

use pantau_config::{StatusGroupConfig, StatusPageConfig};
use pantau_gateway::auth::{Keys, Scopes};
use reqwest::StatusCode;
use serde_json::json;

use super::{Gateway, publish, result, start_with};

const SECRET: &str = "a-test-secret-of-more-than-32-characters!";

pub(super) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(super) async fn secured(edit: impl FnOnce(&mut pantau_config::Config)) -> (Gateway, String) {
    let g = start_with(|c| {
        c.gateway.auth.jwt_secret = Some(SECRET.into());
        c.gateway.console.create_first_admin = false;
        edit(c);
    })
    .await;
    let keys = Keys::load(&g.ctx.config.gateway.auth, &g.ctx.config.data_dir).unwrap();
    let (admin, _) = keys.mint("root", Scopes::all(), Duration::from_secs(600)).unwrap();
    (g, admin)
}

pub(super) async fn add_user(g: &Gateway, admin: &str, name: &str, role: &str) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/users", g.base))
        .bearer_auth(admin)
        .json(&json!({"username": name, "password": "a-long-password", "role": role}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

/// Signs in with the form; the session cookie (`name=value`).
pub(super) async fn sign_in(g: &Gateway, name: &str) -> String {
    let r = no_redirects()
        .post(format!("{}/console/login", g.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "username={name}&password=a-long-password&next=%2Fconsole%2Falerts"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console/alerts");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains("Secure"),
        "{set}"
    );
    set.split(';').next().unwrap().to_owned()
}

/// The CSRF token a console page carries for its session.
pub(super) async fn csrf(g: &Gateway, cookie: &str) -> String {
    // The overview fails without a collector, but its error page is the user's.
    let page = reqwest::Client::new()
        .get(format!("{}/console", g.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf-token\" content=\"";
    let at = page.find(marker).expect("a csrf meta tag") + marker.len();
    page[at..at + 64].to_owned()
}

pub(super) async fn whoami(g: &Gateway, cookie: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{}/api/v1/auth/whoami", g.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn sessions_need_csrf_for_writes_and_end() {
    let (g, admin) = secured(|_| {}).await;
    add_user(&g, &admin, "ana", "admin").await;
    add_user(&g, &admin, "vic", "viewer").await;

    let plain = no_redirects();
    let r = plain
        .get(format!("{}/console/alerts?state=firing", g.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "no session: to the sign-in page");
    assert_eq!(
        r.headers()["location"],
        "/console/login?next=/console/alerts%3Fstate%3Dfiring"
    );
    let r = plain.get(format!("{}/", g.base)).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/console");

    let cookie = sign_in(&g, "ana").await;
    assert_eq!(
        whoami(&g, &cookie).await,
        StatusCode::OK,
        "the cookie authenticates the API"
    );
    let token = csrf(&g, &cookie).await;
    let write = |csrf: Option<&str>| {
        let mut r = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/keys", g.base))
            .header("cookie", &cookie)
            .json(&json!({"name": "from-console", "scopes": ["monitoring:read"]}));
        if let Some(t) = csrf {
            r = r.header("x-csrf-token", t);
        }
        r.send()
    };
    let forged = write(None).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let v: serde_json::Value = forged.json().await.unwrap();
    assert_eq!(v["error"]["reason"], "csrf", "{v}");
    let wrong = write(Some(&"0".repeat(64))).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let ok = write(Some(&token)).await.unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED, "{}", ok.text().await.unwrap());

    // The write and the sign-in are in the audit log under the user's name.
    let audit: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/audit?actor=ana", g.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<String> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["action"], e["status"]))
        .collect();
    assert!(
        actions
            .iter()
            .any(|a| a.contains("/console/login") && a.ends_with("303")),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| a.contains("/api/v1/auth/keys") && a.ends_with("201")),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| a.contains("/api/v1/auth/keys") && a.ends_with("403")),
        "{actions:?}"
    );

    // The health page shows `/health`'s components.
    let health = reqwest::Client::new()
        .get(format!("{}/console/health", g.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        health.contains("data-component=\"gateway-store\"") && health.contains("id=\"overall-health\""),
        "{health}"
    );

    // A viewer's session has the viewer's scopes.
    let vic = sign_in(&g, "vic").await;
    let vic_csrf = csrf(&g, &vic).await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/monitoring/silences", g.base))
        .header("cookie", &vic)
        .header("x-csrf-token", &vic_csrf)
        .json(&json!({"matchers": [{"label": "a", "value": "b"}], "ends_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a viewer may not write");
    // Deleting the user ends their sessions at once.
    let r = reqwest::Client::new()
        .delete(format!("{}/api/v1/users/vic", g.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(whoami(&g, &vic).await, StatusCode::UNAUTHORIZED);

    // Signing out needs the token too, clears the cookie and ends the session.
    let out = |csrf: Option<String>| {
        let mut r = reqwest::Client::new()
            .post(format!("{}/console/logout", g.base))
            .header("cookie", &cookie);
        if let Some(t) = csrf {
            r = r.header("x-csrf-token", t);
        }
        r.send()
    };
    assert_eq!(out(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    let r = out(Some(token)).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(whoami(&g, &cookie).await, StatusCode::UNAUTHORIZED);
    let r = plain
        .get(format!("{}/console", g.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "an ended session signs in again");
}

#[tokio::test]
async fn sessions_are_secure_behind_tls_and_expire() {
    let (g, admin) = secured(|c| c.gateway.console.session_ttl = Duration::from_secs(300)).await;
    add_user(&g, &admin, "ana", "editor").await;
    let r = no_redirects()
        .post(format!("{}/console/login", g.base))
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=ana&password=a-long-password")
        .send()
        .await
        .unwrap();
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("; Secure") && set.contains("Max-Age=300"), "{set}");
    let garbage = [
        "pantau_session=",
        "pantau_session=zzz",
        "pantau_session=%00%01",
        &format!("pantau_session={}", "a".repeat(5000)),
    ];
    for c in garbage {
        assert_eq!(
            whoami(&g, c).await,
            StatusCode::UNAUTHORIZED,
            "{}",
            &c[..c.len().min(40)]
        );
    }
}

fn page() -> StatusPageConfig {
    StatusPageConfig {
        slug: "public".into(),
        title: "Public".into(),
        description: None,
        groups: vec![StatusGroupConfig {
            name: "Web".into(),
            targets: vec!["web".into(), "api".into()],
        }],
        show_latency: true,
        show_errors: false,
    }
}

#[tokio::test]
async fn status_pages_and_badges_show_only_their_targets() {
    let (g, _) = secured(|c| c.gateway.status_pages = vec![page()]).await;
    publish(&g, &result("web", true)).await;
    let mut api_down = result("api", false);
    api_down.message = "connection refused by 10.9.8.7:5432".into();
    publish(&g, &api_down).await;
    let mut api_up_elsewhere = result("api", true);
    api_up_elsewhere.location = "bdg".into();
    publish(&g, &api_up_elsewhere).await;
    publish(&g, &result("secret-db", false)).await;

    let anon = reqwest::Client::new();
    let badge = |t: &str| anon.get(format!("{}/badge/{t}/status.svg", g.base)).send();
    let mut text = String::new();
    for _ in 0..200 {
        let r = badge("web").await.unwrap();
        text = r.text().await.unwrap();
        if text.contains(">up<") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(text.contains(">up<"), "{text}");
    let r = badge("api").await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.headers()["cache-control"].to_str().unwrap().contains("max-age=60"));
    assert!(
        r.text().await.unwrap().contains(">degraded<"),
        "down from one location of two"
    );
    let r = badge("secret-db").await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "not on a public page");
    for path in [
        "/badge/web/uptime/7d.svg",
        "/badge/web/uptime/90d.svg",
        "/badge/web/latency.svg",
    ] {
        let r = anon.get(format!("{}{path}", g.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let r = anon
        .get(format!("{}/badge/web/uptime/1y.svg", g.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let v: serde_json::Value = anon
        .get(format!("{}/api/v1/status-pages/public", g.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["overall"], "degraded", "{v}");
    let targets = v["groups"][0]["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[1]["state"], "degraded");
    assert_eq!(targets[0]["days"].as_array().unwrap().len(), 90);
    let text = v.to_string();
    assert!(
        !text.contains("10.9.8.7") && !text.contains("secret-db") && !text.contains("refused"),
        "{text}"
    );
    let html = anon
        .get(format!("{}/status/public", g.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Some systems degraded") && !html.contains("10.9.8.7") && !html.contains("secret-db"));
    let r = anon.get(format!("{}/status/nope", g.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = anon
        .get(format!("{}/api/v1/status-pages/nope", g.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
