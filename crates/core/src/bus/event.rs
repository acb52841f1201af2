//! The typed contract of the bus: a subject and a protobuf payload in, one
//! [`BusEvent`] out, or a [`DecodeError`] that says what was wrong.
//!
//! | subject                                        | variant                          |
//! |------------------------------------------------|----------------------------------|
//! | `pantau.check.result.<location>.<target_id>`   | [`BusEvent::CheckResult`]        |
//! | `pantau.iface.sample.<router_id>.<if_index>`   | [`BusEvent::InterfaceSample`]    |
//! | `pantau.router.info.<router_id>`               | [`BusEvent::RouterInfo`]         |
//! | `pantau.event.<kind>.<source>`                 | [`BusEvent::Event`]              |
//! | `pantau.metric.<name>`                         | [`BusEvent::Metric`]             |
//! | `pantau.alert.<state>.<alert_id>`              | [`BusEvent::Alert`]              |
//! | `pantau.incident.<kind>.<incident_id>`         | [`BusEvent::Incident`]           |
//! | `pantau.delivery.<outcome>.<alert_id>`         | [`BusEvent::Delivery`]           |
//! | `pantau.consensus.<target_id>`                 | [`BusEvent::Consensus`]          |
//!
//! The subject decides the message type; the event kind and alert state come
//! from the subject too, and a payload that states another one is refused.
//! Errors quote at most [`QUOTE`] bytes of the subject and a short escaped
//! excerpt of the payload, never the whole of either.

use pantau_proto::v1::{
    AlertEvent, AlertState, CheckResult, ConsensusResult, DeliveryErrorClass, DeliveryEvent, DeliveryOutcome,
    EventKind, IncidentEntryKind, IncidentEvent, IncidentState, InterfaceSample, MetricSample, RouterEvent, RouterInfo,
};

use super::subject::{
    ALERT_PREFIX, CHECK_RESULT_PREFIX, CONSENSUS_PREFIX, DELIVERY_PREFIX, EVENT_PREFIX, IFACE_SAMPLE_PREFIX,
    INCIDENT_PREFIX, METRIC_PREFIX, ROUTER_INFO_PREFIX,
};
use super::{BusError, Message, subject};

/// Most bytes of a subject or token an error quotes.
pub const QUOTE: usize = 100;
/// Most payload bytes an excerpt shows (escaped, so at most four times as many characters).
pub const EXCERPT: usize = 24;

/// One message of the bus, typed by its subject.
#[derive(Debug, Clone, PartialEq)]
pub enum BusEvent {
    /// `pantau.check.result.<location>.<target_id>`
    CheckResult(CheckResult),
    /// `pantau.iface.sample.<router_id>.<if_index>`
    InterfaceSample(InterfaceSample),
    /// `pantau.router.info.<router_id>`
    RouterInfo(RouterInfo),
    /// `pantau.event.<kind>.<source>`; `event.kind` equals `kind`.
    Event { kind: EventKind, event: RouterEvent },
    /// `pantau.metric.<name>`
    Metric(MetricSample),
    /// `pantau.alert.<state>.<alert_id>`; `alert.state` equals `state`.
    Alert { state: AlertState, alert: AlertEvent },
    /// `pantau.incident.<kind>.<incident_id>`; `incident.entry.kind` equals
    /// `kind`, `incident.incident_id` the subject's id, and the state is known.
    Incident {
        kind: IncidentEntryKind,
        incident: IncidentEvent,
    },
    /// `pantau.delivery.<outcome>.<alert_id>`; `delivery.outcome` equals
    /// `outcome`, `delivery.alert_id` the subject's id, and the alert state
    /// and error class are known values.
    Delivery {
        outcome: DeliveryOutcome,
        delivery: DeliveryEvent,
    },
    /// `pantau.consensus.<target_id>`
    Consensus(ConsensusResult),
}

/// Why a bus message is not a [`BusEvent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("subject `{subject}` is not a Pantau subject: {reason}")]
    Subject { subject: String, reason: &'static str },
    #[error("subject `{subject}` names an unknown {what} `{token}`")]
    UnknownToken {
        subject: String,
        what: &'static str,
        token: String,
    },
    #[error("the payload on `{subject}` is not a {message_type} ({len} bytes, starting `{excerpt}`): {source}")]
    Payload {
        subject: String,
        message_type: &'static str,
        len: usize,
        excerpt: String,
        #[source]
        source: prost::DecodeError,
    },
    #[error("subject `{subject}` says {what} `{from_subject}` but its {message_type} says `{from_payload}`")]
    Mismatch {
        subject: String,
        message_type: &'static str,
        what: &'static str,
        from_subject: String,
        from_payload: String,
    },
}

