//! `grpc` checks against real tonic servers on 127.0.0.1 serving
//! tonic-health: SERVING, NOT_SERVING, an unknown service, TLS with a
//! private CA and refused chains, a server that is not gRPC, one that never
//! answers, and a hostile health service (unknown status, huge messages).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pantau_collector::checks::{Checker, Outcome};
use pantau_collector::target::Target;
use pantau_config::{CheckType, CollectorConfig, RawTarget};
use pantau_proto::v1::{FailureReason, TargetSource, check_result::Detail};
use tokio::io::AsyncWriteExt;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

const UP: &str = "pantau.test.Up";
const DOWN: &str = "pantau.test.Down";

async fn listener() -> (tokio::net::TcpListener, SocketAddr) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// A tonic server with tonic-health: `UP` serving, `DOWN` not serving.
async fn health_server(tls: Option<&crate::trust::Made>) -> SocketAddr {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(UP, tonic_health::ServingStatus::Serving)
        .await;
    reporter
        .set_service_status(DOWN, tonic_health::ServingStatus::NotServing)
        .await;
    let (l, a) = listener().await;
    let mut b = Server::builder();
    if let Some(m) = tls {
        let id = Identity::from_pem(&m.pem, m.key.serialize_pem());
        b = b.tls_config(ServerTlsConfig::new().identity(id)).unwrap();
    }
    let router = b.add_service(service);
    tokio::spawn(async move {
        let _keep = reporter;
        router
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l))
            .await
    });
    a
}

/// A health service that lies: status 42 and a 100 kB error message.
struct Hostile;

#[tonic::async_trait]
impl Health for Hostile {
    async fn check(
        &self,
        req: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        if req.get_ref().service == "huge" {
            return Err(tonic::Status::internal("\u{1b}[31m".to_owned() + &"x".repeat(100_000)));
        }
        if req.get_ref().service == "auth" {
            return Err(tonic::Status::unauthenticated("no token"));
        }
        Ok(tonic::Response::new(HealthCheckResponse { status: 42 }))
    }

    type WatchStream = futures::stream::Empty<Result<HealthCheckResponse, tonic::Status>>;

    async fn watch(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Ok(tonic::Response::new(futures::stream::empty()))
    }
}

fn target(address: SocketAddr, service: &str) -> RawTarget {
    let mut t = RawTarget::new("g", CheckType::Grpc);
    t.address = Some(address.to_string());
    t.service = (!service.is_empty()).then(|| service.to_owned());
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

fn status(o: &Outcome) -> String {
    let Some(Detail::Probe(p)) = &o.detail else {
        panic!("no probe detail: {o:?}")
    };
    p.metadata.get("status").cloned().unwrap_or_default()
}

#[tokio::test]
async fn serving_is_up_and_anything_else_is_down_with_its_reason() {
    let a = health_server(None).await;
    let o = run(&target(a, UP)).await;
    assert!(o.up, "{o:?}");
    assert_eq!(status(&o), "SERVING");
    let Some(Detail::Probe(p)) = &o.detail else { panic!() };
    assert_eq!(p.peer, a.to_string());
    assert_eq!(p.metadata.get("service").map(String::as_str), Some(UP));
    // The whole server (empty service name) is serving too.
    assert!(run(&target(a, "")).await.up);

    let o = run(&target(a, DOWN)).await;
    assert!(!o.up);
    assert_eq!(o.reason, FailureReason::Assertion, "{o:?}");
    assert!(
        o.message.contains("NOT_SERVING") && o.message.contains(DOWN),
        "{}",
        o.message
    );
    assert_eq!(status(&o), "NOT_SERVING");

    let o = run(&target(a, "pantau.test.Nobody")).await;
    assert_eq!(o.reason, FailureReason::Assertion, "{o:?}");
    assert!(o.message.contains("does not know"), "{}", o.message);
    assert_eq!(status(&o), "NOT_FOUND");
}

#[tokio::test]
async fn no_server_a_server_that_is_not_grpc_and_one_that_never_answers_are_down() {
    // Nothing listens: refused.
    let (l, a) = listener().await;
    drop(l);
    let o = run(&target(a, UP)).await;
    assert_eq!(o.reason, FailureReason::Refused, "{o:?}");

    // A server that answers garbage and hangs up.
    let (l, a) = listener().await;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\0\xff garbage").await;
        }
    });
    let o = run(&target(a, UP)).await;
    assert!(!o.up, "{o:?}");
    assert!(
        matches!(o.reason, FailureReason::Protocol | FailureReason::Connect),
        "{o:?}"
    );
    assert!(o.message.contains(&a.to_string()), "{}", o.message);

    // A server that accepts and never says anything: the check's timeout.
    let (l, a) = listener().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let o = run(&target(a, UP)).await;
    assert_eq!(o.reason, FailureReason::Timeout, "{o:?}");
}

