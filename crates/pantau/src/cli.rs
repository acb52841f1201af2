//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Pantau watches networks and services: endpoints, routers, WAN uplinks and
/// the hosts it runs on, and tells you when something is wrong.
///
/// Configuration comes from the YAML file given with --config (or
/// PANTAU_CONFIG), then from environment variables: PANTAU_<SECTION>__<KEY>
/// (e.g. PANTAU_COLLECTOR__INTERVAL=15s) and the original names such as
/// INSTANCE_NAME or WORKER_LOAD_BALANCING_STRATEGY; flags win over both.
/// See examples/pantau.yaml for every key.
#[derive(Debug, Parser)]
#[command(name = "pantau", version, propagate_version = true)]
pub struct Cli {
    /// The YAML configuration file.
    #[arg(short, long, global = true, env = "PANTAU_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log filter, e.g. `info` or `warn,pantau_collector=debug` (overrides log.level).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Log format (overrides log.format).
    #[arg(long, global = true)]
    pub log_format: Option<LogFormatArg>,

    /// Directory for SQLite files and generated secrets (overrides data_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Auto,
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every service in one process: the single-machine default.
    ///
    /// Without nats.url the services talk over an in-process bus; the gateway
    /// serves on gateway.port (8080), each service's gRPC on its port, and one
    /// admin port (admin_port, 9100) carries /metrics, /healthz and /readyz.
    All(RunArgs),
    /// Run the collector alone: checks targets and publishes results on NATS.
    Collector(RunArgs),
    /// Run the gateway alone: REST API and WebSocket hub over results from NATS.
    Gateway(RunArgs),
    /// Run the notifier alone: delivers alert events from NATS and Alertmanager
    /// webhooks (POST /webhooks/alertmanager on notifier.admin_port) to channels.
    Notifier(RunArgs),
    /// Run the alert engine alone: evaluates rules over facts from NATS and
    /// publishes alert events; gRPC AlertEngineService on alert_engine.grpc_port.
    AlertEngine(RunArgs),
    /// Run the WAN detector alone: judges which router interfaces are WAN
    /// uplinks (and their ISPs) from router data on NATS; gRPC
    /// WanDetectorService on wan_detector.grpc_port.
    WanDetector(RunArgs),
    /// Run the sync-api alone: multi-location instances, config sync,
    /// consensus and failover; gRPC SyncService on sync.grpc_port. Needs
    /// sync.enabled (ENABLE_SYNC_API) or sync.primary_url (PRIMARY_SYNC_URL).
    SyncApi(RunArgs),
    /// Show or check configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage the gateway's users (run where the gateway's data directory or
    /// database is; every change is audited).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Mint tokens and manage API keys for the REST and WebSocket API.
    ///
    /// `pantau token create --scope monitoring:read --ttl 1h` prints a JWT
    /// signed with the gateway's key; add `--api-key --name ci` for a
    /// revocable API key instead (stored hashed, shown once).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

/// A user's role.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// monitoring:read.
    Viewer,
    /// monitoring:read and monitoring:write.
    Editor,
    /// Every scope, users and keys included.
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. The password is read from standard input with
    /// --password-stdin; otherwise one is generated and printed once.
    Add {
        username: String,
        #[arg(long, value_enum, default_value = "viewer")]
        role: RoleArg,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users and their roles.
    List,
    /// Delete a user (tokens already issued live until they expire).
    Delete { username: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new token (or, with --api-key, a new API key) on standard output.
    Create {
        /// A scope: monitoring:read, monitoring:write or admin (repeatable).
        #[arg(long = "scope", required = true, value_name = "SCOPE")]
        scope: Vec<String>,
        /// Lifetime, e.g. 1h or 90d (default: gateway.auth.login_ttl for a
        /// token; no expiry for an API key). At most gateway.auth.max_token_ttl.
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// Who the token speaks for (default cli:<your user name>).
        #[arg(long)]
        subject: Option<String>,
        /// Create a revocable API key instead of a JWT.
        #[arg(long)]
        api_key: bool,
        /// The API key's name (with --api-key).
        #[arg(long, requires = "api_key")]
        name: Option<String>,
    },
    /// List API keys (never the keys themselves).
    List,
    /// Revoke an API key at once.
    Revoke { id: String },
}

/// Options of the commands that run services.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// NATS server URL (overrides nats.url); required for a service run alone.
    #[arg(long, value_name = "URL")]
    pub nats_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (file + environment + flags) with secrets masked.
    Print,
    /// Validate a configuration file; exits 0 when it is usable, 2 with the reasons when not.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

impl Cli {
    /// Flags become the highest-precedence `PANTAU_` overrides.
    pub fn push_overrides(&self, env: &mut Vec<(String, String)>) {
        if let Some(l) = &self.log_level {
            env.push(("PANTAU_LOG__LEVEL".into(), l.clone()));
        }
        if let Some(f) = self.log_format {
            let v = match f {
                LogFormatArg::Auto => "auto",
                LogFormatArg::Pretty => "pretty",
                LogFormatArg::Json => "json",
            };
            env.push(("PANTAU_LOG__FORMAT".into(), v.into()));
        }
        if let Some(d) = &self.data_dir {
            env.push(("PANTAU_DATA_DIR".into(), d.display().to_string()));
        }
        if let Command::All(a)
        | Command::Collector(a)
        | Command::Gateway(a)
        | Command::Notifier(a)
        | Command::AlertEngine(a)
        | Command::WanDetector(a)
        | Command::SyncApi(a) = &self.command
            && let Some(u) = &a.nats_url
        {
            env.push(("PANTAU_NATS__URL".into(), u.clone()));
        }
    }
}
