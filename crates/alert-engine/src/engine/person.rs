//! What people do to alerts through the API: acknowledge and resolve, each
//! stored and published, or undone when it cannot be stored.

use super::{
    Alert, Change, Deps, Engine, EngineError, IncidentWrite, Inner, Lifecycle, LifecycleError, PERSON_WAIT, Snapshot,
    State, SystemTime, grouping, m,
};

impl Engine {
    /// A person acknowledges an alert.
    pub async fn acknowledge(
        &self,
        id: &str,
        actor: &str,
        comment: &str,
        now: SystemTime,
    ) -> Result<Alert, EngineError> {
        self.by_person(id, now, |life| life.acknowledge(id, actor, comment, now))
            .await
    }

    /// A person resolves an alert.
    pub async fn resolve(&self, id: &str, actor: &str, comment: &str, now: SystemTime) -> Result<Alert, EngineError> {
        self.by_person(id, now, |life| life.resolve(id, actor, comment, now))
            .await
    }

    /// A person's change of alert `id`, made by `change` on the lifecycle,
    /// stored and published or undone ([`Self::commit_or_undo`]).
    async fn by_person(
        &self,
        id: &str,
        now: SystemTime,
        change: impl FnOnce(&mut Lifecycle) -> Result<Change, LifecycleError>,
    ) -> Result<Alert, EngineError> {
        self.must_evaluate()?;
        let mut inner = self.lock_for_person().await?;
        let before = inner.life.snapshot(id);
        let c = match change(&mut inner.life) {
            Ok(c) => c,
            Err(LifecycleError::NotOpen(_)) => return Err(self.not_open(id).await),
            Err(e) => return Err(e.into()),
        };
        let alert = c.alert.clone();
        self.commit_or_undo(&mut inner, c, before, now).await?;
        Ok(alert)
    }

    /// The engine for a request that changes something, waiting at most
    /// [`PERSON_WAIT`]: [`EngineError::Busy`] (nothing changed) rather than
    /// an answer later than the gateway waits, which could not say whether
    /// the change was applied.
    pub(crate) async fn lock_for_person(&self) -> Result<tokio::sync::MutexGuard<'_, Inner>, EngineError> {
        tokio::time::timeout(PERSON_WAIT, self.inner.lock())
            .await
            .map_err(|_| EngineError::Busy)
    }

    /// Stores then publishes a person's change, or undoes it: an answer
    /// that says it failed means it is not applied later (before, the change
    /// waited with the engine's own unsaved transitions and was stored and
    /// published once the store came back, after the client was told 503).
    /// Transitions still waiting to be stored go first, in their order.
    pub(super) async fn commit_or_undo(
        &self,
        inner: &mut Inner,
        c: Change,
        before: Option<Snapshot>,
        now: SystemTime,
    ) -> Result<(), EngineError> {
        let stored = match self.commit(inner, Vec::new(), now).await {
            Ok(_) => {
                let Inner { incidents, deps, .. } = &mut *inner;
                let deps: &Deps = deps;
                let incident_before = incidents.of_alert(&c.alert.id).cloned();
                let writes: Vec<IncidentWrite> = incidents
                    .follow(&c, |incs| grouping(&c.alert, deps, incs))
                    .into_iter()
                    .collect();
                match self.store.record_all(std::slice::from_ref(&c), &writes).await {
                    Ok(()) => Ok(writes),
                    Err(e) => {
                        // Back as before: the incident's counts and members.
                        if let Some(i) = incident_before {
                            inner.incidents.undo(i, &c.alert.id);
                        }
                        Err(EngineError::from(e))
                    }
                }
            }
            Err(e) => Err(e),
        };
        let writes = match stored {
            Ok(w) => w,
            Err(e) => {
                metrics::counter!(m::PERSIST_ERRORS_TOTAL).increment(1);
                if let Some(before) = before {
                    inner.life.undo(before);
                }
                metrics::gauge!(m::OPEN_ALERTS).set(inner.life.open_count() as f64);
                tracing::warn!(alert = %c.alert.id, state = c.transition.state.as_str(), error = %e, "cannot store a person's change; not applied");
                return Err(e);
            }
        };
        self.publish(&c).await;
        for w in &writes {
            self.publish_incident(w).await;
        }
        if c.transition.state == State::Resolved && inner.any_depends {
            // The change is stored: a failure to release its dependants is
            // retried by the sweep, not the person's failure.
            if let Err(e) = self.release(inner, now).await {
                tracing::warn!(error = %e, "cannot record alerts whose parent ended; the sweep retries");
            }
        }
        metrics::gauge!(m::OPEN_ALERTS).set(inner.life.open_count() as f64);
        Ok(())
    }

    async fn not_open(&self, id: &str) -> EngineError {
        match self.store.get(id).await {
            Ok(Some(a)) if a.state == State::Resolved => EngineError::AlreadyResolved(id.to_owned()),
            Ok(_) => EngineError::NotFound(id.to_owned()),
            Err(e) => e.into(),
        }
    }
}
