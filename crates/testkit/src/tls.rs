//! Certificates for TLS tests: a CA and a server certificate it signs for
//! 127.0.0.1 and localhost, written as PEM files.

use std::path::{Path, PathBuf};

use crate::TestkitError;

/// `ca.pem`, `cert.pem` (signed by the CA, for 127.0.0.1 and localhost) and
/// `key.pem` in one directory.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Generates a fresh CA and server certificate into `dir`.
    pub fn generate(dir: &Path) -> Result<Self, TestkitError> {
        let bad = |what: &'static str, e: &dyn std::fmt::Display| {
            TestkitError::io(what, "the test certificates", std::io::Error::other(e.to_string()))
        };
        std::fs::create_dir_all(dir).map_err(|e| TestkitError::io("create", dir, e))?;
        let ca_key = rcgen::KeyPair::generate().map_err(|e| bad("generate a key for", &e))?;
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| bad("make", &e))?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "pantau test CA");
        ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).map_err(|e| bad("sign", &e))?;
        let issuer = rcgen::Issuer::new(ca, &ca_key);

        let key = rcgen::KeyPair::generate().map_err(|e| bad("generate a key for", &e))?;
        let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).map_err(|e| bad("make", &e))?;
        leaf.subject_alt_names
            .push(rcgen::SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        leaf.distinguished_name
            .push(rcgen::DnType::CommonName, "pantau test server");
        let cert = leaf.signed_by(&key, &issuer).map_err(|e| bad("sign", &e))?;

        let files = Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        for (path, pem) in [
            (&files.ca, ca_cert.pem()),
            (&files.cert, cert.pem()),
            (&files.key, key.serialize_pem()),
        ] {
            std::fs::write(path, pem).map_err(|e| TestkitError::io("write", path, e))?;
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_ca_and_a_server_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let f = TlsFiles::generate(dir.path()).unwrap();
        for p in [&f.ca, &f.cert, &f.key] {
            let text = std::fs::read_to_string(p).unwrap();
            assert!(text.starts_with("-----BEGIN"), "{}", p.display());
        }
        assert_ne!(std::fs::read(&f.ca).unwrap(), std::fs::read(&f.cert).unwrap());
    }
}
