//! `POST /api/v1/monitoring/alerts`: a person (or a script) raises an alert
//! by hand, through the alert engine's `CreateAlert`. It then follows the
//! rules' lifecycle — routing, incidents, the bus and the WebSocket — and
//! is resolved by hand only (`POST …/alerts/{id}/resolve`): it has no
//! condition that could clear. The body is checked here with the same
//! bounds the alert engine applies (`pantau_config::ManualAlert`), each
//! refusal a 400 naming the field.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::{Extension, Json};
use pantau_config::manual_alert::{MAX_LABEL_VALUE, MAX_LABELS, MAX_MESSAGE, MAX_RESOURCE, MAX_SOURCE, MAX_TITLE};
use pantau_core::error::ApiError;
use pantau_proto::v1 as pb;
use serde::Deserialize;

use crate::alerts::{Client, anonymous};
use crate::auth::Principal;
use crate::input::bad;
use crate::labels::Severity;
use crate::view::AlertView;

/// An alert raised by hand.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAlertBody {
    /// Required: info, warning or critical.
    #[schema(schema_with = severity_schema, required = true)]
    pub severity: Option<String>,
    /// What raised it (e.g. `backup-job`); `manual` when absent.
    #[serde(default)]
    #[schema(schema_with = source_schema)]
    pub source: String,
    /// One line saying what is wrong; the alert's `rule_name`.
    #[schema(schema_with = title_schema)]
    pub title: String,
    /// Details (new lines allowed); the alert's `summary` (the title when absent).
    #[serde(default)]
    #[schema(schema_with = message_schema)]
    pub message: String,
    /// What it is about (a target, a host).
    #[serde(default)]
    #[schema(schema_with = resource_schema)]
    pub resource: String,
    /// At most 32; names are label names (`[A-Za-z_][A-Za-z0-9_]*`), values one line of at most 256 characters.
    #[serde(default)]
    #[schema(schema_with = labels_schema)]
    pub labels: BTreeMap<String, String>,
}

fn source_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::input::schema(crate::input::text_schema(MAX_SOURCE, false, false))
}

fn title_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::input::schema(crate::input::text_schema(MAX_TITLE, false, true))
}

fn message_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::input::schema(crate::input::text_schema(MAX_MESSAGE, true, false))
}

fn resource_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::input::schema(crate::input::text_schema(MAX_RESOURCE, false, false))
}

fn labels_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::input::schema(crate::input::labels_schema(MAX_LABELS, MAX_LABEL_VALUE))
}

fn severity_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    let choices = [Severity::Info, Severity::Warning, Severity::Critical].map(Severity::as_str);
    crate::input::schema(crate::input::enum_schema(&choices))
}

// The schema's bounds are the parser's.
const _: () = assert!(MAX_TITLE == 200 && MAX_MESSAGE == 4096 && MAX_SOURCE == 128 && MAX_RESOURCE == 256);

/// Checks a body with the alert engine's bounds: the first fault, naming its field.
pub fn parse(b: CreateAlertBody) -> Result<pantau_config::ManualAlert, ApiError> {
    if b.labels.len() > MAX_LABELS {
        return Err(bad(
            "invalid_body",
            format!(
                "`labels`: has {} labels; at most {MAX_LABELS} are allowed",
                b.labels.len()
            ),
        ));
    }
    pantau_config::RawManualAlert {
        severity: b.severity,
        source: b.source,
        title: b.title,
        message: b.message,
        resource: b.resource,
        labels: b.labels,
    }
    .parse()
    .map_err(|e| bad("invalid_body", e.to_string()))
}

/// Raises an alert: 201 with the new alert, or 200 with the open alert of
/// the same severity, source, resource, title and labels (nothing changed).
#[utoipa::path(post, path = "/api/v1/monitoring/alerts", tag = "alerts", request_body = CreateAlertBody, responses((status = 201, description = "raised: the new alert, firing", body = AlertView), (status = 200, description = "an open alert with the same severity, source, resource, title and labels; nothing changed", body = AlertView), (status = 400, description = "bad input, naming the field"), (status = 401), (status = 403), (status = 409, description = "this instance's alert engine is not the cluster's primary"), (status = 503, description = "the alert engine is unavailable")))]
pub async fn create(
    State(mut c): State<Client>,
    principal: Option<Extension<Principal>>,
    body: Result<Json<CreateAlertBody>, JsonRejection>,
) -> Result<(StatusCode, Json<AlertView>), ApiError> {
    let Json(b) = body.map_err(|e| crate::api::invalid_body(&e))?;
    let m = parse(b)?;
    let actor = principal.map_or_else(anonymous, |e| e.0).subject;
    let r = c
        .create_alert(pb::CreateAlertRequest {
            severity: match m.severity {
                pantau_config::AlertSeverity::Info => pb::Severity::Info,
                pantau_config::AlertSeverity::Warning => pb::Severity::Warning,
                pantau_config::AlertSeverity::Critical => pb::Severity::Critical,
            }
            .into(),
            source: m.source,
            title: m.title,
            message: m.message,
            resource: m.resource,
            labels: m.labels.into_iter().collect(),
            actor,
        })
        .await
        .map_err(|s| crate::grpc_error(&s, "alert engine"))?
        .into_inner();
    let alert = r.alert.ok_or_else(|| {
        crate::grpc_error(
            &tonic::Status::internal("CreateAlert answered no alert"),
            "alert engine",
        )
    })?;
    let status = if r.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(alert.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Result<pantau_config::ManualAlert, String> {
        let b: CreateAlertBody = serde_json::from_str(json).map_err(|e| e.to_string())?;
        parse(b).map_err(|e| e.message)
    }

    #[test]
    fn a_valid_body_parses() {
        let m = body(r#"{"severity":"critical","title":"Backup failed","message":"exit 2","resource":"db-1","labels":{"team":"ops"}}"#).unwrap();
        assert_eq!(m.source, "manual");
        assert_eq!(m.labels["team"], "ops");
    }

    #[test]
    fn hostile_bodies_are_refused_naming_the_field() {
        let long = "x".repeat(100_000);
        let cases = [
            (r#"{"title":"t"}"#.to_owned(), "`severity`"),
            (r#"{"severity":"fatal","title":"t"}"#.to_owned(), "`severity`"),
            (r#"{"severity":"info","title":""}"#.to_owned(), "`title`"),
            (r#"{"severity":"info","title":"a\u0007"}"#.to_owned(), "`title`"),
            (format!(r#"{{"severity":"info","title":"{long}"}}"#), "`title`"),
            (
                format!(r#"{{"severity":"info","title":"t","message":"{long}"}}"#),
                "`message`",
            ),
            (
                r#"{"severity":"info","title":"t","labels":{"1bad":"v"}}"#.to_owned(),
                "`labels.",
            ),
            (
                r#"{"severity":"info","title":"t","labels":{"ok":"a\nb"}}"#.to_owned(),
                "`labels.ok`",
            ),
        ];
        for (json, field) in cases {
            let e = body(&json).unwrap_err();
            assert!(e.contains(field), "{field} not named in {e}");
            assert!(e.len() < 1000, "the huge value is not echoed back: {} bytes", e.len());
        }
    }

    #[test]
    fn wrong_types_and_unknown_fields_are_refused() {
        for json in [
            r#"{"severity":3,"title":"t"}"#,
            r#"{"severity":"info","title":["t"]}"#,
            r#"{"severity":"info","title":"t","labels":{"a":1}}"#,
            r#"{"severity":"info","title":"t","expires_in":"1h"}"#,
            "garbage",
        ] {
            assert!(body(json).is_err(), "{json}");
        }
    }
}
