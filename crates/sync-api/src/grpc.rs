//! `pantau.v1.SyncService`.
//!
//! Authentication, from the `authorization: Bearer …` metadata:
//! - instance calls (Heartbeat, GetConfig, PushResults) need the instance
//!   token Register returned; the primary keeps its SHA-256 hash, with an
//!   expiry; a removed (revoked) instance is UNAUTHENTICATED, on this primary
//!   and every later one (revocations live in the NATS registry bucket);
//! - Register needs the join token `sync.token` when one is configured;
//! - the others are checked by core's gRPC guard like every Pantau method: a
//!   JWT with `monitoring:read` (ListInstances, GetStatus, GetFailoverOrder)
//!   or `admin` (RemoveInstance, Promote, Demote).
//!
//! Instance tokens never travel in cleartext beyond loopback: without
//! `grpc.tls_cert_file`, a primary answers instance calls only from loopback
//! callers unless `sync.allow_plaintext` says otherwise.
//!
//! Calls carry `x-pantau-epoch`; a primary that sees a higher epoch than its
//! own was replaced: it re-reads the lease and refuses (FAILED_PRECONDITION).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pantau_core::error::quote;
use pantau_core::service::Context;
use pantau_core::store::{Store, StoreError};
use pantau_core::time::{to_duration, to_timestamp};
use pantau_proto::v1 as pb;
use pantau_proto::v1::sync_service_server::{SyncService, SyncServiceServer};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::configsync::ConfigSource;
use crate::dependent::SharedLink;
use crate::lease::now_ms;
use crate::node::{Command, Node};
use crate::outbox::Counters;
use crate::{primary, store};

/// Permissions of an instance token.
pub const PERMISSIONS: [&str; 3] = ["heartbeat", "config:read", "results:push"];

