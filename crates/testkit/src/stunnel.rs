//! [`Stunnel`]: Debian's `stunnel4` terminating TLS on a loopback port and
//! relaying the plaintext to another, for servers that cannot serve TLS
//! themselves (tansu). Ready once a TLS handshake with it succeeds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::process::Process;
use crate::{TestkitError, TlsFiles, binary};

/// How long `stunnel4` gets to answer.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// A running `stunnel4`, killed when dropped.
pub struct Stunnel {
    _dir: TempDir,
    port: u16,
    process: Process,
}

impl std::fmt::Debug for Stunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stunnel")
            .field("port", &self.port)
            .field("running", &self.process.is_running())
            .finish_non_exhaustive()
    }
}

impl Stunnel {
    /// Serves TLS with `tls`'s certificate on 127.0.0.1:`port`, relaying to
    /// 127.0.0.1:`backend`.
    pub async fn start(port: u16, backend: u16, tls: &TlsFiles) -> Result<Self, TestkitError> {
        let bin = binary::require("stunnel4", "stunnel4")?;
        let dir = tempfile::Builder::new()
            .prefix("pantau-stunnel-")
            .tempdir()
            .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        let conf: PathBuf = dir.path().join("stunnel.conf");
        let text = format!(
            "foreground = yes\npid =\ndebug = 5\n\n[relay]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend}\ncert = {}\nkey = {}\n",
            tls.cert.display(),
            tls.key.display()
        );
        std::fs::write(&conf, text).map_err(|e| TestkitError::io("write", &conf, e))?;
        let mut process = Process::new("stunnel4", dir.path().join("stunnel.log"));
        let mut command = Command::new(bin);
        command.arg(&conf);
        let ca = tls.ca.clone();
        process
            .start(command, READY_WITHIN, || handshakes(port, ca.clone()))
            .await?;
        Ok(Self {
            _dir: dir,
            port,
            process,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

/// Whether a TLS handshake with 127.0.0.1:`port`, trusting `ca`, succeeds within a second.
async fn handshakes(port: u16, ca: PathBuf) -> bool {
    let attempt = async {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_file_iter(&ca)
            .map_err(std::io::Error::other)?
            .flatten()
        {
            roots.add(c).map_err(std::io::Error::other)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        let name = ServerName::try_from("127.0.0.1").map_err(std::io::Error::other)?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        Ok::<_, std::io::Error>(())
    };
    matches!(tokio::time::timeout(Duration::from_secs(1), attempt).await, Ok(Ok(())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn terminates_tls_and_relays() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let backend = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let backend_port = backend.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = backend.accept().await {
                let _ = s.write_all(b"hello over tls").await;
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles::generate(dir.path()).unwrap();
        let port = crate::free_port();
        let st = Stunnel::start(port, backend_port, &files)
            .await
            .expect("stunnel4 starts");
        assert!(handshakes(st.port(), files.ca.clone()).await, "{}", st.log_tail());
        // Another CA is refused.
        let other = TlsFiles::generate(&dir.path().join("other")).unwrap();
        assert!(!handshakes(st.port(), other.ca).await);
        // And the bytes of the backend come through.
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_file_iter(&files.ca)
            .unwrap()
            .flatten()
        {
            roots.add(c).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap();
        let mut buf = vec![0u8; 14];
        tls.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, b"hello over tls");
    }
}
