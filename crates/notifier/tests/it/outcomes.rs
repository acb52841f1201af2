//! Each delivery's final outcome is told on the bus, over the in-process
//! bus and a real nats-server: `pantau.delivery.delivered.<alert_id>` once
//! the sink took it, `pantau.delivery.failed.<alert_id>` once it was given
//! up (a permanent refusal at once, a failing server after its attempts),
//! with the channel, the attempts, a bounded error class and the status —
//! and never the channel's URL, its secret or the sink's answer. Retries in
//! between tell nothing; a resolve is told like a firing.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_config::NatsConfig;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::nats::NatsBus;
use pantau_core::bus::{Bus, BusEvent, MessageStream, Subscription};
use pantau_proto::v1::{AlertState, DeliveryErrorClass, DeliveryEvent, DeliveryOutcome, Severity};
use serde_json::json;

use crate::harness::{Running, Sink, config, event, one_webhook, publish};

/// The next delivery outcome on the bus, decoded as the alert engine does.
async fn next(sub: &mut MessageStream) -> (String, DeliveryEvent) {
    let msg = tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("a delivery outcome within 20 s")
        .expect("the subscription lives");
    let raw = String::from_utf8_lossy(&msg.payload).into_owned();
    for secret in ["hook-secret-1", "k3y-in-the-url", "sink told to fail"] {
        assert!(!raw.contains(secret), "the outcome carries `{secret}`: {raw}");
    }
    let BusEvent::Delivery { delivery, .. } = BusEvent::decode(&msg).expect("it decodes") else {
        panic!("{} is not a delivery", msg.subject)
    };
    (msg.subject.clone(), delivery)
}

async fn outcomes_are_told(bus: Arc<dyn Bus>) {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut outcomes = bus.subscribe(Subscription::live("pantau.delivery.>")).await.unwrap();
    // A key in the URL, as chat webhooks have.
    let url = format!("{}/hook/k3y-in-the-url", sink.url);
    let mut cfg = config(dir.path(), one_webhook(&url, json!({})));
    cfg.notifier.retry.max_attempts = 2;
    let n = Running::start(cfg, Arc::clone(&bus)).await;

    // Delivered at once.
    publish(bus.as_ref(), &event("o1", AlertState::Firing, Severity::Critical)).await;
    let (subject, d) = next(&mut outcomes).await;
    assert_eq!(subject, "pantau.delivery.delivered.o1");
    assert_eq!(
        (d.channel.as_str(), d.channel_type.as_str(), d.attempts, d.status_code),
        ("hook", "webhook", 1, 200)
    );
    assert_eq!(d.outcome(), DeliveryOutcome::Delivered);
    assert_eq!(d.error_class(), DeliveryErrorClass::Unspecified);
    assert_eq!(d.alert_state(), AlertState::Firing);
    assert_eq!(d.delivery_id.len(), 32);
    assert_eq!(sink.requests()[0].header("idempotency-key"), d.delivery_id);

    // Refused for good: told at once, as rejected.
    sink.fail_next(1, 400);
    publish(bus.as_ref(), &event("o2", AlertState::Firing, Severity::Warning)).await;
    let (subject, d) = next(&mut outcomes).await;
    assert_eq!(subject, "pantau.delivery.failed.o2");
    assert_eq!((d.attempts, d.status_code), (1, 400));
    assert_eq!(d.error_class(), DeliveryErrorClass::Rejected);

    // A failing server: one outcome after the last attempt, none per retry.
    sink.fail_next(2, 503);
    publish(bus.as_ref(), &event("o3", AlertState::Firing, Severity::Critical)).await;
    let (subject, d) = next(&mut outcomes).await;
    assert_eq!(subject, "pantau.delivery.failed.o3");
    assert_eq!((d.attempts, d.status_code), (2, 503));
    assert_eq!(d.error_class(), DeliveryErrorClass::ServerError);

    // The resolve of o1 follows its firing, and is told as a resolve.
    publish(bus.as_ref(), &event("o1", AlertState::Resolved, Severity::Critical)).await;
    let (subject, d) = next(&mut outcomes).await;
    assert_eq!(subject, "pantau.delivery.delivered.o1");
    assert_eq!(d.alert_state(), AlertState::Resolved);

    // Nothing else: no outcome per retry, none twice.
    let more = tokio::time::timeout(Duration::from_millis(600), outcomes.next()).await;
    assert!(more.is_err(), "an outcome too many: {more:?}");
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_are_told_on_the_in_process_bus() {
    outcomes_are_told(Arc::new(MemoryBus::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_are_told_on_nats() {
    let nats = pantau_testkit::Nats::start().await.expect("nats-server for the test");
    let cfg = NatsConfig {
        url: Some(nats.url()),
        ..NatsConfig::default()
    };
    let bus: Arc<dyn Bus> = Arc::new(
        NatsBus::connect(&cfg, "notifier-outcomes")
            .await
            .expect("connect to nats"),
    );
    outcomes_are_told(bus).await;
}
