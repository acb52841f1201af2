//! Routes of authentication and administration:
//!
//! - `POST /api/v1/auth/login` `{"username", "password"}` → a short-lived JWT;
//! - `GET  /api/v1/auth/whoami`: the caller's subject and scopes;
//! - `POST /api/v1/auth/tokens` `{"subject", "scopes", "ttl"}` (admin): a JWT;
//! - `GET|POST /api/v1/auth/keys`, `DELETE /api/v1/auth/keys/{id}` (admin):
//!   API keys for scripts, shown once, stored hashed, revocable;
//! - `GET|POST /api/v1/users`, `PATCH /api/v1/users/{username}` `{"role"}`,
//!   `DELETE /api/v1/users/{username}` (admin);
//! - `GET /api/v1/audit?actor=&action=&since=&until=&limit=&offset=` (admin):
//!   the audit log, newest first.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use pantau_core::error::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::store::{ApiKey, AuditEntry, AuditFilter, AuthStoreError, User};
use super::{AuditNote, Auth, Principal, Role, Scope, Scopes};
use crate::api::{bad_query, invalid_body};
use crate::input;

fn ttl_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::or_null(input::pattern_schema(
        input::PERIOD,
        "a whole number of m, h or d, e.g. 30d; at most gateway.auth.max_token_ttl",
    )))
}

fn username_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::pattern_schema(
        input::USERNAME,
        "1–64 letters, digits, `-`, `_`, `.` or `@`",
    ))
}

pub fn router(auth: Arc<Auth>) -> Router {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/whoami", get(whoami))
        .route("/api/v1/auth/tokens", post(mint))
        .route("/api/v1/auth/keys", get(list_keys).post(create_key))
        .route("/api/v1/auth/keys/{id}", delete(revoke_key))
        .route("/api/v1/users", get(list_users).post(add_user))
        .route("/api/v1/users/{username}", delete(delete_user).patch(set_role))
        .route("/api/v1/audit", get(audit))
        .with_state(auth)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        login,
        whoami,
        mint,
        list_keys,
        create_key,
        revoke_key,
        list_users,
        add_user,
        delete_user,
        set_role,
        audit
    ),
    components(schemas(
        LoginBody,
        TokenView,
        WhoAmI,
        MintBody,
        KeyBody,
        CreatedKey,
        ApiKey,
        KeysResponse,
        UserBody,
        RoleBody,
        User,
        UsersResponse,
        AuditEntry,
        AuditResponse,
        Scope,
        Role
    ))
)]
pub struct Doc;

pub(crate) fn store_error(e: &AuthStoreError) -> ApiError {
    match e {
        AuthStoreError::UserExists(_) => ApiError::new(ErrorCode::Conflict, e.to_string()),
        AuthStoreError::NoUser(_) | AuthStoreError::NoKey(_) => ApiError::new(ErrorCode::NotFound, e.to_string()),
        AuthStoreError::Hash(_) | AuthStoreError::Store(_) => {
            tracing::error!(error = %e, "auth store failed");
            ApiError::new(ErrorCode::Unavailable, "the gateway's store is unavailable; try again")
        }
    }
}

fn with_note<T: IntoResponse>(body: T, note: AuditNote) -> Response {
    let mut r = body.into_response();
    r.extensions_mut().insert(note);
    r
}

/// Login credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

/// A signed token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds since the Unix epoch.
    pub expires_at: u64,
    pub scopes: Vec<Scope>,
    pub subject: String,
}

/// Exchanges a user's name and password for a short-lived JWT.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, body = TokenView), (status = 401, description = "wrong name or password"),
        (status = 409, description = "this gateway cannot sign tokens (no private key)")))]
async fn login(State(auth): State<Arc<Auth>>, body: Result<Json<LoginBody>, JsonRejection>) -> Response {
    let Json(b) = match body {
        Ok(b) => b,
        Err(e) => return invalid_body(&e).into_response(),
    };
    let note = AuditNote {
        actor: Some(b.username.clone()),
        detail: "login".to_owned(),
    };
    let role = match auth.store.check_login(&b.username, &b.password).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            let e = ApiError::new(ErrorCode::Unauthenticated, "wrong username or password");
            return with_note(e, note);
        }
        Err(e) => return with_note(store_error(&e), note),
    };
    match auth.keys.mint(&b.username, role.scopes(), auth.login_ttl) {
        Ok((token, claims)) => with_note(
            Json(TokenView {
                token,
                token_type: "Bearer",
                expires_at: claims.exp,
                scopes: role.scopes().list(),
                subject: claims.sub,
            }),
            note,
        ),
        Err(e) => with_note(
            ApiError::new(ErrorCode::FailedPrecondition, e.to_string()).reason("cannot_sign"),
            note,
        ),
    }
}

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    pub subject: String,
    pub scopes: Vec<Scope>,
}

