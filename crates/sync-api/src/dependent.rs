//! A dependent's link to the primary: register (the instance token is kept
//! in the store, per primary), heartbeat every `heartbeat_interval`, fetch
//! configuration when its hash changed (checked every `sync_interval` and
//! on every heartbeat) and apply it to the local collector, and deliver the
//! outbox. The primary is the lease holder when the election knows one,
//! else `sync.primary_url`. While the primary is unreachable results stay in
//! the outbox; every call carries this instance's epoch, so a stale primary
//! learns it was replaced.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pantau_core::grpc::{Channel, Credentials};
use pantau_core::service::Context;
use pantau_core::store::Store;
use pantau_core::time::{to_duration, to_timestamp};
use pantau_proto::v1 as pb;
use pantau_proto::v1::collector_service_client::CollectorServiceClient;
use pantau_proto::v1::sync_service_client::SyncServiceClient;
use tokio::time::Instant;

use crate::configsync;
use crate::lease::now_ms;
use crate::metrics as m;
use crate::node::Node;
use crate::outbox::{self, Counters};
use crate::store;

/// What the link knows, for status and heartbeats.
#[derive(Debug, Clone, Default)]
pub struct LinkStatus {
    pub reachable: bool,
    pub last_success_ms: i64,
    pub errors: u64,
    pub config_hash: String,
    pub active_endpoints: u32,
    /// Why the last call to the primary failed (empty after a success).
    pub last_error: String,
}

pub type SharedLink = Arc<Mutex<LinkStatus>>;

struct Link {
    ctx: Context,
    node: Arc<Node>,
    db: Store,
    counters: Arc<Counters>,
    status: SharedLink,
    endpoint: String,
    client: Option<SyncServiceClient<Channel>>,
    token: Option<String>,
    /// The endpoint is refused (cleartext, or no channel): not retried
    /// until the primary's endpoint changes.
    blocked: bool,
    collector: CollectorServiceClient<Channel>,
    system: Option<sysinfo::System>,
    started: Instant,
    made_at_last_beat: u64,
}

/// Adds the bearer token and this instance's id and epoch to a request.
pub fn authorized<T>(msg: T, token: &str, id: &str, epoch: u64) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    let md = req.metadata_mut();
    if let Ok(v) = format!("Bearer {token}").parse() {
        md.insert("authorization", v);
    }
    if let Ok(v) = id.parse() {
        md.insert("x-pantau-instance", v);
    }
    if let Ok(v) = epoch.to_string().parse() {
        md.insert("x-pantau-epoch", v);
    }
    req
}

impl Link {
    fn lock(&self) -> std::sync::MutexGuard<'_, LinkStatus> {
        self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn failed(&mut self, op: &'static str, e: &tonic::Status) {
        metrics::counter!(m::SYNC_ERRORS, "op" => op).increment(1);
        let mut s = self.lock();
        s.errors += 1;
        if matches!(
            e.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled | tonic::Code::Unknown
        ) {
            s.reachable = false;
        }
        let changed = s.last_error != e.message();
        if changed {
            s.last_error = e.message().chars().take(1024).collect();
        }
        drop(s);
        if changed {
            tracing::warn!(op, code = ?e.code(), error = %e.message(), "call to the primary failed");
        } else {
            tracing::debug!(op, code = ?e.code(), error = %e.message(), "call to the primary failed");
        }
        match e.code() {
            // The primary does not know (or no longer honours) our token.
            tonic::Code::Unauthenticated => self.token = None,
            // Not (or no longer) the primary: look again.
            tonic::Code::FailedPrecondition => self.node.recheck(),
            _ => {}
        }
    }

    fn succeeded(&self) {
        let mut s = self.lock();
        s.last_error.clear();
        s.reachable = true;
        s.last_success_ms = now_ms();
    }

    /// Points the link at the current primary; a new primary needs a new token.
    async fn aim(&mut self) {
        let state = self.node.state();
        let target = if state.primary_endpoint.is_empty() {
            self.ctx.config.sync.primary_url.clone().unwrap_or_default()
        } else {
            state.primary_endpoint
        };
        if target == self.endpoint && (self.client.is_some() || self.blocked) {
            return;
        }
        if target.is_empty() {
            self.client = None;
            return;
        }
        tracing::info!(primary = %target, "following the primary");
        self.endpoint = target;
        self.client = None;
        self.blocked = true;
        let sync = &self.ctx.config.sync;
        if self.endpoint.starts_with("http://")
            && !sync.allow_plaintext
            && !pantau_config::is_loopback_url(&self.endpoint)
        {
            let why = format!(
                "refusing to send instance tokens in cleartext to {}: use an https:// primary, or set sync.allow_plaintext: true",
                self.endpoint
            );
            tracing::error!("{why}");
            self.lock().last_error = why;
            return;
        }
        // Calls to the primary carry the join or instance token, never this
        // process's own service token.
        match self.ctx.security.channel_with(&self.endpoint, Credentials::None) {
            Ok(ch) => {
                self.client = Some(SyncServiceClient::new(ch));
                self.blocked = false;
            }
            Err(e) => {
                tracing::error!(primary = %self.endpoint, error = %e, "cannot set up the link to the primary");
                self.lock().last_error = e.to_string();
                return;
            }
        }
        self.token = store::fact(&self.db, &format!("token:{}", self.endpoint))
            .await
            .ok()
            .flatten();
    }

