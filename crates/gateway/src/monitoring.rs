//! Metrics and performance:
//!
//! - `GET  /api/v1/monitoring/metrics`: system metrics (the hosts' samples
//!   from the bus), application metrics (the gateway's own), business metrics
//!   (targets up and down, locations) and the latest custom samples;
//! - `POST /api/v1/monitoring/metrics` `{"metric_name", "value", "labels"}`
//!   (or a list of them): custom samples, published on the bus as
//!   `pantau.metric.<name>` so alert rules can use them;
//! - `GET  /api/v1/monitoring/performance?period=1h&metric=response_time[&target=ID]`:
//!   a time series from the collector's rolled-up history.

use crate::input::bad;
use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use pantau_core::bus::{publish_proto, subject};
use pantau_core::error::{ApiError, ErrorCode};
use pantau_core::time::to_timestamp;
use pantau_proto::v1 as pb;
use pantau_proto::v1::collector_service_client::CollectorServiceClient;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::{bad_query, invalid_body};
use crate::auth::Principal;
use crate::targets::{HistoryView, fetch_history, period};
use crate::view::MetricView;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/monitoring/metrics", get(current).post(custom))
        .route("/api/v1/monitoring/performance", get(performance))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(current, custom, performance),
    components(schemas(
        MetricsView,
        Application,
        Business,
        MetricView,
        CustomSample,
        CustomBody,
        Accepted,
        Series
    ))
)]
pub struct Doc;

static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Marks the gateway's start, for its uptime.
pub fn mark_start() {
    STARTED.get_or_init(Instant::now);
}

/// The answer of `GET /api/v1/monitoring/metrics`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricsView {
    /// The latest host samples (cpu_usage, memory_usage, disk_usage, …).
    pub system: Vec<MetricView>,
    pub application: Application,
    pub business: Business,
    /// The latest custom samples, posted through this API.
    pub custom: Vec<MetricView>,
}

/// The gateway itself.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Application {
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub websocket_clients: usize,
    pub websocket_capacity: usize,
    /// Metric series kept (at most 10000).
    pub metric_series: usize,
}

/// What is watched.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Business {
    /// Target and location pairs with a latest result.
    pub results: usize,
    pub up: usize,
    pub down: usize,
    /// Up results in percent (0 when there are none).
    pub availability_percent: f64,
    pub targets: usize,
    pub locations: Vec<String>,
}

/// Current system, application and business metrics.
#[utoipa::path(get, path = "/api/v1/monitoring/metrics", tag = "monitoring",
    responses((status = 200, body = MetricsView)))]
async fn current(State(s): State<AppState>) -> Json<MetricsView> {
    let latest = s.feed.latest();
    let up = latest
        .iter()
        .filter(|r| r.status == crate::labels::CheckStatus::Up)
        .count();
    let mut targets: Vec<&str> = latest.iter().map(|r| r.target_id.as_str()).collect();
    targets.sort_unstable();
    targets.dedup();
    let mut locations: Vec<String> = latest.iter().map(|r| r.location.clone()).collect();
    locations.sort_unstable();
    locations.dedup();
    let (custom, system): (Vec<_>, Vec<_>) = s.feed.metrics().into_iter().partition(|m| m.source.starts_with("api:"));
    let capacity = s.ctx.config.gateway.dashboard.max_connections;
    Json(MetricsView {
        system,
        application: Application {
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: STARTED.get().map_or(0, |t| t.elapsed().as_secs()),
            websocket_clients: capacity - s.ws_slots.available_permits(),
            websocket_capacity: capacity,
            metric_series: s.feed.metric_series(),
        },
        business: Business {
            results: latest.len(),
            up,
            down: latest.len() - up,
            availability_percent: if latest.is_empty() {
                0.0
            } else {
                up as f64 * 100.0 / latest.len() as f64
            },
            targets: targets.len(),
            locations,
        },
        custom,
    })
}

/// One custom sample.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomSample {
    /// Letters, digits, `_` and `:`, not starting with a digit; at most 128.
    #[schema(pattern = "^[A-Za-z_:][A-Za-z0-9_:]{0,127}$")]
    pub metric_name: String,
    pub value: f64,
    /// At most 20 labels; names letters, digits and `_`, not starting with
    /// a digit, at most 128; values at most 256 characters.
    #[serde(default)]
    #[schema(schema_with = labels_schema)]
    pub labels: BTreeMap<String, String>,
}

