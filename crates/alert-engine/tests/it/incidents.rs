//! Incidents through the real engine on an injected clock, in SQLite and
//! PostgreSQL: a parent target and 50 children that depend on it go down →
//! one incident holding the 51 alerts (the children's held by the parent),
//! one alert event on the bus; acknowledging the incident acknowledges its
//! alerts in the person's name; a restart keeps it (nothing resolves); it
//! resolves with its last alert; comments and hostile requests.

use std::sync::Arc;

use futures::{FutureExt as _, StreamExt};
use pantau_alert_engine::deps::{Observed, Signal};
use pantau_alert_engine::facts::from_check;
use pantau_alert_engine::incident::store::IncidentFilter;
use pantau_alert_engine::incident::{EntryKind, IncidentState};
use pantau_alert_engine::lifecycle::State;
use pantau_alert_engine::store::{AlertStore, Filter};
use pantau_alert_engine::{Engine, EngineError};
use pantau_config::{AlertEngineConfig, DatabaseConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, BusEvent, MessageStream, Subscription};
use pantau_core::store::Store;
use pantau_proto::v1::{CheckKind, CheckResult, CheckStatus, IncidentEntryKind};

use crate::suppress::{rule, t};

const CHILDREN: usize = 50;

fn result(target: &str, up: bool, at: u64, parents: &[&str]) -> CheckResult {
    CheckResult {
        target_id: target.into(),
        location: "jkt".into(),
        kind: CheckKind::Tcp.into(),
        status: if up { CheckStatus::Up } else { CheckStatus::Down }.into(),
        checked_at: Some(pantau_core::time::to_timestamp(t(at))),
        depends_on: parents.iter().map(|p| (*p).to_owned()).collect(),
        ..Default::default()
    }
}

async fn check(e: &Engine, target: &str, up: bool, at: u64) {
    let parents: &[&str] = if target == "uplink" { &[] } else { &["target:uplink"] };
    let r = result(target, up, at, parents);
    let signal = Signal::Check(Observed::of(&r, t(at)));
    e.ingest_observed(from_check(&r, t(at)), Some(signal), t(at))
        .await
        .unwrap();
}

fn children() -> Vec<String> {
    (0..CHILDREN).map(|i| format!("child-{i:02}")).collect()
}

async fn engine(db: &Store, bus: &Arc<dyn Bus>) -> Engine {
    let cfg = AlertEngineConfig {
        default_rules: false,
        rules: vec![rule("down", "check_up == 0", &[])],
        ..AlertEngineConfig::default()
    };
    Engine::new(cfg, AlertStore::new(db.clone()), Arc::clone(bus))
        .await
        .unwrap()
}

