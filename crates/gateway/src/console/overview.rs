//! `GET /console`: every target with its state per location, latency and
//! uptime, filtered, searched and paged on the server (`?q=&state=&type=&
//! label=&location=&page=`). htmx asks for the table alone (`HX-Request`)
//! when a filter changes; the page's script then follows the page's targets
//! over the WebSocket hub and changes their rows as results arrive.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use pantau_config::types::quote;

use super::Console;
use super::model::{self, FilterQuery, OverviewPage};
use super::page::{SignedIn, User, fail, render, urlencode};
use crate::labels::CheckKind;

pub fn router() -> Router<Console> {
    Router::new().route("/console", get(overview))
}

/// The filters as a query string, without the page: for the page links.
fn base_query(q: &FilterQuery) -> String {
    [
        ("q", &q.q),
        ("state", &q.state),
        ("type", &q.kind),
        ("label", &q.label),
        ("location", &q.location),
    ]
    .iter()
    .filter_map(|(k, v)| {
        v.as_deref()
            .filter(|v| !v.is_empty())
            .map(|v| format!("{k}={}", urlencode(v)))
    })
    .collect::<Vec<_>>()
    .join("&")
}

/// One page of the overview, with uptimes.
pub async fn load(c: &Console, q: &FilterQuery) -> Result<OverviewPage, pantau_core::error::ApiError> {
    let f = q.check()?;
    let targets = c.model.targets().await?;
    let latest = c.app.feed.latest_by_target();
    let mut p = model::page(&targets, &latest, &f);
    let ids: Vec<String> = p.rows.iter().map(|r| r.id.clone()).collect();
    let uptimes = c.model.uptimes(&ids).await;
    for r in &mut p.rows {
        if let Some(u) = uptimes.get(&r.id) {
            r.uptime = *u;
        }
    }
    Ok(p)
}

async fn overview(
    State(c): State<Console>,
    SignedIn(user): SignedIn,
    headers: HeaderMap,
    q: Result<Query<FilterQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad_filters(&e.body_text(), &user),
    };
    let p = match load(&c, &q).await {
        Ok(p) => p,
        Err(e) => return fail(e.status, e.message, Some(&user)),
    };
    let template = if headers.contains_key("hx-request") {
        "overview_rows.html"
    } else {
        "overview.html"
    };
    let kinds: Vec<&str> = CheckKind::ALL
        .iter()
        .filter(|k| **k != CheckKind::Unspecified)
        .map(|k| k.as_str())
        .collect();
    render(
        template,
        minijinja::context! {
            user,
            p,
            q,
            base => base_query(&q),
            kinds,
            states => model::State::ALL.map(model::State::as_str),
            ids => p.rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(","),
        },
    )
}

fn bad_filters(why: &str, user: &User) -> Response {
    fail(
        axum::http::StatusCode::BAD_REQUEST,
        format!("the filters are not valid: {}", quote(why)),
        Some(user),
    )
}