/// The gRPC service.
pub struct Service {
    pub ctx: Context,
    pub node: Arc<Node>,
    pub db: Store,
    pub source: Arc<ConfigSource>,
    pub counters: Arc<Counters>,
    pub link: SharedLink,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// A sync store failure: UNAVAILABLE (503 through the gateway), as in every service.
fn internal(e: &StoreError) -> Status {
    pantau_core::error::store_unavailable("sync store", e)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn bearer<T>(req: &Request<T>) -> Option<&str> {
    req.metadata()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Admin calls: the guard already required an `admin` token (or auth is off).
fn admin<T>(req: &Request<T>) -> Result<(), Status> {
    if req.extensions().get::<pantau_core::auth::Caller>().is_some() {
        return Ok(());
    }
    Err(Status::unauthenticated("this call needs an admin token"))
}

fn ts(ms: i64) -> Option<prost_types::Timestamp> {
    (ms > 0).then(|| to_timestamp(std::time::UNIX_EPOCH + Duration::from_millis(ms as u64)))
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Service {
    /// Instance tokens cross no network in cleartext: over plaintext, only
    /// loopback callers, unless `sync.allow_plaintext`.
    fn transport<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let cfg = &self.ctx.config;
        if cfg.grpc.tls() || cfg.sync.allow_plaintext {
            return Ok(());
        }
        match req.remote_addr() {
            Some(a) if a.ip().is_loopback() => Ok(()),
            _ => Err(Status::failed_precondition(
                "instance tokens are not exchanged over cleartext: serve TLS (grpc.tls_cert_file) or set sync.allow_plaintext: true",
            )),
        }
    }

    /// Join-token check for Register.
    fn join<T>(&self, req: &Request<T>) -> Result<(), Status> {
        self.transport(req)?;
        match &self.ctx.config.sync.token {
            None => Ok(()),
            Some(t) if bearer(req).is_some_and(|b| constant_eq(b, t)) => Ok(()),
            Some(_) => Err(Status::unauthenticated(
                "this call needs the join token (sync.token) as a bearer token",
            )),
        }
    }

    /// A higher epoch in the request means this instance was replaced.
    fn fence<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let theirs: u64 = req
            .metadata()
            .get("x-pantau-epoch")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        let mine = self.node.state().epoch;
        if theirs > mine {
            self.node.recheck();
            return Err(Status::failed_precondition(format!(
                "stale primary: epoch {mine} is older than {theirs}"
            )));
        }
        Ok(())
    }

    fn require_primary(&self) -> Result<(), Status> {
        let s = self.node.state();
        if s.role == pb::SyncRole::Primary {
            return Ok(());
        }
        Err(Status::failed_precondition(format!(
            "this instance is not the primary; the primary is `{}` at {}",
            s.primary_id, s.primary_endpoint
        )))
    }

    /// Instance-token check: the instance id it belongs to.
    async fn instance<T>(&self, req: &Request<T>, claimed: &str) -> Result<store::InstanceRow, Status> {
        self.transport(req)?;
        let token = bearer(req).ok_or_else(|| Status::unauthenticated("missing bearer instance token"))?;
        let row = store::instance(&self.db, claimed)
            .await
            .map_err(|e| internal(&e))?
            .ok_or_else(|| Status::unauthenticated("unknown instance; register first"))?;
        if row.revoked || row.reg.token_hash.is_empty() {
            return Err(Status::unauthenticated(format!(
                "instance `{}` is revoked",
                quote(claimed)
            )));
        }
        if !constant_eq(&row.reg.token_hash, &token_hash(token)) {
            return Err(Status::unauthenticated("the instance token does not match"));
        }
        if row.reg.token_expires_ms <= now_ms() {
            return Err(Status::unauthenticated("the instance token expired; register again"));
        }
        if let Some(l) = self.node.lease()
            && l.revoked(claimed).await.unwrap_or(false)
        {
            return Err(Status::unauthenticated(format!(
                "instance `{}` is revoked",
                quote(claimed)
            )));
        }
        Ok(row)
    }

    async fn status(&self) -> pb::SyncStatus {
        let s = self.node.state();
        let mut link = self
            .link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let primary = s.role == pb::SyncRole::Primary;
        if primary && let Some(v) = self.source.cached().await {
            link.config_hash = v.hash;
        }
        pb::SyncStatus {
            id: self.node.id.clone(),
            name: self.node.id.clone(),
            location: self.node.location.clone(),
            role: s.role as i32,
            epoch: s.epoch,
            primary_id: s.primary_id,
            primary_endpoint: s.primary_endpoint,
            primary_reachable: primary || link.reachable,
            buffered_results: self.counters.buffered.load(Ordering::Relaxed),
            config_hash: link.config_hash,
            last_sync_success: ts(link.last_success_ms),
            produced_seq: self.counters.produced.load(Ordering::Relaxed),
            last_error: link.last_error,
        }
    }

    fn view(&self, r: store::InstanceRow, own: i32) -> pb::Instance {
        let system = serde_json::from_value::<SystemJson>(r.reg.system.clone()).unwrap_or_default();
        let metrics: MetricsJson = serde_json::from_value(r.metrics.clone()).unwrap_or_default();
        let conn: ConnJson = serde_json::from_value(r.connection.clone()).unwrap_or_default();
        // This instance's own row: it is alive (it answers), with its
        // health as its readiness checks say now.
        let (state, health) = if r.reg.id == self.node.id {
            (pb::InstanceState::Active, own)
        } else {
            let state = crate::instances::state_of(&self.ctx.config.sync, r.last_heartbeat_ms, now_ms());
            (state, crate::instances::shown_health(state, r.health))
        };
        pb::Instance {
            state: state as i32,
            health,
            registered_at: ts(r.registered_ms),
            last_heartbeat: ts(r.last_heartbeat_ms),
            token_expires_at: ts(r.reg.token_expires_ms),
            revoked: r.revoked,
            system: Some(pb::SystemInfo {
                platform: system.platform,
                arch: system.arch,
                memory_bytes: system.memory_bytes,
                cpu_count: system.cpu_count,
            }),
            metrics: Some(pb::SystemMetrics {
                cpu_percent: metrics.cpu,
                memory_percent: metrics.memory,
                disk_percent: metrics.disk,
                active_endpoints: metrics.endpoints,
            }),
            connection: Some(pb::ConnectionStatus {
                primary_reachable: conn.reachable,
                last_sync_success: ts(conn.last_success_ms),
                sync_errors: conn.errors,
            }),
            acked_seq: r.acked_seq as u64,
            results_received: r.results_received as u64,
            config_hash: r.config_hash,
            config_synced_at: ts(r.config_synced_ms),
            uptime: Some(to_duration(Duration::from_millis(r.uptime_ms.max(0) as u64))),
            id: r.reg.id,
            name: r.reg.name,
            location: r.reg.location,
            version: r.reg.version,
            capabilities: r.reg.capabilities,
            failover_order: r.reg.failover_order,
            public_endpoint: r.reg.public_endpoint,
        }
    }
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct SystemJson {
    platform: String,
    arch: String,
    memory_bytes: u64,
    cpu_count: u32,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct MetricsJson {
    cpu: f64,
    memory: f64,
    disk: f64,
    endpoints: u32,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct ConnJson {
    reachable: bool,
    last_success_ms: i64,
    errors: u64,
}

fn check_id(field: &str, v: &str) -> Result<(), Status> {
    if pantau_config::is_token(v) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "{field} `{v}` must be 1–128 letters, digits, `-` or `_`"
        )))
    }
}

#[tonic::async_trait]
impl SyncService for Service {
    async fn register(&self, req: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        self.join(&req)?;
        self.fence(&req)?;
        self.require_primary()?;
        let r = req.into_inner();
        check_id("instance_id", &r.instance_id)?;
        check_id("location", &r.location)?;
        if let Some(l) = self.node.lease()
            && l.revoked(&r.instance_id).await.unwrap_or(false)
        {
            return Err(Status::permission_denied(format!(
                "instance `{}` was removed",
                r.instance_id
            )));
        }
        if let Some(old) = store::instance(&self.db, &r.instance_id)
            .await
            .map_err(|e| internal(&e))?
            && old.revoked
        {
            return Err(Status::permission_denied(format!(
                "instance `{}` was removed",
                r.instance_id
            )));
        }
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = hex::encode(raw);
        let expires_ms = now_ms() + self.ctx.config.sync.token_ttl.as_millis() as i64;
        let sys = r.system.unwrap_or_default();
        let reg = store::Registration {
            name: if r.name.is_empty() {
                r.instance_id.clone()
            } else {
                r.name
            },
            id: r.instance_id,
            location: r.location,
            version: r.version,
            capabilities: r.capabilities,
            failover_order: r.failover_order,
            public_endpoint: r.public_endpoint,
            system: serde_json::to_value(SystemJson {
                platform: sys.platform,
                arch: sys.arch,
                memory_bytes: sys.memory_bytes,
                cpu_count: sys.cpu_count,
            })
            .unwrap_or_default(),
            token_hash: token_hash(&token),
            token_expires_ms: expires_ms,
            permissions: PERMISSIONS.iter().map(|p| (*p).to_owned()).collect(),
        };
        store::register(&self.db, &reg, now_ms())
            .await
            .map_err(|e| internal(&e))?;
        tracing::info!(instance = %reg.id, location = %reg.location, "instance registered");
        let s = self.node.state();
        Ok(Response::new(pb::RegisterResponse {
            token,
            expires_at: ts(expires_ms),
            permissions: reg.permissions,
            epoch: s.epoch,
            primary_id: s.primary_id,
        }))
    }

