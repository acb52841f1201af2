//! What the detector keeps across restarts: the last `wan_detected` answer
//! published per router (its signature: WAN interfaces and ISPs), one row per
//! router, so a restart does not announce an unchanged answer again. The
//! rest of its state is rebuilt from the next poll.

use std::collections::HashMap;
use std::time::SystemTime;

use pantau_core::store::{Migrations, Store, StoreError};
use pantau_core::with_pool;
use sqlx::Row;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The WAN detector's migrations.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// The published answers, in SQL.
#[derive(Debug, Clone)]
pub struct WanStore {
    store: Store,
}

impl WanStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Every router's last published signature.
    pub async fn load(&self) -> Result<HashMap<String, String>, StoreError> {
        let rows = with_pool!(&self.store, pool => {
            let mut out = HashMap::new();
            for r in sqlx::query("SELECT router_id, signature FROM wan_routers").fetch_all(pool).await? {
                out.insert(r.try_get::<String, _>("router_id")?, r.try_get::<String, _>("signature")?);
            }
            out
        });
        Ok(rows)
    }

    /// Records that `signature` was published for `router_id`.
    pub async fn save(&self, router_id: &str, signature: &str, at: SystemTime) -> Result<(), StoreError> {
        let ms = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        with_pool!(&self.store, pool => {
            sqlx::query(
                "INSERT INTO wan_routers (router_id, signature, updated_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (router_id) DO UPDATE SET signature = excluded.signature, updated_at_ms = excluded.updated_at_ms",
            )
            .bind(router_id)
            .bind(signature)
            .bind(ms)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
