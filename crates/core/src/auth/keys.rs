//! Signing and checking JWTs: the gateway's REST tokens and the tokens every
//! gRPC server checks are the same.
//!
//! The algorithm is pinned by configuration: a token whose header names any
//! other algorithm (`none` included) is refused before its signature is
//! looked at. HS256 uses `gateway.auth.jwt_secret`, or a secret generated once
//! into `<data_dir>/gateway-jwt.secret` (mode 0600) and reused by every
//! process that reads the same data directory, the CLI included.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use pantau_config::{AuthConfig, JwtAlgorithm};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The generated HS256 secret's file name in the data directory.
pub const SECRET_FILE: &str = "gateway-jwt.secret";

/// Why keys could not be loaded or a token minted.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or create the JWT secret {path}: {source}")]
    SecretFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {key} {path}: {source}")]
    KeyFile {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{key} {path} is not a usable PEM key: {source}")]
    BadKey {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    #[error(
        "this gateway cannot sign tokens: gateway.auth.jwt_private_key_file is not set for {0}; tokens must come from the issuer that holds the private key"
    )]
    CannotSign(&'static str),
    #[error("cannot sign the token: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// What a Pantau token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who: a user name, or `cli:<name>` for tokens minted on the command line.
    pub sub: String,
    pub iss: String,
    pub iat: u64,
    pub exp: u64,
    /// Space-separated scopes, as in OAuth 2.
    pub scope: String,
}

/// The keys of one gateway.
pub struct Keys {
    alg: Algorithm,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("alg", &self.alg)
            .field("can_sign", &self.encoding.is_some())
            .finish_non_exhaustive()
    }
}

fn alg_name(a: JwtAlgorithm) -> &'static str {
    match a {
        JwtAlgorithm::Hs256 => "HS256",
        JwtAlgorithm::Rs256 => "RS256",
        JwtAlgorithm::Es256 => "ES256",
    }
}

impl Keys {
    /// Loads (or, for HS256 without a configured secret, creates) the keys.
    pub fn load(cfg: &AuthConfig, data_dir: &Path) -> Result<Self, KeyError> {
        let (alg, encoding, decoding) = match cfg.jwt_algorithm {
            JwtAlgorithm::Hs256 => {
                let secret = match &cfg.jwt_secret {
                    Some(s) => s.as_bytes().to_vec(),
                    None => generated_secret(data_dir)?,
                };
                (
                    Algorithm::HS256,
                    Some(EncodingKey::from_secret(&secret)),
                    DecodingKey::from_secret(&secret),
                )
            }
            a @ (JwtAlgorithm::Rs256 | JwtAlgorithm::Es256) => {
                let public = cfg
                    .jwt_public_key_file
                    .as_deref()
                    .ok_or(KeyError::CannotSign(alg_name(a)))?;
                let pem = read("gateway.auth.jwt_public_key_file", public)?;
                let bad = |source| KeyError::BadKey {
                    key: "gateway.auth.jwt_public_key_file",
                    path: public.to_owned(),
                    source,
                };
                let rsa = matches!(a, JwtAlgorithm::Rs256);
                let decoding = if rsa {
                    DecodingKey::from_rsa_pem(&pem)
                } else {
                    DecodingKey::from_ec_pem(&pem)
                }
                .map_err(bad)?;
                let encoding = match &cfg.jwt_private_key_file {
                    None => None,
                    Some(private) => {
                        let pem = read("gateway.auth.jwt_private_key_file", private)?;
                        let key = if rsa {
                            EncodingKey::from_rsa_pem(&pem)
                        } else {
                            EncodingKey::from_ec_pem(&pem)
                        };
                        Some(key.map_err(|source| KeyError::BadKey {
                            key: "gateway.auth.jwt_private_key_file",
                            path: private.clone(),
                            source,
                        })?)
                    }
                };
                let alg = if rsa { Algorithm::RS256 } else { Algorithm::ES256 };
                (alg, encoding, decoding)
            }
        };
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        validation.validate_aud = false;
        Ok(Self {
            alg,
            encoding,
            decoding,
            validation,
            issuer: cfg.issuer.clone(),
        })
    }

