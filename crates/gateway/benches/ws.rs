//! WebSocket hub benchmark (`make bench-gateway`), not part of `cargo test`.
//!
//! This process runs the gateway over the in-process bus; child processes of
//! this same binary hold the clients (each process has its own
//! file-descriptor limit), all authenticated with `?token=`, each subscribed
//! to one target (`target=t<i mod TARGETS>`) as dashboards do. Events (check
//! results stamped with the wall clock when published) flow at RATE per
//! second for SECONDS; each client measures publish-to-receive latency.
//! Prints clients, events/s, deliveries, losses and p50/p90/p99/max.
//!
//! It lives in the gateway's crate, not the binary's, so that measuring the
//! hub builds the gateway and core alone (the binary's benches rebuild every
//! service). The REST half, which needs the alert engine, is
//! `crates/pantau/benches/gateway.rs`.
//!
//! Environment: BENCH_CLIENTS (10000), BENCH_PROCS (2), BENCH_RATE (1000),
//! BENCH_TARGETS (100), BENCH_SECONDS (20). Loopback only; every loop is
//! bounded in count and time.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, publish_proto, subject};
use pantau_core::service::Context;
use pantau_core::time::to_timestamp;
use pantau_proto::v1;

mod support;
use support::{config, env, start_gateway, token};

/// Latency histogram: 100 µs buckets up to 10 s, then one overflow bucket.
const BUCKET_US: u64 = 100;
const BUCKETS: usize = 100_001;

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

fn percentile(h: &[u64], q: f64) -> f64 {
    let total: u64 = h.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    let want = (total as f64 * q).ceil() as u64;
    let mut seen = 0;
    for (i, n) in h.iter().enumerate() {
        seen += n;
        if seen >= want {
            return (i as u64 * BUCKET_US) as f64 / 1000.0;
        }
    }
    f64::NAN
}

fn main() {
    // `cargo bench` passes `--bench`; a client child gets `--client`.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--client") {
        let url = args[i + 1].clone();
        let count: usize = args[i + 2].parse().expect("client count");
        let targets: usize = args[i + 3].parse().expect("targets");
        let first: usize = args[i + 4].parse().expect("first client index");
        client_process(&url, count, targets, first);
        return;
    }
    support::runtime().block_on(ws_bench());
}

