//! Channel and delivery routes, answered by the notifier over gRPC
//! (`gateway.notifier_url`):
//!
//! - `GET  /api/v1/channels`: the configured channels, secrets masked, and
//!   the routes that send alerts to them;
//! - `GET  /api/v1/channel-types`: every channel type with its fields (which
//!   are required, which are secret), from the configuration's catalogue;
//! - `POST /api/v1/channels/{name}/test[?recipient=…]`: send a test notification now;
//! - `GET  /api/v1/deliveries?channel=&status=pending|delivered|failed&alert_key=&limit=`:
//!   deliveries, newest first, with every attempt.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use pantau_config::ChannelType;
use pantau_core::error::{ApiError, ErrorCode};
use pantau_core::grpc::Channel;
use pantau_core::time::{from_duration, from_timestamp, rfc3339};
use pantau_proto::v1 as pb;
use pantau_proto::v1::notifier_service_client::NotifierServiceClient;
use serde::{Deserialize, Serialize};

use crate::api::bad_query;
use crate::input;
use crate::labels::DeliveryStatus;

pub type Client = NotifierServiceClient<Channel>;

pub fn router<S: Clone + Send + Sync + 'static>(ctx: &pantau_core::service::Context) -> Router<S> {
    let client = Client::new(ctx.channel(&ctx.config.gateway.notifier_url));
    Router::new()
        .route("/api/v1/channels", get(channels))
        .route("/api/v1/channel-types", get(channel_types))
        .route("/api/v1/channels/{name}/test", post(test))
        .route("/api/v1/deliveries", get(deliveries))
        .with_state(client)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(channels, channel_types, test, deliveries),
    components(schemas(
        ChannelView,
        ChannelTypeView,
        ChannelFieldView,
        ChannelTypesResponse,
        ChannelsResponse,
        RouteView,
        TestView,
        DeliveryView,
        DeliveriesResponse,
        AttemptView
    ))
)]
pub struct Doc;

fn backend(status: &tonic::Status) -> ApiError {
    crate::grpc_error(status, "notifier")
}

fn ms(d: Option<&prost_types::Duration>) -> Option<f64> {
    d.and_then(from_duration).map(|d| d.as_secs_f64() * 1000.0)
}

fn when(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(from_timestamp).map(rfc3339)
}

/// Every channel type's name, as the schema's enum.
pub fn channel_type_names() -> Vec<&'static str> {
    ChannelType::ALL.iter().map(|t| t.as_str()).collect()
}

fn channel_type_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::enum_schema(&channel_type_names()))
}

/// A channel, secrets masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    pub name: String,
    #[serde(rename = "type")]
    #[schema(schema_with = channel_type_schema)]
    pub kind: String,
    pub target: String,
    pub settings: std::collections::BTreeMap<String, String>,
    /// Deliveries allowed per `rate_limit_period`; 0 is unlimited.
    pub rate_limit: u32,
    pub rate_limit_period_seconds: Option<f64>,
}

/// A route: alerts matching every condition go to `channels`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RouteView {
    /// Severities matched; empty means any.
    pub severities: Vec<String>,
    /// Labels that must be present with exactly these values.
    pub labels: std::collections::BTreeMap<String, String>,
    pub channels: Vec<String>,
}

/// One field of a channel type.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChannelFieldView {
    pub name: &'static str,
    pub required: bool,
    /// Shown as `***` in every answer.
    pub secret: bool,
    pub help: &'static str,
}

/// A channel type and the fields it takes besides `name`, `type` and the
/// common `template`, `rate_limit`, `rate_limit_period`, `group`, `group_wait`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChannelTypeView {
    #[serde(rename = "type")]
    #[schema(schema_with = channel_type_schema)]
    pub kind: &'static str,
    pub fields: Vec<ChannelFieldView>,
}

/// Every channel type.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelTypesResponse {
    pub types: Vec<ChannelTypeView>,
}

