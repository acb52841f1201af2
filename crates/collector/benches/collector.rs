//! `make bench-collector`: the collector against its own loopback targets.
//!
//! Modes (one per process, so each starts clean):
//! - `tcp`: N TCP targets (default 20,000) every second against local listeners;
//! - `http`: N HTTP targets (default 10,000) every second against a local server
//!   (keep-alive; with `--new-connections`, `reuse_connection: false`; with
//!   `--url`, a loopback server of one's own such as nginx, whose CPU is then
//!   not counted);
//! - `idle`: N targets (default 100,000) every hour: memory of a large, idle schedule;
//! - `history`: a year of hourly history for N targets (default 20): bytes per
//!   stored row and the time of a one-year uptime query;
//! - `kafka`: N `kafka_producer` targets (default 200) every second, each
//!   producing a canary (acks all) to a real `tansu` broker started by the
//!   testkit (its CPU, a separate process, is not counted).
//!
//! Prints sustained checks per second, scheduling lag p50/p99 (how late
//! checks start after they were due), CPU time per check and peak RSS.
//! Every run is bounded: `--seconds` of measurement after the warm-up.

use std::sync::Arc;
use std::time::Duration;

/// The `pantau` binary's allocator, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use pantau_config::{CheckType, Config, RawTarget};
use pantau_core::bus::Bus;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::service::Context;

struct Args {
    mode: String,
    targets: usize,
    seconds: u64,
    concurrency: usize,
    /// `collector.workers.count`.
    workers: usize,
    /// HTTP: `reuse_connection: false` (a new connection every check).
    new_connections: bool,
    /// HTTP: a loopback server of one's own (e.g. nginx) instead of the
    /// one this process serves, so its CPU is not counted as the collector's.
    url: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        mode: "tcp".into(),
        targets: 0,
        seconds: 10,
        concurrency: 512,
        workers: pantau_config::WorkersConfig::default().count,
        new_connections: false,
        url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--mode" => a.mode = it.next().expect("--mode tcp|http|idle|history|kafka"),
            "--targets" => a.targets = it.next().and_then(|v| v.parse().ok()).expect("--targets N"),
            "--seconds" => a.seconds = it.next().and_then(|v| v.parse().ok()).expect("--seconds N"),
            "--concurrency" => a.concurrency = it.next().and_then(|v| v.parse().ok()).expect("--concurrency N"),
            "--workers" => a.workers = it.next().and_then(|v| v.parse().ok()).expect("--workers N"),
            "--new-connections" => a.new_connections = true,
            "--url" => {
                let url = it.next().expect("--url http://127.0.0.1:PORT/PATH");
                assert!(
                    url.starts_with("http://127.")
                        || url.starts_with("http://[::1]")
                        || url.starts_with("http://localhost"),
                    "--url must be a loopback address"
                );
                a.url = Some(url);
            }
            "--bench" => {}
            other => {
                panic!(
                    "unknown argument {other}; use --mode tcp|http|idle --targets N --seconds N --concurrency N [--workers N] [--new-connections] [--url http://127.0.0.1:PORT/]"
                )
            }
        }
    }
    assert!(a.seconds <= 120, "--seconds is capped at 120");
    if a.targets == 0 {
        a.targets = match a.mode.as_str() {
            "http" => 10_000,
            "idle" => 100_000,
            "history" => 20,
            "kafka" => 200,
            _ => 20_000,
        };
    }
    a
}

fn proc_status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let hz: f64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0);
    ticks / hz
}

/// (checks up, checks down, schedule lag samples in seconds) since the last call.
fn read(snap: &Snapshotter) -> (u64, u64, Vec<f64>) {
    let (mut up, mut down, mut lag) = (0, 0, Vec::new());
    for (key, _, _, value) in snap.snapshot().into_vec() {
        let name = key.key().name().to_owned();
        match (name.as_str(), value) {
            ("pantau_collector_checks_total", DebugValue::Counter(n)) => {
                if key.key().labels().any(|l| l.key() == "result" && l.value() == "up") {
                    up += n;
                } else {
                    down += n;
                }
            }
            ("pantau_collector_schedule_lag_seconds", DebugValue::Histogram(v)) => {
                lag.extend(v.into_iter().map(ordered_float_inner));
            }
            _ => {}
        }
    }
    (up, down, lag)
}

fn ordered_float_inner<T: Into<f64>>(x: T) -> f64 {
    x.into()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn tcp_listeners(n: usize) -> Vec<String> {
    let mut addrs = Vec::new();
    for _ in 0..n {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(l.local_addr().unwrap().to_string());
        tokio::spawn(async move {
            loop {
                if let Ok((s, _)) = l.accept().await {
                    drop(s);
                }
            }
        });
    }
    addrs
}

async fn http_server() -> String {
    let app = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}/health")
}

