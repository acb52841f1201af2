//! `http_steps` against a real HTTP server (axum on 127.0.0.1:0): log in,
//! carry the token to an authorized call; a failing step is named with its
//! assertion; a value that cannot be extracted, or is too big, fails the
//! step that should have given it.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use pantau_collector::checks::{Checker, Outcome};
use pantau_collector::target::Target;
use pantau_config::{CheckType, CollectorConfig, ConditionConfig, Extract, JsonCondition, RawStep, RawTarget};
use pantau_proto::v1::{FailureReason, TargetSource, check_result::Detail};
use serde_json::{Value, json};

/// A small API: `POST /login` gives a token for the right password,
/// `GET /me` wants it as a bearer token, `GET /big` answers a 10 KB token.
pub(crate) async fn api() -> u16 {
    async fn login(Json(body): Json<Value>) -> (StatusCode, HeaderMap, Json<Value>) {
        let mut h = HeaderMap::new();
        if body["password"] == "pw" {
            h.insert("x-session", "s-42".parse().unwrap());
            (
                StatusCode::OK,
                h,
                Json(json!({"ok": true, "token": "tok-123", "user": {"id": 7}})),
            )
        } else {
            (StatusCode::UNAUTHORIZED, h, Json(json!({"ok": false})))
        }
    }
    async fn me(headers: HeaderMap) -> (StatusCode, String) {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
        let session = headers.get("x-session").and_then(|v| v.to_str().ok());
        if auth == Some("Bearer tok-123") && session == Some("s-42") {
            (StatusCode::OK, json!({"name": "monitor", "role": "reader"}).to_string())
        } else {
            (StatusCode::UNAUTHORIZED, "{}".into())
        }
    }
    async fn user(axum::extract::Path(id): axum::extract::Path<u32>) -> String {
        format!("user {id}")
    }
    async fn big() -> Json<Value> {
        Json(json!({"token": "x".repeat(10_000)}))
    }
    let app = axum::Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/users/{id}", get(user))
        .route("/big", get(big));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    port
}

fn step(name: &str, url: String) -> RawStep {
    RawStep {
        name: Some(name.into()),
        url: Some(url),
        ..RawStep::default()
    }
}

