//! Who may call the gateway, and the record of what they changed.
//!
//! One middleware ([`guard`]) runs around every route:
//! 1. requests over `gateway.max_body_bytes` get 413;
//! 2. the bearer token (the `Authorization` header, or a `token` query
//!    parameter for browsers' WebSockets, removed before the route sees the
//!    query) is checked: a JWT signed with the configured algorithm, or an
//!    API key `pk_<id>_<secret>` looked up by the SHA-256 of the key;
//!    without one, the console's session cookie ([`session`]) is, and a
//!    write it authenticates must carry the session's `X-CSRF-Token`;
//! 3. the client (its token's subject, else its address) is rate limited;
//! 4. the route's scope is required: `monitoring:read` for reads and the
//!    WebSocket, `monitoring:write` for writes, `admin` for users, keys,
//!    tokens, the audit log and instance management;
//! 5. every write (any method but GET, HEAD and OPTIONS), allowed or not, is
//!    written to the audit log with who, what, when, from where and the status.
//!
//! Public: `/health`, `/api/v1/health`, `/api/v1/openapi.json`,
//! `POST /api/v1/auth/login`, push URLs (their token is the credential),
//! `/metrics`, `/healthz`, `/readyz`, `GET /sync/api/status`, the
//! instance-to-instance sync calls, which the sync API authenticates with
//! the instance token, and the browser's pages (`/`, `/console…`, which
//! send a visitor without a session to the sign-in page; `/assets/…`, the
//! public `/status/…` pages and `/badge/…`).

pub mod routes;
pub mod session;
pub mod store;

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use pantau_config::Config;
use pantau_core::error::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

/// Signing and checking JWTs: shared with every gRPC server (`pantau_core::auth`).
pub use pantau_core::auth::keys;
pub use pantau_core::auth::keys::{Claims, KeyError, Keys};
pub use store::{AuthStore, NewAudit};

use crate::metrics as m;

/// One permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Scope {
    /// Reads and the WebSocket stream.
    #[serde(rename = "monitoring:read")]
    Read,
    /// Acknowledge, resolve, custom metrics, create/update/delete.
    #[serde(rename = "monitoring:write")]
    Write,
    /// Users, API keys, tokens, the audit log, instances.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Self; 3] = [Self::Read, Self::Write, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "monitoring:read",
            Self::Write => "monitoring:write",
            Self::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Read => 1,
            Self::Write => 2,
            Self::Admin => 4,
        }
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn of(scopes: &[Scope]) -> Self {
        Self(scopes.iter().fold(0, |a, s| a | s.bit()))
    }

    pub fn all() -> Self {
        Self::of(&Scope::ALL)
    }

    /// `admin` holds every scope.
    pub fn allows(self, s: Scope) -> bool {
        self.0 & (s.bit() | Scope::Admin.bit()) != 0
    }

    pub fn contains_all(self, other: Self) -> bool {
        self.allows(Scope::Admin) || other.0 & !self.0 == 0
    }

    pub fn list(self) -> Vec<Scope> {
        Scope::ALL.into_iter().filter(|s| self.0 & s.bit() != 0).collect()
    }

    /// Parses space- or comma-separated scope names, naming an unknown one.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut out = 0;
        for word in s.split([' ', ',']).filter(|w| !w.is_empty()) {
            let scope = Scope::ALL
                .into_iter()
                .find(|x| x.as_str() == word)
                .ok_or_else(|| format!("unknown scope `{word}`; use monitoring:read, monitoring:write or admin"))?;
            out |= scope.bit();
        }
        Ok(Self(out))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.list().into_iter().map(Scope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `monitoring:read`.
    Viewer,
    /// `monitoring:read` and `monitoring:write`.
    Editor,
    /// Every scope.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "editor" => Some(Self::Editor),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn scopes(self) -> Scopes {
        match self {
            Self::Viewer => Scopes::of(&[Scope::Read]),
            Self::Editor => Scopes::of(&[Scope::Read, Scope::Write]),
            Self::Admin => Scopes::all(),
        }
    }
}

