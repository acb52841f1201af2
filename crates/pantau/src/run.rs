//! Running services: bind every listener first (so a port clash fails before
//! anything starts), run until a signal or a service failure, then drain
//! within `shutdown_grace`.
//!
//! The services come from one table, [`SERVICES`]: a name, the listener its
//! `run` serves, its own admin port when it runs alone, and how to run it.
//! Each service runs on a child of the process's shutdown token (see
//! `pantau_core::lifecycle`): when one returns before shutdown — its server
//! failed, or a critical task did — the others are cancelled, drained
//! within the grace period, and the process exits non-zero naming it.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use pantau_config::Config;
use pantau_core::bus::{self, nats::connect_or_memory};
use pantau_core::service::Context;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::Command;

type ServiceResult = Result<(), String>;
type Running = Pin<Box<dyn Future<Output = ServiceResult> + Send>>;

/// What services share beyond the context.
#[derive(Clone, Default)]
struct Shared {
    /// The notifier's webhook route rides on the admin port (9104 alone, 9100 in `all`).
    webhooks: pantau_notifier::Webhooks,
}

/// One service of the binary.
struct Service {
    name: &'static str,
    /// The config key and port of the listener its `run` serves (gRPC, or
    /// the gateway's HTTP port).
    port: fn(&Config) -> (&'static str, u16),
    /// Its admin port when it runs alone; `None` when its own port carries
    /// `/metrics`, `/healthz` and `/readyz` (the gateway).
    admin: Option<fn(&Config) -> (&'static str, u16)>,
    /// Whether `pantau all` runs it with this configuration.
    in_all: fn(&Config) -> bool,
    /// Whether, in `pantau all`, only the gateway calls it: it then binds
    /// `internal_listen_host` (loopback by default) instead of `listen_host`.
    internal: bool,
    run: fn(Context, TcpListener, Shared) -> Running,
}

fn err<E: std::fmt::Display>(r: Result<(), E>) -> ServiceResult {
    r.map_err(|e| e.to_string())
}

/// Every service, in the order their listeners are bound.
const SERVICES: &[Service] = &[
    Service {
        name: "collector",
        port: |c| ("collector.grpc_port", c.collector.grpc_port),
        admin: Some(|c| ("collector.admin_port", c.collector.admin_port)),
        in_all: |_| true,
        internal: true,
        run: |ctx, l, _| Box::pin(async move { err(pantau_collector::run(ctx, l).await) }),
    },
    Service {
        name: "notifier",
        port: |c| ("notifier.grpc_port", c.notifier.grpc_port),
        admin: Some(|c| ("notifier.admin_port", c.notifier.admin_port)),
        in_all: |_| true,
        internal: true,
        run: |ctx, l, s| Box::pin(async move { err(pantau_notifier::run(ctx, l, s.webhooks).await) }),
    },
    Service {
        name: "alert-engine",
        port: |c| ("alert_engine.grpc_port", c.alert_engine.grpc_port),
        admin: Some(|c| ("alert_engine.admin_port", c.alert_engine.admin_port)),
        in_all: |_| true,
        internal: true,
        run: |ctx, l, _| Box::pin(async move { err(pantau_alert_engine::run(ctx, l).await) }),
    },
    Service {
        name: "wan-detector",
        port: |c| ("wan_detector.grpc_port", c.wan_detector.grpc_port),
        admin: Some(|c| ("wan_detector.admin_port", c.wan_detector.admin_port)),
        in_all: |_| true,
        internal: true,
        run: |ctx, l, _| Box::pin(async move { err(pantau_wan_detector::run(ctx, l).await) }),
    },
    // A standalone instance (neither sync.enabled nor sync.primary_url) runs
    // no sync-api; `pantau sync-api` alone refuses to start.
    Service {
        name: "sync-api",
        port: |c| ("sync.grpc_port", c.sync.grpc_port),
        admin: Some(|c| ("sync.admin_port", c.sync.admin_port)),
        in_all: |c| c.sync.active(),
        internal: false,
        run: |ctx, l, _| Box::pin(async move { err(pantau_sync_api::run(ctx, l).await) }),
    },
    Service {
        name: "gateway",
        port: |c| ("gateway.port", c.gateway.port),
        admin: None,
        in_all: |_| true,
        internal: false,
        run: |ctx, l, _| Box::pin(async move { err(pantau_gateway::run(ctx, l).await) }),
    },
];

pub async fn run(command: &Command, config: Config) -> ExitCode {
    let (name, only) = match command {
        Command::All(_) => ("all", None),
        Command::Collector(_) => ("collector", Some("collector")),
        Command::Gateway(_) => ("gateway", Some("gateway")),
        Command::Notifier(_) => ("notifier", Some("notifier")),
        Command::AlertEngine(_) => ("alert-engine", Some("alert-engine")),
        Command::WanDetector(_) => ("wan-detector", Some("wan-detector")),
        Command::SyncApi(_) => ("sync-api", Some("sync-api")),
        Command::Config { .. } | Command::User { .. } | Command::Token { .. } => {
            unreachable!("config, user and token commands do not run services")
        }
    };
    let services: Vec<&str> = SERVICES
        .iter()
        .map(|s| s.name)
        .filter(|s| only.is_none_or(|o| o == *s))
        .collect();
    let process = pantau_core::telemetry::Process {
        name,
        services: &services,
        instance: &config.instance.name,
    };
    let telemetry = match pantau_core::telemetry::init(process, &config.log, &config.telemetry) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    pantau_core::telemetry::prometheus();
    // Detached: it ends with the runtime.
    #[cfg(feature = "jemalloc")]
    tokio::spawn(crate::allocator::report());
    for notice in config.notices() {
        tracing::warn!("{notice}");
    }
    let code = match start(name, only, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "pantau stopped with an error");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

async fn bind(host: &str, key: &str, port: u16) -> Result<TcpListener, String> {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let l = TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} ({key}): {e}"))?;
    let local = l.local_addr().map_or(addr, |a: SocketAddr| a.to_string());
    tracing::info!(key, addr = %local, "listening");
    Ok(l)
}

async fn start(name: &str, only: Option<&str>, config: Config) -> Result<(), String> {
    let config = Arc::new(config);
    if only == Some("sync-api") && !config.sync.active() {
        return Err(
            "sync is not enabled: set sync.enabled (ENABLE_SYNC_API) for a primary or sync.primary_url (PRIMARY_SYNC_URL) for a dependent".to_owned(),
        );
    }
    let services: Vec<&Service> = SERVICES
        .iter()
        .filter(|s| only.map_or_else(|| (s.in_all)(&config), |o| o == s.name))
        .collect();
    // Bind everything first: a busy port stops us before any work starts.
    let admin = match (only, services.first()) {
        (None, _) => Some(("admin_port", config.admin_port)),
        (Some(_), Some(s)) => s.admin.map(|a| a(&config)),
        (Some(_), None) => None,
    };
    let admin = match admin {
        Some((key, port)) => Some(bind(&config.listen_host, key, port).await?),
        None => None,
    };
    let mut bound = Vec::new();
    for s in services {
        let (key, port) = (s.port)(&config);
        let host = if s.internal && only.is_none() {
            config.internal_listen_host.to_string()
        } else {
            config.listen_host.clone()
        };
        bound.push((s, bind(&host, key, port).await?));
    }

    if name != "all"
        && config.grpc.auth
        && config.gateway.auth.jwt_algorithm == pantau_config::JwtAlgorithm::Hs256
        && config.gateway.auth.jwt_secret.is_none()
    {
        tracing::warn!(
            "gateway.auth.jwt_secret is not set: `pantau {name}` signs and checks gRPC tokens with the secret generated in its own data directory; services run apart must share gateway.auth.jwt_secret (PANTAU_GATEWAY__AUTH__JWT_SECRET)"
        );
    }
    if config.nats.url.is_none() && name != "all" {
        tracing::warn!(
            "nats.url is not set: `pantau {name}` runs on an in-process bus and shares results with nobody; set nats.url (or --nats-url) to connect it to the other services"
        );
    }
    let bus = connect_or_memory(&config.nats, &format!("pantau-{name}-{}", config.instance.name))
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(bus = bus.kind(), instance = %config.instance.name, location = %config.instance.location, "starting pantau {name}");

    let ctx = Context {
        shutdown: pantau_core::shutdown::on_signals(),
        ..Context::new(Arc::clone(&config), Arc::clone(&bus))
    };
    ctx.health.register("bus", bus::readiness(bus));
    // With the sync-api in this process its election decides who evaluates:
    // nobody does until it has (a configured primary may have been replaced).
    if bound.iter().any(|(s, _)| s.name == "sync-api") {
        ctx.cluster
            .set(pantau_core::cluster::Role::Dependent { primary: String::new() });
    }

    let shared = Shared::default();
    let mut set = Supervised::default();
    let with_webhooks = bound.iter().any(|(s, _)| s.name == "notifier");
    for (s, listener) in bound {
        set.spawn(s.name, (s.run)(ctx.clone(), listener, shared.clone()));
    }
    if let Some(l) = admin {
        let mut router = pantau_core::health::admin_router(ctx.health.clone());
        if with_webhooks {
            router = router.merge(shared.webhooks.router());
        }
        set.spawn("admin", Box::pin(axum_serve(l, router, ctx.shutdown.clone())));
    }
    set.run(&ctx.shutdown, config.shutdown_grace).await
}

/// The running services (and the admin server) by name.
#[derive(Default)]
struct Supervised {
    set: JoinSet<ServiceResult>,
    names: HashMap<tokio::task::Id, &'static str>,
}

impl Supervised {
    fn spawn(&mut self, name: &'static str, run: Running) {
        // Spans a service starts are exported under its own name.
        let id = self.set.spawn(pantau_core::telemetry::in_service(name, run)).id();
        self.names.insert(id, name);
    }

    /// Which service finished (no longer running), and how.
    fn outcome(
        &mut self,
        joined: Result<(tokio::task::Id, ServiceResult), tokio::task::JoinError>,
    ) -> (&'static str, ServiceResult) {
        let (id, result) = match joined {
            Ok((id, r)) => (id, r),
            Err(e) => (e.id(), Err(format!("panicked or was cancelled: {e}"))),
        };
        (self.names.remove(&id).unwrap_or("a service"), result)
    }

    /// Runs until `shutdown` or until a service stops on its own (its error,
    /// or that it stopped early); then cancels the rest and waits for them
    /// up to `grace`. `Err` names the first service that failed.
    async fn run(mut self, shutdown: &CancellationToken, grace: Duration) -> Result<(), String> {
        let mut failure = None;
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {}
            Some(joined) = self.set.join_next_with_id() => {
                // A service that ends because shutdown began is no failure.
                if !shutdown.is_cancelled() {
                    let stopped = match self.outcome(joined) {
                        (name, Err(e)) => format!("{name}: {e}"),
                        (name, Ok(())) => format!("{name} stopped unexpectedly"),
                    };
                    tracing::error!(error = %stopped, "a service stopped; stopping the others");
                    failure = Some(stopped);
                    shutdown.cancel();
                }
            }
        }
        let drained = tokio::time::timeout(grace, async {
            while let Some(joined) = self.set.join_next_with_id().await {
                if let (name, Err(e)) = self.outcome(joined)
                    && failure.is_none()
                {
                    failure = Some(format!("{name}: {e}"));
                }
            }
        })
        .await
        .is_ok();
        if drained {
            tracing::info!("stopped cleanly");
        } else {
            let mut left: Vec<&str> = self.names.values().copied().collect();
            left.sort_unstable();
            tracing::warn!(grace = %pantau_config::duration::format(grace), still_running = ?left, "services did not stop within shutdown_grace; exiting anyway");
        }
        failure.map_or(Ok(()), Err)
    }
}

async fn axum_serve(
    listener: TcpListener,
    router: axum::Router,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), String> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(|e| format!("admin server: {e}"))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A service that runs until `stop` and notes that it was stopped.
    fn until(stop: &CancellationToken, stopped: &Arc<AtomicBool>) -> Running {
        let (stop, stopped) = (stop.clone(), Arc::clone(stopped));
        Box::pin(async move {
            stop.cancelled().await;
            stopped.store(true, Ordering::SeqCst);
            Ok(())
        })
    }

