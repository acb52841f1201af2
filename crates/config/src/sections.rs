//! The sections of [`super::Config`], one struct each.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{TargetConfig, duration, text};

/// Who this instance is and where it watches from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InstanceConfig {
    /// Instance name, unique across locations (`INSTANCE_NAME`).
    #[serde(deserialize_with = "text::deserialize")]
    pub name: String,
    /// Location checks run from; the `<location>` of result subjects (`INSTANCE_LOCATION`).
    #[serde(deserialize_with = "text::deserialize")]
    pub location: String,
}

impl Default for InstanceConfig {
    fn default() -> Self {
        Self {
            name: "pantau".to_owned(),
            location: "local".to_owned(),
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    #[default]
    Auto,
    Pretty,
    Json,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `auto`, `pretty` or `json`.
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter, e.g. `info,pantau_collector=debug`; `RUST_LOG` wins when set.
    #[serde(deserialize_with = "text::deserialize")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            level: "info".to_owned(),
        }
    }
}

/// Trace export.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP/gRPC endpoint for traces (`OTEL_EXPORTER_OTLP_ENDPOINT`); unset means no export.
    pub otlp_endpoint: Option<String>,
}

/// The NATS bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// `nats://host:4222`, or several seeds of one cluster separated by commas
    /// (`nats://a:4222,nats://b:4222`); unset means the in-process bus (only for `pantau all`).
    pub url: Option<String>,
    /// Authentication token, if the server wants one.
    #[serde(deserialize_with = "text::option")]
    pub token: Option<String>,
    /// PEM file of the CA that signed the servers' TLS certificates; set, the
    /// connection must use TLS and the server is verified against it.
    pub ca_file: Option<std::path::PathBuf>,
    /// JetStream stream that captures `pantau.>`.
    #[serde(deserialize_with = "text::deserialize")]
    pub stream: String,
    /// Oldest message the stream keeps.
    #[serde(with = "duration")]
    pub max_age: Duration,
    /// Most bytes the stream keeps.
    pub max_bytes: i64,
    /// How long a publish waits for the server's acknowledgement.
    #[serde(with = "duration")]
    pub publish_timeout: Duration,
    /// Copies of the stream JetStream keeps on distinct servers of a cluster
    /// (1–5): 3 survives losing one server. More than the cluster's servers
    /// and the stream cannot be created.
    pub replicas: usize,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: None,
            token: None,
            ca_file: None,
            stream: "PANTAU".to_owned(),
            max_age: Duration::from_secs(24 * 3600),
            max_bytes: 1 << 30,
            publish_timeout: Duration::from_secs(5),
            replicas: 1,
        }
    }
}

/// SQL storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://user:pass@host/db` for PostgreSQL (a schema per service);
    /// `sqlite://dir` for SQLite files in `dir`; unset means SQLite in `data_dir`.
    pub url: Option<String>,
    /// Prefix of the PostgreSQL schema names (`<prefix>_<service>`).
    #[serde(deserialize_with = "text::deserialize")]
    pub schema_prefix: String,
    /// Most connections in each service's pool.
    pub max_connections: u32,
    /// A store operation taking at least this long counts in
    /// `pantau_db_slow_queries_total{service}` (1 ms to 1 h).
    #[serde(with = "duration")]
    pub slow_query_threshold: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            schema_prefix: "pantau".to_owned(),
            max_connections: 8,
            slow_query_threshold: Duration::from_millis(100),
        }
    }
}

/// Host metrics collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Collect host metrics (`METRICS_ENABLED`).
    pub enabled: bool,
    /// How often (`METRICS_COLLECTION_INTERVAL`).
    #[serde(with = "duration")]
    pub collection_interval: Duration,
    /// Also publish them on the bus for dashboards (`METRICS_BROADCAST_METRICS`).
    pub broadcast: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            collection_interval: Duration::from_secs(30),
            broadcast: true,
        }
    }
}

/// How checks are spread over workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancingStrategy {
    #[default]
    RoundRobin,
    LeastConnections,
    Random,
    WeightedRoundRobin,
}

