//! The engine on an injected clock: `for` is honoured by the sweep when no
//! new sample arrives, data that stops arriving resolves its alert after the
//! staleness, and a restarted engine neither duplicates open alerts nor
//! forgets them.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use pantau_alert_engine::Engine;
use pantau_alert_engine::facts::Fact;
use pantau_alert_engine::lifecycle::State;
use pantau_alert_engine::series::Value;
use pantau_alert_engine::store::AlertStore;
use pantau_config::{AlertEngineConfig, AlertRuleConfig, AlertSeverity, DatabaseConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, Subscription};
use pantau_core::store::Store;

fn t(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

fn cpu(host: &str, v: f64, at: u64) -> Fact {
    Fact {
        name: "cpu_usage".into(),
        labels: [("host".to_owned(), host.to_owned())].into(),
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
            expr: "cpu_usage > 80 for 5m".into(),
            severity: AlertSeverity::Warning,
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

/// A SQLite store in a temp dir (kept while the dir lives).
async fn sqlite() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let db = Store::connect(
        &DatabaseConfig::default(),
        dir.path(),
        "alert-engine",
        pantau_alert_engine::MIGRATIONS,
    )
    .await
    .unwrap();
    (dir, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_staleness_and_restart() {
    let (_dir, db) = sqlite().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut events = bus.subscribe(Subscription::live("pantau.alert.>")).await.unwrap();
    let engine = Engine::new(cfg(), AlertStore::new(db.clone()), Arc::clone(&bus))
        .await
        .unwrap();

    assert!(
        engine.ingest(vec![cpu("a", 95.0, 0)], t(0)).await.unwrap().is_empty(),
        "pending"
    );
    assert!(
        engine
            .ingest(vec![cpu("a", 96.0, 200)], t(200))
            .await
            .unwrap()
            .is_empty(),
        "still pending"
    );
    assert!(engine.sweep(t(299)).await.unwrap().is_empty(), "not yet 5m");
    let fired = engine.sweep(t(300)).await.unwrap();
    assert_eq!(
        fired.len(),
        1,
        "the sweep fires it once `for` has passed, with no new sample"
    );
    assert_eq!(fired[0].alert.summary, "CPU 96% on a");
    let msg = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap();
    assert!(msg.subject.starts_with("pantau.alert.firing."), "{}", msg.subject);
    let id = fired[0].alert.id.clone();
    drop(engine);

    // A restart keeps the open alert and does not fire it again.
    let engine = Engine::new(cfg(), AlertStore::new(db.clone()), Arc::clone(&bus))
        .await
        .unwrap();
    let again = engine.ingest(vec![cpu("a", 97.0, 302)], t(302)).await.unwrap();
    assert!(again.is_empty(), "still the same alert: {again:?}");
    // No sample for longer than the staleness (5m): the condition no longer
    // holds, the alert resolves.
    assert!(
        engine.sweep(t(302 + 299)).await.unwrap().is_empty(),
        "the last sample is still current"
    );
    let resolved = engine.sweep(t(302 + 301)).await.unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        (resolved[0].alert.id.as_str(), resolved[0].alert.state),
        (id.as_str(), State::Resolved)
    );
    let stored = engine.store().get(&id).await.unwrap().unwrap();
    assert_eq!(stored.state, State::Resolved);

    // An alert left open by a rule that is now disabled is resolved at start.
    let open = engine.ingest(vec![cpu("b", 99.0, 700)], t(700)).await.unwrap();
    assert!(open.is_empty(), "pending for 5m");
    let open = engine.sweep(t(1000)).await.unwrap();
    assert_eq!(
        open.len(),
        1,
        "b fires; a (no sample since 302) stays resolved: {open:?}"
    );
    drop(engine);
    let mut off = cfg();
    off.rules[0].enabled = false;
    let engine = Engine::new(off, AlertStore::new(db.clone()), Arc::clone(&bus))
        .await
        .unwrap();
    let retired = engine.retire_orphans(t(1001)).await.unwrap();
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0].alert.state, State::Resolved);
    assert!(engine.retire_orphans(t(1002)).await.unwrap().is_empty());
    db.close().await;
}

#[tokio::test]
async fn rules_files_load_and_bad_ones_are_named() {
    let (dir, db) = sqlite().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "- id: disk\n  expr: disk_usage > 95\n  severity: critical\n- id: high-cpu\n  expr: cpu_usage > 99\n",
    )
    .unwrap();
    let mut c = cfg();
    c.default_rules = true;
    c.rules_files = vec![good];
    let engine = Engine::new(c.clone(), AlertStore::new(db.clone()), Arc::clone(&bus))
        .await
        .unwrap();
    let rules = engine.rules().await;
    let disk = rules.iter().find(|r| r.id() == "disk").expect("the file's rule");
    assert_eq!(disk.config.severity, AlertSeverity::Critical);
    let cpu = rules.iter().find(|r| r.id() == "high-cpu").unwrap();
    assert_eq!(
        cpu.config.expr, "cpu_usage > 80 for 5m",
        "inline rules come after files and win"
    );
    assert!(rules.iter().any(|r| r.id() == "endpoint-down"), "defaults are loaded");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "- id: broken\n  expr: disk_usage >\n").unwrap();
    c.rules_files = vec![bad];
    let e = Engine::new(c.clone(), AlertStore::new(db.clone()), Arc::clone(&bus))
        .await
        .err()
        .expect("a rule that does not parse stops the engine");
    assert_eq!(
        e.to_string(),
        format!(
            "rules file {}: rule `broken` does not parse at column 13: expected a condition, found the end of the expression",
            dir.path().join("bad.yaml").display()
        )
    );
    c.rules_files = vec![dir.path().join("missing.yaml")];
    let e = Engine::new(c, AlertStore::new(db.clone()), Arc::clone(&bus))
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("missing.yaml: cannot be read"), "{e}");
    db.close().await;
}

