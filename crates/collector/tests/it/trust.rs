//! `http` and `tls` checks trust the same certificates and say in plain
//! words why one is refused. Every certificate is made here: a private root
//! CA with an intermediate, a self-signed leaf, an expired one, one not yet
//! valid, one for another name, and a client certificate for a server that
//! asks for one; each served by a real TLS server on 127.0.0.1.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pantau_collector::checks::Checker;
use pantau_collector::target::Target;
use pantau_config::{CheckType, CollectorConfig, RawTarget};
use pantau_proto::v1::{FailureReason, TargetSource, check_result::Detail};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn days(n: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(n)
}

/// A certificate with its key.
pub(crate) struct Made {
    pub(crate) der: CertificateDer<'static>,
    pub(crate) pem: String,
    pub(crate) key: KeyPair,
    params: CertificateParams,
}

pub(crate) fn ca(name: &str, issuer: Option<&Made>) -> Made {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = days(-30);
    params.not_after = days(3650);
    let key = KeyPair::generate().unwrap();
    let cert = match issuer {
        None => params.self_signed(&key).unwrap(),
        Some(i) => params.signed_by(&key, &Issuer::new(i.params.clone(), &i.key)).unwrap(),
    };
    Made {
        der: cert.der().clone(),
        pem: cert.pem(),
        key,
        params,
    }
}

/// A leaf for `names`, valid from `from` to `until` days from now, signed
/// by `issuer` (self-signed without one).
pub(crate) fn leaf(cn: &str, names: &[&str], from: i64, until: i64, issuer: Option<&Made>) -> Made {
    let mut params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.not_before = days(from);
    params.not_after = days(until) + time::Duration::hours(1);
    let key = KeyPair::generate().unwrap();
    let cert = match issuer {
        None => params.self_signed(&key).unwrap(),
        Some(i) => params.signed_by(&key, &Issuer::new(i.params.clone(), &i.key)).unwrap(),
    };
    Made {
        der: cert.der().clone(),
        pem: cert.pem(),
        key,
        params,
    }
}

/// A TLS server on 127.0.0.1 presenting `chain`; answers an HTTP request
/// with 200 "ok". With `client_ca`, it asks for a client certificate issued
/// by it and refuses the handshake without one.
pub(crate) async fn serve(chain: Vec<CertificateDer<'static>>, key: &KeyPair, client_ca: Option<&Made>) -> u16 {
    serving(chain, key, client_ca).await.0
}

/// [`serve`], with the task to abort to stop answering.
async fn serving(
    chain: Vec<CertificateDer<'static>>,
    key: &KeyPair,
    client_ca: Option<&Made>,
) -> (u16, tokio::task::JoinHandle<()>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = rustls::ServerConfig::builder();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.der.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, task)
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The same target as an `http` check and as a `tls` check.
fn both(port: u16, ca_file: Option<&PathBuf>) -> [RawTarget; 2] {
    let mut h = RawTarget::new("h", CheckType::Http);
    h.url = Some(format!("https://localhost:{port}/"));
    h.ca_file = ca_file.cloned();
    let mut t = RawTarget::new("t", CheckType::Tls);
    t.address = Some(format!("127.0.0.1:{port}"));
    t.server_name = Some("localhost".into());
    t.ca_file = ca_file.cloned();
    [h, t]
}

fn compile(t: &RawTarget) -> Result<Target, String> {
    let cfg = CollectorConfig {
        timeout: Duration::from_secs(5),
        ..CollectorConfig::default()
    };
    let parsed = t.clone().parse("t").map_err(|e| format!("{e:?}"))?;
    Target::compile(&Arc::new(parsed), "t", &cfg, TargetSource::Config).map_err(|e| format!("{e:?}"))
}

async fn run(t: &RawTarget) -> pantau_collector::checks::Outcome {
    Checker::new().unwrap().check(&compile(t).unwrap()).await
}

/// Both check types give the same answer: up, or down for a TLS reason
/// whose message holds `words`.
async fn expect(targets: &[RawTarget; 2], words: Option<&str>) {
    for t in targets {
        let o = run(t).await;
        match words {
            None => assert!(o.up, "{:?} should be up: {o:?}", t.check),
            Some(w) => {
                assert!(!o.up, "{:?} should be down: {o:?}", t.check);
                assert_eq!(o.reason, FailureReason::Tls, "{o:?}");
                assert!(o.message.contains(w), "{:?}: `{}` lacks `{w}`", t.check, o.message);
                assert!(
                    !o.message.contains("Context") && !o.message.contains('['),
                    "{:?}: not plain words: {}",
                    t.check,
                    o.message
                );
            }
        }
    }
}