    async fn heartbeat(&self, req: Request<pb::HeartbeatRequest>) -> Result<Response<pb::HeartbeatResponse>, Status> {
        self.fence(&req)?;
        self.require_primary()?;
        let id = req.get_ref().instance_id.clone();
        self.instance(&req, &id).await?;
        let r = req.into_inner();
        let _: pb::InstanceHealth = pantau_core::error::enum_arg("status", r.status)?;
        let m = r.metrics.unwrap_or_default();
        let c = r.connection.unwrap_or_default();
        let beat = store::Beat {
            health: r.status,
            metrics: serde_json::to_value(MetricsJson {
                cpu: m.cpu_percent,
                memory: m.memory_percent,
                disk: m.disk_percent,
                endpoints: m.active_endpoints,
            })
            .unwrap_or_default(),
            connection: serde_json::to_value(ConnJson {
                reachable: c.primary_reachable,
                last_success_ms: c
                    .last_sync_success
                    .as_ref()
                    .and_then(pantau_core::time::from_timestamp)
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as i64),
                errors: c.sync_errors,
            })
            .unwrap_or_default(),
            uptime_ms: r
                .uptime
                .as_ref()
                .and_then(pantau_core::time::from_duration)
                .map_or(0, |d| d.as_millis() as i64),
        };
        store::heartbeat(&self.db, &id, &beat, now_ms())
            .await
            .map_err(|e| internal(&e))?;
        let state = self.node.state();
        let hash = match self.source.cached().await {
            Some(current) => current.hash,
            None => self
                .source
                .refresh(&self.ctx.config, &self.db)
                .await
                .map(|fresh| fresh.hash)
                .unwrap_or_default(),
        };
        Ok(Response::new(pb::HeartbeatResponse {
            epoch: state.epoch,
            primary_id: state.primary_id,
            config_hash: hash,
        }))
    }

