//! Which incident a firing alert joins (see [`crate::incident`]).

use crate::deps::Deps;
use crate::incident::{Grouping, Incidents};
use crate::lifecycle::Alert;
use crate::series::Labels;

/// Whether two label sets agree on every label both have.
pub(super) fn shared_agree(a: &Labels, b: &Labels) -> bool {
    a.iter().all(|(k, v)| b.get(k).is_none_or(|w| w == v))
}

/// Where a firing alert belongs (see [`crate::incident`]): with its
/// dependency parent's incident when a parent holds it, with its own
/// children's when it is a parent, else by its labels.
pub(crate) fn grouping(a: &Alert, deps: &Deps, incs: &Incidents) -> Grouping {
    if let Some(cause) = a.suppressed_by.strip_prefix("depends:") {
        // `depends:<parent alert id>`: the parent's incident. (A bare word
        // would also parse as a target: the alert is looked up first.)
        if let Some(p) = incs.of_alert(cause) {
            return Grouping {
                key: p.group_key.clone(),
                root_cause: p.root_cause.clone(),
            };
        }
        // `depends:target:<id>` and the like, or a parent alert in no incident.
        return match cause.parse::<pantau_config::Dependency>() {
            Ok(d) if cause.contains(':') => Grouping::by_cause(&d.to_string()),
            _ => Grouping::by_cause(cause),
        };
    }
    if let Some(dep) = deps.as_parent(a) {
        return Grouping::by_cause(&dep);
    }
    Grouping::by_labels(a, incs.group_by())
}

impl super::Engine {
    /// Makes every open alert that is in no incident (restored at a start or
    /// taken over at a promotion: fired where no incident was kept, or
    /// before incidents existed) join one by the grouping rules above, as
    /// if it fired now in the order the alerts fired — root causes and
    /// alerts held by nothing first, then the held ones, so they find their
    /// parent's incident; stored in one transaction, then published. How
    /// many joined. Nothing changes when it cannot be stored.
    pub(crate) async fn group_open_alerts(
        &self,
        inner: &mut super::Inner,
        now: std::time::SystemTime,
    ) -> Result<usize, super::EngineError> {
        use crate::lifecycle::{Change, State, Transition};
        let mut orphans: Vec<Alert> = inner
            .life
            .open()
            .filter(|a| inner.incidents.of_alert(&a.id).is_none())
            .cloned()
            .collect();
        if orphans.is_empty() {
            return Ok(0);
        }
        orphans.sort_by(|a, b| {
            (!a.suppressed_by.is_empty(), a.started_at, &a.id).cmp(&(!b.suppressed_by.is_empty(), b.started_at, &b.id))
        });
        let before = inner.incidents.clone();
        let mut writes = Vec::new();
        for a in orphans {
            let c = Change {
                transition: Transition {
                    alert_id: a.id.clone(),
                    // Only for the grouping: no transition is stored.
                    state: State::Firing,
                    at: a.started_at.min(now),
                    actor: String::new(),
                    comment: String::new(),
                },
                alert: a,
            };
            let super::Inner { incidents, deps, .. } = &mut *inner;
            let deps: &Deps = deps;
            writes.extend(incidents.follow(&c, |incs| grouping(&c.alert, deps, incs)));
        }
        if let Err(e) = self.store.record_all(&[], &writes).await {
            inner.incidents = before;
            return Err(e.into());
        }
        for w in &writes {
            self.publish_incident(w).await;
        }
        let joined = writes.len();
        metrics::gauge!(crate::metrics::OPEN_INCIDENTS).set(inner.incidents.open_count() as f64);
        tracing::info!(alerts = joined, "open alerts that were in no incident joined one");
        Ok(joined)
    }

    /// [`Self::group_open_alerts`] for an engine that evaluates from its
    /// start (its restored alerts); nothing on one that does not.
    pub async fn group_restored(&self, now: std::time::SystemTime) -> Result<usize, super::EngineError> {
        if !self.evaluates() {
            return Ok(0);
        }
        let mut inner = self.inner.lock().await;
        self.group_open_alerts(&mut inner, now).await
    }
}
