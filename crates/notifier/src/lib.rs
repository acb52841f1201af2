//! The notifier: it turns alerts into messages people read, on the channels
//! they use, and makes sure each one arrives.
//!
//! Alerts come from the alert engine's `AlertEvent`s on the bus
//! (`pantau.alert.<state>.<alert_id>`, one durable consumer `notifier` that
//! replicas share) and from Alertmanager's webhook (`POST
//! /webhooks/alertmanager`). Each is routed to channels, and one delivery per
//! channel (and recipient) is persisted before anything is sent; the bus
//! message is acknowledged only after that. Deliveries are then attempted,
//! retried with backoff, given up and reported when hopeless, and logged.
//!
//! Layout:
//! - [`notification`]: what is notified, from either source, and its idempotency key.
//! - [`routing`]: routes from the configuration to channel names.
//! - [`template`]: minijinja message templates with phone-friendly defaults.
//! - [`channels`]: the [`channels::Channel`] trait and one sender per provider.
//! - [`store`]: the delivery table, leases and the attempt log.
//! - [`dispatch`]: attempting deliveries, rate limits, backoff, giving up.
//! - `outcome`: each delivery's final outcome told back on
//!   `pantau.delivery.<delivered|failed>.<alert_id>` for the incident timeline.
//! - [`escalation`]: repeats, steps and reminders of unacknowledged or
//!   unresolved alerts, on a durable schedule.
//! - [`alertmanager`]: the webhook payload and route; [`webhooks`]: its late-bound handle.
//! - [`grpc`]: the gRPC service `pantau.v1.NotifierService`.
//! - [`metrics`]: metric names and their descriptions.