    fn after(ms: u64, result: ServiceResult) -> Running {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            result
        })
    }

    #[tokio::test]
    async fn a_failing_service_stops_the_others_and_is_named() {
        let stop = CancellationToken::new();
        let stopped = Arc::new(AtomicBool::new(false));
        let mut set = Supervised::default();
        set.spawn("gateway", until(&stop, &stopped));
        set.spawn("alert-engine", after(20, Err("task `consumer` failed: boom".into())));
        let r = set.run(&stop, Duration::from_secs(5)).await;
        assert_eq!(r, Err("alert-engine: task `consumer` failed: boom".to_owned()));
        assert!(stop.is_cancelled());
        assert!(
            stopped.load(Ordering::SeqCst),
            "the other service was cancelled and drained"
        );
    }

    #[tokio::test]
    async fn a_service_that_returns_early_or_panics_is_a_failure() {
        let stop = CancellationToken::new();
        let mut set = Supervised::default();
        set.spawn("collector", after(10, Ok(())));
        set.spawn("admin", until(&stop, &Arc::new(AtomicBool::new(false))));
        let r = set.run(&stop, Duration::from_secs(5)).await;
        assert_eq!(r, Err("collector stopped unexpectedly".to_owned()));

        let stop = CancellationToken::new();
        let mut set = Supervised::default();
        set.spawn(
            "notifier",
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                panic!("bad state")
            }),
        );
        set.spawn("admin", until(&stop, &Arc::new(AtomicBool::new(false))));
        let r = set.run(&stop, Duration::from_secs(5)).await.unwrap_err();
        assert!(r.starts_with("notifier: panicked"), "{r}");
    }

    #[tokio::test]
    async fn a_signal_stops_every_service_cleanly() {
        let stop = CancellationToken::new();
        let (a, b) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let mut set = Supervised::default();
        set.spawn("collector", until(&stop, &a));
        set.spawn("gateway", until(&stop, &b));
        let s = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.cancel();
        });
        assert_eq!(set.run(&stop, Duration::from_secs(5)).await, Ok(()));
        assert!(a.load(Ordering::SeqCst) && b.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_that_ignores_shutdown_is_left_after_the_grace_period() {
        let stop = CancellationToken::new();
        let mut set = Supervised::default();
        set.spawn("sync-api", after(10, Err("the lease bucket is gone".into())));
        set.spawn("wan-detector", Box::pin(std::future::pending()));
        let started = tokio::time::Instant::now();
        let r = set.run(&stop, Duration::from_secs(3)).await;
        assert_eq!(r, Err("sync-api: the lease bucket is gone".to_owned()));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(3) && took < Duration::from_secs(4),
            "{took:?}"
        );
    }

    #[test]
    fn the_table_names_every_command_once() {
        let names: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "collector",
                "notifier",
                "alert-engine",
                "wan-detector",
                "sync-api",
                "gateway"
            ]
        );
        let config = Config::default();
        let keys: Vec<&str> = SERVICES.iter().map(|s| (s.port)(&config).0).collect();
        assert_eq!(
            keys,
            [
                "collector.grpc_port",
                "notifier.grpc_port",
                "alert_engine.grpc_port",
                "wan_detector.grpc_port",
                "sync.grpc_port",
                "gateway.port"
            ]
        );
        assert!(SERVICES.iter().all(|s| s.admin.is_some() == (s.name != "gateway")));
        // A standalone instance runs no sync-api in `pantau all`.
        assert!(!(SERVICES[4].in_all)(&config));
    }
}