/// The caller's subject and scopes.
#[utoipa::path(get, path = "/api/v1/auth/whoami", tag = "auth", responses((status = 200, body = WhoAmI)))]
async fn whoami(Extension(p): Extension<Principal>) -> Json<WhoAmI> {
    Json(WhoAmI {
        subject: p.subject,
        scopes: p.scopes.list(),
    })
}

fn parse_ttl(field: &str, raw: Option<&str>, default: Duration, max: Duration) -> Result<Duration, ApiError> {
    let Some(raw) = raw else { return Ok(default) };
    let ttl = input::period(field, raw, "invalid_body")?;
    if ttl > max {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!(
                "{field} `{raw}` must be at most {} (gateway.auth.max_token_ttl)",
                humantime::format_duration(max)
            ),
        )
        .reason("invalid_body"));
    }
    Ok(ttl)
}

fn parse_scopes(raw: &[String]) -> Result<Scopes, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "scopes must name at least one of monitoring:read, monitoring:write, admin",
        )
        .reason("invalid_body"));
    }
    Scopes::parse(&raw.join(" "))
        .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, format!("scopes: {e}")).reason("invalid_body"))
}

/// A token to mint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintBody {
    /// Who the token speaks for; default `cli:<caller>`.
    pub subject: Option<String>,
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
    /// Lifetime such as `1h` or `30d`; default gateway.auth.login_ttl.
    #[schema(schema_with = ttl_schema)]
    pub ttl: Option<String>,
}

/// Mints a JWT with the given scopes (admin).
#[utoipa::path(post, path = "/api/v1/auth/tokens", tag = "auth", request_body = MintBody,
    responses((status = 200, body = TokenView), (status = 409, description = "this gateway cannot sign tokens (no private key)")))]
async fn mint(
    State(auth): State<Arc<Auth>>,
    Extension(p): Extension<Principal>,
    body: Result<Json<MintBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) = body.map_err(|e| invalid_body(&e))?;
    let names: Vec<String> = b.scopes.iter().map(|s| s.as_str().to_owned()).collect();
    let scopes = parse_scopes(&names)?;
    let ttl = parse_ttl("ttl", b.ttl.as_deref(), auth.login_ttl, auth.max_token_ttl)?;
    let subject = b.subject.unwrap_or_else(|| format!("cli:{}", p.subject));
    let (token, claims) = auth
        .keys
        .mint(&subject, scopes, ttl)
        .map_err(|e| ApiError::new(ErrorCode::FailedPrecondition, e.to_string()).reason("cannot_sign"))?;
    Ok(with_note(
        Json(TokenView {
            token,
            token_type: "Bearer",
            expires_at: claims.exp,
            scopes: scopes.list(),
            subject,
        }),
        AuditNote {
            actor: None,
            detail: format!("minted a token for {} with {scopes}", claims.sub),
        },
    ))
}

/// An API key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
    /// Lifetime such as `90d`; default: until revoked.
    #[schema(schema_with = ttl_schema)]
    pub ttl: Option<String>,
}

/// Every API key, revoked and expired ones included.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeysResponse {
    pub keys: Vec<ApiKey>,
}

/// Every user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsersResponse {
    pub users: Vec<User>,
}

/// Audit entries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditResponse {
    pub entries: Vec<AuditEntry>,
}

/// A new key: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key; keep it, it cannot be shown again.
    pub key: String,
    #[serde(flatten)]
    pub record: ApiKey,
}

#[utoipa::path(get, path = "/api/v1/auth/keys", tag = "auth", responses((status = 200, body = KeysResponse)))]
async fn list_keys(State(auth): State<Arc<Auth>>) -> Result<Json<KeysResponse>, ApiError> {
    let keys = auth.store.keys().await.map_err(|e| store_error(&e))?;
    Ok(Json(KeysResponse { keys }))
}

/// Creates an API key (admin); the answer is the only time the key is shown.
#[utoipa::path(post, path = "/api/v1/auth/keys", tag = "auth", request_body = KeyBody,
    responses((status = 201, body = CreatedKey)))]