impl DecodeError {
    /// The protobuf message type that failed to decode, if it came to that.
    pub fn message_type(&self) -> Option<&'static str> {
        match self {
            Self::Payload { message_type, .. } | Self::Mismatch { message_type, .. } => Some(message_type),
            Self::Subject { .. } | Self::UnknownToken { .. } => None,
        }
    }
}

impl BusEvent {
    /// Decodes a received message by its subject.
    pub fn decode(msg: &Message) -> Result<Self, DecodeError> {
        Self::decode_parts(&msg.subject, &msg.payload)
    }

    /// Decodes `payload` as what `subject` says it is.
    pub fn decode_parts(subject: &str, payload: &[u8]) -> Result<Self, DecodeError> {
        if let Err(BusError::InvalidSubject { reason, .. }) = subject::validate_publish(subject) {
            return Err(DecodeError::Subject {
                subject: clip(subject),
                reason,
            });
        }
        let bad = |reason| DecodeError::Subject {
            subject: clip(subject),
            reason,
        };
        // Tokens after the family's prefix, at least `min` of them.
        let rest = |prefix: &str, min: usize, reason: &'static str| -> Result<Vec<&str>, DecodeError> {
            let tokens: Vec<&str> = subject[prefix.len()..].split('.').collect();
            if tokens.len() < min {
                Err(bad(reason))
            } else {
                Ok(tokens)
            }
        };
        if subject.starts_with(CHECK_RESULT_PREFIX) {
            rest(CHECK_RESULT_PREFIX, 2, "a check result needs `<location>.<target_id>`")?;
            payload_as(subject, payload, "CheckResult").map(Self::CheckResult)
        } else if subject.starts_with(IFACE_SAMPLE_PREFIX) {
            rest(
                IFACE_SAMPLE_PREFIX,
                2,
                "an interface sample needs `<router_id>.<if_index>`",
            )?;
            payload_as(subject, payload, "InterfaceSample").map(Self::InterfaceSample)
        } else if subject.starts_with(ROUTER_INFO_PREFIX) {
            payload_as(subject, payload, "RouterInfo").map(Self::RouterInfo)
        } else if subject.starts_with(EVENT_PREFIX) {
            let tokens = rest(EVENT_PREFIX, 2, "an event needs `<kind>.<source>`")?;
            let kind = event_kind(tokens[0]).ok_or_else(|| DecodeError::UnknownToken {
                subject: clip(subject),
                what: "event kind",
                token: clip(tokens[0]),
            })?;
            let mut event: RouterEvent = payload_as(subject, payload, "RouterEvent")?;
            match EventKind::try_from(event.kind) {
                Ok(EventKind::Unspecified) => event.kind = kind.into(),
                Ok(k) if k == kind => {}
                other => {
                    return Err(DecodeError::Mismatch {
                        subject: clip(subject),
                        message_type: "RouterEvent",
                        what: "event kind",
                        from_subject: event_kind_token(kind),
                        from_payload: other.map_or_else(|_| event.kind.to_string(), event_kind_token),
                    });
                }
            }
            Ok(Self::Event { kind, event })
        } else if subject.starts_with(METRIC_PREFIX) {
            payload_as(subject, payload, "MetricSample").map(Self::Metric)
        } else if subject.starts_with(ALERT_PREFIX) {
            let tokens = rest(ALERT_PREFIX, 2, "an alert needs `<state>.<alert_id>`")?;
            let state = alert_state(tokens[0]).ok_or_else(|| DecodeError::UnknownToken {
                subject: clip(subject),
                what: "alert state",
                token: clip(tokens[0]),
            })?;
            let mut alert: AlertEvent = payload_as(subject, payload, "AlertEvent")?;
            match AlertState::try_from(alert.state) {
                Ok(AlertState::Unspecified) => alert.state = state.into(),
                Ok(s) if s == state => {}
                other => {
                    return Err(DecodeError::Mismatch {
                        subject: clip(subject),
                        message_type: "AlertEvent",
                        what: "alert state",
                        from_subject: alert_state_token(state),
                        from_payload: other.map_or_else(|_| alert.state.to_string(), alert_state_token),
                    });
                }
            }
            Ok(Self::Alert { state, alert })
        } else if subject.starts_with(INCIDENT_PREFIX) {
            let tokens = rest(INCIDENT_PREFIX, 2, "an incident needs `<kind>.<incident_id>`")?;
            let kind = incident_kind(tokens[0]).ok_or_else(|| DecodeError::UnknownToken {
                subject: clip(subject),
                what: "incident entry kind",
                token: clip(tokens[0]),
            })?;
            let mut incident: IncidentEvent = payload_as(subject, payload, "IncidentEvent")?;
            let entry = incident.entry.get_or_insert_with(Default::default);
            match IncidentEntryKind::try_from(entry.kind) {
                Ok(IncidentEntryKind::Unspecified) => entry.kind = kind.into(),
                Ok(k) if k == kind => {}
                other => {
                    return Err(DecodeError::Mismatch {
                        subject: clip(subject),
                        message_type: "IncidentEvent",
                        what: "incident entry kind",
                        from_subject: incident_kind_token(kind),
                        from_payload: other.map_or_else(|_| entry.kind.to_string(), incident_kind_token),
                    });
                }
            }
            let id = tokens[1..].join(".");
            if incident.incident_id.is_empty() {
                incident.incident_id.clone_from(&id);
            } else if incident.incident_id != id {
                return Err(DecodeError::Mismatch {
                    subject: clip(subject),
                    message_type: "IncidentEvent",
                    what: "incident id",
                    from_subject: clip(&id),
                    from_payload: clip(&incident.incident_id),
                });
            }
            if !matches!(
                IncidentState::try_from(incident.state),
                Ok(IncidentState::Open | IncidentState::Acknowledged | IncidentState::Resolved)
            ) {
                return Err(DecodeError::UnknownToken {
                    subject: clip(subject),
                    what: "incident state in the IncidentEvent",
                    token: incident.state.to_string(),
                });
            }
            Ok(Self::Incident { kind, incident })
        } else if subject.starts_with(DELIVERY_PREFIX) {
            let tokens = rest(DELIVERY_PREFIX, 2, "a delivery needs `<outcome>.<alert_id>`")?;
            let outcome = delivery_outcome(tokens[0]).ok_or_else(|| DecodeError::UnknownToken {
                subject: clip(subject),
                what: "delivery outcome",
                token: clip(tokens[0]),
            })?;
            let delivery: DeliveryEvent = payload_as(subject, payload, "DeliveryEvent")?;
            decode_delivery(subject, outcome, &tokens[1..].join("."), delivery)
        } else if subject.starts_with(CONSENSUS_PREFIX) {
            payload_as(subject, payload, "ConsensusResult").map(Self::Consensus)
        } else if subject.starts_with("pantau.") {
            Err(bad("no message family has this prefix"))
        } else {
            Err(bad("it is not under `pantau.`"))
        }
    }

    /// The bounded family name, for metric labels and logs: `check`, `iface`,
    /// `info`, `event`, `metric`, `alert`, `incident`, `delivery` or `consensus`.
    pub fn family(&self) -> &'static str {
        match self {
            Self::CheckResult(_) => "check",
            Self::InterfaceSample(_) => "iface",
            Self::RouterInfo(_) => "info",
            Self::Event { .. } => "event",
            Self::Metric(_) => "metric",
            Self::Alert { .. } => "alert",
            Self::Incident { .. } => "incident",
            Self::Delivery { .. } => "delivery",
            Self::Consensus(_) => "consensus",
        }
    }
}