async fn ws_bench() {
    let clients: usize = env("BENCH_CLIENTS", 10_000);
    let procs: usize = env("BENCH_PROCS", 2).max(1);
    let rate: u64 = env("BENCH_RATE", 1000);
    let targets: usize = env("BENCH_TARGETS", 100).max(1);
    let seconds: u64 = env("BENCH_SECONDS", 20).min(600);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let tok = token(&cfg);
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(cfg), Arc::clone(&bus));
    let addr = start_gateway(&ctx).await;
    let url = format!("ws://{addr}/api/v1/monitoring/events?types=check_result&token={tok}");
    println!("ws: {clients} clients in {procs} processes, {rate} events/s over {targets} targets for {seconds}s");

    let exe = std::env::current_exe().expect("exe");
    let per = clients.div_ceil(procs);
    let mut children = Vec::new();
    for p in 0..procs {
        let n = per.min(clients - (p * per).min(clients));
        if n == 0 {
            break;
        }
        let child = Command::new(&exe)
            .args([
                "--client",
                &url,
                &n.to_string(),
                &targets.to_string(),
                &(p * per).to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("client process");
        children.push(child);
    }
    // Wait for every process to say it is connected (bounded).
    let mut readers = Vec::new();
    let t0 = Instant::now();
    for c in &mut children {
        let mut r = BufReader::new(c.stdout.take().expect("stdout"));
        let mut line = String::new();
        r.read_line(&mut line).expect("ready line");
        assert!(line.starts_with("ready"), "client process: {line}");
        readers.push(r);
    }
    println!("ws: all clients connected in {:.1}s", t0.elapsed().as_secs_f64());

    // Publish: a batch every 10 ms.
    let per_tick = (rate / 100).max(1);
    let total = per_tick * 100 * seconds;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut seq: u64 = 0;
    let started = Instant::now();
    while seq < total && started.elapsed() < Duration::from_secs(seconds + 30) {
        tick.tick().await;
        for _ in 0..per_tick {
            let t = (seq % targets as u64) as usize;
            let r = v1::CheckResult {
                target_id: format!("t{t}"),
                target_name: format!("t{t}"),
                kind: v1::CheckKind::Tcp.into(),
                location: "bench".into(),
                status: v1::CheckStatus::Up.into(),
                checked_at: Some(to_timestamp(SystemTime::now())),
                message: format!("ts={}", now_nanos()),
                ..Default::default()
            };
            publish_proto(bus.as_ref(), &subject::check_result("bench", &r.target_id), &r)
                .await
                .expect("publish");
            seq += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut hist = vec![0u64; BUCKETS];
    let mut received = 0u64;
    for (c, r) in children.iter_mut().zip(readers) {
        if let Some(mut stdin) = c.stdin.take() {
            let _ = stdin.write_all(b"stop\n");
        }
        for line in r.lines().map_while(Result::ok) {
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some("h"), Some(b), Some(n)) => hist[b.parse::<usize>().unwrap_or(0)] += n.parse::<u64>().unwrap_or(0),
                (Some("n"), Some(n), _) => received += n.parse::<u64>().unwrap_or(0),
                _ => {}
            }
        }
        let _ = c.wait();
    }
    // Each client subscribed to one of `targets` targets: it expects its share.
    let expected: u64 = (0..clients)
        .map(|i| {
            let t = (i % targets) as u64;
            total / targets as u64 + u64::from(t < total % targets as u64)
        })
        .sum();
    println!(
        "ws: published {seq} events in {elapsed:.1}s ({:.0}/s); deliveries {received} of {expected} expected ({:.0}/s), lost {}",
        seq as f64 / elapsed,
        received as f64 / elapsed,
        expected.saturating_sub(received)
    );
    println!(
        "ws: publish-to-client latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&hist, 0.50),
        percentile(&hist, 0.90),
        percentile(&hist, 0.99),
        percentile(&hist, 1.0)
    );
    ctx.shutdown.cancel();
}

/// A child process: `count` clients; prints `ready`, then on `stop` its histogram.
fn client_process(url: &str, count: usize, targets: usize, first: usize) {
    // One thread per client process: the load generator shares the cores
    // with the gateway it measures, and a multi-threaded runtime's work
    // stealing and cross-thread wake-ups cost it CPU the gateway then lacks.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let hist: Arc<Vec<AtomicU64>> = Arc::new((0..BUCKETS).map(|_| AtomicU64::new(0)).collect());
        let received = Arc::new(AtomicU64::new(0));
        let connected = Arc::new(tokio::sync::Semaphore::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(256));
        // tungstenite zero-fills its read buffer up to this size before every
        // read (128 KiB by default): 10,000 clients then spend more CPU on
        // memset than on the frames, CPU the gateway on the same cores lacks.
        // The frames here are a few hundred bytes; browsers have no such cost.
        let small_reads = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096);
        for i in first..first + count {
            let url = format!("{url}&target=t{}", i % targets);
            let (hist, received, connected, gate) = (
                Arc::clone(&hist),
                Arc::clone(&received),
                Arc::clone(&connected),
                Arc::clone(&gate),
            );
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await.expect("gate");
                let mut ws = None;
                for _ in 0..20 {
                    match tokio_tungstenite::connect_async_with_config(url.as_str(), Some(small_reads), true).await {
                        Ok((s, _)) => {
                            ws = Some(s);
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                drop(permit);
                let Some(mut ws) = ws else {
                    eprintln!("client {i}: cannot connect");
                    connected.add_permits(1);
                    return;
                };
                connected.add_permits(1);
                while let Some(Ok(msg)) = ws.next().await {
                    if let tokio_tungstenite::tungstenite::Message::Text(t) = msg
                        && let Some(pos) = t.find("ts=")
                    {
                        let digits = &t[pos + 3..];
                        let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
                        if let Ok(sent) = digits[..end].parse::<u128>() {
                            let us = (now_nanos().saturating_sub(sent) / 1000) as u64;
                            let b = ((us / BUCKET_US) as usize).min(BUCKETS - 1);
                            hist[b].fetch_add(1, Ordering::Relaxed);
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        let all = u32::try_from(count).expect("count");
        let _ = tokio::time::timeout(Duration::from_secs(300), connected.acquire_many(all)).await;
        println!("ready");
        // Wait for `stop` (or a bound) on stdin.
        let _ = tokio::time::timeout(
            Duration::from_secs(900),
            tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
            }),
        )
        .await;
        for (b, n) in hist.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                println!("h {b} {n}");
            }
        }
        println!("n {}", received.load(Ordering::Relaxed));
        std::process::exit(0);
    });
}
