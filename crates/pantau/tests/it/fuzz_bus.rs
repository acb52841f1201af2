//! Hostile messages on the bus: on every subject family a service consumes
//! (check results, interface samples, router info, events, metrics, alerts,
//! incidents, consensus), garbage bytes, messages of another type and well-typed
//! messages with extreme values (timestamps at year 0 and past 10000,
//! nanos out of range, NaN and infinities, unknown enum values, strings of
//! 256 KiB, a NUL byte, ten thousand labels) — through a real nats-server
//! against the real `pantau all` binary, and through the in-process bus
//! against the same services run in this process. Afterwards every
//! consumer goes on: a valid DOWN result fires an alert that the notifier
//! delivers to a local webhook and the gateway's WebSocket shows, a valid
//! RouterInfo makes the WAN detector publish `wan_detected`; the bad ones
//! are counted (`pantau_bus_dead_letters_total{consumer}`) and moved to
//! `pantau.deadletter.<consumer>`; and the notifier still delivers after a
//! restart. The NATS run is a sync primary, so the sync-api's outbox takes
//! the hostile results too and still publishes a consensus afterwards.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use pantau_config::Config;
use pantau_core::bus::{Bus, Headers, Subscription, publish_proto, subject};
use pantau_core::service::Context;
use pantau_proto::v1::{
    AlertEvent, AlertState, CheckResult, CheckStatus, ConsensusResult, ConsensusStatus, EventKind, IncidentEntry,
    IncidentEntryKind, IncidentEvent, IncidentState, InterfaceSample, MetricSample, RouterEvent, RouterInfo,
    RouterInterface, Severity,
};
use prost::Message as _;
use prost_types::Timestamp;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::support::{JWT_SECRET, Pantau, Ports, metric_value, token};

const WAIT: Duration = Duration::from_secs(60);

/// The consumers of `pantau all`; with sync on (the NATS run: a primary)
/// the sync-api's outbox too.
const CONSUMERS: [&str; 4] = ["alert-engine", "notifier", "gateway-feed", "wan-detector"];
const SYNC_OUTBOX: &str = "sync-outbox";

/// A webhook receiver on loopback keeping every body it is sent.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<String>>>);

