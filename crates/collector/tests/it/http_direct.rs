//! Plain-HTTP checks on a new connection (`reuse_connection: false`) go
//! without reqwest (`checks::http_direct`); the same target with keep-alive
//! goes through reqwest. Both must send the same request and report the same
//! outcome (up or down, reason, message, detail) for every answer a server
//! can give: good ones, redirects, and hostile ones (garbage, a truncated
//! body, a head too large, bad chunks, a status outside the standard ones).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pantau_collector::checks::{Checker, Outcome};
use pantau_config::{CheckType, CollectorConfig, ConditionConfig, RawTarget};
use pantau_proto::v1::{FailureReason, TargetSource, check_result::Detail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn target(url: &str, reuse: Option<bool>) -> pantau_collector::target::Target {
    let mut t = RawTarget::new("direct", CheckType::Http);
    t.url = Some(url.to_owned());
    t.reuse_connection = reuse;
    compile(t)
}

fn compile(t: RawTarget) -> pantau_collector::target::Target {
    let cfg = CollectorConfig {
        timeout: Duration::from_secs(5),
        ..CollectorConfig::default()
    };
    pantau_collector::target::Target::compile(
        &Arc::new(t.parse("t").unwrap_or_else(|e| panic!("{e:?}"))),
        "t",
        &cfg,
        TargetSource::Config,
    )
    .unwrap_or_else(|e| panic!("{e:?}"))
}

/// What a client sent up to the end of its request's head (or until it
/// stopped sending, or 64 KiB).
async fn read_head(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    head
}

/// A server that reads each request's head (kept in `heads`), answers
/// `answer` and closes the connection.
async fn canned(answer: Vec<u8>, heads: Arc<Mutex<Vec<String>>>) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let (answer, heads) = (answer.clone(), Arc::clone(&heads));
            tokio::spawn(async move {
                let head = read_head(&mut s).await;
                heads.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
                let _ = s.write_all(&answer).await;
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://{addr}/probe?x=1")
}

/// The outcome without its latency, which differs between any two checks.
fn comparable(o: &Outcome) -> (bool, FailureReason, String, Option<Detail>) {
    (o.up, o.reason, o.message.clone(), o.detail.clone())
}

/// The same URL checked through reqwest (keep-alive) and directly.
async fn both(checker: &Checker, url: &str) -> (Outcome, Outcome) {
    let via_reqwest = checker.check(&target(url, None)).await;
    let direct = checker.check(&target(url, Some(false))).await;
    (via_reqwest, direct)
}

#[tokio::test]
async fn direct_and_reqwest_checks_agree_on_every_answer() {
    let checker = Checker::new().unwrap().with_location("lab");
    let big = {
        let mut a = b"HTTP/1.1 200 OK\r\nContent-Length: 5242880\r\n\r\n".to_vec();
        a.resize(a.len() + 5 * 1024 * 1024, b'x');
        a
    };
    let many_headers = {
        let mut a = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..150 {
            a.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        a.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        a
    };
    let huge_header = {
        let mut a = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        a.resize(a.len() + 1024 * 1024, b'a');
        a.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
        a
    };
    let cases: Vec<(&str, Vec<u8>, bool, FailureReason)> = vec![
        (
            "ok",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            true,
            FailureReason::Unspecified,
        ),
        (
            "not found",
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
            false,
            FailureReason::HttpStatus,
        ),
        (
            "odd status",
            b"HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n".to_vec(),
            false,
            FailureReason::HttpStatus,
        ),
        (
            "no length, closed",
            b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec(),
            true,
            FailureReason::Unspecified,
        ),
        (
            "redirect without location",
            b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
            true,
            FailureReason::Unspecified,
        ),
        (
            "not http",
            b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(),
            false,
            FailureReason::Connect,
        ),
        ("closed at once", Vec::new(), false, FailureReason::Connect),
        (
            "bad status line",
            b"HTTP/1.1 abc OK\r\n\r\n".to_vec(),
            false,
            FailureReason::Connect,
        ),
        (
            "truncated body",
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc".to_vec(),
            false,
            FailureReason::Connect,
        ),
        (
            "bad chunk",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            false,
            FailureReason::Connect,
        ),
        (
            "NUL in a header",
            b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n".to_vec(),
            false,
            FailureReason::Connect,
        ),
        ("150 headers", many_headers, false, FailureReason::Connect),
        ("a 1 MiB header", huge_header, false, FailureReason::Connect),
        ("5 MiB body", big, true, FailureReason::Unspecified),
    ];
    for (name, answer, up, reason) in cases {
        let heads = Arc::new(Mutex::new(Vec::new()));
        let url = canned(answer, Arc::clone(&heads)).await;
        let (r, d) = both(&checker, &url).await;
        // Past the limit, how much was read depends on how the socket's
        // reads fell: the rest must agree.
        let past_limit = |o: &Outcome| {
            let mut c = comparable(o);
            if let Some(Detail::Http(h)) = &mut c.3
                && h.body_bytes >= 4 << 20
            {
                h.body_bytes = 4 << 20;
            }
            c
        };
        assert_eq!(past_limit(&d), past_limit(&r), "{name}: direct against reqwest");
        assert_eq!((d.up, d.reason), (up, reason), "{name}: {}", d.message);
        if !up {
            assert!(
                d.message.contains(&url),
                "{name}: the message names the URL: {}",
                d.message
            );
        }
        if name == "5 MiB body" {
            let Some(Detail::Http(h)) = &d.detail else {
                panic!("{d:?}")
            };
            assert!(h.body_bytes >= 4 << 20, "read up to the limit: {}", h.body_bytes);
        }
        if name == "ok" {
            // The same request, header for header (order aside).
            let heads = heads.lock().unwrap();
            // Keep-alive aside: a new connection says `connection: close`.
            assert!(
                heads[1].to_lowercase().contains("\r\nconnection: close\r\n"),
                "{}",
                heads[1]
            );
            let set = |h: &str| {
                let mut lines: Vec<String> = h
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_lowercase)
                    .filter(|l| l != "connection: close")
                    .collect();
                lines.sort();
                lines
            };
            assert_eq!(heads.len(), 2);
            assert_eq!(set(&heads[1]), set(&heads[0]), "direct against reqwest");
            assert!(heads[1].starts_with("GET /probe?x=1 HTTP/1.1\r\n"), "{}", heads[1]);
            assert!(heads[1].contains("x-pantau-location: lab"), "{}", heads[1]);
        }
    }
}

#[tokio::test]
async fn direct_checks_fail_like_reqwest_before_any_answer() {
    let checker = Checker::new().unwrap();
    // A port nobody listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let (r, d) = both(&checker, &format!("http://127.0.0.1:{port}/")).await;
    assert_eq!(comparable(&d), comparable(&r));
    assert_eq!(d.reason, FailureReason::Refused, "{}", d.message);
    // A name no resolver knows (RFC 6761).
    let (r, d) = both(&checker, "http://pantau-direct.invalid/").await;
    assert_eq!((d.up, d.reason), (r.up, r.reason), "{} / {}", d.message, r.message);
    assert_eq!(d.reason, FailureReason::Dns, "{}", d.message);
    assert!(d.message.contains("pantau-direct.invalid"), "{}", d.message);
}

#[tokio::test]
async fn direct_checks_follow_redirects_through_reqwest_and_send_what_the_target_sets() {
    use axum::routing::{get, post};
    let app = axum::Router::new()
        .route("/ok", get(|| async { "fine" }))
        .route("/old", get(|| async { axum::response::Redirect::to("/ok") }))
        .route(
            "/echo",
            post(|headers: axum::http::HeaderMap, body: String| async move {
                let token = headers.get("x-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
                format!("{token}:{body}")
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    let checker = Checker::new().unwrap();

    let (r, d) = both(&checker, &format!("{base}/old")).await;
    assert_eq!(comparable(&d), comparable(&r));
    assert!(d.up, "{}", d.message);
    // Not followed: the redirect is the answer, judged as it is.
    let mut t = RawTarget::new("old", CheckType::Http);
    t.url = Some(format!("{base}/old"));
    t.reuse_connection = Some(false);
    t.follow_redirects = Some(false);
    t.expected_status = vec![200];
    let o = checker.check(&compile(t)).await;
    assert_eq!(o.reason, FailureReason::HttpStatus, "{o:?}");
    assert!(o.message.contains("303"), "{}", o.message);

    // A POST with a body and a header, not followed: direct.
    for reuse in [None, Some(false)] {
        let mut p = RawTarget::new("echo", CheckType::Http);
        p.url = Some(format!("{base}/echo"));
        p.method = Some("POST".into());
        p.body = Some("hello".into());
        p.follow_redirects = Some(false);
        p.reuse_connection = reuse;
        p.headers.insert("X-Token".into(), "s3cret".into());
        p.conditions = vec![ConditionConfig::BodyContains("s3cret:hello".into())];
        let o = checker.check(&compile(p)).await;
        assert!(o.up, "{reuse:?}: {}", o.message);
    }
}

/// The request is written as soon as `connect` returns; when the handshake
/// is not done by then (here: the server's accept queue is full, so its SYN
/// is dropped and sent again a second later), the write says so and the
/// check waits for the connection, then sends its request and reads the
/// answer as usual.
#[tokio::test]
async fn a_direct_check_waits_for_a_handshake_not_done_when_connect_returns() {
    use tokio::net::{TcpSocket, TcpStream};
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    // An accept queue of two, filled by connections that send nothing.
    let listener = socket.listen(1).unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        fillers.push(tokio::spawn(TcpStream::connect(addr)));
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    tokio::spawn(async move {
        // Accepting starts only once the check has connected and written.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        while let Ok((mut s, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let head = read_head(&mut s).await;
                if !head.ends_with(b"\r\n\r\n") {
                    return;
                }
                seen.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                    .await;
            });
        }
    });
    let checker = Checker::new().unwrap();
    let o = checker
        .check(&target(&format!("http://{addr}/late"), Some(false)))
        .await;
    assert!(o.up, "{}", o.message);
    // The SYN dropped by the full queue was sent again a second later.
    assert!(o.latency >= std::time::Duration::from_millis(500), "{o:?}");
    let heads = heads.lock().unwrap();
    assert!(
        heads.iter().any(|h| h.starts_with("GET /late HTTP/1.1\r\n")),
        "{heads:?}"
    );
    drop(fillers);
}

/// A direct check closes its connection with a reset once the answer is read,
/// to an address and to a name alike: the server, still reading after its
/// answer, sees `ECONNRESET`, not the end of a stream (a `FIN`, which would
/// leave one side in `TIME_WAIT`).
#[tokio::test]
async fn a_direct_check_closes_its_connection_with_a_reset() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let head = read_head(&mut s).await;
                if !head.ends_with(b"\r\n\r\n") {
                    return;
                }
                // Answered, but not closed: what the check does next is what
                // this read sees.
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .unwrap();
                let after = tokio::time::timeout(Duration::from_secs(5), s.read(&mut [0u8; 64])).await;
                let _ = tx.send(after.map(|r| r.map_err(|e| e.kind())));
            });
        }
    });
    let checker = Checker::new().unwrap();
    for url in [format!("http://127.0.0.1:{port}/"), format!("http://localhost:{port}/")] {
        let o = checker.check(&target(&url, Some(false))).await;
        assert!(o.up, "{url}: {}", o.message);
        let after = rx.recv().await.unwrap();
        assert_eq!(
            after,
            Ok(Err(std::io::ErrorKind::ConnectionReset)),
            "{url}: what the server read after its answer"
        );
    }
}
