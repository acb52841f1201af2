//! The schedule's changes through the APIs: pausing and resuming a target,
//! adding, replacing and deleting one (refusing dependency cycles and a push
//! token already taken), and the pushes of push monitors.

use std::sync::Arc;
use std::time::Duration;

use pantau_proto::v1::{CheckResult, TargetSource};

use super::{ChangeError, Collector, Command, Entry, added_delay};
use crate::checks::push;
use crate::pause::{self, Pause};
use crate::target::Target;
use crate::targets;

impl Collector {
    /// Stops `id`'s scheduled checks until [`Self::resume`]; `by` is the
    /// caller's audit name.
    pub async fn pause(&self, id: &str, by: &str, reason: &str) -> Result<(Arc<Entry>, Pause), ChangeError> {
        let reason = pause::reason(reason)?;
        let entry = self.entry(id).ok_or_else(|| ChangeError::NotFound(id.to_owned()))?;
        let p = self.pauses.pause(id, by, reason).await?;
        self.set_target_gauge();
        tracing::info!(target_id = %id, by = %p.by, reason = %p.reason, "target paused");
        Ok((entry, p))
    }

    /// Schedules a paused `id` again, its next check at once.
    pub async fn resume(&self, id: &str) -> Result<Arc<Entry>, ChangeError> {
        let entry = self.entry(id).ok_or_else(|| ChangeError::NotFound(id.to_owned()))?;
        if self.pauses.resume(id).await? {
            let _ = self.commands.send(Command::Schedule(id.to_owned(), Duration::ZERO));
            self.set_target_gauge();
            tracing::info!(target_id = %id, "target resumed");
        }
        Ok(entry)
    }

    /// Validates, persists and schedules `t` (added or replaced).
    pub async fn upsert(&self, t: pantau_config::TargetConfig) -> Result<Arc<Entry>, ChangeError> {
        if let Some(e) = self.entry(&t.id)
            && e.target.source == TargetSource::Config
        {
            return Err(ChangeError::FromConfig(t.id));
        }
        let t = Arc::new(t);
        let target =
            Target::compile(&t, "target", &self.config.collector, TargetSource::Api).map_err(ChangeError::Invalid)?;
        self.refuse_cycles(&t)?;
        if let Some(token) = target.config.push_token()
            && self
                .entries()
                .iter()
                .any(|e| e.target.id() != target.id() && e.target.config.push_token() == Some(token))
        {
            return Err(ChangeError::TokenTaken);
        }
        targets::save(&self.store, &t).await?;
        let entry = Entry::new(target, &self.breaker_cfg);
        if !self.config.collector.shard.owns(&t.id) {
            tracing::info!(target_id = %t.id, "target saved; another shard checks it");
            return Ok(entry);
        }
        let replaced = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(Arc::from(t.id.as_str()), Arc::clone(&entry));
        // The replaced target's state carries over to its next result.
        if let Some(old) = replaced {
            old.retire();
            self.states.park(&t.id, &old.state);
        }
        let _ = self
            .commands
            .send(Command::Schedule(t.id.clone(), added_delay(&entry.target)));
        self.set_target_gauge();
        tracing::info!(target_id = %t.id, kind = entry.target.kind_label(), "target saved");
        Ok(entry)
    }

    /// Refuses `t` when its `target:` dependencies close a cycle with the
    /// other targets (the set without it has none: each change is checked).
    fn refuse_cycles(&self, t: &pantau_config::TargetConfig) -> Result<(), ChangeError> {
        if t.depends_on().is_empty() {
            return Ok(());
        }
        let entries = self.entries();
        let others = entries
            .iter()
            .filter(|e| e.target.id() != t.id)
            .map(|e| (e.target.id(), e.target.config.depends_on()));
        let found = pantau_config::cycles(others.chain([(t.id.as_str(), t.depends_on())]), |_| {
            "target.depends_on".to_owned()
        });
        if found.is_empty() {
            Ok(())
        } else {
            Err(ChangeError::Invalid(found))
        }
    }

    /// Removes a target added through the API.
    pub async fn delete(&self, id: &str) -> Result<(), ChangeError> {
        match self.entry(id) {
            None if self.config.collector.shard.owns(id) => return Err(ChangeError::NotFound(id.to_owned())),
            // Another shard's target: the store decides (its owner drops it at its next reload).
            None => {
                return if targets::delete(&self.store, id).await? {
                    Ok(())
                } else {
                    Err(ChangeError::NotFound(id.to_owned()))
                };
            }
            Some(e) if e.target.source == TargetSource::Config => return Err(ChangeError::FromConfig(id.to_owned())),
            Some(_) => {}
        }
        targets::delete(&self.store, id).await?;
        self.pauses.resume(id).await?;
        let removed = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
        if let Some(e) = removed {
            e.retire();
            self.states.park(id, &e.state);
        }
        let _ = self.commands.send(Command::Unschedule(id.to_owned()));
        self.checker.push.forget(id);
        self.set_target_gauge();
        tracing::info!(target_id = %id, "target deleted");
        Ok(())
    }

    /// Records a push for the push target with `token`, and publishes its
    /// state at once; `None` when no push target has the token.
    pub async fn push(&self, token: &str, p: push::Push) -> Option<CheckResult> {
        let entry = self.entries().into_iter().find(|e| {
            e.target
                .config
                .push_token()
                .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
        })?;
        self.checker.push.record(entry.target.id(), p);
        Some(self.execute(&entry, true).await.0)
    }
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
