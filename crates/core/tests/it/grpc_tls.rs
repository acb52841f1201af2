//! `pantau_core::grpc::serve` with TLS (certificates made here with rcgen):
//! a client trusting the CA gets through; one trusting another CA, or
//! speaking plaintext, fails with an error that names the URL and why;
//! health stays open while every other call needs a token.

use std::sync::Arc;
use std::time::Duration;

use pantau_config::Config;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::grpc::{Credentials, Security};
use pantau_core::service::Context;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

async fn check(security: &Security, url: &str) -> Result<i32, tonic::Status> {
    let ch = security.channel_with(url, Credentials::None).unwrap();
    HealthClient::new(ch)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map(|r| r.into_inner().status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_trusted_untrusted_and_plaintext_clients() {
    let dir = tempfile::tempdir().unwrap();
    let good = pantau_testkit::TlsFiles::generate(&dir.path().join("good")).unwrap();
    let other = pantau_testkit::TlsFiles::generate(&dir.path().join("other")).unwrap();
    let mut cfg = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    cfg.grpc.tls_cert_file = Some(good.cert.clone());
    cfg.grpc.tls_key_file = Some(good.key.clone());
    cfg.validate().unwrap();
    let ctx = Context::new(Arc::new(cfg.clone()), Arc::new(MemoryBus::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let serving = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            pantau_core::grpc::serve(&ctx, listener, tonic::service::Routes::default(), &[], None).await
        })
    };
    let https = format!("https://127.0.0.1:{port}");

    let trusting = |ca: &std::path::Path| {
        let mut c = cfg.clone();
        c.grpc.tls_cert_file = None;
        c.grpc.tls_key_file = None;
        c.grpc.ca_file = Some(ca.to_owned());
        Security::new(Arc::new(c))
    };
    let ok = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(s) = check(&trusting(&good.ca), &https).await {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a client trusting the CA is served");
    assert_eq!(ok, 1, "SERVING, and health needs no token");

    let e = check(&trusting(&other.ca), &https).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(e.message().contains(&https), "names the URL: {}", e.message());
    assert!(
        e.message().contains("UnknownIssuer") || e.message().contains("certificate"),
        "says the certificate is not trusted: {}",
        e.message()
    );

    let plain = format!("http://127.0.0.1:{port}");
    let e = check(&trusting(&good.ca), &plain).await.unwrap_err();
    assert!(e.message().contains(&plain), "names the URL: {}", e.message());

    // Reflection (anything but health) wants a token, over TLS as well.
    let ch = trusting(&good.ca).channel_with(&https, Credentials::None).unwrap();
    let mut refl = tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(ch);
    let req = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let e = refl
        .server_reflection_info(futures::stream::iter(vec![req]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");

    ctx.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
