//! `gateway.auth`, `gateway.rate_limit` and `gateway.cors`: who may call the
//! gateway, how often, and from which browser origins.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::{self, format as fmt_d};
use super::{Invalid, MASK, text};

/// How tokens are signed and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with `jwt_secret` (generated into the data directory when unset).
    #[default]
    #[serde(rename = "HS256", alias = "hs256")]
    Hs256,
    /// RSA with `jwt_public_key_file` (and `jwt_private_key_file` to sign logins).
    #[serde(rename = "RS256", alias = "rs256")]
    Rs256,
    /// ECDSA P-256 with `jwt_public_key_file` (and `jwt_private_key_file` to sign logins).
    #[serde(rename = "ES256", alias = "es256")]
    Es256,
}

/// Authentication of REST and WebSocket clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require a token on every `/api` route but login, health, the OpenAPI
    /// document and push URLs. Turning it off logs a warning at start-up.
    pub enabled: bool,
    /// `HS256`, `RS256` or `ES256`.
    pub jwt_algorithm: JwtAlgorithm,
    /// HS256 secret (a secret; masked). Unset: generated once into
    /// `<data_dir>/gateway-jwt.secret` and reused.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub jwt_secret: Option<String>,
    /// RS256/ES256: PEM public key that verifies tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// RS256/ES256: PEM private key that signs login tokens; without it,
    /// tokens come from elsewhere and login is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_private_key_file: Option<PathBuf>,
    /// The `iss` claim written into and required of tokens.
    pub issuer: String,
    /// Lifetime of a token from `POST /api/v1/auth/login`.
    #[serde(with = "duration")]
    pub login_ttl: Duration,
    /// Longest lifetime a minted token or API key may ask for.
    #[serde(with = "duration")]
    pub max_token_ttl: Duration,
    /// How long audit entries are kept.
    #[serde(with = "duration")]
    pub audit_retention: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            jwt_algorithm: JwtAlgorithm::Hs256,
            jwt_secret: None,
            jwt_public_key_file: None,
            jwt_private_key_file: None,
            issuer: "pantau".to_owned(),
            login_ttl: Duration::from_secs(3600),
            max_token_ttl: Duration::from_secs(365 * 86_400),
            audit_retention: Duration::from_secs(365 * 86_400),
        }
    }
}

impl AuthConfig {
    pub(super) fn mask(&mut self) {
        if self.jwt_secret.is_some() {
            self.jwt_secret = Some(MASK.to_owned());
        }
    }
}

/// Per-client request rate limiting (a token bucket per token or address).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Steady requests per second allowed to one client; 0 turns limiting off.
    pub requests_per_second: u32,
    /// Requests a client may make at once above the steady rate.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 50,
            burst: 100,
        }
    }
}

/// Cross-origin requests from browsers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins allowed to call the API from a browser, e.g.
    /// `https://grafana.example.net`; `*` allows any. Empty: no CORS headers.
    pub allowed_origins: Vec<String>,
    /// How long browsers may cache a preflight answer.
    #[serde(with = "duration")]
    pub max_age: Duration,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            max_age: Duration::from_secs(3600),
        }
    }
}

/// The checks of `gateway.auth`, `gateway.rate_limit`, `gateway.cors`.
pub(super) fn problems(
    auth: &AuthConfig,
    rate: &RateLimitConfig,
    cors: &CorsConfig,
    max_body_bytes: usize,
) -> Vec<Invalid> {
    let mut p = Vec::new();
    let mut add = |key: &str, value: String, allowed: &str| {
        p.push(Invalid {
            key: key.to_owned(),
            value,
            allowed: allowed.to_owned(),
        });
    };
    if let Some(s) = &auth.jwt_secret
        && s.len() < 32
    {
        add(
            "gateway.auth.jwt_secret",
            MASK.to_owned(),
            "must be at least 32 characters (or unset, to generate one into the data directory)",
        );
    }
    match auth.jwt_algorithm {
        JwtAlgorithm::Hs256 => {}
        JwtAlgorithm::Rs256 | JwtAlgorithm::Es256 => {
            if auth.jwt_public_key_file.is_none() {
                add(
                    "gateway.auth.jwt_public_key_file",
                    "(unset)".to_owned(),
                    "must name a PEM public key file when jwt_algorithm is RS256 or ES256",
                );
            }
        }
    }
    for (key, file) in [
        ("gateway.auth.jwt_public_key_file", &auth.jwt_public_key_file),
        ("gateway.auth.jwt_private_key_file", &auth.jwt_private_key_file),
    ] {
        if let Some(f) = file
            && !f.is_file()
        {
            add(key, f.display().to_string(), "must be a readable PEM file");
        }
    }
    if auth.issuer.is_empty() {
        add("gateway.auth.issuer", String::new(), "must not be empty");
    }
    if auth.login_ttl < Duration::from_secs(60) || auth.login_ttl > auth.max_token_ttl {
        add(
            "gateway.auth.login_ttl",
            fmt_d(auth.login_ttl),
            "must be at least 1m and at most gateway.auth.max_token_ttl",
        );
    }
    if auth.audit_retention < Duration::from_secs(86_400) {
        add(
            "gateway.auth.audit_retention",
            fmt_d(auth.audit_retention),
            "must be at least 1d",
        );
    }
    if rate.requests_per_second > 0 && rate.burst == 0 {
        add(
            "gateway.rate_limit.burst",
            "0".to_owned(),
            "must be at least 1 when requests_per_second is set",
        );
    }
    for o in &cors.allowed_origins {
        let ok = o == "*"
            || ((o.starts_with("http://") || o.starts_with("https://")) && !o.ends_with('/') && axum_header_ok(o));
        if !ok {
            add(
                "gateway.cors.allowed_origins",
                o.clone(),
                "must be `*` or an origin such as https://grafana.example.net (scheme and host, no path or trailing slash)",
            );
        }
    }
    if !(1024..=(256 << 20)).contains(&max_body_bytes) {
        add(
            "gateway.max_body_bytes",
            max_body_bytes.to_string(),
            "must be between 1024 and 268435456",
        );
    }
    p
}

/// A value that can go into an HTTP header.
fn axum_header_ok(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let p = problems(
            &AuthConfig::default(),
            &RateLimitConfig::default(),
            &CorsConfig::default(),
            1 << 20,
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn bad_values_are_named() {
        let auth = AuthConfig {
            jwt_secret: Some("short".into()),
            jwt_algorithm: JwtAlgorithm::Rs256,
            ..AuthConfig::default()
        };
        let cors = CorsConfig {
            allowed_origins: vec!["grafana.local/".into()],
            ..CorsConfig::default()
        };
        let p = problems(&auth, &RateLimitConfig::default(), &cors, 10);
        let keys: Vec<_> = p.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "gateway.auth.jwt_secret",
                "gateway.auth.jwt_public_key_file",
                "gateway.cors.allowed_origins",
                "gateway.max_body_bytes"
            ]
        );
        assert!(!p[0].value.contains("short"), "the secret is never echoed");
    }
}
