//! `GET /console/audit[?actor=&action=&since=&until=&page=]` (admins only;
//! 403 for others, who are not offered the link): the audit log, newest
//! first, from the same store and filters as `GET /api/v1/audit`, paged on
//! the server. Times are RFC 3339, or a browser's `YYYY-MM-DDTHH:MM` read
//! as UTC.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use pantau_config::types::quote;
use pantau_core::error::ApiError;
use serde::{Deserialize, Serialize};

use super::Console;
use super::page::{SignedIn, User, admin_only, fail, ms_time, render, urlencode};
use crate::auth::routes::{AuditQuery, store_error};
use crate::auth::store::AuditEntry;
use crate::input::bad;

/// Entries per page.
const PAGE_SIZE: i64 = 50;
/// The last page one may ask for.
const MAX_PAGE: i64 = 100_000;

pub fn router() -> Router<Console> {
    Router::new().route("/console/audit", get(page))
}

/// The page's filters, as the query string gives them.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditPageQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub page: Option<String>,
}

/// `2026-12-03T02:00` (what a `datetime-local` field sends) as
/// `2026-12-03T02:00:00Z`; anything else as it is.
fn as_rfc3339(raw: Option<&str>) -> Option<String> {
    let t = raw?.trim();
    let local = t.len() == 16 && t.as_bytes().get(10) == Some(&b'T') && t.is_ascii();
    Some(if local { format!("{t}:00Z") } else { t.to_owned() })
}

impl AuditPageQuery {
    /// The REST route's query (its checks name the field) and the page.
    pub fn request(&self) -> Result<(AuditQuery, i64), ApiError> {
        let page = match self.page.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            None => 1,
            Some(p) => p
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    bad(
                        "invalid_query",
                        format!("page `{}` is not allowed: use a whole number from 1", quote(p)),
                    )
                })?,
        };
        let q = AuditQuery {
            actor: self.actor.clone(),
            action: self.action.clone(),
            since: as_rfc3339(self.since.as_deref()),
            until: as_rfc3339(self.until.as_deref()),
            limit: Some(PAGE_SIZE + 1),
            offset: Some((page - 1) * PAGE_SIZE),
        };
        q.filter()?;
        Ok((q, page))
    }
}

impl AuditPageQuery {
    /// The filters as a query string, for the pages' links.
    fn link(&self) -> String {
        let v = |s: &Option<String>| urlencode(s.as_deref().unwrap_or_default());
        format!(
            "actor={}&action={}&since={}&until={}",
            v(&self.actor),
            v(&self.action),
            v(&self.since),
            v(&self.until)
        )
    }
}

/// An entry as the page shows it.
#[derive(Debug, Serialize)]
pub struct Row {
    pub when: String,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

fn refused(e: &ApiError, user: &User) -> Response {
    fail(e.status, e.message.clone(), Some(user))
}

async fn page(
    State(c): State<Console>,
    SignedIn(user): SignedIn,
    q: Result<Query<AuditPageQuery>, QueryRejection>,
) -> Response {
    if let Some(refused) = admin_only(&user) {
        return refused;
    }
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            let msg = format!("the filters are not valid: {}", quote(&e.body_text()));
            return fail(StatusCode::BAD_REQUEST, msg, Some(&user));
        }
    };
    let (rq, page) = match q.request() {
        Ok(r) => r,
        Err(e) => return refused(&e, &user),
    };
    let filter = match rq.filter() {
        Ok(f) => f,
        Err(e) => return refused(&e, &user),
    };
    let store = &c.app.auth.store;
    let offset = rq.offset.unwrap_or(0);
    let (mut entries, actions) =
        match tokio::try_join!(store.audit_log(&filter, PAGE_SIZE + 1, offset), store.audit_actions()) {
            Ok(both) => both,
            Err(e) => return refused(&store_error(&e), &user),
        };
    let more = entries.len() as i64 > PAGE_SIZE;
    entries.truncate(PAGE_SIZE as usize);
    let rows: Vec<Row> = entries
        .into_iter()
        .map(|entry| Row {
            when: ms_time(entry.at),
            entry,
        })
        .collect();
    let filters = q.link();
    render(
        "audit.html",
        minijinja::context! { user, rows, actions, q, page, more, filters },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_rest_query() {
        let q = AuditPageQuery {
            actor: Some("ana".into()),
            action: Some("POST /api/v1/users".into()),
            since: Some("2026-12-03T02:00".into()),
            until: Some("2026-12-04T00:00:00+07:00".into()),
            page: Some("3".into()),
        };
        let (rq, page) = q.request().unwrap();
        assert_eq!(page, 3);
        assert_eq!(rq.offset, Some(100));
        assert_eq!(rq.since.as_deref(), Some("2026-12-03T02:00:00Z"));
        let f = rq.filter().unwrap();
        assert_eq!(f.actor, Some("ana"));
        assert_eq!(f.since_ms, Some(1_796_263_200_000));
        assert_eq!(f.until_ms, Some(1_796_317_200_000));
    }

    #[test]
    fn hostile_filters_are_refused_naming_the_field() {
        let huge = "z".repeat(1 << 20);
        let cases = [
            (
                "page",
                AuditPageQuery {
                    page: Some("0".into()),
                    ..Default::default()
                },
            ),
            (
                "page",
                AuditPageQuery {
                    page: Some("-1".into()),
                    ..Default::default()
                },
            ),
            (
                "page",
                AuditPageQuery {
                    page: Some(huge.clone()),
                    ..Default::default()
                },
            ),
            (
                "since",
                AuditPageQuery {
                    since: Some("yesterday".into()),
                    ..Default::default()
                },
            ),
            (
                "since",
                AuditPageQuery {
                    since: Some("2026-13-01T00:00".into()),
                    ..Default::default()
                },
            ),
            (
                "until",
                AuditPageQuery {
                    until: Some(huge.clone()),
                    ..Default::default()
                },
            ),
            (
                "actor",
                AuditPageQuery {
                    actor: Some(huge.clone()),
                    ..Default::default()
                },
            ),
            (
                "action",
                AuditPageQuery {
                    action: Some("POST\u{0}/x".into()),
                    ..Default::default()
                },
            ),
        ];
        for (field, q) in cases {
            let e = q.request().unwrap_err();
            assert!(e.message.starts_with(&format!("{field} `")), "{field}: {}", e.message);
            assert!(e.message.len() < 400, "{}", e.message.len());
        }
    }
}
