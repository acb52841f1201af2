//! The hostile messages: for every subject family a service consumes,
//! garbage bytes, messages of another type and well-typed messages with
//! extreme values; and the valid ones that prove a consumer goes on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pantau_core::bus::{Bus, Headers, subject};
use pantau_proto::v1::{
    AlertEvent, AlertState, CheckResult, CheckStatus, ConsensusResult, ConsensusStatus, DeliveryErrorClass,
    DeliveryEvent, DeliveryOutcome, EventKind, IncidentEntry, IncidentEntryKind, IncidentEvent, IncidentState,
    InterfaceSample, MetricSample, RouterEvent, RouterInfo, RouterInterface, Severity,
};
use prost::Message as _;
use prost_types::Timestamp;

fn ts(seconds: i64, nanos: i32) -> Timestamp {
    Timestamp { seconds, nanos }
}

fn now_ts() -> Timestamp {
    pantau_core::time::to_timestamp(SystemTime::now())
}

/// Timestamps no clock shows: year 0, past year 10000, the extremes of
/// i64, nanos out of range.
fn extreme_times() -> Vec<Option<Timestamp>> {
    vec![
        Some(ts(-62_167_219_200, 0)),    // 0000-01-01
        Some(ts(-62_198_755_200, 0)),    // year -1
        Some(ts(253_402_300_800, 0)),    // 10000-01-01
        Some(ts(32_503_680_000_000, 0)), // year ~1 000 000
        Some(ts(i64::MAX, 999_999_999)),
        Some(ts(i64::MIN, 0)),
        Some(ts(0, -1)),
        Some(ts(1_700_000_000, 2_000_000_000)),
    ]
}

/// A string of `n` bytes with a NUL byte, an invalid-looking UTF-8 sequence
/// spelled out, and characters of several widths.
fn huge(n: usize) -> String {
    let mut s = String::from("nul\0é€𝄞<script>");
    while s.len() < n {
        s.push_str("ab.cd>*");
    }
    s
}

fn many_labels() -> std::collections::HashMap<String, String> {
    (0..10_000).map(|i| (format!("l{i}"), huge(16))).collect()
}

/// Bytes that are no protobuf of anything (deterministic).
fn garbage() -> Vec<Vec<u8>> {
    let mut x: u32 = 0x9e37_79b9;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect();
    vec![
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        b"{\"target_id\": \"json is not protobuf\"}".to_vec(),
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], // a length past the end
        vec![0x3a, 0x02, 0x08],                   // a truncated nested message
        noise,
    ]
}

fn checks() -> Vec<CheckResult> {
    let mut out: Vec<CheckResult> = extreme_times()
        .into_iter()
        .map(|t| CheckResult {
            target_id: "fuzz-time".into(),
            location: "jkt".into(),
            status: CheckStatus::Down.into(),
            checked_at: t,
            latency: Some(prost_types::Duration {
                seconds: i64::MAX,
                nanos: -5,
            }),
            ..Default::default()
        })
        .collect();
    out.push(CheckResult {
        target_id: huge(256 * 1024),
        target_name: huge(64 * 1024),
        location: huge(1024),
        status: 99,
        kind: 1234,
        reason: -7,
        breaker: 77,
        message: huge(200 * 1024),
        checked_at: Some(now_ts()),
        ..Default::default()
    });
    out.push(CheckResult {
        target_id: "fuzz-labels".into(),
        status: CheckStatus::Down.into(),
        labels: many_labels(),
        checked_at: Some(now_ts()),
        ..Default::default()
    });
    out.push(CheckResult::default());
    out
}

fn samples() -> Vec<InterfaceSample> {
    let mut out: Vec<InterfaceSample> = extreme_times()
        .into_iter()
        .map(|t| InterfaceSample {
            router_id: "fuzz-gw".into(),
            if_index: 1,
            if_name: "ether1".into(),
            sampled_at: t,
            in_bits_per_second: f64::NAN,
            out_bits_per_second: f64::INFINITY,
            in_packets_per_second: f64::NEG_INFINITY,
            in_octets: u64::MAX,
            speed_bits_per_second: u64::MAX,
            rates_valid: true,
            ..Default::default()
        })
        .collect();
    out.push(InterfaceSample {
        router_id: huge(128 * 1024),
        if_index: u32::MAX,
        if_name: huge(128 * 1024),
        if_alias: huge(64 * 1024),
        counter_bits: 7,
        sampled_at: Some(now_ts()),
        ..Default::default()
    });
    out.push(InterfaceSample::default());
    out
}

