//! `make bench-notifier`: alert events published on the in-process bus,
//! persisted by the notifier (SQLite), delivered to a generic webhook sink on
//! loopback. Prints deliveries per second and the p50/p99 latency from
//! publish to the sink's receipt.
//!
//! Two phases: `BENCH_EVENTS` (default 2000) events published at once
//! (throughput, and latency with a backlog), then a quarter as many at 50 per
//! second (latency without one). Each phase stops after 120 s whatever
//! happened, and reports what arrived by then.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use pantau_config::Config;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::service::Context;
use pantau_proto::v1::{AlertEvent, AlertState, Severity};
use tokio::net::TcpListener;
use tokio::time::Instant;

type Seen = Arc<Mutex<HashMap<String, Instant>>>;

async fn sink(State(seen): State<Seen>, body: Bytes) -> &'static str {
    let at = Instant::now();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(key) = v["notification"]["key"].as_str()
    {
        seen.lock().unwrap().entry(key.to_owned()).or_insert(at);
    }
    "{\"ok\":true}"
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

struct Stats {
    delivered: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn print(&self, title: &str) {
        println!("  {title}");
        println!("    delivered:   {}", self.delivered);
        println!("    elapsed:     {:.3} s", self.elapsed.as_secs_f64());
        println!(
            "    throughput:  {:.0} deliveries/s",
            self.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
        );
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!("    latency p50: {:.1} ms", ms(percentile(&self.latencies, 0.50)));
        println!("    latency p99: {:.1} ms", ms(percentile(&self.latencies, 0.99)));
        println!(
            "    latency max: {:.1} ms",
            ms(self.latencies.last().copied().unwrap_or_default())
        );
    }
}

/// Publishes `events` alerts (all at once, or `rate` per second) and waits
/// until they arrive, at most 120 s.
async fn phase(bus: &MemoryBus, seen: &Seen, name: &str, events: usize, rate: Option<u32>) -> Stats {
    let mut published: HashMap<String, Instant> = HashMap::with_capacity(events);
    let start = Instant::now();
    for i in 0..events {
        if let Some(r) = rate {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / f64::from(r))).await;
        }
        let mut e = AlertEvent {
            alert_id: format!("{name}-{i}"),
            rule_name: "Bench".into(),
            summary: format!("bench alert {i}"),
            ..Default::default()
        };
        e.set_state(AlertState::Firing);
        e.set_severity(Severity::Warning);
        published.insert(e.alert_id.clone(), Instant::now());
        let subject = pantau_core::bus::subject::alert("firing", &e.alert_id);
        pantau_core::bus::publish_proto(bus, &subject, &e).await.unwrap();
    }
    let deadline = start + Duration::from_secs(120);
    let arrived = |seen: &HashMap<String, Instant>| published.keys().filter(|k| seen.contains_key(*k)).count();
    loop {
        if arrived(&seen.lock().unwrap()) >= events || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen = seen.lock().unwrap().clone();
    let mut latencies: Vec<Duration> = published
        .iter()
        .filter_map(|(k, p)| seen.get(k).map(|at| at.duration_since(*p)))
        .collect();
    latencies.sort();
    let last = published
        .keys()
        .filter_map(|k| seen.get(k))
        .max()
        .copied()
        .unwrap_or(start);
    Stats {
        delivered: latencies.len(),
        elapsed: last.duration_since(start),
        latencies,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let events: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
        .clamp(1, 100_000);
    let seen: Seen = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(sink))
        .with_state(Arc::clone(&seen));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        listen_host: "127.0.0.1".into(),
        ..Config::default()
    };
    config.notifier = serde_json::from_value(serde_json::json!({
        "poll_interval": "100ms",
        "concurrency": 32,
        "channels": [{"name": "hook", "type": "webhook", "url": sink_url, "secret": "bench"}],
        "routes": [{"channels": ["hook"]}],
    }))
    .unwrap();
    config.validate().unwrap();
    let bus = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(config), bus.clone());
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hooks = pantau_notifier::Webhooks::default();
    let handle = tokio::spawn(pantau_notifier::run(ctx.clone(), grpc, hooks));
    // Wait until the consumer is subscribed.
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let r = ctx.health.report().await;
            if r.is_ready() && r.components.contains_key("notifier.consumer") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "the notifier did not become ready");

    println!("notifier delivery benchmark (SQLite store, signed webhook to a loopback sink, concurrency 32)");
    let burst = phase(bus.as_ref(), &seen, "burst", events, None).await;
    burst.print(&format!("burst: {events} events published at once"));
    let paced_n = (events / 4).max(1);
    let paced = phase(bus.as_ref(), &seen, "paced", paced_n, Some(50)).await;
    paced.print(&format!("paced: {paced_n} events at 50/s"));
    ctx.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), handle).await;
}
