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
//! (the machine's `pantau_host_*` left out).
//!
//! Environment: BENCH_MODE (throughput|memory), BENCH_TARGETS (1000,10000,50000;
//! memory: 100000), BENCH_RULES (on|off|both; on), BENCH_INTERVAL (1s; memory:
//! 300s), BENCH_SECONDS (20, at most 120). Needs `cargo build --release --bin
//! pantau` first (`make bench-system` does it). Loopback only; every loop is
//! bounded in count and time.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

const CHECKS: &str = "pantau_collector_checks_total";
const LAG: &str = "pantau_collector_schedule_lag_seconds";
const SWEEPS: &str = r#"pantau_alert_engine_evaluation_duration_seconds_count{trigger="sweep"}"#;
const DOWN_TARGETS: usize = 20;

struct Settings {
    memory: bool,
    targets: Vec<usize>,
    rules: Vec<bool>,
    interval: Duration,
    seconds: u64,
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
    Ok(Settings {
        memory,
        targets,
        rules,
        interval,
        seconds,
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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

// ---- the targets' HTTP server (a child process) ----

type Down = Arc<[AtomicUsize; 2]>; // from, count

async fn target(State(d): State<Down>, Path(i): Path<usize>) -> (StatusCode, &'static str) {
    let (from, count) = (d[0].load(Relaxed), d[1].load(Relaxed));
    if i >= from && i < from + count {
        (StatusCode::SERVICE_UNAVAILABLE, "down")
    } else {
        (StatusCode::OK, "ok")
    }
}

async fn control(State(d): State<Down>, Query(q): Query<HashMap<String, String>>) -> &'static str {
    let num = |k: &str| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
    d[1].store(0, Relaxed);
    d[0].store(num("from"), Relaxed);
    d[1].store(num("count"), Relaxed);
    "ok"
}

/// `GET /t/<i>`: 200 "ok", or 503 for `from <= i < from + count` as set by
/// `POST /control/down?from=&count=`. Prints `port <p>`; exits when stdin closes.
fn http_server() {
    runtime().block_on(async {
        let down: Down = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let app = Router::new()
            .route("/t/{i}", get(target))
            .route("/control/down", post(control))
            .with_state(down);
        let l = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("http-server: cannot bind 127.0.0.1: {e}");
                std::process::exit(1);
            }
        };
        println!("port {}", l.local_addr().map_or(0, |a| a.port()));
        let eof = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new()));
        tokio::select! {
            r = axum::serve(l, app) => if let Err(e) = r { eprintln!("http-server: {e}") },
            _ = eof => {}
        }
        std::process::exit(0);
    });
}

/// The child process serving the targets; killed on drop.
struct TargetServer {
    child: Child,
    port: u16,
}

impl TargetServer {
    fn start() -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
        let mut child = Command::new(exe)
            .env("BENCH_ROLE", "http-server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the HTTP server process: {e}"))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        let port = line
            .strip_prefix("port ")
            .and_then(|p| p.trim().parse().ok())
            .filter(|p| *p > 0);
        let mut s = Self { child, port: 0 };
        s.port = port.ok_or(format!("the HTTP server process did not say its port (said {line:?})"))?;
        Ok(s)
    }
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- what this process sees: webhooks and WebSocket events ----

#[derive(Default)]
struct Seen {
    /// Targets h0..h<armed> are being taken down; 0 = none.
    armed: AtomicUsize,
    /// Per target index: `checked_at` of its first DOWN result on the WebSocket.
    downs: Mutex<HashMap<usize, SystemTime>>,
    /// Per target index: arrival of its first `bench-down` firing webhook.
    hooks: Mutex<HashMap<usize, SystemTime>>,
    ws_events: AtomicU64,
}

impl Seen {
    fn armed(&self, target: Option<&str>) -> Option<usize> {
        let i: usize = target?.strip_prefix('h')?.parse().ok()?;
        (i < self.armed.load(Relaxed)).then_some(i)
    }
}

async fn hook(State(seen): State<Arc<Seen>>, body: Bytes) -> StatusCode {
    let at = SystemTime::now();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
        && v["status"] == "firing"
    {
        for a in v["notification"]["alerts"].as_array().into_iter().flatten() {
            if a["name"] == "bench-down"
                && let Some(i) = seen.armed(a["labels"]["target"].as_str())
            {
                lock(&seen.hooks).entry(i).or_insert(at);
            }
        }
    }
    StatusCode::OK
}

