//! `GET /console/users` (admins only; 403 for others, who are not offered
//! the link): users with their roles, and API keys (never their secret).
//! Every change is the REST route, called by `assets/admin.js`: add a user
//! (`POST /api/v1/users`; the password is typed once and never shown
//! again), change a role (`PATCH /api/v1/users/{username}`), delete
//! (`DELETE …`), create an API key (`POST /api/v1/auth/keys`; the key is
//! shown once, in the page, from the answer) and revoke one (`DELETE
//! /api/v1/auth/keys/{id}`).

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;

use super::Console;
use super::page::{SignedIn, admin_only, fail, ms_time, render};
use crate::auth::routes::store_error;
use crate::auth::store::{ApiKey, User};
use crate::auth::{Role, Scope};

pub fn router() -> Router<Console> {
    Router::new().route("/console/users", get(page))
}

/// A user as the page shows them.
#[derive(Debug, Serialize)]
pub struct UserRow {
    pub username: String,
    pub role: &'static str,
    pub created: String,
    pub disabled: bool,
    /// The signed-in admin themself: not offered to delete or demote.
    pub me: bool,
}

/// An API key as the page shows it (its secret is never stored).
#[derive(Debug, Serialize)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub created_by: String,
    pub created: String,
    pub expires: Option<String>,
    pub last_used: Option<String>,
    /// `active`, `revoked` or `expired`.
    pub state: &'static str,
}

fn user_row(u: User, me: &str) -> UserRow {
    UserRow {
        me: u.username == me,
        role: u.role.as_str(),
        created: ms_time(u.created_at),
        disabled: u.disabled,
        username: u.username,
    }
}

fn key_row(k: ApiKey, now_ms: i64) -> KeyRow {
    let state = if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|e| e <= now_ms) {
        "expired"
    } else {
        "active"
    };
    KeyRow {
        state,
        created: ms_time(k.created_at),
        expires: k.expires_at.map(ms_time),
        last_used: k.last_used_at.map(ms_time),
        id: k.id,
        name: k.name,
        scopes: k.scopes,
        created_by: k.created_by,
    }
}

async fn page(State(c): State<Console>, SignedIn(user): SignedIn) -> Response {
    if let Some(refused) = admin_only(&user) {
        return refused;
    }
    let store = &c.app.auth.store;
    let (users, keys) = match tokio::try_join!(store.users(), store.keys()) {
        Ok(both) => both,
        Err(e) => {
            let e = store_error(&e);
            return fail(e.status, e.message, Some(&user));
        }
    };
    let now = crate::auth::store::now_ms();
    let users: Vec<UserRow> = users.into_iter().map(|u| user_row(u, &user.name)).collect();
    let keys: Vec<KeyRow> = keys.into_iter().map(|k| key_row(k, now)).collect();
    render(
        "users.html",
        minijinja::context! {
            user, users, keys,
            roles => [Role::Viewer, Role::Editor, Role::Admin].map(Role::as_str),
            scopes => Scope::ALL.map(Scope::as_str),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(revoked: Option<i64>, expires: Option<i64>) -> ApiKey {
        ApiKey {
            id: "k1".into(),
            name: "ci".into(),
            scopes: "monitoring:read".into(),
            created_by: "root".into(),
            created_at: 0,
            expires_at: expires,
            revoked_at: revoked,
            last_used_at: None,
        }
    }

    #[test]
    fn a_key_is_active_until_revoked_or_expired() {
        assert_eq!(key_row(key(None, None), 1_000).state, "active");
        assert_eq!(key_row(key(None, Some(2_000)), 1_000).state, "active");
        assert_eq!(key_row(key(None, Some(1_000)), 1_000).state, "expired");
        assert_eq!(key_row(key(Some(500), Some(2_000)), 1_000).state, "revoked");
        assert_eq!(key_row(key(None, None), 0).created, "1970-01-01T00:00:00.000Z");
    }
}
