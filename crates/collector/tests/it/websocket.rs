//! `websocket` checks against real WebSocket servers made here with
//! tokio-tungstenite's accept loop on 127.0.0.1 (plain and behind rustls):
//! an echo, a handshake refused with 403, a server that never answers, one
//! that closes, one that sends an oversized message, one that is not HTTP,
//! and no server at all.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pantau_collector::checks::{Checker, Outcome};
use pantau_collector::target::Target;
use pantau_config::{CheckType, CollectorConfig, RawTarget};
use pantau_proto::v1::{FailureReason, TargetSource, check_result::Detail};
use rustls::pki_types::PrivateKeyDer;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

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

fn ws(url: &str) -> RawTarget {
    let mut t = RawTarget::new("w", CheckType::Websocket);
    t.url = Some(url.to_owned());
    t
}

/// How a test server behaves once the socket is open.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers each text with `echo:` + the text + ` auth=` + the
    /// Authorization header it got.
    Echo,
    /// Reads and never answers.
    Silent,
    /// Closes with code 1008 and a reason.
    Close,
    /// Sends a 100 KiB text message.
    Huge,
}

/// A WebSocket server on 127.0.0.1; `refuse` answers the upgrade with 403.
async fn server(behaviour: Behaviour, refuse: bool) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(serve(tcp, behaviour, refuse));
        }
    });
    port
}

// The handshake callback's type is tungstenite's own.
#[allow(clippy::result_large_err)]
async fn serve<S>(io: S, behaviour: Behaviour, refuse: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut auth = String::new();
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if refuse {
            let mut e = ErrorResponse::new(Some("no sockets for you".into()));
            *e.status_mut() = StatusCode::FORBIDDEN;
            return Err(e);
        }
        auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(io, callback).await else {
        return;
    };
    match behaviour {
        Behaviour::Echo => {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    let _ = ws.send(Message::text(format!("echo:{} auth={auth}", t.as_str()))).await;
                }
            }
        }
        Behaviour::Silent => while let Some(Ok(_)) = ws.next().await {},
        Behaviour::Close => {
            let _ = ws.next().await;
            let _ = ws
                .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: 1008.into(),
                    reason: "policy\r\nviolated".into(),
                }))
                .await;
        }
        Behaviour::Huge => {
            let _ = ws.send(Message::text("x".repeat(100 * 1024))).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[tokio::test]
async fn an_echo_is_up_and_its_reply_is_compared_by_text_and_regex() {
    let port = server(Behaviour::Echo, false).await;
    let url = format!("ws://127.0.0.1:{port}/echo");
    // The handshake alone.
    let o = run(&ws(&url)).await;
    assert!(o.up, "{o:?}");
    assert_eq!(meta(&o, "status"), "101");

    let mut t = ws(&url);
    t.send = Some("ping".into());
    t.expect = Some("echo:ping".into());
    t.headers.insert("Authorization".into(), "Bearer s3cret".into());
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
    assert_eq!(meta(&o, "reply"), "echo:ping auth=Bearer s3cret");
    assert!(!meta(&o, "handshake_ms").is_empty());

    t.expect = None;
    t.expect_matches = Some("^ECHO:p.ng".into());
    assert!(run(&t).await.up, "a regex matches without regard to case");

    t.expect_matches = Some("^pong$".into());
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Assertion, "{o:?}");
    assert!(o.message.contains("/^pong$/"), "{}", o.message);

    t.expect_matches = None;
    t.expect = Some("pong".into());
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Assertion, "{o:?}");
    assert!(
        o.message.contains("echo:ping") && o.message.contains("pong"),
        "{}",
        o.message
    );
}

#[tokio::test]
async fn a_refused_handshake_is_http_status_and_no_server_is_refused() {
    let port = server(Behaviour::Echo, true).await;
    let o = run(&ws(&format!("ws://127.0.0.1:{port}/"))).await;
    assert_eq!(o.reason, FailureReason::HttpStatus, "{o:?}");
    assert!(o.message.contains("403"), "{}", o.message);

    let free = pantau_testkit::free_port();
    let o = run(&ws(&format!("ws://127.0.0.1:{free}/"))).await;
    assert_eq!(o.reason, FailureReason::Refused, "{o:?}");
}

#[tokio::test]
async fn silence_is_a_timeout_and_a_close_or_an_oversized_message_is_protocol() {
    let port = server(Behaviour::Silent, false).await;
    let mut t = ws(&format!("ws://127.0.0.1:{port}/"));
    t.send = Some("hello?".into());
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Timeout, "{o:?}");

    let port = server(Behaviour::Close, false).await;
    let mut t = ws(&format!("ws://127.0.0.1:{port}/"));
    t.send = Some("hello".into());
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Protocol, "{o:?}");
    assert!(
        o.message.contains("1008") && o.message.contains("policy??violated"),
        "{}",
        o.message
    );

    let port = server(Behaviour::Huge, false).await;
    let mut t = ws(&format!("ws://127.0.0.1:{port}/"));
    t.expect = Some("x".into());
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Protocol, "{o:?}");
    assert!(o.message.len() < 500, "{}", o.message);
}

#[tokio::test]
async fn a_server_that_is_not_websocket_is_protocol() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"[..],
        &b"\0\xff\xfe garbage \r\n\r\n"[..],
        &b"SSH-2.0-OpenSSH_9.2\r\n"[..],
    ] {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0_u8; 1024];
                let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
                let _ = s.write_all(answer).await;
                let _ = s.shutdown().await;
            }
        });
        let o = run(&ws(&format!("ws://127.0.0.1:{port}/"))).await;
        assert!(!o.up, "{o:?}");
        assert!(
            matches!(o.reason, FailureReason::Protocol | FailureReason::HttpStatus),
            "{answer:?}: {o:?}"
        );
        assert!(o.message.len() < 500, "{}", o.message);
    }
}

#[tokio::test]
async fn wss_is_verified_like_the_tls_check() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = crate::trust::leaf("pantau-ws", &["localhost"], -1, 30, None);
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der.clone()],
            PrivateKeyDer::Pkcs8(cert.key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve(tls, Behaviour::Echo, false).await;
                }
            });
        }
    });
    let mut t = ws(&format!("wss://localhost:{port}/"));
    t.send = Some("tls".into());
    let o = run(&t).await;
    assert_eq!(
        o.reason,
        FailureReason::Tls,
        "a self-signed certificate is refused: {o:?}"
    );
    assert!(o.message.contains("self-signed"), "{}", o.message);
    t.verify_tls = Some(false);
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
    assert!(meta(&o, "reply").starts_with("echo:tls"), "{o:?}");
}
