//! SLA reports: `GET /api/v1/reports/sla?period=30d&group_by=<label>&format=json|csv`,
//! the uptime of every target over the period from the collector's rolled-up
//! history, per target, per group (the targets sharing a label's value) and
//! overall, weighted by checks. Maintenance windows and paused targets are
//! left out by construction: their time has no checks in the history.
//! Uptime is as seen from this instance's location.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use pantau_core::error::{ApiError, ErrorCode};
use pantau_proto::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::api::bad_query;
use crate::input;
use crate::targets::{Client, fetch_history, period};

/// Histories fetched at once.
const CONCURRENCY: usize = 8;

#[derive(Clone)]
struct Reports {
    collector: Client,
    location: String,
}

pub fn router<S: Clone + Send + Sync + 'static>(ctx: &pantau_core::service::Context) -> Router<S> {
    Router::new()
        .route("/api/v1/reports/sla", get(sla))
        .with_state(Reports {
            collector: Client::new(ctx.channel(&ctx.config.gateway.collector_url)),
            location: ctx.config.instance.location.clone(),
        })
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(sla), components(schemas(SlaReport, SlaTarget, SlaGroup, SlaTotals)))]
pub struct Doc;

/// The report's parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SlaQuery {
    /// How far back, e.g. `7d`, `30d`, `90d` (default 30d; at most 400d).
    #[param(schema_with = crate::targets::period_schema)]
    pub period: Option<String>,
    /// A label key: one group per value (targets without it in `(none)`);
    /// 1–64 characters, no control characters.
    #[param(schema_with = group_by_schema)]
    pub group_by: Option<String>,
    /// `json` (default) or `csv`.
    #[param(schema_with = format_schema)]
    pub format: Option<String>,
}

fn format_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::enum_schema(&["json", "csv"]))
}

/// Checks and uptime of a set of targets.
#[derive(Debug, Default, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct SlaTotals {
    pub checks: u64,
    pub up: u64,
    /// `up / checks * 100`; null without checks.
    pub uptime_percent: Option<f64>,
}

impl SlaTotals {
    fn add(&mut self, checks: u64, up: u64) {
        self.checks += checks;
        self.up += up;
        self.uptime_percent = (self.checks > 0).then(|| self.up as f64 * 100.0 / self.checks as f64);
    }
}

/// One target's line.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SlaTarget {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub totals: SlaTotals,
}

/// One group's line.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SlaGroup {
    /// `<label>=<value>`, or `<label>=(none)`.
    pub group: String,
    pub targets: usize,
    #[serde(flatten)]
    pub totals: SlaTotals,
}

/// Longest `group_by`, in characters (a label key is at most 64 bytes).
const GROUP_BY_MAX: usize = pantau_config::types::limits::LABEL_KEY;

fn group_by_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    let mut o = crate::input::text_schema(GROUP_BY_MAX, false, false);
    o.min_length = Some(1);
    crate::input::schema(o)
}

/// The report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SlaReport {
    /// The period asked for, e.g. `30d`.
    pub period: String,
    /// Where the checks ran from.
    pub location: String,
    pub group_by: Option<String>,
    pub overall: SlaTotals,
    pub targets: Vec<SlaTarget>,
    pub groups: Vec<SlaGroup>,
}

/// The SLA report as JSON, or as CSV (`kind,id,name,targets,checks,up,uptime_percent`).
#[utoipa::path(get, path = "/api/v1/reports/sla", tag = "reports", params(SlaQuery),
    responses((status = 200, description = "JSON, or CSV (`kind,id,name,targets,checks,up,uptime_percent`) with `format=csv`",
            content((SlaReport = "application/json"), (String = "text/csv"))),
        (status = 400, description = "a bad parameter, named"), (status = 401), (status = 403),
        (status = 503, description = "the collector is unavailable")))]
async fn sla(State(r): State<Reports>, q: Result<Query<SlaQuery>, QueryRejection>) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| bad_query(&e))?;
    let span = period(Some(q.period.as_deref().unwrap_or("30d")))?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "`format` must be json or csv, not `{}`",
                    pantau_config::types::quote(other)
                ),
            )
            .reason("invalid_query"));
        }
    };
    if let Some(k) = &q.group_by
        && (k.is_empty() || k.chars().count() > GROUP_BY_MAX || k.chars().any(char::is_control))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "`group_by` must be a label key of 1–64 characters without control characters",
        )
        .reason("invalid_query"));
    }
    let targets = r
        .collector
        .clone()
        .list_targets(pb::ListTargetsRequest {})
        .await
        .map_err(|s| crate::grpc_error(&s, "collector"))?
        .into_inner()
        .targets;
    let histories: Vec<Result<(pb::Target, u64, u64), ApiError>> = futures::stream::iter(targets)
        .map(|t| {
            let mut c = r.collector.clone();
            async move {
                let h = fetch_history(&mut c, t.id.clone(), span, Some("hour")).await?;
                Ok((t, h.checks, h.up))
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let mut report = SlaReport {
        period: pantau_config::duration::format(span),
        location: r.location.clone(),
        group_by: q.group_by.clone(),
        overall: SlaTotals::default(),
        targets: Vec::new(),
        groups: Vec::new(),
    };
    let mut groups: BTreeMap<String, (usize, SlaTotals)> = BTreeMap::new();
    for h in histories {
        let (t, checks, up) = h?;
        let mut totals = SlaTotals::default();
        totals.add(checks, up);
        report.overall.add(checks, up);
        if let Some(key) = &q.group_by {
            let value = t.labels.get(key).map_or("(none)", String::as_str);
            let g = groups.entry(format!("{key}={value}")).or_default();
            g.0 += 1;
            g.1.add(checks, up);
        }
        let name = if t.name.is_empty() { t.id.clone() } else { t.name };
        report.targets.push(SlaTarget { id: t.id, name, totals });
    }
    report.groups = groups
        .into_iter()
        .map(|(group, (targets, totals))| SlaGroup { group, targets, totals })
        .collect();
    if csv {
        return to_csv(&report);
    }
    Ok(Json(report).into_response())
}

fn to_csv(r: &SlaReport) -> Result<Response, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let pct = |t: &SlaTotals| t.uptime_percent.map_or_else(String::new, |p| format!("{p:.4}"));
    let mut rows: Vec<[String; 7]> = vec![[
        "kind".into(),
        "id".into(),
        "name".into(),
        "targets".into(),
        "checks".into(),
        "up".into(),
        "uptime_percent".into(),
    ]];
    for t in &r.targets {
        let tot = &t.totals;
        rows.push([
            "target".into(),
            t.id.clone(),
            t.name.clone(),
            "1".into(),
            tot.checks.to_string(),
            tot.up.to_string(),
            pct(tot),
        ]);
    }
    for g in &r.groups {
        let tot = &g.totals;
        rows.push([
            "group".into(),
            g.group.clone(),
            String::new(),
            g.targets.to_string(),
            tot.checks.to_string(),
            tot.up.to_string(),
            pct(tot),
        ]);
    }
    let o = &r.overall;
    rows.push([
        "overall".into(),
        String::new(),
        String::new(),
        r.targets.len().to_string(),
        o.checks.to_string(),
        o.up.to_string(),
        pct(o),
    ]);
    for row in rows {
        w.write_record(&row).map_err(internal)?;
    }
    let body = w.into_inner().map_err(|e| internal(e.error()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"pantau-sla.csv\""),
        ],
        body,
    )
        .into_response())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "cannot write the SLA report as CSV");
    ApiError::new(ErrorCode::Internal, "cannot write the report as CSV")
}