async fn start_hook(seen: Arc<Seen>) -> Result<u16, String> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("webhook bind: {e}"))?;
    let port = l.local_addr().map_err(|e| e.to_string())?.port();
    tokio::spawn(async move { axum::serve(l, Router::new().route("/hook", post(hook)).with_state(seen)).await });
    Ok(port)
}

/// Counts WebSocket events; records the first DOWN `checked_at` of armed targets.
async fn watch(
    mut ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    seen: Arc<Seen>,
) {
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(t) = msg else { continue };
        seen.ws_events.fetch_add(1, Relaxed);
        if seen.armed.load(Relaxed) == 0 || !t.contains(r#""status":"down""#) {
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) else {
            continue;
        };
        let at = v["data"]["checked_at"]
            .as_str()
            .and_then(|s| humantime::parse_rfc3339(s).ok());
        if let (Some(i), Some(at)) = (seen.armed(v["data"]["target_id"].as_str()), at) {
            lock(&seen.downs).entry(i).or_insert(at);
        }
    }
}

// ---- the pantau process ----

fn pantau_bin() -> PathBuf {
    // This bench runs from <target>/release/deps/; the binary is <target>/release/pantau.
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.join("pantau")));
    beside
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/pantau"))
}

struct Pantau {
    child: Child,
    log: PathBuf,
    stopped: bool,
    _dir: tempfile::TempDir,
}

impl Pantau {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(st)) => Err(format!("pantau exited ({st}); its log ends:\n{}", tail(&self.log, 20))),
            _ => Ok(()),
        }
    }

    /// SIGTERM, then SIGKILL after 15 s. Returns how it went.
    fn stop(&mut self) -> String {
        self.stopped = true;
        let t = Instant::now();
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        for _ in 0..300 {
            if let Ok(Some(st)) = self.child.try_wait() {
                return format!("stopped on SIGTERM in {:.1}s ({st})", t.elapsed().as_secs_f64());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        "did not stop within 15s of SIGTERM: killed".to_owned()
    }
}

impl Drop for Pantau {
    fn drop(&mut self) {
        if !self.stopped {
            self.stop();
        }
    }
}

fn tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Warnings and errors in pantau's log (JSON, or plain text such as a panic):
/// each distinct message, with `/t/<i>` for every target, and its count.
fn log_summary(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines().take(1_000_000) {
        let key = match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => {
                let msg = v["fields"]["message"]
                    .as_str()
                    .or(v["message"].as_str())
                    .unwrap_or(line);
                let (level, target) = (v["level"].as_str().unwrap_or("?"), v["target"].as_str().unwrap_or("?"));
                format!("{level} {target}: {msg}")
            }
            Err(_) => format!("(plain) {line}"),
        };
        let (mut shape, mut rest) = (String::new(), key.as_str());
        while let Some(at) = rest.find("/t/") {
            shape.push_str(&rest[..at + 3]);
            shape.push_str("<i>");
            rest = rest[at + 3..].trim_start_matches(|c: char| c.is_ascii_digit());
        }
        shape.push_str(rest);
        *seen.entry(shape.chars().take(200).collect()).or_default() += 1;
    }
    let mut out = String::new();
    for (m, n) in seen.iter().take(12) {
        let _ = write!(out, "\n    {n:>6} × {m}");
    }
    if seen.len() > 12 {
        let _ = write!(out, "\n    … and {} more kinds", seen.len() - 12);
    }
    if seen.is_empty() { " none".to_owned() } else { out }
}

/// Eleven distinct free loopback ports (all held open until every one is chosen).
fn free_ports() -> Result<[u16; 11], String> {
    let held: Vec<std::net::TcpListener> = (0..11)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    let mut ports = [0u16; 11];
    for (p, l) in ports.iter_mut().zip(&held) {
        *p = l.local_addr().map_err(|e| e.to_string())?.port();
    }
    Ok(ports)
}

/// The extra rule: a down bench target pages at once (no `for`).
const RULES: &str = r#"  rules:
    - id: bench-down
      name: bench-down
      expr: 'check_up{bench="yes"} == 0'
      severity: critical
      message: "{{ $labels.target }} is down""#;

struct Ports {
    gateway: u16,
    admin: u16,
}