#[tokio::test]
async fn tls_trusts_a_private_ca_and_refuses_a_chain_it_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::trust::ca("pantau-test-root", None);
    let leaf = crate::trust::leaf("grpc", &["localhost"], -1, 30, Some(&ca));
    let a = health_server(Some(&leaf)).await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();

    let mut t = target(a, UP);
    t.use_tls = Some(true);
    t.server_name = Some("localhost".into());
    // Not trusted: the system's roots do not know the private CA.
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Tls, "{o:?}");
    // Trusted through ca_file; the certificate's expiry is in the detail.
    t.ca_file = Some(ca_file);
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
    let Some(Detail::Probe(p)) = &o.detail else {
        panic!("{o:?}")
    };
    let c = p.certificate.as_ref().expect("the server's certificate");
    assert_eq!(c.days_to_expiry, 30, "{c:?}");
    assert!(c.subject.contains("grpc"), "{c:?}");
    assert!(c.dns_names.contains(&"localhost".to_owned()), "{c:?}");
    assert!(c.not_after.is_some());
    // Unverified reaches the server whatever the chain, and still reports it.
    let mut t = target(a, DOWN);
    t.use_tls = Some(true);
    t.verify_tls = Some(false);
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Assertion);
    let Some(Detail::Probe(p)) = &o.detail else {
        panic!("{o:?}")
    };
    assert_eq!(p.certificate.as_ref().map(|c| c.days_to_expiry), Some(30));
    // Without TLS there is no certificate.
    let plain = health_server(None).await;
    let o = run(&target(plain, UP)).await;
    let Some(Detail::Probe(p)) = &o.detail else {
        panic!("{o:?}")
    };
    assert!(p.certificate.is_none());
    // TLS to a plain server fails the handshake.
    let plain = health_server(None).await;
    let mut t = target(plain, UP);
    t.use_tls = Some(true);
    t.verify_tls = Some(false);
    assert_eq!(run(&t).await.reason, FailureReason::Tls);
    // Plain to a TLS server is not gRPC.
    let o = run(&target(a, UP)).await;
    assert!(!o.up, "{o:?}");
}

#[tokio::test]
async fn a_hostile_health_service_is_down_with_bounded_messages() {
    let (l, a) = listener().await;
    tokio::spawn(
        Server::builder()
            .add_service(HealthServer::new(Hostile))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l)),
    );
    let o = run(&target(a, "any")).await;
    assert_eq!(o.reason, FailureReason::Protocol, "{o:?}");
    assert!(o.message.contains("unknown health status 42"), "{}", o.message);
    assert_eq!(status(&o), "INVALID");

    let o = run(&target(a, "huge")).await;
    assert_eq!(o.reason, FailureReason::Protocol, "{o:?}");
    assert!(o.message.len() < 400, "{} bytes", o.message.len());
    assert!(
        !o.message.contains('\u{1b}'),
        "control characters are quoted: {}",
        o.message
    );

    let o = run(&target(a, "auth")).await;
    assert_eq!(o.reason, FailureReason::Auth, "{o:?}");
}
