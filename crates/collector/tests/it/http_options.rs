//! `http` (and `http_steps`) options against real servers: an HTTP proxy
//! (Debian's tinyproxy, plain and CONNECT for https), a SOCKS5 proxy
//! (Debian's danted) and `resolve` (a name that DNS does not know, mapped to
//! 127.0.0.1, TLS still checking the name). Each test also shows the check
//! fails without the option, so the UP is the option's doing.

use pantau_config::{CheckType, ConditionConfig, RawTarget};
use pantau_proto::v1::FailureReason;
use pantau_testkit::Proxy;

use crate::steps::{api, flow, run};
use crate::trust::{ca, leaf, serve};

/// An HTTP server answering `/via` with the `Via` header it received.
async fn via_server() -> u16 {
    async fn via(headers: axum::http::HeaderMap) -> String {
        format!(
            "via={}",
            headers.get("via").and_then(|v| v.to_str().ok()).unwrap_or("none")
        )
    }
    let app = axum::Router::new().route("/via", axum::routing::get(via));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    port
}

fn http(url: String) -> RawTarget {
    let mut t = RawTarget::new("h", CheckType::Http);
    t.url = Some(url);
    t
}

#[tokio::test]
async fn an_http_proxy_carries_http_and_https_checks() {
    let proxy = Proxy::tinyproxy().await.expect("tinyproxy (apt-get install tinyproxy)");
    let port = via_server().await;
    let mut t = http(format!("http://127.0.0.1:{port}/via"));
    t.conditions = vec![ConditionConfig::BodyContains("pantau-test-proxy".into())];
    // Direct: no Via header, the condition fails.
    let o = run(&t).await;
    assert!(!o.up && o.reason == FailureReason::Assertion, "{o:?}");
    t.proxy = Some(proxy.url());
    let o = run(&t).await;
    assert!(o.up, "through tinyproxy: {o:?}");

    // https through CONNECT, the private CA trusted.
    let dir = tempfile::tempdir().unwrap();
    let root = ca("Pantau Proxy Root", None);
    let ca_file = dir.path().join("root.pem");
    std::fs::write(&ca_file, &root.pem).unwrap();
    let cert = leaf("svc", &["localhost"], -1, 90, Some(&root));
    let tls_port = serve(vec![cert.der.clone()], &cert.key, None).await;
    let mut s = http(format!("https://localhost:{tls_port}/"));
    s.ca_file = Some(ca_file);
    s.proxy = Some(proxy.url());
    let o = run(&s).await;
    assert!(o.up, "https through tinyproxy: {o:?}");
    assert!(
        proxy.log().contains("CONNECT"),
        "tinyproxy saw no CONNECT:\n{}",
        proxy.log()
    );

    // A multi-step check goes through it too.
    let api_port = api().await;
    let mut f = flow(api_port);
    f.proxy = Some(proxy.url());
    let o = run(&f).await;
    assert!(o.up, "steps through tinyproxy: {o:?}");
    assert!(
        proxy.log().contains("/login"),
        "tinyproxy did not carry the login:\n{}",
        proxy.log()
    );
}

#[tokio::test]
async fn a_socks5_proxy_carries_checks_and_its_outage_is_seen() {
    let mut proxy = Proxy::dante().await.expect("danted (apt-get install dante-server)");
    let port = via_server().await;
    let mut t = http(format!("http://127.0.0.1:{port}/via"));
    t.proxy = Some(proxy.url());
    let o = run(&t).await;
    assert!(o.up, "through danted: {o:?}");
    // socks5h: the proxy resolves the name.
    t.proxy = Some(proxy.url().replace("socks5://", "socks5h://"));
    t.url = Some(format!("http://localhost:{port}/via"));
    let o = run(&t).await;
    assert!(o.up, "through danted, names resolved there: {o:?}");
    proxy.stop().await;
    let o = run(&t).await;
    assert!(!o.up, "the proxy is down, the server is not: {o:?}");
    // The server itself still answers directly.
    t.proxy = None;
    assert!(run(&t).await.up);
}