/// The checks of a `DeliveryEvent` on `subject`: its outcome and alert id
/// agree with the subject's (or are filled in from it), its alert state and
/// error class are values this version knows, and a failure has a class.
fn decode_delivery(
    subject: &str,
    outcome: DeliveryOutcome,
    id: &str,
    mut delivery: DeliveryEvent,
) -> Result<BusEvent, DecodeError> {
    let mismatch = |what, from_subject: String, from_payload: String| DecodeError::Mismatch {
        subject: clip(subject),
        message_type: "DeliveryEvent",
        what,
        from_subject,
        from_payload,
    };
    match DeliveryOutcome::try_from(delivery.outcome) {
        Ok(DeliveryOutcome::Unspecified) => delivery.outcome = outcome.into(),
        Ok(o) if o == outcome => {}
        other => {
            return Err(mismatch(
                "delivery outcome",
                delivery_outcome_token(outcome),
                other.map_or_else(|_| delivery.outcome.to_string(), delivery_outcome_token),
            ));
        }
    }
    if delivery.alert_id.is_empty() {
        id.clone_into(&mut delivery.alert_id);
    } else if delivery.alert_id != id {
        return Err(mismatch("alert id", clip(id), clip(&delivery.alert_id)));
    }
    let unknown = |what, token: i32| DecodeError::UnknownToken {
        subject: clip(subject),
        what,
        token: token.to_string(),
    };
    if !matches!(
        AlertState::try_from(delivery.alert_state),
        Ok(AlertState::Firing | AlertState::Acknowledged | AlertState::Resolved)
    ) {
        return Err(unknown("alert state in the DeliveryEvent", delivery.alert_state));
    }
    match (outcome, DeliveryErrorClass::try_from(delivery.error_class)) {
        (_, Err(_)) | (DeliveryOutcome::Failed, Ok(DeliveryErrorClass::Unspecified)) => {
            return Err(unknown("error class in the DeliveryEvent", delivery.error_class));
        }
        _ => {}
    }
    Ok(BusEvent::Delivery { outcome, delivery })
}

