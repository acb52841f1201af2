//! Alerts raised by hand (`CreateAlert`): stored, grouped into incidents and
//! published like a rule's firing, or not applied at all.

use pantau_config::ManualAlert;

use super::{Alert, Engine, EngineError, SystemTime};
use crate::lifecycle::Raised;

impl Engine {
    /// A person raises an alert: a new one (`true`) fires, silences and
    /// maintenance windows applying as to a rule's; while one with the same
    /// fingerprint is open it is answered (`false`) and nothing changes. An
    /// alert that cannot be stored is taken back (nothing is published later).
    pub async fn raise(&self, m: &ManualAlert, actor: &str, now: SystemTime) -> Result<(Alert, bool), EngineError> {
        self.must_evaluate()?;
        let mut inner = self.lock_for_person().await?;
        let mut c = match inner.life.raise(m, actor, now) {
            Raised::Open(a) => return Ok((a, false)),
            Raised::New(c) => c,
        };
        let why = inner.suppression(&c.alert, now);
        c.alert.notified = why.is_empty();
        c.alert.suppressed_by = why;
        inner
            .life
            .set_delivery(&c.alert.id, &c.alert.suppressed_by, c.alert.notified);
        let incidents = inner.incidents.clone();
        let id = c.alert.id.clone();
        let alert = c.alert.clone();
        if let Err(e) = self.commit_or_undo(&mut inner, c, None, now).await {
            inner.life.forget(&id);
            inner.incidents = incidents;
            return Err(e);
        }
        tracing::info!(alert = %id, actor, severity = m.severity.as_str(), source = %m.source, "alert raised by hand");
        Ok((alert, true))
    }
}
