//! `GET /console/targets/{id}`: one target: its state per location with the
//! failure reason in words, certificate expiry, breaker, the latency chart
//! (the page's script draws `GET /api/v1/targets/{id}/history` with uPlot,
//! hour and day ranges up to a year), its alerts, and for editors "run now"
//! "pause" (with a reason) / "resume", and "delete" (the REST routes).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use pantau_config::types::quote;
use pantau_proto::v1 as pb;

use super::Console;
use super::model::{self, TargetInfo};
use super::page::{SignedIn, fail, render};
use crate::labels::TargetSource;
use crate::view::{AlertView, CertView, CheckResultView};

pub fn router() -> Router<Console> {
    Router::new().route("/console/targets/{id}", get(target))
}

/// The certificate a result carries (http over TLS, or tls).
fn certificate(v: &CheckResultView) -> Option<CertView> {
    v.detail
        .http
        .as_ref()
        .and_then(|h| h.certificate.clone())
        .or_else(|| v.detail.tls.as_ref().and_then(|t| t.chain.first().cloned()))
}

async fn target(State(c): State<Console>, SignedIn(user): SignedIn, Path(id): Path<String>) -> Response {
    if !pantau_config::is_token(&id) {
        return fail(
            StatusCode::BAD_REQUEST,
            format!(
                "target id `{}` is not valid: use 1–128 letters, digits, `-` or `_`",
                quote(&id)
            ),
            Some(&user),
        );
    }
    let t = match c
        .collector
        .clone()
        .get_target(pb::GetTargetRequest { id: id.clone() })
        .await
    {
        Ok(t) => t.into_inner(),
        Err(s) => {
            let e = crate::grpc_error(&s, "collector");
            return fail(e.status, e.message, Some(&user));
        }
    };
    let info = TargetInfo::from(&t);
    let latest = c.app.feed.latest_where(|x| x == id);
    let results = latest.get(&id).cloned().unwrap_or_default();
    let row = model::row(&info, &results);
    let views: Vec<CheckResultView> = results.iter().map(CheckResultView::from).collect();
    let cert = views.iter().find_map(certificate);
    let uptime = c
        .model
        .uptimes(std::slice::from_ref(&id))
        .await
        .remove(&id)
        .unwrap_or_default();
    let alerts: Vec<AlertView> = c
        .alerts
        .clone()
        .list_alerts(pb::ListAlertsRequest {
            resource: id.clone(),
            page_size: 20,
            ..pb::ListAlertsRequest::default()
        })
        .await
        .map_or_else(
            |s| {
                tracing::warn!(error = %s.message(), "cannot list a target's alerts for the console");
                Vec::new()
            },
            |r| r.into_inner().alerts.into_iter().map(AlertView::from).collect(),
        );
    let deletable = TargetSource::from(t.source) == TargetSource::Api;
    let paused = t.paused.as_ref().map(crate::targets::PauseView::from);
    render(
        "target.html",
        minijinja::context! { user, t => row, uptime, cert, alerts, deletable, paused, interval => t.interval.map(|d| d.seconds) },
    )
}
