//! The alert engine's dead man's switches: `/readyz` names a stalled
//! evaluation (`alert_engine.progress`), and with `alert_engine.watchdog`
//! a local HTTP server standing in for an external switch (healthchecks.io,
//! Dead Man's Snitch) receives heartbeats while rules are evaluated, and
//! none while evaluation stalls.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pantau_alert_engine::watchdog::{self, Progress};
use pantau_config::WatchdogConfig;
use pantau_core::bus::Bus;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::service::Context;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::service::{config, ready};

/// A dead man's switch on loopback: keeps every heartbeat's JSON body.
async fn switch() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&got);
    let app = axum::Router::new().route(
        "/ping/{secret}",
        axum::routing::post(move |body: axum::Json<Value>| {
            let kept = Arc::clone(&kept);
            async move {
                kept.lock().unwrap().push(body.0);
                "OK"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ping/0b1c2d3e-secret", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

fn count(got: &Mutex<Vec<Value>>) -> usize {
    got.lock().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_engine_sends_heartbeats_while_it_evaluates() {
    // Installs the recorder before the engine sets its gauges.
    let _ = pantau_core::telemetry::render_metrics();
    let (url, got) = switch().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.alert_engine.sweep_interval = Duration::from_secs(1);
    cfg.alert_engine.watchdog = WatchdogConfig {
        url: Some(url),
        interval: Duration::from_secs(1),
    };
    cfg.instance.name = "watch-1".into();
    cfg.validate().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(cfg), Arc::clone(&bus));
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let run = tokio::spawn(pantau_alert_engine::run(ctx.clone(), grpc));
    ready(&ctx, addr).await;
    tokio::time::timeout(Duration::from_secs(15), async {
        while count(&got) < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("three heartbeats within 15 s at an interval of 1 s");
    let beat = got.lock().unwrap()[2].clone();
    assert_eq!(beat["status"], "firing", "{beat}");
    assert_eq!(beat["alertname"], "PantauWatchdog", "{beat}");
    assert_eq!(beat["instance"], "watch-1", "{beat}");
    let last = humantime::parse_rfc3339(beat["last_evaluation"].as_str().unwrap()).unwrap();
    let age = std::time::SystemTime::now().duration_since(last).unwrap_or_default();
    assert!(age < Duration::from_secs(10), "the last evaluation is recent: {beat}");
    let report = ctx.health.report().await;
    let progress = &report.components["alert_engine.progress"];
    assert_eq!(progress.status, "ok", "{report:?}");
    let metrics = pantau_core::telemetry::render_metrics();
    assert!(
        metrics.contains("pantau_alert_engine_last_evaluation_timestamp_seconds"),
        "{metrics}"
    );
    ctx.shutdown.cancel();
    run.await.unwrap().unwrap();
}

/// The heartbeat loop itself, with a stall threshold a test can wait for:
/// heartbeats while sweeps complete, none once they stop (readiness says
/// so), and again once they resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_stop_while_evaluation_stalls_and_resume_after() {
    let (url, got) = switch().await;
    let progress = Arc::new(Progress::with_min_stall(
        Duration::from_millis(50),
        Duration::from_millis(600),
    ));
    let stop = CancellationToken::new();
    let cfg = WatchdogConfig {
        url: Some(url.clone()),
        interval: Duration::from_millis(100),
    };
    let task = tokio::spawn(watchdog::run(
        cfg,
        url,
        Arc::clone(&progress),
        "i1".into(),
        "jkt".into(),
        stop.clone(),
    ));
    let stall = watchdog::Stall(Arc::clone(&progress));
    use pantau_core::health::ReadinessCheck as _;
    // Sweeping: heartbeats flow.
    for _ in 0..10 {
        progress.record();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(count(&got) >= 2, "heartbeats while sweeping: {}", count(&got));
    assert!(stall.check().await.is_ok());
    // Stalled: after the threshold, readiness fails and heartbeats stop.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let err = stall.check().await.unwrap_err();
    assert!(err.contains("the alert engine has stalled"), "{err}");
    let at_stall = count(&got);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(count(&got), at_stall, "no heartbeat while stalled");
    // Sweeping again: heartbeats resume.
    progress.record();
    tokio::time::timeout(Duration::from_secs(5), async {
        while count(&got) == at_stall {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("heartbeats resume after a sweep");
    stop.cancel();
    task.await.unwrap();
}
