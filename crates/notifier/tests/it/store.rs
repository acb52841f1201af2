//! The delivery store on SQLite and PostgreSQL: idempotent inserts, leases
//! that exclude other replicas, ordering per alert, the attempt log, purge.

use pantau_config::DatabaseConfig;
use pantau_core::store::Store;
use pantau_notifier::MIGRATIONS;
use pantau_notifier::store::{Attempt, DELIVERED, DeliveryStore, Filter, NewDelivery, PENDING, now_ms};

fn row(id: &str, key: &str, state: &str) -> NewDelivery {
    NewDelivery {
        id: id.into(),
        channel: "hook".into(),
        channel_type: "webhook".into(),
        recipient: String::new(),
        alert_key: key.into(),
        state: state.into(),
        source: "alert".into(),
        notification: "{}".into(),
        delay_ms: 0,
    }
}

fn attempt(n: i64, code: i64) -> Attempt {
    Attempt {
        attempt: n,
        at: now_ms(),
        status_code: code,
        error: if code == 200 {
            String::new()
        } else {
            format!("HTTP {code}")
        },
        latency_ms: 12,
    }
}

async fn contract(store: Store) {
    let s = DeliveryStore::new(store);
    let far = now_ms() + 60_000;
    assert_eq!(
        s.insert(&[
            row("f1", "a", "firing"),
            row("r1", "a", "resolved"),
            row("f2", "b", "firing")
        ])
        .await
        .unwrap(),
        3
    );
    assert_eq!(s.insert(&[row("f1", "a", "firing")]).await.unwrap(), 0, "idempotent");

    // The resolved of `a` waits behind its firing; another replica gets nothing.
    let mine = s.claim("replica-1", far, 10).await.unwrap();
    let ids: Vec<&str> = mine.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["f1", "f2"]);
    assert!(s.claim("replica-2", far, 10).await.unwrap().is_empty());

    // A failed attempt: retry later; a stale owner cannot record.
    assert!(
        !s.record(mine[0].seq, "replica-2", &attempt(1, 503), PENDING, 0)
            .await
            .unwrap()
    );
    assert!(
        s.record(mine[0].seq, "replica-1", &attempt(1, 503), PENDING, now_ms())
            .await
            .unwrap()
    );
    assert!(
        s.record(mine[1].seq, "replica-1", &attempt(1, 200), DELIVERED, now_ms())
            .await
            .unwrap()
    );
    let again = s.claim("replica-2", far, 10).await.unwrap();
    assert_eq!(again.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["f1"]);
    assert_eq!(again[0].attempts, 1);
    assert!(
        s.record(again[0].seq, "replica-2", &attempt(2, 200), DELIVERED, now_ms())
            .await
            .unwrap()
    );
    // Now the resolved is free.
    let next = s.claim("replica-1", far, 10).await.unwrap();
    assert_eq!(next.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["r1"]);

    // An expired lease is taken over; a restarted owner releases its own.
    assert_eq!(s.release("replica-1").await.unwrap(), 1);
    let taken = s.claim("replica-2", now_ms() - 1, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        s.claim("replica-1", far, 10).await.unwrap().len(),
        1,
        "the expired lease was taken over"
    );
    s.postpone(taken[0].seq, "replica-1", now_ms() + 60_000).await.unwrap();
    assert!(s.claim("replica-2", far, 10).await.unwrap().is_empty(), "postponed");

    let listed = s
        .list(&Filter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["f2", "r1", "f1"]
    );
    let f1 = &listed[2];
    assert_eq!(f1.status, DELIVERED);
    assert_eq!(f1.log.iter().map(|a| a.status_code).collect::<Vec<_>>(), [503, 200]);
    let pending = s
        .list(&Filter {
            status: Some(PENDING),
            alert_key: Some("a".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(s.pending().await.unwrap(), 1);

    // Purge removes finished deliveries and their logs, never pending ones.
    assert_eq!(s.purge(now_ms() + 1).await.unwrap(), 2);
    assert_eq!(s.pending().await.unwrap(), 1);

    // A grouping channel's waiting deliveries are not due, but ride along.
    let waiting = |id: &str, key: &str| NewDelivery {
        delay_ms: 60_000,
        recipient: "6281".into(),
        ..row(id, key, "firing")
    };
    s.insert(&[waiting("w1", "c"), waiting("w2", "d")]).await.unwrap();
    assert!(s.claim("replica-1", far, 10).await.unwrap().is_empty());
    let group = s.claim_for("replica-1", far, 10, "hook", "6281").await.unwrap();
    assert_eq!(group.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["w1", "w2"]);
    assert!(
        s.claim_for("replica-2", far, 10, "hook", "6281")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_contract_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&DatabaseConfig::default(), dir.path(), "notifier", MIGRATIONS)
        .await
        .unwrap();
    contract(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_contract_postgres() {
    let pg = pantau_testkit::Postgres::start()
        .await
        .expect("PostgreSQL for the test");
    let url = pg.create_database("notifier_store").await.unwrap();
    let cfg = DatabaseConfig {
        url: Some(url),
        ..DatabaseConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&cfg, dir.path(), "notifier", MIGRATIONS).await.unwrap();
    contract(store.clone()).await;
    store.close().await;
}
