//! Incidents in a cluster. A dependent keeps copies of the primary's
//! incidents from `pantau.incident.>` (over a real nats-server): the same
//! id, members, timeline and state, each entry once however often the bus
//! hands it over, hostile events dead-lettered without stopping the copy.
//! Open alerts that are in no incident when an engine becomes the
//! evaluator — taken over at a promotion through the cluster gate, or
//! restored at a start (SQLite and PostgreSQL) — join one by the grouping
//! rules, stored and published.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use pantau_alert_engine::cluster::{mirror_consumer, mirror_loop};
use pantau_alert_engine::consume;
use pantau_alert_engine::event::to_event;
use pantau_alert_engine::facts::Fact;
use pantau_alert_engine::incident::store::IncidentFilter;
use pantau_alert_engine::incident::{EntryKind, IncidentState};
use pantau_alert_engine::lifecycle::Change;
use pantau_alert_engine::series::Value;
use pantau_alert_engine::store::AlertStore;
use pantau_alert_engine::{Engine, EngineError};
use pantau_config::{AlertEngineConfig, DatabaseConfig, NatsConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::nats::NatsBus;
use pantau_core::bus::{Bus, Headers, Message, Subscription, subject};
use pantau_core::cluster::{Cluster, Role};
use pantau_core::store::Store;
use pantau_proto::prost::Message as _;
use pantau_proto::v1::{IncidentEntry, IncidentEntryKind, IncidentEvent, IncidentState as PbState, Severity};
use tokio_util::sync::CancellationToken;

use crate::suppress::{rule, t};

const WAIT: Duration = Duration::from_secs(20);

fn cpu(host: &str, v: f64, at: u64) -> Fact {
    Fact {
        name: "cpu_usage".into(),
        labels: [("host".to_owned(), host.to_owned())].into(),
        value: Value::Num(v),
        at: t(at),
    }
}

fn cfg() -> AlertEngineConfig {
    AlertEngineConfig {
        default_rules: false,
        rules: vec![rule("high-cpu", "cpu_usage > 80", &[])],
        ..AlertEngineConfig::default()
    }
}

async fn store(db: &DatabaseConfig, dir: &tempfile::TempDir) -> Store {
    Store::connect(db, dir.path(), "alert-engine", pantau_alert_engine::MIGRATIONS)
        .await
        .unwrap()
}

async fn engine(db: Store, bus: &Arc<dyn Bus>, instance: &str, cluster: &Cluster) -> Arc<Engine> {
    let e = Engine::new(cfg(), AlertStore::new(db), Arc::clone(bus)).await.unwrap();
    Arc::new(e.with_cluster(instance, cluster.clone()))
}

/// Waits until `check` holds (at most [`WAIT`]).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn nats_bus(url: &str, name: &str) -> Arc<dyn Bus> {
    let cfg = NatsConfig {
        url: Some(url.to_owned()),
        ..NatsConfig::default()
    };
    Arc::new(NatsBus::connect(&cfg, name).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_keeps_copies_of_the_primarys_incidents() {
    let nats = pantau_testkit::Nats::start().await.expect("nats-server for the test");
    let bus = nats_bus(&nats.url(), "incident-mirror").await;
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let db = DatabaseConfig::default();
    let jkt = engine(
        store(&db, &d1).await,
        &bus,
        "jkt-1",
        &Cluster::new(Role::Primary { epoch: 1 }),
    )
    .await;
    let dependent = Cluster::new(Role::Dependent {
        primary: "jkt-1".into(),
    });
    let bdg = engine(store(&db, &d2).await, &bus, "bdg-1", &dependent).await;
    let mut published = bus.subscribe(Subscription::live("pantau.incident.>")).await.unwrap();
    let mut dead = bus
        .subscribe(Subscription::live(subject::dead_letter("alert-engine-mirror")))
        .await
        .unwrap();
    let mirror = mirror_consumer(&bus, "bdg-1");
    let ready = mirror.readiness();
    let stop = CancellationToken::new();
    let copying = tokio::spawn(mirror_loop(Arc::clone(&bdg), mirror, stop.clone()));
    eventually("the mirror subscribes", || async { ready.check().await.is_ok() }).await;

    // The primary's alert opens an incident; the dependent copies it.
    let fired = jkt.ingest(vec![cpu("a", 95.0, 0)], t(0)).await.unwrap();
    let alert = fired[0].alert.id.clone();
    let (list, _) = jkt.store().list_incidents(&IncidentFilter::default()).await.unwrap();
    let id = list[0].id.clone();
    eventually("the dependent copies the incident with its three entries", || async {
        bdg.store().incident_timeline(&id).await.unwrap().len() >= 3
    })
    .await;
    let (copies, _) = bdg.store().list_incidents(&IncidentFilter::default()).await.unwrap();
    assert_eq!(copies.len(), 1, "its incident list is the cluster's");
    assert_eq!(
        (
            copies[0].id.as_str(),
            copies[0].state,
            copies[0].alerts,
            copies[0].open_alerts
        ),
        (id.as_str(), IncidentState::Open, 1, 1)
    );
    assert_eq!(copies[0].title, list[0].title);
    let members = bdg.store().incident_members(&id).await.unwrap();
    assert_eq!(members.len(), 1, "the alert copy is its member");
    assert_eq!(members[0].id, alert);

    // The same events handed over again, and hostile ones, add nothing.
    let mut seen: Vec<Message> = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), published.next()).await {
        seen.push(m);
    }
    assert_eq!(seen.len(), 3, "opened, joined, notified");
    for m in &seen {
        bus.publish(&m.subject, Headers::new(), m.payload.clone())
            .await
            .unwrap();
    }
    let good = IncidentEvent::decode(seen[0].payload.as_ref()).unwrap();
    let hostile: Vec<(String, Vec<u8>)> = vec![
        (subject::incident("joined", &id), b"\xff garbage".to_vec()),
        (
            subject::incident("joined", &id),
            IncidentEvent {
                severity: 99,
                instance: "jkt-1".into(),
                entry: Some(IncidentEntry {
                    kind: IncidentEntryKind::Joined.into(),
                    ..Default::default()
                }),
                ..good.clone()
            }
            .encode_to_vec(),
        ),
        (
            subject::incident("joined", &id),
            IncidentEvent {
                opened_at: None,
                entry: Some(IncidentEntry {
                    kind: IncidentEntryKind::Joined.into(),
                    alert_id: "x y".repeat(100_000),
                    ..Default::default()
                }),
                ..good.clone()
            }
            .encode_to_vec(),
        ),
        (
            subject::incident("opened", &id),
            IncidentEvent {
                state: PbState::Open.into(),
                severity: Severity::Critical.into(),
                opened_at: None,
                ..good.clone()
            }
            .encode_to_vec(),
        ),
    ];
    let refused = hostile.len();
    for (s, p) in hostile {
        bus.publish(&s, Headers::new(), Bytes::from(p)).await.unwrap();
    }
    for n in 0..refused {
        let m = tokio::time::timeout(WAIT, dead.next())
            .await
            .unwrap_or_else(|_| panic!("dead letter {n} of {refused}"))
            .unwrap();
        assert!(m.headers.contains_key("pantau-dead-letter-reason"));
    }

    // The copy goes on: acknowledged and resolved on the primary.
    jkt.acknowledge_incident(&id, "dina", "looking", t(5)).await.unwrap();
    jkt.ingest(vec![cpu("a", 10.0, 10)], t(10)).await.unwrap();
    let want = jkt.store().incident_timeline(&id).await.unwrap().len();
    eventually("the copy resolves with every entry", || async {
        bdg.store()
            .incident(&id)
            .await
            .unwrap()
            .is_some_and(|i| i.state == IncidentState::Resolved)
            && bdg.store().incident_timeline(&id).await.unwrap().len() >= want
    })
    .await;
    let copy = bdg.store().incident(&id).await.unwrap().unwrap();
    assert_eq!(copy.acknowledged_by, "dina");
    assert_eq!(copy.open_alerts, 0);
    let mine = bdg.store().incident_timeline(&id).await.unwrap();
    let theirs = jkt.store().incident_timeline(&id).await.unwrap();
    let kinds = |v: &[pantau_alert_engine::incident::Entry]| v.iter().map(|e| e.kind).collect::<Vec<EntryKind>>();
    assert_eq!(kinds(&mine), kinds(&theirs), "each entry once, in order");
    // Read-only: changes are made on the primary.
    let e = bdg.comment_incident(&id, "ops", "hello", t(11)).await.unwrap_err();
    assert!(matches!(&e, EngineError::NotEvaluating(p) if p == "jkt-1"), "{e}");
    stop.cancel();
    tokio::time::timeout(WAIT, copying).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_taken_over_at_a_promotion_join_incidents() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let db = DatabaseConfig::default();
    let jkt = engine(
        store(&db, &d1).await,
        &bus,
        "jkt-1",
        &Cluster::new(Role::Primary { epoch: 1 }),
    )
    .await;
    let dependent = Cluster::new(Role::Dependent {
        primary: "jkt-1".into(),
    });
    let bdg = engine(store(&db, &d2).await, &bus, "bdg-1", &dependent).await;
    // Two alerts of one rule, copied without their incident (an old
    // primary's, or its incident events lost).
    let mut fired: Vec<Change> = jkt.ingest(vec![cpu("a", 95.0, 0)], t(0)).await.unwrap();
    fired.extend(jkt.ingest(vec![cpu("b", 97.0, 30)], t(30)).await.unwrap());
    assert_eq!(fired.len(), 2);
    for c in &fired {
        let mut ev = to_event(c);
        ev.instance = "jkt-1".into();
        assert!(bdg.mirror(&ev, t(31)).await.unwrap());
    }
    let (none, _) = bdg.store().list_incidents(&IncidentFilter::default()).await.unwrap();
    assert!(none.is_empty());

    // Promotion, through the cluster gate the consumer holds.
    let mut events = bus.subscribe(Subscription::live("pantau.incident.>")).await.unwrap();
    let stop = CancellationToken::new();
    let gate = dependent.gate(consume::CONSUMER);
    let consumer = tokio::spawn(
        consume::start(Arc::clone(&bdg), &bus, gate, stop.clone())
            .await
            .unwrap(),
    );
    dependent.set(Role::Primary { epoch: 2 });
    eventually("the taken-over alerts join an incident", || async {
        !bdg.store()
            .list_incidents(&IncidentFilter::default())
            .await
            .unwrap()
            .0
            .is_empty()
    })
    .await;
    let (list, _) = bdg.store().list_incidents(&IncidentFilter::default()).await.unwrap();
    assert_eq!(list.len(), 1, "one grouping key within the window: {list:#?}");
    assert_eq!(list[0].group_key, "group:alertname=high-cpu");
    assert_eq!((list[0].alerts, list[0].open_alerts), (2, 2));
    let mut members: Vec<String> = bdg
        .store()
        .incident_members(&list[0].id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    members.sort();
    let mut ids = vec![fired[0].alert.id.clone(), fired[1].alert.id.clone()];
    ids.sort();
    assert_eq!(members, ids);
    let mut kinds = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), events.next()).await {
        kinds.push(m.subject.split('.').nth(2).unwrap_or_default().to_owned());
    }
    assert_eq!(
        kinds.iter().filter(|k| *k == "joined").count(),
        2,
        "published: {kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "opened").count(),
        1,
        "published: {kinds:?}"
    );
    // The incident is the engine's now: it resolves with its last alert.
    bdg.ingest(vec![cpu("a", 10.0, 40), cpu("b", 10.0, 40)], t(40))
        .await
        .unwrap();
    let done = bdg.store().incident(&list[0].id).await.unwrap().unwrap();
    assert_eq!(done.state, IncidentState::Resolved);
    stop.cancel();
    tokio::time::timeout(WAIT, consumer).await.unwrap().unwrap().unwrap();
}

