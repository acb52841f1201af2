//! JSON views of the protobuf messages: what REST and WebSocket clients see.
//! One view per entity, shared by both (an alert from `GET
//! /api/v1/monitoring/alerts` and from an `alert` event has one shape), with
//! enum labels from [`crate::labels`].

use std::collections::BTreeMap;

use pantau_core::time::{from_duration, from_timestamp, rfc3339};
use pantau_proto::v1::{self, check_result::Detail};
use serde::Serialize;

pub use crate::labels::{
    AlertState, BreakerState, CheckKind, CheckStatus, ConsensusStatus, EventKind, FailureReason, Severity,
};

/// A check result as JSON: `GET /api/v1/results/latest`, `POST
/// /api/v1/targets/{id}/check` and the WebSocket's `check_result` events.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CheckResultView {
    pub target_id: String,
    pub target_name: String,
    pub kind: CheckKind,
    pub location: String,
    pub instance: String,
    pub status: CheckStatus,
    /// RFC 3339, UTC.
    pub checked_at: Option<String>,
    pub latency_ms: Option<f64>,
    /// The typed failure reason; absent when up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailureReason>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub labels: BTreeMap<String, String>,
    /// The target's circuit breaker, when the collector reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerState>,
    /// Kind-specific detail, under the kind's name (`"http": {...}`); at most
    /// one of these is present.
    #[serde(flatten)]
    pub detail: DetailView,
}

/// The kind-specific part of a result: one field, named after the kind, or none.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DetailView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<PushDetail>,
    /// A protocol probe's (grpc, …) facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaDetail>,
    /// An http_steps result: each step run, and the failing one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_steps: Option<HttpStepsDetail>,
    /// A mail check's (smtp, imap, pop3) greeting and certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail: Option<MailDetail>,
}

/// What an http_steps check did, step by step.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct HttpStepsDetail {
    pub steps: Vec<StepView>,
    /// The failing step's index (0-based); absent when all passed.
    pub failed_step: Option<u32>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failed_step_name: String,
    /// The assertion or extraction that failed, in words.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failed_assertion: String,
}

/// One step of an http_steps check.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct StepView {
    pub index: u32,
    pub name: String,
    pub latency_ms: Option<f64>,
    /// 0 when no answer came.
    pub status_code: u32,
    pub ok: bool,
}

/// What a mail check saw: the greeting, the TLS it spoke and the server's
/// certificate.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct MailDetail {
    pub peer: String,
    /// `smtp`, `imap` or `pop3`.
    pub protocol: String,
    /// The greeting's first line (at most 256 bytes).
    pub banner: String,
    /// `none`, `starttls` or `implicit`.
    pub tls_mode: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tls_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertView>,
    /// EHLO keywords, CAPABILITY or CAPA (at most 32).
    pub capabilities: Vec<String>,
}