    async fn list_instances(
        &self,
        req: Request<pb::ListInstancesRequest>,
    ) -> Result<Response<pb::ListInstancesResponse>, Status> {
        admin(&req)?;
        let rows = store::instances(&self.db).await.map_err(|e| internal(&e))?;
        let own = crate::instances::own_health(&self.ctx).await as i32;
        let instances: Vec<pb::Instance> = rows.into_iter().map(|r| self.view(r, own)).collect();
        Ok(Response::new(pb::ListInstancesResponse { instances }))
    }

    async fn remove_instance(
        &self,
        req: Request<pb::RemoveInstanceRequest>,
    ) -> Result<Response<pb::RemoveInstanceResponse>, Status> {
        admin(&req)?;
        let id = req.into_inner().instance_id;
        check_id("instance_id", &id)?;
        if id == self.node.id {
            return Err(Status::failed_precondition("an instance cannot remove itself"));
        }
        let known = store::revoke(&self.db, &id).await.map_err(|e| internal(&e))?;
        if let Some(l) = self.node.lease() {
            l.revoke(&id)
                .await
                .map_err(|e| Status::unavailable(format!("cannot record the revocation: {e}")))?;
        } else if !known {
            return Err(Status::not_found(format!("no instance `{}`", quote(&id))));
        }
        tracing::info!(instance = %id, "instance removed and its token revoked");
        Ok(Response::new(pb::RemoveInstanceResponse {}))
    }

    async fn get_config(&self, req: Request<pb::GetConfigRequest>) -> Result<Response<pb::GetConfigResponse>, Status> {
        self.fence(&req)?;
        self.require_primary()?;
        let id = req.get_ref().instance_id.clone();
        self.instance(&req, &id).await?;
        let r = req.into_inner();
        let v = self.source.refresh(&self.ctx.config, &self.db).await?;
        store::config_synced(&self.db, &id, &v.hash, now_ms())
            .await
            .map_err(|e| internal(&e))?;
        let unchanged = r.if_none_match == v.hash;
        Ok(Response::new(pb::GetConfigResponse {
            version: v.version,
            hash: v.hash,
            unchanged,
            config: (!unchanged).then_some(v.config),
        }))
    }

    async fn push_results(
        &self,
        req: Request<pb::PushResultsRequest>,
    ) -> Result<Response<pb::PushResultsResponse>, Status> {
        self.fence(&req)?;
        self.require_primary()?;
        let id = req.get_ref().instance_id.clone();
        let row = self.instance(&req, &id).await?;
        let r = req.into_inner();
        if r.results.len() > 10_000 {
            return Err(Status::invalid_argument("results: at most 10000 per push"));
        }
        let batch = primary::incoming(&r.results, self.ctx.config.sync.consensus_window)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let done = primary::ingest(&self.node, &self.db, &id, &row.reg.location, &batch, None)
            .await
            .map_err(|e| match e {
                primary::IngestError::Store(e) => internal(&e),
                primary::IngestError::Stale { .. } => Status::failed_precondition(e.to_string()),
                primary::IngestError::Lease(e) => Status::unavailable(e.to_string()),
            })?;
        // Checked again after the write: a primary replaced meanwhile must
        // not acknowledge (the dependent resends to the new one).
        self.require_primary()?;
        Ok(Response::new(pb::PushResultsResponse {
            acked_seq: done.acked_seq,
            accepted: done.accepted,
            duplicates: done.duplicates,
            epoch: self.node.state().epoch,
        }))
    }

    async fn get_status(&self, _req: Request<pb::GetStatusRequest>) -> Result<Response<pb::SyncStatus>, Status> {
        Ok(Response::new(self.status().await))
    }

    async fn promote(&self, req: Request<pb::PromoteRequest>) -> Result<Response<pb::SyncStatus>, Status> {
        admin(&req)?;
        self.node
            .command(Command::Promote)
            .await
            .map_err(|e| pantau_core::error::status(&e))?;
        Ok(Response::new(self.status().await))
    }