impl Sink {
    async fn start() -> (Self, u16) {
        let sink = Self::default();
        let kept = sink.clone();
        let app = axum::Router::new().fallback(move |body: String| {
            let kept = kept.clone();
            async move {
                kept.0.lock().unwrap().push(body);
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (sink, port)
    }

    /// Waits until a delivery mentions `needle`.
    async fn wait_for(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.0.lock().unwrap().iter().any(|b| b.contains(needle)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no notification mentioning {needle} reached the webhook within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The services' configuration: a rule on `fuzz-*` targets, the shipped
/// default rules on (they read every family too), every alert to the sink.
fn yaml(sink: u16, nats: Option<&str>, auth: bool) -> String {
    let nats = nats.map_or_else(String::new, |u| format!("nats:\n  url: {u}\n"));
    format!(
        "{nats}alert_engine:
  sweep_interval: 1s
  rules:
    - id: fuzz-down
      expr: 'check_up{{location=\"jkt\"}} == 0'
      severity: critical
      message: '{{{{ $labels.target }}}} is down'
notifier:
  poll_interval: 200ms
  retry: {{ initial_backoff: 100ms, max_attempts: 2 }}
  channels:
    - {{ name: sink, type: webhook, url: 'http://127.0.0.1:{sink}/hook' }}
  routes:
    - channels: [sink]
gateway:
  auth:
    enabled: {auth}
    jwt_secret: {JWT_SECRET}
"
    )
}

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
        subject::consensus("fuzz-x"),
    ]
}

async fn raw(bus: &dyn Bus, subject: &str, payload: Vec<u8>) {
    let mut headers = Headers::new();
    headers.insert("content-type".into(), "application/protobuf".into());
    bus.publish(subject, headers, Bytes::from(payload))
        .await
        .unwrap_or_else(|e| panic!("publishing on {subject}: {e}"));
}

/// Publishes the whole hostile corpus; returns how many messages.
async fn poison(bus: &dyn Bus) -> usize {
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
    for c in consensus() {
        raw(bus, &subject::consensus("fuzz-c"), c.encode_to_vec()).await;
        n += 1;
    }
    n
}

fn down(target: &str) -> CheckResult {
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
fn router(id: &str) -> RouterInfo {
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

/// A WebSocket client of the gateway's events, answering pings; keeps
/// every event it has read, so waiting for one kind loses no other.
struct Events {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    seen: Vec<(String, String)>,
}

impl Events {
    async fn connect(url: &str) -> Self {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Ok((ws, _))) =
                tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(url)).await
            {
                return Self { ws, seen: Vec::new() };
            }
            assert!(Instant::now() < deadline, "the gateway's WebSocket never accepted");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for an event of `kind` whose JSON mentions `needle`.
    async fn wait_for(&mut self, kind: &str, needle: &str) {
        let hit = |(k, t): &(String, String)| k == kind && t.contains(needle);
        if self.seen.iter().any(hit) {
            return;
        }
        let got = tokio::time::timeout(WAIT, async {
            loop {
                match self.ws.next().await.expect("the socket stays open").unwrap() {
                    Ws::Text(t) => {
                        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                        let event = (v["type"].as_str().unwrap_or_default().to_owned(), t.to_string());
                        let found = hit(&event);
                        self.seen.push(event);
                        if found {
                            return;
                        }
                    }
                    Ws::Ping(p) => self.ws.send(Ws::Pong(p)).await.unwrap(),
                    _ => {}
                }
            }
        })
        .await;
        assert!(got.is_ok(), "no {kind} event mentioning {needle} within {WAIT:?}");
    }
}

/// Dead letters seen on `pantau.deadletter.>`: consumer → count, each with
/// its original subject and reason in headers.
#[derive(Clone, Default)]
struct DeadLetters(Arc<Mutex<std::collections::BTreeMap<String, usize>>>);

impl DeadLetters {
    async fn watch(bus: &Arc<dyn Bus>) -> Self {
        let seen = Self::default();
        let mut sub = bus.subscribe(Subscription::live("pantau.deadletter.>")).await.unwrap();
        let kept = seen.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                assert!(m.headers.contains_key("pantau-original-subject"), "{:?}", m.headers);
                assert!(m.headers.contains_key("pantau-dead-letter-reason"), "{:?}", m.headers);
                let consumer = m.headers.get("pantau-consumer").cloned().unwrap_or_default();
                *kept.0.lock().unwrap().entry(consumer).or_default() += 1;
            }
        });
        seen
    }

    fn count(&self, consumer: &str) -> usize {
        self.0.lock().unwrap().get(consumer).copied().unwrap_or(0)
    }
}

/// After the corpus, every consumer goes on with valid messages, and each
/// counted and moved its bad ones.
async fn every_consumer_goes_on(
    bus: &Arc<dyn Bus>,
    sink: &Sink,
    ws: &mut Events,
    dead: &DeadLetters,
    sync: bool,
    metrics: impl AsyncFn() -> String,
) {
    // The alert engine and the notifier: an alert delivered to the webhook;
    // the gateway's feed: the result on the WebSocket.
    publish_proto(bus.as_ref(), &subject::check_result("jkt", "fuzz-1"), &down("fuzz-1"))
        .await
        .unwrap();
    ws.wait_for("check_result", "fuzz-1").await;
    sink.wait_for("fuzz-1", WAIT).await;
    // The WAN detector: a decision on wan_detected.
    publish_proto(bus.as_ref(), &subject::router_info("fuzz-gw"), &router("fuzz-gw"))
        .await
        .unwrap();
    ws.wait_for("wan_detected", "fuzz-gw").await;
    // The sync-api's outbox: the primary's consensus over fuzz-1's window.
    if sync {
        ws.wait_for("consensus", "fuzz-1").await;
    }
    // Each consumer counted and moved bad messages.
    let consumers: Vec<&str> = CONSUMERS.iter().copied().chain(sync.then_some(SYNC_OUTBOX)).collect();
    let deadline = Instant::now() + WAIT;
    loop {
        let text = metrics().await;
        let counted: Vec<(&str, f64)> = consumers
            .iter()
            .map(|c| {
                let label = format!("consumer=\"{c}\"");
                (
                    *c,
                    metric_value(&text, "pantau_bus_dead_letters_total", &label).unwrap_or(0.0),
                )
            })
            .collect();
        let moved: Vec<(&str, usize)> = consumers.iter().map(|c| (*c, dead.count(c))).collect();
        if counted.iter().all(|(_, n)| *n > 0.0) && moved.iter().all(|(_, n)| *n > 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dead letters counted {counted:?}, seen on pantau.deadletter.> {moved:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_over_nats_leave_pantau_all_consuming() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = pantau_testkit::Nats::start().await.expect("nats-server starts");
    let (sink, sink_port) = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let cfg_path = dir.path().join("pantau.yaml");
    let yaml = format!(
        "listen_host: 127.0.0.1\ndata_dir: {}\nadmin_port: {}\nshutdown_grace: 5s\nlog: {{ format: json, level: info }}\n\
         instance: {{ name: fuzz-primary, location: jkt }}\n\
         collector: {{ grpc_port: {}, admin_port: {} }}\n\
         sync: {{ enabled: true, grpc_port: {}, admin_port: {}, collector_url: 'http://127.0.0.1:{}', token: fuzz-join-token-0123456789, consensus_window: 1s, consensus_delay: 500ms }}\n{}",
        dir.path().join("data").display(),
        ports.admin,
        ports.collector_grpc,
        ports.collector_admin,
        pantau_testkit::free_port(),
        pantau_testkit::free_port(),
        ports.collector_grpc,
        yaml(sink_port, Some(&nats.url()), true).replace(
            "gateway:\n",
            &format!(
                "gateway:\n  port: {}\n  collector_url: http://127.0.0.1:{}\n",
                ports.gateway, ports.collector_grpc
            )
        ),
    );
    std::fs::write(&cfg_path, yaml).unwrap();
    let env = ports.other_services_env();
    let mut p = Pantau::start_with_env(dir.path(), &cfg_path, &["all"], &env);
    let readyz = format!("http://127.0.0.1:{}/readyz", ports.admin);
    let http = reqwest::Client::new();
    // Ready, with every consumer subscribed (the admin port answers before
    // the services have registered their checks; a JetStream durable made
    // after a message was published does not get it).
    let ready = async |p: &mut Pantau| {
        let deadline = Instant::now() + WAIT;
        let subscribed = [
            "alert_engine.consumer",
            "notifier.consumer",
            "gateway.feed",
            "wan_detector.consumer",
            "sync_api.outbox",
        ];
        loop {
            p.assert_running();
            if let Ok(r) = http.get(&readyz).send().await
                && r.status().is_success()
                && let Ok(v) = r.json::<serde_json::Value>().await
                && subscribed.iter().all(|c| v["components"][c]["status"] == "ok")
            {
                return;
            }
            assert!(Instant::now() < deadline, "pantau all never ready:\n{}", p.log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    ready(&mut p).await;

    let nats_cfg = pantau_config::NatsConfig {
        url: Some(nats.url()),
        ..pantau_config::NatsConfig::default()
    };
    let bus: Arc<dyn Bus> = Arc::new(
        pantau_core::bus::nats::NatsBus::connect(&nats_cfg, "fuzz")
            .await
            .expect("the test reaches nats"),
    );
    let dead = DeadLetters::watch(&bus).await;
    let ws_url = format!(
        "ws://127.0.0.1:{}/api/v1/monitoring/events?token={}",
        ports.gateway,
        token()
    );
    let mut ws = Events::connect(&ws_url).await;
    let n = poison(bus.as_ref()).await;
    assert!(n > 150, "the corpus holds {n} messages");
    let metrics_url = format!("http://127.0.0.1:{}/metrics", ports.admin);
    let scrape = async || http.get(&metrics_url).send().await.unwrap().text().await.unwrap();
    every_consumer_goes_on(&bus, &sink, &mut ws, &dead, true, scrape).await;
    p.assert_running();
    ready(&mut p).await;

    // Restarted, with the corpus still in the stream: nothing is replayed
    // into a panic, and the notifier delivers the next alert.
    drop(ws);
    assert!(p.terminate().success(), "{}", p.log());
    let mut p = Pantau::start_with_env(dir.path(), &cfg_path, &["all"], &env);
    ready(&mut p).await;
    publish_proto(bus.as_ref(), &subject::check_result("jkt", "fuzz-2"), &down("fuzz-2"))
        .await
        .unwrap();
    sink.wait_for("fuzz-2", WAIT).await;
    p.assert_running();
    let log = p.log();
    assert!(!log.contains("panicked"), "a panic after the restart:\n{log}");
}

/// The services of `pantau all` in this process on one in-process bus.
struct InProcess {
    bus: Arc<dyn Bus>,
    cfg: Arc<Config>,
    ctx: Context,
    notifier: Context,
    notifier_task: tokio::task::JoinHandle<()>,
    gateway: u16,
}

impl InProcess {
    async fn start(cfg: Config) -> Self {
        let bus: Arc<dyn Bus> = Arc::new(pantau_core::bus::memory::MemoryBus::new());
        let cfg = Arc::new(cfg);
        let ctx = Context::new(Arc::clone(&cfg), Arc::clone(&bus));
        let listener = || async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap() };
        let (ae, wan, web) = (listener().await, listener().await, listener().await);
        let gateway = web.local_addr().unwrap().port();
        tokio::spawn(pantau_alert_engine::run(ctx.clone(), ae));
        tokio::spawn(pantau_wan_detector::run(ctx.clone(), wan));
        tokio::spawn(pantau_gateway::run(ctx.clone(), web));
        let (notifier, notifier_task) = Self::notifier(&cfg, &bus).await;
        let me = Self {
            bus,
            cfg,
            ctx,
            notifier,
            notifier_task,
            gateway,
        };
        me.ready().await;
        me
    }

    async fn notifier(cfg: &Arc<Config>, bus: &Arc<dyn Bus>) -> (Context, tokio::task::JoinHandle<()>) {
        let ctx = Context::new(Arc::clone(cfg), Arc::clone(bus));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let run = pantau_notifier::run(ctx.clone(), l, pantau_notifier::Webhooks::default());
        let task = tokio::spawn(async move {
            run.await.expect("the notifier stops cleanly");
        });
        (ctx, task)
    }

    async fn ready(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let (a, b) = (self.ctx.health.report().await, self.notifier.health.report().await);
            assert!(!self.notifier_task.is_finished(), "the notifier stopped: {b:?}");
            if a.is_ready()
                && b.is_ready()
                && a.components.contains_key("gateway.feed")
                && b.components.contains_key("notifier.consumer")
            {
                return;
            }
            assert!(Instant::now() < deadline, "never ready: {a:?} {b:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn restart_notifier(&mut self) {
        self.notifier.shutdown.cancel();
        tokio::time::timeout(WAIT, &mut self.notifier_task)
            .await
            .expect("the notifier stops")
            .unwrap();
        (self.notifier, self.notifier_task) = Self::notifier(&self.cfg, &self.bus).await;
        self.ready().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_on_the_in_process_bus_leave_every_service_consuming() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = pantau_core::telemetry::render_metrics();
    let (sink, sink_port) = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg: Config = serde_yaml::from_str(&yaml(sink_port, None, false)).unwrap();
    cfg.data_dir = dir.path().to_owned();
    cfg.validate().unwrap();
    let mut sys = InProcess::start(cfg).await;
    let dead = DeadLetters::watch(&sys.bus).await;
    let mut ws = Events::connect(&format!("ws://127.0.0.1:{}/api/v1/monitoring/events", sys.gateway)).await;
    let n = poison(sys.bus.as_ref()).await;
    assert!(n > 150, "the corpus holds {n} messages");
    let bus = Arc::clone(&sys.bus);
    every_consumer_goes_on(&bus, &sink, &mut ws, &dead, false, async || {
        pantau_core::telemetry::render_metrics()
    })
    .await;
    sys.restart_notifier().await;
    publish_proto(
        sys.bus.as_ref(),
        &subject::check_result("jkt", "fuzz-2"),
        &down("fuzz-2"),
    )
    .await
    .unwrap();
    sink.wait_for("fuzz-2", WAIT).await;
    sys.notifier.shutdown.cancel();
    sys.ctx.shutdown.cancel();
}
