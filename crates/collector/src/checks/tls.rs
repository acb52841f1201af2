//! TLS: handshake with any TLS port (HTTPS, SMTPS, IMAPS, LDAPS, …) and report
//! the chain and the leaf's expiry.

use std::sync::Arc;
use std::time::SystemTime;

use pantau_proto::v1::{FailureReason, TlsDetail, check_result::Detail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::{Outcome, cert, trust};

/// Connectors with and without chain verification.
#[derive(Clone)]
pub struct Tls {
    verified: TlsConnector,
    unverified: TlsConnector,
}

/// A target's own connector, when it has a `ca_file` or a client certificate.
#[derive(Clone)]
pub struct Connector {
    tls: TlsConnector,
}

/// How long a check waits after the handshake for the server to refuse it:
/// a TLS 1.3 server that wants a client certificate (or refuses the one it
/// got) says so only after the client's Finished. A server that sends
/// nothing, or data, in this time has accepted the connection. The check's
/// latency is the handshake's, without this wait.
const REFUSAL_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

impl Connector {
    pub fn new(files: &pantau_config::TlsFiles, verify: bool) -> Result<Self, String> {
        trust::client_config(files, verify, false).map(|c| Self {
            tls: TlsConnector::from(Arc::new(c)),
        })
    }
}

impl Tls {
    pub fn new() -> Result<Self, crate::CollectorError> {
        let none = pantau_config::TlsFiles::default();
        let connector = |verify| {
            trust::client_config(&none, verify, false)
                .map(|c| TlsConnector::from(Arc::new(c)))
                .map_err(crate::CollectorError::Tls)
        };
        Ok(Self {
            verified: connector(true)?,
            unverified: connector(false)?,
        })
    }

    /// Handshakes with `address` as `server_name`; the caller bounds the time.
    pub async fn check(
        &self,
        address: &str,
        server_name: &str,
        verify: bool,
        warn_days: u32,
        own: Option<&Connector>,
        started: Instant,
    ) -> Outcome {
        let name = match ServerName::try_from(server_name.to_owned()) {
            Ok(n) => n,
            Err(e) => {
                return Outcome::down(
                    started.elapsed(),
                    FailureReason::Tls,
                    format!("`{server_name}` is not a TLS server name: {e}"),
                );
            }
        };
        let tcp = match super::tcp::connect(address, started).await {
            Ok(s) => s,
            Err(o) => return o,
        };
        let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let connector = match own {
            Some(c) => &c.tls,
            None if verify => &self.verified,
            None => &self.unverified,
        };
        let stream = match connector.connect(name, tcp).await {
            Ok(s) => s,
            Err(e) => {
                let why = trust::refusal(&e).unwrap_or_else(|| e.to_string());
                return Outcome::down(
                    started.elapsed(),
                    FailureReason::Tls,
                    format!("TLS handshake with {address} ({server_name}) failed: {why}"),
                );
            }
        };
        let latency = started.elapsed();
        let mut stream = stream;
        if session_is_tls13(&stream) {
            use tokio::io::AsyncReadExt;
            let mut byte = [0_u8; 1];
            if let Ok(Err(e)) = tokio::time::timeout(REFUSAL_WAIT, stream.read(&mut byte)).await {
                return Outcome::down(
                    latency,
                    FailureReason::Tls,
                    format!("{address} ({server_name}) refused the connection after the handshake: {e}"),
                );
            }
        }
        let (_, session) = stream.get_ref();
        let now = SystemTime::now();
        let chain: Vec<_> = session
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .filter_map(|c| cert::info(c.as_ref(), now))
            .collect();
        let detail = Detail::Tls(TlsDetail {
            peer,
            protocol_version: session.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default(),
            chain: chain.clone(),
        });
        match chain.first() {
            None => {
                Outcome::down(latency, FailureReason::Tls, format!("{address} sent no certificate")).with_detail(detail)
            }
            Some(leaf) => match cert::expiry_problem(leaf, warn_days) {
                Some(problem) => Outcome::down(latency, FailureReason::Tls, problem).with_detail(detail),
                None => Outcome::up(latency, Some(detail)),
            },
        }
    }
}

fn session_is_tls13(stream: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> bool {
    stream.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3)
}

/// For `verify_tls: false`: accepts any chain, still checks handshake signatures.
#[derive(Debug)]
pub(crate) struct AcceptAny(pub(crate) Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
