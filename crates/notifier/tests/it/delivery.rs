//! At-least-once delivery: retries with backoff and a stable idempotency
//! key, giving up (metric-free here: the status, the log and the bus event),
//! a restart in the middle, rate limits.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, Subscription};
use pantau_proto::v1::{AlertState, DeliveryStatus, ListDeliveriesRequest, RouterEvent, Severity};
use serde_json::json;

use crate::harness::{Running, Sink, config, event, one_webhook, publish};

async fn deliveries(n: &Running, status: DeliveryStatus) -> Vec<pantau_proto::v1::Delivery> {
    n.client()
        .list_deliveries(ListDeliveriesRequest {
            status: status.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .deliveries
}

async fn wait_status(n: &Running, status: DeliveryStatus, count: usize) -> Vec<pantau_proto::v1::Delivery> {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let d = deliveries(n, status).await;
            if d.len() >= count {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {count} deliveries reached {status:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_backoff_and_one_idempotency_key() {
    let sink = Sink::start().await;
    sink.fail_next(2, 503);
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(MemoryBus::new());
    let n = Running::start(config(dir.path(), one_webhook(&sink.url, json!({}))), bus.clone()).await;
    publish(bus.as_ref(), &event("r1", AlertState::Firing, Severity::Critical)).await;
    let got = sink.wait_for(3, Duration::from_secs(15)).await;
    let keys: HashSet<&str> = got.iter().map(|r| r.header("idempotency-key")).collect();
    assert_eq!(keys.len(), 1, "the key changed across retries");
    let done = wait_status(&n, DeliveryStatus::Delivered, 1).await;
    // An unknown status is refused naming the field, not read as "any".
    let e = n
        .client()
        .list_deliveries(ListDeliveriesRequest {
            status: 99,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("`status`"), "{}", e.message());
    let d = &done[0];
    assert_eq!(d.attempts, 3);
    assert_eq!(d.id, *keys.iter().next().unwrap());
    let codes: Vec<u32> = d.attempt_log.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [503, 503, 200]);
    assert!(
        d.attempt_log[0].error.starts_with("HTTP 503"),
        "{}",
        d.attempt_log[0].error
    );
    assert!(d.attempt_log[2].error.is_empty());
    // Backoff: the retries were spread, not immediate (initial 50ms, at least half of it).
    let at: Vec<i64> = d
        .attempt_log
        .iter()
        .map(|a| {
            let t = a.at.unwrap();
            t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
        })
        .collect();
    assert!(at[1] - at[0] >= 25, "{at:?}");
    assert!(at[2] - at[1] >= 50, "{at:?}");
    // Redelivering the same event adds nothing.
    publish(bus.as_ref(), &event("r1", AlertState::Firing, Severity::Critical)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.requests().len(), 3);
    n.stop().await;
}

async fn given_up_event(sub: &mut pantau_core::bus::MessageStream) -> RouterEvent {
    let msg = tokio::time::timeout(Duration::from_secs(15), sub.next())
        .await
        .expect("a given-up event")
        .unwrap();
    assert_eq!(msg.subject, "pantau.event.instance.notifier");
    pantau_core::bus::decode::<RouterEvent>(&msg).expect("a RouterEvent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_and_reports_it() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(MemoryBus::new());
    let mut events = bus
        .subscribe(Subscription::live("pantau.event.instance.>"))
        .await
        .unwrap();
    let mut cfg = config(dir.path(), one_webhook(&sink.url, json!({})));
    cfg.notifier.retry.max_attempts = 3;
    let n = Running::start(cfg, bus.clone()).await;

    // A permanent error (400) is not retried.
    sink.fail_next(1, 400);
    publish(bus.as_ref(), &event("p1", AlertState::Firing, Severity::Critical)).await;
    let e = given_up_event(&mut events).await;
    assert_eq!(e.source, "notifier");
    assert_eq!(e.attributes["channel"], "hook");
    assert_eq!(e.attributes["attempts"], "1");
    assert!(e.attributes["error"].starts_with("HTTP 400"), "{:?}", e.attributes);

    // Temporary errors are retried until max_attempts.
    sink.fail_next(100, 500);
    publish(bus.as_ref(), &event("p2", AlertState::Firing, Severity::Critical)).await;
    let e = given_up_event(&mut events).await;
    assert_eq!(e.attributes["attempts"], "3");
    let failed = wait_status(&n, DeliveryStatus::Failed, 2).await;
    let attempts: Vec<u32> = failed.iter().map(|d| d.attempts).collect();
    assert_eq!(attempts, [3, 1], "newest first");
    assert_eq!(sink.requests().len(), 4);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_loses_nothing_and_duplicates_nothing() {
    let sink = Sink::start().await;
    sink.fail_next(usize::MAX, 503);
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let cfg = config(dir.path(), one_webhook(&sink.url, json!({})));
    let first = Running::start(cfg.clone(), Arc::clone(&bus)).await;
    for id in ["m1", "m2", "m3"] {
        publish(bus.as_ref(), &event(id, AlertState::Firing, Severity::Warning)).await;
    }
    sink.wait_for(3, Duration::from_secs(15)).await;
    first.stop().await;
    let failed_before = sink.requests().len();

    // The receiver recovers while the notifier is down; a new process resumes.
    sink.fail_next(0, 503);
    let second = Running::start(cfg, Arc::new(MemoryBus::new())).await;
    let done = wait_status(&second, DeliveryStatus::Delivered, 3).await;
    assert_eq!(done.len(), 3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = sink.requests();
    let ok: Vec<&str> = all
        .iter()
        .filter(|r| r.answered == 200)
        .map(|r| r.header("idempotency-key"))
        .collect();
    assert_eq!(ok.len(), 3, "each delivered exactly once after the restart");
    assert_eq!(ok.iter().collect::<HashSet<_>>().len(), 3);
    let keys: HashSet<&str> = all.iter().map(|r| r.header("idempotency-key")).collect();
    assert_eq!(keys.len(), 3, "retries across the restart kept their keys");
    assert!(failed_before >= 3);
    assert!(deliveries(&second, DeliveryStatus::Pending).await.is_empty());
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_holds_back_without_dropping() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(MemoryBus::new());
    let cfg = config(
        dir.path(),
        one_webhook(&sink.url, json!({"rate_limit": 2, "rate_limit_period": "2s"})),
    );
    let n = Running::start(cfg, bus.clone()).await;
    for i in 0..5 {
        publish(
            bus.as_ref(),
            &event(&format!("s{i}"), AlertState::Firing, Severity::Critical),
        )
        .await;
    }
    sink.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(sink.requests().len(), 2, "the limit let more through");
    assert_eq!(deliveries(&n, DeliveryStatus::Pending).await.len(), 3);
    // The held-back ones go out in the next windows.
    sink.wait_for(5, Duration::from_secs(10)).await;
    wait_status(&n, DeliveryStatus::Delivered, 5).await;
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_is_grouped_into_one_message_per_recipient() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(MemoryBus::new());
    let cfg = config(
        dir.path(),
        json!({
            "channels": [{"name": "phone", "type": "whatsapp_gateway", "url": format!("{}/gw", sink.url),
                "to": ["6281100000001", "6281100000002"], "group": true, "group_wait": "400ms"}],
            "routes": [{"channels": ["phone"]}],
        }),
    );
    let n = Running::start(cfg, bus.clone()).await;
    for i in 0..6 {
        publish(
            bus.as_ref(),
            &event(&format!("g{i}"), AlertState::Firing, Severity::Warning),
        )
        .await;
    }
    let got = sink.wait_for(2, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.requests().len(), 2, "one message per recipient");
    let mut to: Vec<String> = got
        .iter()
        .map(|r| r.json()["to"].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    assert_eq!(to, ["6281100000001", "6281100000002"]);
    let text = got[0].json()["message"].as_str().unwrap().to_owned();
    assert!(text.starts_with("🟠 WARNING 6 notifications: 6 firing"), "{text}");
    for i in 0..6 {
        assert!(text.contains(&format!("• g{i} is down")), "{text}");
    }
    let done = wait_status(&n, DeliveryStatus::Delivered, 12).await;
    assert!(done.iter().all(|d| d.attempts == 1));

    // Mixed: two resolve while one more fires; each alert shows its own status.
    publish(bus.as_ref(), &event("g0", AlertState::Resolved, Severity::Warning)).await;
    publish(bus.as_ref(), &event("g1", AlertState::Resolved, Severity::Warning)).await;
    publish(bus.as_ref(), &event("g9", AlertState::Firing, Severity::Critical)).await;
    let got = sink.wait_for(4, Duration::from_secs(15)).await;
    let text = got[2].json()["message"].as_str().unwrap().to_owned();
    assert!(
        text.starts_with("🔴 CRITICAL 3 notifications: 1 firing, 2 resolved"),
        "{text}"
    );
    assert!(text.contains("• [RESOLVED] g0 is down"), "{text}");
    n.stop().await;
}

/// The backlog is published as `queue_size{queue="notifier_deliveries"}`
/// for the default `queue-size-high` rule, from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_is_published_as_queue_size() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(MemoryBus::new());
    let mut sizes = bus
        .subscribe(Subscription::live("pantau.metric.queue_size"))
        .await
        .unwrap();
    let _n = Running::start(config(dir.path(), one_webhook(&sink.url, json!({}))), bus.clone()).await;
    let msg = tokio::time::timeout(Duration::from_secs(10), sizes.next())
        .await
        .expect("queue_size published")
        .unwrap();
    let m: pantau_proto::v1::MetricSample = pantau_core::bus::decode(&msg).unwrap();
    assert_eq!((m.name.as_str(), m.value), ("queue_size", 0.0));
    assert_eq!(m.labels["queue"], "notifier_deliveries");
}
