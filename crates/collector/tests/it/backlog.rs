//! When the workers fall behind, a target due again while its previous check
//! still waits or runs is skipped (and counted), not queued a second time:
//! the backlog stays under one check per target.

use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::DebugValue;
use pantau_config::{CheckType, Config, RawTarget};
use pantau_core::bus::Bus;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::service::Context;

const TARGETS: usize = 6;

#[test]
fn a_target_is_never_queued_twice_when_the_workers_fall_behind() {
    let ((), snapshotter) = crate::recorded(run_behind());

    let (mut skipped, mut depth) = (None, None);
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        match (key.key().name(), value) {
            ("pantau_collector_checks_skipped_total", DebugValue::Counter(n)) => skipped = Some(n),
            ("pantau_collector_queue_depth", DebugValue::Gauge(g)) => depth = Some(g.into_inner()),
            _ => {}
        }
    }
    // Six targets of 300 ms each every second on one check at a time: about
    // 1.8 s of checks are due each second, so some are skipped...
    let skipped = skipped.expect("the skipped counter is registered");
    assert!(skipped >= 3, "skipped {skipped}");
    // ...and no more than one check per target ever waits.
    let depth = depth.expect("the queue depth gauge is set");
    assert!(depth <= TARGETS as f64, "{depth} checks waiting");
}

async fn run_behind() {
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "ok"
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slow", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.data_dir = dir.path().to_owned();
    config.metrics.enabled = false;
    config.collector.interval = Duration::from_secs(1);
    config.collector.timeout = Duration::from_millis(800);
    config.collector.workers.count = 1;
    config.collector.workers.concurrency = 1;
    config.collector.targets = (0..TARGETS)
        .map(|i| {
            let mut t = RawTarget::new(format!("slow-{i}"), CheckType::Http);
            t.url = Some(url.clone());
            t.parse("t").unwrap().into()
        })
        .collect();
    config.validate().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(config), bus);
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let run = tokio::spawn(pantau_collector::run(ctx.clone(), grpc));
    tokio::time::sleep(Duration::from_secs(6)).await;
    crate::stop_collector(&ctx, run).await;
}
