//! The store suite: the same tests for SQLite and PostgreSQL, plus what is
//! particular to each (a file per service, a schema per service).

use std::path::Path;

use anyhow::Context as _;
use pantau_config::DatabaseConfig;
use pantau_core::store::{Migrations, Store};
use pantau_testkit::Postgres;
use sqlx::migrate::Migrator;
use tempfile::TempDir;

static SQLITE: Migrator = sqlx::migrate!("tests/it/migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("tests/it/migrations/postgres");

const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// A database backend under test, with whatever keeps it alive.
trait StoreFixture: Sized {
    const KIND: &'static str;

    async fn start() -> anyhow::Result<Self>;

    /// The configuration of a test whose PostgreSQL schemas start with `prefix`.
    fn config(&self, prefix: &str) -> DatabaseConfig;

    /// The data directory handed to [`Store::connect`].
    fn data_dir(&self) -> &Path;

    async fn connect(&self, prefix: &str, service: &str) -> anyhow::Result<Store> {
        let store = Store::connect(&self.config(prefix), self.data_dir(), service, MIGRATIONS)
            .await
            .with_context(|| format!("connect {service}"))?;
        assert_eq!(store.kind(), Self::KIND);
        Ok(store)
    }
}

struct SqliteFixture {
    dir: TempDir,
}

impl StoreFixture for SqliteFixture {
    const KIND: &'static str = "sqlite";

    async fn start() -> anyhow::Result<Self> {
        Ok(Self {
            dir: tempfile::tempdir()?,
        })
    }

    fn config(&self, prefix: &str) -> DatabaseConfig {
        DatabaseConfig {
            url: None,
            schema_prefix: prefix.to_owned(),
            ..DatabaseConfig::default()
        }
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

struct PostgresFixture {
    pg: Postgres,
    /// Unused by PostgreSQL, but `Store::connect` takes one.
    dir: TempDir,
}

impl StoreFixture for PostgresFixture {
    const KIND: &'static str = "postgres";

    async fn start() -> anyhow::Result<Self> {
        Ok(Self {
            pg: Postgres::start().await?,
            dir: tempfile::tempdir()?,
        })
    }

    fn config(&self, prefix: &str) -> DatabaseConfig {
        DatabaseConfig {
            url: Some(self.pg.url()),
            schema_prefix: prefix.to_owned(),
            max_connections: 4,
            ..DatabaseConfig::default()
        }
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

async fn insert(store: &Store, name: &str) -> anyhow::Result<()> {
    match store {
        Store::Sqlite(pool, _) => {
            sqlx::query("INSERT INTO items (name) VALUES (?)")
                .bind(name)
                .execute(pool)
                .await?;
        }
        Store::Postgres { pool, .. } => {
            sqlx::query("INSERT INTO items (name) VALUES ($1)")
                .bind(name)
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

async fn names(store: &Store) -> anyhow::Result<Vec<String>> {
    const SQL: &str = "SELECT name FROM items ORDER BY id";
    Ok(match store {
        Store::Sqlite(pool, _) => sqlx::query_scalar(SQL).fetch_all(pool).await?,
        Store::Postgres { pool, .. } => sqlx::query_scalar(SQL).fetch_all(pool).await?,
    })
}

/// Versions recorded in the service's `_sqlx_migrations`.
async fn applied(store: &Store) -> anyhow::Result<Vec<i64>> {
    const SQL: &str = "SELECT version FROM _sqlx_migrations ORDER BY version";
    Ok(match store {
        Store::Sqlite(pool, _) => sqlx::query_scalar(SQL).fetch_all(pool).await?,
        Store::Postgres { pool, .. } => sqlx::query_scalar(SQL).fetch_all(pool).await?,
    })
}

/// The tests every backend passes; `store_suite!` instantiates them.
mod contract {
    use super::{StoreFixture, applied, insert, names};

    pub(super) async fn migrations_run(f: &impl StoreFixture, prefix: &str) -> anyhow::Result<()> {
        let store = f.connect(prefix, "testsvc").await?;
        assert_eq!(applied(&store).await?, [1]);
        insert(&store, "web-1").await?;
        insert(&store, "web-2").await?;
        assert_eq!(names(&store).await?, ["web-1", "web-2"]);
        store.close().await;
        Ok(())
    }

    pub(super) async fn ping_works(f: &impl StoreFixture, prefix: &str) -> anyhow::Result<()> {
        let store = f.connect(prefix, "testsvc").await?;
        store.ping().await?;
        store.readiness().check().await.map_err(anyhow::Error::msg)?;
        store.close().await;
        Ok(())
    }

    pub(super) async fn connecting_twice_is_idempotent(f: &impl StoreFixture, prefix: &str) -> anyhow::Result<()> {
        let first = f.connect(prefix, "testsvc").await?;
        insert(&first, "kept").await?;
        // Again while the first pool is open, and again after it is closed.
        let second = f.connect(prefix, "testsvc").await?;
        assert_eq!(applied(&second).await?, [1], "migrations ran once");
        assert_eq!(names(&second).await?, ["kept"]);
        insert(&second, "shared").await?;
        assert_eq!(names(&first).await?, ["kept", "shared"]);
        first.close().await;
        second.close().await;
        let third = f.connect(prefix, "testsvc").await?;
        assert_eq!(applied(&third).await?, [1]);
        assert_eq!(names(&third).await?, ["kept", "shared"]);
        third.close().await;
        Ok(())
    }

    /// Replicas start together: every one of several simultaneous connects
    /// to a new schema succeeds, and migrations run once.
    pub(super) async fn replicas_connecting_at_once(f: &impl StoreFixture, prefix: &str) -> anyhow::Result<()> {
        let (first, second, third, fourth) = tokio::join!(
            f.connect(prefix, "testsvc"),
            f.connect(prefix, "testsvc"),
            f.connect(prefix, "testsvc"),
            f.connect(prefix, "testsvc")
        );
        let stores = [first?, second?, third?, fourth?];
        assert_eq!(applied(&stores[0]).await?, [1], "migrations ran once");
        for s in stores {
            s.close().await;
        }
        Ok(())
    }

    pub(super) async fn services_do_not_share_rows(f: &impl StoreFixture, prefix: &str) -> anyhow::Result<()> {
        let a = f.connect(prefix, "svc_a").await?;
        let b = f.connect(prefix, "svc_b").await?;
        insert(&a, "only-in-a").await?;
        assert_eq!(names(&a).await?, ["only-in-a"]);
        assert!(names(&b).await?.is_empty());
        assert_eq!(applied(&b).await?, [1]);
        a.close().await;
        b.close().await;
        Ok(())
    }
}

/// Every store operation through `with_pool!` is timed for its service, a
/// slow one counted, and the pool's gauges are read at a scrape.
mod measured {
    use std::collections::HashMap;
    use std::time::Duration;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    use pantau_core::store::metrics as m;
    use pantau_core::store::{Migrations, Store};

    use super::StoreFixture;

    /// What happened to `service`'s metrics since the last call, by name:
    /// counters' increments, gauges' values, histograms' samples. (The
    /// debugging recorder hands each value over once.)
    fn since_last(s: &Snapshotter, service: &str) -> HashMap<String, f64> {
        s.snapshot()
            .into_vec()
            .into_iter()
            .filter(|(k, ..)| k.key().labels().any(|l| l.key() == "service" && l.value() == service))
            .map(|(k, _, _, v)| {
                let v = match v {
                    DebugValue::Counter(n) => n as f64,
                    DebugValue::Gauge(g) => g.into_inner(),
                    DebugValue::Histogram(h) => h.len() as f64,
                };
                (k.key().name().to_owned(), v)
            })
            .collect()
    }

    pub(super) async fn operations_and_pools_are_measured(
        f: &impl StoreFixture,
        prefix: &str,
        migrations: Migrations,
    ) -> anyhow::Result<()> {
        let recorder = DebuggingRecorder::new();
        let snap = recorder.snapshotter();
        // The test's own future runs on this thread: the local recorder sees
        // every operation it awaits.
        let _guard = metrics::set_default_local_recorder(&recorder);
        let service = format!("metered_{}", kind(f));
        let mut cfg = f.config(prefix);
        cfg.max_connections = 3;
        cfg.slow_query_threshold = Duration::from_millis(50);
        let store = Store::connect(&cfg, f.data_dir(), &service, migrations).await?;
        let seen = since_last(&snap, &service);
        assert_eq!(
            seen.get(m::SLOW_QUERIES),
            Some(&0.0),
            "on /metrics from the start: {seen:?}"
        );
        assert_eq!(seen.get(m::POOL_MAX), Some(&3.0), "{seen:?}");

        // Two quick operations, then one that takes longer than the threshold.
        for _ in 0..2 {
            pantau_core::with_pool!(&store, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        }
        let seen = since_last(&snap, &service);
        assert_eq!(seen.get(m::QUERY_DURATION), Some(&2.0), "{seen:?}");
        assert_eq!(seen.get(m::SLOW_QUERIES), Some(&0.0), "{seen:?}");
        let slow: anyhow::Result<()> = pantau_core::with_pool!(&store, pool => {
            tokio::time::sleep(Duration::from_millis(80)).await;
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        });
        slow?;
        let seen = since_last(&snap, &service);
        assert_eq!(seen.get(m::QUERY_DURATION), Some(&1.0), "{seen:?}");
        assert_eq!(seen.get(m::SLOW_QUERIES), Some(&1.0), "{seen:?}");

        // A failing statement is measured too.
        let bad = pantau_core::with_pool!(&store, pool => sqlx::query("SELECT * FROM no_such_table").execute(pool).await.map(|_| ()));
        assert!(bad.is_err());
        let seen = since_last(&snap, &service);
        assert_eq!(seen.get(m::QUERY_DURATION), Some(&1.0), "{seen:?}");

        // The pool as a scrape sees it: a connection held is in use.
        let held = match &store {
            Store::Sqlite(p, _) => Held::Sqlite(p.acquire().await?),
            Store::Postgres { pool, .. } => Held::Postgres(pool.acquire().await?),
        };
        m::collect();
        let seen = since_last(&snap, &service);
        let (open, idle, in_use) = (seen[m::POOL_CONNECTIONS], seen[m::POOL_IDLE], seen[m::POOL_IN_USE]);
        assert!(in_use >= 1.0, "{seen:?}");
        assert!(
            (open - (idle + in_use)).abs() < 0.5,
            "open is idle plus in use: {seen:?}"
        );
        assert!(open <= 3.0, "{seen:?}");
        assert_eq!(seen.get(m::POOL_MAX), Some(&3.0));
        drop(held);
        store.close().await;
        Ok(())
    }

    enum Held {
        Sqlite(#[allow(dead_code)] sqlx::pool::PoolConnection<sqlx::Sqlite>),
        Postgres(#[allow(dead_code)] sqlx::pool::PoolConnection<sqlx::Postgres>),
    }

    /// The fixture's backend name, for a service name of its own.
    fn kind<F: StoreFixture>(_: &F) -> &'static str {
        F::KIND
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_operations_and_pools_are_measured() -> anyhow::Result<()> {
    let f = SqliteFixture::start().await?;
    measured::operations_and_pools_are_measured(&f, "it_measured", MIGRATIONS).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_operations_and_pools_are_measured() -> anyhow::Result<()> {
    let f = PostgresFixture::start().await?;
    measured::operations_and_pools_are_measured(&f, "it_measured", MIGRATIONS).await
}

/// Generates one `#[tokio::test]` per store test for a fixture, each with
/// its own schema prefix.
macro_rules! store_suite {
    ($module:ident, $fixture:ty) => {
        mod $module {
            store_suite!(@tests $fixture;
                migrations_run,
                ping_works,
                connecting_twice_is_idempotent,
                replicas_connecting_at_once,
                services_do_not_share_rows,
            );
        }
    };
    (@tests $fixture:ty; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() -> anyhow::Result<()> {
                let fixture = <$fixture as super::StoreFixture>::start().await?;
                super::contract::$test(&fixture, concat!("it_", stringify!($test))).await
            }
        )*
    };
}

store_suite!(sqlite, super::SqliteFixture);
store_suite!(postgres, super::PostgresFixture);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_one_file_per_service() -> anyhow::Result<()> {
    let f = SqliteFixture::start().await?;
    let a = f.connect("unused", "svc-a").await?;
    insert(&a, "x").await?;
    a.close().await;
    assert!(f.dir.path().join("svc_a.db").is_file(), "`svc-a` is stored in svc_a.db");

    // A `sqlite://DIR` URL puts the files in DIR instead of the data directory.
    let elsewhere = tempfile::tempdir()?;
    let cfg = DatabaseConfig {
        url: Some(format!("sqlite://{}", elsewhere.path().display())),
        ..DatabaseConfig::default()
    };
    let b = Store::connect(&cfg, f.data_dir(), "svc_b", MIGRATIONS).await?;
    assert_eq!(applied(&b).await?, [1]);
    b.close().await;
    assert!(elsewhere.path().join("svc_b.db").is_file());
    assert!(!f.dir.path().join("svc_b.db").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gives_each_service_its_own_schema() -> anyhow::Result<()> {
    let f = PostgresFixture::start().await?;
    let prefix = "it_schemas";
    let a = f.connect(prefix, "svc_a").await?;
    let b = f.connect(prefix, "svc_b").await?;
    let (
        Store::Postgres {
            pool: pool_a,
            schema: schema_a,
            ..
        },
        Store::Postgres {
            pool: pool_b,
            schema: schema_b,
            ..
        },
    ) = (&a, &b)
    else {
        anyhow::bail!("expected PostgreSQL stores, got {} and {}", a.kind(), b.kind());
    };
    assert_eq!(schema_a, "it_schemas_svc_a");
    assert_eq!(schema_b, "it_schemas_svc_b");

    // Each schema has its own tables and its own migration history.
    let tables = |schema: &str| {
        let schema = schema.to_owned();
        let pool = pool_a.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
            )
            .bind(schema)
            .fetch_all(&pool)
            .await
        }
    };
    assert_eq!(tables(schema_a).await?, ["_sqlx_migrations", "items"]);
    assert_eq!(tables(schema_b).await?, ["_sqlx_migrations", "items"]);

    // A table made in one service's schema is not visible to the other.
    sqlx::query("CREATE TABLE only_in_a (id INT)").execute(pool_a).await?;
    sqlx::query("SELECT count(*) FROM only_in_a").execute(pool_a).await?;
    let err = sqlx::query("SELECT count(*) FROM only_in_a")
        .execute(pool_b)
        .await
        .expect_err("svc_b must not see svc_a's table");
    let code = err
        .as_database_error()
        .and_then(|e| e.code().map(std::borrow::Cow::into_owned));
    assert_eq!(code.as_deref(), Some("42P01"), "undefined_table, got {err}");
    assert_eq!(tables(schema_a).await?, ["_sqlx_migrations", "items", "only_in_a"]);
    assert_eq!(tables(schema_b).await?, ["_sqlx_migrations", "items"]);

    // Rows stay with their service, also across a reconnect.
    insert(&a, "a-row").await?;
    assert!(names(&b).await?.is_empty());
    a.close().await;
    let a = f.connect(prefix, "svc_a").await?;
    assert_eq!(names(&a).await?, ["a-row"]);
    a.close().await;
    b.close().await;
    Ok(())
}

/// Each service publishes its store's health as the fact
/// `health{component="database"}` for the default `database-unhealthy` rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_publishes_its_store_health() -> anyhow::Result<()> {
    use futures::StreamExt;
    use pantau_core::bus::{Bus, Subscription};
    let f = SqliteFixture::start().await?;
    let store = f.connect("unused", "svc").await?;
    let bus: std::sync::Arc<dyn Bus> = std::sync::Arc::new(pantau_core::bus::memory::MemoryBus::new());
    let mut events = bus
        .subscribe(Subscription::live("pantau.event.metrics_update.svc"))
        .await?;
    let ctx = pantau_core::service::Context::new(
        std::sync::Arc::new(pantau_config::Config::default()),
        std::sync::Arc::clone(&bus),
    )
    .service("svc");
    ctx.watch_store(&store);
    let msg = tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
        .await
        .context("no store health published")?
        .context("stream ended")?;
    let e: pantau_proto::v1::RouterEvent = pantau_core::bus::decode(&msg).context("a RouterEvent")?;
    assert_eq!(e.attributes["fact"], "health");
    assert_eq!(e.attributes["component"], "database");
    assert_eq!(e.attributes["value"], "healthy");
    assert_eq!(e.source, "svc");
    ctx.shutdown.cancel();
    ctx.stop_tasks().await;
    store.close().await;
    Ok(())
}
