//! Maintenance windows through the API. The alert engine owns them: it
//! already stores silences and mutes what a window covers, and its API
//! changes are audited and refused on an instance that does not evaluate.
//!
//! - The configured windows (`maintenance[]`) are listed with source
//!   `config` and are read-only; API windows are stored in
//!   `maintenance_windows` (JSON of [`MaintenanceWindow`], checked again when
//!   loaded) and may not take a configured window's id.
//! - The engine mutes alerts by the configured and API windows alike
//!   ([`Windows::effective`]); a window deleted or changed releases the
//!   alerts it held back, as an ended silence does.
//! - The collector learns API windows over the bus: every change publishes
//!   the whole set ([`pb::MaintenanceSnapshot`], bounded by
//!   [`MAX_API_WINDOWS`]) on `pantau.maintenance.<changed|deleted>.<id>`, and
//!   [`run`] publishes it on `pantau.maintenance.snapshot.<instance>` at
//!   start, every [`SNAPSHOT_EVERY`] and whenever a collector asks on
//!   `pantau.maintenance.wanted.<instance>` (it does at each subscription).
//!   A snapshot carries a strictly increasing revision (the time it was
//!   built, in ms, under the engine's lock); a consumer keeps the highest. So a collector started before, after or long after the
//!   alert engine (beyond the stream's retention) has every window.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use pantau_config::maintenance_api::{self, MAX_API_WINDOWS};
use pantau_config::{Invalid, MaintenanceWindow};
use pantau_core::bus::{Bus, Subscription, publish_proto, subject};
use pantau_core::store::StoreError;
use pantau_core::time::to_timestamp;
use pantau_core::with_pool;
use pantau_proto::v1 as pb;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, EngineError};
use crate::store::{AlertStore, ms, time};

/// How often the evaluating engine publishes the whole set of API windows.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(30);

/// Why a window change is refused.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("{0}")]
    Invalid(Invalid),
    #[error(
        "maintenance window `{0}` comes from the configuration (`maintenance[]`): it is read-only through the API; change it in the file, or give the API window another id"
    )]
    Configured(String),
    #[error("a maintenance window with id `{0}` exists already; replace it with PUT /api/v1/maintenance/{0}")]
    Exists(String),
    #[error("no maintenance window with id `{0}`")]
    NotFound(String),
    #[error("too many maintenance windows: the API keeps at most {MAX_API_WINDOWS}; delete one first")]
    TooMany,
}

/// Where a listed window comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Config,
    Api,
}

/// A window made through the API, with who made it and when.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiWindow {
    pub window: MaintenanceWindow,
    pub created_by: String,
    pub created_at: SystemTime,
    pub updated_by: String,
    pub updated_at: SystemTime,
}

/// A listed window.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub window: MaintenanceWindow,
    pub source: Source,
    pub created_by: String,
    pub updated_at: Option<SystemTime>,
}

impl Listed {
    /// Its protobuf, with whether it holds at `now`.
    pub fn to_proto(&self, now: SystemTime) -> pb::MaintenanceWindow {
        let mut p = maintenance_api::to_proto(&self.window);
        p.source = match self.source {
            Source::Config => pb::MaintenanceSource::Config,
            Source::Api => pb::MaintenanceSource::Api,
        } as i32;
        p.created_by.clone_from(&self.created_by);
        p.updated_at = self.updated_at.map(to_timestamp);
        p.active = self.window.is_active(now);
        p
    }
}

/// The configured and the API windows, and the revision of the API set.
#[derive(Debug, Default)]
pub(crate) struct Windows {
    config: Vec<MaintenanceWindow>,
    api: BTreeMap<String, ApiWindow>,
    revision: i64,
}

impl Windows {
    pub(crate) fn new(api: Vec<ApiWindow>) -> Self {
        Self {
            config: Vec::new(),
            api: api.into_iter().map(|w| (w.window.id.clone(), w)).collect(),
            revision: ms(SystemTime::now()),
        }
    }

    pub(crate) fn set_config(&mut self, config: Vec<MaintenanceWindow>) {
        for w in &config {
            if self.api.contains_key(&w.id) {
                tracing::warn!(window = %w.id, "an API maintenance window has a configured window's id: the configured one applies");
            }
        }
        self.config = config;
    }

    /// What mutes alerts: every configured window, then every API window
    /// whose id no configured window has.
    pub(crate) fn effective(&self) -> Vec<MaintenanceWindow> {
        let mut out = self.config.clone();
        out.extend(
            self.api
                .values()
                .filter(|a| !self.is_configured(&a.window.id))
                .map(|a| a.window.clone()),
        );
        out
    }