    async fn register(&mut self) -> bool {
        let Some(mut client) = self.client.clone() else {
            return false;
        };
        let cfg = &self.ctx.config;
        let memory_bytes = self.system.as_mut().map_or(0, |s| {
            s.refresh_memory();
            s.total_memory()
        });
        let req = pb::RegisterRequest {
            instance_id: self.node.id.clone(),
            name: self.node.id.clone(),
            location: self.node.location.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: vec!["checks".into(), "results".into()],
            failover_order: self.node.position().unwrap_or(u32::MAX),
            public_endpoint: self.node.endpoint.clone(),
            system: Some(pb::SystemInfo {
                platform: std::env::consts::OS.to_owned(),
                arch: std::env::consts::ARCH.to_owned(),
                memory_bytes,
                cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            }),
        };
        let join = cfg.sync.token.clone().unwrap_or_default();
        let epoch = self.node.state().epoch;
        match client.register(authorized(req, &join, &self.node.id, epoch)).await {
            Ok(r) => {
                let r = r.into_inner();
                let key = format!("token:{}", self.endpoint);
                if let Err(e) = store::set_fact(&self.db, &key, &r.token).await {
                    tracing::warn!(error = %e, "cannot keep the instance token");
                }
                self.token = Some(r.token);
                self.succeeded();
                tracing::info!(primary = %r.primary_id, epoch = r.epoch, "registered with the primary");
                true
            }
            Err(e) => {
                if e.code() == tonic::Code::PermissionDenied {
                    tracing::error!(error = %e.message(), "the primary refuses this instance");
                }
                self.failed("register", &e);
                false
            }
        }
    }

    async fn heartbeat(&mut self) {
        let (Some(mut client), Some(token)) = (self.client.clone(), self.token.clone()) else {
            return;
        };
        let (cpu, mem) = self.system.as_mut().map_or((0.0, 0.0), |s| {
            s.refresh_memory();
            s.refresh_cpu_usage();
            let mem = if s.total_memory() > 0 {
                s.used_memory() as f64 / s.total_memory() as f64 * 100.0
            } else {
                0.0
            };
            (f64::from(s.global_cpu_usage()), mem)
        });
        let made = self.counters.made.load(Ordering::Relaxed);
        let since = made - self.made_at_last_beat.min(made);
        let link = self.lock().clone();
        let buffered = self.counters.buffered.load(Ordering::Relaxed);
        let req = pb::HeartbeatRequest {
            instance_id: self.node.id.clone(),
            status: if link.errors > 0 && !link.reachable {
                pb::InstanceHealth::Degraded as i32
            } else {
                pb::InstanceHealth::Healthy as i32
            },
            uptime: Some(to_duration(self.started.elapsed())),
            results_since_last: since,
            metrics: Some(pb::SystemMetrics {
                cpu_percent: cpu,
                memory_percent: mem,
                disk_percent: disk_percent(&self.ctx.config.data_dir),
                active_endpoints: link.active_endpoints,
            }),
            connection: Some(pb::ConnectionStatus {
                primary_reachable: link.reachable,
                last_sync_success: (link.last_success_ms > 0)
                    .then(|| to_timestamp(std::time::UNIX_EPOCH + Duration::from_millis(link.last_success_ms as u64))),
                sync_errors: link.errors,
            }),
            buffered_results: buffered,
        };
        let epoch = self.node.state().epoch;
        match client.heartbeat(authorized(req, &token, &self.node.id, epoch)).await {
            Ok(r) => {
                self.made_at_last_beat = made;
                self.succeeded();
                let r = r.into_inner();
                if r.config_hash != link.config_hash {
                    self.fetch_config().await;
                }
            }
            Err(e) => self.failed("heartbeat", &e),
        }
    }

