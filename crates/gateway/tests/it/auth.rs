//! Authentication, scopes, API keys, users, the audit log, rate limits,
//! body limits and CORS, against a gateway with auth on (the default).

use std::time::Duration;

use futures::StreamExt;
use pantau_config::Config;
use pantau_gateway::auth::{Keys, Role, Scope, Scopes};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Gateway, start_with};

const SECRET: &str = "a-test-secret-of-more-than-32-characters!";

async fn start_secured(edit: impl FnOnce(&mut Config)) -> (Gateway, String) {
    let g = start_with(|c| {
        c.gateway.auth.jwt_secret = Some(SECRET.into());
        edit(c);
    })
    .await;
    let keys = Keys::load(&g.ctx.config.gateway.auth, &g.ctx.config.data_dir).unwrap();
    let (admin, _) = keys.mint("root", Scopes::all(), Duration::from_secs(600)).unwrap();
    (g, admin)
}

async fn call(
    g: &Gateway,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = reqwest::Client::new().request(method, format!("{}{path}", g.base));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let code = resp.status();
    let text = resp.text().await.unwrap();
    (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused_and_public_routes_are_open() {
    let (g, _) = start_secured(|_| {}).await;
    let r = reqwest::get(format!("{}/api/v1/results/latest", g.base)).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unauthenticated");

    for path in [
        "/health",
        "/api/v1/health",
        "/api/v1/openapi.json",
        "/healthz",
        "/metrics",
    ] {
        let r = reqwest::get(format!("{}{path}", g.base)).await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }

    // Expired, signed with another secret, `alg: none`, garbage: each 401 with its reason.
    let keys = Keys::load(&g.ctx.config.gateway.auth, &g.ctx.config.data_dir).unwrap();
    let mut other = g.ctx.config.gateway.auth.clone();
    other.jwt_secret = Some("another-secret-that-is-also-long-enough!!".into());
    let forged = Keys::load(&other, &g.ctx.config.data_dir)
        .unwrap()
        .mint("root", Scopes::all(), Duration::from_secs(600))
        .unwrap()
        .0;
    let (_, claims) = keys.mint("root", Scopes::all(), Duration::from_secs(600)).unwrap();
    let expired = {
        let mut c = claims.clone();
        c.iat -= 7200;
        c.exp = c.iat + 60;
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &c,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    let none = {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b.encode(serde_json::to_vec(&claims).unwrap())
        )
    };
    for (token, why) in [
        (expired.as_str(), "expired"),
        (forged.as_str(), "signature"),
        (none.as_str(), "token"),
        ("not-a-token", "malformed"),
        ("pk_0000_unknown", "API key"),
    ] {
        let (code, v) = call(&g, Method::GET, "/api/v1/results/latest", Some(token), None).await;
        assert_eq!(code, 401, "{why}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(why), "{why}: {v}");
    }
}

#[tokio::test]
async fn users_log_in_and_roles_decide_scopes() {
    let (g, admin) = start_secured(|_| {}).await;
    let body = json!({"username": "ana", "password": "correct horse", "role": "viewer"});
    let (code, v) = call(&g, Method::POST, "/api/v1/users", Some(&admin), Some(body)).await;
    assert_eq!(code, 201, "{v}");
    assert!(v.get("password_hash").is_none() && !v.to_string().contains("correct horse"));
    let body = json!({"username": "ana", "password": "another one", "role": "viewer"});
    let (code, _) = call(&g, Method::POST, "/api/v1/users", Some(&admin), Some(body)).await;
    assert_eq!(code, 409, "a taken name");
    let body = json!({"username": "bo", "password": "long enough", "role": "viewer", "extra": 1});
    let (code, v) = call(&g, Method::POST, "/api/v1/users", Some(&admin), Some(body)).await;
    assert_eq!(code, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("extra"), "{v}");
    let body = json!({"username": "bo", "password": "long enough", "role": "superuser"});
    let (code, v) = call(&g, Method::POST, "/api/v1/users", Some(&admin), Some(body)).await;
    assert_eq!(code, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("role"), "{v}");

    let (code, v) = call(
        &g,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"username": "ana", "password": "wrong"})),
    )
    .await;
    assert_eq!(code, 401, "{v}");
    let (code, v) = call(
        &g,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"username": "ana", "password": "correct horse"})),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["scopes"], json!(["monitoring:read"]));
    let viewer = v["token"].as_str().unwrap().to_owned();

    let (code, v) = call(&g, Method::GET, "/api/v1/auth/whoami", Some(&viewer), None).await;
    assert_eq!((code.as_u16(), v["subject"].as_str()), (200, Some("ana")));
    let (code, _) = call(&g, Method::GET, "/api/v1/results/latest", Some(&viewer), None).await;
    assert_eq!(code, 200);
    // A viewer cannot write, nor administer.
    let (code, v) = call(
        &g,
        Method::POST,
        "/api/v1/monitoring/alerts/a1/acknowledge",
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(code, 403, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("monitoring:write"));
    let (code, _) = call(&g, Method::GET, "/api/v1/audit", Some(&viewer), None).await;
    assert_eq!(code, 403);
    // The WebSocket takes the token as a query parameter, and refuses without one.
    let ws = format!("{}?types=alert&token={viewer}", g.ws);
    let (mut socket, _) = tokio_tungstenite::connect_async(ws.as_str())
        .await
        .expect("connects with ?token=");
    socket.close(None).await.ok();
    let _ = socket.next().await;
    // Both the header and `?token=` (what proxies and client libraries often
    // send): accepted, the header wins (this was a 400 `unknown field token`).
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws.as_str()).unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {viewer}").parse().unwrap());
    let (mut both, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connects with the header and ?token=");
    both.close(None).await.ok();
    let _ = both.next().await;
    let refused = tokio_tungstenite::connect_async(g.ws.as_str()).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
        "{refused:?}"
    );
}