    fn is_configured(&self, id: &str) -> bool {
        self.config.iter().any(|w| w.id == id)
    }

    fn listed(&self) -> Vec<Listed> {
        let mut out: Vec<Listed> = self
            .config
            .iter()
            .map(|w| Listed {
                window: w.clone(),
                source: Source::Config,
                created_by: "config".to_owned(),
                updated_at: None,
            })
            .collect();
        out.extend(
            self.api
                .values()
                .filter(|a| !self.is_configured(&a.window.id))
                .map(|a| Listed {
                    window: a.window.clone(),
                    source: Source::Api,
                    created_by: a.created_by.clone(),
                    updated_at: Some(a.updated_at),
                }),
        );
        out
    }

    fn bump(&mut self) {
        self.revision = (self.revision + 1).max(ms(SystemTime::now()));
    }

    /// The API windows as published, stamped with a new revision: the
    /// latest built (under the engine's lock) is the latest state, also
    /// across a failover to another engine.
    fn snapshot(&mut self, instance: &str) -> pb::MaintenanceSnapshot {
        self.bump();
        let now = SystemTime::now();
        pb::MaintenanceSnapshot {
            windows: self
                .listed()
                .into_iter()
                .filter(|l| l.source == Source::Api)
                .map(|l| l.to_proto(now))
                .collect(),
            revision: self.revision,
            instance: instance.to_owned(),
        }
    }
}

impl AlertStore {
    /// Every stored API window; one that no longer parses is skipped, logged.
    pub async fn maintenance_windows(&self) -> Result<Vec<ApiWindow>, StoreError> {
        let rows = with_pool!(self.inner(), pool => {
            let mut out = Vec::new();
            for r in sqlx::query(
                "SELECT id, body, created_by, created_ms, updated_by, updated_ms FROM maintenance_windows ORDER BY id",
            )
            .fetch_all(pool)
            .await?
            {
                let id: String = r.try_get("id")?;
                let body: String = r.try_get("body")?;
                match maintenance_api::from_json(body.as_bytes()) {
                    Ok(window) => out.push(ApiWindow {
                        window,
                        created_by: r.try_get("created_by")?,
                        created_at: time(r.try_get("created_ms")?),
                        updated_by: r.try_get("updated_by")?,
                        updated_at: time(r.try_get("updated_ms")?),
                    }),
                    Err(e) => tracing::warn!(window = %id, error = %e, "skipping a stored maintenance window that no longer parses"),
                }
            }
            out
        });
        Ok(rows)
    }

