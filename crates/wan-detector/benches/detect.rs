//! `make bench-wan-detector`: how long the WAN detector takes to judge one
//! router, for N routers × M interfaces each, with a full traffic window per
//! interface (`traffic.window` samples) and the default patterns and ISPs.
//!
//! For each size it measures, in one process on the in-process bus:
//! - `detect`: `DetectWan(force_refresh)` per router (judge all methods,
//!   build the answer), p50 / p99 / max over every router, several rounds;
//! - `ingest`: taking in one `RouterInfo` (judging when the cache expired);
//! - `cached`: `DetectWan` answered from the cache.
//!
//! Bounded: at most `ROUNDS` passes over the routers and 20 s per size.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pantau_config::WanDetectorConfig;
use pantau_core::bus::Bus;
use pantau_core::bus::memory::MemoryBus;
use pantau_proto::v1::{InterfaceSample, RouterInfo, RouterInterface};
use pantau_wan_detector::Detector;
use tokio::time::Instant;

const SIZES: [(usize, usize); 4] = [(10, 8), (100, 24), (1000, 48), (200, 256)];
const ROUNDS: usize = 5;
const BUDGET: Duration = Duration::from_secs(20);

fn info(router: usize, ifaces: usize) -> RouterInfo {
    let comments = ["Indihome", "Biznet", "", "LAN", "XL Home", ""];
    RouterInfo {
        router_id: format!("r{router}"),
        router_name: format!("router {router}"),
        default_route_if_indexes: vec![1],
        route_table: "inetCidrRouteTable".into(),
        interfaces: (1..=ifaces)
            .map(|i| RouterInterface {
                if_index: i as u32,
                if_name: if i == 2 {
                    "pppoe-out1".into()
                } else {
                    format!("ether{i}")
                },
                comment: comments[i % comments.len()].into(),
                if_type: 6,
                oper_up: true,
                admin_up: true,
                addresses: vec![format!("10.{}.{}.1/24", router % 250, i % 250)],
                ..RouterInterface::default()
            })
            .collect(),
        ..RouterInfo::default()
    }
}

fn sample(router: usize, i: usize) -> InterfaceSample {
    let (rx, tx) = if i <= 2 { (50e6, 3e6) } else { (3e6, 40e6) };
    InterfaceSample {
        router_id: format!("r{router}"),
        if_index: i as u32,
        if_name: format!("ether{i}"),
        in_bits_per_second: rx,
        out_bits_per_second: tx,
        rates_valid: true,
        oper_up: true,
        admin_up: true,
        ..InterfaceSample::default()
    }
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("wan-detector: judging latency per router (cargo bench: optimized build, in-process bus)");
    println!(
        "{:>8} {:>7} | {:>28} | {:>20} | {:>10}",
        "routers", "ifaces", "detect p50 / p99 / max", "ingest p50 / p99", "cached p50"
    );
    for (n, m) in SIZES {
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let cfg = WanDetectorConfig::default();
        let d = Detector::new(&cfg, bus).expect("default config compiles");
        let now = SystemTime::now();
        for r in 0..n {
            for i in 1..=m {
                for _ in 0..cfg.traffic.window {
                    d.on_sample(sample(r, i), now);
                }
            }
        }
        let started = Instant::now();
        let mut ingest = Vec::with_capacity(n);
        for r in 0..n {
            let info = info(r, m);
            let t = Instant::now();
            d.on_info(info, now).await;
            ingest.push(t.elapsed());
        }
        let mut detect = Vec::with_capacity(n * ROUNDS);
        let mut cached = Vec::with_capacity(n * ROUNDS);
        'rounds: for _ in 0..ROUNDS {
            for r in 0..n {
                if started.elapsed() > BUDGET {
                    break 'rounds;
                }
                let id = format!("r{r}");
                let t = Instant::now();
                let answer = d.detect(&id, true, now).await.expect("router is known");
                detect.push(t.elapsed());
                assert!(answer.interfaces[0].is_wan, "ether1 carries the default route");
                let t = Instant::now();
                let _ = d.detect(&id, false, now).await.expect("router is known");
                cached.push(t.elapsed());
            }
        }
        let max = detect.iter().max().copied().unwrap_or_default();
        println!(
            "{n:>8} {m:>7} | {:>28} | {:>20} | {:>10}   ({} judgements)",
            format!(
                "{} / {} / {}",
                us(pct(&mut detect, 0.5)),
                us(pct(&mut detect, 0.99)),
                us(max)
            ),
            format!("{} / {}", us(pct(&mut ingest, 0.5)), us(pct(&mut ingest, 0.99))),
            us(pct(&mut cached, 0.5)),
            detect.len()
        );
    }
}
