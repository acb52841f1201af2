//! What `http` and `tls` checks trust, built once and shared by both: the
//! system's roots (which honour `SSL_CERT_FILE` and `SSL_CERT_DIR`), a
//! target's own `ca_file` on top, and its client certificate. A refused
//! certificate is explained in plain words — untrusted issuer, self-signed,
//! expired, not yet valid, or issued for another name — instead of a
//! verifier's enum.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use pantau_config::TlsFiles;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::tls::AcceptAny;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's roots, read once. When the system has none (a container
/// without ca-certificates), the public roots compiled in.
fn system_roots() -> &'static Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "a system CA certificate cannot be read");
        }
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            tracing::warn!("no system CA certificates found: trusting the public roots compiled into Pantau");
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        Arc::new(roots)
    })
}

/// A TLS client configuration for a check: verified against the system's
/// roots plus `files.ca_file`, or not verified at all; presenting
/// `files.client` if set. `alpn` is what an HTTP client offers.
pub fn client_config(files: &TlsFiles, verify: bool, alpn: bool) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let builder = if verify {
        let roots = match &files.ca_file {
            None => Arc::clone(system_roots()),
            Some(path) => {
                let mut roots = (**system_roots()).clone();
                let certs = read_certs(path, "ca_file")?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("ca_file {} holds no usable CA certificate", path.display()));
                }
                Arc::new(roots)
            }
        };
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| format!("cannot set up certificate verification: {e}"))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Explaining(inner)))
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
    };
    let mut config = match files.client.as_deref() {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = read_certs(cert, "client_cert")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("client_key {} is not a PEM private key: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client_cert and client_key do not make a client identity: {e}"))?
        }
    };
    if alpn {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    Ok(config)
}

fn read_certs(path: &Path, field: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("{field} {} cannot be read as PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{field} {} holds no certificate", path.display()));
    }
    Ok(certs)
}

/// Verifies like webpki, but says in plain words why a certificate is refused.
#[derive(Debug)]
struct Explaining(Arc<WebPkiServerVerifier>);

/// Why a certificate was refused, in plain words.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl ServerCertVerifier for Explaining {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| {
                let why = explain(&e, end_entity, server_name);
                rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(Refused(why)))))
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The refusal `e` of `leaf` for `name`, in words an operator reads.
fn explain(e: &rustls::Error, leaf: &CertificateDer<'_>, name: &ServerName<'_>) -> String {
    let parsed = X509Certificate::from_der(leaf.as_ref()).ok().map(|(_, c)| c);
    let subject = parsed.as_ref().map(|c| c.subject().to_string()).unwrap_or_default();
    let issuer = parsed.as_ref().map(|c| c.issuer().to_string()).unwrap_or_default();
    let self_signed = parsed.is_some() && subject == issuer;
    let name = name.to_str();
    let rustls::Error::InvalidCertificate(ce) = e else {
        return format!("the certificate was refused: {e}");
    };
    match ce {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            let when = parsed
                .as_ref()
                .map(|c| format!(" on {}", c.validity().not_after))
                .unwrap_or_default();
            format!("the certificate of {subject} expired{when}")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            let when = parsed
                .as_ref()
                .map(|c| format!(" until {}", c.validity().not_before))
                .unwrap_or_default();
            format!("the certificate of {subject} is not valid yet{when}")
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("name mismatch: the certificate of {subject} is not valid for `{name}`")
        }
        _ if self_signed => {
            format!("untrusted issuer: the certificate of {subject} is self-signed (trust it with ca_file)")
        }
        CertificateError::UnknownIssuer => format!(
            "untrusted issuer: {issuer}, which issued the certificate of {subject}, is not a trusted CA (add it with \
             ca_file)"
        ),
        CertificateError::Revoked => format!("the certificate of {subject} is revoked"),
        CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            format!("the signature on the certificate of {subject} by {issuer} does not verify")
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            format!("the certificate of {subject} is not for TLS servers")
        }
        other => format!("the certificate of {subject} was refused: {other:?}"),
    }
}

/// The plain words of a refusal made by [`Explaining`], if `e` (or one of its
/// sources) is one; a TLS error of another kind otherwise.
pub fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(o))) = err.downcast_ref::<rustls::Error>()
        {
            return Some(o.to_string());
        }
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r.0.clone());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            cur = Some(inner);
            continue;
        }
        cur = err.source();
    }
    None
}
