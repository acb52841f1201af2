//! Serving and calling gRPC the Pantau way.
//!
//! Every server ([`serve`]) has `grpc.health.v1` (open, so
//! grpc_health_probe and Kubernetes gRPC probes work), server reflection v1
//! and v1alpha listing exactly the services of its port (to authenticated
//! callers; off with `grpc.reflection: false`), TLS when
//! `grpc.tls_cert_file` is set, and the [`guard`] layer: a bearer JWT on
//! every call, the method's permission ([`access`]), writes audited in the
//! service's store ([`crate::audit`]), and per-method metrics ([`metrics`]). Clients ([`client::Channel`]) speak
//! TLS to `https://` URLs and present this process's `service` token
//! ([`Security`]). Both carry the W3C trace context in metadata ([`trace`]).

pub mod access;
pub mod client;
pub mod guard;
pub mod metrics;
pub mod trace;

use std::sync::{Arc, OnceLock};

use pantau_config::Config;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::ServingStatus;

pub use client::{Channel, ClientError, Credentials};

use crate::auth::{KeyError, Keys, ServiceToken};

/// Calls refused by the guard, by code.
pub const AUTH_REFUSALS: &str = "pantau_grpc_auth_refusals_total";
/// gRPC audit entries that could not be written.
pub const AUDIT_FAILURES: &str = "pantau_grpc_audit_failures_total";

/// Registers the descriptions of the gRPC metrics.
pub fn describe_metrics() {
    ::metrics::describe_counter!(
        AUTH_REFUSALS,
        "gRPC calls refused for missing, invalid or insufficient credentials, by code"
    );
    ::metrics::describe_counter!(AUDIT_FAILURES, "gRPC audit entries that could not be written");
}

