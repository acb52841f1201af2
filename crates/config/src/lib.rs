//! Pantau's configuration: one YAML file with a section per service.
//!
//! Sources, later ones winning: built-in defaults → the YAML file → the
//! original specification's environment aliases (`INSTANCE_NAME`, …) →
//! `PANTAU_<SECTION>__<KEY>` environment variables. The result is validated
//! once ([`Config::validate`]); every error names the key, the value and what
//! is allowed. `examples/pantau.yaml` is the commented reference.

mod alert_engine;
mod auth;
mod console;
pub mod duration;
mod escalation;
pub mod exporters;
mod grpc;
mod labels;
mod load;
pub mod maintenance;
pub mod maintenance_api;
pub mod manual_alert;
mod notifier;
mod notifier_channels;
pub mod proto;
mod routers;
mod sections;
mod sync;
mod target;
mod text;
pub mod types;
mod validate;
mod wan_detector;
mod yaml_file;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use alert_engine::{
    AlertEngineConfig, AlertRuleConfig, AlertSeverity, DependenciesConfig, IncidentsConfig, WatchdogConfig,
};
pub use auth::{AuthConfig, CorsConfig, JwtAlgorithm, RateLimitConfig};
pub use console::{ConsoleConfig, StatusGroupConfig, StatusPageConfig, is_slug};
pub use escalation::{EscalationConfig, EscalationStep};
pub use exporters::{DatadogConfig, ExportersConfig};
pub use grpc::{GrpcConfig, is_loopback_url};
pub use labels::Labels;
pub use load::{ConfigError, Invalid, LoadOptions};
pub use maintenance::{CronSchedule, MaintenanceChecks, MaintenanceWindow};
pub use manual_alert::{MANUAL_RULE, ManualAlert, ManualAlertError, RawManualAlert};
pub use notifier::*;
pub use routers::{
    DEFAULT_RETRIES, DEFAULT_ROUTEROS_PORT, DEFAULT_ROUTEROS_TLS_PORT, DEFAULT_SNMP_PORT, RouterConfig, RouterDriver,
    SnmpAuthProtocol, SnmpConfig, SnmpPrivProtocol, SnmpVersion,
};
pub use sections::*;
pub use sync::{InstanceRole, SyncConfig};
pub use target::*;
pub use validate::is_subject_token as is_token;
pub use wan_detector::{ManualWan, WanDetectorConfig, WanTrafficConfig};

/// The whole configuration of one Pantau process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Who this instance is and where it watches from.
    pub instance: InstanceConfig,
    /// Directory for SQLite files and generated secrets (`DATABASE_PATH`).
    #[serde(deserialize_with = "text::path")]
    pub data_dir: PathBuf,
    /// Address the gateway, the admin port and the sync API bind to, and
    /// every server of a single-service command (`pantau collector`).
    pub listen_host: String,
    /// Address the internal gRPC servers (collector, notifier, alert engine,
    /// WAN detector) bind to in `pantau all`, where only the gateway calls
    /// them: loopback unless an operator opens them on purpose.
    pub internal_listen_host: std::net::IpAddr,
    /// Admin port of `pantau all` (`/metrics`, `/healthz`, `/readyz`, webhooks).
    pub admin_port: u16,
    /// How long in-flight work may take to drain after SIGINT/SIGTERM.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// Logging.
    pub log: LogConfig,
    /// Tracing export.
    pub telemetry: TelemetryConfig,
    /// gRPC authentication (bearer tokens) and TLS, for every server and client.
    pub grpc: GrpcConfig,
    /// The NATS bus; without `url`, `pantau all` uses the in-process bus.
    pub nats: NatsConfig,
    /// SQL storage; without `url`, one SQLite file per service in `data_dir`.
    pub database: DatabaseConfig,
    /// Host metrics collection.
    pub metrics: MetricsConfig,
    /// The collector service.
    pub collector: CollectorConfig,
    /// The gateway service.
    pub gateway: GatewayConfig,
    /// Multi-location sync (primary, dependent and standalone instances).
    pub sync: SyncConfig,
    /// The alert engine service: rules and alerts.
    pub alert_engine: AlertEngineConfig,
    /// The notifier service: channels, routes, retries.
    pub notifier: NotifierConfig,
    /// The WAN detector service: WAN interfaces and ISPs per router.
    pub wan_detector: WanDetectorConfig,
    /// Maintenance windows: what they cover pages no one while they hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub maintenance: Vec<MaintenanceWindow>,
    /// Exports to other monitoring systems (DataDog); each off unless set.
    pub exporters: ExportersConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            instance: InstanceConfig::default(),
            data_dir: PathBuf::from("./data"),
            listen_host: "0.0.0.0".to_owned(),
            internal_listen_host: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            admin_port: 9100,
            shutdown_grace: Duration::from_secs(10),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
            grpc: GrpcConfig::default(),
            nats: NatsConfig::default(),
            database: DatabaseConfig::default(),
            metrics: MetricsConfig::default(),
            collector: CollectorConfig::default(),
            gateway: GatewayConfig::default(),
            sync: SyncConfig::default(),
            alert_engine: AlertEngineConfig::default(),
            notifier: NotifierConfig::default(),
            wan_detector: WanDetectorConfig::default(),
            maintenance: Vec::new(),
            exporters: ExportersConfig::default(),
        }
    }
}

