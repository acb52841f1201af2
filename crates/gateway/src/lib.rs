//! The gateway: what people and scripts touch.
//!
//! Layout:
//! - [`view`]: one JSON view per entity, shared by REST and WebSocket.
//! - [`labels`]: the JSON names of the protobuf enums, in one place.
//! - [`input`]: what the API accepts (ids, times, spans, lists), checked by
//!   the handlers and declared in the OpenAPI document from one definition.
//! - [`feed`]: consumes events from the bus, keeps the latest result per
//!   target (filled from the collector at start), and hands every event to
//!   the [`hub`].
//! - [`hub`]: the fan-out to WebSocket clients, indexed by what each watches.
//! - [`refill`]: the latest results from the collector's `ListLatestResults`,
//!   at start and whenever the collector comes back.
//! - [`api`]: REST routes under `/api/v1`, and `/health`.
//! - [`alerts`]: alert and rule routes, answered by the alert engine over gRPC.
//! - [`sync`]: the multi-location routes `/sync/api/…`, answered by the sync-api.
//! - [`ws`]: the real-time WebSocket hub, `/api/v1/monitoring/events`.
//! - [`routers`]: router, interface and WAN routes, answered by the WAN detector.
//! - [`traffic`]: an interface's traffic history and its 95th percentile,
//!   answered by the collector.
//! - [`push`]: push (heartbeat) monitors, `/api/v1/push/{token}`.
//! - [`metrics`]: metric names and descriptions.
//! - [`auth`]: tokens, API keys, users, rate limits and the audit log.
//! - [`openapi`]: the OpenAPI document, `/api/v1/openapi.json`.
//! - [`console`]: the web console (`/console`, sign-in with a session
//!   cookie), public status pages and badges, assets embedded.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod backends;
pub mod console;
pub mod feed;
pub mod hub;
pub mod incidents;
pub mod input;
pub mod labels;
pub mod latest;
pub mod maintenance;
pub mod manual_alerts;
pub mod metrics;
pub mod monitoring;
pub mod notify;
pub mod openapi;
pub mod outbox;
pub mod push;
pub mod refill;
pub mod reports;
pub mod routers;
pub mod sync;
pub mod sync_endpoints;
pub mod targets;
pub mod timeline;
pub mod traffic;
pub mod view;
pub mod ws;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use pantau_core::bus::BusError;
use pantau_core::service::Context;
use pantau_core::store::{Store, StoreError};
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