fn payload_as<M: prost::Message + Default>(
    subject: &str,
    payload: &[u8],
    message_type: &'static str,
) -> Result<M, DecodeError> {
    M::decode(payload).map_err(|source| DecodeError::Payload {
        subject: clip(subject),
        message_type,
        len: payload.len(),
        excerpt: excerpt(payload),
        source,
    })
}

/// The kind a subject's `<kind>` token names (`target_down`), never `Unspecified`.
pub fn event_kind(token: &str) -> Option<EventKind> {
    if token.len() > 32 {
        return None;
    }
    EventKind::from_str_name(&format!("EVENT_KIND_{}", token.to_ascii_uppercase()))
        .filter(|k| *k != EventKind::Unspecified && event_kind_token(*k) == token)
}

/// The subject token of an event kind: its name in lower case without the prefix.
pub fn event_kind_token(kind: EventKind) -> String {
    kind.as_str_name()
        .trim_start_matches("EVENT_KIND_")
        .to_ascii_lowercase()
}

/// The state a subject's `<state>` token names (`firing`), never `Unspecified`.
pub fn alert_state(token: &str) -> Option<AlertState> {
    if token.len() > 32 {
        return None;
    }
    AlertState::from_str_name(&format!("ALERT_STATE_{}", token.to_ascii_uppercase()))
        .filter(|s| *s != AlertState::Unspecified && alert_state_token(*s) == token)
}

/// The subject token of an alert state.
pub fn alert_state_token(state: AlertState) -> String {
    state
        .as_str_name()
        .trim_start_matches("ALERT_STATE_")
        .to_ascii_lowercase()
}

/// The entry kind a subject's `<kind>` token names (`joined`), never `Unspecified`.
pub fn incident_kind(token: &str) -> Option<IncidentEntryKind> {
    if token.len() > 32 {
        return None;
    }
    IncidentEntryKind::from_str_name(&format!("INCIDENT_ENTRY_KIND_{}", token.to_ascii_uppercase()))
        .filter(|k| *k != IncidentEntryKind::Unspecified && incident_kind_token(*k) == token)
}

/// The subject token of an incident entry kind.
pub fn incident_kind_token(kind: IncidentEntryKind) -> String {
    kind.as_str_name()
        .trim_start_matches("INCIDENT_ENTRY_KIND_")
        .to_ascii_lowercase()
}

/// The outcome a subject's `<outcome>` token names (`delivered`, `failed`),
/// never `Unspecified`.
pub fn delivery_outcome(token: &str) -> Option<DeliveryOutcome> {
    if token.len() > 32 {
        return None;
    }
    DeliveryOutcome::from_str_name(&format!("DELIVERY_OUTCOME_{}", token.to_ascii_uppercase()))
        .filter(|o| *o != DeliveryOutcome::Unspecified && delivery_outcome_token(*o) == token)
}

/// The subject token of a delivery outcome.
pub fn delivery_outcome_token(outcome: DeliveryOutcome) -> String {
    outcome
        .as_str_name()
        .trim_start_matches("DELIVERY_OUTCOME_")
        .to_ascii_lowercase()
}

/// The name of a delivery error class (`no_answer`, `rejected`, …; `none`
/// for unspecified).
pub fn delivery_error_class_token(class: DeliveryErrorClass) -> String {
    match class {
        DeliveryErrorClass::Unspecified => "none".to_owned(),
        c => c
            .as_str_name()
            .trim_start_matches("DELIVERY_ERROR_CLASS_")
            .to_ascii_lowercase(),
    }
}

/// The subject token of an incident state (`open`, `acknowledged`, `resolved`).
pub fn incident_state_token(state: IncidentState) -> String {
    state
        .as_str_name()
        .trim_start_matches("INCIDENT_STATE_")
        .to_ascii_lowercase()
}

/// At most [`QUOTE`] bytes of `s` (cut at a character boundary), with `…`
/// when something was cut.
pub fn clip(s: &str) -> String {
    if s.len() <= QUOTE {
        return s.to_owned();
    }
    let mut end = QUOTE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The first [`EXCERPT`] bytes of a payload, escaped as ASCII, with `…`
/// when there is more.
pub fn excerpt(payload: &[u8]) -> String {
    let shown = &payload[..payload.len().min(EXCERPT)];
    let mut out = shown.escape_ascii().to_string();
    if payload.len() > EXCERPT {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
