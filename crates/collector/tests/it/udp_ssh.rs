//! `udp` checks against a UDP echo socket and silent and closed ports, and
//! `ssh` checks against Debian's real `sshd` (started by the testkit) and
//! servers that are not SSH.

use std::sync::Arc;
use std::time::Duration;

use pantau_collector::checks::{Checker, Outcome};
use pantau_collector::target::Target;
use pantau_config::{CheckType, CollectorConfig, RawTarget};
use pantau_proto::v1::{FailureReason, TargetSource, check_result::Detail};
use pantau_testkit::Sshd;
use tokio::io::AsyncWriteExt;

async fn run(t: &RawTarget) -> Outcome {
    let cfg = CollectorConfig {
        timeout: Duration::from_secs(2),
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

fn udp(address: &str, send: &str, expect: Option<&str>) -> RawTarget {
    let mut t = RawTarget::new("u", CheckType::Udp);
    t.address = Some(address.to_owned());
    t.send = Some(send.to_owned());
    t.expect = expect.map(str::to_owned);
    t
}

#[tokio::test]
async fn udp_echo_is_up_a_wrong_answer_is_an_assertion_and_silence_a_timeout() {
    let echo = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let a = echo.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut buf = [0_u8; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let mut answer = b"echo:".to_vec();
            answer.extend_from_slice(&buf[..n]);
            let _ = echo.send_to(&answer, from).await;
        }
    });
    let o = run(&udp(&a, "ping\\n", Some("echo:ping\n"))).await;
    assert!(o.up, "{o:?}");
    assert_eq!(meta(&o, "answer_bytes"), "10");
    // Any answer, when nothing is expected.
    assert!(run(&udp(&a, "x", None)).await.up);
    let o = run(&udp(&a, "ping", Some("pong"))).await;
    assert_eq!(o.reason, FailureReason::Assertion, "{o:?}");
    assert!(o.message.contains("pong"), "{}", o.message);

    // A socket that never answers: the timeout.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let o = run(&udp(&silent.local_addr().unwrap().to_string(), "x", None)).await;
    assert_eq!(o.reason, FailureReason::Timeout, "{o:?}");

    // A closed port: the ICMP port unreachable refuses it.
    let closed = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let o = run(&udp(&addr, "x", None)).await;
    assert_eq!(o.reason, FailureReason::Refused, "{o:?}");
}

fn ssh(address: &str, expect: Option<&str>) -> RawTarget {
    let mut t = RawTarget::new("s", CheckType::Ssh);
    t.address = Some(address.to_owned());
    t.expect = expect.map(str::to_owned);
    t
}

#[tokio::test]
async fn the_ssh_banner_of_a_real_sshd_is_up_and_checked() {
    let sshd = Sshd::start().await.unwrap();
    let a = sshd.addr().to_string();
    let o = run(&ssh(&a, Some("OpenSSH"))).await;
    assert!(o.up, "{o:?}");
    assert_eq!(meta(&o, "protocol"), "2.0");
    assert!(meta(&o, "software").starts_with("OpenSSH_"), "{o:?}");
    let o = run(&ssh(&a, Some("dropbear"))).await;
    assert_eq!(o.reason, FailureReason::Assertion, "{o:?}");
    assert!(o.message.contains("OpenSSH"), "{}", o.message);
}

/// A TCP server that sends `what` to each connection and closes it.
async fn sends(what: &'static [u8]) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(what).await;
        }
    });
    a
}

#[tokio::test]
async fn servers_that_are_not_ssh_are_down_with_bounded_messages() {
    let o = run(&ssh(&sends(b"220 mail.example ESMTP\r\n").await, None)).await;
    assert_eq!(o.reason, FailureReason::Protocol, "{o:?}");
    assert!(o.message.contains("ESMTP"), "{}", o.message);
    let o = run(&ssh(&sends(b"SSH-1.5-ancient\r\n").await, None)).await;
    assert_eq!(o.reason, FailureReason::Protocol, "{o:?}");
    assert!(o.message.contains("1.5"), "{}", o.message);
    let o = run(&ssh(&sends(&[0xff; 4000]).await, None)).await;
    assert_eq!(o.reason, FailureReason::Protocol, "{o:?}");
    assert!(o.message.len() < 500, "{}", o.message);
    let port = pantau_testkit::free_port();
    let o = run(&ssh(&format!("127.0.0.1:{port}"), None)).await;
    assert_eq!(o.reason, FailureReason::Refused, "{o:?}");
}
