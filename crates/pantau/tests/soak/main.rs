//! `make soak-failover`: kills the primary of a three-instance cluster over
//! and over at random moments (separate `pantau all` processes, a real
//! nats-server) and reports promotions, split-brain samples (two instances
//! primary at once: must be 0), failovers slower than two heartbeat
//! intervals, and lost results (must be 0).
//!
//! Bounded by `SOAK_ROUNDS` (default 50) and `SOAK_SECONDS` (default 900).
//! Not part of `make test` (`test = false`): run with
//! `cargo test -p pantau --test soak -- --nocapture`.

#![allow(dead_code)]

#[path = "../it/cluster.rs"]
mod cluster;
#[path = "../it/support.rs"]
mod support;

use std::collections::HashMap;
use std::time::Duration;

use pantau_testkit::{Nats, free_port};
use tokio::time::Instant;

use cluster::{HB, Instance, listening_port, status, targets};

/// A small xorshift generator seeded from the clock: random timing without
/// a dependency.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn instances_of(i: &Instance) -> Vec<serde_json::Value> {
    let url = format!("http://127.0.0.1:{}/sync/api/instances", i.gateway);
    let Ok(r) = support::http().get(url).send().await else {
        return Vec::new();
    };
    r.json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| v["instances"].as_array().cloned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_failover() {
    let rounds = env_u64("SOAK_ROUNDS", 50);
    let budget = Duration::from_secs(env_u64("SOAK_SECONDS", 900));
    let started = Instant::now();
    let mut rng = Rng::new();
    let nats = Nats::start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let order = "jkt-1,bdg-1,sby-1";
    let up = listening_port();
    let seed = Instance::new(
        root.path(),
        "jkt-1",
        "jkt",
        &nats.url(),
        None,
        order,
        &targets(up, free_port()),
    );
    let cluster = [
        seed.clone(),
        Instance::new(
            root.path(),
            "bdg-1",
            "bdg",
            &nats.url(),
            Some(&seed.sync_url()),
            order,
            "",
        ),
        Instance::new(
            root.path(),
            "sby-1",
            "sby",
            &nats.url(),
            Some(&seed.sync_url()),
            order,
            "",
        ),
    ];
    let mut procs: Vec<Option<support::Pantau>> = cluster.iter().map(|i| Some(i.start())).collect();

    let (mut promotions, mut split_brain, mut slow, mut no_promotion) = (0u64, 0u64, 0u64, 0u64);
    let mut worst = Duration::ZERO;
    let mut round = 0;
    while round < rounds && started.elapsed() < budget {
        round += 1;
        tokio::time::sleep(rng.millis(500, 3000)).await;
        // Who leads now (wait for the cluster to settle on one).
        let mut leader = None;
        let settle = Instant::now();
        while leader.is_none() && settle.elapsed() < Duration::from_secs(20) {
            let mut primaries = Vec::new();
            for (n, i) in cluster.iter().enumerate() {
                if status(i).await.is_some_and(|v| v["role"] == "primary") {
                    primaries.push(n);
                }
            }
            if primaries.len() > 1 {
                split_brain += 1;
            }
            if primaries.len() == 1 {
                leader = Some(primaries[0]);
            } else {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let Some(leader) = leader else {
            no_promotion += 1;
            println!("round {round}: no primary to kill");
            continue;
        };
        // Crash it.
        drop(procs[leader].take());
        let killed = Instant::now();
        let mut took = None;
        while killed.elapsed() < HB * 5 {
            let mut primaries = Vec::new();
            for (n, i) in cluster.iter().enumerate() {
                if n != leader && status(i).await.is_some_and(|v| v["role"] == "primary") {
                    primaries.push(n);
                }
            }
            if primaries.len() > 1 {
                split_brain += 1;
            }
            if primaries.len() == 1 && took.is_none() {
                took = Some((killed.elapsed(), primaries[0]));
            }
            if took.is_some() && killed.elapsed() > took.unwrap().0 + HB {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        match took {
            Some((t, new)) => {
                promotions += 1;
                worst = worst.max(t);
                if t > HB * 2 {
                    slow += 1;
                }
                println!(
                    "round {round}: killed {}, {} promoted after {} ms",
                    cluster[leader].name,
                    cluster[new].name,
                    t.as_millis()
                );
            }
            None => {
                no_promotion += 1;
                println!("round {round}: killed {}, nobody promoted", cluster[leader].name);
            }
        }
        tokio::time::sleep(rng.millis(0, 2000)).await;
        procs[leader] = Some(cluster[leader].start());
    }

    // Settle: every buffer drained, then count each instance's results in
    // every store that accepted some of them.
    let settle = Instant::now();
    let mut produced: HashMap<String, u64> = HashMap::new();
    while settle.elapsed() < Duration::from_secs(60) {
        let mut drained = true;
        for i in &cluster {
            match status(i).await {
                Some(v) if v["buffered_results"] == 0 && v["primary_reachable"] == true => {
                    produced.insert(i.name.to_owned(), v["produced_seq"].as_u64().unwrap_or(0));
                }
                _ => drained = false,
            }
        }
        if drained {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut received: HashMap<String, u64> = HashMap::new();
    for i in &cluster {
        for row in instances_of(i).await {
            *received.entry(row["id"].as_str().unwrap_or("").to_owned()).or_default() +=
                row["results_received"].as_u64().unwrap_or(0);
        }
    }
    let (mut lost, mut twice) = (0u64, 0u64);
    for (name, p) in &produced {
        let r = received.get(name).copied().unwrap_or(0);
        lost += p.saturating_sub(r);
        twice += r.saturating_sub(*p);
        println!("{name}: produced {p}, accepted {r}");
    }
    println!(
        "SOAK rounds={round} promotions={promotions} split_brain={split_brain} no_promotion={no_promotion} \
         slower_than_2_heartbeats={slow} worst_failover_ms={} lost_results={lost} accepted_by_two_primaries={twice} \
         elapsed_s={}",
        worst.as_millis(),
        started.elapsed().as_secs()
    );
    assert_eq!(produced.len(), 3, "every instance drained its buffer");
    assert_eq!(split_brain, 0, "split brain");
    assert_eq!(lost, 0, "lost results");
    assert_eq!(no_promotion, 0, "rounds without a promotion");
    drop(procs);
}