fn infos() -> Vec<RouterInfo> {
    let iface = |i: u32| RouterInterface {
        if_index: i,
        if_name: huge(300),
        in_bits_per_second: f64::NAN,
        out_bits_per_second: f64::MAX,
        speed_bits_per_second: u64::MAX,
        if_type: i32::MIN,
        addresses: vec![huge(100), "999.1.1.1/99".into(), "::g".into()],
        ..Default::default()
    };
    let mut out: Vec<RouterInfo> = extreme_times()
        .into_iter()
        .map(|t| RouterInfo {
            router_id: "fuzz-odd".into(),
            polled_at: t,
            uptime: Some(prost_types::Duration {
                seconds: i64::MIN,
                nanos: 0,
            }),
            default_route_if_indexes: vec![u32::MAX, 0, 1],
            interfaces: vec![iface(1), iface(1), iface(u32::MAX)],
            ..Default::default()
        })
        .collect();
    out.push(RouterInfo {
        router_id: huge(64 * 1024),
        sys_descr: huge(200 * 1024),
        interfaces: (0..500).map(iface).collect(),
        polled_at: Some(now_ts()),
        ..Default::default()
    });
    out.push(RouterInfo::default());
    out
}

fn events() -> Vec<(String, RouterEvent)> {
    let attrs = |pairs: &[(&str, String)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let mut out = Vec::new();
    for t in extreme_times() {
        out.push((
            subject::event("reboot", "fuzz-gw"),
            RouterEvent {
                kind: EventKind::Reboot.into(),
                source: "fuzz-gw".into(),
                occurred_at: t,
                ..Default::default()
            },
        ));
    }
    for (kind, ek) in [
        ("metrics_update", EventKind::MetricsUpdate),
        ("cert_expiring", EventKind::CertExpiring),
        ("wan_detected", EventKind::WanDetected),
        ("target_down", EventKind::TargetDown),
        ("counter_reset", EventKind::CounterReset),
    ] {
        for value in ["NaN", "inf", "-inf", "1e999", "", "unhealthy"] {
            out.push((
                subject::event(kind, "fuzz-src"),
                RouterEvent {
                    kind: ek.into(),
                    source: "fuzz-src".into(),
                    occurred_at: Some(now_ts()),
                    severity: 42,
                    message: huge(1024),
                    attributes: attrs(&[
                        ("fact", "health".into()),
                        ("value", value.into()),
                        ("days", value.into()),
                        ("wan_interfaces", huge(64 * 1024)),
                        ("interface", huge(300)),
                        ("component", "database".into()),
                    ]),
                    ..Default::default()
                },
            ));
        }
    }
    // A payload whose kind disagrees with its subject, and a kind this version does not know.
    out.push((
        subject::event("reboot", "fuzz-gw"),
        RouterEvent {
            kind: EventKind::WanDetected.into(),
            occurred_at: Some(now_ts()),
            ..Default::default()
        },
    ));
    out.push((
        "pantau.event.no_such_kind.fuzz".into(),
        RouterEvent {
            kind: 999,
            occurred_at: Some(now_ts()),
            ..Default::default()
        },
    ));
    out
}

fn metrics() -> Vec<MetricSample> {
    let mut out = Vec::new();
    for value in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        f64::MIN_POSITIVE,
        -0.0,
    ] {
        for t in [
            Some(now_ts()),
            Some(ts(253_402_300_800, 0)),
            Some(ts(-62_167_219_200, 0)),
            Some(ts(0, -1)),
        ] {
            out.push(MetricSample {
                name: "cpu_usage".into(),
                value,
                labels: [("host".to_owned(), "fuzz".to_owned())].into(),
                observed_at: t,
                source: "fuzz".into(),
            });
        }
    }
    out.push(MetricSample {
        name: huge(128 * 1024),
        value: 1.0,
        labels: many_labels(),
        observed_at: Some(now_ts()),
        source: huge(1024),
    });
    out.push(MetricSample::default());
    out
}

