//! Public status pages (`gateway.status_pages`), without login:
//!
//! - `GET /status/{slug}`: the page: each group's targets with their state
//!   over every location (`operational`, `degraded` when down from some
//!   locations, `down` from all, `unknown` before a result), 90 daily uptime
//!   bars from the rolled-up history, and incidents (alerts about the page's
//!   targets in the last 90 days, with their updates);
//! - `GET /api/v1/status-pages/{slug}`: the same as JSON.
//!
//! Only the targets placed on a page appear, by id and name; no URL,
//! address, label, failure text or alert wording unless the page sets
//! `show_errors` (latency unless `show_latency: false`). What comes from
//! the history is kept five minutes per target.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pantau_config::StatusPageConfig;
use pantau_core::error::{ApiError, ErrorCode};
use pantau_core::time::{rfc3339, to_timestamp};
use pantau_proto::v1 as pb;
use serde::Serialize;
use tokio::time::Instant;

use super::Console;
use super::model::{Loc, State as RowState};
use super::page::render_with;
use crate::labels::AlertState;
use crate::view::AlertView;

/// Days of history on a page.
pub const DAYS: usize = 90;
/// How long a target's days are reused.
const DAYS_FRESH: Duration = Duration::from_secs(300);

pub fn router() -> Router<Console> {
    Router::new()
        .route("/status/{slug}", get(html))
        .route("/api/v1/status-pages/{slug}", get(json))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(json),
    components(schemas(
        StatusPageView,
        GroupView,
        PublicTarget,
        DayView,
        IncidentView,
        UpdateView,
        PublicState
    ))
)]
pub struct Doc;

/// A target's state as a status page says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PublicState {
    Operational,
    /// Down from some locations, up from others.
    Degraded,
    Down,
    /// No result yet.
    Unknown,
}

impl From<RowState> for PublicState {
    fn from(s: RowState) -> Self {
        match s {
            RowState::Up => Self::Operational,
            RowState::Partial => Self::Degraded,
            RowState::Down => Self::Down,
            RowState::Pending => Self::Unknown,
        }
    }
}

/// One day's uptime.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DayView {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    /// Percent; absent when nothing was checked that day.
    pub uptime: Option<f64>,
    /// Checks that day, and how many were up.
    #[serde(skip)]
    pub checks: (u64, u64),
}

/// A target as the public sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicTarget {
    pub id: String,
    pub name: String,
    pub state: PublicState,
    /// The mean of the locations' latest latencies (unless the page hides it).
    pub latency_ms: Option<f64>,
    /// Why it is down, per location (only with `show_errors`).
    pub errors: Vec<String>,
    /// Over the page's 90 days.
    pub uptime_percent: Option<f64>,
    /// Oldest first.
    pub days: Vec<DayView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupView {
    pub name: String,
    pub targets: Vec<PublicTarget>,
}

/// One step of an incident.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UpdateView {
    /// firing, acknowledged or resolved.
    pub state: String,
    pub at: Option<String>,
    /// The operator's comment (only with `show_errors`).
    pub comment: String,
}

/// An alert about one of the page's targets.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IncidentView {
    pub target: String,
    /// The alert's summary (only with `show_errors`; otherwise the target's name and state).
    pub title: String,
    pub state: String,
    pub started_at: Option<String>,
    pub resolved_at: Option<String>,
    pub updates: Vec<UpdateView>,
}

/// A public status page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatusPageView {
    pub slug: String,
    pub title: String,
    pub description: Option<String>,
    /// The worst state on the page.
    pub overall: PublicState,
    pub groups: Vec<GroupView>,
    /// Newest first.
    pub incidents: Vec<IncidentView>,
    /// RFC 3339.
    pub generated_at: String,
}

/// Days and incidents, kept a while per target.
#[derive(Default)]
pub struct Cache {
    days: Mutex<HashMap<String, (Instant, Vec<DayView>, Option<f64>)>>,
    incidents: Mutex<HashMap<String, (Instant, Vec<AlertView>)>>,
}