/// What a protocol probe learnt: the peer and a few named facts
/// (`status`, `server_version`, `banner`).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ProbeDetail {
    pub peer: String,
    pub metadata: std::collections::BTreeMap<String, String>,
    /// The server's certificate, when the probe spoke TLS (grpc with `use_tls`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct HttpDetail {
    pub status_code: u32,
    pub body_bytes: u64,
    pub http_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TcpDetail {
    pub peer: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TlsDetail {
    pub peer: String,
    pub protocol_version: String,
    pub chain: Vec<CertView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct IcmpDetail {
    pub sent: u32,
    pub received: u32,
    pub loss_percent: f64,
    pub rtt_min_ms: Option<f64>,
    pub rtt_avg_ms: Option<f64>,
    pub rtt_max_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub address: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DnsDetail {
    pub record_type: String,
    pub answers: Vec<String>,
    pub resolver: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PushDetail {
    /// RFC 3339.
    pub last_push: Option<String>,
    pub pushed_status: String,
    pub pushed_message: String,
}

/// A kafka_producer or kafka_consumer result.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct KafkaDetail {
    pub topic: String,
    pub partition: i32,
    /// The partition leader that answered; -1 when unknown.
    pub broker_id: i32,
    /// Producer: the canary's offset (-1 with acks 0); end_to_end: the next offset to read.
    pub offset: i64,
    /// The broker's error code of a `kafka_error` failure; 0 otherwise.
    pub error_code: i32,
    pub records_consumed: u64,
    pub records_missing: u64,
    pub end_to_end_latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub total_lag: u64,
    /// Partition index → records behind.
    pub lag_by_partition: BTreeMap<i32, u64>,
    pub max_lag: u64,
}

/// A TLS certificate.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CertView {
    pub subject: String,
    pub issuer: String,
    pub not_after: Option<String>,
    pub days_to_expiry: i64,
    pub dns_names: Vec<String>,
    /// Read by an earlier check (the breaker is open, this result did not connect).
    pub last_known: bool,
}

fn cert(c: &v1::CertificateInfo) -> CertView {
    CertView {
        subject: c.subject.clone(),
        issuer: c.issuer.clone(),
        not_after: when(c.not_after.as_ref()),
        days_to_expiry: c.days_to_expiry,
        dns_names: c.dns_names.clone(),
        last_known: c.last_known,
    }
}

fn ms(d: Option<&prost_types::Duration>) -> Option<f64> {
    d.and_then(from_duration)
        .map(|d| (d.as_secs_f64() * 1_000_000.0).round() / 1000.0)
}

fn detail(d: Option<&Detail>) -> DetailView {
    let mut v = DetailView::default();
    match d {
        None => {}
        Some(Detail::Http(h)) => {
            v.http = Some(HttpDetail {
                status_code: h.status_code,
                body_bytes: h.body_bytes,
                http_version: h.http_version.clone(),
                certificate: h.certificate.as_ref().map(cert),
            });
        }
        Some(Detail::Tcp(t)) => v.tcp = Some(TcpDetail { peer: t.peer.clone() }),
        Some(Detail::Tls(t)) => {
            v.tls = Some(TlsDetail {
                peer: t.peer.clone(),
                protocol_version: t.protocol_version.clone(),
                chain: t.chain.iter().map(cert).collect(),
            });
        }
        Some(Detail::Icmp(i)) => {
            v.icmp = Some(IcmpDetail {
                sent: i.sent,
                received: i.received,
                loss_percent: i.loss_percent,
                rtt_min_ms: ms(i.rtt_min.as_ref()),
                rtt_avg_ms: ms(i.rtt_avg.as_ref()),
                rtt_max_ms: ms(i.rtt_max.as_ref()),
                jitter_ms: ms(i.jitter.as_ref()),
                address: i.address.clone(),
            });
        }
        Some(Detail::Dns(x)) => {
            v.dns = Some(DnsDetail {
                record_type: x.record_type.clone(),
                answers: x.answers.clone(),
                resolver: x.resolver.clone(),
            });
        }
        Some(Detail::Probe(p)) => {
            v.probe = Some(ProbeDetail {
                peer: p.peer.clone(),
                metadata: p.metadata.clone().into_iter().collect(),
                certificate: p.certificate.as_ref().map(cert),
            });
        }
        Some(Detail::Push(p)) => {
            v.push = Some(PushDetail {
                last_push: when(p.last_push.as_ref()),
                pushed_status: p.pushed_status.clone(),
                pushed_message: p.pushed_message.clone(),
            });
        }
        Some(Detail::Mail(m)) => {
            v.mail = Some(MailDetail {
                peer: m.peer.clone(),
                protocol: m.protocol.clone(),
                banner: m.banner.clone(),
                tls_mode: m.tls_mode.clone(),
                tls_version: m.tls_version.clone(),
                certificate: m.certificate.as_ref().map(cert),
                capabilities: m.capabilities.clone(),
            });
        }
        Some(Detail::Kafka(k)) => {
            v.kafka = Some(KafkaDetail {
                topic: k.topic.clone(),
                partition: k.partition,
                broker_id: k.broker_id,
                offset: k.offset,
                error_code: k.error_code,
                records_consumed: k.records_consumed,
                records_missing: k.records_missing,
                end_to_end_latency_ms: ms(k.end_to_end_latency.as_ref()),
                group: k.group.clone(),
                total_lag: k.total_lag,
                lag_by_partition: k.lag_by_partition.iter().map(|(p, l)| (*p, *l)).collect(),
                max_lag: k.max_lag,
            });
        }
        Some(Detail::HttpSteps(x)) => {
            v.http_steps = Some(HttpStepsDetail {
                steps: x
                    .steps
                    .iter()
                    .map(|s| StepView {
                        index: s.index,
                        name: s.name.clone(),
                        latency_ms: ms(s.latency.as_ref()),
                        status_code: s.status_code,
                        ok: s.ok,
                    })
                    .collect(),
                failed_step: x.failed_step,
                failed_step_name: x.failed_step_name.clone(),
                failed_assertion: x.failed_assertion.clone(),
            });
        }
    }
    v
}

/// An RFC 3339 time, UTC.
pub fn when(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(from_timestamp).map(rfc3339)
}

impl From<&v1::CheckResult> for CheckResultView {
    fn from(r: &v1::CheckResult) -> Self {
        Self {
            target_id: r.target_id.clone(),
            target_name: r.target_name.clone(),
            kind: CheckKind::from(r.kind),
            location: r.location.clone(),
            instance: r.instance.clone(),
            status: CheckStatus::from(r.status),
            checked_at: when(r.checked_at.as_ref()),
            latency_ms: ms(r.latency.as_ref()),
            reason: Some(FailureReason::from(r.reason)).filter(|x| *x != FailureReason::Unspecified),
            message: r.message.clone(),
            labels: r.labels.clone().into_iter().collect(),
            breaker: Some(BreakerState::from(r.breaker)).filter(|b| *b != BreakerState::Unspecified),
            detail: detail(r.detail.as_ref()),
        }
    }
}

/// One step of an alert's lifecycle.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TransitionView {
    pub state: AlertState,
    /// RFC 3339.
    pub at: Option<String>,
    /// Empty when the engine made the change.
    pub actor: String,
    pub comment: String,
}

/// An alert as JSON: the REST routes under `/api/v1/monitoring/alerts` and
/// the WebSocket's `alert` events. An event carries what the change says:
/// `source`, `value` and `updated_at` are empty there, `acknowledged_*` and
/// `resolved_*` are filled by the change that set them, and `description`
/// (the rule's description, when it has one) only there.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AlertView {
    pub id: String,
    /// Stable hash of the rule id and the labels.
    pub fingerprint: String,
    pub rule_id: String,
    pub rule_name: String,
    pub state: AlertState,
    pub severity: Severity,
    pub summary: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub labels: BTreeMap<String, String>,
    /// The fact family the rule reads (`check_up`, …).
    pub source: String,
    /// What the alert is about: the first of the labels target, router,
    /// component, instance, host.
    pub resource: String,
    /// The value that last matched the condition, as text.
    pub value: String,
    /// RFC 3339.
    pub started_at: Option<String>,
    pub updated_at: Option<String>,
    pub acknowledged: bool,
    pub acknowledged_at: Option<String>,
    pub acknowledged_by: String,
    pub acknowledge_comment: String,
    pub resolved_at: Option<String>,
    /// Empty when the condition cleared.
    pub resolved_by: String,
    /// `silence:<id>` or `depends:<alert id>` while nobody is notified.
    pub suppressed_by: String,
    /// Oldest first; only `GET /api/v1/monitoring/alerts/{id}` fills them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<TransitionView>,
}