/// The bus events received so far: (subject family, kind or state).
fn drain(events: &mut MessageStream) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Some(Some(msg)) = events.next().now_or_never() {
        match BusEvent::decode(&msg).unwrap() {
            BusEvent::Alert { state, .. } => out.push(("alert".into(), state.as_str_name().to_owned())),
            BusEvent::Incident { kind, .. } => out.push(("incident".into(), kind.as_str_name().to_owned())),
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

async fn contract(cfg: DatabaseConfig, dir: &std::path::Path) {
    let db = Store::connect(&cfg, dir, "alert-engine", pantau_alert_engine::MIGRATIONS)
        .await
        .unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut events = bus.subscribe(Subscription::live("pantau.>")).await.unwrap();
    let e = engine(&db, &bus).await;
    check(&e, "uplink", true, 0).await;
    for c in children() {
        check(&e, &c, true, 0).await;
    }
    // The outage: the parent, then every child.
    check(&e, "uplink", false, 10).await;
    for c in children() {
        check(&e, &c, false, 11).await;
    }
    let got = drain(&mut events);
    let alerts: Vec<_> = got.iter().filter(|(f, _)| f == "alert").collect();
    assert_eq!(alerts.len(), 1, "one alert event, the root cause's: {got:?}");
    let store = e.store();
    let (list, more) = store.list_incidents(&IncidentFilter::default()).await.unwrap();
    assert!(!more);
    assert_eq!(list.len(), 1, "{list:#?}");
    let inc = &list[0];
    assert_eq!(inc.root_cause, "target:uplink");
    assert_eq!(inc.group_key, "depends:target:uplink");
    assert_eq!((inc.alerts, inc.open_alerts), (51, 51));
    assert_eq!(inc.state, IncidentState::Open);
    let members = store.incident_members(&inc.id).await.unwrap();
    assert_eq!(members.len(), 51);
    let parent = members.iter().find(|a| a.resource == "uplink").unwrap();
    assert_eq!(inc.title, parent.summary, "the root cause's alert names it");
    let held = members
        .iter()
        .filter(|a| a.suppressed_by == format!("depends:{}", parent.id))
        .count();
    assert_eq!(held, CHILDREN, "every child is held by the parent's alert");
    let incident_events: Vec<_> = got.iter().filter(|(f, _)| f == "incident").collect();
    assert_eq!(
        incident_events
            .iter()
            .filter(|(_, k)| k == "INCIDENT_ENTRY_KIND_JOINED")
            .count(),
        51,
        "{got:?}"
    );
    assert_eq!(
        incident_events
            .iter()
            .filter(|(_, k)| k == "INCIDENT_ENTRY_KIND_OPENED")
            .count(),
        1
    );

    // Acknowledged as one: every alert, in the person's name.
    let acked = e
        .acknowledge_incident(&inc.id, "dina", "cable cut", t(20))
        .await
        .unwrap();
    assert_eq!(acked.state, IncidentState::Acknowledged);
    assert_eq!(acked.acknowledged_by, "dina");
    let (ack_alerts, _) = store
        .list(&Filter {
            states: vec![State::Acknowledged],
            limit: 500,
            ..Filter::default()
        })
        .await
        .unwrap();
    assert_eq!(ack_alerts.len(), 51);
    assert!(ack_alerts.iter().all(|a| a.acknowledged_by == "dina"));
    let trail = store.transitions(&parent.id).await.unwrap();
    let last = trail.last().unwrap();
    assert_eq!((last.state, last.actor.as_str()), (State::Acknowledged, "dina"));
    assert!(
        last.comment.contains("cable cut") && last.comment.contains(&inc.id),
        "{}",
        last.comment
    );
    let got = drain(&mut events);
    assert_eq!(
        got.iter().filter(|(f, _)| f == "alert").count(),
        1,
        "only the notified parent's acknowledgement is published: {got:?}"
    );
    assert!(matches!(
        e.acknowledge_incident(&inc.id, "budi", "", t(21)).await,
        Err(EngineError::IncidentAcknowledged { by, .. }) if by == "dina"
    ));
    assert!(matches!(
        e.acknowledge_incident("inc-nope", "budi", "", t(21)).await,
        Err(EngineError::NoIncident(_))
    ));
    e.comment_incident(&inc.id, "dina", "ISP ticket 4711", t(22))
        .await
        .unwrap();
    for bad in [String::new(), "x".repeat(5_000), "nul\u{0}".to_owned()] {
        assert!(matches!(
            e.comment_incident(&inc.id, "dina", &bad, t(22)).await,
            Err(EngineError::BadComment(m)) if m.contains("`text`")
        ));
    }
    assert!(matches!(
        e.comment_incident("inc-nope", "dina", "hello", t(22)).await,
        Err(EngineError::NoIncident(_))
    ));

    // A restart keeps it, acknowledged, with every alert open.
    drop(e);
    let e = engine(&db, &bus).await;
    let again = e.store().incident(&inc.id).await.unwrap().unwrap();
    assert_eq!(again.state, IncidentState::Acknowledged);
    assert_eq!((again.alerts, again.open_alerts), (51, 51));
    // (The restored engine knows the members: each leaves below.)

    // Recovery: resolved with the last alert only.
    check(&e, "uplink", true, 100).await;
    for (n, c) in children().iter().enumerate() {
        let now = e.store().incident(&inc.id).await.unwrap().unwrap();
        assert_ne!(
            now.state,
            IncidentState::Resolved,
            "resolved with {n} children still down"
        );
        check(&e, c, true, 101).await;
    }
    let done = e.store().incident(&inc.id).await.unwrap().unwrap();
    assert_eq!(done.state, IncidentState::Resolved);
    assert_eq!(done.open_alerts, 0);
    assert!(done.resolved_at.is_some());
    let timeline = e.store().incident_timeline(&inc.id).await.unwrap();
    let count = |k: EntryKind| timeline.iter().filter(|x| x.kind == k).count();
    assert_eq!(count(EntryKind::Opened), 1);
    assert_eq!(count(EntryKind::Joined), 51);
    assert_eq!(count(EntryKind::Left), 51);
    assert_eq!(count(EntryKind::Commented), 1);
    assert_eq!(count(EntryKind::Resolved), 1);
    assert_eq!(count(EntryKind::Notified), 2, "the parent's firing and resolve");
    assert_eq!(timeline.last().unwrap().kind, EntryKind::Resolved);
    let c = timeline.iter().find(|x| x.kind == EntryKind::Commented).unwrap();
    assert_eq!((c.actor.as_str(), c.text.as_str()), ("dina", "ISP ticket 4711"));
    let got = drain(&mut events);
    assert!(got.contains(&("incident".into(), IncidentEntryKind::Resolved.as_str_name().into())));
    // Filters: by state and since.
    let only = |states: Vec<IncidentState>, since| {
        let store = e.store().clone();
        async move {
            store
                .list_incidents(&IncidentFilter {
                    states,
                    since,
                    ..IncidentFilter::default()
                })
                .await
                .unwrap()
                .0
                .len()
        }
    };
    assert_eq!(only(vec![IncidentState::Resolved], None).await, 1);
    assert_eq!(
        only(vec![IncidentState::Open, IncidentState::Acknowledged], None).await,
        0
    );
    assert_eq!(only(Vec::new(), Some(t(11))).await, 0, "opened at t(10)");
    assert_eq!(only(Vec::new(), Some(t(10))).await, 1);
    // Pruned past retention with its members and timeline.
    assert_eq!(e.store().prune_incidents(t(102)).await.unwrap(), 1);
    assert!(e.store().incident(&inc.id).await.unwrap().is_none());
    assert!(e.store().incident_timeline(&inc.id).await.unwrap().is_empty());
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    contract(DatabaseConfig::default(), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let pg = pantau_testkit::Postgres::start().await.expect("PostgreSQL starts");
    let dir = tempfile::tempdir().unwrap();
    let cfg = DatabaseConfig {
        url: Some(pg.url()),
        ..DatabaseConfig::default()
    };
    contract(cfg, dir.path()).await;
}

#[tokio::test]
async fn other_alerts_group_by_their_labels_within_the_window() {
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
    let e = engine(&db, &bus).await;
    let plain = |target: &str, up: bool, at: u64| {
        let r = result(target, up, at, &[]);
        (from_check(&r, t(at)), Signal::Check(Observed::of(&r, t(at))))
    };
    for (target, at) in [("web", 0), ("db", 60), ("mail", 1_000)] {
        let (facts, sig) = plain(target, false, at);
        e.ingest_observed(facts, Some(sig), t(at)).await.unwrap();
    }
    let (list, _) = e.store().list_incidents(&IncidentFilter::default()).await.unwrap();
    let mut sizes: Vec<(u32, &str)> = list.iter().map(|i| (i.alerts, i.group_key.as_str())).collect();
    sizes.sort_unstable();
    assert_eq!(
        sizes,
        [(1, "group:alertname=down"), (2, "group:alertname=down")],
        "web and db within 5 minutes; mail after"
    );
    assert!(list.iter().all(|i| i.root_cause.is_empty()));
    db.close().await;
}
