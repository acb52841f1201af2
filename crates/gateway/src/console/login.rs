//! Sign-in and sign-out:
//!
//! - `GET  /console/login[?next=/console/…]`: the form;
//! - `POST /console/login` (form: `username`, `password`, `next`): checks the
//!   user's argon2 password, starts a session (`auth::session`), sets its
//!   cookie and goes to `next`; a cross-site post (an `Origin` that is not
//!   this host) is refused; audited as `console sign-in` with the name tried;
//! - `POST /console/logout` (with the CSRF token, as every write): ends the
//!   session and clears the cookie.

use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use pantau_config::types::quote;
use serde::Deserialize;

use super::Console;
use super::page::{fail, render_with};
use crate::auth::AuditNote;
use crate::auth::session::{self, Session};

/// The longest user name and password looked at.
const MAX_USERNAME: usize = 64;
const MAX_PASSWORD: usize = 1024;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/console/login", get(form).post(sign_in))
        .route("/console/logout", post(sign_out))
}

/// Where to go after signing in.
#[derive(Debug, Default, Deserialize)]
pub struct Next {
    pub next: Option<String>,
}

/// Only a console page of this host: never another site.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if (n == "/console" || n.starts_with("/console/") || n.starts_with("/console?"))
                && n.len() <= 512
                && !n.contains("//")
                && !n.contains('\\') =>
        {
            n
        }
        _ => "/console",
    }
}

fn login_page(next: &str, error: Option<&str>, status: StatusCode) -> Response {
    render_with("login.html", minijinja::context! { next, error }, status, "no-store")
}

async fn form(q: Result<Query<Next>, axum::extract::rejection::QueryRejection>) -> Response {
    let next = q.ok().and_then(|Query(n)| n.next);
    login_page(safe_next(next.as_deref()), None, StatusCode::OK)
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub next: Option<String>,
}

/// Whether `Origin` (when sent) names this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

fn with_note(mut r: Response, actor: &str) -> Response {
    r.extensions_mut().insert(AuditNote {
        actor: Some(quote(actor).into_owned()),
        detail: "console sign-in".to_owned(),
    });
    r
}

async fn sign_in(State(c): State<Console>, headers: HeaderMap, body: Result<Form<SignIn>, FormRejection>) -> Response {
    let Form(f) = match body {
        Ok(f) => f,
        Err(e) => {
            let msg = format!("the sign-in form is not valid: {}", quote(&e.body_text()));
            return login_page("/console", Some(&msg), StatusCode::BAD_REQUEST);
        }
    };
    let next = safe_next(f.next.as_deref()).to_owned();
    if !same_origin(&headers) {
        return with_note(
            fail(StatusCode::FORBIDDEN, "a sign-in from another site is refused", None),
            &f.username,
        );
    }
    if f.username.is_empty() || f.username.len() > MAX_USERNAME || f.password.len() > MAX_PASSWORD {
        let msg = format!("username must be 1–{MAX_USERNAME} bytes and password at most {MAX_PASSWORD} bytes");
        return with_note(login_page(&next, Some(&msg), StatusCode::BAD_REQUEST), &f.username);
    }
    let auth = &c.app.auth;
    let role = match auth.store.check_login(&f.username, &f.password).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            let page = login_page(&next, Some("wrong username or password"), StatusCode::UNAUTHORIZED);
            return with_note(page, &f.username);
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot check a console sign-in");
            let page = login_page(
                &next,
                Some("the gateway's store is unavailable; try again"),
                StatusCode::SERVICE_UNAVAILABLE,
            );
            return with_note(page, &f.username);
        }
    };
    let ttl = c.app.ctx.config.gateway.console.session_ttl;
    match auth.store.create_session(&f.username, role, ttl).await {
        Ok((id, _)) => {
            let secure = c.app.ctx.config.gateway.console.secure_cookies || session::over_tls(&headers);
            let mut r = Redirect::to(&next).into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, session::set_cookie(Some(&id), ttl, secure));
            with_note(r, &f.username)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store a console session");
            let page = login_page(
                &next,
                Some("the gateway's store is unavailable; try again"),
                StatusCode::SERVICE_UNAVAILABLE,
            );
            with_note(page, &f.username)
        }
    }
}

async fn sign_out(State(c): State<Console>, headers: HeaderMap, session: Option<Extension<Session>>) -> Response {
    if session.is_some()
        && let Some(id) = session::cookie(&headers)
        && let Err(e) = c.app.auth.store.end_session(&id).await
    {
        tracing::error!(error = %e, "cannot end a console session");
        return fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "the session could not be ended; try again",
            None,
        );
    }
    let secure = c.app.ctx.config.gateway.console.secure_cookies || session::over_tls(&headers);
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(None, std::time::Duration::ZERO, secure),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_console() {
        assert_eq!(safe_next(Some("/console/targets/web")), "/console/targets/web");
        assert_eq!(safe_next(Some("/console?state=down")), "/console?state=down");
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/console//evil",
            "/consolex",
            "/api/v1/users",
            "/console\\x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/console", "{bad}");
        }
        assert_eq!(safe_next(Some(&format!("/console/{}", "a".repeat(600)))), "/console");
        assert_eq!(safe_next(None), "/console");
    }

    #[test]
    fn cross_site_origins_are_told_apart() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(!same_origin(&h));
    }
}
