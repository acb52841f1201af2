//! Reading the configuration: YAML file, environment aliases, `PANTAU_` variables.

use std::fmt;
use std::path::PathBuf;

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::Config;

/// Where the configuration comes from. The binary fills `env` from the
/// process environment; tests pass their own, so none mutates the process.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The YAML file, if any.
    pub file: Option<PathBuf>,
    /// Environment variables to honour (`PANTAU_*` and the aliases).
    pub env: Vec<(String, String)>,
}

impl LoadOptions {
    /// `file` plus the process environment.
    pub fn from_process(file: Option<PathBuf>) -> Self {
        Self {
            file,
            env: std::env::vars().collect(),
        }
    }
}

/// One wrong value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Dotted key, e.g. `collector.targets[0].url`.
    pub key: String,
    /// The value as given.
    pub value: String,
    /// What is allowed.
    pub allowed: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            return write!(f, "`{}`: {}", crate::types::quote(&self.key), self.allowed);
        }
        write!(
            f,
            "`{}` = `{}`: {}",
            crate::types::quote(&self.key),
            crate::types::quote(&self.value),
            self.allowed
        )
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration:\n{}", .0.join("\n"))]
    Parse(Vec<String>),
    #[error("invalid configuration:\n{}", .0.iter().map(|i| format!("  {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Invalid>),
}

/// The original specification's names, honoured below the `PANTAU_` ones.
const ALIASES: &[(&str, &str)] = &[
    ("ENABLE_SYNC_API", "sync.enabled"),
    ("SYNC_API_PORT", "sync.grpc_port"),
    ("PRIMARY_SYNC_URL", "sync.primary_url"),
    ("INSTANCE_NAME", "instance.name"),
    ("INSTANCE_LOCATION", "instance.location"),
    ("FAILOVER_ORDER", "sync.failover_order"),
    ("SYNC_INTERVAL", "sync.sync_interval"),
    ("HEARTBEAT_INTERVAL", "sync.heartbeat_interval"),
    ("WORKER_LOAD_BALANCING_STRATEGY", "collector.workers.strategy"),
    ("METRICS_ENABLED", "metrics.enabled"),
    ("METRICS_COLLECTION_INTERVAL", "metrics.collection_interval"),
    ("METRICS_BROADCAST_METRICS", "metrics.broadcast"),
    ("DATABASE_PATH", "data_dir"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "telemetry.otlp_endpoint"),
];

/// Alias families: `WORKER_CIRCUIT_BREAKER_FAILURE_THRESHOLD` → `collector.circuit_breaker.failure_threshold`.
const ALIAS_PREFIXES: &[(&str, &str)] = &[
    ("WORKER_CIRCUIT_BREAKER_", "collector.circuit_breaker"),
    ("DASHBOARD_", "gateway.dashboard"),
];

/// Variables under the prefix that are not configuration keys.
const NOT_KEYS: &[&str] = &["PANTAU_CONFIG"];

pub(super) fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
    let mut figment = Figment::new();
    let mut file_targets = None;
    if let Some(path) = &opts.file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        if !text.trim().is_empty() {
            let file = crate::yaml_file::parse(&text).map_err(|e| {
                ConfigError::Parse(vec![format!("  {} (from YAML file {})", bounded(&e), path.display())])
            })?;
            drop(text);
            file_targets = file.targets;
            figment = figment.merge(YamlFile {
                path: path.clone(),
                dict: file.dict,
            });
        }
    }
    // In the given order, so a later duplicate (a command-line flag) wins.
    let env = &opts.env;
    let mut env_targets = false;
    for (name, value) in env {
        if let Some(path) = alias_path(name, value) {
            figment = figment.merge(EnvVar::new(name, path, value));
        }
    }
    for (name, value) in env {
        if let Some(path) = pantau_path(name) {
            env_targets |= path.len() >= 2 && path[0] == "collector" && path[1] == "targets";
            figment = figment.merge(EnvVar::new(name, path, value));
        }
    }
    let mut config: Config = figment.extract().map_err(|e| ConfigError::Parse(describe(e)))?;
    // The file's targets, unless the environment gives its own (which win,
    // as any key of the environment does).
    if let Some(targets) = file_targets.filter(|_| !env_targets) {
        config.collector.targets = targets;
    }
    config.validate()?;
    Ok(config)
}

