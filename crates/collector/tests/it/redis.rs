//! `redis` checks against Debian's real `redis-server` (started by the
//! testkit with a password): PING, AUTH, a command and its reply, wrong and
//! missing passwords, an unknown command, no server, and a server that
//! answers garbage.

use std::sync::Arc;
use std::time::Duration;

use pantau_collector::checks::{Checker, Outcome};
use pantau_collector::target::Target;
use pantau_config::{CheckType, CollectorConfig, RawTarget};
use pantau_proto::v1::{FailureReason, TargetSource, check_result::Detail};
use pantau_testkit::{REDIS_PASSWORD, Redis};
use tokio::io::AsyncWriteExt;

fn target(address: &str, password: Option<&str>) -> RawTarget {
    let mut t = RawTarget::new("r", CheckType::Redis);
    t.address = Some(address.to_owned());
    t.password = password.map(str::to_owned);
    t
}

async fn run(t: &RawTarget) -> Outcome {
    let cfg = CollectorConfig {
        timeout: Duration::from_secs(3),
        ..CollectorConfig::default()
    };
    let parsed = Arc::new(t.clone().parse("t").unwrap_or_else(|e| panic!("{e:?}")));
    let target = Target::compile(&parsed, "t", &cfg, TargetSource::Config).unwrap_or_else(|e| panic!("{e:?}"));
    Checker::new().unwrap().check(&target).await
}

fn meta(o: &Outcome, key: &str) -> String {
    let Some(Detail::Probe(p)) = &o.detail else {
        panic!("no probe detail: {o:?}")
    };
    p.metadata.get(key).cloned().unwrap_or_default()
}

#[tokio::test]
async fn ping_with_the_password_is_up_and_a_wrong_or_missing_one_is_auth() {
    let redis = Redis::start().await.unwrap();
    let a = redis.addr().to_string();
    let o = run(&target(&a, Some(REDIS_PASSWORD))).await;
    assert!(o.up, "{o:?}");
    assert_eq!(meta(&o, "reply"), "PONG");
    assert_eq!(meta(&o, "command"), "PING");

    let o = run(&target(&a, Some("not-the-password"))).await;
    assert_eq!(o.reason, FailureReason::Auth, "{o:?}");
    assert!(!o.message.contains("not-the-password"), "{}", o.message);

    let o = run(&target(&a, None)).await;
    assert_eq!(o.reason, FailureReason::Auth, "{o:?}");
}

#[tokio::test]
async fn a_command_reply_is_compared_and_an_unknown_command_is_a_protocol_error() {
    let redis = Redis::start().await.unwrap();
    redis.set("health", "ok").await.unwrap();
    let a = redis.addr().to_string();
    let mut t = target(&a, Some(REDIS_PASSWORD));
    t.query = Some("GET health".into());
    t.expected_reply = Some("ok".into());
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
    assert_eq!(meta(&o, "reply"), "ok");

    t.expected_reply = Some("degraded".into());
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Assertion, "{o:?}");
    assert!(
        o.message.contains("\"ok\"") && o.message.contains("degraded"),
        "{}",
        o.message
    );

    // A missing key is nil, shown as such.
    t.query = Some("GET nothing-here".into());
    t.expected_reply = None;
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
    assert_eq!(meta(&o, "reply"), "(nil)");

    t.query = Some("NOSUCHCOMMAND x".into());
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Protocol, "{o:?}");
    assert!(o.message.to_lowercase().contains("unknown command"), "{}", o.message);
}

#[tokio::test]
async fn no_server_an_unknown_host_and_a_garbage_server_are_down() {
    let port = pantau_testkit::free_port();
    let o = run(&target(&format!("127.0.0.1:{port}"), None)).await;
    assert_eq!(o.reason, FailureReason::Refused, "{o:?}");

    let o = run(&target("pantau-no-such-host.invalid:6379", None)).await;
    assert_eq!(o.reason, FailureReason::Dns, "{o:?}");

    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n\0\xff\xfe").await;
        }
    });
    let o = run(&target(&a, None)).await;
    assert!(!o.up, "{o:?}");
    assert!(
        matches!(o.reason, FailureReason::Protocol | FailureReason::Connect),
        "{o:?}"
    );
    assert!(o.message.len() < 400, "{}", o.message);
}