#[tokio::test]
async fn resolve_maps_a_name_to_an_address_and_tls_still_checks_the_name() {
    let port = via_server().await;
    let mut t = http(format!("http://api.pantau-test.invalid:{port}/via"));
    let o = run(&t).await;
    assert!(!o.up && o.reason == FailureReason::Dns, "without resolve: {o:?}");
    t.resolve.insert("api.pantau-test.invalid".into(), "127.0.0.1".into());
    let o = run(&t).await;
    assert!(o.up, "with resolve: {o:?}");

    let dir = tempfile::tempdir().unwrap();
    let root = ca("Pantau Resolve Root", None);
    let ca_file = dir.path().join("root.pem");
    std::fs::write(&ca_file, &root.pem).unwrap();
    let cert = leaf("svc", &["svc.pantau-test.invalid"], -1, 90, Some(&root));
    let tls_port = serve(vec![cert.der.clone()], &cert.key, None).await;
    let mut s = http(format!("https://svc.pantau-test.invalid:{tls_port}/"));
    s.ca_file = Some(ca_file);
    s.resolve.insert("svc.pantau-test.invalid".into(), "127.0.0.1".into());
    let o = run(&s).await;
    assert!(o.up, "https with resolve: {o:?}");
    // Another name mapped to the same server: the certificate does not match.
    let mut other = s.clone();
    other.url = Some(format!("https://other.pantau-test.invalid:{tls_port}/"));
    other.resolve.clear();
    other
        .resolve
        .insert("other.pantau-test.invalid".into(), "127.0.0.1".into());
    let o = run(&other).await;
    assert!(!o.up && o.reason == FailureReason::Tls, "{o:?}");
}

#[tokio::test]
async fn dns_server_resolves_through_a_real_dns_server_and_an_unknown_name_is_down_dns() {
    use pantau_testkit::{DnsRecord, Dnsmasq};
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    let dns = Dnsmasq::start(&[DnsRecord::Address("svc.pantau.test".into(), ip)])
        .await
        .expect("dnsmasq starts (apt-get install dnsmasq-base)");
    let port = via_server().await;
    let mut t = http(format!("http://svc.pantau.test:{port}/via"));
    // The machine's resolver does not know the name: down with reason dns.
    let o = run(&t).await;
    assert!(!o.up && o.reason == FailureReason::Dns, "{o:?}");
    t.dns_server = Some(dns.addr().to_string());
    let o = run(&t).await;
    assert!(o.up, "through dnsmasq: {o:?}");

    // A name the server does not know: down with reason dns, naming the server.
    let mut u = http(format!("http://nothing.pantau.test:{port}/via"));
    u.dns_server = Some(dns.addr().to_string());
    let o = run(&u).await;
    assert!(!o.up, "{o:?}");
    assert_eq!(o.reason, FailureReason::Dns, "{o:?}");
    assert!(o.message.contains("nothing.pantau.test"), "{}", o.message);

    // `resolve` wins over dns_server for its own names.
    let mut r = http(format!("http://pinned.pantau.test:{port}/via"));
    r.dns_server = Some(dns.addr().to_string());
    r.resolve.insert("pinned.pantau.test".into(), "127.0.0.1".into());
    assert!(run(&r).await.up);

    // A DNS server that does not answer: down with reason dns, not a hang.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut s = http(format!("http://svc.pantau.test:{port}/via"));
    s.dns_server = Some(silent.local_addr().unwrap().to_string());
    let o = run(&s).await;
    assert!(!o.up, "{o:?}");
    assert!(matches!(o.reason, FailureReason::Dns | FailureReason::Timeout), "{o:?}");

    // A multi-step check resolves through it too.
    let api_port = api().await;
    let mut f = flow(api_port);
    for step in &mut f.steps {
        if let Some(url) = &mut step.url {
            *url = url.replace("127.0.0.1", "svc.pantau.test");
        }
    }
    let o = run(&f).await;
    assert!(!o.up, "without dns_server: {o:?}");
    f.dns_server = Some(dns.addr().to_string());
    let o = run(&f).await;
    assert!(o.up, "steps through dnsmasq: {o:?}");
}