/// login → me → users/{{id}}, all of which pass.
pub(crate) fn flow(port: u16) -> RawTarget {
    let base = format!("http://127.0.0.1:{port}");
    let mut login = step("login", format!("{base}/login"));
    login.method = Some("POST".into());
    login.headers.insert("content-type".into(), "application/json".into());
    login.body = Some(r#"{"user": "monitor", "password": "pw"}"#.into());
    login.expected_status = vec![200];
    login.extract.insert("token".into(), Extract::Json("$.token".into()));
    login
        .extract
        .insert("session".into(), Extract::Header("x-session".into()));
    login
        .extract
        .insert("id".into(), Extract::Regex(r#""id":(\d+)"#.into()));
    let mut me = step("me", format!("{base}/me"));
    me.headers.insert("authorization".into(), "Bearer {{token}}".into());
    me.headers.insert("x-session".into(), "{{ session }}".into());
    me.conditions.push(ConditionConfig::Json(JsonCondition {
        path: "$.name".into(),
        equals: Some("monitor".into()),
        ..JsonCondition::default()
    }));
    let mut user = step("user", format!("{base}/users/{{{{id}}}}"));
    user.conditions.push(ConditionConfig::BodyContains("user 7".into()));
    let mut r = RawTarget::new("flow", CheckType::HttpSteps);
    r.steps = vec![login, me, user];
    r
}

pub(crate) fn compile(t: &RawTarget) -> Result<Target, String> {
    let cfg = CollectorConfig {
        timeout: Duration::from_secs(5),
        ..CollectorConfig::default()
    };
    let parsed = t.clone().parse("t").map_err(|e| format!("{e:?}"))?;
    Target::compile(&Arc::new(parsed), "t", &cfg, TargetSource::Config).map_err(|e| format!("{e:?}"))
}

pub(crate) async fn run(t: &RawTarget) -> Outcome {
    Checker::new().unwrap().check(&compile(t).unwrap()).await
}

fn steps_detail(o: &Outcome) -> &pantau_proto::v1::HttpStepsDetail {
    match &o.detail {
        Some(Detail::HttpSteps(d)) => d,
        other => panic!("no steps detail: {other:?}"),
    }
}

#[tokio::test]
async fn login_then_an_authorized_call_is_up_with_each_steps_latency() {
    let port = api().await;
    let o = run(&flow(port)).await;
    assert!(o.up, "{o:?}");
    let d = steps_detail(&o);
    assert_eq!(d.steps.len(), 3);
    assert_eq!(d.failed_step, None);
    for (i, s) in d.steps.iter().enumerate() {
        assert_eq!(s.index as usize, i);
        assert!(s.ok && s.status_code == 200, "{s:?}");
        assert!(s.latency.is_some_and(|l| l.seconds > 0 || l.nanos > 0), "{s:?}");
    }
    assert_eq!(d.steps[1].name, "me");
}

#[tokio::test]
async fn a_failing_assertion_names_its_step_and_the_assertion() {
    let port = api().await;
    let mut t = flow(port);
    t.steps[1].conditions = vec![ConditionConfig::BodyContains("administrator".into())];
    let o = run(&t).await;
    assert!(!o.up);
    assert_eq!(o.reason, FailureReason::Assertion);
    assert!(o.message.starts_with("step 2 (me): "), "{}", o.message);
    assert!(o.message.contains("administrator"), "{}", o.message);
    let d = steps_detail(&o);
    assert_eq!(d.failed_step, Some(1));
    assert_eq!(d.failed_step_name, "me");
    assert!(d.failed_assertion.contains("administrator"));
    // The steps after the failing one did not run.
    assert_eq!(d.steps.len(), 2);
    assert!(d.steps[0].ok && !d.steps[1].ok);
}

#[tokio::test]
async fn a_refused_login_fails_the_first_step_by_status() {
    let port = api().await;
    let mut t = flow(port);
    t.steps[0].body = Some(r#"{"user": "monitor", "password": "wrong"}"#.into());
    let o = run(&t).await;
    assert!(!o.up);
    assert_eq!(o.reason, FailureReason::HttpStatus);
    assert!(o.message.starts_with("step 1 (login): status 401"), "{}", o.message);
    assert_eq!(steps_detail(&o).steps[0].status_code, 401);
}

#[tokio::test]
async fn a_value_that_cannot_be_extracted_fails_the_step_that_should_give_it() {
    let port = api().await;
    let cases: [(Extract, &str); 3] = [
        (Extract::Json("$.access_token".into()), "$.access_token matches nothing"),
        (Extract::Header("x-missing".into()), "no x-missing header"),
        (Extract::Regex("secret=(\\w+)".into()), "does not match"),
    ];
    for (x, words) in cases {
        let mut t = flow(port);
        t.steps[0].extract.insert("token".into(), x);
        let o = run(&t).await;
        assert!(!o.up);
        assert_eq!(o.reason, FailureReason::Extraction, "{o:?}");
        assert!(
            o.message.starts_with("step 1 (login): cannot extract `token`") && o.message.contains(words),
            "{}",
            o.message
        );
    }
    // A value above the bound is refused, not carried.
    let mut t = flow(port);
    t.steps[0] = step("big", format!("http://127.0.0.1:{port}/big"));
    t.steps[0]
        .extract
        .insert("token".into(), Extract::Json("$.token".into()));
    t.steps[0]
        .extract
        .insert("session".into(), Extract::Json("$.token".into()));
    t.steps[0].extract.insert("id".into(), Extract::Json("$.token".into()));
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Extraction, "{o:?}");
    assert!(o.message.contains("10000 bytes, at most 4096"), "{}", o.message);
}

#[tokio::test]
async fn without_the_extracted_token_the_call_is_refused() {
    // The same flow with the token not passed on: the server refuses, so the
    // check can fail, and the UP above is the token's doing.
    let port = api().await;
    let mut t = flow(port);
    t.steps[1].headers.insert("authorization".into(), "Bearer wrong".into());
    let o = run(&t).await;
    assert!(!o.up);
    assert!(o.message.starts_with("step 2 (me): status 401"), "{}", o.message);
}

#[tokio::test]
async fn a_server_that_is_gone_fails_the_first_step_as_refused() {
    let port = pantau_testkit::free_port();
    let o = run(&flow(port)).await;
    assert!(!o.up);
    assert_eq!(o.reason, FailureReason::Refused);
    assert!(
        o.message.starts_with("step 1 (login): connection refused"),
        "{}",
        o.message
    );
}
