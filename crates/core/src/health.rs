//! Liveness and readiness, the admin router, and the JSON error body.
//!
//! Each service registers a [`ReadinessCheck`] per dependency (bus, store, …)
//! in the shared [`Health`]. `/readyz` runs them all with a deadline and
//! answers 503 with a JSON body naming each failing component.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

/// One dependency whose reachability decides readiness.
#[async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// `Err` says what is wrong, for the operator.
    async fn check(&self) -> Result<(), String>;

    /// Extra state worth showing even when ready (a health level, a count).
    async fn detail(&self) -> Option<String> {
        None
    }

    /// How well the component works while it is ready: a collector whose
    /// checks mostly fail is ready but `critical`.
    async fn level(&self) -> Level {
        Level::Ok
    }

    /// Whether the process cannot work at all while this component fails
    /// (the bus, a store): the gateway's `/health` is then `unhealthy` (503);
    /// any other failing component makes it `degraded` (200), naming why.
    fn essential(&self) -> bool {
        false
    }
}

/// How well a ready component works; the gateway's `/health` is `degraded`
/// when any component is not [`Level::Ok`].
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    Ok,
    Degraded,
    Critical,
}

/// The shared registry of readiness checks; cheap to clone.
#[derive(Clone, Default)]
pub struct Health {
    checks: Arc<RwLock<Vec<(String, Arc<dyn ReadinessCheck>)>>>,
}

/// The state of one component.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ComponentStatus {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `ok`, `degraded` or `critical`: how well it works while ready.
    pub level: Level,
    /// Whether its failure leaves the process unable to work (see
    /// [`ReadinessCheck::essential`]).
    #[serde(skip)]
    pub essential: bool,
}

/// The answer of `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    pub components: BTreeMap<String, ComponentStatus>,
}

impl Report {
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

const CHECK_DEADLINE: Duration = Duration::from_secs(2);

impl Health {
    /// Adds a check under `name` (`bus`, `store.collector`, …).
    pub fn register(&self, name: impl Into<String>, check: Arc<dyn ReadinessCheck>) {
        self.checks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((name.into(), check));
    }

    /// Runs every check concurrently, each within two seconds.
    pub async fn report(&self) -> Report {
        let checks = self
            .checks
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let results = futures::future::join_all(checks.iter().map(|(name, c)| async move {
            let detail = tokio::time::timeout(CHECK_DEADLINE, c.detail()).await.ok().flatten();
            let level = tokio::time::timeout(CHECK_DEADLINE, c.level())
                .await
                .unwrap_or(Level::Ok);
            let (status, error) = match tokio::time::timeout(CHECK_DEADLINE, c.check()).await {
                Ok(Ok(())) => ("ok", None),
                Ok(Err(e)) => ("failing", Some(e)),
                Err(_) => (
                    "failing",
                    Some(format!("no answer within {}s", CHECK_DEADLINE.as_secs())),
                ),
            };
            let outcome = ComponentStatus {
                status,
                error,
                detail,
                level,
                essential: c.essential(),
            };
            (name.clone(), outcome)
        }))
        .await;
        let ready = results.iter().all(|(_, s)| s.error.is_none());
        Report {
            status: if ready { "ready" } else { "unavailable" },
            components: results.into_iter().collect(),
        }
    }
}

/// `/healthz` (alive), `/readyz` (dependencies) and `/metrics` (Prometheus).
pub fn admin_router(health: Health) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "alive"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn readyz(axum::extract::State(health): axum::extract::State<Health>) -> Response {
    let report = health.report().await;
    let code = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report)).into_response()
}

async fn metrics() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::render_metrics(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Result<(), String>);

    #[async_trait]
    impl ReadinessCheck for Fixed {
        async fn check(&self) -> Result<(), String> {
            self.0.clone()
        }
    }

    #[tokio::test]
    async fn failing_component_is_named() {
        let h = Health::default();
        h.register("bus", Arc::new(Fixed(Ok(()))));
        assert!(h.report().await.is_ready());
        h.register("store", Arc::new(Fixed(Err("connection refused".into()))));
        let r = h.report().await;
        assert!(!r.is_ready());
        assert_eq!(r.components["store"].error.as_deref(), Some("connection refused"));
        assert_eq!(r.components["bus"].status, "ok");
    }
}
