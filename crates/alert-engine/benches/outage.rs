//! `make bench-alert-engine` (third part; `cargo bench -p pantau-alert-engine --bench outage`):
//! a WAN outage behind which N targets (default 10,000: `BENCH_TARGETS`) go
//! down at once, through the real engine (shipped default rules, their
//! `endpoint-down` without its 1 m wait so every child fires at once; SQLite
//! store in a temp dir; in-process bus), on this thread as its bus consumer
//! calls it. Every target depends on `interface:core/ether1`, the WAN link.
//!
//! The outage as the bus would bring it: half the targets' DOWN results, then
//! the router's sample saying the WAN link is down, then the other half.
//! Prints the time from the first DOWN result to the root cause's alert on
//! the bus, the time to take in the whole outage, how many alert events were
//! published (one is the goal: the root cause, naming its children), and the
//! process's RSS growth over the outage (the alert engine's memory for N open
//! alerts and their causes).

mod common;

use common::{rss_kib, sizes};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::{FutureExt, StreamExt};
use pantau_alert_engine::Engine;
use pantau_alert_engine::deps::{Observed, Polled, Signal};
use pantau_alert_engine::facts::{Fact, from_check};
use pantau_alert_engine::series::Value;
use pantau_alert_engine::store::AlertStore;
use pantau_config::{AlertEngineConfig, AlertRuleConfig, AlertSeverity, DatabaseConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, MessageStream, Subscription, decode};
use pantau_core::store::Store;
use pantau_proto::v1::{AlertEvent, CheckKind, CheckResult, CheckStatus};

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

async fn check(e: &Engine, i: usize, up: bool, at: SystemTime) -> anyhow::Result<()> {
    let r = result(i, up, at);
    let signal = Signal::Check(Observed::of(&r, at));
    e.ingest_observed(from_check(&r, at), Some(signal), at).await?;
    Ok(())
}

async fn link(e: &Engine, up: bool, at: SystemTime) -> anyhow::Result<()> {
    let fact = Fact {
        name: "interface_up".into(),
        labels: [
            ("router", "core"),
            ("interface", "ether1"),
            ("admin", "up"),
            ("role", "wan"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
        value: Value::Num(if up { 1.0 } else { 0.0 }),
        at,
    };
    let signal = Signal::Link(Polled {
        router: "core".into(),
        interface: "ether1".into(),
        up,
        at,
    });
    e.ingest_observed(vec![fact], Some(signal), at).await?;
    Ok(())
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
    let engine = Engine::new(cfg, AlertStore::new(db), bus).await?;
    let t0 = SystemTime::now();
    link(&engine, true, t0).await?;
    for i in 0..targets {
        check(&engine, i, true, t0).await?;
    }
    drain(&mut events);
    let rss0 = rss_kib();
    let down = t0 + Duration::from_secs(10);
    let started = Instant::now();
    let half = targets / 2;
    for i in 0..half {
        check(&engine, i, false, down).await?;
    }
    link(&engine, false, down + Duration::from_millis(500)).await?;
    let root = drain(&mut events);
    let to_root = started.elapsed();
    for i in half..targets {
        check(&engine, i, false, down + Duration::from_secs(1)).await?;
    }
    engine.evaluate_batched(down + Duration::from_secs(2)).await?;
    let all = started.elapsed();
    let rss = rss_kib().saturating_sub(rss0);
    let mut published = root.clone();
    published.extend(drain(&mut events));
    let summary = root.first().map_or_else(|| "none".to_owned(), |e| e.summary.clone());
    println!(
        "| {targets:>6} | {:>8.1} | {:>8.1} | {:>3} | {:>6.1} | {summary} |",
        to_root.as_secs_f64() * 1e3,
        all.as_secs_f64() * 1e3,
        published.len(),
        rss as f64 / 1024.0,
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
