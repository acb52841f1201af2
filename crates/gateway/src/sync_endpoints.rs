//! The original distributed-monitoring contract's read routes for a
//! dependent, beside `GET /sync/api/config`: the same configuration, whole.
//!
//! - `GET /sync/api/endpoints`: every target a dependent checks, with its
//!   full configuration (URL, address, checks; secrets masked as everywhere
//!   in the REST API — a dependent gets them over gRPC `GetConfig`);
//! - `GET /sync/api/endpoints/{id}`: one of them;
//! - `GET /sync/api/notification-services`: every channel with its whole
//!   configuration — each field of its type (the table of
//!   `GET /api/v1/channel-types`) and the common ones, **secrets included**:
//!   a dependent that becomes primary delivers with them — and the global
//!   settings (check interval and timeout, heartbeat and sync intervals).
//!   Only an authenticated instance gets an answer; nothing of it is logged.
//!
//! Each is an instance call: `Authorization: Bearer <instance token>` and
//! `instance_id` (or `instanceId`) naming the instance, checked by the
//! sync-api as for `GET /sync/api/config`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use pantau_config::proto::target_from_proto;
use pantau_config::{ChannelConfig, TargetConfig};
use pantau_core::error::{ApiError, ErrorCode};
use pantau_core::time::from_duration;
use pantau_proto::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::input;
use crate::sync::{SyncState, backend, caller_token, with_token};

/// The instance asking.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InstanceQuery {
    /// The calling instance (its token must be this instance's).
    #[serde(alias = "instanceId")]
    #[param(schema_with = token_schema)]
    pub instance_id: String,
}

fn token_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::token_schema())
}

/// The configuration as the primary serves it to `instance_id`.
async fn synced(
    s: &SyncState,
    headers: &HeaderMap,
    q: Result<Query<InstanceQuery>, QueryRejection>,
) -> Result<(u64, String, pb::SyncedConfig), ApiError> {
    let Query(q) = q.map_err(|e| crate::api::bad_query(&e))?;
    let instance_id = input::token("instance_id", q.instance_id).map_err(|e| input::bad("invalid_query", e.message))?;
    let req = pb::GetConfigRequest {
        instance_id,
        if_none_match: String::new(),
    };
    let r = s
        .client
        .clone()
        .get_config(with_token(req, caller_token(headers)))
        .await
        .map_err(|e| backend(&e))?
        .into_inner();
    Ok((r.version, r.hash, r.config.unwrap_or_default()))
}

/// One endpoint: a `collector.targets[]` entry as the REST API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub config: TargetConfig,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointsView {
    /// The configuration's version and hash (as in `/sync/api/config`).
    pub version: u64,
    pub hash: String,
    pub endpoints: Vec<EndpointView>,
}

fn endpoint_view(t: &pb::Target) -> Result<EndpointView, ApiError> {
    target_from_proto(t).map(|config| EndpointView { config }).map_err(|e| {
        tracing::error!(error = %e, target = %t.id, "the sync API sent a target that does not convert");
        ApiError::new(ErrorCode::Internal, "the sync API sent a malformed target")
            .reason("backend_error")
            .status(axum::http::StatusCode::BAD_GATEWAY)
    })
}

/// Every endpoint (target) a dependent checks, with its whole configuration.
#[utoipa::path(get, path = "/sync/api/endpoints", tag = "sync", params(InstanceQuery),
    responses((status = 200, body = EndpointsView), (status = 400, description = "bad query, naming the parameter"), (status = 401, description = "unknown, expired or revoked instance token")))]
pub(crate) async fn endpoints(
    State(s): State<SyncState>,
    headers: HeaderMap,
    q: Result<Query<InstanceQuery>, QueryRejection>,
) -> Result<Json<EndpointsView>, ApiError> {
    let (version, hash, c) = synced(&s, &headers, q).await?;
    let endpoints = c.targets.iter().map(endpoint_view).collect::<Result<_, _>>()?;
    Ok(Json(EndpointsView {
        version,
        hash,
        endpoints,
    }))
}

