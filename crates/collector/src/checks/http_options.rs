//! An `http` or `http_steps` target's proxy and fixed addresses, applied to
//! its own reqwest client.
//!
//! A proxy (`http://`, `https://`, `socks5://`, `socks5h://`) carries every
//! request, whatever the URL's scheme; the system's proxy variables do not
//! apply to such a client. `resolve` entries replace DNS for their host
//! names only: the URL's port is kept and TLS still verifies the name.

use std::net::SocketAddr;

use pantau_config::HttpOptions;

use crate::CollectorError;

/// `builder` with `options` set.
pub fn apply(
    mut builder: reqwest::ClientBuilder,
    options: &HttpOptions,
) -> Result<reqwest::ClientBuilder, CollectorError> {
    if let Some(proxy) = &options.proxy {
        builder = builder.no_proxy().proxy(reqwest::Proxy::all(proxy.as_url().as_str())?);
    }
    for (host, ip) in &options.resolve {
        // Port 0: the URL's own port is used.
        builder = builder.resolve(host, SocketAddr::new(*ip, 0));
    }
    Ok(builder)
}