/// A rule with `and` over many series is not evaluated at every fact (that
/// would cost every series per fact) but in the next batch; one over few
/// series still at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_over_many_series_are_batched() {
    let (_dir, db) = sqlite().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut c = cfg();
    c.rules[0].id = "busy-not-in-maintenance".into();
    c.rules[0].expr = "cpu_usage > 80 and maintenance == 0".into();
    let engine = Engine::new(c, AlertStore::new(db.clone()), bus).await.unwrap();
    let maintenance = Fact {
        name: "maintenance".into(),
        labels: std::collections::BTreeMap::new(),
        value: Value::Num(0.0),
        at: t(0),
    };
    // Few series: at once.
    let fired = engine
        .ingest(vec![maintenance.clone(), cpu("h0", 95.0, 0)], t(0))
        .await
        .unwrap();
    assert_eq!(fired.len(), 1, "one host, evaluated at once");
    // Past the batching threshold: the facts are taken, the rule waits.
    let many: Vec<Fact> = (1..=pantau_alert_engine::engine::BATCH_ABOVE_SERIES)
        .map(|i| cpu(&format!("h{i}"), if i % 400 == 0 { 90.0 } else { 10.0 }, 1))
        .collect();
    engine.ingest(many, t(1)).await.unwrap();
    let waiting = engine.ingest(vec![cpu("h1", 99.0, 2)], t(2)).await.unwrap();
    assert!(waiting.is_empty(), "batched, not evaluated per fact: {waiting:?}");
    let batch = engine.evaluate_batched(t(2)).await.unwrap();
    let mut hosts: Vec<&str> = batch.iter().map(|c| c.alert.labels["host"].as_str()).collect();
    hosts.sort_unstable();
    assert_eq!(hosts, ["h1", "h400", "h800"]);
    assert!(engine.evaluate_batched(t(3)).await.unwrap().is_empty(), "nothing new");
    db.close().await;
}

