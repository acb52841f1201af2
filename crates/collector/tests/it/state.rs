//! Target state and pauses survive a restart, in SQLite and in PostgreSQL.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pantau_collector::MIGRATIONS;
use pantau_collector::state::{StateCell, States};
use pantau_config::DatabaseConfig;
use pantau_core::store::Store;
use pantau_proto::v1::{CheckResult, CheckStatus, FailureReason};

fn result(up: bool) -> CheckResult {
    CheckResult {
        target_id: "web".into(),
        status: if up { CheckStatus::Up } else { CheckStatus::Down }.into(),
        reason: if up {
            FailureReason::Unspecified
        } else {
            FailureReason::Timeout
        }
        .into(),
        message: if up { String::new() } else { "no answer".into() },
        ..Default::default()
    }
}

async fn survives_restart(cfg: DatabaseConfig, dir: &std::path::Path) {
    let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let store = Store::connect(&cfg, dir, "collector", MIGRATIONS).await.unwrap();
    let states = States::load(store.clone()).await.unwrap();
    let web = StateCell::default();
    let first = states
        .observe(&web, &result(true), t0)
        .expect("first sight is a transition");
    assert!(first.previous.is_none());
    assert!(
        states
            .observe(&web, &result(true), t0 + Duration::from_secs(1))
            .is_none()
    );
    let down_at = t0 + Duration::from_secs(2);
    let down = states.observe(&web, &result(false), down_at).expect("up -> down");
    assert_eq!(web.get().map(|s| (s.up, s.since)), Some((false, down_at)));
    assert_eq!(down.previous.map(|p| p.up), Some(true));
    // Both changes of the one target are written as its latest state.
    assert_eq!(states.write_pending().await.unwrap(), 1);
    assert_eq!(states.write_pending().await.unwrap(), 0);
    store.close().await;

    // A new process: the state and its start are remembered, so the same
    // status is not a transition.
    let store = Store::connect(&cfg, dir, "collector", MIGRATIONS).await.unwrap();
    let states = States::load(store.clone()).await.unwrap();
    let s = states.get("web").expect("persisted");
    assert!(!s.up);
    assert_eq!(s.since, down_at);
    // The target's new entry starts from its persisted state, which its
    // first result takes.
    let web = StateCell::default();
    assert!(states.observe(&web, &result(false), SystemTime::now()).is_none());
    assert_eq!(web.get().map(|s| s.since), Some(down_at));
    assert!(states.get("web").is_none(), "taken by the entry");
    // Taken off the schedule and put back (a replaced or re-added target):
    // its state is parked, not lost, so the next result is no first sight.
    states.park("web", &web);
    let again = StateCell::default();
    let up = states
        .observe(&again, &result(true), SystemTime::now())
        .expect("down -> up");
    assert_eq!(up.previous.map(|p| (p.up, p.since)), Some((false, down_at)));
    store.close().await;
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    survives_restart(DatabaseConfig::default(), dir.path()).await;
    crate::pause::pauses_survive(&DatabaseConfig::default(), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let pg = pantau_testkit::Postgres::start().await.expect("PostgreSQL starts");
    let dir = tempfile::tempdir().unwrap();
    let cfg = DatabaseConfig {
        url: Some(pg.url()),
        schema_prefix: "collector_state_test".into(),
        ..DatabaseConfig::default()
    };
    survives_restart(cfg.clone(), dir.path()).await;
    crate::pause::pauses_survive(&cfg, dir.path()).await;
}

/// More changes than one transaction takes are written in chunks, every one
/// of them, while another connection of the same store keeps writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_changes_are_written_in_chunks_beside_another_writer() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DatabaseConfig::default();
    let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let store = Store::connect(&cfg, dir.path(), "collector", MIGRATIONS).await.unwrap();
    let states = States::load(store.clone()).await.unwrap();
    let n = pantau_collector::state::WRITE_CHUNK * 2 + 500;
    for i in 0..n {
        let r = CheckResult {
            target_id: format!("t{i}"),
            ..result(i % 3 != 0)
        };
        assert!(states.observe(&StateCell::default(), &r, t0).is_some());
    }
    // Another writer on the same file (the history's, in the collector).
    let pool = match &store {
        Store::Sqlite(p, _) => p.clone(),
        Store::Postgres { .. } => unreachable!("SQLite by default"),
    };
    let other = tokio::spawn(async move {
        for i in 0..200 {
            sqlx::query("INSERT INTO target_state (target_id, status, since_ms, reason, message, changed_ms) VALUES ($1, 'up', 0, '', '', 0)")
                .bind(format!("other{i}"))
                .execute(&pool)
                .await
                .unwrap();
        }
    });
    assert_eq!(states.write_pending().await.unwrap(), n);
    other.await.unwrap();
    assert_eq!(states.write_pending().await.unwrap(), 0);
    store.close().await;

    let store = Store::connect(&cfg, dir.path(), "collector", MIGRATIONS).await.unwrap();
    let states = States::load(store.clone()).await.unwrap();
    for i in [0, 1, n / 2, n - 1] {
        let s = states.get(&format!("t{i}")).expect("persisted");
        assert_eq!(s.up, i % 3 != 0, "t{i}");
    }
    assert!(states.get("other199").is_some());
    store.close().await;
}