/// Who is calling; put in the request's extensions by [`guard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// A user name, `key:<id>`, `cli:<name>` or `anonymous` (auth off).
    pub subject: String,
    pub scopes: Scopes,
}

/// A handler's note for the audit entry of its request: who acted when the
/// request carried no token (a login), and what was done.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub actor: Option<String>,
    pub detail: String,
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// Any valid token.
    Authenticated,
    Need(Scope),
}

/// The access rule of `method path`.
pub fn access(method: &Method, path: &str) -> Access {
    let read = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    match path {
        "/health"
        | "/api/v1/health"
        | "/api/v1/openapi.json"
        | "/metrics"
        | "/healthz"
        | "/readyz"
        | "/api/v1/auth/login" => return Access::Public,
        "/api/v1/auth/whoami" => return Access::Authenticated,
        _ => {}
    }
    // Public status pages' JSON: only what the page shows.
    if path.starts_with("/api/v1/push/") || path.starts_with("/api/v1/status-pages/") || is_browser_page(path) {
        return Access::Public;
    }
    if let Some(rest) = path.strip_prefix("/sync/api/") {
        // Instance-to-instance calls carry the instance token, checked by the sync API.
        // `status` (id, name, location, role, epoch) is public: every instance answers it.
        if ["register", "heartbeat", "config", "status"].contains(&rest) {
            return Access::Public;
        }
        // Promote, demote and removing instances are admin's.
        return Access::Need(if read { Scope::Read } else { Scope::Admin });
    }
    if [
        "/api/v1/users",
        "/api/v1/auth/keys",
        "/api/v1/auth/tokens",
        "/api/v1/audit",
    ]
    .iter()
    .any(|p| path == *p || path.starts_with(&format!("{p}/")))
    {
        return Access::Need(Scope::Admin);
    }
    if read {
        Access::Need(Scope::Read)
    } else {
        Access::Need(Scope::Write)
    }
}

/// The browser's pages: the console (which checks its session itself and
/// sends a visitor without one to the sign-in page), its assets, public
/// status pages and badges.
pub fn is_browser_page(path: &str) -> bool {
    path == "/"
        || path == "/console"
        || ["/console/", "/assets/", "/status/", "/badge/"]
            .iter()
            .any(|p| path.starts_with(p))
}

/// Whether a request is a write to record.
pub fn audited(method: &Method, path: &str) -> bool {
    // Pushes are heartbeats (recorded as check results), and their path is a secret.
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        && !path.starts_with("/api/v1/push/")
        && (path.starts_with("/api/") || path.starts_with("/sync/api/") || path.starts_with("/console/"))
}

/// The authentication state shared by the middleware and the auth routes.
pub struct Auth {
    pub enabled: bool,
    pub keys: Keys,
    pub store: AuthStore,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    pub max_body: usize,
    pub login_ttl: std::time::Duration,
    pub max_token_ttl: std::time::Duration,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("enabled", &self.enabled)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Auth {
    pub fn new(config: &Config, keys: Keys, store: AuthStore) -> Self {
        let g = &config.gateway;
        let limiter = NonZeroU32::new(g.rate_limit.requests_per_second).map(|rps| {
            let burst = NonZeroU32::new(g.rate_limit.burst).unwrap_or(rps);
            RateLimiter::keyed(Quota::per_second(rps).allow_burst(burst))
        });
        if !g.auth.enabled {
            tracing::warn!(
                "gateway.auth.enabled is false: every client may read and change everything without a token"
            );
        }
        Self {
            enabled: g.auth.enabled,
            keys,
            store,
            limiter,
            max_body: g.max_body_bytes,
            login_ttl: g.auth.login_ttl,
            max_token_ttl: g.auth.max_token_ttl,
        }
    }

    /// Forgets idle clients' buckets (bounded memory).
    pub fn forget_idle_clients(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// The principal behind a bearer token, or why there is none.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, &'static str> {
        if token.starts_with("pk_") {
            return match self.store.check_key(token).await {
                Ok(Some((id, scopes))) => Ok(Principal {
                    subject: format!("key:{id}"),
                    scopes,
                }),
                Ok(None) => Err("unknown, revoked or expired API key"),
                Err(e) => {
                    tracing::error!(error = %e, "cannot check an API key");
                    Err("API keys cannot be checked right now")
                }
            };
        }
        match self.keys.verify(token) {
            Ok(c) => Ok(Principal {
                subject: c.sub,
                scopes: Scopes::parse(&c.scope).unwrap_or_default(),
            }),
            Err(e) => Err(match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the token has expired",
                jsonwebtoken::errors::ErrorKind::InvalidSignature => "the token's signature is not valid",
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => "the token's algorithm is not accepted",
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
                _ => "the token is malformed",
            }),
        }
    }