    async fn fetch_config(&mut self) {
        let (Some(mut client), Some(token)) = (self.client.clone(), self.token.clone()) else {
            return;
        };
        let held = self.lock().config_hash.clone();
        let req = pb::GetConfigRequest {
            instance_id: self.node.id.clone(),
            if_none_match: held,
        };
        let epoch = self.node.state().epoch;
        let resp = match client.get_config(authorized(req, &token, &self.node.id, epoch)).await {
            Ok(r) => r.into_inner(),
            Err(e) => return self.failed("get_config", &e),
        };
        self.succeeded();
        if resp.unchanged {
            return;
        }
        let Some(config) = resp.config else { return };
        match configsync::apply(&mut self.collector, &self.db, &config).await {
            Ok(n) => {
                tracing::info!(
                    version = resp.version,
                    targets = n,
                    "applied configuration from the primary"
                );
                let _ = store::set_fact(&self.db, "config_hash", &resp.hash).await;
                let mut s = self.lock();
                s.config_hash = resp.hash;
                s.active_endpoints = n as u32;
            }
            Err(e) => tracing::warn!(error = %e.message(), "cannot apply configuration to the local collector"),
        }
    }

    /// Delivers outbox batches until it is empty or a call fails.
    async fn push(&mut self) {
        let (Some(mut client), Some(token)) = (self.client.clone(), self.token.clone()) else {
            return;
        };
        loop {
            let (batch, last) = match outbox::batch(&self.db, self.ctx.config.sync.batch_size).await {
                Ok(b) => b,
                Err(e) => return tracing::warn!(error = %e, "cannot read the result buffer"),
            };
            if last == 0 {
                return;
            }
            let n = batch.len() as u64;
            let req = pb::PushResultsRequest {
                instance_id: self.node.id.clone(),
                results: batch,
            };
            let epoch = self.node.state().epoch;
            match client.push_results(authorized(req, &token, &self.node.id, epoch)).await {
                Ok(r) => {
                    let r = r.into_inner();
                    self.succeeded();
                    // Everything up to `last` is now held by the primary.
                    let upto = if r.acked_seq >= last { last } else { r.acked_seq };
                    if let Err(e) = store::outbox_ack(&self.db, upto).await {
                        return tracing::warn!(error = %e, "cannot trim the result buffer");
                    }
                    metrics::counter!(m::RESULTS_PUSHED).increment(u64::from(r.accepted));
                    self.counters
                        .delivered
                        .fetch_add(u64::from(r.accepted), Ordering::Relaxed);
                    if upto < last || n < u64::from(self.ctx.config.sync.batch_size) {
                        return;
                    }
                }
                Err(e) => return self.failed("push_results", &e),
            }
        }
    }
}

fn disk_percent(dir: &std::path::Path) -> f64 {
    let Ok(disks) = sysinfo::Disks::new_with_refreshed_list() else {
        return 0.0;
    };
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    (&disks)
        .into_iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .filter(|d| d.total_space() > 0)
        .map_or(0.0, |d| {
            (d.total_space() - d.available_space()) as f64 / d.total_space() as f64 * 100.0
        })
}

/// Runs the delivery loop: as primary it moves the outbox into consensus, as
/// dependent it keeps the link to the primary.
pub fn start(ctx: &Context, node: Arc<Node>, db: Store, counters: Arc<Counters>, status: SharedLink) {
    let ctx2 = ctx.clone();
    ctx.spawn_supervised("link", move || {
        let (ctx2, node, db, counters, status) =
            (ctx2.clone(), node.clone(), db.clone(), counters.clone(), status.clone());
        async move {
            let s = ctx2.config.sync.clone();
            let collector = CollectorServiceClient::new(ctx2.channel(&s.collector_url));
            let held_hash = store::fact(&db, "config_hash").await.ok().flatten().unwrap_or_default();
            status
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .config_hash = held_hash;
            let mut link = Link {
                ctx: ctx2.clone(),
                node: Arc::clone(&node),
                db: db.clone(),
                counters: Arc::clone(&counters),
                status,
                endpoint: String::new(),
                client: None,
                token: None,
                blocked: false,
                collector,
                system: sysinfo::System::new().ok(),
                started: Instant::now(),
                made_at_last_beat: 0,
            };
            let tick = (s.heartbeat_interval / 5).clamp(Duration::from_millis(50), Duration::from_millis(500));
            let mut last_beat = Instant::now() - s.heartbeat_interval;
            let mut last_config = Instant::now() - s.sync_interval;
            loop {
                tokio::select! {
                    () = ctx2.shutdown.cancelled() => break,
                    () = tokio::time::sleep(tick) => {}
                }
                outbox::refresh_buffered(&db, &counters).await;
                if node.is_primary() {
                    match outbox::drain_locally(&ctx2, &node, &db).await {
                        Ok(n) => {
                            counters.delivered.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot ingest own results"),
                    }
                    continue;
                }
                link.aim().await;
                if link.client.is_none() {
                    continue;
                }
                if link.token.is_none() && !link.register().await {
                    continue;
                }
                if last_beat.elapsed() >= s.heartbeat_interval {
                    last_beat = Instant::now();
                    link.heartbeat().await;
                }
                if last_config.elapsed() >= s.sync_interval {
                    last_config = Instant::now();
                    link.fetch_config().await;
                }
                link.push().await;
            }
        }
    });
}
