//! Every shipped default rule can fire: for each one, the bus messages its
//! producer publishes (host metrics, check results, the notifier's backlog,
//! a supervisor's task failure, a service's database health, router polls
//! and events, the WAN detector's decision, the sync-api's consensus) are
//! encoded, decoded by subject as the engine's consumer decodes them, and
//! ingested on an injected clock until the rule fires; then the condition
//! ends and it resolves. A default rule without a script here fails the
//! test, so none ships that cannot fire.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pantau_alert_engine::Engine;
use pantau_alert_engine::consume::facts_of;
use pantau_alert_engine::facts::WanRoles;
use pantau_alert_engine::lifecycle::State;
use pantau_alert_engine::store::AlertStore;
use pantau_config::{AlertEngineConfig, DatabaseConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, BusEvent, subject};
use pantau_core::store::Store;
use pantau_proto::v1::{
    CheckResult, CheckStatus, ConsensusResult, ConsensusStatus, EventKind, InterfaceSample, MetricSample, RouterEvent,
};
use prost::Message as _;

fn t(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

fn ts(s: u64) -> prost_types::Timestamp {
    pantau_core::time::to_timestamp(t(s))
}

/// One bus message at an instant: (seconds, subject, payload).
type Msg = (u64, String, Vec<u8>);

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A `MetricSample` on `pantau.metric.<name>`, as host metrics, the
/// collector's router poll, the notifier and the supervisors publish them.
fn metric(at: u64, name: &str, value: f64, l: &[(&str, &str)]) -> Msg {
    let m = MetricSample {
        name: name.into(),
        value,
        labels: labels(l),
        observed_at: Some(ts(at)),
        source: "test".into(),
    };
    (at, subject::metric(name), m.encode_to_vec())
}

fn check(at: u64, target: &str, up: bool, latency_ms: u64) -> Msg {
    let r = CheckResult {
        target_id: target.into(),
        location: "jkt".into(),
        status: if up { CheckStatus::Up } else { CheckStatus::Down }.into(),
        checked_at: Some(ts(at)),
        latency: Some(pantau_core::time::to_duration(Duration::from_millis(latency_ms))),
        ..Default::default()
    };
    (at, subject::check_result("jkt", target), r.encode_to_vec())
}

fn event(at: u64, kind: EventKind, name: &str, source: &str, attrs: &[(&str, &str)]) -> Msg {
    let e = RouterEvent {
        id: format!("{name}-{at}"),
        kind: kind.into(),
        source: source.into(),
        occurred_at: Some(ts(at)),
        attributes: labels(attrs),
        ..Default::default()
    };
    (at, subject::event(name, source), e.encode_to_vec())
}

/// A sample of an enabled port the collector has seen up before: down is a
/// change, so `went_down` is set as the collector sets it.
fn iface(at: u64, router: &str, name: &str, oper_up: bool) -> Msg {
    let s = InterfaceSample {
        router_id: router.into(),
        if_index: 1,
        if_name: name.into(),
        sampled_at: Some(ts(at)),
        oper_up,
        admin_up: true,
        went_down: !oper_up,
        ..Default::default()
    };
    (at, subject::iface_sample(router, 1), s.encode_to_vec())
}

fn consensus(at: u64, target: &str, status: ConsensusStatus) -> Msg {
    let c = ConsensusResult {
        target_id: target.into(),
        window_start: Some(ts(at)),
        status: status.into(),
        locations_total: 3,
        locations_successful: u32::from(status == ConsensusStatus::Up) * 3,
        quorum: 2,
        ..Default::default()
    };
    (at, subject::consensus(target), c.encode_to_vec())
}

/// Every `step` seconds from `from` to `to` inclusive.
/// A kafka_consumer group_lag result: `lag` records behind on partition 0, `max_lag` allowed.
fn kafka_lag(at: u64, target: &str, lag: u64, max_lag: u64) -> Msg {
    let over = lag > max_lag;
    let r = CheckResult {
        target_id: target.into(),
        location: "jkt".into(),
        kind: pantau_proto::v1::CheckKind::KafkaConsumer.into(),
        status: if over { CheckStatus::Down } else { CheckStatus::Up }.into(),
        checked_at: Some(ts(at)),
        detail: Some(pantau_proto::v1::check_result::Detail::Kafka(
            pantau_proto::v1::KafkaDetail {
                topic: "orders".into(),
                group: "billing".into(),
                total_lag: lag,
                lag_by_partition: [(0, lag)].into_iter().collect(),
                max_lag,
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    (at, subject::check_result("jkt", target), r.encode_to_vec())
}

fn every(from: u64, to: u64, step: usize) -> impl Iterator<Item = u64> {
    (from..=to).step_by(step)
}

/// A rule's script: messages that make it fire, then messages that end the
/// condition, and the instant by which it must have resolved (a sweep runs
/// then, for rules over a range that simply stop seeing data).
struct Script {
    fire: Vec<Msg>,
    clear: Vec<Msg>,
    resolved_by: u64,
}

fn scripts() -> Vec<(&'static str, Script)> {
    let host = [("host", "pantau-1")];
    let db_health = |at: u64, value: &str| {
        event(
            at,
            EventKind::MetricsUpdate,
            "metrics_update",
            "notifier",
            &[
                ("fact", "health"),
                ("value", value),
                ("component", "database"),
                ("service", "notifier"),
            ],
        )
    };
    vec![
        (
            "high-cpu",
            Script {
                fire: every(0, 360, 60).map(|s| metric(s, "cpu_usage", 95.0, &host)).collect(),
                clear: vec![metric(420, "cpu_usage", 10.0, &host)],
                resolved_by: 420,
            },
        ),
        (
            "low-disk",
            Script {
                fire: vec![metric(0, "disk_usage", 96.0, &[("host", "pantau-1"), ("mount", "/")])],
                clear: vec![metric(60, "disk_usage", 40.0, &[("host", "pantau-1"), ("mount", "/")])],
                resolved_by: 60,
            },
        ),
        (
            "database-unhealthy",
            Script {
                fire: vec![db_health(0, "unhealthy")],
                clear: vec![db_health(30, "healthy")],
                resolved_by: 30,
            },
        ),
        (
            "router-api-down",
            Script {
                fire: every(0, 90, 30)
                    .map(|s| metric(s, "router_api_up", 0.0, &[("router", "core1")]))
                    .collect(),
                clear: vec![metric(120, "router_api_up", 1.0, &[("router", "core1")])],
                resolved_by: 120,
            },
        ),
        (
            "slow-api",
            Script {
                fire: vec![check(0, "api", true, 3000), check(30, "api", true, 3000)],
                // Once the slow samples are older than the 5m range.
                clear: vec![check(400, "api", true, 20)],
                resolved_by: 400,
            },
        ),
        (
            "queue-size-high",
            Script {
                fire: every(0, 360, 60)
                    .map(|s| metric(s, "queue_size", 500.0, &[("queue", "notifier_deliveries")]))
                    .collect(),
                clear: vec![metric(420, "queue_size", 0.0, &[("queue", "notifier_deliveries")])],
                resolved_by: 420,
            },
        ),
        (
            "storage-capacity-warning",
            Script {
                fire: vec![metric(0, "storage_usage", 85.0, &[("volume", "/data")])],
                clear: vec![metric(60, "storage_usage", 50.0, &[("volume", "/data")])],
                resolved_by: 60,
            },
        ),
        (
            "storage-capacity-critical",
            Script {
                fire: vec![metric(0, "storage_usage", 97.0, &[("volume", "/data")])],
                clear: vec![metric(60, "storage_usage", 50.0, &[("volume", "/data")])],
                resolved_by: 60,
            },
        ),
        (
            "task-failures",
            Script {
                fire: vec![metric(
                    0,
                    pantau_core::lifecycle::TASK_FAILURES_FACT,
                    1.0,
                    &[("service", "collector"), ("task", "scheduler")],
                )],
                clear: Vec::new(),
                resolved_by: 3700,
            },
        ),
        (
            "endpoint-down",
            Script {
                fire: every(0, 90, 30).map(|s| check(s, "web", false, 5)).collect(),
                clear: vec![check(120, "web", true, 5)],
                resolved_by: 120,
            },
        ),
        (
            "interface-down",
            Script {
                fire: vec![iface(0, "sw1", "ge-1", false)],
                clear: vec![iface(30, "sw1", "ge-1", true)],
                resolved_by: 30,
            },
        ),
        (
            "wan-down",
            Script {
                fire: vec![
                    event(
                        0,
                        EventKind::WanDetected,
                        "wan_detected",
                        "gw",
                        &[("wan_interfaces", "ether1"), ("interface", "ether1")],
                    ),
                    iface(10, "gw", "ether1", false),
                ],
                clear: vec![iface(40, "gw", "ether1", true)],
                resolved_by: 40,
            },
        ),
        (
            "router-reboot",
            Script {
                fire: vec![event(0, EventKind::Reboot, "reboot", "core1", &[])],
                clear: Vec::new(),
                resolved_by: 700,
            },
        ),
        (
            "counter-reset",
            Script {
                fire: vec![event(
                    0,
                    EventKind::CounterReset,
                    "counter_reset",
                    "core1",
                    &[("interface", "ether1")],
                )],
                clear: Vec::new(),
                resolved_by: 700,
            },
        ),
        (
            "endpoint-down-majority",
            Script {
                fire: vec![consensus(0, "web", ConsensusStatus::Down)],
                clear: vec![consensus(30, "web", ConsensusStatus::Up)],
                resolved_by: 30,
            },
        ),
        (
            "kafka-consumer-lag",
            Script {
                fire: every(0, 360, 60)
                    .map(|s| kafka_lag(s, "billing-lag", 5000, 1000))
                    .collect(),
                clear: vec![kafka_lag(420, "billing-lag", 10, 1000)],
                resolved_by: 420,
            },
        ),
        (
            "cert-expiring",
            Script {
                fire: vec![event(
                    0,
                    EventKind::CertExpiring,
                    "cert_expiring",
                    "shop",
                    &[("days", "7")],
                )],
                clear: vec![event(
                    30,
                    EventKind::CertExpiring,
                    "cert_expiring",
                    "shop",
                    &[("days", "80")],
                )],
                resolved_by: 30,
            },
        ),
    ]
}

/// Ingests `msgs` as the consumer does, sweeping after each; the states the
/// rule `id` went through.
async fn play(engine: &Engine, roles: &WanRoles, id: &str, msgs: &[Msg], sweep_at: Option<u64>) -> Vec<State> {
    let mut states = Vec::new();
    for (at, subj, payload) in msgs {
        let event = BusEvent::decode_parts(subj, payload).unwrap_or_else(|e| panic!("{id}: {subj}: {e}"));
        let (_, facts) = facts_of(&event, t(*at), roles);
        assert!(!facts.is_empty(), "{id}: {subj} states no fact");
        let mut changes = engine.ingest(facts, t(*at)).await.unwrap();
        changes.extend(engine.sweep(t(*at)).await.unwrap());
        states.extend(
            changes
                .into_iter()
                .filter(|c| c.alert.rule_id == id)
                .map(|c| c.alert.state),
        );
    }
    if let Some(at) = sweep_at {
        states.extend(
            engine
                .sweep(t(at))
                .await
                .unwrap()
                .into_iter()
                .filter(|c| c.alert.rule_id == id)
                .map(|c| c.alert.state),
        );
    }
    states
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_default_rule_fires_from_its_producer_and_resolves() {
    let shipped: Vec<String> = pantau_alert_engine::rule::defaults()
        .into_iter()
        .map(|r| r.id)
        .collect();
    let scripts = scripts();
    let scripted: Vec<&str> = scripts.iter().map(|(id, _)| *id).collect();
    for id in &shipped {
        assert!(
            scripted.contains(&id.as_str()),
            "the default rule `{id}` has no script: show what makes it fire, or stop shipping it"
        );
    }
    for (id, script) in &scripts {
        assert!(shipped.iter().any(|s| s == id), "`{id}` is not a shipped rule");
        let dir = tempfile::tempdir().unwrap();
        let db = Store::connect(
            &DatabaseConfig::default(),
            dir.path(),
            "alert-engine",
            pantau_alert_engine::MIGRATIONS,
        )
        .await
        .unwrap();
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let cfg = AlertEngineConfig {
            default_rules: true,
            ..AlertEngineConfig::default()
        };
        let engine = Engine::new(cfg, AlertStore::new(db.clone()), bus).await.unwrap();
        let roles = WanRoles::default();
        let fired = play(&engine, &roles, id, &script.fire, None).await;
        assert_eq!(
            fired,
            [State::Firing],
            "`{id}` fires once from what its producer publishes"
        );
        let resolved = play(&engine, &roles, id, &script.clear, Some(script.resolved_by)).await;
        assert_eq!(resolved, [State::Resolved], "`{id}` resolves once the condition ends");
        db.close().await;
    }
}