impl Config {
    /// Loads and validates: defaults, then `opts.file`, then the environment.
    pub fn load(opts: &LoadOptions) -> Result<Self, ConfigError> {
        load::load(opts)
    }

    /// Checks every value; the error lists each wrong key with its value and
    /// what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = validate::problems(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// A copy with every secret replaced by `***`, for printing and logging.
    #[must_use]
    pub fn masked(&self) -> Self {
        let mut c = self.clone();
        c.nats.url = c.nats.url.as_deref().map(mask_urls_passwords);
        if c.nats.token.is_some() {
            c.nats.token = Some(MASK.to_owned());
        }
        c.database.url = c.database.url.as_deref().map(mask_url_password);
        c.sync.primary_url = c.sync.primary_url.as_deref().map(mask_url_password);
        if c.sync.token.is_some() {
            c.sync.token = Some(MASK.to_owned());
        }
        c.notifier.mask();
        c.alert_engine.alertmanager_url = c.alert_engine.alertmanager_url.as_deref().map(mask_url_password);
        c.alert_engine.watchdog.url = c
            .alert_engine
            .watchdog
            .url
            .as_deref()
            .map(|u| notifier::mask_channel_url(ChannelType::Webhook, u));
        c.collector.mask();
        c.gateway.auth.mask();
        c.grpc.mask();
        // The DataDog key is never in the configuration (an env name or a
        // file); a proxy URL's password is.
        if let Some(d) = c.exporters.datadog.as_mut() {
            d.url = d.url.as_ref().map(types::HttpUrl::masked);
        }
        c
    }

    /// Settings that are accepted for the original specification's sake but
    /// change nothing in Pantau, each with why; the binary logs them once at start.
    pub fn notices(&self) -> Vec<String> {
        let d = &self.gateway.dashboard;
        let mut out = Vec::new();
        if !d.enabled {
            out.push(
                "gateway.dashboard.enabled (DASHBOARD_ENABLED) = false has no effect: the WebSocket hub also serves \
                 the API, so it stays on"
                    .to_owned(),
            );
        }
        if let Some(i) = d.real_time_update_interval {
            out.push(format!(
                "gateway.dashboard.real_time_update_interval (DASHBOARD_REAL_TIME_UPDATE_INTERVAL) = {} has no \
                 effect: events are pushed to clients as they happen",
                duration::format(i)
            ));
        }
        out
    }

    /// The effective configuration as YAML, secrets masked.
    pub fn to_masked_yaml(&self) -> String {
        serde_yaml::to_string(&self.masked()).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

const MASK: &str = "***";

/// [`mask_url_password`] on each URL of a comma-separated list (the seeds
/// of a NATS cluster in `nats.url`).
pub fn mask_urls_passwords(urls: &str) -> String {
    urls.split(',')
        .map(|u| mask_url_password(u.trim()))
        .collect::<Vec<_>>()
        .join(",")
}

/// `scheme://user:secret@host` → `scheme://user:***@host`; other text unchanged.
pub fn mask_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let masked = match userinfo.find(':') {
        Some(colon) => format!("{}:{MASK}", &userinfo[..colon]),
        None => MASK.to_owned(),
    };
    format!("{}://{masked}{}", &url[..scheme_end], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_in_urls() {
        assert_eq!(
            mask_url_password("postgres://pantau:s3cret@db:5432/pantau"),
            "postgres://pantau:***@db:5432/pantau"
        );
        assert_eq!(mask_url_password("nats://tok@n:4222"), "nats://***@n:4222");
        assert_eq!(mask_url_password("nats://n:4222"), "nats://n:4222");
        assert_eq!(
            mask_urls_passwords("nats://a:s1@n1:4222, nats://tok@n2:4222,nats://n3:4222"),
            "nats://a:***@n1:4222,nats://***@n2:4222,nats://n3:4222"
        );
        assert_eq!(mask_url_password("not a url"), "not a url");
    }

    #[test]
    fn masked_config_hides_every_secret() {
        let mut c = Config::default();
        c.database.url = Some("postgres://u:hunter2@h/db".into());
        c.nats.token = Some("natstoken".into());
        c.sync.token = Some("synctoken".into());
        c.grpc.service_token = Some("grpcservicetoken".into());
        let mut push = RawTarget::new("cron", CheckType::Push);
        push.token = Some("pushtoken-0123456789".into());
        let mut api = RawTarget::new("api", CheckType::Http);
        api.url = Some("https://user:urlpass@api.example/".into());
        api.headers.insert("Authorization".into(), "Bearer headertoken".into());
        c.collector.targets = vec![push.parse("t").unwrap().into(), api.parse("t").unwrap().into()];
        let yaml = c.to_masked_yaml();
        for secret in [
            "hunter2",
            "natstoken",
            "synctoken",
            "grpcservicetoken",
            "pushtoken",
            "urlpass",
            "headertoken",
        ] {
            assert!(!yaml.contains(secret), "{secret} leaked:\n{yaml}");
        }
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }
}
