//! This instance's place among locations: its role (primary or dependent),
//! the fencing epoch, who the primary is, and the election that keeps
//! exactly one primary.
//!
//! With `nats.url` the election runs over the [`Lease`]: the holder renews
//! every third of a lease and steps down by itself after 0.8 of a lease
//! without a successful renewal (before anyone else may take it); the others
//! follow the holder (reading it every tenth of a lease), and when the lease
//! is vacant or expired each eligible instance waits until a fifth of a lease
//! per failover position has passed since it lapsed, reads again and tries a
//! compare-and-set. Without NATS the configured role is fixed.

use std::sync::Arc;
use std::time::Duration;

use pantau_config::{Config, InstanceRole};
use pantau_proto::v1::SyncRole;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::lease::{Holder, Lease, LeaseError, now_ms};
use crate::metrics;

/// Who leads, as this instance sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub role: SyncRole,
    pub epoch: u64,
    pub primary_id: String,
    pub primary_endpoint: String,
}

/// A manual change of leadership.
#[derive(Debug)]
pub enum Command {
    Promote(oneshot::Sender<Result<(), FailoverError>>),
    Demote(String, oneshot::Sender<Result<(), FailoverError>>),
}

/// Why a manual promotion or demotion did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    #[error("manual failover needs the NATS lease: set nats.url")]
    NoLease,
    #[error("the election is not running")]
    NotRunning,
    #[error("`{id}` is not the primary (the primary is `{primary}`)")]
    NotPrimary { id: String, primary: String },
    #[error("another instance changed the lease at the same moment; try again")]
    Raced,
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

impl pantau_core::error::ServiceError for FailoverError {
    fn code(&self) -> pantau_core::error::ErrorCode {
        use pantau_core::error::ErrorCode;
        match self {
            Self::NoLease | Self::NotPrimary { .. } => ErrorCode::FailedPrecondition,
            Self::Raced => ErrorCode::Conflict,
            Self::NotRunning | Self::Lease(_) => ErrorCode::Unavailable,
        }
    }
}

/// This instance and its view of the primary.
pub struct Node {
    pub id: String,
    pub location: String,
    pub endpoint: String,
    pub config: Arc<Config>,
    state: watch::Sender<NodeState>,
    lease: Option<Lease>,
    commands: mpsc::Sender<Command>,
    kick: tokio::sync::Notify,
    /// The traced results of the windows not yet published.
    pub causes: crate::trace::Causes,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node in its configured role; call [`Node::run`] to elect.
    pub fn new(config: Arc<Config>, lease: Option<Lease>) -> (Arc<Self>, mpsc::Receiver<Command>) {
        let s = &config.sync;
        let id = config.instance.name.clone();
        let endpoint = s.public_endpoint();
        let initial = match (s.effective_role(), &lease) {
            // Without a lease the configured primary simply is primary.
            (InstanceRole::Primary, None) => NodeState {
                role: SyncRole::Primary,
                epoch: 1,
                primary_id: id.clone(),
                primary_endpoint: endpoint.clone(),
            },
            _ => NodeState {
                role: SyncRole::Dependent,
                epoch: 0,
                primary_id: String::new(),
                primary_endpoint: s.primary_url.clone().unwrap_or_default(),
            },
        };
        let (tx, rx) = mpsc::channel(8);
        let node = Arc::new(Self {
            id,
            location: config.instance.location.clone(),
            endpoint,
            config,
            state: watch::Sender::new(initial),
            lease,
            commands: tx,
            kick: tokio::sync::Notify::new(),
            causes: crate::trace::Causes::default(),
        });
        (node, rx)
    }