/// Why a gRPC server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot read {key} {path}: {source}")]
    TlsFile {
        key: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serve TLS with grpc.tls_cert_file and grpc.tls_key_file: {0}")]
    Tls(String),
    #[error("the keys that check gRPC tokens: {0}")]
    Keys(Arc<KeyError>),
    #[error("the gRPC audit log: {0}")]
    Audit(#[from] crate::store::StoreError),
}

/// A process's gRPC security: the keys that check callers' tokens and mint
/// its own `service` token, and the TLS settings of its clients. Loaded on
/// first use and shared by every service of the process.
#[derive(Debug)]
pub struct Security {
    config: Arc<Config>,
    keys: OnceLock<Result<Arc<Keys>, Arc<KeyError>>>,
    service: OnceLock<Result<Arc<ServiceToken>, Arc<KeyError>>>,
}

impl Security {
    pub fn new(config: Arc<Config>) -> Self {
        Self {
            config,
            keys: OnceLock::new(),
            service: OnceLock::new(),
        }
    }

    /// The keys of `gateway.auth` (the HS256 secret generated into the data
    /// directory when none is configured).
    pub fn keys(&self) -> Result<Arc<Keys>, Arc<KeyError>> {
        self.keys
            .get_or_init(|| {
                Keys::load(&self.config.gateway.auth, &self.config.data_dir)
                    .map(Arc::new)
                    .map_err(Arc::new)
            })
            .clone()
    }

    /// This process's own token: `grpc.service_token`, else one it mints
    /// as `service:<instance.name>`.
    pub fn service_token(&self) -> Result<Arc<ServiceToken>, Arc<KeyError>> {
        self.service
            .get_or_init(|| {
                if let Some(t) = &self.config.grpc.service_token {
                    return Ok(Arc::new(ServiceToken::Fixed(t.clone())));
                }
                let keys = self.keys()?;
                if !keys.can_sign() {
                    return Err(Arc::new(KeyError::CannotSign(
                        "gRPC service calls (set grpc.service_token)",
                    )));
                }
                Ok(Arc::new(ServiceToken::minted(
                    keys,
                    format!("service:{}", self.config.instance.name),
                    self.config.grpc.service_token_ttl,
                )))
            })
            .clone()
    }

    /// A channel to `url` presenting this process's service token. Where it
    /// cannot be built (an unreadable CA file, keys that do not load), the
    /// reason is logged and every call through it fails with it.
    pub fn channel(&self, url: &str) -> Channel {
        let built = self.service_token().map_err(|e| e.to_string()).and_then(|t| {
            self.channel_with(url, Credentials::Service(t))
                .map_err(|e| e.to_string())
        });
        built.unwrap_or_else(|why| {
            tracing::error!(url, error = %why, "cannot set up the gRPC client");
            Channel::broken(url, &why)
        })
    }

    /// A token for `subject` granting `scopes` (space-separated), signed
    /// with this process's keys: for tools and tests.
    pub fn token_for(&self, subject: &str, scopes: &str, ttl: std::time::Duration) -> Result<String, Arc<KeyError>> {
        let keys = self.keys()?;
        keys.mint(subject, scopes, ttl).map(|(t, _)| t).map_err(Arc::new)
    }

    /// A channel to `url` as `subject` with `scopes` (a token minted with
    /// this process's keys, valid for an hour): for tools and tests.
    pub fn channel_as(&self, url: &str, subject: &str, scopes: &str) -> Result<Channel, ClientError> {
        let token = self
            .token_for(subject, scopes, std::time::Duration::from_secs(3600))
            .map_err(|e| ClientError::Url {
                url: url.to_owned(),
                reason: format!("cannot mint a token: {e}"),
            })?;
        self.channel_with(url, Credentials::Token(token.into()))
    }

    /// A channel to `url` presenting `credentials`.
    pub fn channel_with(&self, url: &str, credentials: Credentials) -> Result<Channel, ClientError> {
        let tls = client::Tls::from_config(&self.config.grpc)?;
        Channel::lazy(url, &tls, credentials)
    }
}

/// Serves `routes` plus health and reflection on `listener` until
/// `ctx.shutdown`, behind the [`guard`], with TLS when configured. `names`
/// are the fully-qualified service names reported SERVING (and the empty
/// name for the server as a whole); on shutdown they turn NOT_SERVING.
/// Writes are audited in `store` when given.
pub async fn serve(
    ctx: &crate::service::Context,
    listener: TcpListener,
    routes: Routes,
    names: &[&str],
    store: Option<&crate::store::Store>,
) -> Result<(), GrpcError> {
    describe_metrics();
    metrics::describe(names);
    let g = &ctx.config.grpc;
    let keys = if g.auth {
        Some(ctx.security.keys().map_err(GrpcError::Keys)?)
    } else {
        tracing::warn!("grpc.auth is false: every gRPC caller may read and change everything without a token");
        None
    };
    let audit = match store {
        Some(s) => {
            let audit = crate::audit::Audit::open(s).await?;
            prune_audit(ctx, audit.clone());
            Some(audit)
        }
        None => None,
    };
    let guard = guard::GuardLayer(Arc::new(guard::Guard {
        enabled: g.auth,
        keys,
        audit,
    }));
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", ServingStatus::Serving).await;
    for name in names {
        reporter.set_service_status(*name, ServingStatus::Serving).await;
    }
    let mut routes = routes.add_service(health);
    if g.reflection {
        routes = routes
            .add_service(reflection(names).build_v1()?)
            .add_service(reflection(names).build_v1alpha()?);
    }
    let mut builder = tonic::transport::Server::builder();
    if let (Some(cert), Some(key)) = (&g.tls_cert_file, &g.tls_key_file) {
        let read = |key: &'static str, path: &std::path::Path| {
            std::fs::read(path).map_err(|source| GrpcError::TlsFile {
                key,
                path: path.to_owned(),
                source,
            })
        };
        let identity =
            tonic::transport::Identity::from_pem(read("grpc.tls_cert_file", cert)?, read("grpc.tls_key_file", key)?);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| GrpcError::Tls(client::chain(&e)))?;
    }
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let shutdown: CancellationToken = ctx.shutdown.clone();
    let stop = async move {
        shutdown.cancelled().await;
        reporter.set_service_status("", ServingStatus::NotServing).await;
        for name in &names {
            reporter.set_service_status(name, ServingStatus::NotServing).await;
        }
    };
    // Accepted sockets get TCP_NODELAY (tonic sets it only on listeners it
    // binds itself): without it small answers wait for delayed ACKs, ~40 ms.
    let incoming = futures::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listener), |s| {
        s.and_then(|s| s.set_nodelay(true).map(|()| s))
    });
    // The metrics and trace layers outside the guard: a refused call is
    // counted and traced too.
    let layers = tower::ServiceBuilder::new()
        .layer(metrics::MetricsLayer)
        .layer(trace::TraceLayer::new(ctx.lifecycle.service()))
        .layer(guard)
        .into_inner();
    builder
        .layer(layers)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, stop)
        .await?;
    Ok(())
}

/// Drops audit entries older than `gateway.auth.audit_retention`, daily.
fn prune_audit(ctx: &crate::service::Context, audit: crate::audit::Audit) {
    let retention = ctx.config.gateway.auth.audit_retention;
    let stop = ctx.shutdown.clone();
    ctx.spawn_supervised("grpc-audit-prune", move || {
        let (audit, stop) = (audit.clone(), stop.clone());
        async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(86_400));
            loop {
                tokio::select! {
                    () = stop.cancelled() => return Ok::<(), crate::store::StoreError>(()),
                    _ = tick.tick() => {}
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let before = now.saturating_sub(retention).as_millis() as i64;
                let n = audit.prune(before).await?;
                if n > 0 {
                    tracing::info!(entries = n, "pruned the gRPC audit log");
                }
            }
        }
    });
}

/// Reflection that lists exactly what this port serves: its `names`, health
/// and reflection itself (not every Pantau service in the descriptor set).
fn reflection<'b>(names: &[&str]) -> tonic_reflection::server::Builder<'b> {
    let mut b = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pantau_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection");
    for name in names.iter().filter(|n| !n.is_empty()) {
        b = b.with_service_name(*name);
    }
    b
}
