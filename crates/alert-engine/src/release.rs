//! Notifying alerts whose silence, maintenance window or parent ended
//! while they are still open: their firing is published then.

use std::time::SystemTime;

use crate::engine::{Engine, EngineError, Inner};
use crate::lifecycle::{Alert, Change, Transition};

impl Engine {
    /// Publishes the firing of open alerts whose silence, maintenance window
    /// or parent has ended.
    pub(crate) async fn release(&self, inner: &mut Inner, now: SystemTime) -> Result<(), EngineError> {
        let waiting: Vec<Alert> = inner.life.open().filter(|a| !a.notified).cloned().collect();
        for a in waiting {
            let why = inner.suppression(&a, now);
            if why == a.suppressed_by && !why.is_empty() {
                continue;
            }
            let notify = why.is_empty();
            let Some(updated) = inner.life.set_delivery(&a.id, &why, notify) else {
                continue;
            };
            self.store.set_delivery(&updated).await?;
            if notify {
                if let Some(w) = inner.incidents.released(&updated, now) {
                    // The notification goes out whatever; the timeline entry
                    // is a record of it, kept if it can be.
                    if let Err(e) = self.store.write_incidents(std::slice::from_ref(&w)).await {
                        tracing::warn!(alert = %a.id, error = %e, "cannot record a released alert's notification on its incident");
                    } else {
                        self.publish_incident(&w).await;
                    }
                }
                let state = updated.state;
                self.publish(&Change {
                    alert: updated,
                    transition: Transition {
                        alert_id: a.id.clone(),
                        state,
                        at: now,
                        actor: String::new(),
                        comment: "notified after its silence, maintenance window or parent alert ended".into(),
                    },
                })
                .await;
            }
        }
        Ok(())
    }
}