    fn limit(&self, key: &str) -> Result<(), u64> {
        let Some(l) = &self.limiter else { return Ok(()) };
        l.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + 1
        })
    }
}

fn error(e: ApiError) -> Response {
    e.into_response()
}

/// Takes the bearer token from the header, or from `?token=`. A `?token=`
/// is always removed from the URI, so routes and logs never see it, also
/// when the header is sent too (as proxies and client libraries often do):
/// then the header wins.
fn take_token(req: &mut Request) -> Option<String> {
    let from_query = strip_query_token(req);
    if let Some(h) = req.headers().get(header::AUTHORIZATION) {
        let v = h.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    from_query
}

/// Removes every `token=` parameter from the URI; the last one's value.
fn strip_query_token(req: &mut Request) -> Option<String> {
    let query = req.uri().query()?;
    let mut token = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("token=") {
            Some(t) => {
                token = Some(t.to_owned());
                false
            }
            None => true,
        })
        .collect();
    let token = token?;
    let path = req.uri().path();
    let new = if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", rest.join("&"))
    };
    if let Ok(uri) = new.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
    Some(token)
}

/// The middleware; see the module documentation.
pub async fn guard(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let remote = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
    let action = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| path.clone(), |p| p.as_str().to_owned());
    let audit = audited(&method, &path);

    let answer = check(&auth, &mut req, &method, &path, &remote).await;
    let (principal, response) = match answer {
        Ok(p) => {
            req.extensions_mut().insert(p.clone());
            // The backends' audit names the user the gateway calls them for.
            let user = p.subject.clone();
            let response = pantau_core::grpc::client::ON_BEHALF.scope(user, next.run(req)).await;
            (Some(p), response)
        }
        Err(resp) => (None, resp),
    };
    if audit {
        let note = response.extensions().get::<AuditNote>().cloned().unwrap_or_default();
        // A login names who tried; otherwise the token's subject.
        let actor = principal
            .map(|p| p.subject)
            .filter(|s| s != "anonymous")
            .or(note.actor)
            .unwrap_or_else(|| "anonymous".to_owned());
        let entry = NewAudit {
            actor: &actor,
            method: method.as_str(),
            path: &redact(&path),
            action: &format!("{method} {action}"),
            status: response.status().as_u16(),
            remote: &remote,
            detail: &note.detail,
        };
        if let Err(e) = auth.store.audit(&entry).await {
            metrics::counter!(m::AUDIT_FAILURES).increment(1);
            tracing::error!(error = %e, actor, path = entry.path, "cannot write the audit entry");
        }
    }
    response
}

