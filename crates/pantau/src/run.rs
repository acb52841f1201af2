//! Running services: bind every listener first (so a port clash fails before
//! anything starts), run until a signal or a service failure, then drain
//! within `shutdown_grace`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use pantau_config::Config;
use pantau_core::bus::{self, nats::connect_or_memory};
use pantau_core::service::Context;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::cli::Command;

type ServiceResult = (&'static str, Result<(), String>);

pub async fn run(command: &Command, config: Config) -> ExitCode {
    let (name, services): (&str, &[&str]) = match command {
        Command::All(_) => (
            "all",
            &[
                "collector",
                "gateway",
                "notifier",
                "alert-engine",
                "wan-detector",
                "sync-api",
            ],
        ),
        Command::Collector(_) => ("collector", &["collector"]),
        Command::Gateway(_) => ("gateway", &["gateway"]),
        Command::Notifier(_) => ("notifier", &["notifier"]),
        Command::AlertEngine(_) => ("alert-engine", &["alert-engine"]),
        Command::WanDetector(_) => ("wan-detector", &["wan-detector"]),
        Command::SyncApi(_) => ("sync-api", &["sync-api"]),
        Command::Config { .. } | Command::User { .. } | Command::Token { .. } => {
            unreachable!("config, user and token commands do not run services")
        }
    };
    let telemetry = match pantau_core::telemetry::init(name, &config.log, &config.telemetry) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    pantau_core::telemetry::prometheus();
    for notice in config.notices() {
        tracing::warn!("{notice}");
    }
    let code = match start(name, services, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "pantau stopped with an error");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

async fn bind(config: &Config, key: &str, port: u16) -> Result<TcpListener, String> {
    let addr = format!("{}:{port}", config.listen_host);
    let l = TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} ({key}): {e}"))?;
    let local = l.local_addr().map_or(addr, |a: SocketAddr| a.to_string());
    tracing::info!(key, addr = %local, "listening");
    Ok(l)
}

async fn start(name: &str, services: &[&str], config: Config) -> Result<(), String> {
    let config = Arc::new(config);
    let wants = |s: &str| services.contains(&s);
    // Bind everything first: a busy port stops us before any work starts.
    let admin_port = if name == "all" {
        ("admin_port", config.admin_port)
    } else if wants("collector") {
        ("collector.admin_port", config.collector.admin_port)
    } else if wants("notifier") {
        ("notifier.admin_port", config.notifier.admin_port)
    } else if wants("alert-engine") {
        ("alert_engine.admin_port", config.alert_engine.admin_port)
    } else if wants("wan-detector") {
        ("wan_detector.admin_port", config.wan_detector.admin_port)
    } else if wants("sync-api") {
        ("sync.admin_port", config.sync.admin_port)
    } else {
        ("gateway.port", 0)
    };
    let admin = if name == "gateway" {
        None // the gateway's own port carries /metrics, /healthz and /readyz
    } else {
        Some(bind(&config, admin_port.0, admin_port.1).await?)
    };
    let collector_grpc = if wants("collector") {
        Some(bind(&config, "collector.grpc_port", config.collector.grpc_port).await?)
    } else {
        None
    };
    let notifier_grpc = if wants("notifier") {
        Some(bind(&config, "notifier.grpc_port", config.notifier.grpc_port).await?)
    } else {
        None
    };
    let alert_engine_grpc = if wants("alert-engine") {
        Some(bind(&config, "alert_engine.grpc_port", config.alert_engine.grpc_port).await?)
    } else {
        None
    };
    let wan_detector_grpc = if wants("wan-detector") {
        Some(bind(&config, "wan_detector.grpc_port", config.wan_detector.grpc_port).await?)
    } else {
        None
    };
    // A standalone instance (neither sync.enabled nor sync.primary_url) runs
    // no sync-api; `pantau sync-api` alone refuses to start.
    if name == "sync-api" && !config.sync.active() {
        return Err(
            "sync is not enabled: set sync.enabled (ENABLE_SYNC_API) for a primary or sync.primary_url (PRIMARY_SYNC_URL) for a dependent".to_owned(),
        );
    }
    let sync_grpc = if wants("sync-api") && config.sync.active() {
        Some(bind(&config, "sync.grpc_port", config.sync.grpc_port).await?)
    } else {
        None
    };
    let gateway = if wants("gateway") {
        Some(bind(&config, "gateway.port", config.gateway.port).await?)
    } else {
        None
    };

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

    let mut set: JoinSet<ServiceResult> = JoinSet::new();
    if let Some(l) = collector_grpc {
        let c = ctx.clone();
        set.spawn(async move {
            (
                "collector",
                pantau_collector::run(c, l).await.map_err(|e| e.to_string()),
            )
        });
    }
    // The notifier's webhook route rides on the admin port (9104 alone, 9100 in `all`).
    let webhooks = pantau_notifier::Webhooks::default();
    if let Some(l) = notifier_grpc {
        let c = ctx.clone();
        let hooks = webhooks.clone();
        set.spawn(async move {
            (
                "notifier",
                pantau_notifier::run(c, l, hooks).await.map_err(|e| e.to_string()),
            )
        });
    }
    if let Some(l) = alert_engine_grpc {
        let c = ctx.clone();
        set.spawn(async move {
            (
                "alert-engine",
                pantau_alert_engine::run(c, l).await.map_err(|e| e.to_string()),
            )
        });
    }
    if let Some(l) = sync_grpc {
        let c = ctx.clone();
        set.spawn(async move { ("sync-api", pantau_sync_api::run(c, l).await.map_err(|e| e.to_string())) });
    }
    if let Some(l) = wan_detector_grpc {
        let c = ctx.clone();
        set.spawn(async move {
            (
                "wan-detector",
                pantau_wan_detector::run(c, l).await.map_err(|e| e.to_string()),
            )
        });
    }
    if let Some(l) = gateway {
        let c = ctx.clone();
        set.spawn(async move { ("gateway", pantau_gateway::run(c, l).await.map_err(|e| e.to_string())) });
    }
    if let Some(l) = admin {
        let mut router = pantau_core::health::admin_router(ctx.health.clone());
        if wants("notifier") {
            router = router.merge(webhooks.router());
        }
        let stop = ctx.shutdown.clone();
        set.spawn(async move {
            let served = axum_serve(l, router, stop).await;
            ("admin", served)
        });
    }

    let mut failure = None;
    // Run until a signal, or until a service stops on its own (a failure).
    tokio::select! {
        biased;
        () = ctx.shutdown.cancelled() => {}
        Some(joined) = set.join_next() => {
            // A task that ends because shutdown began is no failure.
            if !ctx.shutdown.is_cancelled() {
                failure = Some(describe(joined));
                ctx.shutdown.cancel();
            }
        }
    }
    let grace = config.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        while let Some(joined) = set.join_next().await {
            if let (svc, Err(e)) = describe_pair(joined)
                && failure.is_none()
            {
                failure = Some(format!("{svc}: {e}"));
            }
        }
    })
    .await
    .is_ok();
    if drained {
        tracing::info!("stopped cleanly");
    } else {
        tracing::warn!(grace = %pantau_config::duration::format(grace), "services did not stop within shutdown_grace; exiting anyway");
    }
    match failure {
        Some(f) if !f.is_empty() => Err(f),
        _ => Ok(()),
    }
}

fn describe_pair(joined: Result<ServiceResult, tokio::task::JoinError>) -> (&'static str, Result<(), String>) {
    match joined {
        Ok(r) => r,
        Err(e) => ("task", Err(format!("panicked or was cancelled: {e}"))),
    }
}

/// A service that returned before shutdown: its error, or that it stopped early.
fn describe(joined: Result<ServiceResult, tokio::task::JoinError>) -> String {
    match describe_pair(joined) {
        (svc, Err(e)) => format!("{svc}: {e}"),
        (svc, Ok(())) => format!("{svc} stopped unexpectedly"),
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
