//! The durable JetStream consumer: events published while the notifier is
//! down are delivered when it comes back, and two replicas share the work
//! without sending anything twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use pantau_config::NatsConfig;
use pantau_core::bus::Bus;
use pantau_core::bus::nats::NatsBus;
use pantau_proto::v1::{AlertState, Severity};
use serde_json::json;

use crate::harness::{Running, Sink, config, event, one_webhook, publish};

async fn bus(url: &str, name: &str) -> Arc<dyn Bus> {
    let cfg = NatsConfig {
        url: Some(url.to_owned()),
        ..NatsConfig::default()
    };
    Arc::new(NatsBus::connect(&cfg, name).await.expect("connect to nats"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_consumer_resumes_after_downtime() {
    let nats = pantau_testkit::Nats::start().await.expect("nats-server for the test");
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), one_webhook(&sink.url, json!({})));
    let publisher = bus(&nats.url(), "engine").await;

    let first = Running::start(cfg.clone(), bus(&nats.url(), "notifier-1").await).await;
    publish(publisher.as_ref(), &event("n1", AlertState::Firing, Severity::Critical)).await;
    sink.wait_for(1, Duration::from_secs(15)).await;
    first.stop().await;

    // Published while no notifier runs: JetStream keeps it for the durable consumer.
    publish(publisher.as_ref(), &event("n2", AlertState::Firing, Severity::Critical)).await;
    publish(
        publisher.as_ref(),
        &event("n1", AlertState::Resolved, Severity::Critical),
    )
    .await;
    let second = Running::start(cfg, bus(&nats.url(), "notifier-2").await).await;
    let got = sink.wait_for(3, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.requests().len(), 3, "nothing is sent twice");
    let seen: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            let b = r.json();
            (
                b["notification"]["key"].as_str().unwrap().to_owned(),
                b["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(seen.contains(&("n2".to_owned(), "firing".to_owned())), "{seen:?}");
    assert!(seen.contains(&("n1".to_owned(), "resolved".to_owned())), "{seen:?}");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_consumer() {
    let nats = pantau_testkit::Nats::start().await.expect("nats-server for the test");
    let pg = pantau_testkit::Postgres::start()
        .await
        .expect("PostgreSQL for the test");
    let url = pg.create_database("notifier_replicas").await.unwrap();
    let sink = Sink::start().await;
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let mut a = config(dir_a.path(), one_webhook(&sink.url, json!({})));
    a.database.url = Some(url.clone());
    a.instance.name = "replica-a".into();
    let mut b = config(dir_b.path(), one_webhook(&sink.url, json!({})));
    b.database.url = Some(url);
    b.instance.name = "replica-b".into();
    let ra = Running::start(a, bus(&nats.url(), "notifier-a").await).await;
    let rb = Running::start(b, bus(&nats.url(), "notifier-b").await).await;
    let publisher = bus(&nats.url(), "engine").await;
    for i in 0..20 {
        publish(
            publisher.as_ref(),
            &event(&format!("x{i}"), AlertState::Firing, Severity::Warning),
        )
        .await;
    }
    sink.wait_for(20, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = sink.requests();
    assert_eq!(all.len(), 20, "each alert delivered once across both replicas");
    let keys: HashSet<&str> = all.iter().map(|r| r.header("idempotency-key")).collect();
    assert_eq!(keys.len(), 20);
    ra.stop().await;
    rb.stop().await;
}

/// A message on the alert subject that is not an `AlertEvent` goes to the
/// notifier's dead-letter subject; the alert after it is still delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_alert_is_dead_lettered_and_the_next_one_delivered() {
    use futures::StreamExt;
    use pantau_core::bus::Subscription;
    use pantau_core::bus::consume::header;

    let nats = pantau_testkit::Nats::start().await.expect("nats-server for the test");
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), one_webhook(&sink.url, json!({})));
    let publisher = bus(&nats.url(), "engine").await;
    let mut dead = publisher
        .subscribe(Subscription::live("pantau.deadletter.>"))
        .await
        .unwrap();
    let running = Running::start(cfg, bus(&nats.url(), "notifier").await).await;

    let bad = pantau_core::bus::subject::alert("firing", "bad");
    publisher
        .publish(
            &bad,
            pantau_core::bus::Headers::new(),
            pantau_proto::prost::bytes::Bytes::from_static(b"\xffnot protobuf"),
        )
        .await
        .unwrap();
    publish(
        publisher.as_ref(),
        &event("good", AlertState::Firing, Severity::Critical),
    )
    .await;

    let got = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].json()["notification"]["key"], "good");
    let d = tokio::time::timeout(Duration::from_secs(10), dead.next())
        .await
        .expect("a dead letter")
        .expect("the subscription is open");
    assert_eq!(d.subject, "pantau.deadletter.notifier");
    assert_eq!(d.headers[header::ORIGINAL_SUBJECT], bad);
    assert_eq!(&d.payload[..], b"\xffnot protobuf");
    assert!(
        d.headers[header::REASON].contains("AlertEvent"),
        "{:?}",
        d.headers[header::REASON]
    );
    running.stop().await;
}
