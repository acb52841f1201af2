//! `pantau`: run one Pantau service or all of them, and check configuration.
//!
//! The binary is thin: it parses the command line, loads the configuration,
//! starts telemetry, and hands over to [`run`], which binds the listeners and
//! runs the services until a signal.

mod admin;
#[cfg(feature = "jemalloc")]
mod allocator;
mod cli;
mod run;

use std::process::ExitCode;

use clap::Parser;
use pantau_config::{Config, LoadOptions};

use crate::cli::{Cli, Command, ConfigCommand};

/// jemalloc instead of glibc's malloc: under many concurrent checks glibc's
/// arenas contend on their locks and fragment (malloc and free were about a
/// sixth of the collector's CPU with a new connection per check). Its
/// `malloc` is unprefixed, so SQLite and the C library allocate from it too:
/// glibc's per-thread arenas and main heap had held 26.1 MiB at 100,000
/// targets outside every gauge; the `pantau_allocator_*` gauges now count
/// the whole heap. Its run-time options
/// are read from `MALLOC_CONF`. Off with `--no-default-features`, for heap
/// profilers that hook malloc.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Config { command } => config_command(&cli, command),
        Command::User { command } => with_runtime(&cli, |c| async move { admin::user(&c, command).await }),
        Command::Token { command } => with_runtime(&cli, |c| async move { admin::token(&c, command).await }),
        Command::All(_)
        | Command::Collector(_)
        | Command::Gateway(_)
        | Command::Notifier(_)
        | Command::AlertEngine(_)
        | Command::WanDetector(_)
        | Command::SyncApi(_) => {
            let config = match load(&cli, cli.config.clone()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(run::run(&cli.command, config))
        }
    }
}

/// Loads the configuration and runs an administrative command on a small runtime.
fn with_runtime<F: std::future::Future<Output = ExitCode>>(cli: &Cli, f: impl FnOnce(Config) -> F) -> ExitCode {
    let config = match load(cli, cli.config.clone()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(f(config)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads and validates the configuration, printing what is wrong.
fn load(cli: &Cli, file: Option<std::path::PathBuf>) -> Result<Config, ExitCode> {
    let mut opts = LoadOptions::from_process(file);
    cli.push_overrides(&mut opts.env);
    Config::load(&opts).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn config_command(cli: &Cli, command: &ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::Print => match load(cli, cli.config.clone()) {
            Ok(c) => {
                print!("{}", c.to_masked_yaml());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        ConfigCommand::Check { file } => match load(cli, Some(file.clone())) {
            Ok(c) => {
                // Alert rules are parsed too: a bad expression names the rule, column and reason.
                if let Err(e) = pantau_alert_engine::rule::load_configured(&c.alert_engine) {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
                for notice in c.notices() {
                    eprintln!("note: {notice}");
                }
                println!(
                    "{}: ok ({} target{}, bus: {}, store: {})",
                    file.display(),
                    c.collector.targets.len(),
                    if c.collector.targets.len() == 1 { "" } else { "s" },
                    if c.nats.url.is_some() { "nats" } else { "in-process" },
                    if c.database.url.as_deref().is_some_and(|u| u.starts_with("postgres")) {
                        "postgres"
                    } else {
                        "sqlite"
                    },
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
    }
}