/// One endpoint (target) by id.
#[utoipa::path(get, path = "/sync/api/endpoints/{id}", tag = "sync",
    params(("id" = String, Path, description = "the target's id"), InstanceQuery),
    responses((status = 200, body = EndpointView), (status = 400, description = "bad id or query, naming it"), (status = 401, description = "unknown, expired or revoked instance token"), (status = 404, description = "no such endpoint")))]
pub(crate) async fn endpoint(
    State(s): State<SyncState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<InstanceQuery>, QueryRejection>,
) -> Result<Json<EndpointView>, ApiError> {
    let id = input::token("id", id)?;
    let (_, _, c) = synced(&s, &headers, q).await?;
    let t = c
        .targets
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no endpoint `{id}`")))?;
    Ok(Json(endpoint_view(t)?))
}

/// A notification channel a dependent may use, whole.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ServiceView {
    pub id: String,
    /// Its type (`webhook`, `slack`, `email`, …).
    pub kind: String,
    /// Every field set, as in its `notifier.channels[]` entry (without
    /// `name` and `type`): the type's fields (`url`, `token`, `routing_key`,
    /// `to`, `smtp`, `priorities`, …) and the common `template`,
    /// `rate_limit`, `rate_limit_period`, `group`, `group_wait`. Secrets
    /// are given in clear: this answer goes to authenticated instances only.
    #[schema(value_type = Object)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// The keys of `settings` that are secrets (keep them out of logs):
    /// those `GET /api/v1/channel-types` marks secret, and `smtp.password`.
    pub secret_fields: Vec<String>,
}

// Never prints the settings: they hold secrets.
impl std::fmt::Debug for ServiceView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceView")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("settings", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Decodes a channel entry; the error names the field (`.smtp.port`) and
/// what was expected, never the value (it may be a secret).
fn decode_entry(text: &str) -> Result<ChannelConfig, String> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        let what = if msg.starts_with("unknown field")
            || msg.starts_with("missing field")
            || msg.starts_with("unknown variant")
        {
            msg.split(" at line ").next().unwrap_or_default().to_owned()
        } else if inner.is_data() && !msg.starts_with("invalid ") {
            // Our own deserializers' messages (durations, priorities) name no secret.
            msg.split(" at line ").next().unwrap_or_default().to_owned()
        } else if inner.is_data() {
            let expected = msg
                .split(" at line ")
                .next()
                .and_then(|m| m.rsplit_once(", expected "))
                .map(|(_, x)| format!(": expected {x}"))
                .unwrap_or_default();
            format!("has a wrong type or value{expected}")
        } else {
            format!("is not JSON ({:?} at column {})", inner.classify(), inner.column())
        };
        if path == "." {
            what
        } else {
            format!("at `{path}` {what}")
        }
    })
}