/// The collector's worker pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    /// Workers the due checks are spread over. Each is one task running its
    /// checks together, so this is also how many of the runtime's threads
    /// the checks can keep busy: keep it at least the number of cores.
    pub count: usize,
    /// Most checks in flight at once, across all workers.
    pub concurrency: usize,
    /// `round_robin`, `least_connections`, `random` or `weighted_round_robin`
    /// (`WORKER_LOAD_BALANCING_STRATEGY`).
    pub strategy: LoadBalancingStrategy,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            count: 4,
            concurrency: 256,
            strategy: LoadBalancingStrategy::RoundRobin,
        }
    }
}

/// Per-target circuit breaker (`WORKER_CIRCUIT_BREAKER_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitBreakerConfig {
    /// Whether failing targets are backed off at all (`WORKER_CIRCUIT_BREAKER_ENABLED`);
    /// when false every target is checked at its interval however often it fails.
    pub enabled: bool,
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open before trial calls.
    #[serde(with = "duration")]
    pub recovery_timeout: Duration,
    /// Trial calls allowed while half-open.
    pub half_open_max_calls: u32,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            failure_threshold: 5,
            recovery_timeout: Duration::from_secs(60),
            half_open_max_calls: 3,
        }
    }
}

/// The collector service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// gRPC port (`CollectorService`, health, reflection).
    pub grpc_port: u16,
    /// Admin port when run alone (`pantau collector`).
    pub admin_port: u16,
    /// Default check interval.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Default check timeout.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// The worker pool.
    pub workers: WorkersConfig,
    /// Per-target circuit breaker.
    pub circuit_breaker: CircuitBreakerConfig,
    /// Rolled-up history of check results.
    pub history: HistoryConfig,
    /// Error-rate thresholds of the collector's own health.
    pub health: CollectorHealthConfig,
    /// Which share of the targets this replica checks.
    pub shard: ShardConfig,
    /// What to watch (shared with the collector's running targets, not copied).
    #[serde(deserialize_with = "crate::target::deserialize_targets")]
    pub targets: Vec<std::sync::Arc<TargetConfig>>,
    /// Routers polled over SNMP (interfaces, counters, default routes).
    pub routers: Vec<super::RouterConfig>,
}

/// Targets sharded among collector replicas: a replica checks the targets
/// whose id hashes (FNV-1a) to its `index` modulo `count`. Every replica must
/// have the same targets and `count`; with PostgreSQL, targets added through
/// the API reach their owner within `reload_interval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardConfig {
    /// This replica's shard, from 0 (in Kubernetes, the StatefulSet pod index).
    pub index: u32,
    /// How many replicas share the targets; 1 means no sharding.
    pub count: u32,
    /// How often a sharded replica reloads targets added through the API.
    #[serde(with = "duration")]
    pub reload_interval: Duration,
}

impl Default for ShardConfig {
    fn default() -> Self {
        Self {
            index: 0,
            count: 1,
            reload_interval: Duration::from_secs(30),
        }
    }
}

impl ShardConfig {
    /// Whether this replica checks `target_id`.
    pub fn owns(&self, target_id: &str) -> bool {
        if self.count <= 1 {
            return true;
        }
        // FNV-1a: stable across versions and platforms, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in target_id.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h % u64::from(self.count) == u64::from(self.index)
    }
}

/// Per-minute and per-hour aggregates of check results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// How long per-minute aggregates are kept.
    #[serde(with = "duration")]
    pub minute_retention: Duration,
    /// How long per-hour aggregates are kept.
    #[serde(with = "duration")]
    pub hour_retention: Duration,
    /// How often finished minutes are written.
    #[serde(with = "duration")]
    pub flush_interval: Duration,
    /// The most interfaces per router whose traffic is kept (the first ones
    /// seen; the rest are counted in
    /// `pantau_collector_traffic_interfaces_left_out_total`), 1–4096.
    pub max_interfaces_per_router: u32,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            minute_retention: Duration::from_secs(7 * 86_400),
            hour_retention: Duration::from_secs(400 * 86_400),
            flush_interval: Duration::from_secs(10),
            max_interfaces_per_router: 256,
        }
    }
}

/// The collector's health from its check error rate over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorHealthConfig {
    /// The window the error rate is measured over.
    #[serde(with = "duration")]
    pub window: Duration,
    /// Below this error percentage the collector is healthy.
    pub degraded_percent: f64,
    /// Above this error percentage the collector is critical.
    pub critical_percent: f64,
}

