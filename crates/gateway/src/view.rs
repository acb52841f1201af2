//! JSON views of the bus's protobuf messages: what REST and WebSocket clients see.

use std::collections::BTreeMap;

use pantau_core::time::{from_duration, from_timestamp, rfc3339};
use pantau_proto::v1::{self, check_result::Detail};
use serde::Serialize;

/// A check result as JSON.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
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
    /// The target's circuit breaker: `closed`, `open` or `half_open`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<String>,
    /// Kind-specific detail, under the kind's name (`"http": {...}`).
    #[serde(flatten)]
    pub detail: Option<DetailView>,
}

/// The kind-specific part of a result.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DetailView {
    Http {
        status_code: u32,
        body_bytes: u64,
        http_version: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        certificate: Option<CertView>,
    },
    Tcp {
        peer: String,
    },
    Tls {
        peer: String,
        protocol_version: String,
        chain: Vec<CertView>,
    },
    Icmp {
        sent: u32,
        received: u32,
        loss_percent: f64,
        rtt_min_ms: Option<f64>,
        rtt_avg_ms: Option<f64>,
        rtt_max_ms: Option<f64>,
        jitter_ms: Option<f64>,
        address: String,
    },
    Dns {
        record_type: String,
        answers: Vec<String>,
        resolver: String,
    },
    Push {
        last_push: Option<String>,
        pushed_status: String,
        pushed_message: String,
    },
}

/// A TLS certificate.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CertView {
    pub subject: String,
    pub issuer: String,
    pub not_after: Option<String>,
    pub days_to_expiry: i64,
    pub dns_names: Vec<String>,
}

fn cert(c: &v1::CertificateInfo) -> CertView {
    CertView {
        subject: c.subject.clone(),
        issuer: c.issuer.clone(),
        not_after: c.not_after.as_ref().and_then(from_timestamp).map(rfc3339),
        days_to_expiry: c.days_to_expiry,
        dns_names: c.dns_names.clone(),
    }
}

fn ms(d: Option<&prost_types::Duration>) -> Option<f64> {
    d.and_then(from_duration)
        .map(|d| (d.as_secs_f64() * 1_000_000.0).round() / 1000.0)
}

fn detail(d: &Detail) -> DetailView {
    match d {
        Detail::Http(h) => DetailView::Http {
            status_code: h.status_code,
            body_bytes: h.body_bytes,
            http_version: h.http_version.clone(),
            certificate: h.certificate.as_ref().map(cert),
        },
        Detail::Tcp(t) => DetailView::Tcp { peer: t.peer.clone() },
        Detail::Tls(t) => DetailView::Tls {
            peer: t.peer.clone(),
            protocol_version: t.protocol_version.clone(),
            chain: t.chain.iter().map(cert).collect(),
        },
        Detail::Icmp(i) => DetailView::Icmp {
            sent: i.sent,
            received: i.received,
            loss_percent: i.loss_percent,
            rtt_min_ms: ms(i.rtt_min.as_ref()),
            rtt_avg_ms: ms(i.rtt_avg.as_ref()),
            rtt_max_ms: ms(i.rtt_max.as_ref()),
            jitter_ms: ms(i.jitter.as_ref()),
            address: i.address.clone(),
        },
        Detail::Dns(x) => DetailView::Dns {
            record_type: x.record_type.clone(),
            answers: x.answers.clone(),
            resolver: x.resolver.clone(),
        },
        Detail::Push(p) => DetailView::Push {
            last_push: p.last_push.as_ref().and_then(from_timestamp).map(rfc3339),
            pushed_status: p.pushed_status.clone(),
            pushed_message: p.pushed_message.clone(),
        },
    }
}

/// `CHECK_KIND_HTTP` → `http`.
fn enum_name(full: &str, prefix: &str) -> String {
    full.trim_start_matches(prefix).to_ascii_lowercase()
}

impl From<&v1::CheckResult> for CheckResultView {
    fn from(r: &v1::CheckResult) -> Self {
        let reason = match r.reason() {
            v1::FailureReason::Unspecified => None,
            other => Some(enum_name(other.as_str_name(), "FAILURE_REASON_")),
        };
        let breaker = match r.breaker() {
            v1::BreakerState::Unspecified => None,
            other => Some(enum_name(other.as_str_name(), "BREAKER_STATE_")),
        };
        Self {
            target_id: r.target_id.clone(),
            target_name: r.target_name.clone(),
            kind: enum_name(r.kind().as_str_name(), "CHECK_KIND_"),
            location: r.location.clone(),
            instance: r.instance.clone(),
            status: enum_name(r.status().as_str_name(), "CHECK_STATUS_"),
            checked_at: r.checked_at.as_ref().and_then(from_timestamp).map(rfc3339),
            latency_ms: ms(r.latency.as_ref()),
            reason,
            message: r.message.clone(),
            labels: r.labels.clone().into_iter().collect(),
            breaker,
            detail: r.detail.as_ref().map(detail),
        }
    }
}