/// Everything before the route: size, token, rate, scope.
async fn check(
    auth: &Auth,
    req: &mut Request,
    method: &Method,
    path: &str,
    remote: &str,
) -> Result<Principal, Response> {
    let too_big = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > auth.max_body);
    if too_big {
        return Err(error(
            ApiError::new(
                ErrorCode::ResourceExhausted,
                format!(
                    "the request body is larger than gateway.max_body_bytes ({} bytes)",
                    auth.max_body
                ),
            )
            .reason("body_too_large")
            .status(StatusCode::PAYLOAD_TOO_LARGE),
        ));
    }
    let rule = access(method, path);
    let token = take_token(req);
    // Signing in again over an old session needs no CSRF token.
    if auth.enabled
        && token.is_none()
        && path != "/console/login"
        && !path.starts_with("/assets/")
        && let Some(p) = from_session(auth, req, method).await?
    {
        return rate_and_scope(auth, rule, Some(p), path, remote);
    }
    let principal = if auth.enabled {
        match (&token, rule) {
            (Some(t), _) => match auth.authenticate(t).await {
                Ok(p) => Some(p),
                Err(why) if rule != Access::Public => {
                    metrics::counter!(m::AUTH_FAILURES, "reason" => reason_label(why)).increment(1);
                    return Err(unauthorized(why));
                }
                Err(_) => None,
            },
            (None, Access::Public) => None,
            (None, _) => {
                metrics::counter!(m::AUTH_FAILURES, "reason" => "missing").increment(1);
                return Err(unauthorized(
                    "a bearer token is required: send `Authorization: Bearer <token>` (or `?token=` on the WebSocket); POST /api/v1/auth/login gives one",
                ));
            }
        }
    } else {
        Some(Principal {
            subject: "anonymous".to_owned(),
            scopes: Scopes::all(),
        })
    };
    rate_and_scope(auth, rule, principal, path, remote)
}

/// The principal of the request's console session, if it has a live one
/// (put in the request as [`session::Session`] for the console); a write
/// without the session's CSRF token is refused.
async fn from_session(auth: &Auth, req: &mut Request, method: &Method) -> Result<Option<Principal>, Response> {
    let Some(id) = session::cookie(req.headers()) else {
        return Ok(None);
    };
    let s = match auth.store.session(&id).await {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "cannot check a console session");
            return Err(error(ApiError::new(
                ErrorCode::Unavailable,
                "sessions cannot be checked right now; try again",
            )));
        }
    };
    let write = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if write && !s.csrf_ok(req.headers()) {
        metrics::counter!(m::AUTH_FAILURES, "reason" => "csrf").increment(1);
        let mut r = error(
            ApiError::new(
                ErrorCode::PermissionDenied,
                "this write came with the console's session cookie but without its CSRF token (header X-CSRF-Token): reload the page and try again",
            )
            .reason("csrf"),
        );
        // Audited under the session's user: a forged write names whom it tried to act as.
        r.extensions_mut().insert(AuditNote {
            actor: Some(s.username),
            detail: "refused: no or a wrong CSRF token".to_owned(),
        });
        return Err(r);
    }
    let p = s.principal();
    req.extensions_mut().insert(s);
    Ok(Some(p))
}

/// The rate limit of the client, then the route's scope.
#[allow(clippy::result_large_err)] // the answer `check` gives, built once
fn rate_and_scope(
    auth: &Auth,
    rule: Access,
    principal: Option<Principal>,
    path: &str,
    remote: &str,
) -> Result<Principal, Response> {
    let exempt = matches!(path, "/metrics" | "/healthz" | "/readyz" | "/health" | "/api/v1/health");
    if !exempt {
        let key = principal
            .as_ref()
            .map_or_else(|| format!("ip:{remote}"), |p| format!("sub:{}", p.subject));
        if let Err(retry) = auth.limit(&key) {
            metrics::counter!(m::RATE_LIMITED).increment(1);
            let mut r = error(
                ApiError::new(
                    ErrorCode::ResourceExhausted,
                    format!("too many requests from this client; retry in {retry} s"),
                )
                .reason("rate_limited"),
            );
            if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Err(r);
        }
    }
    match (rule, principal) {
        (Access::Need(scope), Some(p)) if !p.scopes.allows(scope) => {
            metrics::counter!(m::AUTH_FAILURES, "reason" => "scope").increment(1);
            Err(error(ApiError::new(
                ErrorCode::PermissionDenied,
                format!(
                    "this needs the `{}` scope; the token has `{}`",
                    scope.as_str(),
                    p.scopes
                ),
            )))
        }
        (_, Some(p)) => Ok(p),
        (_, None) => Ok(Principal {
            subject: "anonymous".to_owned(),
            scopes: Scopes::default(),
        }),
    }
}

