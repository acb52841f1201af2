//! Every check type against real local servers: HTTPS with a short-lived
//! self-signed certificate, TLS, DNS from a real dnsmasq, ICMP to 127.0.0.1,
//! HTTP options and conditions.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post};
use pantau_collector::checks::Checker;
use pantau_collector::target::Target;
use pantau_config::{
    CheckType, CollectorConfig, ConditionConfig, HeaderCondition, JsonCondition, RawTarget, RecordType,
};
use pantau_proto::v1::{FailureReason, TargetSource, check_result::Detail};
use pantau_testkit::{DnsRecord, Dnsmasq};

fn compile(t: &RawTarget) -> Target {
    let cfg = CollectorConfig {
        timeout: Duration::from_secs(5),
        ..CollectorConfig::default()
    };
    Target::compile(
        &Arc::new(t.clone().parse("t").unwrap_or_else(|e| panic!("{e:?}"))),
        "t",
        &cfg,
        TargetSource::Config,
    )
    .unwrap_or_else(|e| panic!("{e:?}"))
}

async fn run(t: &RawTarget) -> pantau_collector::checks::Outcome {
    Checker::new().unwrap().check(&compile(t)).await
}

/// An HTTPS server on 127.0.0.1 with a self-signed certificate for
/// `localhost` valid for `days` more days; answers every request with 200 "ok".
async fn https_server(days: i64) -> String {
    let cert = crate::trust::leaf("pantau-test", &["localhost"], -1, days, None);
    let port = crate::trust::serve(vec![cert.der.clone()], &cert.key, None).await;
    format!("localhost:{port}")
}

#[tokio::test]
async fn https_reports_the_certificate_and_its_expiry() {
    let host = https_server(5).await;
    let mut t = RawTarget::new("https", CheckType::Http);
    t.url = Some(format!("https://{host}/"));
    // The self-signed chain fails verification.
    let o = run(&t).await;
    assert!(!o.up);
    assert_eq!(o.reason, FailureReason::Tls, "{o:?}");
    // Without verification the check reaches the server, and the
    // certificate's 5 days are under the 14-day warning.
    t.verify_tls = Some(false);
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Tls, "{o:?}");
    assert!(o.message.contains("expires in 5 days"), "{}", o.message);
    let Some(Detail::Http(h)) = &o.detail else {
        panic!("{o:?}")
    };
    assert_eq!(h.status_code, 200);
    let c = h.certificate.as_ref().expect("certificate reported");
    assert_eq!(c.days_to_expiry, 5);
    assert!(c.subject.contains("pantau-test"), "{}", c.subject);
    assert_eq!(c.dns_names, ["localhost"]);
    t.warn_days = Some(3);
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
}

#[tokio::test]
async fn tls_check_reads_the_chain_of_any_port() {
    let host = https_server(10).await;
    let mut t = RawTarget::new("tls", CheckType::Tls);
    t.address = Some(host.clone());
    let o = run(&t).await;
    assert_eq!(
        o.reason,
        FailureReason::Tls,
        "verification must fail on a self-signed chain: {o:?}"
    );
    t.verify_tls = Some(false);
    t.warn_days = Some(7);
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
    let Some(Detail::Tls(d)) = &o.detail else {
        panic!("{o:?}")
    };
    assert_eq!(d.chain.len(), 1);
    assert_eq!(d.chain[0].days_to_expiry, 10);
    assert!(d.protocol_version.contains("TLS"), "{}", d.protocol_version);
    t.warn_days = Some(30);
    let o = run(&t).await;
    assert!(!o.up && o.message.contains("expires in 10 days"), "{o:?}");
}