/// Every channel type with its fields.
pub fn channel_type_views() -> Vec<ChannelTypeView> {
    ChannelType::ALL
        .iter()
        .map(|t| ChannelTypeView {
            kind: t.as_str(),
            fields: t
                .fields()
                .iter()
                .map(|f| ChannelFieldView {
                    name: f.name,
                    required: f.required,
                    secret: f.secret,
                    help: f.help,
                })
                .collect(),
        })
        .collect()
}

#[utoipa::path(get, path = "/api/v1/channel-types", tag = "notifications",
    responses((status = 200, body = ChannelTypesResponse)))]
async fn channel_types() -> Json<ChannelTypesResponse> {
    Json(ChannelTypesResponse {
        types: channel_type_views(),
    })
}

/// Every channel, and the routes (a channel no route names receives nothing).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelsResponse {
    pub channels: Vec<ChannelView>,
    pub routes: Vec<RouteView>,
}

#[utoipa::path(get, path = "/api/v1/channels", tag = "notifications", responses((status = 200, body = ChannelsResponse)))]
async fn channels(State(mut c): State<Client>) -> Result<Json<ChannelsResponse>, ApiError> {
    Ok(Json(channel_list(&mut c).await?))
}

/// The channels (secrets masked by the notifier) and routes.
pub async fn channel_list(c: &mut Client) -> Result<ChannelsResponse, ApiError> {
    let answer = c
        .list_channels(pb::ListChannelsRequest {})
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    let channels = answer
        .channels
        .into_iter()
        .map(|ch| ChannelView {
            rate_limit_period_seconds: ms(ch.rate_limit_period.as_ref()).map(|m| m / 1000.0),
            name: ch.name,
            kind: ch.r#type,
            target: ch.target,
            settings: ch.settings.into_iter().collect(),
            rate_limit: ch.rate_limit,
        })
        .collect();
    let routes = answer
        .routes
        .into_iter()
        .map(|r| RouteView {
            severities: r.severities,
            labels: r.labels.into_iter().collect(),
            channels: r.channels,
        })
        .collect();
    Ok(ChannelsResponse { channels, routes })
}

/// Parameters of a test.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TestQuery {
    /// For channels with several recipients; default the first.
    pub recipient: Option<String>,
}

/// The outcome of a test notification.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestView {
    pub ok: bool,
    pub status_code: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    pub latency_ms: Option<f64>,
}

/// Sends a test notification through the channel now.
#[utoipa::path(post, path = "/api/v1/channels/{name}/test", tag = "notifications", params(("name" = String, Path), TestQuery),
    responses((status = 200, body = TestView)))]
async fn test(
    State(mut c): State<Client>,
    Path(name): Path<String>,
    q: Result<Query<TestQuery>, QueryRejection>,
) -> Result<Json<TestView>, ApiError> {
    let Query(q) = q.map_err(|e| bad_query(&e))?;
    let r = c
        .test_channel(pb::TestChannelRequest {
            channel: name,
            recipient: q.recipient.unwrap_or_default(),
        })
        .await
        .map_err(|s| backend(&s))?
        .into_inner();
    Ok(Json(TestView {
        ok: r.ok,
        status_code: r.status_code,
        error: r.error,
        latency_ms: ms(r.latency.as_ref()),
    }))
}

/// Filters of the delivery log.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    pub channel: Option<String>,
    /// `pending`, `delivered` or `failed`.
    #[param(schema_with = status_schema)]
    pub status: Option<String>,
    pub alert_key: Option<String>,
    /// Default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

const STATUSES: [DeliveryStatus; 3] = [
    DeliveryStatus::Pending,
    DeliveryStatus::Delivered,
    DeliveryStatus::Failed,
];

fn status_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::enum_schema(&STATUSES.map(DeliveryStatus::as_str)))
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempt: u32,
    pub at: Option<String>,
    pub status_code: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    pub latency_ms: Option<f64>,
}

