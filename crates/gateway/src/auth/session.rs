//! Console sign-ins: a random session id in an `HttpOnly`, `SameSite=Strict`
//! cookie (`Secure` over TLS), kept hashed (SHA-256) in the gateway's store
//! with its expiry, and a CSRF token every session-authenticated write must
//! echo in the `X-CSRF-Token` header. The user's role is read at every
//! request, so a deleted or disabled user's sessions stop at once.

use axum::http::{HeaderMap, HeaderValue, header};
use pantau_core::with_pool;
use rand::RngCore;
use sqlx::Row;

use super::store::{AuthStore, AuthStoreError, key_hash, now_ms};
use super::{Principal, Role};

/// The session cookie's name.
pub const COOKIE: &str = "pantau_session";
/// The header a session-authenticated write must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A live session, as the middleware found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub username: String,
    pub role: Role,
    /// The token writes must echo.
    pub csrf: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
}

impl Session {
    pub fn principal(&self) -> Principal {
        Principal {
            subject: self.username.clone(),
            scopes: self.role.scopes(),
        }
    }

    /// Whether `headers` carry this session's CSRF token.
    pub fn csrf_ok(&self, headers: &HeaderMap) -> bool {
        headers
            .get(CSRF_HEADER)
            .is_some_and(|v| super::store::constant_time_eq(v.as_bytes(), self.csrf.as_bytes()))
    }
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The session cookie's value in `headers`, if any (at most 128 bytes are
/// looked at: a session id is 64 hex digits).
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The `Set-Cookie` value that stores `id` for `ttl`, or (with `None`) clears it.
pub fn set_cookie(id: Option<&str>, ttl: std::time::Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v = match id {
        Some(id) => format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            ttl.as_secs()
        ),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    // Only hex digits and fixed text.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("pantau_session=; Max-Age=0"))
}

/// Whether the request says it came over TLS (directly or through a proxy).
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

impl AuthStore {
    /// Starts a session for `username`; returns the cookie's value (shown
    /// once, kept hashed) and the session.
    pub async fn create_session(
        &self,
        username: &str,
        role: Role,
        ttl: std::time::Duration,
    ) -> Result<(String, Session), AuthStoreError> {
        let id = random_hex();
        let csrf = random_hex();
        let now = now_ms();
        let expires_at = now + ttl.as_millis() as i64;
        with_pool!(self.store(), pool => {
            sqlx::query("INSERT INTO sessions (id_hash, username, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(key_hash(&id))
                .bind(username)
                .bind(&csrf)
                .bind(now)
                .bind(expires_at)
                .execute(pool)
                .await?;
        });
        let session = Session {
            username: username.to_owned(),
            role,
            csrf,
            expires_at,
        };
        Ok((id, session))
    }

    /// The live session of cookie value `id`: unexpired, of a user who
    /// exists and is not disabled, with the user's current role.
    pub async fn session(&self, id: &str) -> Result<Option<Session>, AuthStoreError> {
        let row = with_pool!(self.store(), pool => {
            sqlx::query(
                "SELECT s.username, u.role, s.csrf, s.expires_at FROM sessions s JOIN users u ON u.username = s.username \
                 WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.disabled = 0",
            )
            .bind(key_hash(id))
            .bind(now_ms())
            .fetch_optional(pool)
            .await?
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1), r.get::<String, _>(2), r.get::<i64, _>(3)))
        });
        Ok(row.map(|(username, role, csrf, expires_at)| Session {
            username,
            role: Role::parse(&role).unwrap_or(Role::Viewer),
            csrf,
            expires_at,
        }))
    }

    /// Ends the session of cookie value `id` (signing out).
    pub async fn end_session(&self, id: &str) -> Result<(), AuthStoreError> {
        with_pool!(self.store(), pool => {
            sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(key_hash(id)).execute(pool).await?;
        });
        Ok(())
    }

    /// Forgets sessions that expired before `now_ms`.
    pub async fn prune_sessions(&self, now_ms: i64) -> Result<u64, AuthStoreError> {
        Ok(with_pool!(self.store(), pool => {
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now_ms).execute(pool).await?.rows_affected()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others_and_bounded() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; pantau_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h).as_deref(), Some("abc"));
        let mut h = HeaderMap::new();
        let long = format!("pantau_session={}", "a".repeat(200));
        h.append(header::COOKIE, HeaderValue::from_str(&long).unwrap());
        assert_eq!(cookie(&h), None);
        assert_eq!(cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_tls() {
        let ttl = std::time::Duration::from_secs(60);
        let v = set_cookie(Some("ab"), ttl, true);
        let v = v.to_str().unwrap();
        assert!(
            v.contains("HttpOnly") && v.contains("SameSite=Strict") && v.contains("Secure") && v.contains("Max-Age=60")
        );
        assert!(!set_cookie(Some("ab"), ttl, false).to_str().unwrap().contains("Secure"));
        assert!(set_cookie(None, ttl, false).to_str().unwrap().contains("Max-Age=0"));
    }
}
