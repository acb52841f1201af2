//! What people do to incidents through the engine: acknowledge one (and
//! with it each of its open alerts, in their name) or comment on one.

use std::time::SystemTime;

use crate::engine::{Engine, EngineError};
use crate::lifecycle::{Change, LifecycleError};

use super::{Entry, EntryKind, Incident, IncidentState, Write, check_comment};

impl Engine {
    /// Reloads the open incidents and their open members from the store
    /// (after an adoption); how many are open.
    pub(crate) async fn restore_incidents(&self, inner: &mut crate::engine::Inner) -> Result<usize, EngineError> {
        let open = self.store.open_incidents().await?;
        let members = self.store.open_members().await?;
        inner.incidents.restore(open, members);
        Ok(inner.incidents.open_count())
    }

    /// A person acknowledges incident `id`: each of its open alerts not
    /// acknowledged yet is acknowledged in their name (each transition
    /// audited with `actor`), and the incident with them, in one
    /// transaction; nothing changes when it cannot be stored.
    pub async fn acknowledge_incident(
        &self,
        id: &str,
        actor: &str,
        comment: &str,
        now: SystemTime,
    ) -> Result<Incident, EngineError> {
        self.must_evaluate()?;
        let mut guard = self.lock_for_person().await?;
        let inner = &mut *guard;
        let Some(before) = inner.incidents.get(id).cloned() else {
            return Err(match self.store.incident(id).await? {
                Some(i) if i.state == IncidentState::Resolved => EngineError::IncidentResolved(id.to_owned()),
                _ => EngineError::NoIncident(id.to_owned()),
            });
        };
        if before.state == IncidentState::Acknowledged {
            return Err(EngineError::IncidentAcknowledged {
                id: id.to_owned(),
                by: before.acknowledged_by,
            });
        }
        // What waits to be stored goes first.
        self.commit_pending(inner, now).await?;
        let note = if comment.is_empty() {
            format!("acknowledged with incident {id}")
        } else {
            format!("acknowledged with incident {id}: {comment}")
        };
        let mut changes: Vec<Change> = Vec::new();
        let mut snapshots = Vec::new();
        for alert in inner.incidents.open_members(id) {
            let snap = inner.life.snapshot(&alert);
            match inner.life.acknowledge(&alert, actor, &note, now) {
                Ok(c) => {
                    snapshots.extend(snap);
                    changes.push(c);
                }
                // Acknowledged already, or resolved meanwhile: nothing to do.
                Err(LifecycleError::AlreadyAcknowledged { .. } | LifecycleError::NotOpen(_)) => {}
            }
        }
        let Some(mut write) = inner.incidents.acknowledge(id, actor, comment, now) else {
            return Err(EngineError::NoIncident(id.to_owned()));
        };
        if !changes.is_empty() {
            write.entries[0].text = if comment.is_empty() {
                format!("{} open alerts acknowledged with it", changes.len())
            } else {
                format!("{comment} ({} open alerts acknowledged with it)", changes.len())
            };
        }
        if let Err(e) = self.store.record_all(&changes, std::slice::from_ref(&write)).await {
            for s in snapshots {
                inner.life.undo(s);
            }
            inner.incidents.put_back(before);
            tracing::warn!(incident = %id, error = %e, "cannot store an incident's acknowledgement; not applied");
            return Err(e.into());
        }
        for c in &changes {
            self.publish(c).await;
        }
        self.publish_incident(&write).await;
        tracing::info!(incident = %id, actor, alerts = changes.len(), "incident acknowledged");
        Ok(write.incident)
    }

    /// A person comments on incident `id` (open or resolved): 1 to
    /// [`super::MAX_COMMENT`] characters.
    pub async fn comment_incident(
        &self,
        id: &str,
        actor: &str,
        text: &str,
        now: SystemTime,
    ) -> Result<Incident, EngineError> {
        check_comment(text).map_err(EngineError::BadComment)?;
        self.must_evaluate()?;
        let mut guard = self.lock_for_person().await?;
        let inner = &mut *guard;
        let mut incident = match inner.incidents.get(id) {
            Some(i) => i.clone(),
            None => self
                .store
                .incident(id)
                .await?
                .ok_or_else(|| EngineError::NoIncident(id.to_owned()))?,
        };
        incident.updated_at = now;
        let write = Write {
            incident,
            member: None,
            entries: vec![Entry {
                kind: EntryKind::Commented,
                at: now,
                actor: actor.to_owned(),
                alert_id: String::new(),
                text: text.to_owned(),
            }],
        };
        self.store.write_incidents(std::slice::from_ref(&write)).await?;
        if write.incident.state != IncidentState::Resolved {
            inner.incidents.put_back(write.incident.clone());
        }
        self.publish_incident(&write).await;
        tracing::info!(incident = %id, actor, "incident commented");
        Ok(write.incident)
    }
}
