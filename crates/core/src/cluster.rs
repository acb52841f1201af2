//! Who in a multi-location cluster evaluates alerts and sends notifications.
//!
//! Exactly one instance is primary (the sync-api's lease); its alert engine
//! evaluates every rule over every location's facts and its notifier
//! delivers, through the cluster-wide durable consumers. The other
//! instances' engines only keep a copy of the primary's alerts. The sync-api
//! of the process states the role here ([`Cluster::set`]); a process that
//! runs no sync-api (a standalone instance, or a service run on its own)
//! keeps the role its configuration gives.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use pantau_config::{Config, InstanceRole};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::bus::{BusError, Consumer, Delivery, HandleError};
use crate::health::ReadinessCheck;

/// This process's place in the cluster, as far as evaluating goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// No other instance: everything is evaluated here.
    Standalone,
    /// The cluster's primary (with its fencing epoch).
    Primary { epoch: u64 },
    /// A dependent of `primary` (empty while no primary is known).
    Dependent { primary: String },
}

impl Role {
    /// Whether this instance's alert engine evaluates and its notifier delivers.
    pub fn evaluates(&self) -> bool {
        matches!(self, Self::Standalone | Self::Primary { .. })
    }

    /// The role `config` gives before any election.
    pub fn configured(config: &Config) -> Self {
        match config.sync.effective_role() {
            InstanceRole::Standalone => Self::Standalone,
            InstanceRole::Primary => Self::Primary { epoch: 0 },
            InstanceRole::Dependent => Self::Dependent { primary: String::new() },
        }
    }
}

/// The shared, watchable role (cheap to clone).
#[derive(Debug, Clone)]
pub struct Cluster(Arc<watch::Sender<Role>>);

impl Cluster {
    pub fn new(role: Role) -> Self {
        Self(Arc::new(watch::Sender::new(role)))
    }

    pub fn role(&self) -> Role {
        self.0.borrow().clone()
    }

    /// Sets the role (the sync-api's election does); watchers wake on a change.
    pub fn set(&self, role: Role) {
        self.0.send_if_modified(|r| {
            if *r == role {
                false
            } else {
                *r = role;
                true
            }
        });
    }

    pub fn watch(&self) -> watch::Receiver<Role> {
        self.0.subscribe()
    }

    /// Runs `work` (made anew each time) while this instance evaluates, and
    /// stops it (cancelling the token it was given, then waiting for it)
    /// when the role changes away, until `shutdown`. When `work` ends by
    /// itself (or by shutdown), this ends with its result. `first`, if
    /// given, is a run already started (with its token) while evaluating.
    pub async fn while_evaluating<F, E>(
        &self,
        shutdown: CancellationToken,
        mut first: Option<(CancellationToken, BoxFuture<'static, Result<(), E>>)>,
        mut work: F,
    ) -> Result<(), E>
    where
        F: FnMut(CancellationToken) -> BoxFuture<'static, Result<(), E>>,
    {
        let mut rx = self.watch();
        loop {
            let evaluates = rx.borrow_and_update().evaluates();
            if let Some((stop, run)) = first.take_if(|_| !evaluates) {
                // The role changed before this loop began watching it.
                stop.cancel();
                run.await?;
            }
            if evaluates {
                let (stop, mut run) = first.take().unwrap_or_else(|| {
                    let stop = shutdown.child_token();
                    let run = work(stop.clone());
                    (stop, run)
                });
                let ended = loop {
                    tokio::select! {
                        r = &mut run => break Some(r),
                        changed = rx.changed() => {
                            if changed.is_err() || !rx.borrow().evaluates() {
                                stop.cancel();
                                break None;
                            }
                        }
                    }
                };
                // Ended by itself or by shutdown: the caller sees how.
                if let Some(r) = ended {
                    return r;
                }
                run.await?;
                tracing::info!("this instance no longer evaluates: stopped its cluster-wide consumers");
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                changed = rx.changed() => if changed.is_err() { return Ok(()) },
            }
        }
    }

    /// A [`Gate`] for consumer `name` (its readiness names it).
    pub fn gate(&self, name: &str) -> Gate {
        Gate {
            cluster: self.clone(),
            name: name.to_owned(),
            current: Arc::default(),
        }
    }
}

/// A bus consumer that holds its (cluster-wide, durable) subscriptions only
/// while this instance evaluates: JetStream hands each message of a shared
/// durable consumer to one subscriber, so exactly one instance of the
/// cluster gets it, and a new primary resumes where the old one stopped.
#[derive(Clone)]
pub struct Gate {
    cluster: Cluster,
    name: String,
    current: Arc<Mutex<Option<Arc<dyn ReadinessCheck>>>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Gate {
    /// Ready on a dependent that knows its primary; not ready while no
    /// primary is known; else as its consumer.
    pub fn readiness(&self) -> Arc<dyn ReadinessCheck> {
        Arc::new(self.clone())
    }

    /// Subscribes now if this instance evaluates (so nothing published
    /// afterwards is missed); the returned loop makes a consumer with `make`
    /// (which may first prepare, e.g. load what the previous primary left)
    /// and runs `handler` whenever this instance evaluates, until `shutdown`.
    /// Later runs subscribe inside their loop (again while the bus refuses).
    pub async fn start<M, MF, H, Fut>(
        self,
        make: M,
        handler: H,
        shutdown: CancellationToken,
    ) -> Result<impl Future<Output = Result<(), BusError>> + Send + 'static, BusError>
    where
        M: Fn() -> MF + Send + Sync + 'static,
        MF: Future<Output = Consumer> + Send + 'static,
        H: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandleError>> + Send + 'static,
    {
        self.start_batches(make, 1, crate::bus::consume::one_by_one(handler), shutdown)
            .await
    }

    /// [`start`](Self::start) with a handler of batches of up to `max`
    /// messages ([`Consumer::start_batches`]).
    pub async fn start_batches<M, MF, H, Fut>(
        self,
        make: M,
        max: usize,
        handler: H,
        shutdown: CancellationToken,
    ) -> Result<impl Future<Output = Result<(), BusError>> + Send + 'static, BusError>
    where
        M: Fn() -> MF + Send + Sync + 'static,
        MF: Future<Output = Consumer> + Send + 'static,
        H: Fn(Vec<Delivery>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandleError>> + Send + 'static,
    {
        let first = if self.cluster.role().evaluates() {
            let stop = shutdown.child_token();
            let consumer = make().await;
            self.hold(&consumer);
            let run = consumer.start_batches(stop.clone(), max, handler.clone()).await?;
            let run: BoxFuture<'static, Result<(), BusError>> = Box::pin(async move {
                run.await;
                Ok(())
            });
            Some((stop, run))
        } else {
            None
        };
        let cluster = self.cluster.clone();
        let make = Arc::new(make);
        Ok(async move {
            cluster
                .while_evaluating(shutdown, first, move |stop| {
                    let (gate, make, handler) = (self.clone(), Arc::clone(&make), handler.clone());
                    Box::pin(async move {
                        tracing::info!(consumer = %gate.name, "this instance evaluates: taking the cluster-wide consumers");
                        let consumer = make().await;
                        gate.hold(&consumer);
                        consumer.run_batches(stop, max, handler).await;
                        Ok(())
                    })
                })
                .await
        })
    }

