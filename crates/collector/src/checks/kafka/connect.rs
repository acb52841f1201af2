//! How connections to a target's brokers are made: plain TCP or TLS
//! (rustls), then SASL ([`super::sasl`]) when the target's `security` asks.

use std::io::ErrorKind;

use pantau_config::{KafkaSasl, KafkaTarget};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::client::{Conn, Io, KafkaError};
use crate::checks::trust;

/// How connections to a target's brokers are made: TLS or not, SASL or
/// not. Built once per target; cheap to clone.
#[derive(Clone, Default)]
pub struct Connector {
    /// The TLS client and the name to verify (each broker's host when `None`).
    tls: Option<(TlsConnector, Option<ServerName<'static>>)>,
    sasl: Option<KafkaSasl>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl.as_ref().map(|s| s.mechanism))
            .finish()
    }
}

/// The host of `host:port` or `[v6]:port`.
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

impl Connector {
    /// The connector of `k`; an error names the field under `kafka.`
    /// (`ca_file`, `client_cert`, `client_key`, `server_name`).
    pub fn new(k: &KafkaTarget) -> Result<Self, (&'static str, String)> {
        let tls = match &k.tls {
            Some(t) if k.security.uses_tls() => {
                let config = trust::client_config(&t.files, t.verify.unwrap_or(true), false)
                    .map_err(|e| (crate::target::tls_key(&e), e))?;
                let name = match &t.server_name {
                    None => None,
                    Some(n) => Some(
                        ServerName::try_from(n.clone())
                            .map_err(|e| ("server_name", format!("`{n}` is not a TLS server name: {e}")))?,
                    ),
                };
                Some((TlsConnector::from(std::sync::Arc::new(config)), name))
            }
            _ => None,
        };
        Ok(Self {
            tls,
            sasl: k.sasl.clone().filter(|_| k.security.uses_sasl()),
        })
    }

    /// Connects to `address` (`host:port`), then speaks TLS and SASL as configured.
    pub async fn connect(&self, address: &str) -> Result<Conn, KafkaError> {
        let tcp = tcp_connect(address).await?;
        let stream: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some((connector, name)) => {
                let name = match name {
                    Some(n) => n.clone(),
                    None => ServerName::try_from(host_of(address).to_owned()).map_err(|e| KafkaError::Tls {
                        address: address.to_owned(),
                        why: format!("`{}` is not a TLS server name: {e}", host_of(address)),
                    })?,
                };
                let tls = connector.connect(name, tcp).await.map_err(|e| KafkaError::Tls {
                    address: address.to_owned(),
                    why: trust::refusal(&e).unwrap_or_else(|| e.to_string()),
                })?;
                Box::new(tls)
            }
        };
        let mut conn = Conn::new(stream, address);
        if let Some(sasl) = &self.sasl {
            super::sasl::authenticate(&mut conn, sasl).await?;
        }
        Ok(conn)
    }

    /// Connects to the first of `servers` that answers.
    pub async fn bootstrap(&self, servers: &[String]) -> Result<Conn, KafkaError> {
        let mut last = None;
        for s in servers {
            match self.connect(s).await {
                Ok(c) => return Ok(c),
                // Refused credentials or certificates are not a down broker: say so at once.
                Err(e @ (KafkaError::Auth { .. } | KafkaError::Sasl { .. } | KafkaError::Tls { .. })) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| KafkaError::Connect {
            address: String::new(),
            source: std::io::Error::new(ErrorKind::InvalidInput, "no bootstrap server"),
        }))
    }
}

/// Resolves `address` (`host:port`) and connects to the first address that answers.
async fn tcp_connect(address: &str) -> Result<TcpStream, KafkaError> {
    let addrs: Vec<_> = tokio::net::lookup_host(address)
        .await
        .map_err(|source| KafkaError::Resolve {
            address: address.to_owned(),
            source,
        })?
        .collect();
    let mut last = std::io::Error::new(ErrorKind::NotFound, "resolves to no address");
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(KafkaError::Connect {
        address: address.to_owned(),
        source: last,
    })
}
