//! `postgres` and `mysql` checks against real servers started by the
//! testkit: PostgreSQL (a role that must give its password) and Debian's
//! MariaDB. Logging in, a query and its first value, wrong passwords, bad
//! SQL, a missing database, NULL, and no server.

use std::sync::Arc;
use std::time::Duration;

use pantau_collector::checks::{Checker, Outcome};
use pantau_collector::target::Target;
use pantau_config::{CheckType, CollectorConfig, RawTarget};
use pantau_proto::v1::{FailureReason, TargetSource, check_result::Detail};
use pantau_testkit::{MARIADB_PASSWORD, MARIADB_USER, Mariadb, Postgres};

fn target(check: CheckType, address: &str, user: &str, password: &str) -> RawTarget {
    let mut t = RawTarget::new("db", check);
    // PostgreSQL's default database is the user's name; `postgres` always exists.
    if check == CheckType::Postgres {
        t.database = Some("postgres".into());
    }
    t.address = Some(address.to_owned());
    t.username = Some(user.to_owned());
    t.password = Some(password.to_owned());
    t
}

async fn run(t: &RawTarget) -> Outcome {
    let cfg = CollectorConfig {
        timeout: Duration::from_secs(10),
        ..CollectorConfig::default()
    };
    let parsed = Arc::new(t.clone().parse("t").unwrap_or_else(|e| panic!("{e:?}")));
    let target = Target::compile(&parsed, "t", &cfg, TargetSource::Config).unwrap_or_else(|e| panic!("{e:?}"));
    Checker::new().unwrap().check(&target).await
}

fn value(o: &Outcome) -> String {
    let Some(Detail::Probe(p)) = &o.detail else {
        panic!("no probe detail: {o:?}")
    };
    p.metadata.get("value").cloned().unwrap_or_default()
}

/// The same expectations for both servers.
async fn the_probe_logs_in_queries_and_says_why_it_fails(check: CheckType, address: &str, user: &str, pw: &str) {
    let o = run(&target(check, address, user, pw)).await;
    assert!(o.up, "{o:?}");
    assert_eq!(value(&o), "1");

    let o = run(&target(check, address, user, "not-the-password")).await;
    assert_eq!(o.reason, FailureReason::Auth, "{o:?}");
    assert!(!o.message.contains("not-the-password"), "{}", o.message);

    let mut t = target(check, address, user, pw);
    t.query = Some("SELECT 'ok'".into());
    t.expected_reply = Some("ok".into());
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
    t.expected_reply = Some("degraded".into());
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Assertion, "{o:?}");
    assert!(
        o.message.contains("\"ok\"") && o.message.contains("degraded"),
        "{}",
        o.message
    );

    t.query = Some("SELECT NULL".into());
    t.expected_reply = Some("NULL".into());
    assert!(run(&t).await.up);

    t.query = Some("SELEC 1".into());
    t.expected_reply = None;
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Protocol, "{o:?}");
    assert!(o.message.contains("said"), "{}", o.message);

    let mut t = target(check, address, user, pw);
    t.database = Some("pantau_no_such_db".into());
    let o = run(&t).await;
    assert!(!o.up, "{o:?}");
    assert!(
        matches!(o.reason, FailureReason::Protocol | FailureReason::Auth),
        "{o:?}"
    );
}

#[tokio::test]
async fn postgres_logs_in_queries_and_refuses_a_wrong_password() {
    let pg = Postgres::start().await.unwrap();
    pg.create_login("probe", "probe-pw").await.unwrap();
    let address = format!("127.0.0.1:{}", pg.port());
    the_probe_logs_in_queries_and_says_why_it_fails(CheckType::Postgres, &address, "probe", "probe-pw").await;
    let o = run(&target(CheckType::Postgres, &address, "probe", "probe-pw")).await;
    let Some(Detail::Probe(p)) = &o.detail else { panic!() };
    assert!(
        p.metadata["server_version"].starts_with("15") || p.metadata["server_version"].len() >= 5,
        "{p:?}"
    );
}

#[tokio::test]
async fn mariadb_logs_in_queries_and_refuses_a_wrong_password() {
    let db = Mariadb::start().await.unwrap();
    let address = db.addr().to_string();
    the_probe_logs_in_queries_and_says_why_it_fails(CheckType::Mysql, &address, MARIADB_USER, MARIADB_PASSWORD).await;
    // `mariadb` is an alias of `mysql`.
    let t: pantau_config::TargetConfig = serde_json::from_value(serde_json::json!({
        "id": "m", "type": "mariadb", "address": address, "username": MARIADB_USER,
        "password": MARIADB_PASSWORD, "query": "SELECT VERSION()"
    }))
    .unwrap();
    let o = run(&t.into()).await;
    assert!(value(&o).contains("MariaDB"), "{o:?}");
}

#[tokio::test]
async fn no_database_server_is_refused() {
    let port = pantau_testkit::free_port();
    for check in [CheckType::Postgres, CheckType::Mysql] {
        let o = run(&target(check, &format!("127.0.0.1:{port}"), "u", "p")).await;
        assert_eq!(o.reason, FailureReason::Refused, "{check:?}: {o:?}");
    }
}