    async fn demote(&self, req: Request<pb::DemoteRequest>) -> Result<Response<pb::SyncStatus>, Status> {
        admin(&req)?;
        let mut id = req.into_inner().instance_id;
        if id.is_empty() {
            id.clone_from(&self.node.id);
        }
        check_id("instance_id", &id)?;
        self.node
            .command(|reply| Command::Demote(id, reply))
            .await
            .map_err(|e| pantau_core::error::status(&e))?;
        Ok(Response::new(self.status().await))
    }

    async fn get_failover_order(
        &self,
        _req: Request<pb::GetFailoverOrderRequest>,
    ) -> Result<Response<pb::FailoverOrder>, Status> {
        let s = self.node.state();
        let order = &self.ctx.config.sync.failover_order;
        let mut candidates: Vec<pb::FailoverCandidate> = order
            .iter()
            .enumerate()
            .map(|(i, id)| pb::FailoverCandidate {
                id: id.clone(),
                position: i as u32,
                primary: *id == s.primary_id,
            })
            .collect();
        if order.is_empty()
            && let Some(p) = self.node.position()
        {
            candidates.push(pb::FailoverCandidate {
                id: self.node.id.clone(),
                position: p,
                primary: s.role == pb::SyncRole::Primary,
            });
        }
        // The instances registered here, at the position each gave when it
        // registered (after the configured order, which takes precedence).
        // An instance whose position is u32::MAX may not lead: it is left out.
        if s.role == pb::SyncRole::Primary {
            let registered = store::instances(&self.db).await.map_err(|e| internal(&e))?;
            for r in registered {
                let known = candidates.iter().any(|c| c.id == r.reg.id);
                if r.revoked || known || r.reg.failover_order == u32::MAX {
                    continue;
                }
                candidates.push(pb::FailoverCandidate {
                    primary: r.reg.id == s.primary_id,
                    id: r.reg.id,
                    position: r.reg.failover_order,
                });
            }
        }
        candidates.sort_by(|a, b| a.position.cmp(&b.position).then_with(|| a.id.cmp(&b.id)));
        Ok(Response::new(pb::FailoverOrder { candidates }))
    }

    async fn list_location_results(
        &self,
        req: Request<pb::ListLocationResultsRequest>,
    ) -> Result<Response<pb::ListLocationResultsResponse>, Status> {
        let r = req.into_inner();
        for (field, v) in [("location", &r.location), ("target_id", &r.target_id)] {
            if v.len() > 128 || v.chars().any(char::is_control) {
                return Err(Status::invalid_argument(format!(
                    "{field} {} must be at most 128 characters without control characters",
                    quote(v)
                )));
            }
        }
        if r.location.is_empty() {
            return Err(Status::invalid_argument("location is required"));
        }
        let target = (!r.target_id.is_empty()).then_some(r.target_id.as_str());
        let rows = store::latest_at(&self.db, &r.location, target, MAX_LOCATION_RESULTS)
            .await
            .map_err(|e| internal(&e))?;
        let results = rows
            .into_iter()
            .map(|(target_id, up, latency, checked_ms)| pb::CheckResult {
                target_id,
                location: r.location.clone(),
                status: if up { pb::CheckStatus::Up } else { pb::CheckStatus::Down } as i32,
                latency: Some(to_duration(latency)),
                checked_at: ts(checked_ms),
                ..Default::default()
            })
            .collect();
        Ok(Response::new(pb::ListLocationResultsResponse { results }))
    }

    async fn get_location_history(
        &self,
        req: Request<pb::GetLocationHistoryRequest>,
    ) -> Result<Response<pb::GetHistoryResponse>, Status> {
        let q = crate::history::check(req.get_ref(), std::time::SystemTime::now())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let points = crate::history::query(&self.db, &q.location, &q.target_id, q.from, q.to, q.res)
            .await
            .map_err(|e| internal(&e))?;
        Ok(Response::new(crate::history::answer(&q, points)))
    }
}

/// At most this many targets in one `ListLocationResults` answer.
const MAX_LOCATION_RESULTS: i64 = 100_000;

/// Serves the service with health and reflection until `ctx.shutdown`.
/// Registration, removal, promotion and demotion are audited in the sync store.
pub async fn serve(service: Service, listener: tokio::net::TcpListener) -> Result<(), pantau_core::grpc::GrpcError> {
    let (ctx, db) = (service.ctx.clone(), service.db.clone());
    let routes = tonic::service::Routes::new(SyncServiceServer::new(service));
    pantau_core::grpc::serve(&ctx, listener, routes, &["pantau.v1.SyncService"], Some(&db)).await
}