/// The YAML file's sections but `collector.targets` (see `yaml_file`), as a
/// figment provider so that errors name the file.
struct YamlFile {
    path: PathBuf,
    dict: Dict,
}

impl Provider for YamlFile {
    fn metadata(&self) -> Metadata {
        Metadata::from("YAML file", self.path.as_path())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

fn alias_path(name: &str, value: &str) -> Option<Vec<String>> {
    // The original specification gives an instance its place as a number
    // (`FAILOVER_ORDER=2`); Pantau also takes the whole order as names.
    if name == "FAILOVER_ORDER" && !value.trim().is_empty() && value.trim().bytes().all(|b| b.is_ascii_digit()) {
        return Some(vec!["sync".to_owned(), "failover_rank".to_owned()]);
    }
    if let Some((_, path)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return Some(path.split('.').map(str::to_owned).collect());
    }
    ALIAS_PREFIXES.iter().find_map(|(prefix, section)| {
        let key = name.strip_prefix(prefix)?;
        let mut path: Vec<String> = section.split('.').map(str::to_owned).collect();
        path.push(key.to_ascii_lowercase());
        Some(path)
    })
}

fn pantau_path(name: &str) -> Option<Vec<String>> {
    if NOT_KEYS.contains(&name) {
        return None;
    }
    let rest = name.strip_prefix("PANTAU_")?;
    if rest.is_empty() {
        return None;
    }
    Some(rest.split("__").map(str::to_ascii_lowercase).collect())
}

/// One environment variable as a figment provider, so errors name the variable.
struct EnvVar {
    name: String,
    path: Vec<String>,
    value: String,
}

impl EnvVar {
    fn new(name: &str, path: Vec<String>, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            path,
            value: value.to_owned(),
        }
    }
}

impl Provider for EnvVar {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("environment variable {}", self.name))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let leaf: Value = self
            .value
            .parse()
            .unwrap_or_else(|never: std::convert::Infallible| match never {});
        let mut value = leaf;
        for key in self.path.iter().skip(1).rev() {
            let mut d = Dict::new();
            d.insert(key.clone(), value);
            value = Value::from(d);
        }
        let mut top = Dict::new();
        top.insert(self.path[0].clone(), value);
        Ok(Profile::Default.collect(top))
    }
}

/// `text` cut in the middle when it is long: serde's messages quote the
/// whole offending value (`invalid type: found string "…300 KB…", expected
/// a boolean`), and an error must quote only a little of the input while
/// keeping what was expected, at the end.
fn bounded(text: &str) -> String {
    const KEEP: usize = 150;
    if text.len() <= 3 * KEEP {
        return text.to_owned();
    }
    let mut head = KEEP;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - KEEP;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}… ({} bytes) …{}", &text[..head], text.len(), &text[tail..])
}

