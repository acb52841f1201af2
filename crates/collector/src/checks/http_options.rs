//! An `http` or `http_steps` target's proxy and fixed addresses, applied to
//! its own reqwest client.
//!
//! A proxy (`http://`, `https://`, `socks5://`, `socks5h://`) carries every
//! request, whatever the URL's scheme; the system's proxy variables do not
//! apply to such a client. `resolve` entries replace DNS for their host
//! names only: the URL's port is kept and TLS still verifies the name.
//! `dns_server` resolves every other name through that server (hickory,
//! UDP with TCP for a truncated answer) instead of the system's resolver;
//! a name it does not know fails the check with reason `dns`.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use pantau_config::HttpOptions;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::CollectorError;

/// reqwest's resolver through one DNS server.
struct Through {
    server: SocketAddr,
    resolver: Arc<TokioResolver>,
}

impl Through {
    fn new(server: SocketAddr) -> Result<Self, CollectorError> {
        let mut ns = NameServerConfig::udp_and_tcp(server.ip());
        for c in &mut ns.connections {
            c.port = server.port();
        }
        let cfg = ResolverConfig::from_parts(None, vec![], vec![ns]);
        let resolver = Resolver::builder_with_config(cfg, TokioRuntimeProvider::default())
            .build()
            .map_err(|e| CollectorError::Resolver(format!("{server}: {e}")))?;
        Ok(Self {
            server,
            resolver: Arc::new(resolver),
        })
    }
}

impl Resolve for Through {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = Arc::clone(&self.resolver);
        let server = self.server;
        Box::pin(async move {
            // Fully qualified: no search domain of the system's applies.
            let host = name.as_str().trim_end_matches('.');
            let found = resolver.lookup_ip(format!("{host}.")).await.map_err(|e| {
                Box::<dyn std::error::Error + Send + Sync>::from(format!(
                    "dns error: {host} through dns_server {server}: {e}"
                ))
            })?;
            let addrs: Vec<SocketAddr> = found.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// `builder` with `options` set.
pub fn apply(
    mut builder: reqwest::ClientBuilder,
    options: &HttpOptions,
) -> Result<reqwest::ClientBuilder, CollectorError> {
    if let Some(proxy) = &options.proxy {
        builder = builder.no_proxy().proxy(reqwest::Proxy::all(proxy.as_url().as_str())?);
    }
    if let Some(server) = options.dns_server {
        builder = builder.dns_resolver(Arc::new(Through::new(server)?));
    }
    for (host, ip) in &options.resolve {
        // Port 0: the URL's own port is used.
        builder = builder.resolve(host, SocketAddr::new(*ip, 0));
    }
    Ok(builder)
}