#[tokio::test]
async fn dns_against_a_real_server() {
    let dns = Dnsmasq::start(&[
        DnsRecord::Address("router.test".into(), "192.0.2.10".parse().unwrap()),
        DnsRecord::Mx("router.test".into(), "mail.router.test".into(), 10),
        DnsRecord::Txt("router.test".into(), "v=spf1 -all".into()),
    ])
    .await
    .expect("dnsmasq starts");
    let resolver = dns.addr().to_string();
    let mut t = RawTarget::new("dns", CheckType::Dns);
    t.name_to_resolve = Some("router.test".into());
    t.resolver = Some(resolver.clone());
    t.expected_answers = vec!["192.0.2.10".into()];
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
    let Some(Detail::Dns(d)) = &o.detail else {
        panic!("{o:?}")
    };
    assert_eq!(d.answers, ["192.0.2.10"]);
    assert_eq!(d.record_type, "A");

    t.expected_answers = vec!["192.0.2.99".into()];
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Assertion, "{o:?}");

    t.expected_answers = vec!["mail.router.test".into()];
    t.record_type = Some(RecordType::Mx);
    let o = run(&t).await;
    assert!(o.up, "{o:?}");

    t.expected_answers = vec!["v=spf1 -all".into()];
    t.record_type = Some(RecordType::Txt);
    let o = run(&t).await;
    assert!(o.up, "{o:?}");

    t.name_to_resolve = Some("missing.test".into());
    t.record_type = None;
    t.expected_answers = vec![];
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Dns, "{o:?}");
}

#[tokio::test]
async fn dns_for_localhost_through_the_system_resolver() {
    let mut t = RawTarget::new("localhost", CheckType::Dns);
    t.name_to_resolve = Some("localhost".into());
    t.expected_answers = vec!["127.0.0.1".into()];
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
}

#[tokio::test]
async fn icmp_to_loopback() {
    let _quiet = ICMP.lock().await;
    let mut t = RawTarget::new("ping", CheckType::Icmp);
    t.host = Some("127.0.0.1".into());
    t.count = Some(3);
    let o = run(&t).await;
    assert!(o.up, "ICMP needs root or net.ipv4.ping_group_range: {o:?}");
    let Some(Detail::Icmp(d)) = &o.detail else {
        panic!("{o:?}")
    };
    assert_eq!((d.sent, d.received), (3, 3));
    assert!(d.loss_percent.abs() < f64::EPSILON);
    assert!(d.rtt_max.is_some() && d.jitter.is_some());
}

/// ICMP tests of this binary run one at a time: one of them silences the
/// kernel's echo replies for a moment.
static ICMP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The kernel answers no echo request while this lives
/// (`net.ipv4.icmp_echo_ignore_all`, restored on drop, also on a panic).
struct NoEchoReplies(String);

impl NoEchoReplies {
    const KNOB: &str = "/proc/sys/net/ipv4/icmp_echo_ignore_all";

    fn new() -> Self {
        let was = std::fs::read_to_string(Self::KNOB).expect("read net.ipv4.icmp_echo_ignore_all");
        std::fs::write(Self::KNOB, "1")
            .expect("the ICMP loss test must run as root: it sets net.ipv4.icmp_echo_ignore_all");
        Self(was)
    }
}

impl Drop for NoEchoReplies {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::KNOB, self.0.trim());
    }
}

/// A host that never answers is 100 % loss with its numbers (`icmp_loss`,
/// 4 sent, 0 received), not a bare timeout: replies are awaited until just
/// before the check's own timeout.
#[tokio::test]
async fn icmp_total_loss_is_reported_as_loss() {
    let _one = ICMP.lock().await;
    let mut t = RawTarget::new("silent", CheckType::Icmp);
    t.host = Some("127.0.0.1".into());
    t.count = Some(4);
    t.timeout = Some(Duration::from_secs(1));
    t.interval = Some(Duration::from_secs(5));
    let o = {
        let _quiet = NoEchoReplies::new();
        run(&t).await
    };
    assert!(!o.up, "{o:?}");
    assert_eq!(o.reason, FailureReason::IcmpLoss, "{o:?}");
    assert!(o.message.contains("100% loss"), "{}", o.message);
    let Some(Detail::Icmp(d)) = &o.detail else {
        panic!("{o:?}")
    };
    assert_eq!((d.sent, d.received), (4, 0));
    assert!((d.loss_percent - 100.0).abs() < f64::EPSILON);
    // Answered again once the kernel replies.
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
}

