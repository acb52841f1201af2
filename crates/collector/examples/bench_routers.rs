//! `make bench-routers`: interfaces polled per second against a real
//! `snmpd` on loopback (pantau-testkit), beside `snmpbulkwalk` walking the
//! same ifTable + ifXTable on the same agent in the same run.
//!
//! A "poll" is the collector's whole poll of a router (system group,
//! ifTable, ifXTable, the default-route subtrees) plus publishing its
//! samples, info and events on the in-process bus; "interfaces polled" is
//! interfaces × polls. Each phase is bounded by `--polls` (default 2000) and
//! `--seconds` (default 15, at most 60), whichever comes first.
//!
//! Phases: v2c sequential, v3 authPriv sequential, v2c with `--routers`
//! (default 8) pollers at once against the one agent, and `snmpbulkwalk`
//! (one process per walk, as an operator's script would run it); then the
//! RouterOS API and the RouterOS REST API against pantau-testkit's
//! simulator with `--sim-interfaces` (default 48) interfaces.
//! `--mode snmp|routeros|all` (default all) picks the phases.

use std::sync::Arc;
use std::time::Duration;

use pantau_collector::routers::RouterPoller;
use pantau_config::{
    CollectorConfig, RouterConfig, RouterDriver, SnmpAuthProtocol, SnmpConfig, SnmpPrivProtocol, SnmpVersion,
};
use pantau_core::bus::memory::MemoryBus;
use pantau_testkit::{ROUTEROS_PASSWORD, ROUTEROS_USER, RouterOsSim, SimInterface, Snmpd};
use tokio::time::Instant;

struct Args {
    polls: usize,
    seconds: u64,
    routers: usize,
    sim_interfaces: usize,
    mode: String,
}

fn args() -> Args {
    let mut a = Args {
        polls: 2000,
        seconds: 15,
        routers: 8,
        sim_interfaces: 48,
        mode: "all".to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} N"))
        };
        match arg.as_str() {
            "--polls" => a.polls = num("--polls"),
            "--seconds" => a.seconds = num("--seconds") as u64,
            "--routers" => a.routers = num("--routers"),
            "--sim-interfaces" => a.sim_interfaces = num("--sim-interfaces"),
            "--mode" => a.mode = it.next().unwrap_or_default(),
            other => panic!(
                "unknown argument {other}; use --polls N --seconds N --routers N --sim-interfaces N --mode snmp|routeros|all"
            ),
        }
    }
    assert!(a.seconds <= 60, "--seconds is capped at 60");
    assert!((1..=64).contains(&a.routers), "--routers is 1..=64");
    assert!((1..=4096).contains(&a.sim_interfaces), "--sim-interfaces is 1..=4096");
    assert!(
        ["snmp", "routeros", "all"].contains(&a.mode.as_str()),
        "--mode is snmp, routeros or all"
    );
    a
}

fn router(id: &str, agent: &Snmpd, v3: bool) -> RouterConfig {
    let mut r = RouterConfig::new(id, agent.addr().to_string());
    r.interval = Some(Duration::from_secs(60));
    r.timeout = Some(Duration::from_secs(2));
    r.retries = Some(1);
    if v3 {
        r.snmp = SnmpConfig {
            version: SnmpVersion::V3,
            community: None,
            user: Some(pantau_testkit::V3_USER.into()),
            auth_protocol: Some(SnmpAuthProtocol::Sha),
            auth_password: Some(pantau_testkit::V3_AUTH_PASSWORD.into()),
            priv_protocol: Some(SnmpPrivProtocol::Aes),
            priv_password: Some(pantau_testkit::V3_PRIV_PASSWORD.into()),
        };
    }
    r
}

struct Phase {
    polls: usize,
    interfaces: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    failed: usize,
}

impl Phase {
    fn print(&self, name: &str) {
        let secs = self.elapsed.as_secs_f64();
        let mut l = self.latencies.clone();
        l.sort_unstable();
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .copied()
        };
        let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.2} ms", d.as_secs_f64() * 1000.0));
        println!(
            "{name:<34} {:>6} polls in {secs:>6.2} s  {:>8.1} polls/s  {:>9.1} interfaces/s  p50 {}  p99 {}  failed {}",
            self.polls,
            self.polls as f64 / secs,
            self.interfaces as f64 / secs,
            ms(pct(0.50)),
            ms(pct(0.99)),
            self.failed,
        );
    }
}

async fn sequential(agent: &Snmpd, v3: bool, a: &Args) -> Phase {
    sequential_with(&router("bench", agent, v3), a, &agent.log_tail()).await
}

async fn sequential_with(cfg: &RouterConfig, a: &Args, log: &str) -> Phase {
    let bus = Arc::new(MemoryBus::new());
    let mut p = RouterPoller::new(cfg, &CollectorConfig::default(), bus);
    // Warm-up: the client's socket and, for v3, engine discovery; the
    // RouterOS login.
    let (warm, _) = p.poll_once().await;
    assert!(warm.up, "the warm-up poll failed: {:?}\n{log}", warm.events);
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let started = Instant::now();
    let mut phase = Phase {
        polls: 0,
        interfaces: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(a.polls),
        failed: 0,
    };
    while phase.polls < a.polls && Instant::now() < deadline {
        let t = Instant::now();
        let (o, _) = p.poll_once().await;
        phase.latencies.push(t.elapsed());
        phase.polls += 1;
        phase.interfaces += o.samples.len();
        phase.failed += usize::from(!o.up);
    }
    phase.elapsed = started.elapsed();
    phase
}