/// What an alert is about, from its labels (the alert engine's own rule).
pub fn alert_resource(labels: &BTreeMap<String, String>) -> String {
    ["target", "router", "component", "instance", "host", "resource"]
        .iter()
        .find_map(|k| labels.get(*k))
        .cloned()
        .unwrap_or_default()
}

impl From<v1::Alert> for AlertView {
    fn from(a: v1::Alert) -> Self {
        Self {
            state: AlertState::from(a.state),
            severity: Severity::from(a.severity),
            started_at: when(a.started_at.as_ref()),
            updated_at: when(a.updated_at.as_ref()),
            acknowledged: a.acknowledged_at.is_some(),
            acknowledged_at: when(a.acknowledged_at.as_ref()),
            resolved_at: when(a.resolved_at.as_ref()),
            transitions: a
                .transitions
                .iter()
                .map(|t| TransitionView {
                    state: AlertState::from(t.state),
                    at: when(t.at.as_ref()),
                    actor: t.actor.clone(),
                    comment: t.comment.clone(),
                })
                .collect(),
            labels: a.labels.into_iter().collect(),
            id: a.id,
            fingerprint: a.fingerprint,
            rule_id: a.rule_id,
            rule_name: a.rule_name,
            summary: a.summary,
            description: String::new(),
            source: a.source,
            resource: a.resource,
            value: a.value,
            acknowledged_by: a.acknowledged_by,
            acknowledge_comment: a.acknowledge_comment,
            resolved_by: a.resolved_by,
            suppressed_by: a.suppressed_by,
        }
    }
}

