//! The notifier's delivery outcomes on incident timelines, through the real
//! consumer (`incident::delivery::start`, behind a cluster gate): SQLite
//! over a real nats-server and PostgreSQL over the in-process bus. A
//! delivered firing and a given-up resolve become `delivered` and
//! `delivery_failed` entries naming the channel and the attempts, each
//! published as an incident event; the same outcome handed over again adds
//! nothing; hostile messages (garbage, an unknown outcome, unknown enum
//! values, huge strings, an alert in no incident) are dead-lettered or
//! ignored and never stop the consumer.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use pantau_alert_engine::Engine;
use pantau_alert_engine::deps::{Observed, Signal};
use pantau_alert_engine::facts::from_check;
use pantau_alert_engine::incident::EntryKind;
use pantau_alert_engine::incident::delivery::{DELIVERIES, start};
use pantau_alert_engine::incident::store::IncidentFilter;
use pantau_alert_engine::store::AlertStore;
use pantau_config::{AlertEngineConfig, DatabaseConfig, NatsConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::nats::NatsBus;
use pantau_core::bus::{Bus, Headers, MessageStream, Subscription, publish_proto, subject};
use pantau_core::cluster::{Cluster, Role};
use pantau_core::store::Store;
use pantau_proto::prost::Message as _;
use pantau_proto::v1::{
    AlertState, CheckKind, CheckResult, CheckStatus, DeliveryErrorClass, DeliveryEvent, DeliveryOutcome,
};
use tokio_util::sync::CancellationToken;

use crate::suppress::rule;

const WAIT: Duration = Duration::from_secs(20);

fn delivered(alert: &str, id: &str, state: AlertState) -> DeliveryEvent {
    DeliveryEvent {
        alert_id: alert.into(),
        delivery_id: id.into(),
        channel: "ops-hook".into(),
        channel_type: "webhook".into(),
        alert_state: state.into(),
        attempts: 1,
        outcome: DeliveryOutcome::Delivered.into(),
        status_code: 200,
        at: Some(pantau_core::time::to_timestamp(SystemTime::now())),
        instance: "jkt-1".into(),
        ..Default::default()
    }
}

fn failed(alert: &str, id: &str, attempts: u32) -> DeliveryEvent {
    DeliveryEvent {
        outcome: DeliveryOutcome::Failed.into(),
        error_class: DeliveryErrorClass::ServerError.into(),
        attempts,
        status_code: 503,
        alert_state: AlertState::Resolved.into(),
        ..delivered(alert, id, AlertState::Resolved)
    }
}

async fn tell(bus: &dyn Bus, ev: &DeliveryEvent) {
    let outcome = pantau_core::bus::event::delivery_outcome_token(ev.outcome());
    publish_proto(bus, &subject::delivery(&outcome, &ev.alert_id), ev)
        .await
        .unwrap();
}

async fn raw(bus: &dyn Bus, subject: &str, payload: Vec<u8>) {
    bus.publish(subject, Headers::new(), Bytes::from(payload))
        .await
        .unwrap();
}

/// The alert engine's incident timeline entries of `kind`, once there are `n`.
async fn wait_entries(e: &Engine, incident: &str, kind: EntryKind, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got: Vec<String> = e
            .store()
            .incident_timeline(incident)
            .await
            .unwrap()
            .into_iter()
            .filter(|x| x.kind == kind)
            .map(|x| x.text)
            .collect();
        if got.len() >= n {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} `{}` entries on {incident}: {got:?}",
            kind.as_str()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Dead letters of the consumer seen so far.
async fn dead_letters(sub: &mut MessageStream, at_least: usize) -> usize {
    let mut n = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while n < at_least {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, sub.next()).await {
            Ok(Some(m)) => {
                assert!(m.headers.contains_key("pantau-dead-letter-reason"), "{:?}", m.headers);
                n += 1;
            }
            _ => panic!("{n} of {at_least} dead letters on pantau.deadletter.{DELIVERIES}"),
        }
    }
    n
}

async fn outcomes_reach_the_timeline(db: DatabaseConfig, bus: Arc<dyn Bus>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&db, dir.path(), "alert-engine", pantau_alert_engine::MIGRATIONS)
        .await
        .unwrap();
    let cfg = AlertEngineConfig {
        default_rules: false,
        rules: vec![rule("down", "check_up == 0", &[])],
        ..AlertEngineConfig::default()
    };
    let engine = Arc::new(
        Engine::new(cfg, AlertStore::new(store.clone()), Arc::clone(&bus))
            .await
            .unwrap()
            .with_cluster("jkt-1", Cluster::new(Role::Standalone)),
    );
    let mut incident_events = bus.subscribe(Subscription::live("pantau.incident.>")).await.unwrap();
    let mut dead = bus
        .subscribe(Subscription::live(subject::dead_letter(DELIVERIES)))
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let gate = Cluster::new(Role::Standalone).gate(DELIVERIES);
    let ready = gate.readiness();
    let consumer = tokio::spawn(start(Arc::clone(&engine), &bus, gate, stop.clone()).await.unwrap());
    let deadline = tokio::time::Instant::now() + WAIT;
    while ready.check().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the consumer subscribes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // An alert fires and opens an incident.
    let now = SystemTime::now();
    let r = CheckResult {
        target_id: "web".into(),
        location: "jkt".into(),
        kind: CheckKind::Tcp.into(),
        status: CheckStatus::Down.into(),
        checked_at: Some(pantau_core::time::to_timestamp(now)),
        ..Default::default()
    };
    let fired = engine
        .ingest_observed(from_check(&r, now), Some(Signal::Check(Observed::of(&r, now))), now)
        .await
        .unwrap();
    let alert = fired[0].alert.id.clone();
    let (list, _) = engine.store().list_incidents(&IncidentFilter::default()).await.unwrap();
    let incident = list[0].id.clone();
    tokio::time::timeout(WAIT, async {
        while incident_events
            .next()
            .await
            .is_some_and(|m| !m.subject.starts_with("pantau.incident.notified."))
        {}
    })
    .await
    .expect("the incident's events");

    // Delivered: one entry naming the channel, and its event.
    let first = delivered(&alert, "0123456789abcdef0123456789abcdef", AlertState::Firing);
    tell(bus.as_ref(), &first).await;
    let got = wait_entries(&engine, &incident, EntryKind::Delivered, 1).await;
    assert_eq!(
        got,
        ["its firing delivered via channel ops-hook (webhook) after 1 attempt"]
    );
    let m = tokio::time::timeout(WAIT, incident_events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.subject, format!("pantau.incident.delivered.{incident}"));

    // Handed over again, with hostile messages around it.
    tell(bus.as_ref(), &first).await;
    let family = subject::delivery("delivered", &alert);
    let hostile: Vec<(String, Vec<u8>)> = vec![
        (family.clone(), b"\xff\xfe garbage".to_vec()),
        (family.clone(), CheckResult::default().encode_to_vec()),
        ("pantau.delivery.exploded.x".into(), first.encode_to_vec()),
        (
            family.clone(),
            DeliveryEvent {
                alert_state: 42,
                ..first.clone()
            }
            .encode_to_vec(),
        ),
        (
            family.clone(),
            DeliveryEvent {
                error_class: 99,
                ..first.clone()
            }
            .encode_to_vec(),
        ),
        (
            subject::delivery("delivered", "x"),
            DeliveryEvent {
                alert_id: "x".into(),
                channel: "c".repeat(256 * 1024),
                ..first.clone()
            }
            .encode_to_vec(),
        ),
        (
            family.clone(),
            DeliveryEvent {
                delivery_id: "not hex".repeat(10_000),
                ..first.clone()
            }
            .encode_to_vec(),
        ),
        (
            family.clone(),
            DeliveryEvent {
                attempts: 0,
                ..first.clone()
            }
            .encode_to_vec(),
        ),
    ];
    let refused = hostile.len();
    for (s, p) in hostile {
        raw(bus.as_ref(), &s, p).await;
    }
    // An alert in no incident is ignored, not dead-lettered.
    tell(
        bus.as_ref(),
        &delivered("no-such-alert", "ffffffffffffffffffffffffffffffff", AlertState::Firing),
    )
    .await;
    // The consumer goes on: a given-up resolve after all of that.
    tell(bus.as_ref(), &failed(&alert, "abcdefabcdefabcdefabcdefabcdef00", 5)).await;
    let got = wait_entries(&engine, &incident, EntryKind::DeliveryFailed, 1).await;
    assert_eq!(
        got,
        [
            "its resolve not delivered via channel ops-hook (webhook): given up after 5 attempts (server_error, last status 503)"
        ]
    );
    assert_eq!(
        wait_entries(&engine, &incident, EntryKind::Delivered, 1).await.len(),
        1,
        "the outcome handed over again added nothing"
    );
    assert_eq!(dead_letters(&mut dead, refused).await, refused);
    // Visible through the gRPC view too.
    let timeline = engine.store().incident_timeline(&incident).await.unwrap();
    let view = pantau_alert_engine::incident::event::to_proto(&list[0], &[], &timeline);
    let kinds: Vec<i32> = view.timeline.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&(pantau_proto::v1::IncidentEntryKind::Delivered as i32)));
    assert!(kinds.contains(&(pantau_proto::v1::IncidentEntryKind::DeliveryFailed as i32)));

    stop.cancel();
    tokio::time::timeout(WAIT, consumer).await.unwrap().unwrap().unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_reach_the_timeline_sqlite_over_nats() {
    let nats = pantau_testkit::Nats::start().await.expect("nats-server for the test");
    let cfg = NatsConfig {
        url: Some(nats.url()),
        ..NatsConfig::default()
    };
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&cfg, "alert-engine-deliveries").await.unwrap());
    outcomes_reach_the_timeline(DatabaseConfig::default(), bus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_reach_the_timeline_postgres_in_process() {
    let pg = pantau_testkit::Postgres::start().await.expect("PostgreSQL starts");
    let db = DatabaseConfig {
        url: Some(pg.url()),
        ..DatabaseConfig::default()
    };
    outcomes_reach_the_timeline(db, Arc::new(MemoryBus::new())).await;
}
