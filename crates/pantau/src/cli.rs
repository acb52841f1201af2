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
    /// Show or check configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
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
        | Command::AlertEngine(a) = &self.command
            && let Some(u) = &a.nats_url
        {
            env.push(("PANTAU_NATS__URL".into(), u.clone()));
        }
    }
}