fn labels_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    let value = ObjectBuilder::new().schema_type(Type::String).max_length(Some(256));
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Za-z_][A-Za-z0-9_]{0,127}$"));
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(20))
        .additional_properties(Some(AdditionalProperties::RefOr(crate::input::schema(value.build()))))
        .build();
    o.property_names = Some(Box::new(utoipa::openapi::Schema::Object(name.build())));
    crate::input::schema(o)
}

/// One sample or a list of 1–1000.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CustomBody {
    One(CustomSample),
    Many(Vec<CustomSample>),
}

impl utoipa::PartialSchema for CustomBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder};
        let one = utoipa::openapi::Ref::from_schema_name("CustomSample");
        let many = ArrayBuilder::new()
            .items(one.clone())
            .min_items(Some(1))
            .max_items(Some(1000));
        utoipa::openapi::RefOr::T(utoipa::openapi::Schema::OneOf(
            OneOfBuilder::new().item(one).item(many).build(),
        ))
    }
}

impl utoipa::ToSchema for CustomBody {}

/// How many samples were published.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub accepted: usize,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

fn check(i: usize, m: &CustomSample) -> Result<(), ApiError> {
    let at = |field: &str| format!("[{i}].{field}");
    if !valid_name(&m.metric_name) {
        return Err(bad(
            "invalid_body",
            format!(
                "{} `{}` must be letters, digits, `_` or `:`, not starting with a digit, at most 128",
                at("metric_name"),
                m.metric_name
            ),
        ));
    }
    if !m.value.is_finite() {
        return Err(bad("invalid_body", format!("{} must be a finite number", at("value"))));
    }
    if m.labels.len() > 20 {
        return Err(bad("invalid_body", format!("{} has more than 20 labels", at("labels"))));
    }
    for (k, v) in &m.labels {
        if !valid_name(k) || k.contains(':') {
            return Err(bad(
                "invalid_body",
                format!("{} `{k}` is not a label name (letters, digits, `_`)", at("labels")),
            ));
        }
        if v.chars().count() > 256 {
            return Err(bad(
                "invalid_body",
                format!("{}.{k} is longer than 256 characters", at("labels")),
            ));
        }
    }
    Ok(())
}

/// Accepts custom metric samples and publishes them on the bus.
#[utoipa::path(post, path = "/api/v1/monitoring/metrics", tag = "monitoring", request_body = CustomBody,
    responses((status = 202, body = Accepted), (status = 503, description = "the bus did not take them")))]
async fn custom(
    State(s): State<AppState>,
    principal: Option<Extension<Principal>>,
    body: Result<Json<CustomBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let Json(body) = body.map_err(|e| invalid_body(&e))?;
    let samples = match body {
        CustomBody::One(m) => vec![m],
        CustomBody::Many(v) => v,
    };
    if samples.is_empty() || samples.len() > 1000 {
        return Err(bad("invalid_body", "send between 1 and 1000 samples"));
    }
    for (i, m) in samples.iter().enumerate() {
        check(i, m)?;
    }
    let source = format!(
        "api:{}",
        principal.map_or_else(|| "anonymous".to_owned(), |p| p.0.subject)
    );
    let now = Some(to_timestamp(SystemTime::now()));
    for m in &samples {
        let msg = pb::MetricSample {
            name: m.metric_name.clone(),
            value: m.value,
            labels: m.labels.clone().into_iter().collect(),
            observed_at: now,
            source: source.clone(),
        };
        publish_proto(s.ctx.bus.as_ref(), &subject::metric(&m.metric_name), &msg)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot publish a custom metric");
                ApiError::new(ErrorCode::Unavailable, "the bus did not take the samples; retry")
            })?;
        ::metrics::counter!(crate::metrics::CUSTOM_METRICS).increment(1);
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            accepted: samples.len(),
        }),
    ))
}

