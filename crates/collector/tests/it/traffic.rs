//! The interface traffic history in SQLite and PostgreSQL: minutes and
//! hours with exact 95th percentiles, the range's p95, retention, the bound
//! on interfaces per router, and a restart that keeps it all; and rates
//! polled from a real SNMP agent (`snmpd`) whose counters move.

#![allow(clippy::float_cmp)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pantau_collector::MIGRATIONS;
use pantau_collector::routers::RouterPoller;
use pantau_collector::traffic::{Resolution, TrafficHistory};
use pantau_config::{CollectorConfig, DatabaseConfig, HistoryConfig, RouterConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::store::Store;

const MIN: u64 = 60;

fn cfg() -> HistoryConfig {
    HistoryConfig {
        max_interfaces_per_router: 2,
        ..HistoryConfig::default()
    }
}

/// 2026-01-15T10:00:00Z, an hour's start.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_768_471_200)
}

fn at(secs: u64) -> SystemTime {
    t0() + Duration::from_secs(secs)
}

async fn contract(db: &DatabaseConfig, dir: &std::path::Path) {
    let store = Store::connect(db, dir, "collector", MIGRATIONS).await.unwrap();
    let h = TrafficHistory::new(store.clone(), &cfg());
    // Minute 0: twenty rates 1..=20 Mbit/s in, a constant 1 kbit/s out.
    for i in 1..=20_u32 {
        h.record("edge", "ether1", at(u64::from(i)), f64::from(i) * 1e6, 1e3);
    }
    // Minute 1: one rate; minute 3 (after a gap): one rate.
    h.record("edge", "ether1", at(MIN + 5), 2e6, 3e3);
    h.record("edge", "ether1", at(3 * MIN + 5), 4e6, 0.0);
    // Hostile rates are left out, never stored.
    for bad in [f64::NAN, f64::INFINITY, -1.0] {
        h.record("edge", "ether1", at(10), bad, 1.0);
        h.record("edge", "ether1", at(10), 1.0, bad);
    }
    // A third interface is beyond the bound of 2: left out.
    h.record("edge", "ether2", at(5), 7.0, 7.0);
    h.record("edge", "ether3", at(5), 9.0, 9.0);
    h.record("edge", "", at(5), 9.0, 9.0);
    h.record("edge", &"x".repeat(300), at(5), 9.0, 9.0);
    // Another router has its own bound.
    h.record("core", "ether3", at(5), 5.0, 5.0);

    // Not written yet, already visible.
    let open = h
        .query("edge", "ether1", t0(), at(3600), Resolution::Minute)
        .await
        .unwrap();
    assert_eq!(open.len(), 3);

    // The current minute (3) stays open; minutes 0 and 1 are written.
    assert_eq!(
        h.flush(at(3 * MIN + 30)).await.unwrap(),
        4,
        "ether1 ×2, ether2, core/ether3"
    );
    let minutes = h
        .query("edge", "ether1", t0(), at(3600), Resolution::Minute)
        .await
        .unwrap();
    assert_eq!(
        minutes.iter().map(|p| p.start).collect::<Vec<_>>(),
        [t0(), at(MIN), at(3 * MIN)]
    );
    let m0 = minutes[0].rollup;
    assert_eq!(m0.samples, 20);
    assert_eq!((m0.rx.min, m0.rx.max), (1e6, 20e6));
    assert!((m0.rx_avg() - 10.5e6).abs() < 1e-3, "{m0:?}");
    assert_eq!(m0.rx.p95, 19e6, "nearest rank: the 19th of 20");
    assert_eq!((m0.tx.min, m0.tx.max, m0.tx.p95), (1e3, 1e3, 1e3));
    assert_eq!(minutes[1].rollup.samples, 1);

    // The hour: all 22 rates; its p95 that of the three minutes' averages
    // (10.5, 2 and 4 Mbit/s): the 3rd of 3.
    let hours = h
        .query("edge", "ether1", t0(), at(3600), Resolution::Hour)
        .await
        .unwrap();
    assert_eq!(hours.len(), 1);
    let hr = hours[0].rollup;
    assert_eq!(hr.samples, 22);
    assert_eq!((hr.rx.min, hr.rx.max), (1e6, 20e6));
    assert!((hr.rx.p95 - 10.5e6).abs() < 1e-3, "{hr:?}");
    assert_eq!(hr.tx.p95, 3e3);

    // The range's p95 over the per-minute averages.
    let now = at(3 * MIN + 30);
    let b = h
        .burst("edge", "ether1", t0()..at(3600), now, Resolution::Minute, &minutes)
        .await
        .unwrap();
    assert_eq!((b.basis, b.samples), (Resolution::Minute, 3));
    assert!((b.rx_p95 - 10.5e6).abs() < 1e-3);
    assert_eq!(b.tx_p95, 3e3);
    // Older than the minute retention: over the hours' averages.
    let later = t0() + cfg().minute_retention + Duration::from_secs(3600);
    let b = h
        .burst("edge", "ether1", t0()..at(3600), later, Resolution::Minute, &minutes)
        .await
        .unwrap();
    assert_eq!((b.basis, b.samples), (Resolution::Hour, 1));

    // The bound: ether2 kept, ether3 left out; core's ether3 kept.
    let q = |r: &'static str, i: &'static str| {
        let h = &h;
        async move { h.query(r, i, t0(), at(3600), Resolution::Minute).await.unwrap().len() }
    };
    assert_eq!(q("edge", "ether2").await, 1);
    assert_eq!(q("edge", "ether3").await, 0);
    assert_eq!(q("core", "ether3").await, 1);

    // Shutdown writes the open minute; a new process sees everything.
    assert_eq!(h.flush_all().await.unwrap(), 1);
    drop(h);
    store.close().await;
    let store = Store::connect(db, dir, "collector", MIGRATIONS).await.unwrap();
    let h = TrafficHistory::new(store.clone(), &cfg());
    let again = h
        .query("edge", "ether1", t0(), at(3600), Resolution::Minute)
        .await
        .unwrap();
    assert_eq!(again, minutes, "a restart keeps the history");
    // A minute split by the restart adds up exactly (its p95 the larger part's).
    h.record("edge", "ether1", at(3 * MIN + 40), 8e6, 0.0);
    h.flush_all().await.unwrap();
    let split = h
        .query("edge", "ether1", at(3 * MIN), at(4 * MIN), Resolution::Minute)
        .await
        .unwrap();
    let s = split[0].rollup;
    assert_eq!((s.samples, s.rx.min, s.rx.max, s.rx.p95), (2, 4e6, 8e6, 8e6));
    assert!((s.rx_avg() - 6e6).abs() < 1e-3);
    let hr = h
        .query("edge", "ether1", t0(), at(3600), Resolution::Hour)
        .await
        .unwrap()[0]
        .rollup;
    assert_eq!(hr.samples, 23, "the hour recomputed from its minutes");

    // Retention: a flush far later deletes minutes, then hours.
    let past_minutes = t0() + cfg().minute_retention + Duration::from_secs(3600);
    h.flush(past_minutes).await.unwrap();
    assert!(
        h.query("edge", "ether1", t0(), at(3600), Resolution::Minute)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        h.query("edge", "ether1", t0(), at(3600), Resolution::Hour)
            .await
            .unwrap()
            .len(),
        1
    );
    h.flush(t0() + cfg().hour_retention + Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(
        h.query("edge", "ether1", t0(), at(3600), Resolution::Hour)
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    contract(&DatabaseConfig::default(), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let pg = pantau_testkit::Postgres::start().await.expect("PostgreSQL starts");
    let dir = tempfile::tempdir().unwrap();
    let db = DatabaseConfig {
        url: Some(pg.url()),
        schema_prefix: "collector_traffic_test".into(),
        ..DatabaseConfig::default()
    };
    contract(&db, dir.path()).await;
}

/// A real agent (net-snmp's snmpd, this machine's interfaces): loopback
/// traffic between polls moves `lo`'s counters, and the poller's rates land
/// in the history with the minute's figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snmp_polls_fill_the_history() {
    let agent = pantau_testkit::Snmpd::start().await.unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&DatabaseConfig::default(), dir.path(), "collector", MIGRATIONS)
        .await
        .unwrap();
    let traffic = Arc::new(TrafficHistory::new(store.clone(), &HistoryConfig::default()));
    let mut r = RouterConfig::new("edge", agent.addr().to_string());
    r.interval = Some(Duration::from_secs(5));
    r.timeout = Some(Duration::from_secs(2));
    r.retries = Some(1);
    let mut poller = RouterPoller::new(&r, &CollectorConfig::default(), Arc::new(MemoryBus::new()))
        .with_traffic(Arc::clone(&traffic));
    let started = SystemTime::now();
    // Traffic on loopback between polls: 4 MiB through a local socket each
    // time, over 3 s (snmpd caches its table for a few seconds).
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let src = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for n in 0..4 {
        let (o, _) = poller.poll_once().await;
        assert!(o.up, "poll {n}: {:?}\n{}", o.events, agent.log_tail());
        for _ in 0..1024 {
            src.send_to(&[7_u8; 4096], sink.local_addr().unwrap()).unwrap();
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    traffic.flush_all().await.unwrap();
    let to = SystemTime::now() + Duration::from_secs(60);
    let points = traffic
        .query("edge", "lo", started - Duration::from_secs(60), to, Resolution::Minute)
        .await
        .unwrap();
    let samples: u64 = points.iter().map(|p| p.rollup.samples).sum();
    assert_eq!(samples, 3, "the first poll gives no rate: {points:?}");
    let peak = points.iter().map(|p| p.rollup.rx.max).fold(0.0, f64::max);
    // 4 MiB (33 Mbit) within one or two gaps of 3 s: well over 1 Mbit/s.
    assert!(peak > 1e6, "lo's inbound rate: {points:?}");
    for p in &points {
        let m = p.rollup;
        assert!(
            m.rx.min <= m.rx_avg() && m.rx_avg() <= m.rx.max && m.rx.p95 <= m.rx.max,
            "{m:?}"
        );
    }
    store.close().await;
}