#[tokio::test]
async fn api_keys_are_shown_once_stored_hashed_and_revocable() {
    let (g, admin) = start_secured(|_| {}).await;
    let (code, v) = call(
        &g,
        Method::POST,
        "/api/v1/auth/keys",
        Some(&admin),
        Some(json!({"name": "ci", "scopes": ["monitoring:read"], "ttl": "30d"})),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_owned();
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("pk_{id}_")));

    let (code, _) = call(&g, Method::GET, "/api/v1/results/latest", Some(&key), None).await;
    assert_eq!(code, 200);
    let (code, _) = call(&g, Method::DELETE, "/api/v1/targets/x", Some(&key), None).await;
    assert_eq!(code, 403, "a read key cannot write");
    let (code, v) = call(&g, Method::GET, "/api/v1/auth/keys", Some(&admin), None).await;
    assert_eq!(code, 200);
    assert!(!v.to_string().contains(&key), "the key is never listed: {v}");
    assert!(v["keys"][0]["last_used_at"].is_i64(), "{v}");
    // At rest only the hash: the key's secret part is nowhere in the database file.
    let db = std::fs::read(g.ctx.config.data_dir.join("gateway.db")).unwrap_or_default();
    let wal = std::fs::read(g.ctx.config.data_dir.join("gateway.db-wal")).unwrap_or_default();
    let secret = key.rsplit('_').next().unwrap().as_bytes();
    for file in [&db, &wal] {
        assert!(
            !file.windows(secret.len()).any(|w| w == secret),
            "the key is stored in clear"
        );
    }

    let (code, _) = call(
        &g,
        Method::DELETE,
        &format!("/api/v1/auth/keys/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(code, 204);
    let (code, v) = call(&g, Method::GET, "/api/v1/results/latest", Some(&key), None).await;
    assert_eq!(code, 401, "a revoked key: {v}");
    let (code, _) = call(&g, Method::DELETE, "/api/v1/auth/keys/nope", Some(&admin), None).await;
    assert_eq!(code, 404);
    let (code, v) = call(
        &g,
        Method::POST,
        "/api/v1/auth/keys",
        Some(&admin),
        Some(json!({"name": "x", "scopes": ["monitoring:everything"]})),
    )
    .await;
    assert_eq!(code, 400, "{v}");
}

#[tokio::test]
async fn every_write_is_audited_with_who_what_and_from_where() {
    let (g, admin) = start_secured(|_| {}).await;
    let body = json!({"username": "eve", "password": "a long password", "role": "editor"});
    assert_eq!(
        call(&g, Method::POST, "/api/v1/users", Some(&admin), Some(body))
            .await
            .0,
        201
    );
    let login = json!({"username": "eve", "password": "wrong password"});
    assert_eq!(
        call(&g, Method::POST, "/api/v1/auth/login", None, Some(login)).await.0,
        401
    );
    assert_eq!(
        call(&g, Method::POST, "/api/v1/monitoring/alerts/a1/resolve", None, None)
            .await
            .0,
        401
    );
    let (code, v) = call(&g, Method::GET, "/api/v1/audit?limit=10", Some(&admin), None).await;
    assert_eq!(code, 200, "{v}");
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{v}");
    // Newest first.
    assert_eq!(entries[0]["actor"], "anonymous");
    assert_eq!(entries[0]["status"], 401);
    assert_eq!(entries[0]["action"], "POST /api/v1/monitoring/alerts/{id}/resolve");
    assert_eq!(entries[1]["actor"], "eve", "a failed login names who tried");
    assert_eq!(entries[1]["status"], 401);
    assert_eq!(entries[2]["actor"], "root");
    assert_eq!(entries[2]["path"], "/api/v1/users");
    assert_eq!(entries[2]["detail"], "added user eve as editor");
    assert_eq!(entries[2]["remote"], "127.0.0.1");
    assert!(!v.to_string().contains("a long password"), "no secret in the audit log");
    let (code, v) = call(&g, Method::GET, "/api/v1/audit?actor=eve", Some(&admin), None).await;
    assert_eq!((code.as_u16(), v["entries"].as_array().unwrap().len()), (200, 1));
    let (code, _) = call(&g, Method::GET, "/api/v1/audit?limit=0", Some(&admin), None).await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn clients_over_their_rate_get_429_and_big_bodies_get_413() {
    let (g, admin) = start_secured(|c| {
        c.gateway.rate_limit.requests_per_second = 1;
        c.gateway.rate_limit.burst = 3;
        c.gateway.max_body_bytes = 1024;
    })
    .await;
    let big = json!({"username": "x".repeat(2000), "password": "p", "role": "viewer"});
    let (code, v) = call(&g, Method::POST, "/api/v1/users", Some(&admin), Some(big)).await;
    assert_eq!(code, 413, "{v}");
    assert_eq!(v["error"]["code"], "resource_exhausted");
    assert_eq!(v["error"]["reason"], "body_too_large");
    // Burst 3 at 1 a second: within a few quick requests one is refused,
    // with a Retry-After (however slowly a loaded machine sends them).
    let mut codes = Vec::new();
    let mut refused = None;
    for _ in 0..10 {
        let r = reqwest::Client::new()
            .get(format!("{}/api/v1/results/latest", g.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
        if r.status() == 429 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.unwrap_or_else(|| panic!("no 429 in {codes:?}"));
    assert!(codes.len() >= 3, "the burst is allowed first: {codes:?}");
    assert!(r.headers().contains_key("retry-after"));
    // Probes are never limited.
    for _ in 0..5 {
        assert_eq!(reqwest::get(format!("{}/healthz", g.base)).await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn cors_answers_only_configured_origins() {
    let (g, _) = start_secured(|c| c.gateway.cors.allowed_origins = vec!["https://grafana.example.net".into()]).await;
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(Method::OPTIONS, format!("{}/api/v1/results/latest", g.base))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let ok = preflight("https://grafana.example.net").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://grafana.example.net"
    );
    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn with_auth_off_everyone_acts_as_anonymous_and_is_still_audited() {
    let g = super::start(|_| {}).await;
    let body = json!({"username": "zed", "password": "long enough", "role": "admin"});
    let (code, v) = call(&g, Method::POST, "/api/v1/users", None, Some(body)).await;
    assert_eq!(code, 201, "{v}");
    let (_, v) = call(&g, Method::GET, "/api/v1/audit", None, None).await;
    assert_eq!(v["entries"][0]["actor"], "anonymous", "{v}");
}

#[tokio::test]
async fn minted_tokens_carry_the_asked_scopes() {
    let (g, admin) = start_secured(|_| {}).await;
    let (code, v) = call(
        &g,
        Method::POST,
        "/api/v1/auth/tokens",
        Some(&admin),
        Some(json!({"scopes": ["monitoring:read", "monitoring:write"], "ttl": "2h"})),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["subject"], "cli:root");
    let (_, who) = call(&g, Method::GET, "/api/v1/auth/whoami", v["token"].as_str(), None).await;
    assert_eq!(who["scopes"], json!(["monitoring:read", "monitoring:write"]));
    let (code, _) = call(
        &g,
        Method::POST,
        "/api/v1/auth/tokens",
        Some(&admin),
        Some(json!({"scopes": ["admin"], "ttl": "5s"})),
    )
    .await;
    assert_eq!(code, 400, "a ttl under a minute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_store_works_on_postgres() {
    let pg = pantau_testkit::Postgres::start()
        .await
        .expect("postgres (Debian package postgresql)");
    let url = pg.create_database("gateway_auth").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    config.database.url = Some(url);
    let auth = pantau_gateway::open_auth(&config).await.unwrap();
    let s = &auth.store;
    s.add_user("ana", "a long password", Role::Editor).await.unwrap();
    assert!(s.add_user("ana", "x", Role::Viewer).await.is_err());
    assert_eq!(
        s.check_login("ana", "a long password").await.unwrap(),
        Some(Role::Editor)
    );
    assert_eq!(s.check_login("ana", "wrong").await.unwrap(), None);
    assert_eq!(s.check_login("nobody", "wrong").await.unwrap(), None);
    let (key, rec) = s
        .create_key("ci", Scopes::of(&[Scope::Read]), "ana", None)
        .await
        .unwrap();
    assert_eq!(s.check_key(&key).await.unwrap().map(|k| k.0), Some(rec.id.clone()));
    s.revoke_key(&rec.id).await.unwrap();
    assert_eq!(s.check_key(&key).await.unwrap(), None);
    let entry = pantau_gateway::auth::NewAudit {
        actor: "ana",
        method: "POST",
        path: "/x",
        action: "POST /x",
        status: 200,
        remote: "127.0.0.1",
        detail: "",
    };
    s.audit(&entry).await.unwrap();
    use pantau_gateway::auth::store::AuditFilter;
    let ana = AuditFilter {
        actor: Some("ana"),
        ..Default::default()
    };
    assert_eq!(s.audit_log(&ana, 10, 0).await.unwrap().len(), 1);
    assert_eq!(s.audit_log(&AuditFilter::default(), 10, 0).await.unwrap().len(), 1);
    for (filter, n) in [
        (
            AuditFilter {
                action: Some("POST /x"),
                since_ms: Some(0),
                until_ms: Some(i64::MAX),
                ..Default::default()
            },
            1,
        ),
        (
            AuditFilter {
                action: Some("DELETE /x"),
                ..Default::default()
            },
            0,
        ),
        (
            AuditFilter {
                until_ms: Some(0),
                ..Default::default()
            },
            0,
        ),
        (
            AuditFilter {
                since_ms: Some(i64::MAX),
                ..Default::default()
            },
            0,
        ),
    ] {
        assert_eq!(s.audit_log(&filter, 10, 0).await.unwrap().len(), n, "{filter:?}");
    }
    assert_eq!(s.audit_actions().await.unwrap(), ["POST /x"]);
    s.set_role("ana", Role::Admin).await.unwrap();
    assert_eq!(s.users().await.unwrap()[0].role, Role::Admin);
    assert!(s.set_role("ghost", Role::Viewer).await.is_err());
    assert_eq!(s.prune_audit(i64::MAX).await.unwrap(), 1);
}
