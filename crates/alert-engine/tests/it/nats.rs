//! End to end on a real NATS JetStream: a CheckResult published on the bus
//! becomes an AlertEvent on `pantau.alert.firing.<id>`, and a recovery
//! resolves it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_config::NatsConfig;
use pantau_core::bus::nats::NatsBus;
use pantau_core::bus::{Bus, Subscription, decode, publish_proto, subject};
use pantau_core::service::Context;
use pantau_proto::v1::{AlertEvent, AlertState};

use crate::service::{check, config, ready};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_result_on_nats_becomes_alert_event_on_nats() {
    let nats = pantau_testkit::Nats::start().await.expect("nats-server for the test");
    let nats_cfg = NatsConfig {
        url: Some(nats.url()),
        ..NatsConfig::default()
    };
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&nats_cfg, "alert-engine-test").await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.nats = nats_cfg;
    let ctx = Context::new(Arc::new(cfg), Arc::clone(&bus));
    let mut alerts = bus.subscribe(Subscription::live("pantau.alert.>")).await.unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let run = tokio::spawn(pantau_alert_engine::run(ctx.clone(), grpc));
    ready(&ctx, addr).await;

    let subj = subject::check_result("jkt", "closed");
    publish_proto(bus.as_ref(), &subj, &check("closed", false))
        .await
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(15), alerts.next())
        .await
        .expect("an alert event within 15s")
        .unwrap();
    let ev: AlertEvent = decode(&msg).unwrap();
    assert_eq!(msg.subject, format!("pantau.alert.firing.{}", ev.alert_id));
    assert_eq!(ev.rule_id, "closed-port");
    assert_eq!(ev.labels["target"], "closed");

    publish_proto(bus.as_ref(), &subj, &check("closed", true))
        .await
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(15), alerts.next())
        .await
        .expect("a resolve event within 15s")
        .unwrap();
    let resolved: AlertEvent = decode(&msg).unwrap();
    assert_eq!(msg.subject, format!("pantau.alert.resolved.{}", ev.alert_id));
    assert_eq!(resolved.state(), AlertState::Resolved);
    assert!(resolved.ends_at.is_some());

    ctx.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("stops")
        .unwrap()
        .unwrap();
}
