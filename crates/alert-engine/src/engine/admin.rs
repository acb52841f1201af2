//! What people change through the API besides alerts: silences and rules.

use super::{
    AlertRuleConfig, Change, Engine, EngineError, Inner, Origin, Rule, RuleError, Silence, SilenceMatcher, SystemTime,
};

impl Engine {
    /// Silences alerts matching `matchers` from `starts_at` to `ends_at`.
    pub async fn create_silence(
        &self,
        matchers: Vec<SilenceMatcher>,
        starts_at: SystemTime,
        ends_at: SystemTime,
        created_by: &str,
        comment: &str,
        now: SystemTime,
    ) -> Result<Silence, EngineError> {
        let s = Silence::new(matchers, starts_at, ends_at, created_by, comment, now)?;
        self.add_silence(s).await
    }

    /// Stores and applies a silence built by the caller (e.g. a recurring
    /// one): the engine first (so a stored silence is applied at once, never
    /// after its answer), then the store.
    pub async fn add_silence(&self, s: Silence) -> Result<Silence, EngineError> {
        self.must_evaluate()?;
        let mut inner = self.lock_for_person().await?;
        self.store.put_silence(&s).await?;
        inner.silences.push(s.clone());
        drop(inner);
        tracing::info!(silence = %s.id, by = %s.created_by, "silence created");
        Ok(s)
    }

    /// Silences not ended (or all stored ones).
    pub async fn silences(&self, include_expired: bool, now: SystemTime) -> Result<Vec<Silence>, EngineError> {
        let since = if include_expired { SystemTime::UNIX_EPOCH } else { now };
        Ok(self.store.silences(since).await?)
    }

    /// Ends a silence now; alerts it held back are published.
    pub async fn expire_silence(&self, id: &str, now: SystemTime) -> Result<Silence, EngineError> {
        self.must_evaluate()?;
        let mut inner = self.lock_for_person().await?;
        let mut s = match inner.silences.iter().find(|s| s.id == id) {
            Some(s) => s.clone(),
            None => self
                .store
                .silences(SystemTime::UNIX_EPOCH)
                .await?
                .into_iter()
                .find(|s| s.id == id)
                .ok_or_else(|| EngineError::NoSilence(id.to_owned()))?,
        };
        if !s.is_over(now) {
            s.expire(now);
            self.store.put_silence(&s).await?;
        }
        inner.silences.retain(|x| x.id != id);
        if let Err(e) = self.release(&mut inner, now).await {
            // The silence is ended and stored; the sweep releases its alerts.
            tracing::warn!(error = %e, "cannot record alerts whose silence ended; the sweep retries");
        }
        Ok(s)
    }

    /// Every effective rule.
    pub async fn rules(&self) -> Vec<Rule> {
        self.inner.lock().await.effective().cloned().collect()
    }

    /// Creates or replaces an API rule (persisted), then evaluates it.
    pub async fn upsert_rule(&self, config: AlertRuleConfig, now: SystemTime) -> Result<Rule, EngineError> {
        self.must_evaluate()?;
        let rule = Rule::new(config, self.cfg.default_cooldown, Origin::Api)?;
        let mut inner = self.lock_for_person().await?;
        if let Some(parent) = rule.config.depends_on.iter().find(|p| inner.rule(p).is_none()) {
            return Err(RuleError::UnknownParent {
                rule: rule.id().to_owned(),
                parent: parent.clone(),
            }
            .into());
        }
        self.store.put_rule(&rule.config, now).await?;
        let id = rule.id().to_owned();
        let mut changes = Vec::new();
        let replaced_expr = inner.rule(&id).is_some_and(|old| old.config.expr != rule.config.expr);
        if !rule.config.enabled || replaced_expr {
            changes.extend(inner.life.drop_rule(&id, now, "api"));
        }
        inner.api.insert(id.clone(), rule.clone());
        inner.reindex();
        changes.extend(inner.evaluate(&[id], now, self.cfg.staleness));
        self.commit_after(&mut inner, changes, now).await;
        Ok(rule)
    }

    /// Deletes an API rule; its open alerts resolve (a configured rule of
    /// the same id takes over again).
    pub async fn delete_rule(&self, id: &str, now: SystemTime) -> Result<(), EngineError> {
        self.must_evaluate()?;
        let mut inner = self.lock_for_person().await?;
        if !inner.api.contains_key(id) {
            return Err(match inner.base.get(id) {
                Some(r) => EngineError::ConfigRule(id.to_owned(), r.origin.as_str()),
                None => EngineError::NoRule(id.to_owned()),
            });
        }
        self.store.delete_rule(id).await?;
        inner.api.remove(id);
        let changes = inner.life.drop_rule(id, now, "api");
        inner.reindex();
        self.commit_after(&mut inner, changes, now).await;
        Ok(())
    }

    /// Commits the transitions a stored change caused (a rule's alerts
    /// firing or resolving). The change itself is stored and applied, so the
    /// request succeeded: transitions that cannot be stored yet wait with
    /// the engine's own and are retried with the next evaluation, and the
    /// answer does not say the change failed (it said 503 before, although
    /// the rule was saved).
    async fn commit_after(&self, inner: &mut Inner, changes: Vec<Change>, now: SystemTime) {
        if let Err(e) = self.commit(inner, changes, now).await {
            tracing::warn!(error = %e, "the change is stored; its alert transitions are retried with the next evaluation");
        }
    }
}
