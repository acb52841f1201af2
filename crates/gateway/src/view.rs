//! JSON views of the bus's protobuf messages: what REST and WebSocket clients see.

use std::collections::BTreeMap;

use pantau_core::time::{from_duration, from_timestamp, rfc3339};
use pantau_proto::v1::{self, check_result::Detail};
use serde::Serialize;

/// A check result as JSON.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckResultView {
    pub target_id: String,
    pub target_name: String,
    /// `http`, `tcp`, …
    pub kind: String,
    pub location: String,
    pub instance: String,
    /// `up` or `down`.
    pub status: String,
    /// RFC 3339, UTC.
    pub checked_at: Option<String>,
    pub latency_ms: Option<f64>,
    /// The typed failure reason (`refused`, `timeout`, …); absent when up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HttpView {
    pub status_code: u32,
    pub body_bytes: u64,
    pub http_version: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TcpView {
    pub peer: String,
}

/// `CHECK_KIND_HTTP` → `http`.
fn enum_name(full: &str, prefix: &str) -> String {
    full.trim_start_matches(prefix).to_ascii_lowercase()
}

impl From<&v1::CheckResult> for CheckResultView {
    fn from(r: &v1::CheckResult) -> Self {
        let (http, tcp) = match &r.detail {
            Some(Detail::Http(h)) => (
                Some(HttpView {
                    status_code: h.status_code,
                    body_bytes: h.body_bytes,
                    http_version: h.http_version.clone(),
                }),
                None,
            ),
            Some(Detail::Tcp(t)) => (None, Some(TcpView { peer: t.peer.clone() })),
            None => (None, None),
        };
        let reason = match r.reason() {
            v1::FailureReason::Unspecified => None,
            other => Some(enum_name(other.as_str_name(), "FAILURE_REASON_")),
        };
        Self {
            target_id: r.target_id.clone(),
            target_name: r.target_name.clone(),
            kind: enum_name(r.kind().as_str_name(), "CHECK_KIND_"),
            location: r.location.clone(),
            instance: r.instance.clone(),
            status: enum_name(r.status().as_str_name(), "CHECK_STATUS_"),
            checked_at: r.checked_at.as_ref().and_then(from_timestamp).map(rfc3339),
            latency_ms: r
                .latency
                .as_ref()
                .and_then(from_duration)
                .map(|d| (d.as_secs_f64() * 1_000_000.0).round() / 1000.0),
            reason,
            message: r.message.clone(),
            labels: r.labels.clone().into_iter().collect(),
            http,
            tcp,
        }
    }
}

/// One event as sent to WebSocket clients: `{"type": "check_result", "data": {...}}`.
#[derive(Debug, Clone, Serialize)]
pub struct Event<'a, T: Serialize> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub data: &'a T,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_result_names_its_reason() {
        let r = v1::CheckResult {
            target_id: "web".into(),
            kind: v1::CheckKind::Http.into(),
            status: v1::CheckStatus::Down.into(),
            reason: v1::FailureReason::Refused.into(),
            message: "connection refused".into(),
            latency: Some(prost_types::Duration {
                seconds: 0,
                nanos: 1_500_000,
            }),
            ..Default::default()
        };
        let v = CheckResultView::from(&r);
        assert_eq!(v.kind, "http");
        assert_eq!(v.status, "down");
        assert_eq!(v.reason.as_deref(), Some("refused"));
        assert_eq!(v.latency_ms, Some(1.5));
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["reason"], "refused");
    }
}