impl Default for CollectorHealthConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            degraded_percent: 1.0,
            critical_percent: 5.0,
        }
    }
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            grpc_port: 50051,
            admin_port: 9101,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            workers: WorkersConfig::default(),
            circuit_breaker: CircuitBreakerConfig::default(),
            history: HistoryConfig::default(),
            health: CollectorHealthConfig::default(),
            shard: ShardConfig::default(),
            targets: Vec::new(),
            routers: Vec::new(),
        }
    }
}

/// Real-time dashboards (`DASHBOARD_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// `DASHBOARD_ENABLED` of the original specification. The WebSocket hub
    /// serves the API as well as dashboards, so `false` has no effect here;
    /// it is accepted and reported once at start.
    pub enabled: bool,
    /// `DASHBOARD_REAL_TIME_UPDATE_INTERVAL` of the original specification.
    /// Events are pushed to clients as they happen, so an interval has no
    /// effect here; it is accepted and reported once at start.
    #[serde(with = "duration::option")]
    pub real_time_update_interval: Option<Duration>,
    /// Most WebSocket clients at once (`DASHBOARD_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// How often the server pings each client.
    #[serde(with = "duration")]
    pub ping_interval: Duration,
    /// A client silent this long is closed.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// Messages buffered per client; a slower client loses its oldest.
    pub client_buffer: usize,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            real_time_update_interval: None,
            max_connections: 10_000,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            client_buffer: 1024,
        }
    }
}

/// The gateway service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// REST, WebSocket, `/metrics` and `/health` port.
    pub port: u16,
    /// The collector's gRPC address, for push monitors and target calls.
    pub collector_url: String,
    /// The alert engine's gRPC address, for the alert routes.
    pub alert_engine_url: String,
    /// The local sync-api's gRPC address, for the `/sync/api/…` routes.
    pub sync_url: String,
    /// The notifier's gRPC address, for the channel and delivery routes.
    pub notifier_url: String,
    /// The WAN detector's gRPC address, for the router and WAN routes.
    pub wan_detector_url: String,
    /// Real-time dashboards.
    pub dashboard: DashboardConfig,
    /// Who may call the API.
    pub auth: super::AuthConfig,
    /// Requests per client.
    pub rate_limit: super::RateLimitConfig,
    /// Browser origins allowed to call the API.
    pub cors: super::CorsConfig,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// The web console under `/console`.
    pub console: super::ConsoleConfig,
    /// Public status pages (no login) at `/status/{slug}`; only the targets
    /// placed on one get badges under `/badge/{target}/…`.
    pub status_pages: Vec<super::StatusPageConfig>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            port: 8080,
            collector_url: "http://127.0.0.1:50051".to_owned(),
            alert_engine_url: "http://127.0.0.1:50053".to_owned(),
            sync_url: "http://127.0.0.1:50055".to_owned(),
            notifier_url: "http://127.0.0.1:50054".to_owned(),
            wan_detector_url: "http://127.0.0.1:50052".to_owned(),
            dashboard: DashboardConfig::default(),
            auth: super::AuthConfig::default(),
            rate_limit: super::RateLimitConfig::default(),
            cors: super::CorsConfig::default(),
            max_body_bytes: 1 << 20,
            console: super::ConsoleConfig::default(),
            status_pages: Vec::new(),
        }
    }
}

#[cfg(test)]
mod shard_tests {
    use super::ShardConfig;

    #[test]
    fn every_target_has_exactly_one_owner_and_shares_are_even() {
        let shards: Vec<ShardConfig> = (0..3)
            .map(|index| ShardConfig {
                index,
                count: 3,
                ..ShardConfig::default()
            })
            .collect();
        let mut per = [0usize; 3];
        for i in 0..3000 {
            let id = format!("target-{i}");
            let owners: Vec<usize> = (0..3).filter(|s| shards[*s].owns(&id)).collect();
            assert_eq!(owners.len(), 1, "{id}");
            per[owners[0]] += 1;
        }
        assert!(per.iter().all(|&n| (850..1150).contains(&n)), "{per:?}");
        // Stable across builds: FNV-1a of "web" is fixed.
        assert!(
            ShardConfig {
                index: 1,
                count: 2,
                ..ShardConfig::default()
            }
            .owns("web")
        );
        assert!(ShardConfig::default().owns("anything"));
    }
}
