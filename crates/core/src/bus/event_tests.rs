//! The bus decoder's contract: every family, and hostile messages refused by name.

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
