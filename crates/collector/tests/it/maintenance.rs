//! Maintenance windows made through the API reach the collector over the bus
//! (in-process and NATS): it asks for them when it starts, applies each
//! snapshot of a later revision exactly as a configured window — a pausing
//! window's target is not checked — and a deletion resumes the checks.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_config::NatsConfig;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::nats::NatsBus;
use pantau_core::bus::{Bus, Subscription, publish_proto};
use pantau_proto::v1::MaintenanceSnapshot;

use crate::pause::{checked_during, tcp};
use crate::targets::{base_config, start_on};

fn snapshot(revision: i64, targets: &[&str]) -> MaintenanceSnapshot {
    let windows = if targets.is_empty() {
        Vec::new()
    } else {
        let w = pantau_config::maintenance_api::from_json(
            serde_json::json!({
                "id": "api-swap",
                "start": "2020-01-01T00:00:00Z",
                "end": "2099-01-01T00:00:00Z",
                "targets": targets,
                "checks": "pause",
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        vec![pantau_config::maintenance_api::to_proto(&w)]
    };
    MaintenanceSnapshot {
        windows,
        revision,
        instance: "engine".into(),
    }
}

async fn contract(bus: Arc<dyn Bus>) {
    let dir = tempfile::tempdir().unwrap();
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = open.local_addr().unwrap().to_string();
    let mut config = base_config(dir.path());
    config.collector.targets = vec![tcp("svc", &addr), tcp("other", &addr)];
    let mut wanted = bus
        .subscribe(Subscription::live("pantau.maintenance.wanted.>"))
        .await
        .unwrap();
    let c = start_on(config, Arc::clone(&bus)).await;
    // It asks for the windows when it starts.
    tokio::time::timeout(Duration::from_secs(10), wanted.next())
        .await
        .expect("a request for the maintenance windows")
        .unwrap();
    let seen = checked_during(bus.as_ref(), Duration::from_millis(2500)).await;
    assert!(seen.contains("svc") && seen.contains("other"), "{seen:?}");

    // An API window pausing `svc`, as the alert engine publishes it.
    publish_proto(
        bus.as_ref(),
        "pantau.maintenance.changed.api-swap",
        &snapshot(100, &["svc"]),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen = checked_during(bus.as_ref(), Duration::from_millis(3000)).await;
    assert!(!seen.contains("svc"), "the API window pauses `svc`: {seen:?}");
    assert!(seen.contains("other"), "{seen:?}");

    // An older snapshot (a late periodic one) does not undo it; garbage is
    // counted and skipped.
    publish_proto(bus.as_ref(), "pantau.maintenance.snapshot.engine", &snapshot(99, &[]))
        .await
        .unwrap();
    bus.publish(
        "pantau.maintenance.snapshot.engine",
        pantau_core::bus::Headers::new(),
        vec![0xff, 0x01, 0x02].into(),
    )
    .await
    .unwrap();
    let seen = checked_during(bus.as_ref(), Duration::from_millis(2500)).await;
    assert!(!seen.contains("svc"), "still paused: {seen:?}");

    // Deleted: checked again.
    publish_proto(bus.as_ref(), "pantau.maintenance.deleted.api-swap", &snapshot(101, &[]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = checked_during(bus.as_ref(), Duration::from_millis(3000)).await;
    assert!(seen.contains("svc"), "resumed after the deletion: {seen:?}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_windows_over_the_in_process_bus() {
    contract(Arc::new(MemoryBus::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_windows_over_nats() {
    let nats = pantau_testkit::Nats::start().await.expect("nats-server for the test");
    let cfg = NatsConfig {
        url: Some(nats.url()),
        ..NatsConfig::default()
    };
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&cfg, "collector-maintenance").await.unwrap());
    contract(bus).await;
}