impl From<&v1::AlertEvent> for AlertView {
    fn from(a: &v1::AlertEvent) -> Self {
        let state = AlertState::from(a.state);
        let labels: BTreeMap<String, String> = a.labels.clone().into_iter().collect();
        let (acked, resolved) = (state == AlertState::Acknowledged, state == AlertState::Resolved);
        let actor = |on: bool| if on { a.actor.clone() } else { String::new() };
        Self {
            id: a.alert_id.clone(),
            fingerprint: a.fingerprint.clone(),
            rule_id: a.rule_id.clone(),
            rule_name: a.rule_name.clone(),
            state,
            severity: Severity::from(a.severity),
            summary: a.summary.clone(),
            description: a.description.clone(),
            // The engine states what it is about (an alert raised by hand
            // names it); else the labels say.
            resource: a
                .annotations
                .get("resource")
                .filter(|r| !r.is_empty())
                .cloned()
                .unwrap_or_else(|| alert_resource(&labels)),
            labels,
            source: String::new(),
            value: String::new(),
            started_at: when(a.starts_at.as_ref()),
            updated_at: None,
            acknowledged: acked,
            acknowledged_at: None,
            acknowledged_by: actor(acked),
            acknowledge_comment: String::new(),
            resolved_at: if resolved { when(a.ends_at.as_ref()) } else { None },
            resolved_by: actor(resolved),
            suppressed_by: String::new(),
            transitions: Vec::new(),
        }
    }
}

/// A router, target or instance event as JSON.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RouterEventView {
    pub id: String,
    pub kind: EventKind,
    /// The router, target or instance it is about.
    pub source: String,
    /// RFC 3339.
    pub occurred_at: Option<String>,
    pub severity: Severity,
    pub message: String,
    pub attributes: BTreeMap<String, String>,
}

impl From<&v1::RouterEvent> for RouterEventView {
    fn from(e: &v1::RouterEvent) -> Self {
        Self {
            id: e.id.clone(),
            kind: EventKind::from(e.kind),
            source: e.source.clone(),
            occurred_at: when(e.occurred_at.as_ref()),
            severity: Severity::from(e.severity),
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
        assert_eq!(v.kind, CheckKind::Http);
        assert_eq!(v.status, CheckStatus::Down);
        assert_eq!(v.reason, Some(FailureReason::Refused));
        assert_eq!(v.latency_ms, Some(1.5));
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["reason"], "refused");
        assert_eq!(json["kind"], "http");
        assert!(json.get("http").is_none(), "no detail, no key: {json}");
    }

    #[test]
    fn an_alert_event_and_a_stored_alert_have_one_shape() {
        let event = v1::AlertEvent {
            alert_id: "a1".into(),
            rule_id: "down".into(),
            state: v1::AlertState::Acknowledged.into(),
            severity: v1::Severity::Critical.into(),
            labels: [("target".to_owned(), "web".to_owned())].into_iter().collect(),
            actor: "dina".into(),
            ..Default::default()
        };
        let stored = v1::Alert {
            id: "a1".into(),
            rule_id: "down".into(),
            state: v1::AlertState::Acknowledged.into(),
            severity: v1::Severity::Critical.into(),
            ..Default::default()
        };
        let e = serde_json::to_value(AlertView::from(&event)).unwrap();
        let s = serde_json::to_value(AlertView::from(stored)).unwrap();
        let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&e), keys(&s));
        assert_eq!(
            (&e["id"], &e["state"], &e["severity"]),
            (&s["id"], &s["state"], &s["severity"])
        );
        assert_eq!(e["resource"], "web");
        assert_eq!(e["acknowledged_by"], "dina");
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
            observed_at: when(m.observed_at.as_ref()),
            source: m.source.clone(),
        }
    }
}

/// A cross-location consensus as JSON.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ConsensusView {
    pub target_id: String,
    /// `up` or `down` (the quorum of locations agrees), or `partial`.
    pub status: ConsensusStatus,
    /// RFC 3339: the check window's start.
    pub window_start: Option<String>,
    /// Known locations: those that reported in the window and the stale ones.
    pub locations_total: u32,
    pub locations_successful: u32,
    /// Locations with a result in this window.
    pub locations_reporting: u32,
    /// Locations that reported the target before but not in this window;
    /// their last result is counted, so a dying location clears no DOWN.
    pub locations_stale: u32,
    pub stale_locations: Vec<String>,
    pub quorum: u32,
    /// The target's quorum is larger than its known locations: it cannot be DOWN.
    pub quorum_unreachable: bool,
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
            status: ConsensusStatus::from(c.status),
            window_start: when(c.window_start.as_ref()),
            locations_total: c.locations_total,
            locations_successful: c.locations_successful,
            locations_reporting: c.locations_reporting,
            locations_stale: c.locations_stale,
            stale_locations: c.stale_locations.clone(),
            quorum: c.quorum,
            quorum_unreachable: c.quorum_unreachable,
            down_locations: c.down_locations.clone(),
            latency_avg_ms: ms(c.latency_avg.as_ref()),
            latency_min_ms: ms(c.latency_min.as_ref()),
            latency_max_ms: ms(c.latency_max.as_ref()),
            epoch: c.epoch,
            instance: c.instance.clone(),
        }
    }
}