/// Why the gateway could not run.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot subscribe to check results: {0}")]
    Subscribe(#[from] BusError),
    #[error("the HTTP server failed: {0}")]
    Serve(#[from] std::io::Error),
    #[error("the gateway's store: {0}")]
    Store(#[from] StoreError),
    #[error("the gateway's signing keys: {0}")]
    Keys(#[from] auth::KeyError),
    #[error(transparent)]
    Task(#[from] pantau_core::lifecycle::TaskFailed),
}

/// Cheap handles shared by every route.
#[derive(Clone)]
pub struct AppState {
    pub feed: Arc<feed::Feed>,
    pub ctx: Context,
    pub ws_slots: Arc<tokio::sync::Semaphore>,
    /// The collector's gRPC channel (connected lazily, reconnecting; the
    /// process's service token; TLS for `https://`).
    pub collector: pantau_core::grpc::Channel,
    /// Tokens, keys, users, rate limits and audit.
    pub auth: Arc<auth::Auth>,
    /// The services behind the gateway, for `/health`.
    pub backends: backends::Backends,
    /// The local sync-api, when sync is on: other locations' latest results.
    pub sync: Option<pantau_core::grpc::Channel>,
}

impl AppState {
    pub fn new(ctx: &Context, auth: Arc<auth::Auth>) -> Self {
        let dash = &ctx.config.gateway.dashboard;
        Self {
            feed: Arc::new(feed::Feed::new(dash.client_buffer)),
            ctx: ctx.clone(),
            ws_slots: Arc::new(tokio::sync::Semaphore::new(dash.max_connections)),
            collector: ctx.channel(&ctx.config.gateway.collector_url),
            backends: backends::Backends::from_context(ctx),
            sync: ctx
                .config
                .sync
                .active()
                .then(|| ctx.channel(&ctx.config.gateway.sync_url)),
            auth,
        }
    }
}

/// Opens the gateway's store and keys: what `run` and the CLI's user and
/// token commands share.
pub async fn open_auth(config: &pantau_config::Config) -> Result<auth::Auth, GatewayError> {
    let store = Store::connect(&config.database, &config.data_dir, "gateway", auth::store::MIGRATIONS).await?;
    let keys = auth::Keys::load(&config.gateway.auth, &config.data_dir)?;
    Ok(auth::Auth::new(config, keys, auth::AuthStore::new(store)))
}

/// The HTTP answer for a failed gRPC call to `service`: client errors keep
/// their message; server-side failures are logged and hidden.
pub fn grpc_error(status: &tonic::Status, service: &str) -> pantau_core::error::ApiError {
    use pantau_core::error::{ApiError, ErrorCode};
    match ErrorCode::from_grpc(status.code()) {
        // The gateway calls with its own service token: a backend that
        // refuses it is misconfigured (other keys), not the user's fault.
        // Only the sync API's instance calls carry the caller's own token.
        ErrorCode::PermissionDenied | ErrorCode::Unauthenticated if service != "sync API" => {
            tracing::error!(service, code = ?status.code(), error = %status.message(), "the backend refuses the gateway's service token; do both use the same gateway.auth keys?");
            ApiError::new(
                ErrorCode::Internal,
                format!("the {service} refused the gateway's credentials"),
            )
            .reason("backend_error")
            .status(axum::http::StatusCode::BAD_GATEWAY)
        }
        ErrorCode::Unavailable | ErrorCode::Timeout => {
            tracing::warn!(service, error = %status.message(), "backend unavailable");
            ApiError::new(
                ErrorCode::Unavailable,
                format!("the {service} is unavailable; try again"),
            )
        }
        ErrorCode::Internal => {
            tracing::error!(service, code = ?status.code(), error = %status.message(), "backend failed");
            ApiError::new(ErrorCode::Internal, format!("the {service} failed to answer"))
                .reason("backend_error")
                .status(axum::http::StatusCode::BAD_GATEWAY)
        }
        code => ApiError::new(code, status.message()),
    }
}

/// Every route of the gateway, behind the auth guard, body limit, CORS and
/// the trace layer (which logs paths with push tokens hidden, never queries).
pub fn router(state: &AppState) -> Router {
    let g = &state.ctx.config.gateway;
    let routes = Router::new()
        .merge(api::router())
        .merge(ws::router())
        .merge(push::router())
        .merge(monitoring::router())
        .with_state(state.clone())
        .merge(alerts::router(&state.ctx))
        .merge(incidents::router(&state.ctx))
        .merge(maintenance::router(&state.ctx))
        .merge(targets::router(&state.ctx))
        .merge(reports::router(&state.ctx))
        .merge(notify::router(&state.ctx))
        .merge(routers::router(&state.ctx))
        .merge(traffic::router(&state.ctx))
        .merge(sync::router(&state.ctx))
        .merge(auth::routes::router(Arc::clone(&state.auth)))
        .merge(openapi::router())
        .merge(console::router(state))
        .merge(pantau_core::health::admin_router(state.ctx.health.clone()))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.auth),
            auth::guard,
        ))
        .layer(axum::middleware::from_fn(metrics::http))
        .layer(DefaultBodyLimit::max(g.max_body_bytes));
    let routes = match cors(&g.cors) {
        Some(c) => routes.layer(c),
        None => routes,
    };
    // A request continues the caller's trace when its `traceparent` is valid
    // (anything else starts a new one); its spans are the gateway's.
    routes
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<axum::body::Body>| {
                let span = tracing::info_span!("http", method = %req.method(), path = %auth::redact(req.uri().path()));
                pantau_core::telemetry::set_parent_from_http(&span, req.headers());
                span
            }),
        )
        .layer(axum::middleware::from_fn(
            |req: axum::extract::Request, next: axum::middleware::Next| {
                pantau_core::telemetry::in_service("gateway", next.run(req))
            },
        ))
}

