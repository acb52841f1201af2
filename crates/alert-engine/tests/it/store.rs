//! Alerts, transitions and API rules persist, filter and page the same in
//! SQLite and PostgreSQL; open alerts and cooldowns survive a restart.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pantau_alert_engine::MIGRATIONS;
use pantau_alert_engine::eval::Element;
use pantau_alert_engine::lifecycle::{Change, Lifecycle, State};
use pantau_alert_engine::rule::{Origin, Rule};
use pantau_alert_engine::series::Value;
use pantau_alert_engine::silence::{Silence, SilenceMatcher};
use pantau_alert_engine::store::{AlertStore, Filter};
use pantau_config::{AlertRuleConfig, AlertSeverity, DatabaseConfig};
use pantau_core::store::Store;

fn t(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

fn rule(id: &str, severity: AlertSeverity) -> Rule {
    let cfg = AlertRuleConfig {
        id: id.into(),
        name: None,
        expr: "check_up == 0".into(),
        severity,
        message: "{{ $labels.target }} down".into(),
        labels: std::collections::BTreeMap::new(),
        for_: None,
        cooldown: Some(Duration::from_secs(300)),
        enabled: true,
        depends_on: Vec::new(),
    };
    Rule::new(cfg, Duration::ZERO, Origin::Api).unwrap()
}

fn holds(targets: &[&str]) -> Vec<Element> {
    targets
        .iter()
        .map(|t| Element {
            labels: [("target".to_owned(), (*t).to_owned())].into(),
            value: Value::Num(0.0),
        })
        .collect()
}

async fn save(store: &AlertStore, changes: &[Change]) {
    for c in changes {
        store.record(c).await.unwrap();
    }
}

async fn contract(cfg: DatabaseConfig, dir: &std::path::Path) {
    let db = Store::connect(&cfg, dir, "alert-engine", MIGRATIONS).await.unwrap();
    let store = AlertStore::new(db.clone());
    let crit = rule("down", AlertSeverity::Critical);
    let warn = rule("slow", AlertSeverity::Warning);
    let mut life = Lifecycle::default();
    save(&store, &life.observe(&crit, holds(&["api", "web"]), t(0))).await;
    save(&store, &life.observe(&warn, holds(&["db"]), t(10))).await;
    let api = life.open().find(|a| a.resource == "api").unwrap().id.clone();
    save(&store, &[life.acknowledge(&api, "dina", "on it", t(20)).unwrap()]).await;
    save(&store, &life.observe(&crit, holds(&["api"]), t(30))).await; // web resolves

    let ids = |alerts: &[pantau_alert_engine::lifecycle::Alert]| -> Vec<String> {
        alerts.iter().map(|a| a.resource.clone()).collect()
    };
    let list = |f: Filter| {
        let store = store.clone();
        async move { store.list(&f).await.unwrap() }
    };
    let (all, more) = list(Filter::default()).await;
    assert_eq!(all.len(), 3);
    assert!(!more);
    assert_eq!(all[0].resource, "db", "newest first");
    let (firing, _) = list(Filter {
        states: vec![State::Firing],
        ..Filter::default()
    })
    .await;
    assert_eq!(ids(&firing), ["db"]);
    let (acked, _) = list(Filter {
        acknowledged: Some(true),
        ..Filter::default()
    })
    .await;
    assert_eq!(ids(&acked), ["api"]);
    assert_eq!(acked[0].acknowledged_by, "dina");
    assert_eq!(acked[0].state, State::Acknowledged);
    let (resolved, _) = list(Filter {
        states: vec![State::Resolved],
        ..Filter::default()
    })
    .await;
    assert_eq!(ids(&resolved), ["web"]);
    assert_eq!(resolved[0].resolved_at, Some(t(30)));
    let (crit_only, _) = list(Filter {
        severities: vec!["critical".into()],
        ..Filter::default()
    })
    .await;
    assert_eq!(crit_only.len(), 2);
    let (by_resource, _) = list(Filter {
        resource: Some("web".into()),
        source: Some("check_up".into()),
        ..Filter::default()
    })
    .await;
    assert_eq!(ids(&by_resource), ["web"]);
    let (recent, _) = list(Filter {
        since: Some(t(5)),
        ..Filter::default()
    })
    .await;
    assert_eq!(ids(&recent), ["db"]);
    let (early, _) = list(Filter {
        until: Some(t(5)),
        ..Filter::default()
    })
    .await;
    assert_eq!(early.len(), 2);
    let (page1, more) = list(Filter {
        limit: 2,
        ..Filter::default()
    })
    .await;
    assert_eq!((page1.len(), more), (2, true));
    let (page2, more) = list(Filter {
        limit: 2,
        offset: 2,
        ..Filter::default()
    })
    .await;
    assert_eq!((page2.len(), more), (1, false));
    assert!(!page1.iter().any(|a| a.id == page2[0].id));

    // The audit trail.
    let trail = store.transitions(&api).await.unwrap();
    let steps: Vec<(State, &str, &str)> = trail
        .iter()
        .map(|t| (t.state, t.actor.as_str(), t.comment.as_str()))
        .collect();
    assert_eq!(steps, [(State::Firing, "", ""), (State::Acknowledged, "dina", "on it")]);
    let got = store.get(&api).await.unwrap().unwrap();
    assert_eq!(got.labels["target"], "api");
    assert_eq!(got.summary, "api down");
    assert!(store.get("nope").await.unwrap().is_none());

    // API rules.
    store.put_rule(&crit.config, t(0)).await.unwrap();
    let mut changed = crit.config.clone();
    changed.expr = "check_up == 0 for 2m".into();
    store.put_rule(&changed, t(1)).await.unwrap();
    assert_eq!(store.rules().await.unwrap(), [changed.clone()]);
    assert!(store.delete_rule("down").await.unwrap());
    assert!(!store.delete_rule("down").await.unwrap());
    // Silences, one-off and recurring.
    let matcher = || {
        vec![SilenceMatcher {
            label: "target".into(),
            value: "web".into(),
            negate: true,
        }]
    };
    let once = Silence::new(matcher(), t(0), t(100), "dina", "upgrade", t(0)).unwrap();
    let weekly = Silence::new(matcher(), t(0), t(3600), "dina", "backups", t(0))
        .unwrap()
        .repeating(Duration::from_secs(7 * 86_400), None)
        .unwrap();
    store.put_silence(&once).await.unwrap();
    store.put_silence(&weekly).await.unwrap();
    assert_eq!(store.silences(t(50)).await.unwrap(), [once.clone(), weekly.clone()]);
    assert_eq!(
        store.silences(t(200)).await.unwrap(),
        vec![weekly.clone()],
        "the one-off ended"
    );
    let mut ended = weekly.clone();
    ended.expire(t(300));
    store.put_silence(&ended).await.unwrap();
    assert!(store.silences(t(400)).await.unwrap().is_empty());
    assert_eq!(store.silences(t(0)).await.unwrap()[1].repeat_until, Some(t(300)));
    assert_eq!(store.prune_silences(t(301)).await.unwrap(), 2);

    db.close().await;

    // A restart: open alerts come back and web's cooldown still holds.
    let db = Store::connect(&cfg, dir, "alert-engine", MIGRATIONS).await.unwrap();
    let store = AlertStore::new(db.clone());
    let mut restored = Lifecycle::default();
    restored.restore(store.load_for_restore(t(0)).await.unwrap());
    assert_eq!(restored.open().count(), 2);
    assert!(
        restored.observe(&crit, holds(&["api", "web"]), t(40)).is_empty(),
        "no duplicate api, web cooling"
    );
    assert_eq!(
        store.prune(t(31)).await.unwrap(),
        1,
        "web was resolved before the cutoff"
    );
    assert!(store.get(&resolved[0].id).await.unwrap().is_none());
    assert!(store.transitions(&resolved[0].id).await.unwrap().is_empty());
    db.close().await;
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    contract(DatabaseConfig::default(), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let pg = pantau_testkit::Postgres::start().await.expect("PostgreSQL starts");
    let dir = tempfile::tempdir().unwrap();
    let cfg = DatabaseConfig {
        url: Some(pg.url()),
        ..DatabaseConfig::default()
    };
    contract(cfg, dir.path()).await;
}
