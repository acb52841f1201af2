//! The whole system as a user runs it (`make bench-system`), not part of `cargo test`.
//!
//! Throughput (the default): for each N in BENCH_TARGETS and each setting of
//! BENCH_RULES, the release binary runs as `target/release/pantau --config
//! <temp>/pantau.yaml all` on free loopback ports, watching N HTTP targets
//! `h<i>` (label `bench: "yes"`) every BENCH_INTERVAL. The targets are served
//! by a child process of this bench (`BENCH_ROLE=http-server`), so their cost
//! is not counted as Pantau's. Rules: the default rules on or off, plus always
//! `bench-down: check_up{bench="yes"} == 0` (no `for`, critical), routed to a
//! webhook channel whose receiver runs in this process; one WebSocket client
//! watches `check_result` events. After a warm-up (every target checked once,
//! then 2 s) it measures over BENCH_SECONDS: checks/s (`pantau_collector_checks_total`),
//! the process's CPU seconds per 1,000 checks (/proc/<pid>/stat), RSS and its
//! peak (VmRSS, VmHWM), schedule lag p99 (the bucket deltas of the
//! `pantau_collector_schedule_lag_seconds` histogram, interpolated as
//! Prometheus' histogram_quantile does) and WebSocket events/s. Then 20 targets
//! (all if N < 20) answer 503 from T0: for each, its `bench-down` webhook's
//! arrival minus the `checked_at` of its first DOWN result seen on the
//! WebSocket (p50/p99/max), how many arrived within 3 × interval + 10 s, and
//! arrival − T0. One markdown table at the end.
//!
//! BENCH_MODE=memory: N idle HTTP targets (default 100,000) every 300 s; once
//! every target has been checked (at most 180 s) and the alert engine has
//! swept once more (at most 45 s; it sets its series gauge then), prints RSS
//! and every `/metrics` gauge whose name contains `memory`, `bytes` or `series`
//! (the machine's `pantau_host_*` left out); then, BENCH_STEADY seconds later
//! (100; 0 skips it), RSS again, once the burst's idle keep-alive connections
//! have timed out (90 s).
//!
//! Layout: this file (settings, one run, the table); [`servers`] (the
//! targets' HTTP server child, the webhook receiver, the WebSocket watcher);
//! [`child`] (the `pantau all` process and its configuration); [`probe`]
//! (its `/metrics` text and `/proc` figures).
//!
//! Environment: BENCH_MODE (throughput|memory), BENCH_TARGETS (1000,10000,50000;
//! memory: 100000), BENCH_RULES (on|off|both; on), BENCH_INTERVAL (1s; memory:
//! 300s), BENCH_SECONDS (20, at most 120), BENCH_STEADY (memory: 100, at most 300); `MALLOC_CONF`, jemalloc's
//! run-time options, is passed on to pantau. Needs `cargo build --release --bin
//! pantau` first (`make bench-system` does it). Loopback only; every loop is
//! bounded in count and time.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

mod child;
mod probe;
mod servers;

use child::{Pantau, Ports, config_yaml, log_summary, pantau_bin, tail};
use probe::{
    buckets, clk_tck, cpu_ticks, memory_mib, metric_sum, metrics, ms_between, percentile, quantile, rss_split_mib,
};
use servers::{Seen, TargetServer, http_server, start_hook, watch};

pub const CHECKS: &str = "pantau_collector_checks_total";
pub const LAG: &str = "pantau_collector_schedule_lag_seconds";
pub const SWEEPS: &str = r#"pantau_alert_engine_evaluation_duration_seconds_count{trigger="sweep"}"#;
pub const DOWN_TARGETS: usize = 20;

pub struct Settings {
    memory: bool,
    targets: Vec<usize>,
    rules: Vec<bool>,
    interval: Duration,
    seconds: u64,
    /// Memory mode: how long after the first reading to read RSS again.
    steady: Duration,
}