/// Each figment error as `key: problem (from source)`.
fn describe(err: figment::Error) -> Vec<String> {
    err.into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                "(top level)".to_owned()
            } else {
                e.path.join(".")
            };
            let source = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            // A message that already names its own keys (every problem of
            // `collector.targets`, each as `collector.targets[3].url`) is shown as it is.
            let kind = e.kind.to_string();
            if kind.starts_with(&format!("`{key}")) {
                format!("  {}{source}", kind.replace("; `", &format!("{source}\n  `")))
            } else {
                format!("  `{key}`: {}{source}", bounded(&kind))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::LoadBalancingStrategy;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn yaml(text: &str) -> (tempfile::NamedTempFile, PathBuf) {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        let p = f.path().to_owned();
        (f, p)
    }

    #[test]
    fn env_overrides_file_and_aliases() {
        let (_f, path) = yaml("collector:\n  interval: 10s\ninstance:\n  name: from-file\n");
        let c = Config::load(&LoadOptions {
            file: Some(path),
            env: env(&[
                ("PANTAU_COLLECTOR__INTERVAL", "20s"),
                ("INSTANCE_NAME", "from-alias"),
                ("INSTANCE_LOCATION", "jakarta"),
                ("PANTAU_INSTANCE__LOCATION", "bandung"),
                ("WORKER_LOAD_BALANCING_STRATEGY", "least_connections"),
                ("WORKER_CIRCUIT_BREAKER_FAILURE_THRESHOLD", "7"),
                ("DASHBOARD_MAX_CONNECTIONS", "500"),
                ("FAILOVER_ORDER", "jkt-1, bdg-1"),
                ("SYNC_INTERVAL", "45"),
                ("PANTAU_CONFIG", "ignored.yaml"),
                ("HOME", "/root"),
            ]),
        })
        .unwrap();
        assert_eq!(c.collector.interval, Duration::from_secs(20));
        assert_eq!(c.instance.name, "from-alias");
        assert_eq!(c.instance.location, "bandung");
        assert_eq!(c.collector.workers.strategy, LoadBalancingStrategy::LeastConnections);
        assert_eq!(c.collector.circuit_breaker.failure_threshold, 7);
        assert_eq!(c.gateway.dashboard.max_connections, 500);
        assert_eq!(c.sync.failover_order, vec!["jkt-1", "bdg-1"]);
        assert_eq!(c.sync.sync_interval, Duration::from_secs(45));
    }

    /// Every variable of the original specification's compose file, with its values.
    #[test]
    fn the_original_compose_environment_loads() {
        let c = Config::load(&LoadOptions {
            file: None,
            env: env(&[
                ("ENABLE_SYNC_API", "true"),
                ("SYNC_API_PORT", "50055"),
                ("PRIMARY_SYNC_URL", "http://127.0.0.1:50055"),
                ("INSTANCE_NAME", "bandung-1"),
                ("INSTANCE_LOCATION", "bandung"),
                ("FAILOVER_ORDER", "2"),
                ("SYNC_INTERVAL", "30"),
                ("HEARTBEAT_INTERVAL", "10"),
                ("WORKER_LOAD_BALANCING_STRATEGY", "round_robin"),
                ("WORKER_CIRCUIT_BREAKER_ENABLED", "false"),
                ("WORKER_CIRCUIT_BREAKER_FAILURE_THRESHOLD", "5"),
                ("WORKER_CIRCUIT_BREAKER_RECOVERY_TIMEOUT", "60"),
                ("METRICS_ENABLED", "true"),
                ("METRICS_COLLECTION_INTERVAL", "15"),
                ("METRICS_BROADCAST_METRICS", "true"),
                ("DASHBOARD_ENABLED", "true"),
                ("DASHBOARD_REAL_TIME_UPDATE_INTERVAL", "5"),
                ("DASHBOARD_MAX_CONNECTIONS", "100"),
                ("DATABASE_PATH", "/tmp/pantau-data"),
            ]),
        })
        .unwrap();
        assert_eq!(c.sync.failover_rank, Some(2));
        let (_f, path) = yaml("collector:\n  targets:\n    - {id: p, type: ping, host: 127.0.0.1}\n");
        let pinged = Config::load(&LoadOptions {
            file: Some(path),
            env: vec![],
        })
        .unwrap();
        assert_eq!(
            pinged.collector.targets[0].check(),
            crate::CheckType::Icmp,
            "`ping` is `icmp`"
        );
        assert!(c.sync.failover_order.is_empty());
        assert!(!c.collector.circuit_breaker.enabled);
        assert_eq!(
            c.gateway.dashboard.real_time_update_interval,
            Some(Duration::from_secs(5))
        );
        let notices = c.notices();
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(
            notices[0].contains("DASHBOARD_REAL_TIME_UPDATE_INTERVAL"),
            "{notices:?}"
        );
    }

    #[test]
    fn a_refused_variable_names_itself_and_what_it_expected() {
        for (name, value, want) in [
            ("FAILOVER_ORDER", "-1", "instance names"),
            ("WORKER_CIRCUIT_BREAKER_ENABLED", "perhaps", "bool"),
            ("DASHBOARD_REAL_TIME_UPDATE_INTERVAL", "soon", "duration"),
            ("SYNC_API_PORT", "70000", "u16"),
        ] {
            let err = Config::load(&LoadOptions {
                file: None,
                env: env(&[(name, value)]),
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(&format!("environment variable {name}")), "{err}");
            assert!(err.contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn negative_interval_names_the_key() {
        let (_f, path) = yaml("collector:\n  interval: -5s\n");
        let err = Config::load(&LoadOptions {
            file: Some(path),
            env: vec![],
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("`collector.interval`"), "{err}");
        assert!(err.contains("-5s"), "{err}");
    }

    #[test]
    fn an_interval_past_the_maximum_names_the_key_and_the_maximum() {
        for (yaml_text, key) in [
            (
                "collector:\n  targets:\n    - {id: far, type: tcp, address: '127.0.0.1:1', interval: 3000d}\n",
                "`collector.targets[0].interval`",
            ),
            ("collector:\n  interval: 800d\n", "`collector.interval`"),
            (
                "collector:\n  targets:\n    - {id: p, type: push, token: abcdefghijklmnopq, grace: 100d}\n",
                "`collector.targets[0].grace`",
            ),
        ] {
            let (_f, path) = yaml(yaml_text);
            let err = Config::load(&LoadOptions {
                file: Some(path),
                env: vec![],
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(key), "{err}");
            assert!(err.contains("30d"), "names the maximum: {err}");
        }
        let (_f, path) =
            yaml("collector:\n  targets:\n    - {id: ok, type: tcp, address: '127.0.0.1:1', interval: 30d}\n");
        assert!(
            Config::load(&LoadOptions {
                file: Some(path),
                env: vec![]
            })
            .is_ok(),
            "30 days is the longest interval allowed"
        );
    }

    #[test]
    fn reuse_connection_is_a_bool_of_http_targets_only() {
        for (yaml_text, want) in [
            (
                "collector:\n  targets:\n    - {id: w, type: http, url: 'http://127.0.0.1/', reuse_connection: sometimes}\n",
                "reuse_connection",
            ),
            (
                "collector:\n  targets:\n    - {id: t, type: tcp, address: '127.0.0.1:1', reuse_connection: false}\n",
                "does not apply to a tcp target",
            ),
        ] {
            let (_f, path) = yaml(yaml_text);
            let err = Config::load(&LoadOptions {
                file: Some(path),
                env: vec![],
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn unknown_key_is_an_error() {
        let (_f, path) = yaml("collector:\n  intervall: 5s\n");
        let err = Config::load(&LoadOptions {
            file: Some(path),
            env: vec![],
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("intervall"), "{err}");
        let err = Config::load(&LoadOptions {
            file: None,
            env: env(&[("PANTAU_COLLECTOR__NOPE", "1")]),
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("PANTAU_COLLECTOR__NOPE"), "{err}");
    }

    #[test]
    fn wrong_enum_value_lists_choices() {
        let err = Config::load(&LoadOptions {
            file: None,
            env: env(&[("WORKER_LOAD_BALANCING_STRATEGY", "fastest")]),
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("collector.workers.strategy"), "{err}");
        assert!(err.contains("least_connections"), "{err}");
    }

    #[test]
    fn numeric_looking_names_stay_strings() {
        let c = Config::load(&LoadOptions {
            file: None,
            env: env(&[("INSTANCE_NAME", "123")]),
        })
        .unwrap();
        assert_eq!(c.instance.name, "123");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = Config::load(&LoadOptions {
            file: Some("/nonexistent/pantau.yaml".into()),
            env: vec![],
        })
        .unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
    }
}