/// `pantau all` on free loopback ports (as crates/pantau/tests/it/support.rs
/// does), N HTTP targets, the webhook channel, auth off.
fn config_yaml(
    dir: &std::path::Path,
    n: usize,
    rules: bool,
    s: &Settings,
    targets: u16,
    hook: u16,
) -> Result<(String, Ports), String> {
    let [gw, admin, cg, ca, aeg, aea, ng, na, wg, wa, sg] = free_ports()?;
    let iv = s.interval.as_millis();
    let timeout = (iv * 9 / 10).min(5000);
    let mut y = format!(
        "listen_host: 127.0.0.1
data_dir: {data}
admin_port: {admin}
shutdown_grace: 5s
log:
  format: json
  level: warn
gateway:
  port: {gw}
  collector_url: http://127.0.0.1:{cg}
  alert_engine_url: http://127.0.0.1:{aeg}
  notifier_url: http://127.0.0.1:{ng}
  wan_detector_url: http://127.0.0.1:{wg}
  sync_url: http://127.0.0.1:{sg}
  auth:
    enabled: false
sync:
  grpc_port: {sg}
wan_detector:
  grpc_port: {wg}
  admin_port: {wa}
alert_engine:
  grpc_port: {aeg}
  admin_port: {aea}
  default_rules: {rules}
{RULES}
notifier:
  grpc_port: {ng}
  admin_port: {na}
  channels:
    - name: bench
      type: webhook
      url: http://127.0.0.1:{hook}/hook
  routes:
    - channels: [bench]
collector:
  grpc_port: {cg}
  admin_port: {ca}
  interval: {iv}ms
  timeout: {timeout}ms
  workers:
    concurrency: 1024
  targets:
",
        data = dir.display()
    );
    for i in 0..n {
        let _ = writeln!(
            y,
            r#"    - {{id: h{i}, type: http, url: "http://127.0.0.1:{targets}/t/{i}", labels: {{bench: "yes"}}}}"#
        );
    }
    Ok((y, Ports { gateway: gw, admin }))
}

// ---- /metrics and /proc ----

fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                return None;
            }
            l.rsplit(' ').next()?.parse::<f64>().ok()
        })
        .sum()
}

/// Cumulative buckets `(le, count)` of a histogram, summed over its other labels.
fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for l in text.lines().filter(|l| l.starts_with(&prefix)) {
        let le = l
            .split("le=\"")
            .nth(1)
            .and_then(|r| r.split('"').next()?.parse::<f64>().ok());
        if let (Some(le), Some(c)) = (le, l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok())) {
            by_le.entry(le.to_bits()).or_insert((le, 0.0)).1 += c;
        }
    }
    let mut v: Vec<(f64, f64)> = by_le.into_values().collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// The q-quantile of the observations between two scrapes (linear within a
/// bucket, as Prometheus' histogram_quantile); infinite past the last bound.
fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let old = before.iter().map(|b| b.1).chain(std::iter::repeat(0.0));
    let d: Vec<(f64, f64)> = after.iter().zip(old).map(|(&(le, c), o)| (le, c - o)).collect();
    let total = d.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let want = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, c) in &d {
        if c >= want {
            if le.is_infinite() {
                return Some(f64::INFINITY);
            }
            return Some(prev.0 + (le - prev.0) * (want - prev.1) / (c - prev.1).max(f64::MIN_POSITIVE));
        }
        prev = (le, c);
    }
    None
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = s[s.rfind(')')? + 1..].split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// (VmRSS, VmHWM) in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |k| k / 1024.0)
    };
    (kib("VmRSS:"), kib("VmHWM:"))
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

async fn metrics(http: &reqwest::Client, admin: u16) -> Result<String, String> {
    let r = http
        .get(format!("http://127.0.0.1:{admin}/metrics"))
        .send()
        .await
        .map_err(|e| format!("/metrics: {e}"))?;
    r.text().await.map_err(|e| format!("/metrics: {e}"))
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms_between(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
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
    let (yaml, ports) = config_yaml(dir.path(), n, rules, s, c.server.port, c.hook_port)?;
    let (cfg, log) = (dir.path().join("pantau.yaml"), dir.path().join("pantau.log"));
    std::fs::write(&cfg, yaml).map_err(|e| format!("writing {}: {e}", cfg.display()))?;
    let stderr = std::fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
    let child = Command::new(&c.bin)
        .arg("--config")
        .arg(&cfg)
        .arg("all")
        .env_clear() // no RUST_LOG, PANTAU_* or proxy settings from the caller
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
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
