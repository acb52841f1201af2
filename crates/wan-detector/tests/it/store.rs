//! The last published answer per router, kept across restarts: the same
//! contract on SQLite and PostgreSQL, and a restarted detector that does not
//! announce an unchanged answer again.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use pantau_config::DatabaseConfig;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, Subscription, publish_proto, subject};
use pantau_core::store::Store;
use pantau_wan_detector::store::{MIGRATIONS, WanStore};

use crate::support::{Running, config, mikrotik};

async fn next(events: &mut pantau_core::bus::MessageStream, wait: u64) -> Option<pantau_core::bus::Message> {
    tokio::time::timeout(Duration::from_millis(wait), events.next())
        .await
        .ok()
        .flatten()
}

async fn contract(cfg: DatabaseConfig, dir: &Path) {
    let open = || async { WanStore::new(Store::connect(&cfg, dir, "wan-detector", MIGRATIONS).await.unwrap()) };
    let s = open().await;
    assert!(s.load().await.unwrap().is_empty());
    let t = SystemTime::now();
    s.save("r1", "1:ether1:telkom", t).await.unwrap();
    s.save("r2", "", t).await.unwrap();
    s.save("r1", "1:ether1:telkom,7:pppoe-out1:biznet", t).await.unwrap();
    // Reopened (migrations run again): the latest answer of each router.
    let again = open().await;
    let got = again.load().await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got["r1"], "1:ether1:telkom,7:pppoe-out1:biznet");
    assert_eq!(got["r2"], "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_answers_persist_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    contract(DatabaseConfig::default(), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_answers_persist_on_postgres() {
    let pg = pantau_testkit::Postgres::start().await.expect("PostgreSQL starts");
    let dir = tempfile::tempdir().unwrap();
    let cfg = DatabaseConfig {
        url: Some(pg.url()),
        ..DatabaseConfig::default()
    };
    contract(cfg, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_detector_does_not_announce_an_unchanged_answer() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut events = bus
        .subscribe(Subscription::live("pantau.event.wan_detected.>"))
        .await
        .unwrap();

    let d = Running::start(config(dir.path()), Arc::clone(&bus)).await;
    publish_proto(bus.as_ref(), &subject::router_info("gw"), &mikrotik("gw"))
        .await
        .unwrap();
    assert!(
        next(&mut events, 10_000).await.is_some(),
        "the first answer is announced"
    );
    d.stop().await;

    // Same data directory, same answer: nothing announced.
    let d = Running::start(config(dir.path()), Arc::clone(&bus)).await;
    publish_proto(bus.as_ref(), &subject::router_info("gw"), &mikrotik("gw"))
        .await
        .unwrap();
    assert!(
        next(&mut events, 1_000).await.is_none(),
        "an unchanged answer was announced again"
    );
    // A changed answer is.
    let mut changed = mikrotik("gw");
    changed.default_route_if_indexes = vec![2];
    publish_proto(bus.as_ref(), &subject::router_info("gw"), &changed)
        .await
        .unwrap();
    let m = next(&mut events, 10_000)
        .await
        .expect("the changed answer is announced");
    let e: pantau_proto::v1::RouterEvent = pantau_core::bus::decode(&m).unwrap();
    assert!(e.attributes["wan_interfaces"].contains("bridge-lan"), "{e:?}");
    d.stop().await;
}
