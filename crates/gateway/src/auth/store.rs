//! The gateway's tables: users (argon2 password hashes), API keys (SHA-256
//! of the key; the key itself is shown once) and the audit log (pruned after
//! `gateway.auth.audit_retention`).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use pantau_core::store::{Migrations, Store, StoreError};
use pantau_core::with_pool;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Role, Scopes};

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The gateway's migrations.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// Why a user or key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthStoreError {
    #[error("user `{0}` already exists")]
    UserExists(String),
    #[error("no user `{0}`")]
    NoUser(String),
    #[error("no API key `{0}`")]
    NoKey(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AuthStoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Query(e))
    }
}

/// A user as listed (never with the hash).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct User {
    pub username: String,
    pub role: Role,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub disabled: bool,
}

/// An API key as listed (never with the key).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// Space-separated scopes.
    pub scopes: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// One audit entry.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// Who: a user, `key:<id>`, `cli:<name>`, or `anonymous`.
    pub actor: String,
    pub method: String,
    pub path: String,
    /// What was done, e.g. `alert.acknowledge`, `auth.login`.
    pub action: String,
    /// The HTTP status of the answer.
    pub status: i64,
    /// The client's address.
    pub remote: String,
    pub detail: String,
}

/// Which audit entries to list; `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter<'a> {
    pub actor: Option<&'a str>,
    /// The exact action, e.g. `POST /api/v1/users`.
    pub action: Option<&'a str>,
    /// Entries at or after, in milliseconds since the Unix epoch.
    pub since_ms: Option<i64>,
    /// Entries before, in milliseconds since the Unix epoch.
    pub until_ms: Option<i64>,
}

/// A write to record.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    pub actor: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub action: &'a str,
    pub status: u16,
    pub remote: &'a str,
    pub detail: &'a str,
}

/// Users, keys and audit in the gateway's store.
#[derive(Debug, Clone)]
pub struct AuthStore {
    store: Store,
    /// When each key's `last_used_at` was last written: at most once a minute.
    touched: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
}

/// How stale `last_used_at` may be.
const TOUCH_EVERY_MS: i64 = 60_000;

/// The SHA-256 of a key, hex.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn hasher() -> Argon2<'static> {
    Argon2::default()
}

/// An argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> Result<String, AuthStoreError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthStoreError::Hash(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthStoreError::Hash(e.to_string()))
}

/// Whether `password` matches `phc` (false for a malformed hash).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
}