/// A year of one check per hour for `targets` targets, flushed as history.
async fn history(a: &Args) {
    use pantau_collector::history::{History, Resolution};
    use std::time::SystemTime;
    let dir = tempfile::tempdir().unwrap();
    let store = pantau_core::store::Store::connect(
        &pantau_config::DatabaseConfig::default(),
        dir.path(),
        "collector",
        pantau_collector::MIGRATIONS,
    )
    .await
    .unwrap();
    let h = History::new(store.clone(), &pantau_config::HistoryConfig::default());
    let now = SystemTime::now();
    let hours = 24 * 365;
    let t0 = tokio::time::Instant::now();
    for hour in 0..hours {
        let at = now - Duration::from_secs(3600 * (hours - hour));
        for t in 0..a.targets {
            h.record(
                &format!("target-{t:05}"),
                hour % 97 != 0,
                Duration::from_micros(500 + (hour * 37 % 4000)),
                at,
            );
        }
        if hour % 720 == 719 {
            h.flush(now).await.unwrap();
        }
    }
    h.flush(now).await.unwrap();
    let wrote = t0.elapsed();
    let rows = (hours * a.targets as u64) as f64;
    let db = dir.path().join("collector.db");
    // Checkpoint the WAL so the file holds every row.
    if let pantau_core::store::Store::Sqlite(pool, _) = &store {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("VACUUM").execute(pool).await.unwrap();
    }
    let bytes = std::fs::metadata(&db).map_or(0, |m| m.len()) as f64;
    let per_row = bytes / rows;
    println!("collector history bench: {} targets x {hours} hours", a.targets);
    println!(
        "  wrote {rows:.0} hour rows in {:.1}s; database {:.1} MiB = {per_row:.0} bytes per target-hour",
        wrote.as_secs_f64(),
        bytes / 1_048_576.0
    );
    println!(
        "  a year for 10,000 targets: about {:.1} GiB of hour rows, plus 7 days of minute rows for targets checked every minute: {:.1} GiB",
        per_row * 8760.0 * 10_000.0 / 1_073_741_824.0,
        per_row * 7.0 * 1440.0 * 10_000.0 / 1_073_741_824.0
    );
    let mut times = Vec::new();
    for t in 0..a.targets {
        let q0 = tokio::time::Instant::now();
        let pts = h
            .query(
                &format!("target-{t:05}"),
                now - Duration::from_secs(3600 * (hours + 1)),
                now,
                Resolution::Hour,
            )
            .await
            .unwrap();
        times.push(q0.elapsed().as_secs_f64());
        assert_eq!(pts.len() as u64, hours);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "  one-year uptime query (8,760 hour rows): p50 {:.1} ms, max {:.1} ms",
        pct(&times, 0.5) * 1e3,
        times.last().copied().unwrap_or(0.0) * 1e3
    );
}

fn main() {
    let a = args();
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    recorder.install().expect("a metrics recorder");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if a.mode == "history" {
        rt.block_on(history(&a));
    } else {
        rt.block_on(run(a, snap));
    }
}

async fn run(a: Args, snap: Snapshotter) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    config.metrics.enabled = false;
    config.collector.workers.concurrency = a.concurrency;
    config.collector.workers.count = a.workers;
    config.collector.timeout = Duration::from_secs(1);
    config.collector.interval = if a.mode == "idle" {
        Duration::from_secs(3600)
    } else {
        Duration::from_secs(1)
    };
    let tcp = tcp_listeners(16).await;
    let http = match (&a.mode[..], &a.url) {
        ("http", Some(url)) => Some(url.clone()),
        ("http", None) => Some(http_server().await),
        _ => None,
    };
    let kafka = if a.mode == "kafka" {
        let k = pantau_testkit::Kafka::start()
            .await
            .expect("tansu starts (cargo install --locked tansu --features dynostore, or make deps)");
        k.create_topic("bench", 1).await.expect("the bench topic");
        Some(k)
    } else {
        None
    };
    config.collector.targets = (0..a.targets)
        .map(|i| {
            if let Some(k) = &kafka {
                let mut t = RawTarget::new(format!("k{i}"), CheckType::KafkaProducer);
                t.kafka = Some(pantau_config::RawKafka {
                    bootstrap_servers: vec![k.bootstrap()],
                    topic: Some("bench".into()),
                    ..pantau_config::RawKafka::default()
                });
                t
            } else if let Some(url) = &http {
                let mut t = RawTarget::new(format!("h{i}"), CheckType::Http);
                t.url = Some(url.clone());
                t.reuse_connection = a.new_connections.then_some(false);
                t
            } else {
                let mut t = RawTarget::new(format!("t{i}"), CheckType::Tcp);
                t.address = Some(tcp[i % tcp.len()].clone());
                t
            }
        })
        .map(|t| Arc::new(t.parse("bench").expect("a bench target is valid")))
        .collect();
    let rss_before = proc_status("VmRSS:");
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(config), bus);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let task = tokio::spawn(pantau_collector::run(ctx.clone(), l));
    let window = pantau_collector::scheduler::spread_window(a.targets).min(ctx.config.collector.interval);
    let warmup = window + Duration::from_secs(2);
    println!(
        "collector bench: mode={}{} targets={} concurrency={} workers={} warm-up={}s measure={}s",
        a.mode,
        if a.new_connections {
            " (a new connection every check)"
        } else {
            ""
        },
        a.targets,
        a.concurrency,
        a.workers,
        warmup.as_secs(),
        a.seconds
    );
    tokio::time::sleep(warmup).await;
    let _ = read(&snap);
    let cpu0 = cpu_seconds();
    let t0 = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    let (up, down, mut lag) = read(&snap);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    lag.sort_by(f64::total_cmp);
    let checks = up + down;
    println!(
        "  checks: {checks} in {elapsed:.1}s = {:.0} checks/s ({up} up, {down} down)",
        checks as f64 / elapsed
    );
    println!(
        "  scheduling lag: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        pct(&lag, 0.5) * 1e3,
        pct(&lag, 0.99) * 1e3,
        lag.last().copied().unwrap_or(0.0) * 1e3,
        lag.len()
    );
    if checks > 0 {
        println!(
            "  CPU: {cpu:.2}s = {:.1} µs per check (whole process, targets included)",
            cpu * 1e6 / checks as f64
        );
    }
    println!(
        "  memory: RSS {} MiB (before start {} MiB), peak {} MiB",
        proc_status("VmRSS:") / 1024,
        rss_before / 1024,
        proc_status("VmHWM:") / 1024
    );
    ctx.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
    drop(kafka);
}
