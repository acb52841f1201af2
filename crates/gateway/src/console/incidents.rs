//! `GET /console/incidents[?state=&page=]`: incidents (open, acknowledged,
//! resolved), newest first; `GET /console/incidents/{id}`: one incident with
//! its alerts and timeline. Acknowledging and commenting are the REST routes
//! (`POST /api/v1/incidents/{id}/acknowledge`, `…/comments`), offered to
//! editors only.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use pantau_config::types::quote;
use pantau_core::error::ApiError;
use pantau_proto::v1 as pb;
use serde::{Deserialize, Serialize};

use super::Console;
use super::page::{SignedIn, fail, render};
use crate::incidents::IncidentView;
use crate::input::bad;
use crate::labels::IncidentState;

/// Incidents per page.
const PAGE_SIZE: u32 = 50;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/console/incidents", get(list))
        .route("/console/incidents/{id}", get(one))
}

/// The filters, as the query string gives them.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    pub state: Option<String>,
    pub page: Option<String>,
}

fn invalid(field: &str, value: &str, allowed: &str) -> ApiError {
    bad(
        "invalid_query",
        format!("{field} `{}` is not allowed: {allowed}", quote(value)),
    )
}

impl IncidentQuery {
    /// The gRPC request and the page, or a 400 naming the first bad filter.
    pub fn request(&self) -> Result<(pb::ListIncidentsRequest, u32), ApiError> {
        let some = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let mut req = pb::ListIncidentsRequest {
            page_size: PAGE_SIZE,
            ..pb::ListIncidentsRequest::default()
        };
        if let Some(s) = some(&self.state) {
            let st = IncidentState::parse(&s)
                .ok_or_else(|| invalid("state", &s, &format!("use {}", IncidentState::choices())))?;
            req.states = vec![st.to_proto()];
        }
        let page = match some(&self.page) {
            None => 1,
            Some(p) => p
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| invalid("page", &p, "use a whole number from 1"))?,
        };
        if page > 1 {
            req.page_token = (u64::from(page - 1) * u64::from(PAGE_SIZE)).to_string();
        }
        Ok((req, page))
    }
}

async fn list(
    State(c): State<Console>,
    SignedIn(user): SignedIn,
    q: Result<Query<IncidentQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            let msg = format!("the filters are not valid: {}", quote(&e.body_text()));
            return fail(StatusCode::BAD_REQUEST, msg, Some(&user));
        }
    };
    let (req, page) = match q.request() {
        Ok(r) => r,
        Err(e) => return fail(e.status, e.message, Some(&user)),
    };
    let answer = match c.alerts.clone().list_incidents(req).await {
        Ok(a) => a.into_inner(),
        Err(s) => {
            let e = crate::grpc_error(&s, "alert engine");
            return fail(e.status, e.message, Some(&user));
        }
    };
    let incidents: Vec<IncidentView> = answer.incidents.into_iter().map(IncidentView::from).collect();
    render(
        "incidents.html",
        minijinja::context! {
            user, incidents, q, page,
            more => !answer.next_page_token.is_empty(),
            states => ["open", "acknowledged", "resolved"],
        },
    )
}

async fn one(State(c): State<Console>, SignedIn(user): SignedIn, Path(id): Path<String>) -> Response {
    if !pantau_config::is_token(&id) {
        let msg = format!(
            "incident id `{}` is not valid: use 1–128 letters, digits, `-` or `_`",
            quote(&id)
        );
        return fail(StatusCode::BAD_REQUEST, msg, Some(&user));
    }
    match c.alerts.clone().get_incident(pb::GetIncidentRequest { id }).await {
        Ok(i) => {
            let incident = IncidentView::from(i.into_inner());
            render("incidents.html", minijinja::context! { user, incident })
        }
        Err(s) => {
            let e = crate::grpc_error(&s, "alert engine");
            fail(e.status, e.message, Some(&user))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked_and_named() {
        let q = IncidentQuery {
            state: Some("acknowledged".into()),
            page: Some("3".into()),
        };
        let (req, page) = q.request().unwrap();
        assert_eq!(req.states, [pb::IncidentState::Acknowledged as i32]);
        assert_eq!((req.page_token.as_str(), page), ("100", 3));
        for (state, page, field) in [
            (Some("closed".to_owned()), None, "state"),
            (Some("x".repeat(10_000)), None, "state"),
            (None, Some("0".to_owned()), "page"),
            (None, Some("-1".to_owned()), "page"),
            (None, Some("9".repeat(400)), "page"),
        ] {
            let e = IncidentQuery { state, page }.request().unwrap_err();
            assert!(e.message.starts_with(field), "{}", e.message);
            assert!(e.message.len() < 300, "quoted briefly: {}", e.message.len());
        }
    }
}