    /// Stores a new or replaced API window.
    pub async fn put_maintenance_window(&self, w: &ApiWindow) -> Result<(), StoreError> {
        let body = serde_json::to_string(&w.window).unwrap_or_default();
        with_pool!(self.inner(), pool => {
            sqlx::query(
                "INSERT INTO maintenance_windows (id, body, created_by, created_ms, updated_by, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_by = excluded.updated_by, updated_ms = excluded.updated_ms",
            )
            .bind(&w.window.id)
            .bind(&body)
            .bind(&w.created_by)
            .bind(ms(w.created_at))
            .bind(&w.updated_by)
            .bind(ms(w.updated_at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Deletes an API window; whether it was there.
    pub async fn delete_maintenance_window(&self, id: &str) -> Result<bool, StoreError> {
        let n = with_pool!(self.inner(), pool => sqlx::query("DELETE FROM maintenance_windows WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n > 0)
    }
}

impl Engine {
    /// Every window: the configured ones first, then the API's by id.
    pub async fn maintenance_windows(&self) -> Vec<Listed> {
        self.inner.lock().await.windows.listed()
    }

    /// One window by id.
    pub async fn maintenance_window(&self, id: &str) -> Result<Listed, EngineError> {
        self.maintenance_windows()
            .await
            .into_iter()
            .find(|l| l.window.id == id)
            .ok_or_else(|| WindowError::NotFound(id.to_owned()).into())
    }

    /// Creates (`create_only`) or replaces an API window checked by the
    /// YAML parser; stored, applied, then published for the collector.
    pub async fn put_maintenance_window(
        &self,
        window: MaintenanceWindow,
        create_only: bool,
        actor: &str,
        now: SystemTime,
    ) -> Result<Listed, EngineError> {
        if let Some(i) = maintenance_api::refusal(&window) {
            return Err(WindowError::Invalid(i).into());
        }
        self.must_evaluate()?;
        let mut inner = self.lock_for_person().await?;
        let id = window.id.clone();
        if inner.windows.is_configured(&id) {
            return Err(WindowError::Configured(id).into());
        }
        let old = inner.windows.api.get(&id).cloned();
        if old.is_some() && create_only {
            return Err(WindowError::Exists(id).into());
        }
        if old.is_none() && inner.windows.api.len() >= MAX_API_WINDOWS {
            return Err(WindowError::TooMany.into());
        }
        let actor = if actor.trim().is_empty() { "anonymous" } else { actor };
        let stored = ApiWindow {
            window,
            created_by: old.as_ref().map_or_else(|| actor.to_owned(), |o| o.created_by.clone()),
            created_at: old.as_ref().map_or(now, |o| o.created_at),
            updated_by: actor.to_owned(),
            updated_at: now,
        };
        self.store.put_maintenance_window(&stored).await?;
        inner.windows.api.insert(id.clone(), stored);
        inner.apply_windows();
        if let Err(e) = self.release(&mut inner, now).await {
            tracing::warn!(error = %e, "cannot record alerts a changed maintenance window no longer covers; the sweep retries");
        }
        let snapshot = inner.windows.snapshot(&self.instance);
        let listed = inner.windows.listed().into_iter().find(|l| l.window.id == id);
        drop(inner);
        let kind = if old.is_some() { "replaced" } else { "created" };
        tracing::info!(window = %id, by = %actor, kind, "maintenance window stored");
        self.publish_windows(&subject::maintenance("changed", &id), &snapshot)
            .await;
        listed.ok_or_else(|| WindowError::NotFound(id).into())
    }

    /// Deletes an API window; alerts it muted and still open page now.
    pub async fn delete_maintenance_window(
        &self,
        id: &str,
        actor: &str,
        now: SystemTime,
    ) -> Result<Listed, EngineError> {
        self.must_evaluate()?;
        let mut inner = self.lock_for_person().await?;
        if inner.windows.is_configured(id) {
            return Err(WindowError::Configured(id.to_owned()).into());
        }
        let Some(old) = inner.windows.api.get(id).cloned() else {
            return Err(WindowError::NotFound(id.to_owned()).into());
        };
        self.store.delete_maintenance_window(id).await?;
        inner.windows.api.remove(id);
        inner.apply_windows();
        if let Err(e) = self.release(&mut inner, now).await {
            tracing::warn!(error = %e, "cannot record alerts whose maintenance window was deleted; the sweep retries");
        }
        let snapshot = inner.windows.snapshot(&self.instance);
        drop(inner);
        tracing::info!(window = %id, by = %actor, "maintenance window deleted");
        self.publish_windows(&subject::maintenance("deleted", id), &snapshot)
            .await;
        Ok(Listed {
            window: old.window,
            source: Source::Api,
            created_by: old.created_by,
            updated_at: Some(now),
        })
    }

    /// The API windows as the collector learns them.
    pub async fn maintenance_snapshot(&self) -> pb::MaintenanceSnapshot {
        self.inner.lock().await.windows.snapshot(&self.instance)
    }

    async fn publish_windows(&self, subject: &str, snapshot: &pb::MaintenanceSnapshot) {
        if let Err(e) = publish_proto(self.bus().as_ref(), subject, snapshot).await {
            metrics::counter!(crate::metrics::PUBLISH_ERRORS_TOTAL).increment(1);
            tracing::warn!(error = %e, "cannot publish the maintenance windows; the next snapshot carries them");
        }
    }
}

/// Publishes the API windows at start, every [`SNAPSHOT_EVERY`], and when a
/// collector asks, while this engine evaluates (a copy's set is not the
/// cluster's). Ends with an error when the request subscription ends, for
/// its supervisor to start it again.
pub async fn run(engine: Arc<Engine>, bus: Arc<dyn Bus>, shutdown: CancellationToken) -> Result<(), String> {
    let mut wanted = bus
        .subscribe(Subscription::live(subject::MAINTENANCE_WANTED))
        .await
        .map_err(|e| format!("cannot subscribe to {}: {e}", subject::MAINTENANCE_WANTED))?;
    let mut every = tokio::time::interval(SNAPSHOT_EVERY);
    let own = subject::maintenance("snapshot", &subject::instance_token(&engine.instance));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = every.tick() => {}
            m = wanted.next() => {
                if m.is_none() {
                    return Err("the subscription to maintenance requests ended".to_owned());
                }
            }
        }
        if engine.evaluates() {
            let snapshot = engine.maintenance_snapshot().await;
            engine.publish_windows(&own, &snapshot).await;
        }
    }
}