/// A channel as the primary sent it, checked: its entry must decode as a
/// `notifier.channels[]` entry of the id and type it claims; anything else
/// is the sync API's fault (502 naming the channel and what is wrong, never
/// the entry's text).
pub fn service_view(i: usize, ch: &pb::NotificationChannelRef) -> Result<ServiceView, ApiError> {
    let bad = |why: String| {
        tracing::error!(channel = %ch.id, index = i, why = %why, "the sync API sent a malformed channel");
        ApiError::new(
            ErrorCode::Internal,
            format!("the sync API sent a malformed channel: channels[{i}].entry_json {why}"),
        )
        .reason("backend_error")
        .status(axum::http::StatusCode::BAD_GATEWAY)
    };
    let config: ChannelConfig = decode_entry(&ch.entry_json).map_err(bad)?;
    if config.name != ch.id {
        return Err(bad(format!(
            "names channel `{}`, not `{}`",
            pantau_config::types::quote(&config.name),
            pantau_config::types::quote(&ch.id)
        )));
    }
    if config.kind.as_str() != ch.kind {
        return Err(bad(format!(
            "is of type `{}`, not `{}`",
            config.kind.as_str(),
            pantau_config::types::quote(&ch.kind)
        )));
    }
    if let Some((field, why)) = config.problems().into_iter().next() {
        return Err(bad(format!("at `{field}` {why}")));
    }
    let Ok(serde_json::Value::Object(mut settings)) = serde_json::to_value(&config) else {
        return Err(bad("does not encode as an object".into()));
    };
    settings.remove("name");
    settings.remove("type");
    settings.retain(|_, v| match v {
        serde_json::Value::Null => false,
        serde_json::Value::Array(a) => !a.is_empty(),
        serde_json::Value::Object(o) => !o.is_empty(),
        _ => true,
    });
    let mut secret_fields: Vec<String> = config
        .kind
        .fields()
        .iter()
        .filter(|f| f.secret && settings.contains_key(f.name))
        .map(|f| f.name.to_owned())
        .collect();
    if config.smtp.as_ref().is_some_and(|s| s.password.is_some()) {
        secret_fields.push("smtp.password".into());
    }
    Ok(ServiceView {
        id: config.name,
        kind: config.kind.as_str().to_owned(),
        settings,
        secret_fields,
    })
}

/// The settings every instance of the cluster shares.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SettingsView {
    pub check_interval_seconds: Option<f64>,
    pub check_timeout_seconds: Option<f64>,
    pub heartbeat_interval_seconds: Option<f64>,
    pub sync_interval_seconds: Option<f64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServicesView {
    pub version: u64,
    pub hash: String,
    pub services: Vec<ServiceView>,
    pub settings: SettingsView,
}

pub fn settings_view(g: Option<&pb::GlobalSettings>) -> SettingsView {
    let secs = |d: Option<&prost_types::Duration>| d.and_then(from_duration).map(|d| d.as_secs_f64());
    let g = g.copied().unwrap_or_default();
    SettingsView {
        check_interval_seconds: secs(g.check_interval.as_ref()),
        check_timeout_seconds: secs(g.check_timeout.as_ref()),
        heartbeat_interval_seconds: secs(g.heartbeat_interval.as_ref()),
        sync_interval_seconds: secs(g.sync_interval.as_ref()),
    }
}

/// The notification channels, whole (secrets included), and the shared
/// settings: for authenticated instances only.
#[utoipa::path(get, path = "/sync/api/notification-services", tag = "sync", params(InstanceQuery),
    responses((status = 200, body = ServicesView, description = "every channel with all its settings, secrets in clear"), (status = 400, description = "bad query, naming the parameter"), (status = 401, description = "unknown, expired or revoked instance token, or none"), (status = 502, description = "the sync API sent a malformed channel")))]
pub(crate) async fn notification_services(
    State(s): State<SyncState>,
    headers: HeaderMap,
    q: Result<Query<InstanceQuery>, QueryRejection>,
) -> Result<Json<ServicesView>, ApiError> {
    let (version, hash, c) = synced(&s, &headers, q).await?;
    Ok(Json(ServicesView {
        version,
        hash,
        services: c
            .channels
            .iter()
            .enumerate()
            .map(|(i, ch)| service_view(i, ch))
            .collect::<Result<_, _>>()?,
        settings: settings_view(c.settings.as_ref()),
    }))
}

