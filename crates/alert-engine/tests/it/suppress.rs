//! Silences and dependencies on an injected clock: suppressed alerts fire and
//! resolve in the history but publish nothing; when the silence or the parent
//! alert ends, a still-open alert is published then; maintenance windows
//! mute what they cover the same way.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use pantau_alert_engine::Engine;
use pantau_alert_engine::facts::Fact;
use pantau_alert_engine::lifecycle::State;
use pantau_alert_engine::series::Value;
use pantau_alert_engine::silence::SilenceMatcher;
use pantau_alert_engine::store::AlertStore;
use pantau_config::{AlertEngineConfig, AlertRuleConfig, AlertSeverity, DatabaseConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, MessageStream, Subscription, decode};
use pantau_core::store::Store;
use pantau_proto::v1::{AlertEvent, AlertState};

pub(crate) fn t(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

pub(crate) fn fact(name: &str, labels: &[(&str, &str)], v: f64, at: u64) -> Fact {
    Fact {
        name: name.into(),
        labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        value: Value::Num(v),
        at: t(at),
    }
}

pub(crate) fn rule(id: &str, expr: &str, depends_on: &[&str]) -> AlertRuleConfig {
    AlertRuleConfig {
        id: id.into(),
        name: None,
        expr: expr.into(),
        severity: AlertSeverity::Critical,
        message: String::new(),
        labels: std::collections::BTreeMap::new(),
        for_: None,
        cooldown: Some(Duration::ZERO),
        enabled: true,
        depends_on: depends_on.iter().map(|s| (*s).to_owned()).collect(),
    }
}

async fn engine(dir: &std::path::Path, rules: Vec<AlertRuleConfig>) -> (Engine, MessageStream) {
    let db = Store::connect(
        &DatabaseConfig::default(),
        dir,
        "alert-engine",
        pantau_alert_engine::MIGRATIONS,
    )
    .await
    .unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let events = bus.subscribe(Subscription::live("pantau.alert.>")).await.unwrap();
    let cfg = AlertEngineConfig {
        default_rules: false,
        rules,
        ..AlertEngineConfig::default()
    };
    (Engine::new(cfg, AlertStore::new(db), bus).await.unwrap(), events)
}

async fn next(events: &mut MessageStream) -> (AlertState, AlertEvent) {
    let msg = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an alert event")
        .unwrap();
    let ev: AlertEvent = decode(&msg).unwrap();
    (ev.state(), ev)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silenced_alerts_are_recorded_not_published() {
    let dir = tempfile::tempdir().unwrap();
    let (e, mut events) = engine(dir.path(), vec![rule("high-cpu", "cpu_usage > 80", &[])]).await;
    let s = e
        .create_silence(
            vec![SilenceMatcher {
                label: "host".into(),
                value: "a".into(),
                negate: false,
            }],
            t(0),
            t(1000),
            "dina",
            "kernel upgrade",
            t(0),
        )
        .await
        .unwrap();
    let fired = e
        .ingest(vec![fact("cpu_usage", &[("host", "a")], 95.0, 1)], t(1))
        .await
        .unwrap();
    assert_eq!(fired.len(), 1);
    assert!(!fired[0].alert.notified);
    assert_eq!(fired[0].alert.suppressed_by, format!("silence:{}", s.id));
    // Resolved while silenced: in the history, not on the bus.
    let resolved = e
        .ingest(vec![fact("cpu_usage", &[("host", "a")], 10.0, 2)], t(2))
        .await
        .unwrap();
    assert_eq!(resolved[0].transition.state, State::Resolved);
    let stored = e.store().get(&fired[0].alert.id).await.unwrap().unwrap();
    assert_eq!(stored.state, State::Resolved);
    // Fires again, still silenced; b is not silenced and is the first event on the bus.
    let again = e
        .ingest(vec![fact("cpu_usage", &[("host", "a")], 96.0, 3)], t(3))
        .await
        .unwrap();
    assert!(!again[0].alert.notified);
    e.ingest(vec![fact("cpu_usage", &[("host", "b")], 97.0, 4)], t(4))
        .await
        .unwrap();
    let (state, ev) = next(&mut events).await;
    assert_eq!((state, ev.labels["host"].as_str()), (AlertState::Firing, "b"));
    // Ending the silence publishes a's open alert.
    let ended = e.expire_silence(&s.id, t(5)).await.unwrap();
    assert_eq!(ended.ends_at, t(5));
    let (state, ev) = next(&mut events).await;
    assert_eq!(
        (state, ev.labels["host"].as_str(), ev.alert_id.as_str()),
        (AlertState::Firing, "a", again[0].alert.id.as_str())
    );
    let stored = e.store().get(&again[0].alert.id).await.unwrap().unwrap();
    assert!(stored.notified && stored.suppressed_by.is_empty());
    // Its resolve is published now.
    e.ingest(vec![fact("cpu_usage", &[("host", "a")], 10.0, 6)], t(6))
        .await
        .unwrap();
    let (state, ev) = next(&mut events).await;
    assert_eq!((state, ev.labels["host"].as_str()), (AlertState::Resolved, "a"));
    assert_eq!(e.silences(false, t(6)).await.unwrap().len(), 0);
    assert_eq!(e.silences(true, t(6)).await.unwrap().len(), 1);
    assert!(e.create_silence(vec![], t(0), t(10), "x", "", t(0)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_of_a_firing_parent_page_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let rules = vec![
        rule("router-down", "router_up == 0", &[]),
        rule("endpoint-down", "check_up == 0", &["router-down"]),
    ];
    let (e, mut events) = engine(dir.path(), rules).await;
    let parent = e
        .ingest(vec![fact("router_up", &[("router", "r1")], 0.0, 0)], t(0))
        .await
        .unwrap();
    let (state, ev) = next(&mut events).await;
    assert_eq!((state, ev.rule_id.as_str()), (AlertState::Firing, "router-down"));
    let behind = [("router", "r1"), ("target", "web")];
    let child = e.ingest(vec![fact("check_up", &behind, 0.0, 1)], t(1)).await.unwrap();
    assert_eq!(child[0].alert.suppressed_by, format!("depends:{}", parent[0].alert.id));
    // Another router's endpoint is not behind r1: it pages.
    e.ingest(
        vec![fact("check_up", &[("router", "r2"), ("target", "api")], 0.0, 2)],
        t(2),
    )
    .await
    .unwrap();
    let (state, ev) = next(&mut events).await;
    assert_eq!((state, ev.labels["target"].as_str()), (AlertState::Firing, "api"));
    // The child's resolve is recorded, not published.
    let r = e.ingest(vec![fact("check_up", &behind, 1.0, 3)], t(3)).await.unwrap();
    assert_eq!(r[0].transition.state, State::Resolved);
    assert_eq!(e.store().transitions(&child[0].alert.id).await.unwrap().len(), 2);
    // Down again, then the parent recovers first: the child pages then.
    let child2 = e.ingest(vec![fact("check_up", &behind, 0.0, 4)], t(4)).await.unwrap();
    assert!(!child2[0].alert.notified);
    e.ingest(vec![fact("router_up", &[("router", "r1")], 1.0, 5)], t(5))
        .await
        .unwrap();
    let (state, ev) = next(&mut events).await;
    assert_eq!((state, ev.rule_id.as_str()), (AlertState::Resolved, "router-down"));
    let (state, ev) = next(&mut events).await;
    assert_eq!(
        (state, ev.alert_id.as_str()),
        (AlertState::Firing, child2[0].alert.id.as_str())
    );
}

#[tokio::test]
async fn a_parent_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let db = Store::connect(
        &DatabaseConfig::default(),
        dir.path(),
        "alert-engine",
        pantau_alert_engine::MIGRATIONS,
    )
    .await
    .unwrap();
    let cfg = AlertEngineConfig {
        default_rules: false,
        rules: vec![rule("child", "check_up == 0", &["nope"])],
        ..AlertEngineConfig::default()
    };
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let e = Engine::new(cfg, AlertStore::new(db.clone()), Arc::clone(&bus))
        .await
        .err()
        .unwrap();
    assert_eq!(e.to_string(), "rule `child` depends on `nope`, which is not a rule");
    let cfg = AlertEngineConfig {
        default_rules: false,
        ..AlertEngineConfig::default()
    };
    let engine = Engine::new(cfg, AlertStore::new(db), bus).await.unwrap();
    let e = engine
        .upsert_rule(rule("child", "check_up == 0", &["nope"]), t(0))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, pantau_alert_engine::EngineError::Rule(_)), "{e}");
    assert!(engine.rules().await.is_empty(), "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintenance_window_mutes_what_it_covers_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (e, mut events) = engine(dir.path(), vec![rule("down", "check_up == 0", &[])]).await;
    // Each minute from t(10), for 10 s, targets labelled site=jkt.
    let window: pantau_config::MaintenanceWindow = serde_yaml::from_str(&format!(
        "{{id: swap, start: '{}', end: '{}', repeat_every: 1m, labels: {{site: jkt}}}}",
        humantime::format_rfc3339(t(10)),
        humantime::format_rfc3339(t(20)),
    ))
    .unwrap();
    let e = e.with_maintenance(vec![window]);
    let muted = e
        .ingest(
            vec![fact("check_up", &[("target", "web"), ("site", "jkt")], 0.0, 12)],
            t(12),
        )
        .await
        .unwrap();
    assert_eq!(muted[0].alert.suppressed_by, "maintenance:swap");
    assert!(!muted[0].alert.notified);
    e.ingest(vec![fact("check_up", &[("target", "api")], 0.0, 13)], t(13))
        .await
        .unwrap();
    let (state, ev) = next(&mut events).await;
    assert_eq!(
        (state, ev.labels["target"].as_str()),
        (AlertState::Firing, "api"),
        "not covered: pages"
    );
    // Still inside the window: nothing more.
    e.evaluate_batched(t(19)).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.next())
            .await
            .is_err(),
        "nothing published while the window holds"
    );
    // The window ends with `web` still down: it pages now.
    e.evaluate_batched(t(21)).await.unwrap();
    let (state, ev) = next(&mut events).await;
    assert_eq!((state, ev.labels["target"].as_str()), (AlertState::Firing, "web"));
    let stored = e.store().get(&muted[0].alert.id).await.unwrap().unwrap();
    assert!(stored.notified && stored.suppressed_by.is_empty());
}
