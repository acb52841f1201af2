//! TLS for API-SSL (8729): a rustls client configuration from a router's
//! `tls_verify` and `ca_file`.

use std::sync::Arc;

use pantau_config::RouterConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::Error;
use crate::checks::tls::AcceptAny;

/// The certificates of a PEM file, or an error naming the file.
pub fn load_ca(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::Tls(format!("cannot read ca_file {}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Tls(format!("ca_file {} is not PEM certificates: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!("ca_file {} holds no certificate", path.display())));
    }
    Ok(certs)
}

/// The client configuration for `r`: its `ca_file`, else the public web
/// roots; no verification with `tls_verify: false` (handshake signatures are
/// still checked).
pub fn client_config(r: &RouterConfig) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let config = if r.tls_verify {
        let mut roots = rustls::RootCertStore::empty();
        match &r.ca_file {
            Some(path) => {
                for c in load_ca(path)? {
                    roots
                        .add(c)
                        .map_err(|e| Error::Tls(format!("ca_file {}: {e}", path.display())))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}
