//! `make bench-alert-engine` (third part; `cargo bench -p pantau-alert-engine --bench outage`):
//! a WAN outage behind which N targets (default 1,000 and 10,000:
//! `BENCH_TARGETS`) go down at once, through the real engine (the
//! `endpoint-down` rule without its 1 m wait, so every child fires at once;
//! SQLite store in a temp dir) fed by its real bus consumer
//! (`consume::start`, batches of what is waiting) from the in-process bus,
//! all on one thread. Every target depends on `interface:core/ether1`, the
//! WAN link.
//!
//! The outage as the bus brings it: half the targets' DOWN results, then the
//! router's sample saying the WAN link is down, then the other half, all
//! published at once from another task (the consumer takes results and
//! interface samples from separate subscriptions, so the link's sample may
//! overtake some results, as on NATS). Prints the time from publishing the first DOWN result
//! to the root cause's alert on the bus, the time until every child's alert
//! is stored, how many alert events were published (one is the goal: the
//! root cause, naming its children), and the process's RSS growth over the
//! outage (the alert engine's memory for N open alerts and their causes).

mod common;

use common::{rss_kib, sizes};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::{FutureExt, StreamExt};
use pantau_alert_engine::deps::{Observed, Polled, Signal};
use pantau_alert_engine::facts::{Fact, from_check, from_iface};
use pantau_alert_engine::store::AlertStore;
use pantau_alert_engine::{Engine, consume};
use pantau_config::{AlertEngineConfig, AlertRuleConfig, AlertSeverity, DatabaseConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, MessageStream, Subscription, decode, publish_proto, subject};
use pantau_core::cluster::{Cluster, Role};
use pantau_core::store::Store;
use pantau_proto::v1::{
    AlertEvent, AlertState, CheckKind, CheckResult, CheckStatus, EventKind, InterfaceSample, RouterEvent,
};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

const WAN: &str = "interface:core/ether1";

fn result(i: usize, up: bool, at: SystemTime) -> CheckResult {
    CheckResult {
        target_id: format!("site-{i:05}"),
        location: "bench".into(),
        kind: CheckKind::Tcp.into(),
        status: if up { CheckStatus::Up } else { CheckStatus::Down }.into(),
        checked_at: Some(pantau_core::time::to_timestamp(at)),
        latency: Some(prost_types::Duration {
            seconds: 0,
            nanos: 1_000_000,
        }),
        depends_on: vec![WAN.into()],
        ..Default::default()
    }
}

fn link(up: bool, at: SystemTime) -> InterfaceSample {
    InterfaceSample {
        router_id: "core".into(),
        if_index: 1,
        if_name: "ether1".into(),
        oper_up: up,
        admin_up: true,
        sampled_at: Some(pantau_core::time::to_timestamp(at)),
        ..Default::default()
    }
}

async fn publish_check(bus: &dyn Bus, i: usize, up: bool, at: SystemTime) -> anyhow::Result<()> {
    let r = result(i, up, at);
    publish_proto(bus, &subject::check_result("bench", &r.target_id), &r).await?;
    Ok(())
}

/// The facts and dependency signal of one message, as the consumer takes them.
fn message(r: &CheckResult, at: SystemTime) -> (Vec<Fact>, Option<Signal>) {
    (from_check(r, at), Some(Signal::Check(Observed::of(r, at))))
}

/// Alert events published so far, without waiting.
fn drain(events: &mut MessageStream) -> Vec<AlertEvent> {
    let mut out = Vec::new();
    while let Some(Some(m)) = events.next().now_or_never() {
        out.extend(decode::<AlertEvent>(&m));
    }
    out
}

