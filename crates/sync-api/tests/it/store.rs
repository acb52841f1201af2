//! The store's contract on SQLite and PostgreSQL alike: the bounded outbox
//! and its sequence, instances and revocation, ingest with deduplication,
//! consensus windows and retention.

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