/// Parameters of a performance query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PerformanceQuery {
    /// How far back, e.g. `1h`, `24h`, `30d` (default 24h; a longer one than 400d is cut to 400d).
    #[param(schema_with = crate::targets::period_schema)]
    pub period: Option<String>,
    /// `response_time` (average, ms; the default), `response_time_p95` (ms),
    /// `uptime` (percent) or `checks` (count).
    #[param(schema_with = metric_schema)]
    pub metric: Option<String>,
    /// One target; without it, every target (at most 500) combined.
    #[param(schema_with = target_schema)]
    pub target: Option<String>,
    /// `minute` or `hour`.
    #[param(schema_with = crate::targets::resolution_schema)]
    pub resolution: Option<String>,
}

fn metric_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::input::schema(crate::input::enum_schema(&METRICS.map(|(m, _)| m)))
}

fn target_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::input::schema(crate::input::token_schema())
}

/// A time series.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Series {
    pub metric: String,
    pub unit: &'static str,
    pub period: String,
    pub resolution: &'static str,
    /// Seconds since the Unix epoch, one per point.
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
    /// Targets combined into the series.
    pub targets: usize,
}

const METRICS: [(&str, &str); 4] = [
    ("response_time", "ms"),
    ("response_time_p95", "ms"),
    ("uptime", "percent"),
    ("checks", "count"),
];

/// Sums per point start: (checks, up, latency×checks, max p95).
type Acc = BTreeMap<i64, (u64, u64, f64, f64)>;

fn add(acc: &mut Acc, h: &HistoryView) {
    for p in &h.points {
        let Some(t) = p.start.as_deref().and_then(|s| humantime::parse_rfc3339_weak(s).ok()) else {
            continue;
        };
        let secs = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let e = acc.entry(secs).or_default();
        e.0 += p.checks;
        e.1 += p.up;
        e.2 += p.latency_avg_ms * p.checks as f64;
        e.3 = e.3.max(p.latency_p95_ms);
    }
}

/// A time series of one metric from the rolled-up history.
#[utoipa::path(get, path = "/api/v1/monitoring/performance", tag = "monitoring", params(PerformanceQuery),
    responses((status = 200, body = Series), (status = 404, description = "no such target")))]
async fn performance(
    State(state): State<AppState>,
    query: Result<Query<PerformanceQuery>, QueryRejection>,
) -> Result<Json<Series>, ApiError> {
    let Query(q) = query.map_err(|e| bad_query(&e))?;
    let metric = q.metric.unwrap_or_else(|| "response_time".to_owned());
    let Some(&(_, unit)) = METRICS.iter().find(|(m, _)| *m == metric) else {
        let names: Vec<_> = METRICS.iter().map(|(m, _)| *m).collect();
        return Err(bad(
            "invalid_query",
            format!("metric `{metric}` is not known; use {}", names.join(", ")),
        ));
    };
    let span = period(q.period.as_deref())?;
    let mut c = CollectorServiceClient::new(state.collector.clone());
    let ids = match q.target {
        Some(t) => vec![crate::input::token("target", t).map_err(|e| bad("invalid_query", e.message))?],
        None => c
            .list_targets(pb::ListTargetsRequest {})
            .await
            .map_err(|st| crate::grpc_error(&st, "collector"))?
            .into_inner()
            .targets
            .into_iter()
            .take(500)
            .map(|t| t.id)
            .collect(),
    };
    let mut acc = Acc::new();
    let mut resolution = "minute";
    // Eight queries at a time.
    for chunk in ids.chunks(8) {
        let futs = chunk.iter().map(|id| {
            let mut c = c.clone();
            let res = q.resolution.clone();
            async move { fetch_history(&mut c, id.clone(), span, res.as_deref()).await }
        });
        for h in futures::future::join_all(futs).await {
            let h = h?;
            resolution = h.resolution;
            add(&mut acc, &h);
        }
    }
    let mut series = Series {
        metric,
        unit,
        period: humantime::format_duration(span).to_string(),
        resolution,
        timestamps: Vec::with_capacity(acc.len()),
        values: Vec::with_capacity(acc.len()),
        targets: ids.len(),
    };
    for (t, (checks, up, lat, p95)) in acc {
        let v = match series.metric.as_str() {
            "response_time" if checks > 0 => lat / checks as f64,
            "response_time_p95" => p95,
            "uptime" if checks > 0 => up as f64 * 100.0 / checks as f64,
            "checks" => checks as f64,
            _ => continue,
        };
        series.timestamps.push(t);
        series.values.push(v);
    }
    Ok(Json(series))
}
