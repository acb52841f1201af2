//! The escalation scheduler against the real store (SQLite and PostgreSQL)
//! on an explicit clock: `escalate_due(now)` is given the time, so a policy
//! of minutes is walked through at once. Repeats and steps on schedule, each
//! with its own idempotency key; a second notifier over the same store (a
//! restart) neither repeats nor loses a step; acknowledgement stops the
//! repeats and starts reminders; the resolve goes wherever the firing went
//! and ends it all.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use pantau_config::DatabaseConfig;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::service::Context;
use pantau_core::store::Store;
use pantau_notifier::escalation::{ACKNOWLEDGED, DONE, FIRING};
use pantau_notifier::notification::Notification;
use pantau_notifier::store::Filter;
use pantau_notifier::{MIGRATIONS, Notifier};
use pantau_proto::v1::{AlertState, Severity};
use serde_json::json;

use crate::harness::{config, event};

const S: i64 = 1000;

fn notifier(dir: &std::path::Path, store: Store) -> Notifier {
    let cfg = config(
        dir,
        json!({
            "channels": [
                {"name": "a", "type": "webhook", "url": "http://127.0.0.1:9/a"},
                {"name": "b", "type": "webhook", "url": "http://127.0.0.1:9/b"},
                {"name": "log", "type": "webhook", "url": "http://127.0.0.1:9/log"},
            ],
            "routes": [
                {"severity": ["critical"], "channels": ["a"], "escalation": "oncall"},
                {"channels": ["log"]},
            ],
            "escalations": [{
                "name": "oncall",
                "repeat_every": "10m",
                "steps": [{"after": "30m", "channels": ["b"]}],
                "remind_every": "4h",
            }],
        }),
    );
    let ctx = Context::new(Arc::new(cfg), Arc::new(MemoryBus::new()));
    Notifier::new(&ctx, store).unwrap()
}

fn notification(state: AlertState) -> Notification {
    Notification::from_event(&event("esc-1", state, Severity::Critical)).unwrap()
}

/// Every delivery of the alert as (channel, state, title prefix), oldest first.
async fn sent(n: &Notifier) -> Vec<(String, String, String)> {
    let mut all = n
        .store()
        .list(&Filter {
            alert_key: Some("esc-1".into()),
            limit: 1000,
            ..Filter::default()
        })
        .await
        .unwrap();
    all.reverse();
    let ids: HashSet<&str> = all.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), all.len(), "every delivery has its own key");
    all.iter()
        .map(|d| (d.channel.clone(), d.state.clone(), d.alert_key.clone()))
        .collect()
}

async fn steps(n: &Notifier) -> BTreeMap<String, Vec<String>> {
    // channel → titles, to see which step went where.
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut all = n
        .store()
        .list(&Filter {
            alert_key: Some("esc-1".into()),
            limit: 1000,
            ..Filter::default()
        })
        .await
        .unwrap();
    all.reverse();
    for d in all {
        out.entry(d.channel).or_default().push(d.state);
    }
    out
}