fn alerts() -> Vec<(String, AlertEvent)> {
    let mut out = Vec::new();
    for t in extreme_times() {
        out.push((
            subject::alert("firing", "fuzz-a"),
            AlertEvent {
                alert_id: "fuzz-a".into(),
                rule_id: "fuzz".into(),
                state: AlertState::Firing.into(),
                severity: Severity::Critical.into(),
                starts_at: t,
                ends_at: t,
                ..Default::default()
            },
        ));
    }
    out.push((
        subject::alert("resolved", "fuzz-b"),
        AlertEvent {
            alert_id: huge(64 * 1024),
            rule_id: huge(64 * 1024),
            rule_name: huge(1024),
            state: AlertState::Resolved.into(),
            severity: 99,
            summary: huge(200 * 1024),
            description: huge(64 * 1024),
            labels: many_labels(),
            annotations: [("a".to_owned(), huge(1024))].into(),
            starts_at: Some(now_ts()),
            ends_at: Some(ts(i64::MIN, 0)),
            actor: huge(1024),
            fingerprint: huge(1024),
            instance: huge(1024),
        },
    ));
    // The state in the payload disagrees with the subject; an unknown state.
    out.push((
        subject::alert("acknowledged", "fuzz-c"),
        AlertEvent {
            alert_id: "fuzz-c".into(),
            state: AlertState::Resolved.into(),
            starts_at: Some(now_ts()),
            ..Default::default()
        },
    ));
    out.push((
        subject::alert("firing", "fuzz-d"),
        AlertEvent {
            alert_id: "fuzz-d".into(),
            state: 42,
            starts_at: Some(now_ts()),
            ..Default::default()
        },
    ));
    out.push((subject::alert("firing", "fuzz-e"), AlertEvent::default()));
    out
}

/// Incident events: extreme times, huge strings, unknown states and kinds,
/// a kind or id that disagrees with the subject, an empty message.
fn incidents() -> Vec<(String, IncidentEvent)> {
    let entry = |kind: i32, at| IncidentEntry {
        kind,
        at,
        actor: huge(1024),
        alert_id: huge(64 * 1024),
        text: huge(200 * 1024),
    };
    let mut out: Vec<(String, IncidentEvent)> = extreme_times()
        .into_iter()
        .map(|t| {
            (
                subject::incident("joined", "fuzz-i"),
                IncidentEvent {
                    incident_id: "fuzz-i".into(),
                    state: IncidentState::Open.into(),
                    severity: Severity::Critical.into(),
                    entry: Some(entry(IncidentEntryKind::Joined.into(), t)),
                    opened_at: t,
                    alerts: u32::MAX,
                    open_alerts: u32::MAX,
                    ..Default::default()
                },
            )
        })
        .collect();
    out.push((
        subject::incident("resolved", "fuzz-j"),
        IncidentEvent {
            incident_id: "fuzz-j".into(),
            state: IncidentState::Resolved.into(),
            title: huge(200 * 1024),
            severity: 99,
            group_key: huge(64 * 1024),
            root_cause: huge(64 * 1024),
            entry: Some(entry(IncidentEntryKind::Resolved.into(), Some(now_ts()))),
            opened_at: Some(ts(i64::MIN, 0)),
            instance: huge(1024),
            ..Default::default()
        },
    ));
    // A kind, an id or a state the subject does not allow.
    out.push((
        subject::incident("acknowledged", "fuzz-k"),
        IncidentEvent {
            incident_id: "fuzz-k".into(),
            state: IncidentState::Acknowledged.into(),
            entry: Some(entry(IncidentEntryKind::Commented.into(), None)),
            ..Default::default()
        },
    ));
    out.push((
        subject::incident("joined", "fuzz-l"),
        IncidentEvent {
            incident_id: "another".into(),
            state: IncidentState::Open.into(),
            ..Default::default()
        },
    ));
    out.push((
        subject::incident("joined", "fuzz-m"),
        IncidentEvent {
            incident_id: "fuzz-m".into(),
            state: 42,
            entry: Some(entry(77, None)),
            ..Default::default()
        },
    ));
    out.push(("pantau.incident.exploded.fuzz-n".into(), IncidentEvent::default()));
    out.push((subject::incident("opened", "fuzz-o"), IncidentEvent::default()));
    out
}