/// An alert lifecycle event as JSON.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AlertView {
    pub alert_id: String,
    pub rule_id: String,
    pub rule_name: String,
    /// `firing`, `acknowledged` or `resolved`.
    pub state: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub summary: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub actor: String,
    pub fingerprint: String,
}

impl From<&v1::AlertEvent> for AlertView {
    fn from(a: &v1::AlertEvent) -> Self {
        Self {
            alert_id: a.alert_id.clone(),
            rule_id: a.rule_id.clone(),
            rule_name: a.rule_name.clone(),
            state: enum_name(a.state().as_str_name(), "ALERT_STATE_"),
            severity: enum_name(a.severity().as_str_name(), "SEVERITY_"),
            summary: a.summary.clone(),
            description: a.description.clone(),
            labels: a.labels.clone().into_iter().collect(),
            starts_at: a.starts_at.as_ref().and_then(from_timestamp).map(rfc3339),
            ends_at: a.ends_at.as_ref().and_then(from_timestamp).map(rfc3339),
            actor: a.actor.clone(),
            fingerprint: a.fingerprint.clone(),
        }
    }
}

/// A router, target or instance event as JSON.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RouterEventView {
    pub id: String,
    /// `reboot`, `interface_down`, `target_down`, …
    pub kind: String,
    /// The router, target or instance it is about.
    pub source: String,
    pub occurred_at: Option<String>,
    pub severity: String,
    pub message: String,
    pub attributes: BTreeMap<String, String>,
}

impl From<&v1::RouterEvent> for RouterEventView {
    fn from(e: &v1::RouterEvent) -> Self {
        Self {
            id: e.id.clone(),
            kind: enum_name(e.kind().as_str_name(), "EVENT_KIND_"),
            source: e.source.clone(),
            occurred_at: e.occurred_at.as_ref().and_then(from_timestamp).map(rfc3339),
            severity: enum_name(e.severity().as_str_name(), "SEVERITY_"),
            message: e.message.clone(),
            attributes: e.attributes.clone().into_iter().collect(),
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

/// A metric sample as JSON.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct MetricView {
    pub name: String,
    pub value: f64,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339.
    pub observed_at: Option<String>,
    /// The host, instance or `api:<subject>` that reported it.
    pub source: String,
}

impl From<&v1::MetricSample> for MetricView {
    fn from(m: &v1::MetricSample) -> Self {
        Self {
            name: m.name.clone(),
            value: m.value,
            labels: m.labels.clone().into_iter().collect(),
            observed_at: m.observed_at.as_ref().and_then(from_timestamp).map(rfc3339),
            source: m.source.clone(),
        }
    }
}

/// A cross-location consensus as JSON.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ConsensusView {
    pub target_id: String,
    /// `up`, `down` (the quorum of locations agrees) or `partial`.
    pub status: &'static str,
    /// RFC 3339: the check window's start.
    pub window_start: Option<String>,
    pub locations_total: u32,
    pub locations_successful: u32,
    pub quorum: u32,
    pub down_locations: Vec<String>,
    pub latency_avg_ms: Option<f64>,
    pub latency_min_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    /// The primary's fencing epoch.
    pub epoch: u64,
    /// The primary that computed it.
    pub instance: String,
}

impl From<&v1::ConsensusResult> for ConsensusView {
    fn from(c: &v1::ConsensusResult) -> Self {
        let ms = |d: Option<&prost_types::Duration>| d.and_then(from_duration).map(|d| d.as_secs_f64() * 1e3);
        Self {
            target_id: c.target_id.clone(),
            status: match c.status() {
                v1::ConsensusStatus::Up => "up",
                v1::ConsensusStatus::Down => "down",
                v1::ConsensusStatus::Partial => "partial",
                v1::ConsensusStatus::Unspecified => "unknown",
            },
            window_start: c.window_start.as_ref().and_then(from_timestamp).map(rfc3339),
            locations_total: c.locations_total,
            locations_successful: c.locations_successful,
            quorum: c.quorum,
            down_locations: c.down_locations.clone(),
            latency_avg_ms: ms(c.latency_avg.as_ref()),
            latency_min_ms: ms(c.latency_min.as_ref()),
            latency_max_ms: ms(c.latency_max.as_ref()),
            epoch: c.epoch,
            instance: c.instance.clone(),
        }
    }
}
