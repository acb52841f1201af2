//! Two engines of one cluster on one bus: only the evaluating one (the
//! primary's) changes alerts; the other keeps copies of them from their
//! events, refuses changes naming the primary, and, once it is primary
//! itself, takes the alerts over: a fault still there pages no one again,
//! its recovery resolves the same alert.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pantau_alert_engine::cluster::{mirror_consumer, mirror_loop};
use pantau_alert_engine::facts::Fact;
use pantau_alert_engine::lifecycle::State;
use pantau_alert_engine::series::Value;
use pantau_alert_engine::store::AlertStore;
use pantau_alert_engine::{Engine, EngineError};
use pantau_config::{AlertEngineConfig, AlertRuleConfig, AlertSeverity, DatabaseConfig};
use pantau_core::bus::Bus;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::cluster::{Cluster, Role};
use pantau_core::store::Store;
use tokio_util::sync::CancellationToken;

fn t(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

fn cpu(v: f64, at: u64) -> Fact {
    Fact {
        name: "cpu_usage".into(),
        labels: [("host".to_owned(), "a".to_owned())].into(),
        value: Value::Num(v),
        at: t(at),
    }
}

fn cfg() -> AlertEngineConfig {
    AlertEngineConfig {
        default_rules: false,
        rules: vec![AlertRuleConfig {
            id: "high-cpu".into(),
            name: None,
            expr: "cpu_usage > 80".into(),
            severity: AlertSeverity::Critical,
            message: "CPU {{ $value }}% on {{ $labels.host }}".into(),
            labels: std::collections::BTreeMap::new(),
            for_: None,
            cooldown: None,
            enabled: true,
            depends_on: Vec::new(),
        }],
        ..AlertEngineConfig::default()
    }
}

async fn engine(dir: &tempfile::TempDir, bus: &Arc<dyn Bus>, instance: &str, cluster: &Cluster) -> Arc<Engine> {
    let db = Store::connect(
        &DatabaseConfig::default(),
        dir.path(),
        "alert-engine",
        pantau_alert_engine::MIGRATIONS,
    )
    .await
    .unwrap();
    let e = Engine::new(cfg(), AlertStore::new(db), Arc::clone(bus)).await.unwrap();
    Arc::new(e.with_cluster(instance, cluster.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_copies_the_primarys_alerts_and_takes_them_over_without_a_second_page() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary = Cluster::new(Role::Primary { epoch: 1 });
    let dependent = Cluster::new(Role::Dependent {
        primary: "jkt-1".into(),
    });
    let jkt = engine(&d1, &bus, "jkt-1", &primary).await;
    let bdg = engine(&d2, &bus, "bdg-1", &dependent).await;
    assert!(jkt.evaluates() && !bdg.evaluates());
    let mirror = mirror_consumer(&bus, "bdg-1");
    let ready = mirror.readiness();
    let stop = CancellationToken::new();
    let copying = tokio::spawn(mirror_loop(Arc::clone(&bdg), mirror, stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while ready.check().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the mirror subscribes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The primary fires; the dependent keeps the same alert.
    let fired = jkt.ingest(vec![cpu(95.0, 0)], t(0)).await.unwrap();
    assert_eq!(fired.len(), 1);
    let id = fired[0].alert.id.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let copy = loop {
        if let Some(a) = bdg.store().get(&id).await.unwrap() {
            break a;
        }
        assert!(tokio::time::Instant::now() < deadline, "the dependent copies the alert");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(copy.state, State::Firing);
    assert_eq!(copy.fingerprint, fired[0].alert.fingerprint);
    assert_eq!(copy.summary, "CPU 95% on a");

    // Changes are made on the primary.
    let e = bdg.acknowledge(&id, "ops", "", t(1)).await.unwrap_err();
    assert!(matches!(&e, EngineError::NotEvaluating(p) if p == "jkt-1"), "{e}");
    assert!(e.to_string().contains("jkt-1"));

    // Failover: the dependent becomes primary and adopts the open alert.
    dependent.set(Role::Primary { epoch: 2 });
    assert_eq!(bdg.adopt(t(10)).await.unwrap(), 1);
    let still = bdg.ingest(vec![cpu(96.0, 11)], t(11)).await.unwrap();
    assert!(still.is_empty(), "the fault still there is the same alert: {still:?}");
    let recovered = bdg.ingest(vec![cpu(10.0, 12)], t(12)).await.unwrap();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(
        (recovered[0].alert.id.as_str(), recovered[0].transition.state),
        (id.as_str(), State::Resolved)
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), copying)
        .await
        .unwrap()
        .unwrap();
}