/// The page `slug` of the configuration.
pub fn find<'a>(c: &'a Console, slug: &str) -> Option<&'a StatusPageConfig> {
    c.app.ctx.config.gateway.status_pages.iter().find(|p| p.slug == slug)
}

/// Whether `target` is on some public page (only those have badges).
pub fn is_public(c: &Console, target: &str) -> bool {
    c.app
        .ctx
        .config
        .gateway
        .status_pages
        .iter()
        .any(|p| p.targets().any(|t| t == target))
}

/// 90 days of `id`, from its hourly history, and the uptime over them.
pub async fn days(c: &Console, id: &str) -> (Vec<DayView>, Option<f64>) {
    if let Some((at, d, u)) = c
        .status
        .days
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(id)
        && at.elapsed() < DAYS_FRESH
    {
        return (d.clone(), *u);
    }
    let now = SystemTime::now();
    let today = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400;
    let first = today + 1 - DAYS as u64;
    let h = c
        .collector
        .clone()
        .get_history(pb::GetHistoryRequest {
            target_id: id.to_owned(),
            from: Some(to_timestamp(
                SystemTime::UNIX_EPOCH + Duration::from_secs(first * 86_400),
            )),
            to: Some(to_timestamp(now)),
            resolution: pb::Resolution::Hour.into(),
        })
        .await;
    let points = match h {
        Ok(h) => h.into_inner().points,
        Err(s) => {
            tracing::debug!(target = id, error = %s.message(), "no history for a status page");
            Vec::new()
        }
    };
    let mut per_day = vec![(0u64, 0u64); DAYS];
    for p in &points {
        let Some(t) = &p.start else { continue };
        let day = (t.seconds.max(0) as u64 / 86_400).saturating_sub(first) as usize;
        if let Some(d) = per_day.get_mut(day) {
            d.0 += p.checks;
            d.1 += p.up;
        }
    }
    let pct = |(checks, up): (u64, u64)| (checks > 0).then(|| up as f64 * 100.0 / checks as f64);
    let out: Vec<DayView> = per_day
        .iter()
        .enumerate()
        .map(|(i, d)| DayView {
            date: rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs((first + i as u64) * 86_400))[..10].to_owned(),
            uptime: pct(*d),
            checks: *d,
        })
        .collect();
    let total = per_day.iter().fold((0, 0), |a, d| (a.0 + d.0, a.1 + d.1));
    let uptime = pct(total);
    c.status
        .days
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(id.to_owned(), (Instant::now(), out.clone(), uptime));
    (out, uptime)
}

/// Alerts about `id` in the last 90 days with their transitions (at most 5).
async fn alerts_of(c: &Console, id: &str) -> Vec<AlertView> {
    if let Some((at, a)) = c
        .status
        .incidents
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(id)
        && at.elapsed() < DAYS_FRESH / 5
    {
        return a.clone();
    }
    let mut client = c.alerts.clone();
    let since = SystemTime::now() - Duration::from_secs(DAYS as u64 * 86_400);
    let list = client
        .list_alerts(pb::ListAlertsRequest {
            resource: id.to_owned(),
            since: Some(to_timestamp(since)),
            page_size: 5,
            ..pb::ListAlertsRequest::default()
        })
        .await
        .map(|r| r.into_inner().alerts)
        .unwrap_or_default();
    let mut out = Vec::new();
    for a in list {
        let full = client.get_alert(pb::GetAlertRequest { id: a.id.clone() }).await;
        out.push(AlertView::from(full.map_or(a, tonic::Response::into_inner)));
    }
    c.status
        .incidents
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(id.to_owned(), (Instant::now(), out.clone()));
    out
}