async fn contract(dir: &std::path::Path, store: Store) {
    let n = notifier(dir, store.clone());
    assert_eq!(n.accept(&notification(AlertState::Firing)).await.unwrap(), 2);
    let e = &n.escalations().of_alert("alert", "esc-1", FIRING).await.unwrap()[0];
    let t0 = e.started_at;
    assert_eq!(e.next_at, t0 + 600 * S);
    assert_eq!(e.channels, ["a"]);
    // The same firing again (a redelivered bus message) restarts nothing.
    n.accept(&notification(AlertState::Firing)).await.unwrap();
    assert_eq!(
        n.escalations().of_alert("alert", "esc-1", FIRING).await.unwrap()[0].next_at,
        t0 + 600 * S
    );
    assert_eq!(sent(&n).await.len(), 2);

    // Nothing before 10 min; the repeat to `a` at 10 min, once.
    assert_eq!(n.escalate_due(t0 + 599 * S).await.unwrap(), 0);
    assert_eq!(n.escalate_due(t0 + 600 * S).await.unwrap(), 1);
    assert_eq!(n.escalate_due(t0 + 600 * S).await.unwrap(), 0);
    assert_eq!(steps(&n).await["a"], ["firing", "firing"]);
    assert_eq!(steps(&n).await["log"], ["firing"], "no route without a policy repeats");

    // A restart: another notifier over the same store. The 20 min repeat
    // goes out once, from whichever runs.
    let again = notifier(dir, store.clone());
    assert_eq!(again.escalate_due(t0 + 1200 * S).await.unwrap(), 1);
    assert_eq!(n.escalate_due(t0 + 1200 * S).await.unwrap(), 0);
    // Down from 25 to 41 min: the repeat at 30 and the step to b become one
    // send at 40 min (to a and b); nothing is lost, nothing doubled.
    assert_eq!(again.escalate_due(t0 + 2460 * S).await.unwrap(), 1);
    let s = steps(&again).await;
    assert_eq!(s["a"].len(), 4, "{s:?}");
    assert_eq!(s["b"], ["firing"], "{s:?}");
    let e = &again.escalations().of_alert("alert", "esc-1", FIRING).await.unwrap()[0];
    assert_eq!((e.sent, e.next_at), (3, t0 + 3000 * S));
    let titles: Vec<String> = again
        .store()
        .list(&Filter {
            channel: Some("b".into()),
            alert_key: Some("esc-1".into()),
            limit: 10,
            ..Filter::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(titles.len(), 1);

    // Acknowledged: b hears of it too (a step's channel); repeats stop,
    // reminders start.
    again.accept(&notification(AlertState::Acknowledged)).await.unwrap();
    let s = steps(&again).await;
    assert_eq!(s["b"], ["firing", "acknowledged"], "{s:?}");
    assert!(
        again
            .escalations()
            .of_alert("alert", "esc-1", FIRING)
            .await
            .unwrap()
            .is_empty()
    );
    let r = &again
        .escalations()
        .of_alert("alert", "esc-1", ACKNOWLEDGED)
        .await
        .unwrap()[0];
    let ack = r.started_at;
    assert_eq!(r.next_at, ack + 4 * 3600 * S);
    assert_eq!(
        again.escalate_due(ack + 3600 * S).await.unwrap(),
        0,
        "no repeat after the acknowledgement"
    );
    assert_eq!(again.escalate_due(ack + 4 * 3600 * S).await.unwrap(), 1);
    let s = steps(&again).await;
    assert_eq!(
        s["a"],
        ["firing", "firing", "firing", "firing", "acknowledged", "acknowledged"],
        "four firings, the acknowledgement, one reminder"
    );
    assert_eq!(s["b"].len(), 2, "reminders go to the route's channels only: {s:?}");

    // Resolved: to a, log and b (where the firing went); the escalation ends.
    let before = sent(&again).await.len();
    again.accept(&notification(AlertState::Resolved)).await.unwrap();
    let s = steps(&again).await;
    for ch in ["a", "b", "log"] {
        assert_eq!(s[ch].last().unwrap(), "resolved", "{ch}: {s:?}");
    }
    assert_eq!(sent(&again).await.len(), before + 3);
    assert_eq!(again.escalate_due(ack + 100 * 3600 * S).await.unwrap(), 0);
    assert_eq!(again.escalations().active().await.unwrap(), 0);
    assert_eq!(
        again
            .escalations()
            .of_alert("alert", "esc-1", DONE)
            .await
            .unwrap()
            .len(),
        1
    );
    // A late redelivery of the firing does not start it again.
    again.accept(&notification(AlertState::Firing)).await.unwrap();
    assert_eq!(again.escalations().active().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_schedule_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&DatabaseConfig::default(), dir.path(), "notifier", MIGRATIONS)
        .await
        .unwrap();
    contract(dir.path(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_schedule_postgres() {
    let pg = pantau_testkit::Postgres::start()
        .await
        .expect("PostgreSQL for the test");
    let url = pg.create_database("notifier_escalation").await.unwrap();
    let cfg = DatabaseConfig {
        url: Some(url),
        ..DatabaseConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&cfg, dir.path(), "notifier", MIGRATIONS).await.unwrap();
    contract(dir.path(), store.clone()).await;
    store.close().await;
}

/// A resolve goes wherever the firing was delivered, even when the routes
/// changed since (a restart with another configuration).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolve_follows_the_firing_after_the_routes_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&DatabaseConfig::default(), dir.path(), "notifier", MIGRATIONS)
        .await
        .unwrap();
    let n = notifier(dir.path(), store.clone());
    n.accept(&notification(AlertState::Firing)).await.unwrap();
    // Restarted with a route that no longer sends critical alerts to `a`.
    let mut cfg = config(
        dir.path(),
        json!({
            "channels": [
                {"name": "a", "type": "webhook", "url": "http://127.0.0.1:9/a"},
                {"name": "log", "type": "webhook", "url": "http://127.0.0.1:9/log"},
            ],
            "routes": [{"severity": ["info"], "channels": ["log"]}],
        }),
    );
    cfg.instance.name = "restarted".into();
    let ctx = Context::new(Arc::new(cfg), Arc::new(MemoryBus::new()));
    let restarted = Notifier::new(&ctx, store).unwrap();
    assert_eq!(restarted.accept(&notification(AlertState::Resolved)).await.unwrap(), 2);
    let s = steps(&restarted).await;
    assert_eq!(s["a"], ["firing", "resolved"]);
    assert_eq!(s["log"], ["firing", "resolved"]);
}