/// A restart (or a rolling update) resolves nothing that still holds and
/// forgets no acknowledgement: right after start the window store is empty,
/// and a sweep that finds no data for an open alert is not a recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resolves_nothing_and_keeps_acknowledgements() {
    let (_dir, db) = sqlite().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut c = cfg();
    c.rules[0].expr = "cpu_usage > 80".into();
    // Real time: the restarted engine trusts missing data only `staleness` after its start.
    let now = SystemTime::now();
    let at = |s: u64| now + Duration::from_secs(s);
    let fact = |host: &str, v: f64, s: u64| Fact {
        at: at(s),
        ..cpu(host, v, 0)
    };
    let engine = Engine::new(c.clone(), AlertStore::new(db.clone()), Arc::clone(&bus))
        .await
        .unwrap();
    let fired = engine
        .ingest(vec![fact("a", 95.0, 0), fact("b", 96.0, 0), fact("c", 97.0, 0)], at(0))
        .await
        .unwrap();
    assert_eq!(fired.len(), 3);
    let a = fired
        .iter()
        .find(|c| c.alert.labels["host"] == "a")
        .unwrap()
        .alert
        .id
        .clone();
    engine.acknowledge(&a, "dina", "on it", at(1)).await.unwrap();
    drop(engine);

    let mut events = bus.subscribe(Subscription::live("pantau.alert.>")).await.unwrap();
    let engine = Engine::new(c, AlertStore::new(db.clone()), Arc::clone(&bus))
        .await
        .unwrap();
    assert!(engine.retire_orphans(at(2)).await.unwrap().is_empty());
    assert!(
        engine.sweep(at(3)).await.unwrap().is_empty(),
        "a sweep with no data yet resolves nothing"
    );
    // Data arrives: `a` still holds (and keeps its acknowledgement), `b` recovered.
    let changes = engine
        .ingest(vec![fact("a", 99.0, 4), fact("b", 10.0, 4)], at(4))
        .await
        .unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (changes[0].alert.labels["host"].as_str(), changes[0].alert.state),
        ("b", State::Resolved)
    );
    let stored = engine.store().get(&a).await.unwrap().unwrap();
    assert_eq!(stored.state, State::Acknowledged);
    assert_eq!(stored.acknowledged_by, "dina");
    // `c` sent nothing since the restart: still open until the staleness has passed.
    assert!(engine.sweep(at(5)).await.unwrap().is_empty());
    // The only event after the restart is b's real resolve.
    let msg = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap();
    assert!(msg.subject.starts_with("pantau.alert.resolved."), "{}", msg.subject);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.next())
            .await
            .is_err(),
        "no other alert event"
    );
    db.close().await;
}

