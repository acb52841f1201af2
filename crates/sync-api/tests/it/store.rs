//! The store's contract on SQLite and PostgreSQL alike: the bounded outbox
//! and its sequence, instances and revocation, ingest with deduplication,
//! consensus windows and retention, the location history.

use pantau_config::DatabaseConfig;
use pantau_core::store::Store;
use pantau_sync_api::store::{self, Incoming, Registration};

fn result(seq: u64, target: &str, location: &str, up: bool, window_ms: i64, checked_ms: i64) -> Incoming {
    Incoming {
        trace_parent: String::new(),
        seq,
        target_id: target.into(),
        location: location.into(),
        up,
        latency_us: 1000 * seq as i64,
        checked_ms,
        window_ms,
    }
}

async fn contract(db: Store) {
    // The outbox: ordered, bounded (oldest dropped), sequence never reused.
    for i in 0..5u8 {
        let dropped = store::outbox_push(&db, &[i], 1000, 3).await.unwrap();
        assert_eq!(dropped, u64::from(i >= 3));
    }
    let rows = store::outbox_peek(&db, 10).await.unwrap();
    assert_eq!(rows.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(rows[0].1, [2]);
    assert_eq!(store::outbox_ack(&db, 4).await.unwrap(), 2);
    assert_eq!(store::outbox_len(&db).await.unwrap(), 1);
    store::outbox_ack(&db, 5).await.unwrap();
    assert_eq!(store::outbox_len(&db).await.unwrap(), 0);
    assert_eq!(
        store::outbox_high(&db).await.unwrap(),
        5,
        "the sequence survives an empty outbox"
    );
    store::outbox_push(&db, &[9], 1000, 3).await.unwrap();
    assert_eq!(store::outbox_peek(&db, 1).await.unwrap()[0].0, 6);

    // Instances: registration keeps the sequence; revocation clears the hash.
    let reg = Registration {
        id: "bdg-1".into(),
        name: "bdg-1".into(),
        location: "bdg".into(),
        token_hash: "h1".into(),
        token_expires_ms: 5000,
        capabilities: vec!["checks".into()],
        system: serde_json::json!({"platform": "linux"}),
        ..Default::default()
    };
    store::register(&db, &reg, 100).await.unwrap();
    let batch = [
        result(1, "web", "bdg", true, 0, 10),
        result(2, "web", "bdg", false, 0, 20),
        result(3, "web", "bdg", true, 60_000, 60_010),
    ];
    let done = store::ingest(&db, "bdg-1", &batch, 0, None).await.unwrap();
    assert_eq!((done.accepted, done.duplicates, done.acked_seq), (3, 0, 3));
    // Resent, and with a shared floor: nothing counted twice.
    let again = store::ingest(&db, "bdg-1", &batch, 0, None).await.unwrap();
    assert_eq!((again.accepted, again.duplicates, again.acked_seq), (0, 3, 3));
    let floor = store::ingest(
        &db,
        "bdg-1",
        &[
            result(4, "web", "bdg", true, 0, 15),
            result(5, "web", "bdg", true, 0, 16),
        ],
        4,
        None,
    )
    .await
    .unwrap();
    assert_eq!((floor.accepted, floor.duplicates, floor.acked_seq), (1, 1, 5));
    store::register(
        &db,
        &Registration {
            token_hash: "h2".into(),
            ..reg.clone()
        },
        200,
    )
    .await
    .unwrap();
    let row = store::instance(&db, "bdg-1").await.unwrap().unwrap();
    assert_eq!(
        (row.reg.token_hash.as_str(), row.acked_seq, row.results_received),
        ("h2", 5, 4)
    );
    assert_eq!(row.reg.capabilities, ["checks"]);
    assert!(
        store::heartbeat(&db, "bdg-1", &store::Beat::default(), 300)
            .await
            .unwrap()
    );

    // The latest check per location wins in its window.
    let w = store::window_results(&db, "web", 0).await.unwrap();
    assert_eq!(w.len(), 1);
    assert!(!w[0].up, "the check at 20 ms is the latest of the window");
    store::ingest(&db, "bdg-1", &[result(6, "web", "jkt", true, 0, 30)], 0, None)
        .await
        .unwrap();
    assert_eq!(store::window_results(&db, "web", 0).await.unwrap().len(), 2);
    assert_eq!(store::due_windows(&db, 60_000).await.unwrap(), [("web".to_owned(), 0)]);
    store::mark_published(&db, "web", 0, (2, 2, 1), 7).await.unwrap();
    assert!(store::due_windows(&db, 60_000).await.unwrap().is_empty());
    // A late result reopens its window.
    store::ingest(&db, "bdg-1", &[result(7, "web", "sby", true, 0, 40)], 0, None)
        .await
        .unwrap();
    assert_eq!(store::due_windows(&db, 60_000).await.unwrap().len(), 1);

    // The primary's own results leave the outbox in the same transaction.
    let own = store::ingest(
        &db,
        "bdg-1",
        &[result(8, "web", "bdg", true, 60_000, 60_020)],
        0,
        Some(6),
    )
    .await
    .unwrap();
    assert_eq!(own.accepted, 1);
    assert_eq!(store::outbox_len(&db).await.unwrap(), 0);

    // Locations that reported in an earlier window but not in this one are
    // stale, with their last result.
    let w = store::window_results(&db, "web", 60_000).await.unwrap();
    let shown: Vec<_> = w.iter().map(|r| (r.location.as_str(), r.stale, r.up)).collect();
    assert_eq!(shown, [("bdg", false, true), ("jkt", true, true), ("sby", true, true)]);

    // Retention.
    assert!(store::prune(&db, 60_000).await.unwrap() >= 3);
    assert!(store::window_results(&db, "web", 0).await.unwrap().is_empty());
    assert_eq!(store::window_results(&db, "web", 60_000).await.unwrap().len(), 1);

    assert!(store::revoke(&db, "bdg-1").await.unwrap());
    let row = store::instance(&db, "bdg-1").await.unwrap().unwrap();
    assert!(row.revoked && row.reg.token_hash.is_empty());
    assert!(
        !store::heartbeat(&db, "bdg-1", &store::Beat::default(), 400)
            .await
            .unwrap()
    );
    store::set_fact(&db, "k", "v1").await.unwrap();
    store::set_fact(&db, "k", "v2").await.unwrap();
    assert_eq!(store::fact(&db, "k").await.unwrap().as_deref(), Some("v2"));
    store::delete_fact(&db, "k").await.unwrap();
    assert_eq!(store::fact(&db, "k").await.unwrap(), None);
    location_history(&db).await;
}

/// Pushed results roll up per location, target, minute and hour, once each
/// (a repeated push adds nothing), and retention deletes old rows.
async fn location_history(db: &Store) {
    use std::time::{Duration, UNIX_EPOCH};

    use pantau_core::history::Resolution;
    use pantau_sync_api::history;

    let reg = Registration {
        id: "sby-1".into(),
        name: "sby-1".into(),
        location: "sby".into(),
        token_hash: "h".into(),
        token_expires_ms: i64::MAX,
        ..Default::default()
    };
    store::register(db, &reg, 100).await.unwrap();
    // A fixed hour, 10:00 on a day in 2026.
    let hour = 1_780_000_000_000 / 3_600_000 * 3_600_000;
    let at = |ms: i64| UNIX_EPOCH + Duration::from_millis(ms as u64);
    let mut batch = Vec::new();
    // Minute 0: 3 checks (2 up); minute 1: 1 down; another target, another location.
    for (seq, target, loc, up, off) in [
        (1, "api", "sby", true, 1_000),
        (2, "api", "sby", false, 20_000),
        (3, "api", "sby", true, 59_000),
        (4, "api", "sby", false, 61_000),
        (5, "db", "sby", true, 2_000),
        (6, "api", "mlg", true, 3_000),
    ] {
        batch.push(result(seq, target, loc, up, hour, hour + off));
    }
    // Two pushes, the second repeating the first's tail: counted once.
    store::ingest(db, "sby-1", &batch[..4], 0, None).await.unwrap();
    let again = store::ingest(db, "sby-1", &batch[2..], 0, None).await.unwrap();
    assert_eq!((again.accepted, again.duplicates), (2, 2));

    let minutes = history::query(db, "sby", "api", at(hour), at(hour + 3_600_000), Resolution::Minute)
        .await
        .unwrap();
    assert_eq!(minutes.len(), 2, "{minutes:?}");
    let m0 = &minutes[0];
    assert_eq!((m0.start, m0.checks, m0.up), (at(hour), 3, 2));
    // Latencies are seq ms: 1, 2, 3.
    assert!(
        (m0.lat_min - 1.0).abs() < 1e-9 && (m0.lat_max - 3.0).abs() < 1e-9,
        "{m0:?}"
    );
    assert!((m0.lat_avg - 2.0).abs() < 1e-9, "{m0:?}");
    assert!((m0.lat_p95 - 3.0).abs() / 3.0 < 0.06, "{m0:?}");
    assert_eq!((minutes[1].checks, minutes[1].up), (1, 0));
    let hours = history::query(db, "sby", "api", at(hour), at(hour + 3_600_000), Resolution::Hour)
        .await
        .unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!((hours[0].checks, hours[0].up), (4, 2));
    assert!((hours[0].lat_p95 - 4.0).abs() / 4.0 < 0.06, "{:?}", hours[0]);
    // Each location and target apart; a range outside has none.
    let other = history::query(db, "mlg", "api", at(hour), at(hour + 3_600_000), Resolution::Hour)
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].checks, 1);
    let db_rows = history::query(db, "sby", "db", at(hour), at(hour + 60_000), Resolution::Minute)
        .await
        .unwrap();
    assert_eq!(db_rows.len(), 1);
    assert!(
        history::query(
            db,
            "sby",
            "api",
            at(hour + 3_600_000),
            at(hour + 7_200_000),
            Resolution::Hour
        )
        .await
        .unwrap()
        .is_empty()
    );

    // Retention: a week of minutes, 400 days of hours (the defaults); the
    // p95 of an hour whose histogram was dropped stays.
    let cfg = pantau_config::HistoryConfig::default();
    // (The contract's earlier results, of 1970, go first.)
    assert!(history::prune(db, &cfg, at(hour)).await.unwrap() > 0);
    let later = at(hour) + Duration::from_secs(8 * 86_400);
    let deleted = history::prune(db, &cfg, later).await.unwrap();
    assert_eq!(deleted, 4, "the four minute rows go");
    assert!(
        history::query(db, "sby", "api", at(hour), at(hour + 3_600_000), Resolution::Minute)
            .await
            .unwrap()
            .is_empty()
    );
    let kept = history::query(db, "sby", "api", at(hour), at(hour + 3_600_000), Resolution::Hour)
        .await
        .unwrap();
    assert_eq!(kept[0].checks, 4);
    assert!((kept[0].lat_p95 - 4.0).abs() / 4.0 < 0.06, "{:?}", kept[0]);
    let much_later = at(hour) + Duration::from_secs(401 * 86_400);
    assert_eq!(history::prune(db, &cfg, much_later).await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Store::connect(
        &DatabaseConfig::default(),
        dir.path(),
        "sync-api",
        pantau_sync_api::MIGRATIONS,
    )
    .await
    .unwrap();
    contract(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let pg = pantau_testkit::Postgres::start().await.expect("PostgreSQL starts");
    let dir = tempfile::tempdir().unwrap();
    let cfg = DatabaseConfig {
        url: Some(pg.url()),
        schema_prefix: "sync_store_test".into(),
        ..DatabaseConfig::default()
    };
    let db = Store::connect(&cfg, dir.path(), "sync-api", pantau_sync_api::MIGRATIONS)
        .await
        .unwrap();
    contract(db).await;
}