fn settings() -> Result<Settings, String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let memory = match var("BENCH_MODE").as_deref() {
        None | Some("throughput") => false,
        Some("memory") => true,
        Some(m) => return Err(format!("BENCH_MODE={m}: use throughput or memory")),
    };
    let targets = match var("BENCH_TARGETS") {
        None if memory => vec![100_000],
        None => vec![1000, 10_000, 50_000],
        Some(v) => v
            .split(',')
            .map(|t| t.trim().parse().ok().filter(|n| (1..=500_000).contains(n)))
            .collect::<Option<Vec<usize>>>()
            .ok_or(format!(
                "BENCH_TARGETS={v}: a comma-separated list of numbers 1..=500000"
            ))?,
    };
    let rules = match var("BENCH_RULES").as_deref() {
        None | Some("on") => vec![true],
        Some("off") => vec![false],
        Some("both") => vec![true, false],
        Some(r) => return Err(format!("BENCH_RULES={r}: use on, off or both")),
    };
    let interval = match var("BENCH_INTERVAL") {
        None => Duration::from_secs(if memory { 300 } else { 1 }),
        Some(v) => humantime::parse_duration(v.trim())
            .ok()
            .filter(|d| *d >= Duration::from_secs(1))
            .ok_or(format!(
                "BENCH_INTERVAL={v}: a duration of at least 1s (`1s`, `500ms` is too short)"
            ))?,
    };
    let seconds = match var("BENCH_SECONDS") {
        None => 20,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("BENCH_SECONDS={v}: a number"))?
            .clamp(1, 120),
    };
    let steady = match var("BENCH_STEADY") {
        None => Duration::from_secs(if memory { 100 } else { 0 }),
        Some(v) => Duration::from_secs(
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("BENCH_STEADY={v}: a number of seconds (0 to skip, at most 300)"))?
                .min(300),
        ),
    };
    Ok(Settings {
        memory,
        targets,
        rules,
        interval,
        seconds,
        steady,
    })
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn main() {
    if std::env::var("BENCH_ROLE").as_deref() == Ok("http-server") {
        http_server();
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    match runtime().block_on(bench()) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("system: {e}");
            std::process::exit(2);
        }
    }
}

// ---- one run ----

struct Ctx {
    http: reqwest::Client,
    server: TargetServer,
    hook_port: u16,
    seen: Arc<Seen>,
    bin: PathBuf,
}

/// Aborts the task when dropped.
struct Abort(tokio::task::JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One `pantau all` with `n` targets; its table row (throughput mode).
async fn run_once(c: &Ctx, s: &Settings, n: usize, rules: bool) -> Result<Option<String>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let (yaml, ports) = config_yaml(dir.path(), n, rules, s, c.server.port, c.hook_port);
    let (cfg, log) = (dir.path().join("pantau.yaml"), dir.path().join("pantau.log"));
    std::fs::write(&cfg, yaml).map_err(|e| format!("writing {}: {e}", cfg.display()))?;
    let stderr = std::fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
    let child = Command::new(&c.bin)
        .arg("--config")
        .arg(&cfg)
        .arg("all")
        .env_clear() // no RUST_LOG, PANTAU_* or proxy settings from the caller
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(std::env::var_os("MALLOC_CONF").map(|c| ("MALLOC_CONF", c)))
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", c.bin.display()))?;
    let mut p = Pantau {
        child,
        log,
        stopped: false,
        _dir: dir,
    };
    let started = Instant::now();
    let result = measure(c, s, n, &ports, &mut p).await;
    c.seen.armed.store(0, Relaxed);
    println!("  pantau {}; its warnings and errors:{}", p.stop(), log_summary(&p.log));
    if result.is_err() {
        println!("  pantau's log ends:\n{}", tail(&p.log, 15));
    }
    println!("  run took {:.0}s", started.elapsed().as_secs_f64());
    result
}