/// Delivery outcomes: huge strings, unknown outcomes, states and classes,
/// an outcome or alert id that disagrees with the subject, zero and huge
/// attempts, extreme times, an alert in no incident, an empty message.
fn deliveries() -> Vec<(String, DeliveryEvent)> {
    let good = |alert: &str| DeliveryEvent {
        alert_id: alert.into(),
        delivery_id: "0123456789abcdef0123456789abcdef".into(),
        channel: "sink".into(),
        channel_type: "webhook".into(),
        alert_state: AlertState::Firing.into(),
        attempts: 1,
        outcome: DeliveryOutcome::Delivered.into(),
        ..Default::default()
    };
    let mut out: Vec<(String, DeliveryEvent)> = extreme_times()
        .into_iter()
        .map(|t| {
            (
                subject::delivery("delivered", "fuzz-d"),
                DeliveryEvent {
                    at: t,
                    ..good("fuzz-d")
                },
            )
        })
        .collect();
    out.push((
        subject::delivery("failed", "fuzz-d"),
        DeliveryEvent {
            channel: huge(256 * 1024),
            channel_type: huge(64 * 1024),
            delivery_id: huge(64 * 1024),
            instance: huge(1024),
            outcome: DeliveryOutcome::Failed.into(),
            error_class: DeliveryErrorClass::NoAnswer.into(),
            attempts: u32::MAX,
            status_code: u32::MAX,
            ..good("fuzz-d")
        },
    ));
    out.push((subject::delivery("failed", "fuzz-d"), good("fuzz-d")));
    out.push((subject::delivery("delivered", "fuzz-e"), good("another")));
    out.push((
        subject::delivery("delivered", "fuzz-d"),
        DeliveryEvent {
            alert_state: 42,
            ..good("fuzz-d")
        },
    ));
    out.push((
        subject::delivery("delivered", "fuzz-d"),
        DeliveryEvent {
            error_class: 77,
            ..good("fuzz-d")
        },
    ));
    out.push((
        subject::delivery("delivered", "fuzz-d"),
        DeliveryEvent {
            attempts: 0,
            ..good("fuzz-d")
        },
    ));
    out.push(("pantau.delivery.exploded.fuzz-d".into(), good("fuzz-d")));
    out.push((subject::delivery("delivered", "fuzz-d"), DeliveryEvent::default()));
    out
}

fn consensus() -> Vec<ConsensusResult> {
    let mut out: Vec<ConsensusResult> = extreme_times()
        .into_iter()
        .map(|t| ConsensusResult {
            target_id: "fuzz-c".into(),
            window_start: t,
            window: Some(prost_types::Duration { seconds: -1, nanos: -1 }),
            status: ConsensusStatus::Down.into(),
            locations_total: u32::MAX,
            locations_successful: u32::MAX,
            quorum: 0,
            ..Default::default()
        })
        .collect();
    out.push(ConsensusResult {
        target_id: huge(64 * 1024),
        status: 17,
        down_locations: (0..5000).map(|i| format!("loc{i}")).collect(),
        window_start: Some(now_ts()),
        ..Default::default()
    });
    out
}

/// One subject of each family the services consume, for the garbage and
/// the messages of another type.
fn family_subjects() -> Vec<String> {
    vec![
        subject::check_result("jkt", "fuzz-x"),
        subject::iface_sample("fuzz-gw", 1),
        subject::router_info("fuzz-gw"),
        subject::event("reboot", "fuzz-gw"),
        subject::event("target_down", "fuzz-x"),
        subject::event("metrics_update", "fuzz"),
        "pantau.metric.cpu_usage".to_owned(),
        subject::alert("firing", "fuzz-x"),
        subject::alert("resolved", "fuzz-x"),
        subject::incident("joined", "fuzz-x"),
        subject::incident("resolved", "fuzz-x"),
        subject::delivery("delivered", "fuzz-x"),
        subject::delivery("failed", "fuzz-x"),
        subject::consensus("fuzz-x"),
        subject::maintenance("snapshot", "fuzz"),
        subject::maintenance("changed", "fuzz-w"),
        subject::maintenance("wanted", "fuzz"),
    ]
}

