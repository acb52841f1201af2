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
mod tests {
    use pantau_proto::prost::Message as _;

    use super::*;

    fn ok(subject: &str, payload: &[u8]) -> BusEvent {
        BusEvent::decode_parts(subject, payload).unwrap_or_else(|e| panic!("{subject}: {e}"))
    }

    fn err(subject: &str, payload: &[u8]) -> DecodeError {
        match BusEvent::decode_parts(subject, payload) {
            Ok(e) => panic!("{subject} decoded as {e:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn every_subject_family_decodes_to_its_variant() {
        let check = CheckResult {
            target_id: "web".into(),
            location: "jkt".into(),
            ..Default::default()
        };
        assert_eq!(
            ok(&subject::check_result("jkt", "web"), &check.encode_to_vec()),
            BusEvent::CheckResult(check)
        );
        let sample = InterfaceSample {
            router_id: "r1".into(),
            if_index: 4,
            ..Default::default()
        };
        assert_eq!(
            ok(&subject::iface_sample("r1", 4), &sample.encode_to_vec()),
            BusEvent::InterfaceSample(sample)
        );
        let info = RouterInfo {
            router_id: "r1".into(),
            ..Default::default()
        };
        assert_eq!(
            ok(&subject::router_info("r1"), &info.encode_to_vec()),
            BusEvent::RouterInfo(info)
        );
        let metric = MetricSample {
            name: "cpu".into(),
            value: 0.5,
            ..Default::default()
        };
        assert_eq!(
            ok(&subject::metric("cpu"), &metric.encode_to_vec()),
            BusEvent::Metric(metric)
        );
        let consensus = ConsensusResult {
            target_id: "web".into(),
            ..Default::default()
        };
        assert_eq!(
            ok(&subject::consensus("web"), &consensus.encode_to_vec()),
            BusEvent::Consensus(consensus)
        );
        for (i, kind) in [
            EventKind::Traffic,
            EventKind::CounterReset,
            EventKind::Reboot,
            EventKind::WanDetected,
            EventKind::InterfaceUp,
            EventKind::InterfaceDown,
            EventKind::MetricsUpdate,
            EventKind::CertExpiring,
            EventKind::Instance,
            EventKind::TargetUp,
            EventKind::TargetDown,
        ]
        .into_iter()
        .enumerate()
        {
            let token = event_kind_token(kind);
            let event = RouterEvent {
                source: "r1".into(),
                kind: kind.into(),
                ..Default::default()
            };
            let got = ok(&subject::event(&token, "r1"), &event.encode_to_vec());
            assert_eq!(got, BusEvent::Event { kind, event }, "kind #{i} `{token}`");
            assert_eq!(got.family(), "event");
        }
        for state in [AlertState::Firing, AlertState::Acknowledged, AlertState::Resolved] {
            let alert = AlertEvent {
                alert_id: "a1".into(),
                state: state.into(),
                ..Default::default()
            };
            let subject = subject::alert(&alert_state_token(state), "a1");
            assert_eq!(ok(&subject, &alert.encode_to_vec()), BusEvent::Alert { state, alert });
        }
    }

    #[test]
    fn the_subject_fills_in_an_unspecified_kind_or_state() {
        let got = ok("pantau.event.reboot.r1", &RouterEvent::default().encode_to_vec());
        let BusEvent::Event { kind, event } = got else {
            panic!("{got:?}")
        };
        assert_eq!((kind, event.kind()), (EventKind::Reboot, EventKind::Reboot));
        let got = ok("pantau.alert.resolved.a1", &[]);
        let BusEvent::Alert { state, alert } = got else {
            panic!("{got:?}")
        };
        assert_eq!((state, alert.state()), (AlertState::Resolved, AlertState::Resolved));
    }

    #[test]
    fn garbage_names_the_subject_and_the_message_type() {
        let e = err("pantau.alert.firing.a1", b"garbage");
        assert_eq!(e.message_type(), Some("AlertEvent"));
        let text = e.to_string();
        assert!(text.contains("pantau.alert.firing.a1"), "{text}");
        assert!(text.contains("AlertEvent"), "{text}");
        assert!(text.contains("garbage"), "{text}");
        assert!(text.contains("7 bytes"), "{text}");
    }

    #[test]
    fn truncated_protobuf_is_an_error() {
        let check = CheckResult {
            target_id: "a-target-with-a-long-enough-id".into(),
            message: "x".repeat(200),
            ..Default::default()
        };
        let bytes = check.encode_to_vec();
        for cut in [1, 5, bytes.len() / 2, bytes.len() - 1] {
            let e = err("pantau.check.result.jkt.web", &bytes[..cut]);
            assert_eq!(e.message_type(), Some("CheckResult"), "cut at {cut}: {e}");
            assert!(e.to_string().len() < 400, "cut at {cut}: {e}");
        }
    }

    #[test]
    fn unknown_kinds_and_states_are_named() {
        let e = err("pantau.event.explosion.r1", &[]);
        assert!(
            matches!(&e, DecodeError::UnknownToken { what: "event kind", token, .. } if token == "explosion"),
            "{e}"
        );
        for token in ["unspecified", "Reboot", "REBOOT", "event_kind_reboot"] {
            let e = err(&format!("pantau.event.{token}.r1"), &[]);
            assert!(matches!(e, DecodeError::UnknownToken { .. }), "{token}: {e}");
        }
        let e = err("pantau.alert.exploded.a1", &[]);
        assert!(
            matches!(
                &e,
                DecodeError::UnknownToken {
                    what: "alert state",
                    ..
                }
            ),
            "{e}"
        );
        assert!(matches!(
            err("pantau.alert.unspecified.a1", &[]),
            DecodeError::UnknownToken { .. }
        ));
    }

    #[test]
    fn a_payload_contradicting_its_subject_is_refused() {
        let event = RouterEvent {
            kind: EventKind::TargetUp.into(),
            ..Default::default()
        };
        let e = err("pantau.event.target_down.web", &event.encode_to_vec());
        assert_eq!(
            e.to_string(),
            "subject `pantau.event.target_down.web` says event kind `target_down` but its RouterEvent says `target_up`"
        );
        let alert = AlertEvent {
            state: AlertState::Firing.into(),
            ..Default::default()
        };
        let e = err("pantau.alert.resolved.a1", &alert.encode_to_vec());
        assert!(
            matches!(
                e,
                DecodeError::Mismatch {
                    what: "alert state",
                    ..
                }
            ),
            "{e}"
        );
        let alert = AlertEvent {
            state: 99,
            ..Default::default()
        };
        let e = err("pantau.alert.resolved.a1", &alert.encode_to_vec());
        assert!(e.to_string().ends_with("says `99`"), "{e}");
    }

    #[test]
    fn subjects_outside_the_contract_are_refused() {
        for (subject, reason) in [
            ("", "it is empty"),
            ("other.thing", "it is not under `pantau.`"),
            ("pantau.unknown.x", "no message family has this prefix"),
            (
                "pantau.check.result.jkt",
                "a check result needs `<location>.<target_id>`",
            ),
            (
                "pantau.iface.sample.r1",
                "an interface sample needs `<router_id>.<if_index>`",
            ),
            ("pantau.event.reboot", "an event needs `<kind>.<source>`"),
            ("pantau.alert.firing", "an alert needs `<state>.<alert_id>`"),
            ("pantau.check.result", "no message family has this prefix"),
            ("pantau.check.result..web", "it has an empty token"),
            ("pantau.check.result.*.web", "wildcards are only for subscriptions"),
            ("pantau.metric.a b", "it contains whitespace"),
            ("pantau.deadletter.notifier", "no message family has this prefix"),
            ("pantau.event.consensus.web", "names an unknown event kind"),
        ] {
            let e = err(subject, &[]);
            assert!(e.to_string().contains(reason), "{subject:?}: {e}");
        }
    }

    #[test]
    fn huge_subjects_and_payloads_are_quoted_briefly() {
        let subject = format!("pantau.check.result.jkt.{}", "é".repeat(10_000));
        let e = err(&subject, &vec![0xff; 100_000]);
        let text = e.to_string();
        assert!(text.len() < 500, "{} bytes: {text}", text.len());
        assert!(text.contains('…'), "{text}");
        let e = err(&format!("pantau.event.{}.r1", "x".repeat(5_000)), &[]);
        assert!(e.to_string().len() < 300, "{e}");
    }

    #[test]
    fn clip_and_excerpt_are_bounded() {
        assert_eq!(clip("short"), "short");
        let long = "ü".repeat(200);
        let clipped = clip(&long);
        assert!(clipped.len() <= QUOTE + '…'.len_utf8(), "{}", clipped.len());
        assert!(clipped.ends_with('…'));
        assert_eq!(excerpt(b"ab\x00\n"), "ab\\x00\\n");
        let e = excerpt(&[0xff; 1000]);
        assert_eq!(e, format!("{}…", "\\xff".repeat(EXCERPT)));
    }

    #[test]
    fn incident_events_are_strict_about_kind_id_and_state() {
        use pantau_proto::v1::IncidentEntry;
        let good = IncidentEvent {
            incident_id: "i1".into(),
            state: IncidentState::Open.into(),
            entry: Some(IncidentEntry {
                kind: IncidentEntryKind::Joined.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let subject = subject::incident("joined", "i1");
        assert_eq!(
            ok(&subject, &good.encode_to_vec()),
            BusEvent::Incident {
                kind: IncidentEntryKind::Joined,
                incident: good.clone()
            }
        );
        // The subject fills in what the payload leaves out.
        let mut bare = good.clone();
        bare.incident_id.clear();
        bare.entry = None;
        let BusEvent::Incident { kind, incident } = ok(&subject, &bare.encode_to_vec()) else {
            panic!("not an incident")
        };
        assert_eq!(kind, IncidentEntryKind::Joined);
        assert_eq!(incident.incident_id, "i1");
        assert_eq!(incident.entry.unwrap().kind(), IncidentEntryKind::Joined);
        // Unknown kinds, contradictions and unknown states are refused, named.
        for bad in [
            "pantau.incident.exploded.i1",
            "pantau.incident.unspecified.i1",
            "pantau.incident.JOINED.i1",
        ] {
            let e = err(bad, &good.encode_to_vec());
            assert!(e.to_string().contains("incident entry kind"), "{e}");
        }
        assert!(
            err("pantau.incident.joined", &[])
                .to_string()
                .contains("<kind>.<incident_id>")
        );
        let e = err(&subject::incident("resolved", "i1"), &good.encode_to_vec());
        assert!(
            matches!(
                e,
                DecodeError::Mismatch {
                    what: "incident entry kind",
                    ..
                }
            ),
            "{e}"
        );
        let e = err(&subject::incident("joined", "i2"), &good.encode_to_vec());
        assert!(
            matches!(
                e,
                DecodeError::Mismatch {
                    what: "incident id",
                    ..
                }
            ),
            "{e}"
        );
        for state in [0, 4, -1, i32::MAX] {
            let mut x = good.clone();
            x.state = state;
            let e = err(&subject, &x.encode_to_vec());
            assert!(e.to_string().contains("incident state"), "{e}");
        }
        let e = err(&subject, b"\xff\xff garbage");
        assert_eq!(e.message_type(), Some("IncidentEvent"));
        let huge = IncidentEvent {
            title: "x".repeat(1 << 20),
            ..good
        };
        assert!(matches!(ok(&subject, &huge.encode_to_vec()), BusEvent::Incident { .. }));
    }

    #[test]
    fn delivery_events_are_strict_about_outcome_id_state_and_class() {
        let good = DeliveryEvent {
            alert_id: "a1".into(),
            delivery_id: "0123456789abcdef0123456789abcdef".into(),
            channel: "ops".into(),
            channel_type: "webhook".into(),
            alert_state: AlertState::Firing.into(),
            attempts: 1,
            outcome: DeliveryOutcome::Delivered.into(),
            ..Default::default()
        };
        let subject = subject::delivery("delivered", "a1");
        assert_eq!(
            ok(&subject, &good.encode_to_vec()),
            BusEvent::Delivery {
                outcome: DeliveryOutcome::Delivered,
                delivery: good.clone()
            }
        );
        assert_eq!(ok(&subject, &good.encode_to_vec()).family(), "delivery");
        // The subject fills in what the payload leaves out.
        let mut bare = good.clone();
        bare.alert_id.clear();
        bare.outcome = 0;
        let BusEvent::Delivery { outcome, delivery } = ok(&subject, &bare.encode_to_vec()) else {
            panic!("not a delivery")
        };
        assert_eq!(
            (outcome, delivery.outcome()),
            (DeliveryOutcome::Delivered, DeliveryOutcome::Delivered)
        );
        assert_eq!(delivery.alert_id, "a1");
        // Unknown outcomes, contradictions, unknown states and classes are refused, named.
        for bad in [
            "pantau.delivery.exploded.a1",
            "pantau.delivery.unspecified.a1",
            "pantau.delivery.DELIVERED.a1",
        ] {
            let e = err(bad, &good.encode_to_vec());
            assert!(e.to_string().contains("delivery outcome"), "{e}");
        }
        assert!(
            err("pantau.delivery.failed", &[])
                .to_string()
                .contains("<outcome>.<alert_id>")
        );
        let e = err(&subject::delivery("failed", "a1"), &good.encode_to_vec());
        assert!(
            matches!(
                e,
                DecodeError::Mismatch {
                    what: "delivery outcome",
                    ..
                }
            ),
            "{e}"
        );
        let e = err(&subject::delivery("delivered", "a2"), &good.encode_to_vec());
        assert!(matches!(e, DecodeError::Mismatch { what: "alert id", .. }), "{e}");
        for state in [0, 4, -1, i32::MAX] {
            let x = DeliveryEvent {
                alert_state: state,
                ..good.clone()
            };
            let e = err(&subject, &x.encode_to_vec());
            assert!(e.to_string().contains("alert state"), "{e}");
        }
        for class in [6, -1, i32::MIN] {
            let x = DeliveryEvent {
                error_class: class,
                ..good.clone()
            };
            let e = err(&subject, &x.encode_to_vec());
            assert!(e.to_string().contains("error class"), "{e}");
        }
        // A failure says why.
        let failed = DeliveryEvent {
            outcome: DeliveryOutcome::Failed.into(),
            ..good.clone()
        };
        let e = err(&subject::delivery("failed", "a1"), &failed.encode_to_vec());
        assert!(e.to_string().contains("error class"), "{e}");
        let failed = DeliveryEvent {
            error_class: DeliveryErrorClass::NoAnswer.into(),
            ..failed
        };
        assert!(matches!(
            ok(&subject::delivery("failed", "a1"), &failed.encode_to_vec()),
            BusEvent::Delivery {
                outcome: DeliveryOutcome::Failed,
                ..
            }
        ));
        let e = err(&subject, b"\xff\xff garbage");
        assert_eq!(e.message_type(), Some("DeliveryEvent"));
        assert_eq!(delivery_error_class_token(DeliveryErrorClass::NoAnswer), "no_answer");
        assert_eq!(delivery_error_class_token(DeliveryErrorClass::Unspecified), "none");
        assert_eq!(delivery_outcome("failed"), Some(DeliveryOutcome::Failed));
        assert_eq!(delivery_outcome(&"x".repeat(10_000)), None);
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics_and_quotes_briefly(
            subject in proptest::prop_oneof![
                proptest::string::string_regex("pantau\\.(check\\.result|iface\\.sample|router\\.info|event|metric|alert|incident|delivery|consensus|deadletter)(\\.[a-z_]{0,12}){0,4}").unwrap(),
                proptest::string::string_regex(".{0,400}").unwrap(),
            ],
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
        ) {
            match BusEvent::decode_parts(&subject, &payload) {
                Ok(event) => proptest::prop_assert!(subject.starts_with("pantau."), "{event:?}"),
                Err(e) => {
                    let text = e.to_string();
                    proptest::prop_assert!(text.len() < 3 * QUOTE + 4 * EXCERPT + 300, "{} bytes: {text}", text.len());
                }
            }
        }
    }
}