fn cors(c: &pantau_config::CorsConfig) -> Option<CorsLayer> {
    use axum::http::{HeaderValue, Method, header};
    if c.allowed_origins.is_empty() {
        return None;
    }
    let origin = if c.allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        // Validated with the configuration.
        AllowOrigin::list(c.allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(c.max_age),
    )
}

/// Runs the gateway on `listener` until `ctx.shutdown`, or until its feed
/// (a critical task) fails, which it returns.
pub async fn run(ctx: Context, listener: TcpListener) -> Result<(), GatewayError> {
    let ctx = ctx.service("gateway");
    metrics::describe();
    monitoring::mark_start();
    let auth = Arc::new(open_auth(&ctx.config).await?);
    ctx.health.register("gateway-store", auth.store.store().readiness());
    ctx.watch_store(auth.store.store());
    let state = AppState::new(&ctx, Arc::clone(&auth));
    state.feed.timeline().persist(auth.store.store(), &ctx).await?;
    feed::start(&state.feed, &ctx).await?;
    let (feed, collector) = (Arc::clone(&state.feed), state.collector.clone());
    let stop = ctx.shutdown.clone();
    ctx.spawn_supervised("refill", move || {
        refill::run(Arc::clone(&feed), collector.clone(), stop.clone())
    });
    let (kept, ctx2) = (Arc::clone(&auth), ctx.clone());
    ctx.spawn_supervised("housekeeping", move || housekeeping(Arc::clone(&kept), ctx2.clone()));
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%addr, auth = auth.enabled, "gateway listening");
    // While the gateway already serves (hashing a password takes a while).
    let first = async {
        if auth.enabled && ctx.config.gateway.console.create_first_admin {
            first_admin(&auth).await;
        }
        if auth.enabled && auth.store.users().await.is_ok_and(|u| u.is_empty()) {
            tracing::info!(
                "the API needs a token: mint one with `pantau token create --scope admin --ttl 1h` \
                 (same --config), or add a user with `pantau user add NAME --role admin` and \
                 POST /api/v1/auth/login"
            );
        }
    };
    let stop = ctx.shutdown.clone();
    // Small WebSocket frames and API answers go out at once (no Nagle delay).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    let serve = axum::serve(
        listener,
        router(&state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stop.cancelled().await });
    let (served, ()) = tokio::join!(std::future::IntoFuture::into_future(serve), first);
    ctx.stop_tasks().await;
    served?;
    Ok(ctx.lifecycle.result()?)
}

/// With no user at all, creates `admin` with a generated password and
/// prints it once on standard error (not through the log, which may be
/// shipped elsewhere): the console's first sign-in.
async fn first_admin(auth: &auth::Auth) {
    use rand::RngCore;
    match auth.store.users().await {
        Ok(users) if users.is_empty() => {}
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the users to decide on a first admin");
            return;
        }
    }
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    let password = hex::encode(b);
    match auth.store.add_user("admin", &password, auth::Role::Admin).await {
        Ok(_) => {
            tracing::warn!(
                "no user existed: created `admin` with a generated password, printed once on standard error"
            );
            eprintln!(
                "\n  pantau: the first admin user is `admin` with password `{password}` (shown once).\n  \
                 Sign in to the console at /console; `pantau user add` makes the others.\n"
            );
        }
        Err(auth::store::AuthStoreError::UserExists(_)) => {}
        Err(e) => tracing::warn!(error = %e, "cannot create the first admin user"),
    }
}

/// Prunes the audit log past its retention and forgets idle rate-limit buckets.
async fn housekeeping(auth: Arc<auth::Auth>, ctx: Context) {
    let retention = ctx.config.gateway.auth.audit_retention;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        auth.forget_idle_clients();
        match auth.store.prune_sessions(auth::store::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "forgot expired console sessions"),
            Err(e) => tracing::warn!(error = %e, "cannot forget expired console sessions"),
        }
        let before = auth::store::now_ms() - retention.as_millis() as i64;
        match auth.store.prune_audit(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, "pruned the audit log past gateway.auth.audit_retention"),
            Err(e) => tracing::warn!(error = %e, "cannot prune the audit log"),
        }
    }
}
