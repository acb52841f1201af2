//! The signed-in user of a console page, rendering templates, and the pages
//! that say what went wrong.

use std::sync::LazyLock;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::Environment;
use serde::Serialize;

use super::Console;
use crate::auth::session::Session;
use crate::auth::{Principal, Scope};

/// Every template, compiled once (HTML-escaped: their names end in `.html`).
static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("../../templates/base.html")),
        ("login.html", include_str!("../../templates/login.html")),
        ("error.html", include_str!("../../templates/error.html")),
        ("overview.html", include_str!("../../templates/overview.html")),
        ("overview_rows.html", include_str!("../../templates/overview_rows.html")),
        ("target.html", include_str!("../../templates/target.html")),
        ("alerts.html", include_str!("../../templates/alerts.html")),
        ("incidents.html", include_str!("../../templates/incidents.html")),
        ("status.html", include_str!("../../templates/status.html")),
        ("health.html", include_str!("../../templates/health.html")),
        ("routers.html", include_str!("../../templates/routers.html")),
        ("router.html", include_str!("../../templates/router.html")),
        ("locations.html", include_str!("../../templates/locations.html")),
        ("target_edit.html", include_str!("../../templates/target_edit.html")),
        ("rules.html", include_str!("../../templates/rules.html")),
        ("rules_check.html", include_str!("../../templates/rules_check.html")),
        ("channels.html", include_str!("../../templates/channels.html")),
        ("users.html", include_str!("../../templates/users.html")),
        ("audit.html", include_str!("../../templates/audit.html")),
    ] {
        // A template that does not compile fails the unit test below.
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "a console template does not compile");
        }
    }
    env
});

/// The security headers of every page: scripts and styles from this origin
/// only, never framed.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Renders `name` with `ctx` as a page that is never cached.
pub fn render<S: Serialize>(name: &str, ctx: S) -> Response {
    render_with(name, ctx, StatusCode::OK, "no-store")
}

/// Renders `name` with `ctx`, `status` and `cache` (a `Cache-Control` value).
pub fn render_with<S: Serialize>(name: &str, ctx: S, status: StatusCode, cache: &'static str) -> Response {
    let html = TEMPLATES.get_template(name).and_then(|t| t.render(ctx));
    match html {
        Ok(html) => (
            status,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
                (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
                (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
                (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "cannot render a console page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page cannot be rendered; the log says why",
            )
                .into_response()
        }
    }
}

/// A page saying what went wrong, with `status`.
pub fn fail(status: StatusCode, message: impl Into<String>, user: Option<&User>) -> Response {
    let message = message.into();
    render_with(
        "error.html",
        minijinja::context! { status => status.as_u16(), message, user },
        status,
        "no-store",
    )
}

/// The 403 page for anyone but an admin (`None` for an admin): admin pages
/// are not offered to others (their nav links are hidden) and refused if
/// forced.
pub fn admin_only(user: &User) -> Option<Response> {
    (!user.is_admin).then(|| fail(StatusCode::FORBIDDEN, "this page is for admins only", Some(user)))
}

/// Milliseconds since the Unix epoch as an RFC 3339 time.
pub fn ms_time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    pantau_core::time::rfc3339(t)
}

/// The signed-in user, as templates see them: what they may do decides
/// which controls are offered at all.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub name: String,
    /// The session's CSRF token (empty with a bearer token or auth off).
    pub csrf: String,
    pub can_write: bool,
    pub is_admin: bool,
    /// Whether this is a console session (sign-out is offered).
    pub session: bool,
}

impl User {
    fn of(p: &Principal, s: Option<&Session>) -> Self {
        Self {
            name: p.subject.clone(),
            csrf: s.map(|s| s.csrf.clone()).unwrap_or_default(),
            can_write: p.scopes.allows(Scope::Write),
            is_admin: p.scopes.allows(Scope::Admin),
            session: s.is_some(),
        }
    }
}

/// A console page's visitor, signed in; without a session (or a token) the
/// browser is sent to the sign-in page, and back here after it.
#[derive(Debug, Clone)]
pub struct SignedIn(pub User);

impl FromRequestParts<Console> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Self, Response> {
        let principal = parts.extensions.get::<Principal>();
        let session = parts.extensions.get::<Session>();
        match principal {
            Some(p) if !c.app.auth.enabled || session.is_some() || p.subject != "anonymous" => {
                Ok(Self(User::of(p, session)))
            }
            _ => {
                let next = parts.uri.path_and_query().map_or("/console", |p| p.as_str());
                let next = if next.starts_with("/console") && next.len() <= 512 {
                    next
                } else {
                    "/console"
                };
                let to = format!("/console/login?next={}", urlencode(next));
                Err(Redirect::to(&to).into_response())
            }
        }
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn urlencode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for name in [
            "base.html",
            "login.html",
            "error.html",
            "overview.html",
            "overview_rows.html",
            "target.html",
            "alerts.html",
            "incidents.html",
            "status.html",
            "health.html",
            "routers.html",
            "router.html",
            "locations.html",
            "target_edit.html",
            "rules.html",
            "rules_check.html",
            "channels.html",
            "users.html",
            "audit.html",
        ] {
            assert!(TEMPLATES.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn error_pages_escape_what_they_quote() {
        let r = fail(StatusCode::BAD_REQUEST, "<script>alert(1)</script>", None);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(
            r.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
    }

    #[test]
    fn urlencode_keeps_paths_and_escapes_the_rest() {
        assert_eq!(
            urlencode("/console/targets/a b?x=1&y"),
            "/console/targets/a%20b%3Fx%3D1%26y"
        );
    }
}
