//! SQL storage: a pool per service, SQLite by default, PostgreSQL in production.
//!
//! - SQLite: one file per service, `<data_dir>/<service>.db` (or under the
//!   directory of a `sqlite://DIR` URL), WAL mode.
//! - PostgreSQL: one database, one schema per service (`<prefix>_<service>`),
//!   selected through `search_path` on every connection, so the service's
//!   tables and its `_sqlx_migrations` live in its own schema.
//!
//! Each service embeds its migrations at compile time and hands both sets to
//! [`Store::connect`].

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool, SqlitePool};

use crate::health::ReadinessCheck;
use pantau_config::DatabaseConfig;

/// Why storage is unavailable.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database.url is not a valid {kind} URL: {source}")]
    Url {
        kind: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot connect to {what}: {source}")]
    Connect {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrations of {service} failed: {source}")]
    Migrate {
        service: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error(transparent)]
    Query(#[from] sqlx::Error),
}

/// A service's migrations, one set per backend (their SQL dialects differ).
#[derive(Clone, Copy)]
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

pub mod metrics;

/// What a store says of itself in its metrics: its service and the
/// `database.slow_query_threshold`.
#[derive(Debug, Clone)]
pub struct Meta {
    service: Arc<str>,
    slow: Duration,
}

impl Meta {
    pub fn new(service: &str, slow: Duration) -> Self {
        Self {
            service: service.into(),
            slow,
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }
}

/// A service's connection pool. Every operation through [`with_pool!`] is
/// timed for the service's `pantau_db_*` metrics ([`metrics`]).
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool, Meta),
    Postgres { pool: PgPool, schema: String, meta: Meta },
}

impl Store {
    /// Connects `service`'s pool and runs its migrations.
    pub async fn connect(
        cfg: &DatabaseConfig,
        data_dir: &Path,
        service: &str,
        migrations: Migrations,
    ) -> Result<Self, StoreError> {
        let service_token = service.replace('-', "_");
        let meta = Meta::new(service, cfg.slow_query_threshold);
        let store = match cfg.url.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let schema = format!("{}_{service_token}", cfg.schema_prefix);
                connect_postgres(url, &schema, cfg.max_connections, meta, migrations.postgres).await
            }
            Some(url) => {
                let dir = PathBuf::from(url.trim_start_matches("sqlite://"));
                connect_sqlite(&dir, &service_token, cfg.max_connections, meta, migrations.sqlite).await
            }
            None => connect_sqlite(data_dir, &service_token, cfg.max_connections, meta, migrations.sqlite).await,
        }?;
        metrics::register(&store);
        Ok(store)
    }

    /// The service and slow-query threshold of its metrics.
    pub fn meta(&self) -> &Meta {
        match self {
            Self::Sqlite(_, meta) | Self::Postgres { meta, .. } => meta,
        }
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(..) => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }

    /// A round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(p, _) => p.acquire().await?.ping().await?,
            Self::Postgres { pool, .. } => pool.acquire().await?.ping().await?,
        }
        Ok(())
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(p, _) => p.close().await,
            Self::Postgres { pool, .. } => pool.close().await,
        }
    }

    /// A readiness check for [`crate::health::Health`].
    pub fn readiness(&self) -> Arc<dyn ReadinessCheck> {
        Arc::new(self.clone())
    }
}

#[async_trait::async_trait]
impl ReadinessCheck for Store {
    async fn check(&self) -> Result<(), String> {
        self.ping().await.map_err(|e| e.to_string())
    }

    fn essential(&self) -> bool {
        true
    }
}

async fn connect_sqlite(
    dir: &Path,
    file_stem: &str,
    max: u32,
    meta: Meta,
    migrator: &Migrator,
) -> Result<Store, StoreError> {
    let service = meta.service();
    std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
        path: dir.to_owned(),
        source,
    })?;
    let path = dir.join(format!("{file_stem}.db"));
    let opts = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // With WAL, NORMAL is safe from corruption; a power cut may lose the
        // last commits, never the database.
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    // SQLite has no advisory lock for migrations, and switching a new file to
    // WAL needs it alone (a concurrent first connect can fail with "database
    // is locked" despite the busy timeout): pools of one process opening the
    // same file take turns to connect and migrate (PostgreSQL locks itself).
    static OPENING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let turn = OPENING.lock().await;
    let pool = SqlitePoolOptions::new()
        .max_connections(max)
        .connect_with(opts)
        .await
        .map_err(|source| StoreError::Connect {
            what: format!("SQLite database {}", path.display()),
            source,
        })?;
    migrator.run(&pool).await.map_err(|source| StoreError::Migrate {
        service: service.to_owned(),
        source,
    })?;
    drop(turn);
    tracing::info!(service, path = %path.display(), "sqlite store ready");
    Ok(Store::Sqlite(pool, meta))
}

async fn connect_postgres(
    url: &str,
    schema: &str,
    max: u32,
    meta: Meta,
    migrator: &Migrator,
) -> Result<Store, StoreError> {
    let service = meta.service();
    let base = PgConnectOptions::from_str(url).map_err(|source| StoreError::Url {
        kind: "PostgreSQL",
        source,
    })?;
    let what = || format!("PostgreSQL {}:{}", base.get_host(), base.get_port());
    // The schema must exist before connections select it.
    let mut conn = base
        .connect()
        .await
        .map_err(|source| StoreError::Connect { what: what(), source })?;
    // `schema` is built from validated tokens (schema_prefix, the service name).
    // Replicas starting together race here: `IF NOT EXISTS` is not atomic
    // in PostgreSQL, so the loser gets a unique violation, which means done.
    let created = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")))
        .execute(&mut conn)
        .await;
    if let Err(e) = created {
        let raced = e
            .as_database_error()
            .and_then(sqlx::error::DatabaseError::code)
            .is_some_and(|c| c == "23505" || c == "42P06");
        if !raced {
            return Err(e.into());
        }
    }
    conn.close().await?;
    let opts = base.clone().options([("search_path", schema)]);
    let pool = PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(opts)
        .await
        .map_err(|source| StoreError::Connect { what: what(), source })?;
    migrator.run(&pool).await.map_err(|source| StoreError::Migrate {
        service: service.to_owned(),
        source,
    })?;
    tracing::info!(service, schema, "postgres store ready");
    let schema = schema.to_owned();
    Ok(Store::Postgres { pool, schema, meta })
}

/// Runs `$body` with `$pool` bound to the store's concrete pool, so one
/// piece of portable SQL serves both backends:
/// `with_pool!(&store, pool => sqlx::query(SQL).bind(x).execute(pool).await)`.
/// Use `$1`-style bind parameters, which SQLite and PostgreSQL both accept.
///
/// The whole of `$body` is timed for `pantau_db_query_duration_seconds` and
/// `pantau_db_slow_queries_total` of the store's service (an early return
/// or a dropped future included).
#[macro_export]
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {{
        let store: &$crate::store::Store = $store;
        let _timed = $crate::store::metrics::Timed::start(store.meta());
        match store {
            $crate::store::Store::Sqlite($pool, _) => $body,
            $crate::store::Store::Postgres { pool: $pool, .. } => $body,
        }
    }};
}