async fn measure(targets: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = Store::connect(
        &DatabaseConfig::default(),
        dir.path(),
        "alert-engine",
        pantau_alert_engine::MIGRATIONS,
    )
    .await?;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut events = bus.subscribe(Subscription::live("pantau.alert.>")).await?;
    let cfg = AlertEngineConfig {
        max_series: 1_000_000,
        rules: vec![AlertRuleConfig {
            id: "endpoint-down".into(),
            name: Some("Endpoint down".into()),
            expr: "check_up == 0".into(),
            severity: AlertSeverity::Critical,
            message: "{{ $labels.target }} is down".into(),
            labels: std::collections::BTreeMap::new(),
            for_: None,
            cooldown: None,
            enabled: true,
            depends_on: Vec::new(),
        }],
        ..AlertEngineConfig::default()
    };
    let engine = Arc::new(Engine::new(cfg, AlertStore::new(db), Arc::clone(&bus)).await?);
    // Before the outage (not measured): every target and the link up.
    let t0 = SystemTime::now();
    let up = link(true, t0);
    let mut before = vec![(from_iface(&up, t0), Some(Signal::Link(Polled::of(&up, t0))))];
    before.extend((0..targets).map(|i| message(&result(i, true, t0), t0)));
    engine.ingest_messages(before, t0).await?;
    let mut feed = engine.subscribe();
    let shutdown = CancellationToken::new();
    let gate = Cluster::new(Role::Standalone).gate(consume::CONSUMER);
    let consumer = consume::start(Arc::clone(&engine), &bus, gate, shutdown.clone()).await?;
    let consumer = tokio::spawn(consumer);
    // The WAN detector's verdict, as it publishes it: ether1 is core's WAN
    // link (the engine labels its samples `role="wan"`, so the default
    // `wan-down` rule reads them).
    let wan = RouterEvent {
        id: "core-wan_detected".into(),
        kind: EventKind::WanDetected.into(),
        source: "core".into(),
        occurred_at: Some(pantau_core::time::to_timestamp(t0)),
        attributes: [("wan_interfaces".to_owned(), "ether1".to_owned())].into(),
        ..Default::default()
    };
    publish_proto(bus.as_ref(), &subject::event("wan_detected", "core"), &wan).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drain(&mut events);
    while feed.try_recv().is_ok() {}

    let rss0 = rss_kib();
    let down = t0 + Duration::from_secs(10);
    let started = Instant::now();
    let half = targets / 2;
    // Published from another task, as the collector and the router poller
    // would; a full durable buffer makes them wait for the consumer.
    let publisher = {
        let bus = Arc::clone(&bus);
        tokio::spawn(async move {
            for i in 0..half {
                publish_check(bus.as_ref(), i, false, down).await?;
            }
            let s = link(false, down + Duration::from_millis(500));
            publish_proto(bus.as_ref(), &subject::iface_sample("core", 1), &s).await?;
            for i in half..targets {
                publish_check(bus.as_ref(), i, false, down + Duration::from_secs(1)).await?;
            }
            anyhow::Ok(())
        })
    };
    let root = tokio::time::timeout(Duration::from_secs(120), events.next())
        .await
        .map_err(|_| anyhow::anyhow!("no alert event within 120 s"))?
        .ok_or_else(|| anyhow::anyhow!("the alert subscription ended"))?;
    let to_root = started.elapsed();
    let root = decode::<AlertEvent>(&root).ok_or_else(|| anyhow::anyhow!("an alert event that does not decode"))?;
    // Every child's alert (and the root cause's) stored: N + 1 firing transitions.
    let mut fired = 0;
    while fired < targets + 1 {
        match tokio::time::timeout(Duration::from_secs(120), feed.recv()).await {
            Ok(Ok(e)) if e.state() == AlertState::Firing => fired += 1,
            Ok(Ok(_)) => {}
            Ok(Err(RecvError::Lagged(n))) => fired += usize::try_from(n).unwrap_or(usize::MAX),
            Ok(Err(RecvError::Closed)) | Err(_) => anyhow::bail!("{fired} of {} alerts within 120 s", targets + 1),
        }
    }
    let all = started.elapsed();
    publisher.await??;
    let rss = rss_kib().saturating_sub(rss0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut published = vec![root.clone()];
    published.extend(drain(&mut events));
    shutdown.cancel();
    let _ = consumer.await;
    println!(
        "| {targets:>6} | {:>8.1} | {:>8.1} | {:>3} | {:>6.1} | {} |",
        to_root.as_secs_f64() * 1e3,
        all.as_secs_f64() * 1e3,
        published.len(),
        rss as f64 / 1024.0,
        root.summary,
    );
    anyhow::ensure!(
        published.len() == 1,
        "one alert event for one fault, got {}",
        published.len()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let sizes = sizes("BENCH_TARGETS", "1000,10000");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    println!("a WAN outage behind N dependent targets, alert engine alone, default rules on");
    println!(
        "| targets | ms to the root cause's alert | ms for the whole outage | events published | RSS growth MiB | the root cause's summary |"
    );
    println!("|---|---|---|---|---|---|");
    for n in sizes {
        anyhow::ensure!(n <= 100_000, "BENCH_TARGETS is capped at 100000");
        rt.block_on(measure(n))?;
    }
    Ok(())
}