    pub fn state(&self) -> NodeState {
        self.state.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<NodeState> {
        self.state.subscribe()
    }

    pub fn is_primary(&self) -> bool {
        self.state.borrow().role == SyncRole::Primary
    }

    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Re-reads the lease now (a request showed a newer epoch).
    pub fn recheck(&self) {
        self.kick.notify_one();
    }

    /// This instance's failover position; `None` when it may not lead.
    pub fn position(&self) -> Option<u32> {
        let s = &self.config.sync;
        let primary = s.effective_role() == InstanceRole::Primary;
        match s.failover_order.iter().position(|n| *n == self.id) {
            Some(i) => Some(i as u32),
            None if s.failover_rank.is_some() => s.failover_rank,
            None if primary => Some(0),
            None if s.failover_order.is_empty() => Some(1),
            None => None,
        }
    }

    /// Sends a manual promotion or demotion to the election.
    pub async fn command(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), FailoverError>>) -> Command,
    ) -> Result<(), FailoverError> {
        if self.lease.is_none() {
            return Err(FailoverError::NoLease);
        }
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| FailoverError::NotRunning)?;
        rx.await.map_err(|_| FailoverError::NotRunning)?
    }

    fn me(&self) -> Holder {
        Holder {
            holder: self.id.clone(),
            endpoint: self.endpoint.clone(),
            location: self.location.clone(),
            epoch: 0,
            expires_ms: 0,
        }
    }

    fn set(&self, next: NodeState) {
        let (role, epoch, primary) = (next.role, next.epoch, next.primary_id.clone());
        let changed = self.state.send_if_modified(move |s| {
            if *s == next {
                false
            } else {
                *s = next;
                true
            }
        });
        if changed {
            let name = if role == SyncRole::Primary {
                "primary"
            } else {
                "dependent"
            };
            tracing::info!(role = name, epoch, primary = %primary, "sync role");
            metrics::role(role == SyncRole::Primary, epoch);
        }
    }

    fn follow(&self, h: Option<&Holder>, epoch: u64) {
        let mut next = self.state();
        next.role = SyncRole::Dependent;
        next.epoch = next.epoch.max(epoch);
        match h {
            Some(h) => {
                next.primary_id.clone_from(&h.holder);
                next.primary_endpoint.clone_from(&h.endpoint);
            }
            None => next.primary_id.clear(),
        }
        self.set(next);
    }

    fn lead(&self, epoch: u64) {
        metrics::promotion();
        self.set(NodeState {
            role: SyncRole::Primary,
            epoch,
            primary_id: self.id.clone(),
            primary_endpoint: self.endpoint.clone(),
        });
    }

    /// The election loop, until `stop`; a held lease is released on the way out.
    pub async fn run(self: Arc<Self>, mut commands: mpsc::Receiver<Command>, stop: CancellationToken) {
        let Some(lease) = self.lease.clone() else {
            metrics::role(self.is_primary(), self.state().epoch);
            stop.cancelled().await;
            return;
        };
        let ttl = lease.ttl();
        let tick = ttl / 10;
        let started = Instant::now();
        let grace = if self.config.sync.effective_role() == InstanceRole::Primary {
            Duration::ZERO
        } else {
            ttl * 2
        };
        // (epoch, revision, when renewed)
        let mut held: Option<(u64, u64, Instant)> = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(tick) => {}
                () = self.kick.notified() => {}
                Some(cmd) = commands.recv() => {
                    self.handle(&lease, cmd, &mut held).await;
                    continue;
                }
            }
            let step = match held {
                Some(h) => self.keep(&lease, h, ttl).await.map(|kept| held = kept),
                None => self.contend(&lease, started, grace, &stop).await.map(|won| held = won),
            };
            if let Err(e) = step {
                tracing::warn!(error = %e, "lease check failed");
            }
        }
        if let Some((_, rev, _)) = held
            && lease.release(rev).await.unwrap_or(false)
        {
            tracing::info!("released the primary lease on shutdown");
        }
    }

    async fn keep(
        &self,
        lease: &Lease,
        (epoch, rev, renewed): (u64, u64, Instant),
        ttl: Duration,
    ) -> Result<Option<(u64, u64, Instant)>, LeaseError> {
        if renewed.elapsed() < ttl / 3 {
            return Ok(Some((epoch, rev, renewed)));
        }
        match lease.renew(&self.me(), epoch, rev).await {
            Ok(Some(rev)) => Ok(Some((epoch, rev, Instant::now()))),
            Ok(None) => {
                let seen = lease.read().await?;
                tracing::warn!(epoch, newer = seen.epoch, "lost the primary lease; stepping down");
                self.follow(seen.live(now_ms()), seen.epoch);
                Ok(None)
            }
            Err(e) if renewed.elapsed() >= ttl.mul_f64(0.8) => {
                tracing::warn!(error = %e, "cannot renew the primary lease in time; stepping down");
                self.follow(None, epoch);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn contend(
        &self,
        lease: &Lease,
        started: Instant,
        grace: Duration,
        stop: &CancellationToken,
    ) -> Result<Option<(u64, u64, Instant)>, LeaseError> {
        let seen = lease.read().await?;
        if let Some(h) = seen.live(now_ms()) {
            if h.holder == self.id {
                // Our own lease from before a restart: wait for it to lapse.
                return Ok(None);
            }
            self.follow(Some(h), seen.epoch);
            return Ok(None);
        }
        self.follow(None, seen.epoch);
        let Some(position) = self.position() else {
            return Ok(None);
        };
        if started.elapsed() < grace || lease.held(&self.id).await? {
            return Ok(None);
        }
        // The first in the failover order tries first: position k tries k
        // fifths of a lease after the lease lapsed (by the holder's expiry,
        // which every contender reads alike, so their polling phases do not
        // reorder them).
        let step = (lease.ttl() / 5).as_millis() as i64;
        let base = seen.holder.as_ref().map_or_else(now_ms, |h| h.expires_ms);
        let at = base + step * i64::from(position);
        let wait = Duration::from_millis((at - now_ms()).max(0) as u64);
        tokio::select! {
            () = stop.cancelled() => return Ok(None),
            () = tokio::time::sleep(wait) => {}
        }
        let seen = lease.read().await?;
        if let Some(h) = seen.live(now_ms()) {
            self.follow(Some(h), seen.epoch);
            return Ok(None);
        }
        match lease.acquire(&self.me(), &seen, false).await? {
            Some((epoch, rev)) => {
                tracing::info!(epoch, position, "took the primary lease");
                self.lead(epoch);
                Ok(Some((epoch, rev, Instant::now())))
            }
            None => Ok(None),
        }
    }

    async fn handle(&self, lease: &Lease, cmd: Command, held: &mut Option<(u64, u64, Instant)>) {
        match cmd {
            Command::Promote(reply) => {
                let r = async {
                    if held.is_some() {
                        return Ok(());
                    }
                    lease.hold(&self.id, 0).await?;
                    let seen = lease.read().await?;
                    if let Some((epoch, rev)) = lease.acquire(&self.me(), &seen, true).await? {
                        tracing::info!(epoch, "promoted by hand");
                        self.lead(epoch);
                        *held = Some((epoch, rev, Instant::now()));
                        Ok(())
                    } else {
                        Ok::<_, LeaseError>(())
                    }
                }
                .await
                .map_err(FailoverError::from)
                .and_then(|()| {
                    if held.is_some() {
                        Ok(())
                    } else {
                        Err(FailoverError::Raced)
                    }
                });
                let _ = reply.send(r);
            }
            Command::Demote(id, reply) => {
                let r = async {
                    let until = now_ms() + (lease.ttl() * 3).as_millis() as i64;
                    let seen = lease.read().await?;
                    let holder = seen.live(now_ms()).map(|h| h.holder.clone());
                    if holder.as_deref() != Some(id.as_str()) {
                        return Ok(Err(FailoverError::NotPrimary {
                            id: id.clone(),
                            primary: holder.unwrap_or_default(),
                        }));
                    }
                    lease.hold(&id, until).await?;
                    let rev = match held {
                        Some((_, rev, _)) if id == self.id => *rev,
                        _ => seen.revision,
                    };
                    if !lease.release(rev).await? {
                        return Ok(Err(FailoverError::Raced));
                    }
                    if id == self.id {
                        *held = None;
                        self.follow(None, seen.epoch);
                    }
                    tracing::info!(instance = %id, "primary demoted by hand");
                    Ok::<_, LeaseError>(Ok(()))
                }
                .await
                .unwrap_or_else(|e| Err(e.into()));
                let _ = reply.send(r);
            }
        }
    }
}