async fn create_key(
    State(auth): State<Arc<Auth>>,
    Extension(p): Extension<Principal>,
    body: Result<Json<KeyBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) = body.map_err(|e| invalid_body(&e))?;
    if b.name.is_empty() || b.name.chars().count() > 128 {
        return Err(ApiError::new(ErrorCode::InvalidArgument, "name must be 1–128 characters").reason("invalid_body"));
    }
    let names: Vec<String> = b.scopes.iter().map(|s| s.as_str().to_owned()).collect();
    let scopes = parse_scopes(&names)?;
    let expires_at = match b.ttl.as_deref() {
        None => None,
        Some(raw) => {
            let ttl = parse_ttl("ttl", Some(raw), auth.max_token_ttl, auth.max_token_ttl)?;
            Some(super::store::now_ms() + ttl.as_millis() as i64)
        }
    };
    let (key, record) = auth
        .store
        .create_key(&b.name, scopes, &p.subject, expires_at)
        .await
        .map_err(|e| store_error(&e))?;
    let detail = format!("created API key {} ({}) with {scopes}", record.id, record.name);
    Ok(with_note(
        (StatusCode::CREATED, Json(CreatedKey { key, record })),
        AuditNote { actor: None, detail },
    ))
}

/// Revokes an API key at once (admin).
#[utoipa::path(delete, path = "/api/v1/auth/keys/{id}", tag = "auth", params(("id" = String, Path)),
    responses((status = 204, description = "revoked")))]
async fn revoke_key(State(auth): State<Arc<Auth>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = input::token("key id", id)?;
    auth.store.revoke_key(&id).await.map_err(|e| store_error(&e))?;
    Ok(with_note(
        StatusCode::NO_CONTENT,
        AuditNote {
            actor: None,
            detail: format!("revoked API key {id}"),
        },
    ))
}

/// A user to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    #[schema(schema_with = username_schema)]
    pub username: String,
    /// At least 8 characters.
    #[schema(min_length = 8)]
    pub password: String,
    pub role: Role,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "auth", responses((status = 200, body = UsersResponse)))]
async fn list_users(State(auth): State<Arc<Auth>>) -> Result<Json<UsersResponse>, ApiError> {
    let users = auth.store.users().await.map_err(|e| store_error(&e))?;
    Ok(Json(UsersResponse { users }))
}

/// Checks a new user's name and password.
pub fn check_new_user(username: &str, password: &str) -> Result<(), String> {
    let name_ok = !username.is_empty()
        && username.len() <= 64
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if !name_ok {
        return Err(format!(
            "username `{username}` must be 1–64 letters, digits, `-`, `_`, `.` or `@`"
        ));
    }
    if password.chars().count() < 8 {
        return Err("password must be at least 8 characters".to_owned());
    }
    Ok(())
}

/// Adds a user (admin).
#[utoipa::path(post, path = "/api/v1/users", tag = "auth", request_body = UserBody,
    responses((status = 201, body = User), (status = 409, description = "the name is taken")))]
async fn add_user(
    State(auth): State<Arc<Auth>>,
    body: Result<Json<UserBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) = body.map_err(|e| invalid_body(&e))?;
    check_new_user(&b.username, &b.password)
        .map_err(|m| ApiError::new(ErrorCode::InvalidArgument, m).reason("invalid_body"))?;
    let user = auth
        .store
        .add_user(&b.username, &b.password, b.role)
        .await
        .map_err(|e| store_error(&e))?;
    let detail = format!("added user {} as {}", user.username, user.role.as_str());
    Ok(with_note(
        (StatusCode::CREATED, Json(user)),
        AuditNote { actor: None, detail },
    ))
}

/// Deletes a user (admin). Tokens already issued to them live until they expire.
#[utoipa::path(delete, path = "/api/v1/users/{username}", tag = "auth", params(("username" = String, Path)),
    responses((status = 204, description = "deleted")))]
async fn delete_user(State(auth): State<Arc<Auth>>, Path(username): Path<String>) -> Result<Response, ApiError> {
    let username = input::username(username)?;
    auth.store.delete_user(&username).await.map_err(|e| store_error(&e))?;
    Ok(with_note(
        StatusCode::NO_CONTENT,
        AuditNote {
            actor: None,
            detail: format!("deleted user {username}"),
        },
    ))
}

/// A user's new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    pub role: Role,
}

/// Changes a user's role (admin). Their console sessions have it at once
/// (the role is re-read per request); JWTs already issued keep their scopes
/// until they expire.
#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "auth", params(("username" = String, Path)), request_body = RoleBody,
    responses((status = 204, description = "changed"), (status = 404, description = "no such user")))]
async fn set_role(
    State(auth): State<Arc<Auth>>,
    Path(username): Path<String>,
    body: Result<Json<RoleBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let username = input::username(username)?;
    let Json(b) = body.map_err(|e| invalid_body(&e))?;
    auth.store
        .set_role(&username, b.role)
        .await
        .map_err(|e| store_error(&e))?;
    Ok(with_note(
        StatusCode::NO_CONTENT,
        AuditNote {
            actor: None,
            detail: format!("set the role of {username} to {}", b.role.as_str()),
        },
    ))
}

