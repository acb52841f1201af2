//! `mqtt` checks against Debian's real `mosquitto` (started by the testkit,
//! anonymous or with a password file): connect, the publish/subscribe round
//! trip, a wrong and a missing password, no broker; and against fake brokers
//! made here that answer garbage, refuse the client id, refuse the
//! subscription or never answer.

use std::sync::Arc;
use std::time::Duration;

use pantau_collector::checks::{Checker, Outcome};
use pantau_collector::target::Target;
use pantau_config::{CheckType, CollectorConfig, RawTarget};
use pantau_proto::v1::{FailureReason, TargetSource, check_result::Detail};
use pantau_testkit::{MQTT_PASSWORD, MQTT_USER, Mosquitto};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

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

fn mqtt(address: &str) -> RawTarget {
    let mut t = RawTarget::new("m", CheckType::Mqtt);
    t.address = Some(address.to_owned());
    t
}

#[tokio::test]
async fn an_anonymous_broker_is_up_and_a_round_trip_comes_back() {
    let broker = Mosquitto::start().await.unwrap();
    let a = broker.addr().to_string();
    let o = run(&mqtt(&a)).await;
    assert!(o.up, "{o:?}");
    assert_eq!(meta(&o, "session_present"), "false");
    assert_eq!(meta(&o, "protocol"), "MQTT 3.1.1");
    let Some(Detail::Probe(p)) = &o.detail else { panic!() };
    assert_eq!(p.peer, a);

    let mut t = mqtt(&a);
    t.topic = Some("pantau/canary".into());
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
    assert_eq!(meta(&o, "topic"), "pantau/canary");
    assert!(meta(&o, "round_trip_ms").parse::<u64>().is_ok(), "{o:?}");
}

#[tokio::test]
async fn the_right_password_is_up_and_a_wrong_or_missing_one_is_auth() {
    let broker = Mosquitto::start_with_password().await.unwrap();
    let a = broker.addr().to_string();
    let mut t = mqtt(&a);
    t.username = Some(MQTT_USER.into());
    t.password = Some(MQTT_PASSWORD.into());
    t.topic = Some("pantau/auth/canary".into());
    let o = run(&t).await;
    assert!(o.up, "{o:?}");

    t.password = Some("not-the-password".into());
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Auth, "{o:?}");
    assert!(!o.message.contains("not-the-password"), "{}", o.message);

    let o = run(&mqtt(&a)).await;
    assert_eq!(o.reason, FailureReason::Auth, "anonymous is refused: {o:?}");
}

#[tokio::test]
async fn no_broker_is_refused_and_an_unknown_host_is_dns() {
    let port = pantau_testkit::free_port();
    let o = run(&mqtt(&format!("127.0.0.1:{port}"))).await;
    assert_eq!(o.reason, FailureReason::Refused, "{o:?}");
    let o = run(&mqtt("pantau-no-such-host.invalid:1883")).await;
    assert_eq!(o.reason, FailureReason::Dns, "{o:?}");
}

/// A fake broker: reads the CONNECT, writes `connack` (and hangs up with
/// `close`); then, for each SUBSCRIBE, a SUBACK whose return code is
/// `suback_code`.
async fn fake_closing(connack: &'static [u8], suback_code: Option<u8>, close: bool) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0_u8; 1024];
                if s.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                let _ = s.write_all(connack).await;
                if close {
                    return;
                }
                loop {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    if buf[0] == 0x82
                        && n >= 4
                        && let Some(code) = suback_code
                    {
                        let _ = s.write_all(&[0x90, 3, buf[2], buf[3], code]).await;
                    }
                }
            });
        }
    });
    a
}

async fn fake(connack: &'static [u8], suback_code: Option<u8>) -> String {
    fake_closing(connack, suback_code, false).await
}

#[tokio::test]
async fn hostile_and_refusing_brokers_are_down_with_their_reason() {
    // Not MQTT at all (and gone).
    let a = fake_closing(b"HTTP/1.1 400 Bad Request\r\n\r\n\xff\xfe", None, true).await;
    let o = run(&mqtt(&a)).await;
    assert_eq!(o.reason, FailureReason::Protocol, "{o:?}");
    assert!(o.message.len() < 400, "{}", o.message);

    // A CONNACK claiming 2 MiB, beyond the 64 KiB a check accepts.
    let a = fake(b"\x20\xff\xff\x7f", None).await;
    let o = run(&mqtt(&a)).await;
    assert_eq!(o.reason, FailureReason::Protocol, "{o:?}");

    // Identifier rejected (2) and server unavailable (3) are protocol; not
    // authorised (5) is auth.
    let a = fake(b"\x20\x02\x00\x02", None).await;
    let o = run(&mqtt(&a)).await;
    assert_eq!(o.reason, FailureReason::Protocol, "{o:?}");
    assert!(o.message.contains("CONNACK"), "{}", o.message);
    let a = fake(b"\x20\x02\x00\x05", None).await;
    assert_eq!(run(&mqtt(&a)).await.reason, FailureReason::Auth);

    // Connected, but the subscription is refused.
    let a = fake(b"\x20\x02\x00\x00", Some(0x80)).await;
    let mut t = mqtt(&a);
    t.topic = Some("pantau/x".into());
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Auth, "{o:?}");
    assert!(o.message.contains("pantau/x"), "{}", o.message);

    // Connected and subscribed, but the message never comes back.
    let a = fake(b"\x20\x02\x00\x00", Some(0x01)).await;
    let mut t = mqtt(&a);
    t.topic = Some("pantau/lost".into());
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Timeout, "{o:?}");
    assert!(o.message.contains("did not come back"), "{}", o.message);
    assert_eq!(meta(&o, "topic"), "pantau/lost");

    // Never a CONNACK.
    let a = fake(b"", None).await;
    let o = run(&mqtt(&a)).await;
    assert_eq!(o.reason, FailureReason::Timeout, "{o:?}");
}

#[test]
fn the_api_form_of_a_target_masks_its_secrets() {
    let cfg = CollectorConfig::default();
    let mut m = mqtt("127.0.0.1:1883");
    m.username = Some(MQTT_USER.into());
    m.password = Some("s3cret-mqtt".into());
    let mut w = RawTarget::new("w", CheckType::Websocket);
    w.url = Some("wss://user:s3cret-url@example.org/live".into());
    w.headers.insert("Authorization".into(), "Bearer s3cret-header".into());
    w.headers.insert("Origin".into(), "https://example.org".into());
    for raw in [m, w] {
        let parsed = Arc::new(raw.parse("t").unwrap());
        let target = Target::compile(&parsed, "t", &cfg, TargetSource::Api).unwrap();
        let shown = format!(
            "{:?} {:?}",
            target.to_proto(pantau_proto::v1::BreakerState::Closed),
            target
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