/// Maintenance snapshots with hostile windows and revisions: an unknown
/// `checks`, times out of range, a huge id, a revision from far ahead.
fn maintenance() -> Vec<pantau_proto::v1::MaintenanceSnapshot> {
    use pantau_proto::v1::{MaintenanceSnapshot, MaintenanceWindow};
    let window = |f: &dyn Fn(&mut MaintenanceWindow)| {
        let mut w = MaintenanceWindow {
            id: "fuzz-w".into(),
            start: Some(ts(0, 0)),
            end: Some(ts(4_102_444_800, 0)),
            targets: vec!["fuzz-x".into()],
            ..Default::default()
        };
        f(&mut w);
        w
    };
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let mut out: Vec<MaintenanceSnapshot> = [
        window(&|w| w.checks = 99),
        window(&|w| w.id = huge(100_000)),
        window(&|w| w.cron = huge(4096)),
        window(&|w| w.targets = vec![huge(300); 1000]),
        window(&|w| w.labels = many_labels()),
        window(&|w| w.duration = Some(prost_types::Duration { seconds: -1, nanos: -1 })),
    ]
    .into_iter()
    .map(|w| MaintenanceSnapshot {
        windows: vec![w],
        revision: now_ms,
        instance: "fuzz".into(),
    })
    .collect();
    for t in extreme_times() {
        out.push(MaintenanceSnapshot {
            windows: vec![window(&|w| w.start = t)],
            revision: now_ms,
            instance: "fuzz".into(),
        });
    }
    for revision in [i64::MAX, i64::MIN, -1] {
        out.push(MaintenanceSnapshot {
            windows: vec![window(&|_| {})],
            revision,
            instance: "fuzz".into(),
        });
    }
    out
}

async fn raw(bus: &dyn Bus, subject: &str, payload: Vec<u8>) {
    let mut headers = Headers::new();
    headers.insert("content-type".into(), "application/protobuf".into());
    bus.publish(subject, headers, Bytes::from(payload))
        .await
        .unwrap_or_else(|e| panic!("publishing on {subject}: {e}"));
}

/// Publishes the whole hostile corpus; returns how many messages.
pub(super) async fn poison(bus: &dyn Bus) -> usize {
    let mut n = 0;
    // Garbage, and messages of another type, on every family.
    let other_types: Vec<Vec<u8>> = vec![
        alerts()[0].1.encode_to_vec(),
        checks()[0].encode_to_vec(),
        samples()[0].encode_to_vec(),
        infos()[0].encode_to_vec(),
        metrics()[0].encode_to_vec(),
        consensus()[0].encode_to_vec(),
    ];
    for s in family_subjects() {
        for g in garbage().into_iter().chain(other_types.iter().cloned()) {
            raw(bus, &s, g).await;
            n += 1;
        }
    }
    // Well-typed messages with extreme values.
    for c in checks() {
        raw(bus, &subject::check_result("jkt", "fuzz-x"), c.encode_to_vec()).await;
        n += 1;
    }
    for s in samples() {
        raw(bus, &subject::iface_sample("fuzz-gw", 1), s.encode_to_vec()).await;
        n += 1;
    }
    for i in infos() {
        raw(bus, &subject::router_info("fuzz-odd"), i.encode_to_vec()).await;
        n += 1;
    }
    for (s, e) in events() {
        raw(bus, &s, e.encode_to_vec()).await;
        n += 1;
    }
    for m in metrics() {
        raw(bus, "pantau.metric.cpu_usage", m.encode_to_vec()).await;
        n += 1;
    }
    for (s, a) in alerts() {
        raw(bus, &s, a.encode_to_vec()).await;
        n += 1;
    }
    for (s, i) in incidents() {
        raw(bus, &s, i.encode_to_vec()).await;
        n += 1;
    }
    for (s, d) in deliveries() {
        raw(bus, &s, d.encode_to_vec()).await;
        n += 1;
    }
    for c in consensus() {
        raw(bus, &subject::consensus("fuzz-c"), c.encode_to_vec()).await;
        n += 1;
    }
    for m in maintenance() {
        raw(bus, &subject::maintenance("snapshot", "fuzz"), m.encode_to_vec()).await;
        n += 1;
    }
    n
}

pub(super) fn down(target: &str) -> CheckResult {
    CheckResult {
        target_id: target.into(),
        location: "jkt".into(),
        status: CheckStatus::Down.into(),
        checked_at: Some(now_ts()),
        latency: Some(pantau_core::time::to_duration(Duration::from_millis(3))),
        message: "connection refused".into(),
        ..Default::default()
    }
}

/// A router whose default route leaves through ether1.
pub(super) fn router(id: &str) -> RouterInfo {
    RouterInfo {
        router_id: id.into(),
        router_name: id.into(),
        polled_at: Some(now_ts()),
        default_route_if_indexes: vec![1],
        route_table: "ipCidrRouteTable".into(),
        interfaces: vec![
            RouterInterface {
                if_index: 1,
                if_name: "ether1".into(),
                oper_up: true,
                admin_up: true,
                ..Default::default()
            },
            RouterInterface {
                if_index: 2,
                if_name: "bridge-lan".into(),
                oper_up: true,
                admin_up: true,
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}