/// The history of more targets than one transaction takes is written in
/// chunks, every bucket once, while the states' writer writes beside it; a
/// second flush finds nothing left to add.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_history_flush_is_written_in_chunks_beside_the_states() {
    use pantau_collector::history::History;
    let dir = tempfile::tempdir().unwrap();
    let cfg = DatabaseConfig::default();
    let store = Store::connect(&cfg, dir.path(), "collector", MIGRATIONS).await.unwrap();
    let history = History::new(store.clone(), &pantau_config::HistoryConfig::default());
    let states = States::load(store.clone()).await.unwrap();
    let n = pantau_collector::state::WRITE_CHUNK * 2 + 500;
    let at = SystemTime::now() - Duration::from_secs(120);
    for i in 0..n {
        history.record(&format!("t{i}"), i % 2 == 0, Duration::from_millis(10), at);
        let r = CheckResult {
            target_id: format!("t{i}"),
            ..result(true)
        };
        assert!(states.observe(&StateCell::default(), &r, at).is_some());
    }
    let (flushed, written) = tokio::join!(history.flush(SystemTime::now()), states.write_pending());
    assert_eq!(flushed.unwrap(), n);
    assert_eq!(written.unwrap(), n);
    assert_eq!(history.flush(SystemTime::now()).await.unwrap(), 0);
    for i in [0, 1, n / 2, n - 1] {
        let points = last_hour(&history, i).await;
        assert_eq!(points.len(), 1, "t{i}");
        assert_eq!((points[0].checks, points[0].up), (1, u64::from(i % 2 == 0)), "t{i}");
    }
    store.close().await;
}

/// Target `t{i}`'s minutes of the last hour.
async fn last_hour(history: &pantau_collector::history::History, i: usize) -> Vec<pantau_collector::history::Point> {
    let now = SystemTime::now();
    history
        .query(
            &format!("t{i}"),
            now - Duration::from_secs(3600),
            now,
            pantau_collector::history::Resolution::Minute,
        )
        .await
        .unwrap()
}

/// A collector store in `dir` and a history with the default settings on it.
async fn history_in(dir: &std::path::Path) -> (Store, pantau_collector::history::History) {
    let store = Store::connect(&DatabaseConfig::default(), dir, "collector", MIGRATIONS)
        .await
        .unwrap();
    let history = pantau_collector::history::History::new(store.clone(), &pantau_config::HistoryConfig::default());
    (store, history)
}

/// A flush takes the finished minutes only; the current one stays open and a
/// query sees it beside the written ones, for its own target only; a
/// reversed range has no points (and does not panic).
#[tokio::test]
async fn a_flush_takes_finished_minutes_and_a_query_sees_the_open_one() {
    use pantau_collector::history::Resolution;
    let dir = tempfile::tempdir().unwrap();
    let (_, history) = history_in(dir.path()).await;
    let minute = |m: u64| UNIX_EPOCH + Duration::from_secs(1_800_000_000 / 60 * 60 + m * 60);
    history.record("a", true, Duration::from_millis(10), minute(0));
    history.record("b", false, Duration::from_millis(50), minute(0));
    history.record("a", false, Duration::from_millis(30), minute(1));
    history.record(
        "a",
        true,
        Duration::from_millis(20),
        minute(1) + Duration::from_secs(30),
    );
    // At minute 1: minute 0 is finished (two targets), minute 1 is open.
    assert_eq!(history.flush(minute(1) + Duration::from_secs(40)).await.unwrap(), 2);
    let points = history
        .query("a", minute(0), minute(5), Resolution::Minute)
        .await
        .unwrap();
    let seen: Vec<_> = points.iter().map(|p| (p.start, p.checks, p.up)).collect();
    assert_eq!(seen, vec![(minute(0), 1, 1), (minute(1), 2, 1)]);
    assert!((points[1].lat_avg - 25.0).abs() < 1e-9);
    let b = history
        .query("b", minute(0), minute(5), Resolution::Minute)
        .await
        .unwrap();
    assert_eq!(b.iter().map(|p| (p.checks, p.up)).collect::<Vec<_>>(), vec![(1, 0)]);
    assert!(
        history
            .query("a", minute(5), minute(0), Resolution::Minute)
            .await
            .unwrap()
            .is_empty()
    );
    // Minute 1 once it is over; nothing is left after.
    assert_eq!(history.flush(minute(2)).await.unwrap(), 1);
    assert_eq!(history.flush(minute(3)).await.unwrap(), 0);
}

/// A flush whose write fails part way (a chunk refused by the database)
/// keeps what it had not written: the next flush writes the rest, and every
/// bucket is stored exactly once.
#[tokio::test]
async fn a_flush_that_fails_part_way_keeps_the_rest_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let (store, history) = history_in(dir.path()).await;
    let n = pantau_collector::state::WRITE_CHUNK * 3;
    let at = SystemTime::now() - Duration::from_secs(120);
    for i in 0..n {
        history.record(&format!("t{i}"), true, Duration::from_millis(10), at);
    }
    let Store::Sqlite(pool, _) = &store else {
        unreachable!("the default store is SQLite")
    };
    // One bucket the database refuses: its chunk fails, and the chunks
    // before it (in the map's order) are written.
    sqlx::query(
        "CREATE TRIGGER refuse BEFORE INSERT ON history_minute WHEN NEW.target_id = 't1234'
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    .execute(pool)
    .await
    .unwrap();
    let e = history.flush(SystemTime::now()).await.unwrap_err();
    assert!(e.to_string().contains("refused by the test"), "{e}");
    let stored_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM history_minute")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(stored_before < n as i64, "{stored_before}");
    sqlx::query("DROP TRIGGER refuse").execute(pool).await.unwrap();
    let written = history.flush(SystemTime::now()).await.unwrap();
    assert_eq!(stored_before + written as i64, n as i64);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM history_minute")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(stored, n as i64);
    let checks: i64 = sqlx::query_scalar("SELECT SUM(checks) FROM history_minute")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(checks, n as i64, "every bucket once, none added twice");
    for i in [0, 1234, n - 1] {
        let points = last_hour(&history, i).await;
        assert_eq!(points.iter().map(|p| p.checks).collect::<Vec<_>>(), [1], "t{i}");
    }
    store.close().await;
}
