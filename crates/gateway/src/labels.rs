//! The JSON names of the protobuf enums, in one place: every view (REST and
//! WebSocket alike) and every query filter takes its labels from here, and
//! the OpenAPI document lists them as the schema's `enum`.
//!
//! A protobuf value a label type does not know (`UNSPECIFIED`, or a value
//! added to the contract later) reads as the type's fallback label.

use pantau_proto::v1 as pb;
use serde::Serialize;

/// A label type from a protobuf enum: its variants with their JSON names,
/// then the fallback for values it does not name. A name is its variant's in
/// snake_case (serde and the schema derive it; `as_str` spells it, and a test
/// holds the two equal).
macro_rules! labels {
    (
        $(#[$meta:meta])*
        $name:ident from $proto:ident {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
        }
        else $(#[$fmeta:meta])* $fallback:ident = $ftext:literal
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            $(#[$fmeta])* $fallback,
        }

        impl $name {
            /// Every label, the fallback last.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+ Self::$fallback];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::$fallback => $ftext,
                }
            }

            /// The label named `s`, the fallback excepted (it is not a filter).
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The protobuf value of a label, `UNSPECIFIED` for the fallback.
            pub fn to_proto(self) -> i32 {
                match self {
                    $(Self::$variant => pb::$proto::$variant as i32,)+
                    Self::$fallback => 0,
                }
            }

            /// The labels a filter accepts, for error messages: `a, b or c`.
            pub fn choices() -> String {
                let names = [$($text),+];
                match names.split_last() {
                    Some((last, [])) => (*last).to_owned(),
                    Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                    None => String::new(),
                }
            }
        }

        impl From<i32> for $name {
            fn from(v: i32) -> Self {
                match pb::$proto::try_from(v) {
                    $(Ok(pb::$proto::$variant) => Self::$variant,)+
                    _ => Self::$fallback,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

labels! {
    /// How bad: of alerts, rules and events.
    Severity from Severity { Info = "info", Warning = "warning", Critical = "critical" }
    else Unknown = "unknown"
}

labels! {
    /// Where an alert is in its lifecycle.
    AlertState from AlertState { Firing = "firing", Acknowledged = "acknowledged", Resolved = "resolved" }
    else Unknown = "unknown"
}

labels! {
    /// Where an incident is: open until acknowledged, resolved with its last alert.
    IncidentState from IncidentState { Open = "open", Acknowledged = "acknowledged", Resolved = "resolved" }
    else Unknown = "unknown"
}

labels! {
    /// What one entry of an incident's timeline says.
    IncidentEntryKind from IncidentEntryKind {
        Opened = "opened", Joined = "joined", Left = "left", Acknowledged = "acknowledged",
        Commented = "commented", Notified = "notified", Resolved = "resolved",
        Delivered = "delivered", DeliveryFailed = "delivery_failed",
    }
    else Unspecified = "unspecified"
}

labels! {
    /// A check's type.
    CheckKind from CheckKind {
        Http = "http", Tcp = "tcp", Icmp = "icmp", Dns = "dns", Tls = "tls", Push = "push", Grpc = "grpc", Redis = "redis",
        Postgres = "postgres", Mysql = "mysql", Udp = "udp", Ssh = "ssh",
        KafkaProducer = "kafka_producer", KafkaConsumer = "kafka_consumer",
        HttpSteps = "http_steps",
        Websocket = "websocket", Mqtt = "mqtt", Mail = "mail",
    }
    else Unspecified = "unspecified"
}

labels! {
    /// A check's outcome.
    CheckStatus from CheckStatus { Up = "up", Down = "down" }
    else Unspecified = "unspecified"
}

labels! {
    /// Why a check failed.
    FailureReason from FailureReason {
        Dns = "dns", Connect = "connect", Refused = "refused", Timeout = "timeout", Tls = "tls",
        HttpStatus = "http_status", Assertion = "assertion", IcmpLoss = "icmp_loss", Internal = "internal",
        Auth = "auth", Protocol = "protocol", KafkaError = "kafka_error", TopicMissing = "topic_missing",
        Extraction = "extraction",
    }
    else Unspecified = "unspecified"
}

labels! {
    /// A target's circuit breaker.
    BreakerState from BreakerState { Closed = "closed", Open = "open", HalfOpen = "half_open" }
    else Unspecified = "unspecified"
}

labels! {
    /// What a router, target or instance event says happened.
    EventKind from EventKind {
        Traffic = "traffic", CounterReset = "counter_reset", Reboot = "reboot", WanDetected = "wan_detected",
        InterfaceUp = "interface_up", InterfaceDown = "interface_down", MetricsUpdate = "metrics_update",
        CertExpiring = "cert_expiring", Instance = "instance", TargetUp = "target_up", TargetDown = "target_down",
    }
    else Unspecified = "unspecified"
}

labels! {
    /// The agreement of locations on a target.
    ConsensusStatus from ConsensusStatus { Up = "up", Down = "down", Partial = "partial" }
    else Unknown = "unknown"
}

labels! {
    /// A notification delivery.
    DeliveryStatus from DeliveryStatus { Pending = "pending", Delivered = "delivered", Failed = "failed" }
    else Unknown = "unknown"
}

labels! {
    /// A router interface's link.
    LinkStatus from LinkStatus { Up = "up", Down = "down", AdminDown = "admin_down" }
    else Unknown = "unknown"
}

labels! {
    /// How an interface was found to be WAN.
    WanMethod from WanMethod { Route = "route", Traffic = "traffic", Name = "name", Manual = "manual" }
    else Unknown = "unknown"
}

labels! {
    /// Where a target's definition lives.
    TargetSource from TargetSource { Config = "config", Api = "api" }
    else Unspecified = "unspecified"
}

labels! {
    /// An instance among locations.
    SyncRole from SyncRole { Standalone = "standalone", Primary = "primary", Dependent = "dependent" }
    else Unspecified = "unspecified"
}

labels! {
    /// A registered instance's state.
    InstanceState from InstanceState { Active = "active", Inactive = "inactive", Failed = "failed" }
    else Unspecified = "unspecified"
}

labels! {
    /// A registered instance's health.
    InstanceHealth from InstanceHealth { Healthy = "healthy", Degraded = "degraded", Failing = "failing" }
    else Unknown = "unknown"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_protobuf_values() {
        assert_eq!(Severity::from(pb::Severity::Critical as i32), Severity::Critical);
        assert_eq!(Severity::from(0), Severity::Unknown);
        assert_eq!(Severity::from(99), Severity::Unknown);
        assert_eq!(AlertState::parse("firing"), Some(AlertState::Firing));
        assert_eq!(AlertState::parse("unknown"), None, "the fallback is no filter");
        assert_eq!(AlertState::Resolved.to_proto(), pb::AlertState::Resolved as i32);
        assert_eq!(
            FailureReason::from(pb::FailureReason::HttpStatus as i32).as_str(),
            "http_status"
        );
        assert_eq!(LinkStatus::from(pb::LinkStatus::Unknown as i32), LinkStatus::Unknown);
        assert_eq!(Severity::choices(), "info, warning or critical");
        assert_eq!(
            serde_json::to_value(BreakerState::HalfOpen).unwrap(),
            serde_json::json!("half_open")
        );
    }

    /// What serde writes and what the document lists are what `as_str` says.
    fn spelled_alike<T: Serialize + utoipa::PartialSchema + Copy>(all: &[T], name: impl Fn(T) -> &'static str) {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let listed: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let names: Vec<&str> = all.iter().map(|l| name(*l)).collect();
        assert_eq!(listed, names);
        for l in all {
            assert_eq!(serde_json::to_value(l).unwrap(), serde_json::json!(name(*l)));
        }
    }

    #[test]
    fn serde_the_schema_and_as_str_agree() {
        spelled_alike(Severity::ALL, Severity::as_str);
        spelled_alike(AlertState::ALL, AlertState::as_str);
        spelled_alike(CheckKind::ALL, CheckKind::as_str);
        spelled_alike(CheckStatus::ALL, CheckStatus::as_str);
        spelled_alike(FailureReason::ALL, FailureReason::as_str);
        spelled_alike(BreakerState::ALL, BreakerState::as_str);
        spelled_alike(EventKind::ALL, EventKind::as_str);
        spelled_alike(ConsensusStatus::ALL, ConsensusStatus::as_str);
        spelled_alike(DeliveryStatus::ALL, DeliveryStatus::as_str);
        spelled_alike(LinkStatus::ALL, LinkStatus::as_str);
        spelled_alike(WanMethod::ALL, WanMethod::as_str);
        spelled_alike(TargetSource::ALL, TargetSource::as_str);
        spelled_alike(SyncRole::ALL, SyncRole::as_str);
        spelled_alike(InstanceState::ALL, InstanceState::as_str);
        spelled_alike(InstanceHealth::ALL, InstanceHealth::as_str);
        spelled_alike(IncidentState::ALL, IncidentState::as_str);
        spelled_alike(IncidentEntryKind::ALL, IncidentEntryKind::as_str);
    }

    #[test]
    fn every_incident_entry_kind_is_its_bus_token() {
        for k in IncidentEntryKind::ALL
            .iter()
            .filter(|k| **k != IncidentEntryKind::Unspecified)
        {
            let proto = pb::IncidentEntryKind::try_from(k.to_proto()).unwrap();
            assert_eq!(pantau_core::bus::event::incident_kind_token(proto), k.as_str());
        }
        for s in IncidentState::ALL.iter().filter(|s| **s != IncidentState::Unknown) {
            let proto = pb::IncidentState::try_from(s.to_proto()).unwrap();
            assert_eq!(pantau_core::bus::event::incident_state_token(proto), s.as_str());
        }
    }

    #[test]
    fn every_event_kind_has_its_protobuf_name() {
        for k in EventKind::ALL.iter().filter(|k| **k != EventKind::Unspecified) {
            let proto = pb::EventKind::try_from(k.to_proto()).unwrap();
            assert_eq!(
                proto
                    .as_str_name()
                    .trim_start_matches("EVENT_KIND_")
                    .to_ascii_lowercase(),
                k.as_str()
            );
        }
    }
}
