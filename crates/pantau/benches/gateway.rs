//! Gateway REST benchmark (`make bench-gateway`), not part of `cargo test`:
//! authenticated `GET /api/v1/monitoring/alerts?limit=50` against a gateway
//! and alert engine holding 100 firing alerts, from CONCURRENCY clients for
//! SECONDS, with a JWT and with an API key. Prints requests/s and p50/p99.
//! The WebSocket half is the gateway crate's `benches/ws.rs`.
//!
//! Environment: BENCH_CONCURRENCY (32), BENCH_SECONDS (20). Loopback only;
//! every loop is bounded in count and time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use pantau_config::{AlertRuleConfig, AlertSeverity};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, publish_proto, subject};
use pantau_core::service::Context;
use pantau_core::time::to_timestamp;
use pantau_proto::v1;

#[path = "../../gateway/benches/support/mod.rs"]
mod support;
use support::{config, env, start_gateway, token};

fn main() {
    support::runtime().block_on(rest_bench());
}

async fn rest_bench() {
    let concurrency: usize = env("BENCH_CONCURRENCY", 32);
    let seconds: u64 = env("BENCH_SECONDS", 20).min(600);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    cfg.gateway.alert_engine_url = format!("http://{}", grpc.local_addr().expect("addr"));
    cfg.alert_engine.default_rules = false;
    cfg.alert_engine.rules = vec![AlertRuleConfig {
        id: "down".into(),
        name: Some("Target down".into()),
        expr: "check_up == 0".into(),
        severity: AlertSeverity::Critical,
        message: "{{ $labels.target }} is down".into(),
        labels: std::collections::BTreeMap::new(),
        for_: None,
        cooldown: None,
        enabled: true,
        depends_on: Vec::new(),
    }];
    let tok = token(&cfg);
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(cfg), Arc::clone(&bus));
    tokio::spawn(pantau_alert_engine::run(ctx.clone(), grpc));
    let addr = start_gateway(&ctx).await;
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();

    // 100 firing alerts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for t in 0..100 {
        let r = v1::CheckResult {
            target_id: format!("svc{t}"),
            target_name: format!("svc{t}"),
            kind: v1::CheckKind::Tcp.into(),
            location: "bench".into(),
            status: v1::CheckStatus::Down.into(),
            checked_at: Some(to_timestamp(SystemTime::now())),
            ..Default::default()
        };
        publish_proto(bus.as_ref(), &subject::check_result("bench", &r.target_id), &r)
            .await
            .expect("publish");
    }
    let url = format!("{base}/api/v1/monitoring/alerts?state=firing&limit=50");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: serde_json::Value = http
            .get(&url)
            .bearer_auth(&tok)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .unwrap_or_default();
        if v["alerts"].as_array().is_some_and(|a| a.len() == 50) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shown: serde_json::Value = http
        .get(&url)
        .bearer_auth(&tok)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .unwrap_or_default();
    let body = serde_json::to_string(&shown).unwrap_or_default();
    println!(
        "rest: each answer lists {} firing alerts ({} bytes of JSON)",
        shown["alerts"].as_array().map_or(0, Vec::len),
        body.len()
    );
    let key: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/keys"))
        .bearer_auth(&tok)
        .json(&serde_json::json!({"name": "bench", "scopes": ["monitoring:read"]}))
        .send()
        .await
        .expect("key")
        .json()
        .await
        .expect("key json");
    let api_key = key["key"].as_str().expect("key").to_owned();

    for (label, credential) in [("JWT", tok.clone()), ("API key", api_key)] {
        let lat = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
        let errors = Arc::new(AtomicU64::new(0));
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (http, url, credential, lat, errors) = (
                http.clone(),
                url.clone(),
                credential.clone(),
                Arc::clone(&lat),
                Arc::clone(&errors),
            );
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while Instant::now() < end && mine.len() < 5_000_000 {
                    let t = Instant::now();
                    match http.get(&url).bearer_auth(&credential).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            mine.push(t.elapsed().as_micros() as u64);
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                lat.lock().expect("lock").extend(mine);
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let mut v = lat.lock().expect("lock").clone();
        v.sort_unstable();
        let q = |p: f64| {
            v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0) as f64
                / 1000.0
        };
        println!(
            "rest ({label}): {} requests in {seconds}s ({:.0}/s) from {concurrency} clients, {} errors; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            v.len(),
            v.len() as f64 / seconds as f64,
            errors.load(Ordering::Relaxed),
            q(0.50),
            q(0.99),
            q(1.0)
        );
    }
    ctx.shutdown.cancel();
}
