//! `GET /console/alerts[?state=&severity=&resource=&page=]`: alerts (firing,
//! acknowledged, resolved) with filters, the silences and the maintenance
//! windows (configured ones read-only; editors create and delete API ones
//! through `/api/v1/maintenance`); `GET
//! /console/alerts/{id}`: one alert with its transition history (who, when,
//! why). Acknowledge and resolve with a comment, and creating and expiring
//! silences, are the REST routes, offered to editors only.

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
use crate::alerts::SilenceView;
use crate::input::bad;
use crate::labels::{AlertState, Severity};
use crate::maintenance::MaintenanceView;
use crate::view::AlertView;

/// Alerts per page.
const PAGE_SIZE: u32 = 50;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/console/alerts", get(list))
        .route("/console/alerts/{id}", get(one))
}

/// The alert filters, as the query string gives them.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    pub state: Option<String>,
    pub severity: Option<String>,
    pub resource: Option<String>,
    pub page: Option<String>,
}

fn invalid(field: &str, value: &str, allowed: &str) -> ApiError {
    bad(
        "invalid_query",
        format!("{field} `{}` is not allowed: {allowed}", quote(value)),
    )
}

impl AlertQuery {
    /// The gRPC request, or a 400 naming the first bad filter.
    pub fn request(&self) -> Result<(pb::ListAlertsRequest, u32), ApiError> {
        let some = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let mut req = pb::ListAlertsRequest {
            page_size: PAGE_SIZE,
            ..pb::ListAlertsRequest::default()
        };
        if let Some(s) = some(&self.state) {
            let st =
                AlertState::parse(&s).ok_or_else(|| invalid("state", &s, &format!("use {}", AlertState::choices())))?;
            req.states = vec![st.to_proto()];
        }
        if let Some(s) = some(&self.severity) {
            let sv =
                Severity::parse(&s).ok_or_else(|| invalid("severity", &s, &format!("use {}", Severity::choices())))?;
            req.severities = vec![sv.to_proto()];
        }
        if let Some(r) = some(&self.resource) {
            if !pantau_config::is_token(&r) {
                return Err(invalid("resource", &r, "use a target, router or component id"));
            }
            req.resource = r;
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
    q: Result<Query<AlertQuery>, QueryRejection>,
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
    let mut client = c.alerts.clone();
    let answer = match client.list_alerts(req).await {
        Ok(a) => a.into_inner(),
        Err(s) => {
            let e = crate::grpc_error(&s, "alert engine");
            return fail(e.status, e.message, Some(&user));
        }
    };
    let silences: Vec<SilenceView> = match client
        .list_silences(pb::ListSilencesRequest { include_expired: false })
        .await
    {
        Ok(s) => s.into_inner().silences.into_iter().map(SilenceView::from).collect(),
        Err(s) => {
            let e = crate::grpc_error(&s, "alert engine");
            return fail(e.status, e.message, Some(&user));
        }
    };
    let windows: Vec<MaintenanceView> = match client
        .list_maintenance_windows(pb::ListMaintenanceWindowsRequest {})
        .await
    {
        Ok(w) => w.into_inner().windows.into_iter().map(MaintenanceView::from).collect(),
        Err(s) => {
            let e = crate::grpc_error(&s, "alert engine");
            return fail(e.status, e.message, Some(&user));
        }
    };
    let alerts: Vec<AlertView> = answer.alerts.into_iter().map(AlertView::from).collect();
    render(
        "alerts.html",
        minijinja::context! {
            user, alerts, silences, windows, q, page,
            more => !answer.next_page_token.is_empty(),
            states => ["firing", "acknowledged", "resolved"],
            severities => ["info", "warning", "critical"],
        },
    )
}

async fn one(State(c): State<Console>, SignedIn(user): SignedIn, Path(id): Path<String>) -> Response {
    if !pantau_config::is_token(&id) {
        let msg = format!(
            "alert id `{}` is not valid: use 1–128 letters, digits, `-` or `_`",
            quote(&id)
        );
        return fail(StatusCode::BAD_REQUEST, msg, Some(&user));
    }
    match c.alerts.clone().get_alert(pb::GetAlertRequest { id }).await {
        Ok(a) => {
            let alert = AlertView::from(a.into_inner());
            render("alerts.html", minijinja::context! { user, alert })
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
    fn filters_become_the_request() {
        let q = AlertQuery {
            state: Some("firing".into()),
            severity: Some("critical".into()),
            resource: Some("web".into()),
            page: Some("3".into()),
        };
        let (req, page) = q.request().unwrap();
        assert_eq!(page, 3);
        assert_eq!(req.page_token, "100");
        assert_eq!(req.states, [pb::AlertState::Firing as i32]);
        assert_eq!(req.resource, "web");
    }

    #[test]
    fn hostile_filters_are_refused_naming_the_field() {
        let huge = "z".repeat(1 << 20);
        for (field, q) in [
            (
                "state",
                AlertQuery {
                    state: Some("exploded".into()),
                    ..AlertQuery::default()
                },
            ),
            (
                "severity",
                AlertQuery {
                    severity: Some("apocalyptic".into()),
                    ..AlertQuery::default()
                },
            ),
            (
                "resource",
                AlertQuery {
                    resource: Some(huge.clone()),
                    ..AlertQuery::default()
                },
            ),
            (
                "resource",
                AlertQuery {
                    resource: Some("<script>".into()),
                    ..AlertQuery::default()
                },
            ),
            (
                "page",
                AlertQuery {
                    page: Some("0".into()),
                    ..AlertQuery::default()
                },
            ),
            (
                "page",
                AlertQuery {
                    page: Some("NaN".into()),
                    ..AlertQuery::default()
                },
            ),
            (
                "page",
                AlertQuery {
                    page: Some(huge.clone()),
                    ..AlertQuery::default()
                },
            ),
        ] {
            let e = q.request().unwrap_err();
            assert!(e.message.starts_with(&format!("{field} `")), "{}", e.message);
            assert!(e.message.len() < 400);
        }
    }
}