fn incident(a: AlertView, name: &str, show: bool) -> IncidentView {
    IncidentView {
        target: a.resource.clone(),
        title: if show {
            a.summary.clone()
        } else {
            format!(
                "{name}: {}",
                if a.state == AlertState::Resolved {
                    "was unavailable"
                } else {
                    "is unavailable"
                }
            )
        },
        state: a.state.as_str().to_owned(),
        started_at: a.started_at,
        resolved_at: a.resolved_at,
        updates: a
            .transitions
            .into_iter()
            .map(|t| UpdateView {
                state: t.state.as_str().to_owned(),
                at: t.at,
                comment: if show { t.comment } else { String::new() },
            })
            .collect(),
    }
}

/// The page's view: live state from the feed, days and incidents kept a while.
pub async fn view(c: &Console, page: &StatusPageConfig) -> StatusPageView {
    let ids: std::collections::HashSet<&str> = page.targets().collect();
    let latest = c.app.feed.latest_where(|t| ids.contains(t));
    let names: HashMap<String, String> = match c.model.targets().await {
        Ok(t) => t
            .iter()
            .filter(|t| ids.contains(t.id.as_str()))
            .map(|t| (t.id.clone(), t.name.clone()))
            .collect(),
        Err(_) => HashMap::new(),
    };
    let mut overall = RowState::Up;
    let mut groups = Vec::new();
    let mut incidents = Vec::new();
    for g in &page.groups {
        let mut targets = Vec::new();
        for id in &g.targets {
            let results = latest.get(id).map_or(&[][..], Vec::as_slice);
            let state = RowState::of(results);
            overall = overall.min(state);
            let locs: Vec<Loc> = results.iter().map(Loc::from).collect();
            let lat: Vec<f64> = locs.iter().filter_map(|l| l.latency_ms).collect();
            let (days, uptime) = days(c, id).await;
            let name = names.get(id).filter(|n| !n.is_empty()).unwrap_or(id).clone();
            incidents.extend(
                alerts_of(c, id)
                    .await
                    .into_iter()
                    .map(|a| incident(a, &name, page.show_errors)),
            );
            targets.push(PublicTarget {
                id: id.clone(),
                state: state.into(),
                latency_ms: (page.show_latency && !lat.is_empty()).then(|| lat.iter().sum::<f64>() / lat.len() as f64),
                errors: if page.show_errors {
                    locs.iter()
                        .filter(|l| !l.reason.is_empty())
                        .map(|l| format!("{}: {}", l.location, l.reason))
                        .collect()
                } else {
                    Vec::new()
                },
                uptime_percent: uptime,
                days,
                name,
            });
        }
        groups.push(GroupView {
            name: g.name.clone(),
            targets,
        });
    }
    incidents.sort_by(|a, b| b.started_at.cmp(&a.started_at));
    StatusPageView {
        slug: page.slug.clone(),
        title: page.title.clone(),
        description: page.description.clone(),
        overall: if overall == RowState::Pending && groups.iter().all(|g| g.targets.is_empty()) {
            PublicState::Unknown
        } else {
            overall.into()
        },
        groups,
        incidents,
        generated_at: rfc3339(SystemTime::now()),
    }
}

fn not_found(slug: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no status page `{}`", pantau_config::types::quote(slug)),
    )
}

async fn html(State(c): State<Console>, Path(slug): Path<String>) -> Response {
    let Some(page) = find(&c, &slug) else {
        return super::page::fail(StatusCode::NOT_FOUND, not_found(&slug).message, None);
    };
    let v = view(&c, page).await;
    render_with(
        "status.html",
        minijinja::context! { p => v },
        StatusCode::OK,
        "public, max-age=30",
    )
}

/// A public status page as JSON (no login).
#[utoipa::path(get, path = "/api/v1/status-pages/{slug}", tag = "status pages",
    params(("slug" = String, Path, description = "the page's `gateway.status_pages[].slug`")),
    responses((status = 200, body = StatusPageView), (status = 404, description = "no such page")))]
async fn json(State(c): State<Console>, Path(slug): Path<String>) -> Response {
    match find(&c, &slug) {
        Some(page) => Json(view(&c, page).await).into_response(),
        None => not_found(&slug).into_response(),
    }
}