#[tokio::test]
async fn http_and_tls_trust_the_same_private_ca_and_explain_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let root = ca("Pantau Test Root", None);
    let inter = ca("Pantau Test Intermediate", Some(&root));
    let ca_file = write(&dir, "root.pem", &root.pem);

    // A leaf from the private CA, served with its intermediate.
    let good = leaf("svc.internal", &["localhost"], -1, 90, Some(&inter));
    let port = serve(vec![good.der.clone(), inter.der.clone()], &good.key, None).await;
    expect(&both(port, None), Some("untrusted issuer: CN=Pantau Test Intermediate")).await;
    expect(&both(port, Some(&ca_file)), None).await;
    // The certificate details are reported when trusted.
    let o = run(&both(port, Some(&ca_file))[1]).await;
    let Some(Detail::Tls(d)) = &o.detail else {
        panic!("{o:?}")
    };
    assert_eq!(d.chain.len(), 2);
    assert!(d.chain[0].subject.contains("svc.internal"), "{:?}", d.chain[0]);

    // Self-signed: said so, on both check types.
    let own = leaf("self.internal", &["localhost"], -1, 90, None);
    let port = serve(vec![own.der.clone()], &own.key, None).await;
    expect(&both(port, Some(&ca_file)), Some("is self-signed")).await;

    // Expired, not yet valid, another name: each in its words, even from a trusted CA.
    let old = leaf("old.internal", &["localhost"], -60, -3, Some(&inter));
    let port = serve(vec![old.der.clone(), inter.der.clone()], &old.key, None).await;
    expect(&both(port, Some(&ca_file)), Some("expired")).await;
    let early = leaf("early.internal", &["localhost"], 5, 90, Some(&inter));
    let port = serve(vec![early.der.clone(), inter.der.clone()], &early.key, None).await;
    expect(&both(port, Some(&ca_file)), Some("is not valid yet")).await;
    let other = leaf("other.internal", &["other.internal"], -1, 90, Some(&inter));
    let port = serve(vec![other.der.clone(), inter.der.clone()], &other.key, None).await;
    expect(&both(port, Some(&ca_file)), Some("name mismatch")).await;
}

#[tokio::test]
async fn a_client_certificate_is_presented_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let root = ca("Pantau Test Root", None);
    let ca_file = write(&dir, "root.pem", &root.pem);
    let server = leaf("mtls.internal", &["localhost"], -1, 90, Some(&root));
    let port = serve(vec![server.der.clone()], &server.key, Some(&root)).await;
    let client = leaf("pantau-collector", &["pantau-collector"], -1, 90, Some(&root));
    let cert = write(&dir, "client.pem", &client.pem);
    let key = write(&dir, "client.key", &client.key.serialize_pem());

    let mut without = both(port, Some(&ca_file));
    for t in &without {
        let o = run(t).await;
        assert!(!o.up, "{:?} without a client certificate: {o:?}", t.check);
    }
    for t in &mut without {
        t.client_cert = Some(cert.clone());
        t.client_key = Some(key.clone());
    }
    expect(&without, None).await;
}

#[test]
fn unreadable_tls_files_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = write(&dir, "garbage.pem", "not a certificate at all\n");
    let [mut h, mut t] = both(1, Some(&dir.path().join("missing.pem")));
    let e = compile(&h).unwrap_err();
    assert!(e.contains("t.ca_file"), "{e}");
    h.ca_file = Some(garbage.clone());
    let e = compile(&h).unwrap_err();
    assert!(e.contains("t.ca_file") && e.contains("garbage.pem"), "{e}");
    t.ca_file = None;
    t.client_cert = Some(garbage.clone());
    let e = compile(&t).unwrap_err();
    assert!(
        e.contains("client_key") && e.contains("is required with client_cert"),
        "{e}"
    );
    t.client_key = Some(garbage);
    let e = compile(&t).unwrap_err();
    assert!(e.contains("t.client_cert"), "{e}");
}

/// While the breaker is open no check connects, yet each result still
/// carries the certificate the last real check read, marked `last_known`,
/// its days counted to now: the expiry stays known while the service is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_breaker_keeps_the_last_known_certificate() {
    use pantau_proto::v1::{BreakerState, CheckStatus, ListLatestResultsRequest};
    let dir = tempfile::tempdir().unwrap();
    let cert = leaf("soon.internal", &["localhost"], -1, 20, None);
    let (port, server) = serving(vec![cert.der.clone()], &cert.key, None).await;
    let mut config = crate::targets::base_config(dir.path());
    config.collector.circuit_breaker.failure_threshold = 2;
    config.collector.circuit_breaker.recovery_timeout = Duration::from_secs(60);
    let mut t = RawTarget::new("tls-soon", CheckType::Tls);
    t.address = Some(format!("127.0.0.1:{port}"));
    t.server_name = Some("localhost".into());
    t.verify_tls = Some(false);
    t.interval = Some(Duration::from_secs(1));
    t.timeout = Some(Duration::from_millis(800));
    config.collector.targets = vec![t.parse("t").unwrap().into()];
    let c = crate::targets::start(config).await;
    let latest = |mut client: pantau_proto::v1::collector_service_client::CollectorServiceClient<
        pantau_core::grpc::Channel,
    >| async move {
        client
            .list_latest_results(ListLatestResultsRequest { target_ids: vec![] })
            .await
            .unwrap()
            .into_inner()
            .results
            .pop()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while latest(c.client.clone())
        .await
        .is_none_or(|r| r.status() != CheckStatus::Up)
    {
        assert!(tokio::time::Instant::now() < deadline, "the TLS target never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let open = loop {
        let r = latest(c.client.clone()).await.unwrap();
        if r.breaker() == BreakerState::Open && r.message.contains("circuit open") {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the breaker never opened: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let Some(Detail::Tls(d)) = &open.detail else {
        panic!("no certificate while the breaker is open: {open:?}")
    };
    assert!(d.chain[0].last_known, "{d:?}");
    assert_eq!(d.chain[0].days_to_expiry, 20, "{d:?}");
    assert!(d.chain[0].subject.contains("soon.internal"), "{d:?}");
    c.stop().await;
}