#[tokio::test]
async fn http_options_and_conditions() {
    let app = axum::Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok", "db": {"latency_ms": 12}})) }),
        )
        .route("/old", get(|| async { axum::response::Redirect::to("/health") }))
        .route(
            "/echo",
            post(|headers: axum::http::HeaderMap, body: String| async move {
                let token = headers
                    .get("x-token")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                if token == "s3cret" {
                    (StatusCode::CREATED, body)
                } else {
                    (StatusCode::FORBIDDEN, String::new())
                }
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });

    let mut t = RawTarget::new("api", CheckType::Http);
    t.url = Some(format!("{base}/health"));
    t.conditions = vec![
        ConditionConfig::Json(JsonCondition {
            path: "$.status".into(),
            equals: Some("ok".into()),
            ..Default::default()
        }),
        ConditionConfig::Json(JsonCondition {
            path: "$.db.latency_ms".into(),
            less_than: Some(100.0),
            ..Default::default()
        }),
        ConditionConfig::Header(HeaderCondition {
            name: "content-type".into(),
            contains: Some("json".into()),
            equals: None,
        }),
        ConditionConfig::ResponseTimeBelow(Duration::from_secs(2)),
        ConditionConfig::BodyMatches("\"status\":\\s*\"ok\"".into()),
    ];
    assert!(run(&t).await.up);
    t.conditions.push(ConditionConfig::BodyContains("degraded".into()));
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Assertion);
    assert!(o.message.contains("degraded"), "{}", o.message);

    // Redirects: followed by default, or judged as they are.
    let mut r = RawTarget::new("old", CheckType::Http);
    r.url = Some(format!("{base}/old"));
    assert!(run(&r).await.up);
    r.follow_redirects = Some(false);
    r.expected_status = vec![200];
    let o = run(&r).await;
    assert_eq!(o.reason, FailureReason::HttpStatus, "{o:?}");
    assert!(o.message.contains("303"), "{}", o.message);
    // The URL in that message never carries its password.
    r.url = Some(base.replacen("http://", "http://ops:hunter2@", 1) + "/old");
    let o = run(&r).await;
    assert_eq!(o.reason, FailureReason::HttpStatus, "{o:?}");
    assert!(
        o.message.contains("ops:***@") && !o.message.contains("hunter2"),
        "{}",
        o.message
    );

    // Method, headers and body are sent.
    let mut p = RawTarget::new("echo", CheckType::Http);
    p.url = Some(format!("{base}/echo"));
    p.method = Some("POST".into());
    p.body = Some("hello".into());
    p.expected_status = vec![201];
    p.conditions = vec![ConditionConfig::BodyContains("hello".into())];
    assert_eq!(run(&p).await.reason, FailureReason::HttpStatus);
    p.headers.insert("X-Token".into(), "s3cret".into());
    assert!(run(&p).await.up);
}

/// Keep-alive by default: three checks of one target use one connection;
/// `reuse_connection: false` opens one per check.
#[tokio::test]
async fn http_reuses_connections_unless_told_not_to() {
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        let app = axum::Router::new().route("/", get(|| async { "ok" }));
        let listener = CountingListener {
            inner: l,
            accepted: counter,
        };
        axum::serve(listener, app).await.unwrap();
    });
    let checker = Checker::new().unwrap();
    for (reuse, want) in [(None, 1), (Some(false), 3)] {
        accepted.store(0, std::sync::atomic::Ordering::SeqCst);
        let mut t = RawTarget::new(format!("reuse-{want}"), CheckType::Http);
        t.url = Some(format!("http://{addr}/"));
        t.reuse_connection = reuse;
        let target = compile(&t);
        for _ in 0..3 {
            let o = checker.check(&target).await;
            assert!(o.up, "{reuse:?}: {}", o.message);
        }
        assert_eq!(
            accepted.load(std::sync::atomic::Ordering::SeqCst),
            want,
            "connections for reuse_connection = {reuse:?}"
        );
    }
}

/// A listener that counts the connections it accepts.
struct CountingListener {
    inner: tokio::net::TcpListener,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl axum::serve::Listener for CountingListener {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok(conn) = self.inner.accept().await {
                self.accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return conn;
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