async fn restored_alerts_join_incidents(db: DatabaseConfig) {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let sqlite = DatabaseConfig::default();
    // An alert made elsewhere…
    let scratch = tempfile::tempdir().unwrap();
    let first = engine(
        store(&sqlite, &scratch).await,
        &bus,
        "jkt-1",
        &Cluster::new(Role::Standalone),
    )
    .await;
    let fired = first.ingest(vec![cpu("a", 95.0, 0)], t(0)).await.unwrap();
    drop(first);
    // …stored without an incident (as before incidents existed).
    let dir = tempfile::tempdir().unwrap();
    let s = store(&db, &dir).await;
    AlertStore::new(s.clone()).record(&fired[0]).await.unwrap();
    let restarted = engine(s, &bus, "jkt-1", &Cluster::new(Role::Standalone)).await;
    assert_eq!(restarted.group_restored(t(1)).await.unwrap(), 1);
    assert_eq!(restarted.group_restored(t(2)).await.unwrap(), 0, "once");
    let (list, _) = restarted
        .store()
        .list_incidents(&IncidentFilter::default())
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].open_alerts, 1);
    let members = restarted.store().incident_members(&list[0].id).await.unwrap();
    assert_eq!(members[0].id, fired[0].alert.id);
    // A dependent groups nothing: the primary does.
    let other_dir = tempfile::tempdir().unwrap();
    let other = store(&sqlite, &other_dir).await;
    AlertStore::new(other.clone()).record(&fired[0]).await.unwrap();
    let dep = engine(
        other,
        &bus,
        "bdg-1",
        &Cluster::new(Role::Dependent {
            primary: "jkt-1".into(),
        }),
    )
    .await;
    assert_eq!(dep.group_restored(t(1)).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_alerts_join_incidents_sqlite() {
    restored_alerts_join_incidents(DatabaseConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_alerts_join_incidents_postgres() {
    let pg = pantau_testkit::Postgres::start().await.expect("PostgreSQL starts");
    restored_alerts_join_incidents(DatabaseConfig {
        url: Some(pg.url()),
        ..DatabaseConfig::default()
    })
    .await;
}