/// The shipped `router-api-down` rule fires from what the collector
/// publishes (`router_api_up` after every poll) and resolves when the router
/// answers again; `interface-down` fires for a port that went down, not for
/// one an operator disabled or one that was always down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_router_rules_fire_from_what_pantau_publishes() {
    use pantau_alert_engine::facts::{from_iface, from_metric};
    use pantau_alert_engine::lifecycle::State;
    use pantau_proto::v1::{InterfaceSample, MetricSample};
    let (_dir, db) = sqlite().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut c = cfg();
    c.default_rules = true;
    c.rules.clear();
    let engine = Engine::new(c, AlertStore::new(db.clone()), bus).await.unwrap();
    let up = |v: f64, at: u64| MetricSample {
        name: "router_api_up".into(),
        value: v,
        labels: [("router".to_owned(), "core1".to_owned())].into(),
        observed_at: Some(pantau_core::time::to_timestamp(t(at))),
        source: "core1".into(),
    };
    let mut fired = Vec::new();
    for at in (0..=90).step_by(30) {
        let f = from_metric(&up(0.0, at), t(at)).into_iter().collect();
        fired.extend(engine.ingest(f, t(at)).await.unwrap());
    }
    let down: Vec<_> = fired.iter().filter(|c| c.alert.rule_id == "router-api-down").collect();
    assert_eq!(down.len(), 1, "fires once, after its 1m `for`: {fired:?}");
    assert_eq!(down[0].alert.state, State::Firing);
    assert_eq!(down[0].alert.labels["router"], "core1");
    let back = engine
        .ingest(from_metric(&up(1.0, 120), t(120)).into_iter().collect(), t(120))
        .await
        .unwrap();
    assert!(
        back.iter()
            .any(|c| c.alert.rule_id == "router-api-down" && c.alert.state == State::Resolved),
        "{back:?}"
    );

    // ge-1 went down while enabled; ge-2 is disabled; ge-3 is enabled and
    // was always down (never seen up): only ge-1 is a change.
    let port = |name: &str, admin_up: bool, went_down: bool| InterfaceSample {
        router_id: "sw1".into(),
        if_name: name.into(),
        oper_up: false,
        admin_up,
        went_down,
        ..Default::default()
    };
    let changes = engine
        .ingest(
            [
                from_iface(&port("ge-1", true, true), t(130)),
                from_iface(&port("ge-2", false, false), t(130)),
                from_iface(&port("ge-3", true, false), t(130)),
            ]
            .concat(),
            t(130),
        )
        .await
        .unwrap();
    let ifaces: Vec<&str> = changes
        .iter()
        .filter(|c| c.alert.rule_id == "interface-down")
        .map(|c| c.alert.labels["interface"].as_str())
        .collect();
    assert_eq!(
        ifaces,
        ["ge-1"],
        "the disabled ge-2 and the always-down ge-3 raise nothing"
    );
    db.close().await;
}

/// A person's acknowledge or resolve that cannot be stored answers an error
/// and is undone: asked again it fails the same way (not "already
/// acknowledged" or "not open", as when the change stayed in memory and
/// was stored once the store came back), and a restart finds the alert as
/// it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_change_that_cannot_be_stored_is_not_applied() {
    use pantau_alert_engine::EngineError;
    let dir = tempfile::tempdir().unwrap();
    let open = || async {
        Store::connect(
            &DatabaseConfig::default(),
            dir.path(),
            "alert-engine",
            pantau_alert_engine::MIGRATIONS,
        )
        .await
        .unwrap()
    };
    let db = open().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let engine = Engine::new(cfg(), AlertStore::new(db.clone()), Arc::clone(&bus))
        .await
        .unwrap();
    engine.ingest(vec![cpu("a", 95.0, 0)], t(0)).await.unwrap();
    engine.ingest(vec![cpu("b", 95.0, 0)], t(0)).await.unwrap();
    let fired = engine.sweep(t(300)).await.unwrap();
    assert_eq!(fired.len(), 2, "{fired:?}");
    let (a, b) = (fired[0].alert.id.clone(), fired[1].alert.id.clone());

    db.close().await; // the store is gone
    for _ in 0..2 {
        let e = engine.acknowledge(&a, "dina", "", t(310)).await.unwrap_err();
        assert!(matches!(e, EngineError::Store(_)), "{e}");
        let e = engine.resolve(&b, "dina", "", t(310)).await.unwrap_err();
        assert!(matches!(e, EngineError::Store(_)), "{e}");
    }

    let db = open().await;
    let again = Engine::new(cfg(), AlertStore::new(db.clone()), bus).await.unwrap();
    for id in [&a, &b] {
        let stored = again.store().get(id).await.unwrap().unwrap();
        assert_eq!(stored.state, State::Firing, "{stored:?}");
        assert!(stored.acknowledged_by.is_empty(), "{stored:?}");
    }
    let acked = again.acknowledge(&a, "dina", "", t(320)).await.unwrap();
    assert_eq!(acked.state, State::Acknowledged);
    db.close().await;
}
