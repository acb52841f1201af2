//! The `grpc` section: how every gRPC server of this process authenticates
//! its callers and encrypts, and how its gRPC clients do.
//!
//! Callers present a JWT in the `authorization: Bearer` metadata, signed
//! with the keys of `gateway.auth` (the same tokens the REST API takes); a
//! process's own calls carry a short-lived `service` token it mints itself.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Invalid, MASK, duration, text};

/// gRPC authentication and TLS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Require a valid bearer token on every call but `grpc.health.v1`;
    /// `false` logs a warning at start and lets every caller do everything.
    pub auth: bool,
    /// Serve server reflection (to authenticated callers only).
    pub reflection: bool,
    /// PEM certificate chain: with `tls_key_file`, every gRPC server of this
    /// process serves TLS only (clients must use `https://` URLs).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificate(s) trusted for `https://` gRPC URLs; unset: the
    /// Mozilla root store (webpki-roots).
    pub ca_file: Option<PathBuf>,
    /// Lifetime of the `service` token this process mints for its own calls;
    /// a fresh one is minted when half of it has passed.
    #[serde(with = "duration")]
    pub service_token_ttl: Duration,
    /// A token to present on this process's own calls instead of minting
    /// one (a secret; masked): for RS256/ES256 without
    /// `gateway.auth.jwt_private_key_file`.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub service_token: Option<String>,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            auth: true,
            reflection: true,
            tls_cert_file: None,
            tls_key_file: None,
            ca_file: None,
            service_token_ttl: Duration::from_secs(3600),
            service_token: None,
        }
    }
}

impl GrpcConfig {
    /// Whether the servers serve TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert_file.is_some()
    }

    pub(super) fn mask(&mut self) {
        if self.service_token.is_some() {
            self.service_token = Some(MASK.to_owned());
        }
    }
}

/// The checks of the `grpc` section.
pub(super) fn problems(g: &GrpcConfig) -> Vec<Invalid> {
    let mut p = Vec::new();
    let mut add = |key: &str, value: String, allowed: &str| {
        p.push(Invalid {
            key: key.to_owned(),
            value,
            allowed: allowed.to_owned(),
        });
    };
    match (&g.tls_cert_file, &g.tls_key_file) {
        (Some(_), None) => add(
            "grpc.tls_key_file",
            "(unset)".to_owned(),
            "must name the PEM private key when grpc.tls_cert_file is set",
        ),
        (None, Some(_)) => add(
            "grpc.tls_cert_file",
            "(unset)".to_owned(),
            "must name the PEM certificate chain when grpc.tls_key_file is set",
        ),
        _ => {}
    }
    for (key, file) in [
        ("grpc.tls_cert_file", &g.tls_cert_file),
        ("grpc.tls_key_file", &g.tls_key_file),
        ("grpc.ca_file", &g.ca_file),
    ] {
        if let Some(f) = file
            && !f.is_file()
        {
            add(key, f.display().to_string(), "must be a readable PEM file");
        }
    }
    if !(Duration::from_secs(60)..=Duration::from_secs(86_400)).contains(&g.service_token_ttl) {
        add(
            "grpc.service_token_ttl",
            duration::format(g.service_token_ttl),
            "must be between 1m and 1d",
        );
    }
    p
}

/// Whether `url`'s host is a loopback address (or `localhost`).
pub fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, r)| r) else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_recognised() {
        for u in [
            "http://127.0.0.1:50055",
            "http://localhost:1",
            "https://[::1]:50055/x",
            "http://127.3.4.5",
        ] {
            assert!(is_loopback_url(u), "{u}");
        }
        for u in [
            "http://10.0.0.1:50055",
            "http://sync-api:50055",
            "http://[2001:db8::1]:1",
            "nonsense",
        ] {
            assert!(!is_loopback_url(u), "{u}");
        }
    }

    #[test]
    fn tls_needs_both_files_and_ttl_is_bounded() {
        let g = GrpcConfig {
            tls_cert_file: Some("/nonexistent/cert.pem".into()),
            service_token_ttl: Duration::from_secs(1),
            ..GrpcConfig::default()
        };
        let keys: Vec<_> = problems(&g).into_iter().map(|i| i.key).collect();
        assert_eq!(
            keys,
            ["grpc.tls_key_file", "grpc.tls_cert_file", "grpc.service_token_ttl"]
        );
        assert!(problems(&GrpcConfig::default()).is_empty());
    }
}
