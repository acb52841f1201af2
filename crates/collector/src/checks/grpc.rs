//! gRPC health: connect (plain HTTP/2, or TLS with ALPN `h2`), then ask
//! `grpc.health.v1.Health/Check` about one service with tonic-health's
//! client. SERVING is up; anything else is down with a typed reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use pantau_proto::v1::{FailureReason, ProbeDetail, check_result::Detail};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tonic::Code;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::{Outcome, tcp, trust};

/// A compiled `grpc` target.
#[derive(Clone)]
pub struct GrpcSpec {
    pub address: String,
    pub service: String,
    /// The connector and server name, when the target speaks TLS.
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for GrpcSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcSpec")
            .field("address", &self.address)
            .field("service", &self.service)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl GrpcSpec {
    /// Compiles `g`; an error names the field (`server_name`, `ca_file`, …).
    pub fn new(g: &pantau_config::GrpcTarget) -> Result<Self, (&'static str, String)> {
        let tls = if g.use_tls == Some(true) {
            let mut config = trust::client_config(&g.tls, g.verify_tls.unwrap_or(true), false)
                .map_err(|e| (super::super::target::tls_key(&e), e))?;
            config.alpn_protocols = vec![b"h2".to_vec()];
            let name = g.server_name.clone().unwrap_or_else(|| g.address.host().to_owned());
            let name = ServerName::try_from(name.clone())
                .map_err(|e| ("server_name", format!("`{name}` is not a TLS server name: {e}")))?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Self {
            address: g.address.to_string(),
            service: g.service.clone(),
            tls,
        })
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Longest text of a server's own (a status message) put in a result.
const MAX_SHOWN: usize = 200;

/// `text` cut to [`MAX_SHOWN`] characters, control characters replaced.
fn shown(text: &str) -> String {
    pantau_config::types::quote(text)
        .chars()
        .take(MAX_SHOWN)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Runs the health check of `spec`; the caller bounds the time.
pub async fn check(spec: &GrpcSpec, started: Instant) -> Outcome {
    let address = &spec.address;
    let stream = match tcp::connect(address, started).await {
        Ok(s) => s,
        Err(down) => return down,
    };
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    // Over TLS, the server's leaf certificate: its expiry goes in every
    // result's detail, as the http check's does.
    let mut certificate = None;
    let io: Box<dyn Io> = match &spec.tls {
        None => Box::new(stream),
        Some((connector, name)) => match connector.connect(name.clone(), stream).await {
            Ok(s) => {
                certificate = s
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(<[_]>::first)
                    .and_then(|der| super::cert::info(der, SystemTime::now()));
                Box::new(s)
            }
            Err(e) => {
                let why = trust::refusal(&e).unwrap_or_else(|| e.to_string());
                return Outcome::down(
                    started.elapsed(),
                    FailureReason::Tls,
                    format!("TLS handshake with {address} failed: {why}"),
                );
            }
        },
    };
    // The connection made above, handed to tonic once: a failure to connect
    // is reported with its own reason, not as a transport error.
    let slot = Arc::new(Mutex::new(Some(io)));
    let connector = tower::service_fn(move |_: tonic::transport::Uri| {
        let io = slot.lock().ok().and_then(|mut s| s.take());
        async move {
            io.map(hyper_util::rt::TokioIo::new)
                .ok_or_else(|| std::io::Error::other("the connection was closed"))
        }
    });
    let endpoint = match Endpoint::from_shared(format!("http://{address}")) {
        Ok(e) => e,
        Err(e) => {
            return Outcome::down(
                started.elapsed(),
                FailureReason::Internal,
                format!("`{address}` is not a gRPC endpoint: {e}"),
            );
        }
    };
    let channel = match endpoint.connect_with_connector(connector).await {
        Ok(c) => c,
        Err(e) => {
            return Outcome::down(
                started.elapsed(),
                FailureReason::Protocol,
                format!(
                    "{address} does not speak HTTP/2 (gRPC): {}",
                    shown(&pantau_core::grpc::client::chain(&e))
                ),
            );
        }
    };
    let mut client = HealthClient::new(channel);
    let request = HealthCheckRequest {
        service: spec.service.clone(),
    };
    let what = if spec.service.is_empty() {
        "the server".to_owned()
    } else {
        format!("service `{}`", spec.service)
    };
    let answer = client.check(request).await;
    let latency = started.elapsed();
    let detail = |status: &str| {
        let mut metadata = HashMap::from([("status".to_owned(), status.to_owned())]);
        if !spec.service.is_empty() {
            metadata.insert("service".to_owned(), spec.service.clone());
        }
        Detail::Probe(ProbeDetail {
            peer: peer.clone(),
            metadata,
            certificate: certificate.clone(),
        })
    };
    let response = match answer {
        Ok(r) => r.into_inner(),
        Err(status) => {
            let (reason, why) = match status.code() {
                Code::NotFound => (FailureReason::Assertion, format!("{address} does not know {what}")),
                Code::Unimplemented => (
                    FailureReason::Protocol,
                    format!("{address} serves no grpc.health.v1.Health"),
                ),
                Code::Unauthenticated | Code::PermissionDenied => (
                    FailureReason::Auth,
                    format!("{address} refused the health check: {}", shown(status.message())),
                ),
                Code::DeadlineExceeded => (
                    FailureReason::Timeout,
                    format!("{address} timed out: {}", shown(status.message())),
                ),
                Code::Unavailable => (
                    FailureReason::Connect,
                    format!("{address} is unavailable: {}", shown(status.message())),
                ),
                code => (
                    FailureReason::Protocol,
                    format!(
                        "{address} answered the health check with {}: {}",
                        pantau_core::grpc::guard::code_name(code),
                        shown(status.message())
                    ),
                ),
            };
            let name = pantau_core::grpc::guard::code_name(status.code());
            return Outcome::down(latency, reason, why).with_detail(detail(name));
        }
    };
    match ServingStatus::try_from(response.status) {
        Ok(ServingStatus::Serving) => Outcome::up(latency, Some(detail("SERVING"))),
        Ok(s) => Outcome::down(
            latency,
            FailureReason::Assertion,
            format!("{address} says {what} is {}", s.as_str_name()),
        )
        .with_detail(detail(s.as_str_name())),
        Err(_) => Outcome::down(
            latency,
            FailureReason::Protocol,
            format!("{address} answered the unknown health status {}", response.status),
        )
        .with_detail(detail("INVALID")),
    }
}
