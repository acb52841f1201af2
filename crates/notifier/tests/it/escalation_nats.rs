//! Escalation end to end over nats-server: an alert nobody acknowledges is
//! repeated every second and escalated to a second channel after two; the
//! notifier is stopped in the middle and started again (steps that fell due
//! meanwhile go out once, none twice); the acknowledgement stops it. The
//! sink's requests are compared with the store's count of steps sent.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use pantau_config::{DatabaseConfig, NatsConfig};
use pantau_core::bus::Bus;
use pantau_core::bus::nats::NatsBus;
use pantau_core::store::Store;
use pantau_notifier::MIGRATIONS;
use pantau_notifier::escalation::{DONE, EscalationStore};
use pantau_proto::v1::{AlertState, Severity};
use serde_json::json;

use crate::harness::{Recorded, Running, Sink, config, event, publish};

async fn bus(url: &str, name: &str) -> Arc<dyn Bus> {
    let cfg = NatsConfig {
        url: Some(url.to_owned()),
        ..NatsConfig::default()
    };
    Arc::new(NatsBus::connect(&cfg, name).await.expect("connect to nats"))
}

/// (path, status, revision) of a request.
fn seen(r: &Recorded) -> (String, String, String) {
    let b = r.json();
    (
        r.path.clone(),
        b["notification"]["status"].as_str().unwrap_or_default().to_owned(),
        b["notification"]["revision"].as_str().unwrap_or_default().to_owned(),
    )
}

fn steps(sink: &Sink) -> Vec<(String, String, String)> {
    sink.requests()
        .iter()
        .map(seen)
        .filter(|(_, _, rev)| rev.contains("|escalation:"))
        .collect()
}

async fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !ok() {
        assert!(tokio::time::Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_alert_repeats_escalates_survives_a_restart_and_stops_on_acknowledgement() {
    let nats = pantau_testkit::Nats::start().await.expect("nats-server for the test");
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        json!({
            "channels": [
                {"name": "a", "type": "webhook", "url": format!("{}/a", sink.url)},
                {"name": "b", "type": "webhook", "url": format!("{}/b", sink.url)},
            ],
            "routes": [{"channels": ["a"], "escalation": "oncall"}],
            "escalations": [{
                "name": "oncall",
                "repeat_every": "1s",
                "steps": [{"after": "2s", "channels": ["b"]}],
            }],
        }),
    );
    let publisher = bus(&nats.url(), "engine").await;
    let mut outcomes = publisher
        .subscribe(pantau_core::bus::Subscription::live("pantau.delivery.>"))
        .await
        .unwrap();
    let first = Running::start(cfg.clone(), bus(&nats.url(), "notifier-1").await).await;
    publish(
        publisher.as_ref(),
        &event("e2e", AlertState::Firing, Severity::Critical),
    )
    .await;

    // The firing to a, the repeat at 1 s to a, at 2 s to a and (escalated) b.
    wait_until("the 2 s step reached b", Duration::from_secs(15), || {
        steps(&sink).iter().any(|(p, _, _)| p == "/b")
    })
    .await;
    let before: HashSet<(String, String)> = steps(&sink)
        .into_iter()
        .map(|(p, _, rev)| (p, rev.rsplit(':').next().unwrap().to_owned()))
        .collect();
    for want in [("/a", "1000"), ("/a", "2000"), ("/b", "2000")] {
        assert!(
            before.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} in {before:?}"
        );
    }
    // Each step's delivery is told with the step it was.
    let mut told: Vec<(String, String)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !told.iter().any(|(c, e)| c == "b" && e == "escalation:oncall:2000") {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = tokio::time::timeout(left, futures::StreamExt::next(&mut outcomes))
            .await
            .unwrap_or_else(|_| panic!("the 2 s step to b told on pantau.delivery.>: {told:?}"))
            .unwrap();
        let pantau_core::bus::BusEvent::Delivery { delivery, .. } = pantau_core::bus::BusEvent::decode(&m).unwrap()
        else {
            panic!("{} is not a delivery", m.subject)
        };
        assert_eq!(delivery.alert_id, "e2e");
        told.push((delivery.channel, delivery.escalation));
    }
    assert!(
        told.contains(&("a".to_owned(), String::new())),
        "the firing itself: {told:?}"
    );
    assert!(
        !before.contains(&("/b".to_owned(), "1000".to_owned())),
        "b only from 2 s"
    );

    // Stopped mid-escalation; steps fall due while it is down.
    first.stop().await;
    let at_stop = steps(&sink).len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(steps(&sink).len(), at_stop, "nothing is sent while stopped");
    let second = Running::start(cfg.clone(), bus(&nats.url(), "notifier-2").await).await;
    wait_until("a step after the restart", Duration::from_secs(15), || {
        steps(&sink).len() >= at_stop + 2
    })
    .await;

    // Acknowledged: a and b hear of it, and the repeats stop.
    publish(
        publisher.as_ref(),
        &event("e2e", AlertState::Acknowledged, Severity::Critical),
    )
    .await;
    wait_until("the acknowledgement reached a and b", Duration::from_secs(15), || {
        let acks: HashSet<String> = sink
            .requests()
            .iter()
            .map(seen)
            .filter(|(_, s, _)| s == "acknowledged")
            .map(|(p, _, _)| p)
            .collect();
        acks.len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = steps(&sink).len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(steps(&sink).len(), settled, "no repeat after the acknowledgement");
    second.stop().await;

    // Each step the store counts reached the sink exactly once, with its own key.
    let all = sink.requests();
    let keys: HashSet<&str> = all.iter().map(|r| r.header("idempotency-key")).collect();
    assert_eq!(keys.len(), all.len(), "one key per delivery, none sent twice");
    let mut per_step: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, _, rev) in steps(&sink) {
        per_step.entry(rev).or_default().push(path);
    }
    for (rev, paths) in &per_step {
        let distinct: HashSet<&String> = paths.iter().collect();
        assert_eq!(distinct.len(), paths.len(), "step {rev} doubled: {paths:?}");
    }
    let store = Store::connect(&DatabaseConfig::default(), dir.path(), "notifier", MIGRATIONS)
        .await
        .unwrap();
    let done = EscalationStore::new(store.clone())
        .of_alert("alert", "e2e", DONE)
        .await
        .unwrap();
    assert_eq!(done.len(), 1, "acknowledged without reminders: done");
    assert_eq!(
        done[0].sent as usize,
        per_step.len(),
        "every step the store sent arrived once: {per_step:?}"
    );
    store.close().await;
}