    fn hold(&self, consumer: &Consumer) {
        *self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(consumer.readiness());
    }
}

#[async_trait::async_trait]
impl ReadinessCheck for Gate {
    async fn check(&self) -> Result<(), String> {
        match self.cluster.role() {
            // Before the first election (or while no primary is known)
            // nobody may be consuming: not ready, so a start waits for it.
            Role::Dependent { primary } if primary.is_empty() => {
                return Err(format!(
                    "consumer `{}` waits for the election (no primary known yet)",
                    self.name
                ));
            }
            Role::Dependent { .. } => return Ok(()),
            Role::Standalone | Role::Primary { .. } => {}
        }
        let current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match current {
            Some(c) => c.check().await,
            None => Err(format!("consumer `{}` is not subscribed", self.name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn work_runs_only_while_evaluating() {
        let cluster = Cluster::new(Role::Dependent { primary: "a".into() });
        let runs = Arc::new(AtomicU32::new(0));
        let live = Arc::new(AtomicU32::new(0));
        let shutdown = CancellationToken::new();
        let (c, r, l, s) = (cluster.clone(), runs.clone(), live.clone(), shutdown.clone());
        let task = tokio::spawn(async move {
            c.while_evaluating::<_, ()>(s, None, move |stop| {
                let (r, l) = (r.clone(), l.clone());
                Box::pin(async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    l.fetch_add(1, Ordering::SeqCst);
                    stop.cancelled().await;
                    l.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
            })
            .await
        });
        let settle = || tokio::time::sleep(Duration::from_millis(50));
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 0, "a dependent does not evaluate");
        cluster.set(Role::Primary { epoch: 2 });
        settle().await;
        assert_eq!((runs.load(Ordering::SeqCst), live.load(Ordering::SeqCst)), (1, 1));
        cluster.set(Role::Primary { epoch: 3 });
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "a new epoch keeps the same work");
        cluster.set(Role::Dependent { primary: "b".into() });
        settle().await;
        assert_eq!(live.load(Ordering::SeqCst), 0, "stepping down stops it");
        cluster.set(Role::Standalone);
        settle().await;
        assert_eq!((runs.load(Ordering::SeqCst), live.load(Ordering::SeqCst)), (2, 1));
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(live.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_gate_is_not_ready_before_the_election_and_ready_on_a_known_dependent() {
        let cluster = Cluster::new(Role::Dependent { primary: String::new() });
        let ready = cluster.gate("alert-engine").readiness();
        let e = ready.check().await.unwrap_err();
        assert!(e.contains("alert-engine") && e.contains("election"), "{e}");
        cluster.set(Role::Dependent {
            primary: "jkt-1".into(),
        });
        assert_eq!(ready.check().await, Ok(()));
        cluster.set(Role::Primary { epoch: 1 });
        let e = ready.check().await.unwrap_err();
        assert!(
            e.contains("not subscribed"),
            "an evaluating instance needs its consumer: {e}"
        );
    }
}