pub mod alertmanager;
pub mod channels;
pub mod datadog;
pub mod dispatch;
pub mod escalation;
pub mod grpc;
pub mod metrics;
pub mod notification;
mod outcome;
pub mod routing;
pub mod store;
pub mod template;
pub mod webhooks;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pantau_config::NotifierConfig;
use pantau_core::bus::{Bus, BusEvent, Consumer, Delivery, HandleError, RetryPolicy, Subscription};
use pantau_core::service::Context;
use pantau_core::store::{Migrations, Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use webhooks::Webhooks;

use crate::channels::Configured;
use crate::notification::Notification;
use crate::store::{DeliveryStore, NewDelivery};

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The notifier's migrations.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// The bus subjects the notifier consumes, and its durable consumer name.
pub const ALERTS: &str = "pantau.alert.>";
pub const CONSUMER: &str = "notifier";

/// Why the notifier could not run.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Channel(#[from] channels::BuildError),
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    #[error(transparent)]
    Grpc(#[from] pantau_core::grpc::GrpcError),
    #[error(transparent)]
    Task(#[from] pantau_core::lifecycle::TaskFailed),
    #[error(transparent)]
    Datadog(#[from] datadog::DatadogError),
}

/// The running notifier; shared by its tasks, gRPC and the webhook route.
/// How often the delivery backlog is published as `queue_size`.
const QUEUE_SIZE_EVERY: Duration = Duration::from_secs(15);

pub struct Notifier {
    cfg: NotifierConfig,
    store: DeliveryStore,
    channels: HashMap<String, Configured>,
    templates: template::Templates,
    routes: routing::Routes,
    /// Who holds leases: stable across restarts of one replica.
    owner: String,
    /// `instance.name`, on the delivery outcomes it publishes.
    instance: String,
    wake: Notify,
    limits: dispatch::RateLimits,
    bus: Arc<dyn Bus>,
    escalations: escalation::EscalationStore,
    policies: HashMap<String, escalation::Policy>,
    wake_escalations: Notify,
}

fn replica_name(instance: &str) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".to_owned());
    format!("{instance}@{host}")
}

impl Notifier {
    /// Builds channels and templates from `ctx.config.notifier` over `store`.
    pub fn new(ctx: &Context, store: Store) -> Result<Self, NotifierError> {
        let cfg = ctx.config.notifier.clone();
        Ok(Self {
            channels: channels::build(&cfg)?,
            templates: template::Templates::new(&cfg.channels)?,
            routes: routing::Routes::new(cfg.routes.clone()),
            escalations: escalation::EscalationStore::new(store.clone()),
            policies: cfg
                .escalations
                .iter()
                .map(|e| (e.name.clone(), escalation::Policy::new(e)))
                .collect(),
            wake_escalations: Notify::new(),
            store: DeliveryStore::new(store),
            owner: replica_name(&ctx.config.instance.name),
            instance: ctx.config.instance.name.clone(),
            wake: Notify::new(),
            limits: dispatch::RateLimits::default(),
            bus: Arc::clone(&ctx.bus),
            cfg,
        })
    }

    /// The delivery store.
    pub fn store(&self) -> &DeliveryStore {
        &self.store
    }

    /// The configured channels by name.
    pub fn channels(&self) -> &HashMap<String, Configured> {
        &self.channels
    }

    /// The configured routes, in order.
    pub fn routes(&self) -> &[pantau_config::RouteConfig] {
        &self.cfg.routes
    }

    /// The escalation policies as parsed, by name.
    pub fn policies(&self) -> &HashMap<String, escalation::Policy> {
        &self.policies
    }

    /// The escalation table.
    pub fn escalations(&self) -> &escalation::EscalationStore {
        &self.escalations
    }

    /// The delivery of `n` (as `json`) to `channel` and `recipient`.
    fn delivery_row(&self, n: &Notification, json: &str, channel: &str, recipient: &str) -> NewDelivery {
        let delay_ms = match self.channels.get(channel) {
            Some(ch) if ch.config.group => ch.config.group_wait.as_millis() as i64,
            _ => 0,
        };
        NewDelivery {
            id: n.delivery_id(channel, recipient),
            channel: channel.to_owned(),
            channel_type: self
                .channels
                .get(channel)
                .map(|c| c.kind().as_str())
                .unwrap_or_default()
                .to_owned(),
            recipient: recipient.to_owned(),
            alert_key: n.key.clone(),
            state: n.status.clone(),
            source: n.source.clone(),
            notification: json.to_owned(),
            delay_ms,
        }
    }

    /// Where `n` goes, each channel and recipient once: its routes' channels,
    /// and for an acknowledgement or resolve also wherever a firing of the
    /// same alert went (an escalation step's channel, or a route since
    /// changed), so a resolve is never swallowed.
    async fn targets(&self, n: &Notification) -> Result<Vec<(String, String)>, StoreError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for name in self.routes.channels(n) {
            let Some(ch) = self.channels.get(&name) else { continue };
            for recipient in ch.recipients() {
                out.push((name.clone(), recipient));
            }
        }
        if n.status != "firing" {
            for (name, recipient) in self.store.firing_sent_to(&n.source, &n.key).await? {
                if !self.channels.contains_key(&name) {
                    tracing::warn!(alert = %n.key, channel = %name, status = %n.status, "the firing went to a channel no longer configured; cannot follow it up there");
                } else if !out.iter().any(|(c, r)| *c == name && *r == recipient) {
                    out.push((name, recipient));
                }
            }
        }
        Ok(out)
    }

    /// Routes `n` and persists one delivery per channel and recipient
    /// (existing ones are kept as they are), then follows the alert's
    /// escalations. Returns how many deliveries the notification has. Only
    /// after this returns `Ok` is it safe to acknowledge the source.
    pub async fn accept(&self, n: &Notification) -> Result<usize, StoreError> {
        ::metrics::counter!(metrics::NOTIFICATIONS_TOTAL, "source" => n.source.clone()).increment(1);
        let json = serde_json::to_string(n).unwrap_or_default();
        let rows: Vec<NewDelivery> = self
            .targets(n)
            .await?
            .iter()
            .map(|(channel, recipient)| self.delivery_row(n, &json, channel, recipient))
            .collect();
        if rows.is_empty() {
            tracing::info!(key = %n.key, severity = %n.severity, "no route matches; nothing to deliver");
        } else {
            let fresh = self.store.insert(&rows).await?;
            tracing::debug!(key = %n.key, status = %n.status, deliveries = rows.len(), fresh, "notification accepted");
            if fresh > 0 {
                self.wake.notify_one();
            }
        }
        self.follow_escalations(n).await?;
        Ok(rows.len())
    }

    /// Starts the bus consumer (a critical task: its end before shutdown is
    /// a failure; while this instance evaluates, see
    /// `pantau_core::cluster::Gate`), and the delivery and
    /// purge loops as supervised tasks (started again if they fail); all
    /// stopped by `ctx.shutdown`. The consumer's readiness is registered as
    /// `notifier.consumer`.
    pub fn start(self: &Arc<Self>, ctx: &Context) {
        // One durable consumer for the cluster, held only by the instance
        // that evaluates (the primary, or a standalone instance): each alert
        // event is taken, and each notification delivered, once.
        let gate = ctx.cluster.gate(CONSUMER);
        ctx.health.register("notifier.consumer", gate.readiness());
        let (me, stop, bus) = (Arc::clone(self), ctx.shutdown.clone(), Arc::clone(&self.bus));
        ctx.spawn_critical("consumer", async move {
            tracing::info!(subjects = ALERTS, consumer = CONSUMER, "consuming alert events");
            let make = move || {
                let bus = Arc::clone(&bus);
                async move {
                    Consumer::new(bus, CONSUMER, [Subscription::durable(ALERTS, CONSUMER)])
                        .with_retry(RetryPolicy::patient())
                }
            };
            let handler = move |d: Delivery| {
                let me = Arc::clone(&me);
                async move { me.take(d).await }
            };
            gate.start(make, handler, stop).await?.await
        });
        let (me, stop) = (Arc::clone(self), ctx.shutdown.clone());
        ctx.spawn_supervised("delivery", move || Arc::clone(&me).deliver_loop(stop.clone()));
        let (me, stop) = (Arc::clone(self), ctx.shutdown.clone());
        ctx.spawn_supervised("purge", move || Arc::clone(&me).purge_loop(stop.clone()));
        let (me, stop) = (Arc::clone(self), ctx.shutdown.clone());
        ctx.spawn_supervised("escalation", move || Arc::clone(&me).escalation_loop(stop.clone()));
    }

    /// Takes in one alert event from the bus: its deliveries are persisted
    /// before the consumer acknowledges it. An event that cannot be notified
    /// is dead-lettered; a store failure is retried.
    async fn take(&self, d: Delivery) -> Result<(), HandleError> {
        let BusEvent::Alert { alert, .. } = d.event else {
            return Err(HandleError::permanent(format!("`{}` is not an alert event", d.subject)));
        };
        let mut n = Notification::from_event(&alert).map_err(HandleError::permanent)?;
        n.trace_parent = d.headers.get("traceparent").cloned().unwrap_or_default();
        match self.accept(&n).await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(alert = %n.key, attempt = d.attempt, error = %e, "cannot persist deliveries; retrying before acknowledging");
                Err(HandleError::transient(e))
            }
        }
    }

    async fn deliver_loop(self: Arc<Self>, stop: CancellationToken) {
        match self.store.release(&self.owner).await {
            Ok(n) if n > 0 => tracing::info!(deliveries = n, "resuming deliveries this replica held before a restart"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot release earlier leases; they resume when they expire"),
        }
        let mut published: Option<tokio::time::Instant> = None;
        loop {
            if let Err(e) = self.drain_due().await {
                tracing::error!(error = %e, "cannot read due deliveries");
            }
            if let Ok(n) = self.store.pending().await {
                ::metrics::gauge!(metrics::PENDING).set(n as f64);
                if published.is_none_or(|at| at.elapsed() >= QUEUE_SIZE_EVERY) {
                    published = Some(tokio::time::Instant::now());
                    self.publish_queue_size(n).await;
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.cfg.poll_interval) => {}
            }
        }
    }

    /// `queue_size{queue="notifier_deliveries"}`: deliveries waiting, on
    /// `pantau.metric.queue_size`, for the default `queue-size-high` rule.
    async fn publish_queue_size(&self, pending: i64) {
        let sample = pantau_proto::v1::MetricSample {
            name: "queue_size".to_owned(),
            value: pending as f64,
            labels: [("queue".to_owned(), "notifier_deliveries".to_owned())].into(),
            observed_at: Some(pantau_core::time::to_timestamp(std::time::SystemTime::now())),
            source: self.owner.clone(),
        };
        let subject = pantau_core::bus::subject::metric("queue_size");
        if let Err(e) = pantau_core::bus::publish_proto(self.bus.as_ref(), &subject, &sample).await {
            tracing::debug!(error = %e, "cannot publish queue_size");
        }
    }

    async fn purge_loop(self: Arc<Self>, stop: CancellationToken) {
        let every = (self.cfg.retention / 24).clamp(Duration::from_secs(60), Duration::from_secs(3600));
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            let before = store::now_ms() - self.cfg.retention.as_millis() as i64;
            match self.store.purge(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deliveries = n, "purged finished deliveries past notifier.retention"),
                Err(e) => tracing::warn!(error = %e, "cannot purge old deliveries"),
            }
            match self.escalations.purge(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(escalations = n, "purged ended escalations past notifier.retention"),
                Err(e) => tracing::warn!(error = %e, "cannot purge ended escalations"),
            }
        }
    }
}

