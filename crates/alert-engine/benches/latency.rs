//! `make bench-alert-engine` (`cargo bench -p pantau-alert-engine --bench latency`): how long from a threshold-crossing event on
//! the bus to the alert event on the bus (goal: p99 < 50 ms).
//!
//! Runs the real alert engine (SQLite store in a temp dir) twice: on the
//! in-process bus, and on a real `nats-server` with JetStream started on a
//! loopback port. Each round publishes a DOWN CheckResult for a new target
//! and waits for `pantau.alert.firing.<id>`; the time is measured from just
//! before the publish to the receipt. Bounded: `ROUNDS` rounds, each within
//! 5 s, after `WARMUP` unmeasured ones.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_config::{AlertRuleConfig, AlertSeverity, Config, NatsConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::nats::NatsBus;
use pantau_core::bus::{Bus, Subscription, decode, publish_proto, subject};
use pantau_core::service::Context;
use pantau_proto::v1::alert_engine_service_client::AlertEngineServiceClient;
use pantau_proto::v1::{AlertEvent, CheckResult, CheckStatus, ListRulesRequest};
use tokio::time::{Instant, timeout};

const ROUNDS: usize = 500;
const WARMUP: usize = 20;

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    c.alert_engine.default_rules = false;
    c.alert_engine.rules = vec![AlertRuleConfig {
        id: "down".into(),
        name: None,
        expr: "check_up == 0".into(),
        severity: AlertSeverity::Critical,
        message: "{{ $labels.target }} is down".into(),
        labels: std::collections::BTreeMap::new(),
        for_: None,
        cooldown: None,
        enabled: true,
        depends_on: Vec::new(),
    }];
    c
}

fn down(target: &str) -> CheckResult {
    CheckResult {
        target_id: target.to_owned(),
        location: "bench".into(),
        status: CheckStatus::Down.into(),
        checked_at: Some(pantau_core::time::to_timestamp(std::time::SystemTime::now())),
        ..Default::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn measure(name: &str, bus: Arc<dyn Bus>, mut config: Config) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    config.data_dir = dir.path().to_owned();
    let ctx = Context::new(Arc::new(config), Arc::clone(&bus));
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = grpc.local_addr()?;
    let run = tokio::spawn(pantau_alert_engine::run(ctx.clone(), grpc));
    // Ready once gRPC answers: the engine subscribes before it serves.
    let channel = ctx
        .security
        .channel_as(&format!("http://{addr}"), "bench", "monitoring:read")?;
    timeout(Duration::from_secs(10), async {
        loop {
            if AlertEngineServiceClient::new(channel.clone())
                .list_rules(ListRulesRequest {})
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await?;
    let mut alerts = bus.subscribe(Subscription::live("pantau.alert.firing.>")).await?;
    let mut samples = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS + WARMUP {
        let target = format!("t{i}");
        let started = Instant::now();
        publish_proto(bus.as_ref(), &subject::check_result("bench", &target), &down(&target)).await?;
        loop {
            let msg = timeout(Duration::from_secs(5), alerts.next())
                .await
                .map_err(|_| anyhow::anyhow!("no alert event within 5s in round {i}"))?
                .ok_or_else(|| anyhow::anyhow!("the alert subscription ended"))?;
            let ev: AlertEvent = decode(&msg).ok_or_else(|| anyhow::anyhow!("undecodable alert event"))?;
            if ev.labels.get("target") == Some(&target) {
                break;
            }
        }
        if i >= WARMUP {
            samples.push(started.elapsed());
        }
    }
    ctx.shutdown.cancel();
    timeout(Duration::from_secs(10), run).await???;
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:>8}: {ROUNDS} rounds  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (goal p99 < 50 ms: {})",
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.90)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().unwrap_or(&Duration::ZERO)),
        if percentile(&samples, 0.99) < Duration::from_millis(50) {
            "met"
        } else {
            "missed"
        }
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    println!("alert engine latency: DOWN CheckResult published -> AlertEvent received (SQLite store)");
    let scratch = tempfile::tempdir()?;
    measure("memory", Arc::new(MemoryBus::new()), config(scratch.path())).await?;
    let nats = pantau_testkit::Nats::start().await?;
    let nats_cfg = NatsConfig {
        url: Some(nats.url()),
        ..NatsConfig::default()
    };
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&nats_cfg, "alert-engine-bench").await?);
    let mut cfg = config(scratch.path());
    cfg.nats = nats_cfg;
    measure("nats", bus, cfg).await?;
    Ok(())
}
