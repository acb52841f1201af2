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

use super::{Outcome, cert};

/// Connectors with and without chain verification.
#[derive(Clone)]
pub struct Tls {
    verified: TlsConnector,
    unverified: TlsConnector,
}

impl Tls {
    pub fn new() -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let verified = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let unverified = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth();
        Self {
            verified: TlsConnector::from(Arc::new(verified)),
            unverified: TlsConnector::from(Arc::new(unverified)),
        }
    }

    /// Handshakes with `address` as `server_name`; the caller bounds the time.
    pub async fn check(
        &self,
        address: &str,
        server_name: &str,
        verify: bool,
        warn_days: u32,
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
        let connector = if verify { &self.verified } else { &self.unverified };
        let stream = match connector.connect(name, tcp).await {
            Ok(s) => s,
            Err(e) => {
                return Outcome::down(
                    started.elapsed(),
                    FailureReason::Tls,
                    format!("TLS handshake with {address} ({server_name}) failed: {e}"),
                );
            }
        };
        let latency = started.elapsed();
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

impl Default for Tls {
    fn default() -> Self {
        Self::new()
    }
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
