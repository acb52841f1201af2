//! Database metrics per service, taken at the store layer so no query has
//! to say anything:
//!
//! - `pantau_db_query_duration_seconds{service}`: each operation run through
//!   [`with_pool!`](crate::with_pool) (one statement, or a transaction);
//! - `pantau_db_slow_queries_total{service}`: those that took at least
//!   `database.slow_query_threshold` (100 ms unless configured);
//! - `pantau_db_pool_connections{service}` (open), `…_idle_connections`,
//!   `…_in_use_connections` and `…_max_connections`: each pool [`Store::connect`]
//!   made, read at every scrape ([`collect`]).

use std::sync::Mutex;

use tokio::time::Instant;

use super::{Meta, Store};

pub const QUERY_DURATION: &str = "pantau_db_query_duration_seconds";
pub const SLOW_QUERIES: &str = "pantau_db_slow_queries_total";
pub const POOL_CONNECTIONS: &str = "pantau_db_pool_connections";
pub const POOL_IDLE: &str = "pantau_db_pool_idle_connections";
pub const POOL_IN_USE: &str = "pantau_db_pool_in_use_connections";
pub const POOL_MAX: &str = "pantau_db_pool_max_connections";

/// The pools connected in this process, one per service (the latest).
static POOLS: Mutex<Vec<Store>> = Mutex::new(Vec::new());

fn pools() -> std::sync::MutexGuard<'static, Vec<Store>> {
    POOLS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        QUERY_DURATION,
        Unit::Seconds,
        "Time of each store operation (a statement or a transaction), by service"
    );
    describe_counter!(
        SLOW_QUERIES,
        Unit::Count,
        "Store operations that took at least database.slow_query_threshold, by service"
    );
    describe_gauge!(POOL_CONNECTIONS, Unit::Count, "Open connections of the service's pool");
    describe_gauge!(POOL_IDLE, Unit::Count, "Idle connections of the service's pool");
    describe_gauge!(POOL_IN_USE, Unit::Count, "Connections of the service's pool in use");
    describe_gauge!(POOL_MAX, Unit::Count, "Most connections the service's pool may open");
}

/// Keeps `store`'s pool for [`collect`] (replacing an earlier pool of the
/// same service) and puts its counters on `/metrics` at 0.
pub(crate) fn register(store: &Store) {
    describe();
    let service = store.meta().service().to_owned();
    metrics::counter!(SLOW_QUERIES, "service" => service.clone()).increment(0);
    let mut pools = pools();
    pools.retain(|s| s.meta().service() != service);
    pools.push(store.clone());
    drop(pools);
    collect();
}

/// Sets the pool gauges of every open pool; forgets the closed ones.
pub fn collect() {
    let mut pools = pools();
    pools.retain(|s| match s {
        Store::Sqlite(p, _) => !p.is_closed(),
        Store::Postgres { pool, .. } => !pool.is_closed(),
    });
    for s in pools.iter() {
        let (size, idle, max) = match s {
            Store::Sqlite(p, _) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            Store::Postgres { pool, .. } => (pool.size(), pool.num_idle(), pool.options().get_max_connections()),
        };
        let service = s.meta().service().to_owned();
        let idle = idle as f64;
        let size = f64::from(size);
        metrics::gauge!(POOL_CONNECTIONS, "service" => service.clone()).set(size);
        metrics::gauge!(POOL_IDLE, "service" => service.clone()).set(idle);
        metrics::gauge!(POOL_IN_USE, "service" => service.clone()).set((size - idle).max(0.0));
        metrics::gauge!(POOL_MAX, "service" => service).set(f64::from(max));
    }
}

/// Times one store operation; records when dropped (finished, returned
/// early or cancelled).
#[must_use]
pub struct Timed<'a> {
    meta: &'a Meta,
    started: Instant,
}

impl<'a> Timed<'a> {
    pub fn start(meta: &'a Meta) -> Self {
        Self {
            meta,
            started: Instant::now(),
        }
    }
}

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        let took = self.started.elapsed();
        let service = self.meta.service().to_owned();
        if took >= self.meta.slow {
            metrics::counter!(SLOW_QUERIES, "service" => service.clone()).increment(1);
        }
        metrics::histogram!(QUERY_DURATION, "service" => service).record(took.as_secs_f64());
    }
}