impl AuthStore {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            touched: std::sync::Arc::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Adds a user; fails if the name is taken.
    pub async fn add_user(&self, username: &str, password: &str, role: Role) -> Result<User, AuthStoreError> {
        // argon2 takes a while: off the runtime's threads.
        let pw = password.to_owned();
        let phc = tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(|e| AuthStoreError::Hash(e.to_string()))??;
        let now = now_ms();
        let inserted = with_pool!(&self.store, pool => {
            sqlx::query(
                "INSERT INTO users (username, password_hash, role, created_at, disabled) VALUES ($1, $2, $3, $4, 0) ON CONFLICT (username) DO NOTHING",
            )
            .bind(username)
            .bind(&phc)
            .bind(role.as_str())
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            return Err(AuthStoreError::UserExists(username.to_owned()));
        }
        Ok(User {
            username: username.to_owned(),
            role,
            created_at: now,
            disabled: false,
        })
    }

    /// Sets a user's password (and role, when given).
    pub async fn set_password(&self, username: &str, password: &str, role: Option<Role>) -> Result<(), AuthStoreError> {
        let phc = hash_password(password)?;
        let n = with_pool!(&self.store, pool => {
            sqlx::query("UPDATE users SET password_hash = $1, role = COALESCE($2, role) WHERE username = $3")
                .bind(&phc)
                .bind(role.map(Role::as_str))
                .bind(username)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(AuthStoreError::NoUser(username.to_owned()));
        }
        Ok(())
    }

    pub async fn delete_user(&self, username: &str) -> Result<(), AuthStoreError> {
        let n = with_pool!(&self.store, pool => {
            sqlx::query("DELETE FROM users WHERE username = $1").bind(username).execute(pool).await?.rows_affected()
        });
        if n == 0 {
            return Err(AuthStoreError::NoUser(username.to_owned()));
        }
        Ok(())
    }

    pub async fn users(&self) -> Result<Vec<User>, AuthStoreError> {
        let rows = with_pool!(&self.store, pool => {
            sqlx::query("SELECT username, role, created_at, disabled FROM users ORDER BY username")
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1), r.get::<i64, _>(2), r.get::<i64, _>(3)))
                .collect::<Vec<_>>()
        });
        Ok(rows
            .into_iter()
            .map(|(username, role, created_at, disabled)| User {
                username,
                role: Role::parse(&role).unwrap_or(Role::Viewer),
                created_at,
                disabled: disabled != 0,
            })
            .collect())
    }

    /// The role of `username` when `password` is right; `None` otherwise.
    /// A missing user costs the same hash as a wrong password.
    pub async fn check_login(&self, username: &str, password: &str) -> Result<Option<Role>, AuthStoreError> {
        let row = with_pool!(&self.store, pool => {
            sqlx::query("SELECT password_hash, role, disabled FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(pool)
                .await?
                .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1), r.get::<i64, _>(2)))
        });
        let password = password.to_owned();
        let Some((phc, role, disabled)) = row else {
            // Spend the same time as a real check, so names cannot be probed.
            let dummy = dummy_hash();
            tokio::task::spawn_blocking(move || verify_password(&password, &dummy))
                .await
                .ok();
            return Ok(None);
        };
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
            .await
            .unwrap_or(false);
        Ok((ok && disabled == 0).then(|| Role::parse(&role).unwrap_or(Role::Viewer)))
    }

    /// Creates an API key; returns the key (shown once) and its record.
    pub async fn create_key(
        &self,
        name: &str,
        scopes: Scopes,
        created_by: &str,
        expires_at: Option<i64>,
    ) -> Result<(String, ApiKey), AuthStoreError> {
        let mut id = [0u8; 6];
        let mut secret = [0u8; 24];
        rand::rng().fill_bytes(&mut id);
        rand::rng().fill_bytes(&mut secret);
        let id = hex::encode(id);
        let key = format!("pk_{id}_{}", hex::encode(secret));
        let now = now_ms();
        with_pool!(&self.store, pool => {
            sqlx::query(
                "INSERT INTO api_keys (id, name, key_hash, scopes, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&id)
            .bind(name)
            .bind(key_hash(&key))
            .bind(scopes.to_string())
            .bind(created_by)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await?;
        });
        Ok((
            key,
            ApiKey {
                id,
                name: name.to_owned(),
                scopes: scopes.to_string(),
                created_by: created_by.to_owned(),
                created_at: now,
                expires_at,
                revoked_at: None,
                last_used_at: None,
            },
        ))
    }

    /// The key's id and scopes when `key` is a live (unrevoked, unexpired) key.
    pub async fn check_key(&self, key: &str) -> Result<Option<(String, Scopes)>, AuthStoreError> {
        let Some(id) = key.strip_prefix("pk_").and_then(|r| r.split('_').next()) else {
            return Ok(None);
        };
        let now = now_ms();
        let row = with_pool!(&self.store, pool => {
            sqlx::query(
                "SELECT key_hash, scopes FROM api_keys WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
            )
            .bind(id)
            .bind(now)
            .fetch_optional(pool)
            .await?
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        });
        let Some((hash, scopes)) = row else { return Ok(None) };
        if !constant_time_eq(hash.as_bytes(), key_hash(key).as_bytes()) {
            return Ok(None);
        }
        let stale = {
            let mut t = self.touched.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let last = t.get(id).copied().unwrap_or(0);
            if now - last >= TOUCH_EVERY_MS {
                t.insert(id.to_owned(), now);
                true
            } else {
                false
            }
        };
        if stale {
            with_pool!(&self.store, pool => {
                sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(pool)
                    .await?;
            });
        }
        Ok(Some((id.to_owned(), Scopes::parse(&scopes).unwrap_or_default())))
    }

    pub async fn keys(&self) -> Result<Vec<ApiKey>, AuthStoreError> {
        Ok(with_pool!(&self.store, pool => {
            sqlx::query(
                "SELECT id, name, scopes, created_by, created_at, expires_at, revoked_at, last_used_at FROM api_keys ORDER BY created_at, id",
            )
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| ApiKey {
                id: r.get(0),
                name: r.get(1),
                scopes: r.get(2),
                created_by: r.get(3),
                created_at: r.get(4),
                expires_at: r.get(5),
                revoked_at: r.get(6),
                last_used_at: r.get(7),
            })
            .collect()
        }))
    }

    /// Revokes a key at once; revoking twice is no error.
    pub async fn revoke_key(&self, id: &str) -> Result<(), AuthStoreError> {
        let n = with_pool!(&self.store, pool => {
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(now_ms())
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(AuthStoreError::NoKey(id.to_owned()));
        }
        Ok(())
    }

    /// Records one write.
    pub async fn audit(&self, e: &NewAudit<'_>) -> Result<(), AuthStoreError> {
        with_pool!(&self.store, pool => {
            sqlx::query(
                "INSERT INTO audit (at, actor, method, path, action, status, remote, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(now_ms())
            .bind(e.actor)
            .bind(e.method)
            .bind(e.path)
            .bind(e.action)
            .bind(i64::from(e.status))
            .bind(e.remote)
            .bind(e.detail)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Entries newest first, filtered.
    pub async fn audit_log(
        &self,
        filter: &AuditFilter<'_>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AuditEntry>, AuthStoreError> {
        Ok(with_pool!(&self.store, pool => {
            sqlx::query(
                "SELECT seq, at, actor, method, path, action, status, remote, detail FROM audit \
                 WHERE (CAST($1 AS TEXT) IS NULL OR actor = $1) AND (CAST($2 AS TEXT) IS NULL OR action = $2) \
                 AND (CAST($3 AS BIGINT) IS NULL OR at >= $3) AND (CAST($4 AS BIGINT) IS NULL OR at < $4) \
                 ORDER BY seq DESC LIMIT $5 OFFSET $6",
            )
            .bind(filter.actor)
            .bind(filter.action)
            .bind(filter.since_ms)
            .bind(filter.until_ms)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| AuditEntry {
                seq: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                method: r.get(3),
                path: r.get(4),
                action: r.get(5),
                status: r.get(6),
                remote: r.get(7),
                detail: r.get(8),
            })
            .collect()
        }))
    }

    /// Every action the log holds, sorted (one per route and method, so few).
    pub async fn audit_actions(&self) -> Result<Vec<String>, AuthStoreError> {
        Ok(with_pool!(&self.store, pool => {
            sqlx::query("SELECT DISTINCT action FROM audit ORDER BY action LIMIT 1000")
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| r.get::<String, _>(0))
                .collect()
        }))
    }

    /// Sets a user's role.
    pub async fn set_role(&self, username: &str, role: Role) -> Result<(), AuthStoreError> {
        let n = with_pool!(&self.store, pool => {
            sqlx::query("UPDATE users SET role = $1 WHERE username = $2")
                .bind(role.as_str())
                .bind(username)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(AuthStoreError::NoUser(username.to_owned()));
        }
        Ok(())
    }

    /// Deletes entries older than `before_ms`; returns how many.
    pub async fn prune_audit(&self, before_ms: i64) -> Result<u64, AuthStoreError> {
        Ok(with_pool!(&self.store, pool => {
            sqlx::query("DELETE FROM audit WHERE at < $1").bind(before_ms).execute(pool).await?.rows_affected()
        }))
    }
}

/// A fixed hash to spend time on for unknown users.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password("pantau-no-such-user").unwrap_or_default())
        .clone()
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