fn reason_label(why: &str) -> &'static str {
    if why.contains("expired") {
        "expired"
    } else if why.contains("signature") {
        "signature"
    } else if why.contains("algorithm") {
        "algorithm"
    } else if why.contains("API key") {
        "api_key"
    } else {
        "malformed"
    }
}

fn unauthorized(why: &str) -> Response {
    let mut r = error(ApiError::new(ErrorCode::Unauthenticated, why));
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"pantau\""),
    );
    r
}

/// A path fit for logs and the audit log: push tokens are hidden.
pub fn redact(path: &str) -> String {
    match path.strip_prefix("/api/v1/push/") {
        Some(_) => "/api/v1/push/***".to_owned(),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_print_and_imply() {
        let s = Scopes::parse("monitoring:read,monitoring:write").unwrap();
        assert_eq!(s.to_string(), "monitoring:read monitoring:write");
        assert!(s.allows(Scope::Write) && !s.allows(Scope::Admin));
        assert!(
            Scopes::of(&[Scope::Admin]).allows(Scope::Read),
            "admin holds every scope"
        );
        assert!(
            Scopes::parse("monitoring:delete")
                .unwrap_err()
                .contains("monitoring:delete")
        );
        assert!(Role::Editor.scopes().contains_all(Role::Viewer.scopes()));
        assert!(!Role::Viewer.scopes().contains_all(Role::Editor.scopes()));
    }

    #[test]
    fn routes_need_the_right_scope() {
        use Access::{Need, Public};
        let g = Method::GET;
        let p = Method::POST;
        assert_eq!(access(&g, "/api/v1/health"), Public);
        assert_eq!(access(&p, "/api/v1/auth/login"), Public);
        assert_eq!(access(&p, "/api/v1/push/abc"), Public);
        assert_eq!(access(&g, "/api/v1/monitoring/alerts"), Need(Scope::Read));
        assert_eq!(access(&g, "/api/v1/monitoring/events"), Need(Scope::Read));
        assert_eq!(
            access(&p, "/api/v1/monitoring/alerts/a/acknowledge"),
            Need(Scope::Write)
        );
        assert_eq!(access(&Method::DELETE, "/api/v1/targets/web"), Need(Scope::Write));
        assert_eq!(access(&g, "/api/v1/audit"), Need(Scope::Admin));
        assert_eq!(access(&p, "/api/v1/auth/keys"), Need(Scope::Admin));
        assert_eq!(access(&Method::DELETE, "/api/v1/users/ana"), Need(Scope::Admin));
        assert_eq!(access(&p, "/sync/api/promote"), Need(Scope::Admin));
        assert_eq!(access(&g, "/sync/api/status"), Public);
        assert_eq!(access(&g, "/sync/api/instances"), Need(Scope::Read));
        assert_eq!(access(&p, "/sync/api/heartbeat"), Public);
        assert!(audited(&p, "/api/v1/monitoring/alerts/a/resolve"));
        assert!(!audited(&p, "/api/v1/push/secret"));
        assert!(!audited(&g, "/api/v1/monitoring/alerts"));
    }

    #[test]
    fn query_token_is_taken_out_of_the_uri() {
        let mut req = Request::builder()
            .uri("/api/v1/monitoring/events?types=alert&token=abc.def.ghi&severity=critical")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(take_token(&mut req).as_deref(), Some("abc.def.ghi"));
        assert_eq!(
            req.uri().to_string(),
            "/api/v1/monitoring/events?types=alert&severity=critical"
        );
        assert_eq!(redact("/api/v1/push/s3cret"), "/api/v1/push/***");
    }
}