/// Runs the notifier until `ctx.shutdown`: connects its store, starts
/// consuming and delivering, attaches itself to `webhooks` (whose router the
/// caller serves on its admin port) and serves gRPC on `grpc`.
pub async fn run(ctx: Context, grpc: TcpListener, webhooks: Webhooks) -> Result<(), NotifierError> {
    let ctx = ctx.service("notifier");
    metrics::describe();
    metrics::zero(ctx.config.notifier.channels.iter().map(|c| c.kind.as_str()));
    metrics::zero_escalations(ctx.config.notifier.escalations.iter().map(|e| e.name.as_str()));
    let store = Store::connect(&ctx.config.database, &ctx.config.data_dir, "notifier", MIGRATIONS).await?;
    ctx.health.register("notifier.store", store.readiness());
    ctx.watch_store(&store);
    let notifier = Arc::new(Notifier::new(&ctx, store.clone())?);
    // Measured once before the delivery loop's first round, so the first
    // scrape has it even when the loop starts late on a loaded machine.
    if let Ok(n) = notifier.store.pending().await {
        ::metrics::gauge!(metrics::PENDING).set(n as f64);
    }
    notifier.start(&ctx);
    datadog::start(&ctx)?;
    webhooks.attach(Arc::clone(&notifier));
    let addr = grpc.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(grpc = %addr, channels = notifier.channels.len(), routes = ctx.config.notifier.routes.len(), "notifier running");
    let served = grpc::serve(&ctx, notifier, grpc, &store).await;
    ctx.stop_tasks().await;
    store.close().await;
    served?;
    Ok(ctx.lifecycle.result()?)
}