/// Filters of the audit log.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this actor (at most 256 characters, no control characters; blank is none).
    #[param(schema_with = filter_schema)]
    pub actor: Option<String>,
    /// Only this action, e.g. `POST /api/v1/users` (as `actor`).
    #[param(schema_with = filter_schema)]
    pub action: Option<String>,
    /// RFC 3339: entries at or after.
    #[param(schema_with = time_schema)]
    pub since: Option<String>,
    /// RFC 3339: entries before.
    #[param(schema_with = time_schema)]
    pub until: Option<String>,
    /// At most this many entries (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Skip this many of the newest.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

fn time_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::time_schema())
}

/// Longest actor or action filter, in characters.
const MAX_FILTER: usize = 256;

fn filter_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::text_schema(MAX_FILTER, false, false))
}

/// A text filter: `None` when absent or blank; refused when too long or
/// holding control characters.
fn filter_text<'a>(field: &str, v: Option<&'a str>) -> Result<Option<&'a str>, ApiError> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > MAX_FILTER || s.chars().any(char::is_control) => Err(input::bad(
            "invalid_query",
            format!(
                "{field} `{}` is not allowed: use at most {MAX_FILTER} printable characters",
                pantau_config::types::quote(s)
            ),
        )),
        other => Ok(other),
    }
}

impl AuditQuery {
    /// The store's filter, or a 400 naming the first bad field.
    pub fn filter(&self) -> Result<AuditFilter<'_>, ApiError> {
        let ms = |field: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
            // An empty or padded time is refused (the schema's pattern), not ignored.
            match v.as_deref() {
                None => Ok(None),
                Some(raw) => {
                    let t = input::time(field, raw)?;
                    let ms = t
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                    Ok(Some(ms))
                }
            }
        };
        Ok(AuditFilter {
            actor: filter_text("actor", self.actor.as_deref())?,
            action: filter_text("action", self.action.as_deref())?,
            since_ms: ms("since", &self.since)?,
            until_ms: ms("until", &self.until)?,
        })
    }
}

/// The audit log, newest first (admin).
#[utoipa::path(get, path = "/api/v1/audit", tag = "auth", params(AuditQuery), responses((status = 200, body = AuditResponse)))]
async fn audit(
    State(auth): State<Arc<Auth>>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditResponse>, ApiError> {
    let Query(q) = q.map_err(|e| bad_query(&e))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(
            ApiError::new(ErrorCode::InvalidArgument, "limit must be between 1 and 1000").reason("invalid_query"),
        );
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::new(ErrorCode::InvalidArgument, "offset must not be negative").reason("invalid_query"));
    }
    let entries = auth
        .store
        .audit_log(&q.filter()?, limit, offset)
        .await
        .map_err(|e| store_error(&e))?;
    Ok(Json(AuditResponse { entries }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_padded_time_filter_is_refused_by_name() {
        for (since, until, field) in [
            ("", "2026-01-01T00:00:00Z", "since"),
            ("2026-01-01T00:00:00Z", "", "until"),
            ("2026-01-01T00:00:00Z", " 2026-01-01T00:00:00Z", "until"),
        ] {
            let q = AuditQuery {
                actor: None,
                action: None,
                since: Some(since.into()),
                until: Some(until.into()),
                limit: None,
                offset: None,
            };
            let e = q
                .filter()
                .err()
                .unwrap_or_else(|| panic!("{since:?} {until:?} accepted"));
            assert!(e.message.contains(field), "{}", e.message);
        }
        let ok = AuditQuery {
            actor: Some("  ".into()),
            action: None,
            since: Some("2026-01-01T00:00:00Z".into()),
            until: None,
            limit: None,
            offset: None,
        };
        let f = ok.filter().unwrap();
        assert!(f.actor.is_none() && f.since_ms.is_some() && f.until_ms.is_none());
    }

    #[test]
    fn text_filters_are_bounded_in_characters_and_refuse_control_characters() {
        let q = |actor: &str| AuditQuery {
            actor: Some(actor.into()),
            action: None,
            since: None,
            until: None,
            limit: None,
            offset: None,
        };
        // 256 characters of two bytes each: allowed, as the schema says.
        assert!(q(&"é".repeat(256)).filter().is_ok());
        assert!(q(&"é".repeat(257)).filter().is_err());
        let e = q("¾\u{7}I\u{11}m").filter().err().unwrap();
        assert!(e.message.contains("actor"), "{}", e.message);
        let pattern = regex::Regex::new(&input::text_schema(MAX_FILTER, false, false).pattern.unwrap()).unwrap();
        assert!(!pattern.is_match("¾\u{7}I"));
    }
}