    /// Whether this gateway can mint tokens (login works).
    pub fn can_sign(&self) -> bool {
        self.encoding.is_some()
    }

    /// A signed token for `sub` with `scopes` (printed space-separated), valid for `ttl`.
    pub fn mint(&self, sub: &str, scopes: impl std::fmt::Display, ttl: Duration) -> Result<(String, Claims), KeyError> {
        let key = self.encoding.as_ref().ok_or(KeyError::CannotSign(match self.alg {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            _ => "HS256",
        }))?;
        let now = now_secs();
        let claims = Claims {
            sub: sub.to_owned(),
            iss: self.issuer.clone(),
            iat: now,
            exp: now + ttl.as_secs().max(1),
            scope: scopes.to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(self.alg), &claims, key).map_err(KeyError::Sign)?;
        Ok((token, claims))
    }

    /// The claims of a valid token: right algorithm, signature, issuer, not expired.
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims)
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::KeyFile {
        key,
        path: path.to_owned(),
        source,
    })
}

/// The data directory's secret, created on first use.
fn generated_secret(data_dir: &Path) -> Result<Vec<u8>, KeyError> {
    let path = data_dir.join(SECRET_FILE);
    let err = |source| KeyError::SecretFile {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the file holds fewer than 32 characters; delete it to generate a new one",
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(err)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut f) => {
            std::io::Write::write_all(&mut f, secret.as_bytes()).map_err(err)?;
            tracing::info!(path = %path.display(), "generated the gateway's JWT signing secret");
            Ok(secret.into_bytes())
        }
        // Another process (or thread: the gateway and the gRPC servers of
        // `pantau all` load keys at once) created it first: use theirs,
        // once it is written.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            for _ in 0..100 {
                let s = std::fs::read_to_string(&path).map_err(err)?;
                if s.trim().len() >= 32 {
                    return Ok(s.trim().as_bytes().to_vec());
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the file stayed shorter than 32 characters; delete it to generate a new one",
            )))
        }
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(dir: &Path) -> Keys {
        Keys::load(&AuthConfig::default(), dir).unwrap()
    }

    #[test]
    fn secret_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = hs(dir.path());
        let (token, _) = a.mint("ana", "monitoring:read", Duration::from_secs(60)).unwrap();
        // A second process on the same data directory accepts the first one's tokens.
        let b = hs(dir.path());
        assert_eq!(b.verify(&token).unwrap().sub, "ana");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn other_secret_expired_and_alg_none_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = hs(dir.path());
        let other = Keys::load(
            &AuthConfig {
                jwt_secret: Some("x".repeat(40)),
                ..AuthConfig::default()
            },
            dir.path(),
        )
        .unwrap();
        let (forged, _) = other.mint("ana", "admin", Duration::from_secs(60)).unwrap();
        assert!(keys.verify(&forged).is_err(), "wrong signature");

        let (good, claims) = keys.mint("ana", "admin", Duration::from_secs(60)).unwrap();
        // alg: none with the same claims and no signature.
        let b64 = |v: &[u8]| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
        };
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(&serde_json::to_vec(&claims).unwrap())
        );
        assert!(keys.verify(&none).is_err(), "alg none");
        assert!(keys.verify(&good).is_ok());

        let expired = Claims {
            exp: now_secs() - 120,
            iat: now_secs() - 180,
            ..claims
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &expired,
            &EncodingKey::from_secret(&std::fs::read(dir.path().join(SECRET_FILE)).unwrap()),
        )
        .unwrap();
        let e = keys.verify(&token).unwrap_err();
        assert!(
            matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature),
            "{e:?}"
        );
    }
}
