//! The console's administration pages against the gateway alone: who may
//! open them (anonymous → sign-in, viewer and editor → 403 on the admin
//! pages and no link to them), what the users and audit pages show (never a
//! password or a key's secret), the role change route, and the audit
//! filters and pages. Rules and channels need the alert engine and the
//! notifier: their pages are tested against a real `pantau all` in
//! crates/pantau/tests/it/console_admin.rs.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::Gateway;
use super::console::{add_user, csrf, no_redirects, secured, sign_in, whoami};

const PAGES: [&str; 4] = [
    "/console/rules",
    "/console/channels",
    "/console/users",
    "/console/audit",
];

async fn get(g: &Gateway, cookie: &str, path: &str) -> (StatusCode, String) {
    let r = no_redirects()
        .get(format!("{}{path}", g.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// A write with the session's cookie and CSRF token.
async fn write(
    g: &Gateway,
    cookie: &str,
    csrf: &str,
    method: reqwest::Method,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .request(method, format!("{}{path}", g.base))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn admin_pages_are_for_admins_and_others_are_not_offered_them() {
    let (g, admin) = secured(|_| {}).await;
    for (name, role) in [("ana", "admin"), ("ed", "editor"), ("vic", "viewer")] {
        add_user(&g, &admin, name, role).await;
    }
    for path in PAGES {
        let r = no_redirects().get(format!("{}{path}", g.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            r.headers()["location"],
            format!("/console/login?next={path}").as_str(),
            "anonymous is sent to sign in"
        );
    }
    for name in ["ed", "vic"] {
        let cookie = sign_in(&g, name).await;
        for path in ["/console/users", "/console/audit", "/console/audit?actor=ana"] {
            let (status, body) = get(&g, &cookie, path).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{name} {path}");
            assert!(body.contains("for admins only"), "{body}");
        }
        let (_, health) = get(&g, &cookie, "/console/health").await;
        assert!(
            health.contains("href=\"/console/rules\"") && health.contains("href=\"/console/channels\""),
            "{health}"
        );
        assert!(
            !health.contains("href=\"/console/users\"") && !health.contains("href=\"/console/audit\""),
            "{name} is offered an admin page"
        );
    }
    let ana = sign_in(&g, "ana").await;
    let (_, health) = get(&g, &ana, "/console/health").await;
    assert!(health.contains("href=\"/console/users\"") && health.contains("href=\"/console/audit\""));

    // Without the alert engine and the notifier their pages say so, by name.
    let (status, body) = get(&g, &ana, "/console/rules").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("alert engine"), "{body}");
    let (status, body) = get(&g, &ana, "/console/channels").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("notifier"), "{body}");
    let (status, body) = get(&g, &ana, "/console/rules/check?expr=check_up%20%3D%3D%200").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("cannot check the expression") && body.contains("alert engine"),
        "{body}"
    );
    let (status, body) = get(&g, &ana, "/console/rules?edit=x&bogus=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn users_and_keys_are_managed_and_secrets_never_shown_again() {
    let (g, admin) = secured(|_| {}).await;
    add_user(&g, &admin, "ana", "admin").await;
    add_user(&g, &admin, "vic", "viewer").await;
    let ana = sign_in(&g, "ana").await;
    let token = csrf(&g, &ana).await;
    use reqwest::Method as M;

    // A key: its secret is in the answer once, never on the page.
    let (status, key) = write(
        &g,
        &ana,
        &token,
        M::POST,
        "/api/v1/auth/keys",
        &json!({"name": "ci-deploy", "scopes": ["monitoring:read"], "ttl": "30d"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let secret = key["key"].as_str().unwrap().to_owned();
    let (status, page) = get(&g, &ana, "/console/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("ci-deploy") && page.contains("data-user=\"vic\""),
        "{page}"
    );
    assert!(!page.contains(&secret), "the key's secret is on the page");
    assert!(!page.contains("a-long-password"), "a password is on the page");
    assert!(page.contains("id=\"user-form\"") && page.contains("id=\"key-form\""));
    assert!(
        page.contains(&format!(
            "data-api=\"/api/v1/auth/keys/{}\"",
            key["id"].as_str().unwrap()
        )),
        "a revoke button"
    );
    assert!(
        !page.contains("data-api=\"/api/v1/users/ana\""),
        "an admin is not offered to delete themself"
    );

    // The role changes at once for the user's session, and is audited.
    let vic = sign_in(&g, "vic").await;
    let (status, _) = get(&g, &vic, "/console/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = write(
        &g,
        &ana,
        &token,
        M::PATCH,
        "/api/v1/users/vic",
        &json!({"role": "admin"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = get(&g, &vic, "/console/users").await;
    assert_eq!(status, StatusCode::OK, "the session has the new role");
    let (status, body) = write(
        &g,
        &ana,
        &token,
        M::PATCH,
        "/api/v1/users/ghost",
        &json!({"role": "viewer"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Hostile bodies and names: a 400 naming the field.
    let huge = "x".repeat(100_000);
    for (path, body, field) in [
        ("/api/v1/users/vic", json!({"role": "god"}), "role"),
        ("/api/v1/users/vic", json!({"role": 5}), "role"),
        ("/api/v1/users/vic", json!({"role": huge}), "role"),
        ("/api/v1/users/vic", json!({}), "role"),
        ("/api/v1/users/vic", json!({"role": "viewer", "admin": true}), "admin"),
        ("/api/v1/users/a%20b", json!({"role": "viewer"}), "username"),
        (
            &format!("/api/v1/users/{}", "y".repeat(300)),
            json!({"role": "viewer"}),
            "username",
        ),
    ] {
        let (status, v) = write(&g, &ana, &token, M::PATCH, path, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(field), "{msg}");
        assert!(msg.len() < 600, "{}", msg.len());
    }
    // A viewer's session may not change roles, not even their own.
    add_user(&g, &admin, "val", "viewer").await;
    let val = sign_in(&g, "val").await;
    let (status, _) = write(
        &g,
        &val,
        &csrf(&g, &val).await,
        M::PATCH,
        "/api/v1/users/val",
        &json!({"role": "admin"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer may not promote themself");
    assert_eq!(whoami(&g, &val).await, StatusCode::OK);

    // Every change above is in the audit log, under who made it.
    let audit: Value = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/audit?action=PATCH%20/api/v1/users/%7Busername%7D&actor=ana",
            g.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["status"] == 204 && e["detail"] == "set the role of vic to admin"),
        "{audit}"
    );
    assert!(entries.iter().all(|e| e["actor"] == "ana"), "{audit}");
}

#[tokio::test]
async fn the_audit_page_filters_and_pages_on_the_server() {
    let (g, admin) = secured(|_| {}).await;
    add_user(&g, &admin, "ana", "admin").await;
    let ana = sign_in(&g, "ana").await;
    let token = csrf(&g, &ana).await;
    // 60 refused writes (no such user): 60 entries of one action.
    for i in 0..60 {
        let (status, _) = write(
            &g,
            &ana,
            &token,
            reqwest::Method::DELETE,
            &format!("/api/v1/users/ghost{i}"),
            &json!({}),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let action = "DELETE%20%2Fapi%2Fv1%2Fusers%2F%7Busername%7D";
    let (status, page1) = get(&g, &ana, &format!("/console/audit?actor=ana&action={action}")).await;
    assert_eq!(status, StatusCode::OK, "{page1}");
    assert_eq!(page1.matches("<tr data-seq=").count(), 50, "one page of 50");
    assert!(
        page1.contains("&#x2f;ghost59<") && !page1.contains("&#x2f;ghost9<"),
        "{page1}"
    );
    assert!(page1.contains("id=\"next-page\"") && !page1.contains("id=\"prev-page\""));
    assert!(
        page1.contains("<option selected>DELETE &#x2f;api&#x2f;v1&#x2f;users&#x2f;{username}</option>"),
        "the action list"
    );
    let (_, page2) = get(&g, &ana, &format!("/console/audit?actor=ana&action={action}&page=2")).await;
    assert_eq!(page2.matches("<tr data-seq=").count(), 10);
    assert!(page2.contains("&#x2f;ghost0<") && !page2.contains("id=\"next-page\""));
    assert!(page2.contains("id=\"prev-page\""));

    // Time range: nothing before 2000, nothing from 2100 (the browser's own format).
    let (_, none) = get(&g, &ana, "/console/audit?until=2000-01-01T00:00:00Z").await;
    assert!(none.contains("No entry matches."), "{none}");
    let (_, none) = get(&g, &ana, "/console/audit?since=2100-01-01T00:00").await;
    assert!(none.contains("No entry matches."));
    let (_, some) = get(&g, &ana, "/console/audit?since=2000-01-01T00:00&actor=nobody").await;
    assert!(some.contains("No entry matches."));

    // Hostile filters: a 400 page naming the field, quoting little.
    let huge = "z".repeat(4000);
    for (q, field) in [
        ("page=0", "page"),
        ("page=abc", "page"),
        ("since=yesterday", "since"),
        (&format!("until={huge}") as &str, "until"),
        (&format!("actor={huge}"), "actor"),
        ("action=%00", "action"),
        ("sort=seq", "sort"),
    ] {
        let (status, body) = get(&g, &ana, &format!("/console/audit?{q}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
        assert!(body.contains(field), "{field}: {body}");
        assert!(body.len() < 3000 && !body.contains(&huge[..300]), "{}", body.len());
    }
    // The REST route takes the same filters.
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/audit?since=not-a-time", g.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().starts_with("since `"), "{v}");
    let v: Value = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/audit?action={action}&since=2000-01-01T00:00:00Z&limit=5",
            g.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len(), 5, "{v}");
}