async fn concurrent(agent: &Snmpd, a: &Args) -> Phase {
    let bus = Arc::new(MemoryBus::new());
    let col = CollectorConfig::default();
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let per = a.polls.div_ceil(a.routers);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..a.routers {
        let mut p = RouterPoller::new(&router(&format!("bench{n}"), agent, false), &col, bus.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = (0usize, 0usize, Vec::new(), 0usize);
            while out.0 < per && Instant::now() < deadline {
                let t = Instant::now();
                let (o, _) = p.poll_once().await;
                out.2.push(t.elapsed());
                out.0 += 1;
                out.1 += o.samples.len();
                out.3 += usize::from(!o.up);
            }
            out
        }));
    }
    let mut phase = Phase {
        polls: 0,
        interfaces: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        failed: 0,
    };
    for t in tasks {
        let (polls, ifs, lat, failed) = t.await.expect("a poller task panicked");
        phase.polls += polls;
        phase.interfaces += ifs;
        phase.latencies.extend(lat);
        phase.failed += failed;
    }
    phase.elapsed = started.elapsed();
    phase
}

/// `snmpbulkwalk` of ifTable then ifXTable, one process each, per "poll".
async fn bulkwalk(agent: &Snmpd, interfaces: usize, a: &Args) -> Phase {
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let started = Instant::now();
    let mut phase = Phase {
        polls: 0,
        interfaces: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        failed: 0,
    };
    let persist = tempfile_dir();
    while phase.polls < a.polls && Instant::now() < deadline {
        let t = Instant::now();
        let mut ok = true;
        for table in ["1.3.6.1.2.1.2.2.1", "1.3.6.1.2.1.31.1.1.1"] {
            let out = tokio::process::Command::new("snmpbulkwalk")
                .args(["-v2c", "-c", pantau_testkit::SNMP_COMMUNITY, "-Cr50", "-On", "-Oq"])
                .arg(agent.addr().to_string())
                .arg(table)
                .env("MIBS", "")
                .env("SNMP_PERSISTENT_DIR", &persist)
                .output()
                .await
                .expect("snmpbulkwalk not found: install the Debian package snmp (apt-get install snmp)");
            ok &= out.status.success() && !out.stdout.is_empty();
        }
        phase.latencies.push(t.elapsed());
        phase.polls += 1;
        phase.interfaces += interfaces;
        phase.failed += usize::from(!ok);
    }
    phase.elapsed = started.elapsed();
    phase
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pantau-bench-snmp-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("cannot create a temporary directory");
    d
}

/// The RouterOS API and REST drivers against the simulator.
async fn routeros(a: &Args) {
    let sim = RouterOsSim::start_with_rest().await.unwrap_or_else(|e| panic!("{e}"));
    sim.with_state(|s| {
        let have = s.interfaces.len();
        for n in have..a.sim_interfaces {
            let id = u32::try_from(n).expect("at most 4096") + 0x100;
            let mut i = SimInterface::new(id, &format!("vlan{n}"), "vlan", "");
            i.rx_byte = 1_000_000 * u64::from(id);
            s.interfaces.push(i);
        }
    });
    println!(
        "RouterOS simulator: API at {}, REST at {}, {} interfaces",
        sim.api_addr(),
        sim.rest_addr().expect("REST is served"),
        a.sim_interfaces.max(4)
    );
    for (driver, addr, name) in [
        (RouterDriver::Routeros, sim.api_addr(), "pantau RouterOS API, 1 router"),
        (
            RouterDriver::RouterosRest,
            sim.rest_addr().expect("REST is served"),
            "pantau RouterOS REST, 1 router",
        ),
    ] {
        let mut r = RouterConfig::routeros("bench", addr.to_string(), driver, ROUTEROS_USER, ROUTEROS_PASSWORD);
        r.interval = Some(Duration::from_secs(60));
        r.timeout = Some(Duration::from_secs(2));
        sequential_with(&r, a, "").await.print(name);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    if a.mode != "snmp" {
        routeros(&a).await;
    }
    if a.mode == "routeros" {
        return;
    }
    let agent = Snmpd::start().await.unwrap_or_else(|e| panic!("{e}"));
    println!(
        "snmpd at {} (this machine's interfaces); at most {} polls or {} s per phase",
        agent.addr(),
        a.polls,
        a.seconds
    );
    let v2c = sequential(&agent, false, &a).await;
    let interfaces = v2c.interfaces / v2c.polls.max(1);
    println!("interfaces per poll: {interfaces}");
    v2c.print("pantau v2c, 1 router");
    sequential(&agent, true, &a)
        .await
        .print("pantau v3 authPriv SHA/AES, 1 router");
    concurrent(&agent, &a)
        .await
        .print(&format!("pantau v2c, {} routers at once", a.routers));
    bulkwalk(&agent, interfaces, &a)
        .await
        .print("snmpbulkwalk v2c ifTable+ifXTable");
    let _ = std::fs::remove_dir_all(tempfile_dir());
}