/// A delivery with its attempts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub channel: String,
    #[schema(schema_with = channel_type_schema)]
    pub channel_type: String,
    pub recipient: String,
    pub alert_key: String,
    pub state: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub created_at: Option<String>,
    pub next_attempt_at: Option<String>,
    pub source: String,
    pub attempt_log: Vec<AttemptView>,
}

/// Deliveries, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveriesResponse {
    pub deliveries: Vec<DeliveryView>,
}

#[utoipa::path(get, path = "/api/v1/deliveries", tag = "notifications", params(DeliveriesQuery),
    responses((status = 200, body = DeliveriesResponse)))]
async fn deliveries(
    State(mut c): State<Client>,
    q: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Json<DeliveriesResponse>, ApiError> {
    let Query(q) = q.map_err(|e| bad_query(&e))?;
    let status = match q.status.as_deref() {
        None => 0,
        Some(st) => DeliveryStatus::parse(st).map(DeliveryStatus::to_proto).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidArgument,
                format!("status `{st}` is not allowed: use {}", DeliveryStatus::choices()),
            )
            .reason("invalid_query")
        })?,
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(
            ApiError::new(ErrorCode::InvalidArgument, "limit must be between 1 and 1000").reason("invalid_query"),
        );
    }
    let list = c
        .list_deliveries(pb::ListDeliveriesRequest {
            channel: q.channel.unwrap_or_default(),
            status,
            limit,
            alert_key: q.alert_key.unwrap_or_default(),
        })
        .await
        .map_err(|s| backend(&s))?
        .into_inner()
        .deliveries;
    let views: Vec<DeliveryView> = list
        .into_iter()
        .map(|d| DeliveryView {
            status: match DeliveryStatus::from(d.status) {
                DeliveryStatus::Unknown => DeliveryStatus::Pending,
                s => s,
            },
            created_at: when(d.created_at.as_ref()),
            next_attempt_at: when(d.next_attempt_at.as_ref()),
            attempt_log: d
                .attempt_log
                .iter()
                .map(|a| AttemptView {
                    attempt: a.attempt,
                    at: when(a.at.as_ref()),
                    status_code: a.status_code,
                    error: a.error.clone(),
                    latency_ms: ms(a.latency.as_ref()),
                })
                .collect(),
            id: d.id,
            channel: d.channel,
            channel_type: d.channel_type,
            recipient: d.recipient,
            alert_key: d.alert_key,
            state: d.state,
            attempts: d.attempts,
            source: d.source,
        })
        .collect();
    Ok(Json(DeliveriesResponse { deliveries: views }))
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    use super::*;

    #[test]
    fn every_channel_type_is_listed_with_its_fields_and_in_the_schema() {
        let types = channel_type_views();
        assert_eq!(types.len(), 19);
        for name in [
            "ntfy",
            "gotify",
            "pushover",
            "matrix",
            "mattermost",
            "google_chat",
            "opsgenie",
            "rocketchat",
            "signal",
            "sms",
        ] {
            let t = types
                .iter()
                .find(|t| t.kind == name)
                .unwrap_or_else(|| panic!("{name} is not listed"));
            assert!(t.fields.iter().any(|f| f.required), "{name} requires nothing");
        }
        let pushover = types.iter().find(|t| t.kind == "pushover").unwrap();
        let secret: Vec<&str> = pushover.fields.iter().filter(|f| f.secret).map(|f| f.name).collect();
        assert_eq!(secret, ["token", "user_key"]);

        let doc = serde_json::to_value(Doc::openapi()).unwrap();
        for schema in ["ChannelView", "ChannelTypeView"] {
            let kinds = &doc["components"]["schemas"][schema]["properties"]["type"]["enum"];
            assert_eq!(kinds.as_array().map(Vec::len), Some(19), "{schema}: {kinds}");
            assert!(kinds.as_array().unwrap().contains(&serde_json::json!("google_chat")));
        }
        assert!(doc["paths"]["/api/v1/channel-types"]["get"].is_object());
    }
}
