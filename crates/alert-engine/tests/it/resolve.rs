//! Resolves are never swallowed: an alert whose firing was published has
//! its resolve published too, whatever silence or firing parent came later,
//! across a restart of the engine. Over nats-server and the SQLite store.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_alert_engine::Engine;
use pantau_alert_engine::silence::SilenceMatcher;
use pantau_alert_engine::store::AlertStore;
use pantau_config::{AlertEngineConfig, DatabaseConfig, NatsConfig};
use pantau_core::bus::nats::NatsBus;
use pantau_core::bus::{Bus, MessageStream, Subscription, decode};
use pantau_core::store::Store;
use pantau_proto::v1::{AlertEvent, AlertState};

use crate::suppress::{fact, rule, t};

async fn engine(dir: &std::path::Path, bus: Arc<dyn Bus>) -> Engine {
    let db = Store::connect(
        &DatabaseConfig::default(),
        dir,
        "alert-engine",
        pantau_alert_engine::MIGRATIONS,
    )
    .await
    .unwrap();
    let cfg = AlertEngineConfig {
        default_rules: false,
        rules: vec![
            rule("router-down", "router_up == 0", &[]),
            rule("endpoint-down", "check_up == 0", &["router-down"]),
        ],
        ..AlertEngineConfig::default()
    };
    Engine::new(cfg, AlertStore::new(db), bus).await.unwrap()
}

async fn next(events: &mut MessageStream) -> (String, AlertEvent) {
    let msg = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an alert event on the bus")
        .unwrap();
    let ev: AlertEvent = decode(&msg).unwrap();
    (msg.subject.clone(), ev)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notified_alert_resolves_on_the_bus_after_a_silence_a_parent_and_a_restart() {
    let nats = pantau_testkit::Nats::start().await.expect("nats-server for the test");
    let cfg = NatsConfig {
        url: Some(nats.url()),
        ..NatsConfig::default()
    };
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&cfg, "alert-engine-resolve").await.unwrap());
    let mut events = bus.subscribe(Subscription::live("pantau.alert.>")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Arc::clone(&bus)).await;

    // web fires and is published; then a silence covers it, and its
    // router (its parent) fires too.
    let web = [("router", "r1"), ("target", "web")];
    let fired = e.ingest(vec![fact("check_up", &web, 0.0, 0)], t(0)).await.unwrap();
    let id = fired[0].alert.id.clone();
    let (subject, _) = next(&mut events).await;
    assert_eq!(subject, format!("pantau.alert.firing.{id}"));
    e.create_silence(
        vec![SilenceMatcher {
            label: "target".into(),
            value: "web".into(),
            negate: false,
        }],
        t(1),
        t(1000),
        "dina",
        "maintenance",
        t(1),
    )
    .await
    .unwrap();
    e.ingest(vec![fact("router_up", &[("router", "r1")], 0.0, 2)], t(2))
        .await
        .unwrap();
    let (subject, ev) = next(&mut events).await;
    assert_eq!(
        (subject.starts_with("pantau.alert.firing."), ev.rule_id.as_str()),
        (true, "router-down")
    );

    // Acknowledged while silenced: published, its firing was.
    e.acknowledge(&id, "dina", "looking", t(3)).await.unwrap();
    let (subject, _) = next(&mut events).await;
    assert_eq!(subject, format!("pantau.alert.acknowledged.{id}"));

    // The engine restarts (its state from the store), then web recovers
    // while silenced and behind a firing parent: the resolve is published.
    drop(e);
    let e = engine(dir.path(), Arc::clone(&bus)).await;
    e.ingest(vec![fact("check_up", &web, 1.0, 4)], t(4)).await.unwrap();
    let (subject, ev) = next(&mut events).await;
    assert_eq!(subject, format!("pantau.alert.resolved.{id}"));
    assert_eq!(ev.state(), AlertState::Resolved);

    // A child that fired while already suppressed was never notified: its
    // resolve stays off the bus (the router's resolve is the next event).
    let api = [("router", "r1"), ("target", "api")];
    let hidden = e.ingest(vec![fact("check_up", &api, 0.0, 5)], t(5)).await.unwrap();
    assert!(!hidden[0].alert.notified);
    e.ingest(vec![fact("check_up", &api, 1.0, 6)], t(6)).await.unwrap();
    e.ingest(vec![fact("router_up", &[("router", "r1")], 1.0, 7)], t(7))
        .await
        .unwrap();
    let (subject, ev) = next(&mut events).await;
    assert_eq!(
        (subject.starts_with("pantau.alert.resolved."), ev.rule_id.as_str()),
        (true, "router-down")
    );
}

/// The bus consumer hands over every message waiting: an alert may fire and
/// resolve within one batch, stored in one transaction. Its resolve is
/// published as its firing was (the resolve was made before the firing's
/// delivery was decided).
#[tokio::test]
async fn a_firing_and_its_resolve_in_one_batch_are_both_published() {
    let bus: Arc<dyn Bus> = Arc::new(pantau_core::bus::memory::MemoryBus::new());
    let mut events = bus.subscribe(Subscription::live("pantau.alert.>")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Arc::clone(&bus)).await;
    let web = [("router", "r1"), ("target", "web")];
    let changes = e
        .ingest_messages(
            vec![
                (vec![fact("check_up", &web, 0.0, 0)], None),
                (vec![fact("check_up", &web, 1.0, 1)], None),
            ],
            t(1),
        )
        .await
        .unwrap();
    let states: Vec<&str> = changes.iter().map(|c| c.transition.state.as_str()).collect();
    assert_eq!(states, ["firing", "resolved"]);
    let id = changes[0].alert.id.clone();
    assert_eq!(next(&mut events).await.0, format!("pantau.alert.firing.{id}"));
    let (subject, ev) = next(&mut events).await;
    assert_eq!(subject, format!("pantau.alert.resolved.{id}"));
    assert_eq!(ev.state(), AlertState::Resolved);
    // Both are stored, in order, from the one transaction.
    let stored = e.store().get(&id).await.unwrap().expect("the alert is stored");
    assert_eq!(stored.state.as_str(), "resolved");
    let kept: Vec<String> = e
        .store()
        .transitions(&id)
        .await
        .unwrap()
        .iter()
        .map(|t| t.state.as_str().to_owned())
        .collect();
    assert_eq!(kept, ["firing", "resolved"]);
}