/// The routes' OpenAPI paths and schemas.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(endpoints, endpoint, notification_services),
    components(schemas(EndpointView, EndpointsView, ServiceView, SettingsView, ServicesView))
)]
pub struct Doc;

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, kind: &str, entry: &str) -> pb::NotificationChannelRef {
        pb::NotificationChannelRef {
            id: id.into(),
            kind: kind.into(),
            entry_json: entry.into(),
        }
    }

    fn refused(c: &pb::NotificationChannelRef) -> String {
        let e = service_view(3, c).expect_err("refused");
        assert_eq!(e.status, axum::http::StatusCode::BAD_GATEWAY);
        let body = serde_json::to_string(&e).unwrap();
        assert!(body.contains("channels[3].entry_json"), "{body}");
        body
    }

    #[test]
    fn a_channel_is_given_whole_with_its_secrets_named() {
        let entry =
            r#"{"name":"ops","type":"pagerduty","routing_key":"R0UTING","rate_limit":2,"rate_limit_period":"30s"}"#;
        let v = service_view(0, &r("ops", "pagerduty", entry)).unwrap();
        assert_eq!(v.settings["routing_key"], "R0UTING");
        assert_eq!(v.settings["rate_limit"], 2);
        assert!(
            !v.settings.contains_key("name") && !v.settings.contains_key("url"),
            "{:?}",
            v.settings
        );
        assert_eq!(v.secret_fields, ["routing_key"]);
        assert!(!format!("{v:?}").contains("R0UTING"), "Debug hides the settings");
        let mail = r#"{"name":"m","type":"email","to":["ops@example.org"],
            "smtp":{"host":"127.0.0.1","username":"u","password":"pw-123","from":"p@example.org"}}"#;
        let v = service_view(0, &r("m", "email", mail)).unwrap();
        assert_eq!(v.settings["smtp"]["password"], "pw-123");
        assert_eq!(v.secret_fields, ["smtp.password"]);
    }

    #[test]
    fn a_malformed_channel_from_the_sync_api_is_a_502_naming_the_field_not_the_secret() {
        let secret = "s3cr3t-routing-key";
        // Garbage, a wrong type, an unknown field, an unknown type, a huge
        // text, and entries that contradict their id or kind.
        let wrong_type =
            format!(r#"{{"name":"ops","type":"pagerduty","routing_key":"{secret}","rate_limit":"{secret}"}}"#);
        assert!(refused(&r("ops", "pagerduty", &wrong_type)).contains("rate_limit"));
        let unknown = format!(r#"{{"name":"ops","type":"pagerduty","routing_key":"{secret}","routing_kee":1}}"#);
        assert!(refused(&r("ops", "pagerduty", &unknown)).contains("routing_kee"));
        let kind = r#"{"name":"ops","type":"carrier_pigeon","url":"http://x"}"#;
        assert!(refused(&r("ops", "carrier_pigeon", kind)).contains("type"));
        let huge = format!(
            r#"{{"name":"ops","type":"pagerduty","routing_key":"{}"}}"#,
            "k".repeat(100_000)
        );
        assert!(refused(&r("ops", "pagerduty", &huge)).contains("routing_key"));
        let out_of_range = r#"{"name":"ops","type":"pagerduty","routing_key":"k","rate_limit":-1}"#;
        assert!(refused(&r("ops", "pagerduty", out_of_range)).contains("rate_limit"));
        let missing = r#"{"name":"ops","type":"pagerduty"}"#;
        assert!(refused(&r("ops", "pagerduty", missing)).contains("routing_key"));
        let good = format!(r#"{{"name":"ops","type":"pagerduty","routing_key":"{secret}"}}"#);
        assert!(refused(&r("other", "pagerduty", &good)).contains("other"));
        assert!(refused(&r("ops", "slack", &good)).contains("slack"));
        for garbage in ["", "null", "[]", "{", "\u{0}\u{1}", &"[".repeat(10_000)] {
            refused(&r("ops", "pagerduty", garbage));
        }
        for body in [wrong_type, unknown, huge, good] {
            for c in [r("ops", "pagerduty", &body), r("x", "slack", &body)] {
                if let Err(e) = service_view(0, &c) {
                    let shown = serde_json::to_string(&e).unwrap();
                    assert!(!shown.contains(secret), "{shown}");
                }
            }
        }
    }
}
