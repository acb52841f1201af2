//! The web console (`/console`, behind sign-in) and the public status pages
//! (`/status/{slug}`, `/badge/{target}/…`), served by the gateway itself:
//! server-side templates (minijinja, `templates/`), assets embedded in the
//! binary (`assets/`: hand-written CSS and JS, htmx and uPlot vendored).
//!
//! Reads are rendered here from the same backends the REST routes use;
//! every write is the REST route itself, called by the page's script with
//! the session cookie and its CSRF token (`auth::session`), so it is checked,
//! authorised and audited exactly as the API call it is.
//!
//! Layout:
//! - [`assets`]: `/assets/{file}`, immutable, named by version;
//! - [`page`]: the signed-in user of a page, rendering and error pages;
//! - [`login`]: sign-in and sign-out;
//! - [`model`]: the overview's rows: targets, state per location, filters,
//!   pages, uptime;
//! - [`overview`]: `/console` and its live table; [`target`]: one target;
//! - [`alerts`]: alerts, their history and silences; [`incidents`]: incidents,
//!   their alerts and timeline; [`health`]: `/health`;
//! - [`status`]: public status pages and their JSON; [`badge`]: SVG badges;
//! - [`routers`]: routers, their interfaces, WAN judgement, live traffic and
//!   timeline; [`locations`]: targets × locations and the instances.
//! - [`rules`]: alert rules, their expression checked as typed;
//!   [`channels`]: notification channels and routes, secrets masked;
//! - admins only: [`users`]: users and API keys; [`audit`]: the audit log.

pub mod alerts;
pub mod assets;
pub mod audit;
pub mod badge;
pub mod channels;
pub mod health;
pub mod incidents;
pub mod locations;
pub mod login;
pub mod model;
pub mod overview;
pub mod page;
pub mod routers;
pub mod rules;
pub mod status;
pub mod target;
pub mod traffic_chart;
pub mod users;

use std::sync::Arc;

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;
use pantau_core::grpc::Channel;
use pantau_proto::v1::alert_engine_service_client::AlertEngineServiceClient;
use pantau_proto::v1::wan_detector_service_client::WanDetectorServiceClient;

use crate::AppState;

/// What the console's handlers share.
#[derive(Clone)]
pub struct Console {
    pub app: AppState,
    pub collector: crate::targets::Client,
    pub alerts: AlertEngineServiceClient<Channel>,
    pub notifier: crate::notify::Client,
    pub model: Arc<model::Model>,
    pub status: Arc<status::Cache>,
    /// The WAN detector, which keeps every router's latest poll.
    pub wan: WanDetectorServiceClient<Channel>,
}

impl Console {
    pub fn new(app: &AppState) -> Self {
        let collector = crate::targets::Client::new(app.collector.clone());
        Self {
            alerts: AlertEngineServiceClient::new(app.ctx.channel(&app.ctx.config.gateway.alert_engine_url)),
            notifier: crate::notify::Client::new(app.ctx.channel(&app.ctx.config.gateway.notifier_url)),
            model: Arc::new(model::Model::new(collector.clone())),
            status: Arc::default(),
            wan: WanDetectorServiceClient::new(app.ctx.channel(&app.ctx.config.gateway.wan_detector_url)),
            collector,
            app: app.clone(),
        }
    }
}

/// The console's and the status pages' routes (none when
/// `gateway.console.enabled` is false; status pages and badges stay).
pub fn router(app: &AppState) -> Router {
    let c = Console::new(app);
    let public = Router::new()
        .route("/assets/{file}", get(assets::serve))
        .merge(status::router())
        .merge(badge::router());
    let console = if app.ctx.config.gateway.console.enabled {
        Router::new()
            .route("/", get(|| async { Redirect::to("/console") }))
            .merge(login::router())
            .merge(overview::router())
            .merge(target::router())
            .merge(alerts::router())
            .merge(incidents::router())
            .merge(health::router())
            .merge(routers::router())
            .merge(locations::router())
            .merge(rules::router())
            .merge(channels::router())
            .merge(users::router())
            .merge(audit::router())
    } else {
        Router::new()
    };
    public.merge(console).with_state(c)
}
