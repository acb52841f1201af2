//! `make bench-alert-engine` (second part; `cargo bench -p pantau-alert-engine --bench cost`):
//! the alert engine's CPU per check result as the number of series grows.
//!
//! For each N in `BENCH_SERIES` (default 1000,10000,100000 targets, i.e. twice
//! as many series: `check_up` and `check_duration_ms`), the real engine with
//! the shipped default rules (SQLite store in a temp dir, in-process bus)
//! first takes one result of every target, then `ROUNDS_PER_TARGET` rounds of
//! one result per target, round robin, each stamped one interval later; one
//! target in 500 is down, so alerts open as they would. Prints the thread's
//! CPU time per result (the engine runs on this thread alone: `ingest` is
//! called directly, as the bus consumer does) and the series held. The goal
//! is a flat line: the cost of a result must not grow with N. The RSS growth
//! while the first result of every target is taken, per series, approximates
//! the window store's memory per series (measured in increasing N, so the
//! allocator's reuse of an earlier run's memory does not hide it).
//! Then one sweep (every rule over every series, as the engine does every
//! `alert_engine.sweep_interval`, 30 s) is timed on its own, and the peak
//! RSS it reaches above the RSS before it is read (`/proc/self/clear_refs`).

mod common;

use common::{peak_rss_kib, reset_peak_rss, rss_kib, sizes};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pantau_alert_engine::Engine;
use pantau_alert_engine::facts::from_check;
use pantau_alert_engine::store::AlertStore;
use pantau_config::{AlertEngineConfig, DatabaseConfig};
use pantau_core::bus::Bus;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::store::Store;
use pantau_proto::v1::{CheckKind, CheckResult, CheckStatus};

/// Rounds of one result per target that are measured.
const ROUNDS_PER_TARGET: u64 = 5;

/// CPU time of this thread.
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: u64 = s.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_nanos(ns)
}

fn result(i: usize, at: SystemTime) -> CheckResult {
    let up = !i.is_multiple_of(500);
    CheckResult {
        target_id: format!("target-{i:06}"),
        location: "bench".into(),
        kind: CheckKind::Http.into(),
        status: if up { CheckStatus::Up } else { CheckStatus::Down }.into(),
        checked_at: Some(pantau_core::time::to_timestamp(at)),
        latency: Some(prost_types::Duration {
            seconds: 0,
            nanos: 1_000_000 + (i % 97) as i32 * 10_000,
        }),
        ..Default::default()
    }
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
    let cfg = AlertEngineConfig {
        max_series: 1_000_000,
        ..AlertEngineConfig::default()
    };
    let engine = Engine::new(cfg, AlertStore::new(db), bus).await?;
    let start = SystemTime::now();
    let rss0 = rss_kib();
    let mut fired = 0usize;
    for i in 0..targets {
        let now = start + Duration::from_micros(i as u64);
        fired += engine.ingest(from_check(&result(i, now), now), now).await?.len();
    }
    let grew = rss_kib().saturating_sub(rss0);
    let cpu0 = thread_cpu();
    let wall0 = std::time::Instant::now();
    let mut n = 0u64;
    for round in 1..=ROUNDS_PER_TARGET {
        let base = start + Duration::from_secs(round);
        for i in 0..targets {
            let now = base + Duration::from_micros(i as u64 * 1_000_000 / targets as u64);
            fired += engine.ingest(from_check(&result(i, now), now), now).await?.len();
            n += 1;
        }
    }
    let cpu = thread_cpu().saturating_sub(cpu0);
    let per = cpu.as_secs_f64() * 1e6 / n as f64;
    println!(
        "| {targets:>7} | {:>7} | {n:>8} | {per:>8.2} | {:>6.2} | {fired:>5} | {:.0} |",
        targets * 2,
        wall0.elapsed().as_secs_f64(),
        grew as f64 * 1024.0 / (targets * 2) as f64,
    );
    // A sweep over every series, timed on its own, with what it holds at
    // its peak above the RSS before it.
    reset_peak_rss();
    let before = rss_kib();
    let s0 = thread_cpu();
    engine.sweep(start + Duration::from_secs(ROUNDS_PER_TARGET + 1)).await?;
    let sweep = thread_cpu().saturating_sub(s0);
    let above = peak_rss_kib().saturating_sub(before);
    println!(
        "|         |         | sweep of every rule over every series: {:.1} ms CPU, peak RSS {:.1} MiB above the RSS before it |",
        sweep.as_secs_f64() * 1e3,
        above as f64 / 1024.0
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let sizes = sizes("BENCH_SERIES", "1000,10000,100000");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    println!("alert engine cost per check result, default rules on, engine on one thread");
    println!("| targets | series  | results  | µs CPU/result | wall s | transitions | RSS growth per series, bytes |");
    println!("|---|---|---|---|---|---|---|");
    for n in sizes {
        anyhow::ensure!(n <= 200_000, "BENCH_SERIES is capped at 200000 targets");
        rt.block_on(measure(n))?;
    }
    Ok(())
}