async fn measure(
    ctx: &Ctx,
    set: &Settings,
    n: usize,
    ports: &Ports,
    pantau: &mut Pantau,
) -> Result<Option<String>, String> {
    let (http, seen, admin) = (&ctx.http, &ctx.seen, ports.admin);
    let since = Instant::now();
    for i in 0..=1200u32 {
        pantau.alive()?;
        match http.get(format!("http://127.0.0.1:{admin}/readyz")).send().await {
            Ok(r) if r.status().is_success() => break,
            _ if i >= 1200 || since.elapsed() > Duration::from_secs(120) => return Err("not ready within 120 s".into()),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    println!("  ready in {:.1}s", since.elapsed().as_secs_f64());
    let mut watcher = None;
    if !set.memory {
        let url = format!(
            "ws://127.0.0.1:{}/api/v1/monitoring/events?types=check_result",
            ports.gateway
        );
        let mut last = String::new();
        for _ in 0..20 {
            match tokio_tungstenite::connect_async(url.as_str()).await {
                Ok((ws, _)) => {
                    watcher = Some(Abort(tokio::spawn(watch(ws, Arc::clone(seen)))));
                    break;
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if watcher.is_none() {
            return Err(format!("WebSocket {url}: {last}"));
        }
    }

    // Warm-up: every target checked once (first runs are spread, ~2,000 a second).
    let bound = Duration::from_secs((30 + n as u64 / 500).min(180));
    let since = Instant::now();
    let mut done = 0.0;
    while since.elapsed() < bound && done < n as f64 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        pantau.alive()?;
        done = metric_sum(&metrics(http, admin).await?, CHECKS);
    }
    println!(
        "  warm-up: {done} checks in {:.1}s (want {n})",
        since.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = pantau.pid();
    if set.memory {
        // The alert engine sets its series gauge at each sweep (every 30 s): wait for one.
        let first = metric_sum(&metrics(http, admin).await?, SWEEPS);
        for _ in 0..45 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if metric_sum(&metrics(http, admin).await?, SWEEPS) > first {
                break;
            }
        }
        let (rss, hwm) = memory_mib(pid);
        println!(
            "  memory: N={n}, every {:?}: RSS {rss:.1} MiB (peak {hwm:.1} MiB); gauges named memory, bytes or series \
             (pantau_host_*, the machine's, left out):",
            set.interval
        );
        let text = metrics(http, admin).await?;
        let gauges: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" gauge"))
            .collect();
        for l in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("pantau_host_"))
        {
            let name = l.split(['{', ' ']).next().unwrap_or("");
            if gauges.contains(&name) && ["memory", "bytes", "series"].iter().any(|w| name.contains(w)) {
                println!("    {l}");
            }
        }
        // Steady state: the first checks' burst left idle keep-alive
        // connections (up to the workers' concurrency), closed after the
        // HTTP pool's 90 s idle timeout; read RSS again once they are gone.
        if set.steady > Duration::ZERO {
            let until = Instant::now() + set.steady;
            while Instant::now() < until {
                tokio::time::sleep(Duration::from_secs(5).min(until - Instant::now())).await;
                pantau.alive()?;
            }
            let (rss, hwm) = memory_mib(pid);
            let (anon, file) = rss_split_mib(pid);
            let text = metrics(http, admin).await?;
            let mib = |m: &str| metric_sum(&text, m) / (1024.0 * 1024.0);
            println!(
                "  memory, steady: {:.0} s later ({} checks in all): RSS {rss:.1} MiB (peak {hwm:.1} MiB): \
                 anonymous {anon:.1}, file-backed {file:.1}; jemalloc: allocated {:.1}, active {:.1}, \
                 metadata {:.1}, resident {:.1} MiB",
                set.steady.as_secs_f64(),
                metric_sum(&text, CHECKS),
                mib("pantau_allocator_allocated_bytes"),
                mib("pantau_allocator_active_bytes"),
                mib("pantau_allocator_metadata_bytes"),
                mib("pantau_allocator_resident_bytes"),
            );
        }
        return Ok(None);
    }

    // The window: a scrape at each end, CPU read just inside them.
    let before = metrics(http, admin).await?;
    let (ta, ws_a, cpu_a) = (Instant::now(), seen.ws_events.load(Relaxed), cpu_ticks(pid));
    tokio::time::sleep(Duration::from_secs(set.seconds)).await;
    pantau.alive()?;
    let (cpu_b, ws_b) = (cpu_ticks(pid), seen.ws_events.load(Relaxed));
    let after = metrics(http, admin).await?;
    let secs = ta.elapsed().as_secs_f64();
    let delta = |m: &str| metric_sum(&after, m) - metric_sum(&before, m);
    let checks = delta(CHECKS);
    let cpu_s = cpu_a
        .zip(cpu_b)
        .map_or(f64::NAN, |(x, y)| y.saturating_sub(x) as f64 / clk_tck());
    let (rss, hwm) = memory_mib(pid);
    let lag = match quantile(&buckets(&before, LAG), &buckets(&after, LAG), 0.99) {
        Some(lag) if lag.is_infinite() => "> 30000".to_owned(),
        Some(lag) => format!("{:.1}", lag * 1000.0),
        None => "–".to_owned(),
    };
    let (ws, dropped) = (ws_b - ws_a, delta("pantau_gateway_ws_messages_dropped_total"));
    println!(
        "  window {secs:.1}s: {checks} checks, {cpu_s:.1} CPU-s, {} skipped, {ws} WS events, {dropped} dropped",
        delta("pantau_collector_checks_skipped_total")
    );

    // Down → webhook: targets h0..h<down_n> answer 503 from T0.
    let down_n = n.min(DOWN_TARGETS);
    lock(&seen.downs).clear();
    lock(&seen.hooks).clear();
    seen.armed.store(down_n, Relaxed);
    let control = |count: usize| {
        let url = format!("http://127.0.0.1:{}/control/down?from=0&count={count}", ctx.server.port);
        http.post(url).send()
    };
    let t0 = SystemTime::now();
    control(down_n)
        .await
        .map_err(|e| format!("cannot take targets down: {e}"))?;
    let wait = set.interval * 3 + Duration::from_secs(10);
    let tw = Instant::now();
    while tw.elapsed() < wait && lock(&seen.hooks).len() < down_n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen.armed.store(0, Relaxed);
    control(0)
        .await
        .map_err(|e| format!("cannot bring targets back: {e}"))?;
    let (hooks, downs) = (lock(&seen.hooks).clone(), lock(&seen.downs).clone());
    let mut down: Vec<f64> = hooks
        .iter()
        .filter_map(|(i, at)| Some(ms_between(*downs.get(i)?, *at)))
        .collect();
    let mut from_t0: Vec<f64> = hooks.values().map(|at| ms_between(t0, *at)).collect();
    down.sort_by(f64::total_cmp);
    from_t0.sort_by(f64::total_cmp);
    println!(
        "  down: {} of {down_n} webhooks within {}s, {} with their first DOWN seen on the WebSocket; \
         arrival − T0 p50 {:.0} ms, max {:.0} ms",
        hooks.len(),
        wait.as_secs(),
        down.len(),
        percentile(&from_t0, 0.5),
        percentile(&from_t0, 1.0)
    );
    Ok(Some(format!(
        "{:.0} | {:.3} | {rss:.0} ({hwm:.0}) | {lag} | {:.0} ({dropped}) | {:.0} / {:.0} / {:.0} | {}/{down_n} | {:.0} |",
        checks / secs,
        cpu_s / (checks / 1000.0),
        ws as f64 / secs,
        percentile(&down, 0.5),
        percentile(&down, 0.99),
        percentile(&down, 1.0),
        hooks.len(),
        percentile(&from_t0, 0.5),
    )))
}

async fn bench() -> Result<bool, String> {
    let s = settings()?;
    let bin = pantau_bin();
    if !bin.is_file() {
        return Err(format!(
            "{} is missing: run `cargo build --release --bin pantau`",
            bin.display()
        ));
    }
    let server = TargetServer::start()?;
    let seen = Arc::new(Seen::default());
    let hook_port = start_hook(Arc::clone(&seen)).await?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let c = Ctx {
        http,
        server,
        hook_port,
        seen,
        bin,
    };
    println!(
        "system: {} mode, {}; N {:?}, default rules {:?}, interval {:?}, window {}s; targets on 127.0.0.1:{}",
        if s.memory { "memory" } else { "throughput" },
        c.bin.display(),
        s.targets,
        s.rules,
        s.interval,
        s.seconds,
        c.server.port
    );
    let mut rows = Vec::new();
    for &n in &s.targets {
        for &rules in &s.rules {
            let on = if rules { "on" } else { "off" };
            println!("system: N={n}, default rules {on}");
            let cells = run_once(&c, &s, n, rules).await.unwrap_or_else(|e| {
                eprintln!("system: N={n}, rules {on}: {e}");
                Some(format!("failed: {} ||||||||", e.lines().next().unwrap_or("")))
            });
            let iv = humantime::format_duration(s.interval);
            rows.extend(cells.map(|r| format!("| {n} | {on} | {iv} | {r}")));
        }
    }
    if !s.memory {
        println!(
            "\n| N | rules | interval | checks/s | CPU-s / 1k checks | RSS MiB (peak) | lag p99 ms | WS events/s (dropped) \
             | down→webhook p50 / p99 / max ms | arrived | T0→webhook p50 ms |\n|{}",
            "---|".repeat(11)
        );
        for r in &rows {
            println!("{r}");
        }
    }
    Ok(rows.iter().all(|r| !r.contains("failed:")))
}
