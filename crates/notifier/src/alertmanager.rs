//! Alertmanager's webhook payload (version 4) and the
//! `POST /webhooks/alertmanager` route: parse, check, persist, answer 202.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use pantau_core::error::{ApiError, ErrorCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::notification::{AlertItem, Notification, SOURCE_ALERTMANAGER, severity_rank};
use crate::webhooks::Webhooks;

/// The body Alertmanager posts to a webhook receiver.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub version: String,
    pub group_key: String,
    pub status: String,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<Alert>,
    #[serde(default)]
    pub truncated_alerts: u64,
}

/// One alert of a payload.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    #[serde(default)]
    pub fingerprint: String,
}

/// A payload that cannot be accepted, and why.
pub fn parse(body: &[u8]) -> Result<Payload, String> {
    let p: Payload =
        serde_json::from_slice(body).map_err(|e| format!("the body is not an Alertmanager webhook payload: {e}"))?;
    if p.version != "4" {
        return Err(format!(
            "`version` is \"{}\": only version \"4\" of the Alertmanager webhook payload is supported",
            p.version
        ));
    }
    if !matches!(p.status.as_str(), "firing" | "resolved") {
        return Err(format!(
            "`status` is \"{}\": must be \"firing\" or \"resolved\"",
            p.status
        ));
    }
    if p.alerts.is_empty() {
        return Err("`alerts` is empty: a payload carries at least one alert".to_owned());
    }
    for (i, a) in p.alerts.iter().enumerate() {
        if !matches!(a.status.as_str(), "firing" | "resolved") {
            return Err(format!(
                "`alerts[{i}].status` is \"{}\": must be \"firing\" or \"resolved\"",
                a.status
            ));
        }
    }
    if p.group_key.is_empty() {
        return Err("`groupKey` is empty".to_owned());
    }
    Ok(p)
}

fn zero_time(t: &str) -> String {
    // Alertmanager writes the zero time for "not ended".
    if t.starts_with("0001-01-01") {
        String::new()
    } else {
        t.to_owned()
    }
}

impl Payload {
    /// The notification of this group.
    pub fn into_notification(self) -> Notification {
        let alerts: Vec<AlertItem> = self
            .alerts
            .into_iter()
            .map(|a| {
                let name = a.labels.get("alertname").cloned().unwrap_or_default();
                let severity = a
                    .labels
                    .get("severity")
                    .cloned()
                    .unwrap_or_else(|| "warning".to_owned());
                AlertItem {
                    summary: a.annotations.get("summary").cloned().unwrap_or_default(),
                    description: a.annotations.get("description").cloned().unwrap_or_default(),
                    name,
                    status: a.status,
                    severity,
                    starts_at: zero_time(&a.starts_at),
                    ends_at: zero_time(&a.ends_at),
                    fingerprint: a.fingerprint,
                    actor: String::new(),
                    url: a.generator_url,
                    labels: a.labels,
                    annotations: a.annotations,
                }
            })
            .collect();
        let severity = alerts
            .iter()
            .map(|a| a.severity.as_str())
            .max_by_key(|s| severity_rank(s))
            .map_or("warning", |s| match severity_rank(s) {
                2 => "critical",
                1 => "warning",
                _ => "info",
            })
            .to_owned();
        let name = self
            .common_labels
            .get("alertname")
            .or_else(|| self.group_labels.get("alertname"))
            .cloned()
            .unwrap_or_else(|| "alerts".to_owned());
        let title = match alerts.as_slice() {
            [one] if !one.summary.is_empty() => one.summary.clone(),
            [one] if !one.name.is_empty() => one.name.clone(),
            [_] => name,
            _ => format!("{name} ({} alerts)", alerts.len() as u64 + self.truncated_alerts),
        };
        // The same group in the same state with the same alerts is the same notification.
        let mut h = Sha256::new();
        h.update(self.status.as_bytes());
        for a in &alerts {
            for part in [&a.fingerprint, &a.status, &a.starts_at, &a.ends_at] {
                h.update(part.as_bytes());
                h.update([0u8]);
            }
        }
        Notification {
            source: SOURCE_ALERTMANAGER.to_owned(),
            status: self.status,
            key: self.group_key,
            severity,
            title,
            alerts,
            common_labels: self.common_labels,
            external_url: self.external_url,
            revision: hex::encode(&h.finalize()[..16]),
            trace_parent: String::new(),
        }
    }
}

/// `POST /webhooks/alertmanager`.
pub fn router(webhooks: Webhooks) -> Router {
    Router::new()
        .route("/webhooks/alertmanager", post(receive))
        .with_state(webhooks)
}

async fn receive(State(hooks): State<Webhooks>, body: Bytes) -> Response {
    let Some(notifier) = hooks.get() else {
        return ApiError::new(ErrorCode::Unavailable, "the notifier is starting; retry shortly").into_response();
    };
    let payload = match parse(&body) {
        Ok(p) => p,
        Err(msg) => {
            tracing::warn!(bytes = body.len(), problem = %msg, "rejected an alertmanager webhook");
            return ApiError::new(ErrorCode::InvalidArgument, msg)
                .reason("invalid_payload")
                .into_response();
        }
    };
    let alerts = payload.alerts.len();
    let n = payload.into_notification();
    match notifier.accept(&n).await {
        Ok(deliveries) => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({"accepted": alerts, "deliveries": deliveries})),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot persist an alertmanager notification");
            ApiError::new(ErrorCode::Unavailable, "the notification could not be stored; retry").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"version":"4","groupKey":"{}:{alertname=\"Down\"}","status":"firing","receiver":"pantau",
      "groupLabels":{"alertname":"Down"},"commonLabels":{"alertname":"Down","severity":"critical"},
      "commonAnnotations":{},"externalURL":"http://am:9093","truncatedAlerts":0,
      "alerts":[{"status":"firing","labels":{"alertname":"Down","severity":"critical","instance":"a"},
        "annotations":{"summary":"a is down"},"startsAt":"2026-11-23T10:00:00Z","endsAt":"0001-01-01T00:00:00Z",
        "generatorURL":"http://prom/graph","fingerprint":"f1"},
       {"status":"firing","labels":{"alertname":"Down","severity":"warning","instance":"b"},
        "annotations":{},"startsAt":"2026-11-23T10:00:01Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"f2"}]}"#;

    #[test]
    fn a_group_becomes_one_notification() {
        let n = parse(GOOD.as_bytes()).unwrap().into_notification();
        assert_eq!(n.severity, "critical");
        assert_eq!(n.alerts.len(), 2);
        assert_eq!(n.title, "Down (2 alerts)");
        assert_eq!(n.alerts[0].ends_at, "");
        assert_eq!(n.alerts[0].summary, "a is down");
    }

    #[test]
    fn malformed_payloads_name_the_problem() {
        let e = parse(b"{\"version\":\"4\"}").unwrap_err();
        assert!(e.contains("missing field `groupKey`"), "{e}");
        let e = parse(GOOD.replace("\"version\":\"4\"", "\"version\":\"3\"").as_bytes()).unwrap_err();
        assert!(e.contains("`version`"), "{e}");
        let e = parse(b"not json").unwrap_err();
        assert!(e.contains("not an Alertmanager webhook payload"), "{e}");
        let e = parse(
            GOOD.replacen(
                "\"status\":\"firing\",\"labels\"",
                "\"status\":\"burning\",\"labels\"",
                1,
            )
            .as_bytes(),
        )
        .unwrap_err();
        assert!(e.contains("alerts[0].status"), "{e}");
    }
}
