//! Pushing alerts to a Prometheus Alertmanager (API v2, `POST /api/v2/alerts`),
//! so teams that route with Alertmanager keep doing so.
//!
//! Firing and acknowledged alerts are sent without `endsAt`; resolved ones
//! with it. Sends happen off the evaluation path, batched, retried three
//! times with backoff; the sweep re-sends every open alert, which both keeps
//! Alertmanager from timing them out (`resolve_timeout`) and repairs a push
//! that was lost.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::lifecycle::{Alert, State};
use crate::metrics as m;

/// Alerts waiting to be sent; beyond it new ones are dropped (the next sweep re-sends).
const QUEUE: usize = 4096;
/// Most alerts per request.
const BATCH: usize = 500;
const ATTEMPTS: u32 = 3;

/// One alert in Alertmanager's v2 schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

impl AmAlert {
    /// `alertname` is the rule id; the alert's labels and severity follow.
    pub fn from_alert(a: &Alert) -> Self {
        let mut labels = a.labels.clone();
        labels.insert("alertname".into(), a.rule_id.clone());
        labels.insert("severity".into(), a.severity.clone());
        let mut annotations = BTreeMap::new();
        annotations.insert("summary".into(), a.summary.clone());
        annotations.insert("value".into(), a.value.clone());
        annotations.insert("pantau_alert_id".into(), a.id.clone());
        if !a.acknowledged_by.is_empty() {
            annotations.insert("acknowledged_by".into(), a.acknowledged_by.clone());
        }
        Self {
            labels,
            annotations,
            starts_at: pantau_core::time::rfc3339(a.started_at),
            ends_at: match a.state {
                State::Resolved => a.resolved_at.map(pantau_core::time::rfc3339),
                State::Firing | State::Acknowledged => None,
            },
            generator_url: String::new(),
        }
    }
}

/// Queues alerts for the sender task.
#[derive(Debug, Clone)]
pub struct Pusher {
    tx: mpsc::Sender<AmAlert>,
}

impl Pusher {
    /// Starts the sender task for `base_url` (e.g. `http://127.0.0.1:9093`), until `shutdown`.
    pub fn start(base_url: &str, tasks: &tokio_util::task::TaskTracker, shutdown: CancellationToken) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        for result in ["ok", "failed", "dropped"] {
            metrics::counter!(m::ALERTMANAGER_PUSHES_TOTAL, "result" => result).increment(0);
        }
        let url = format!("{}/api/v2/alerts", base_url.trim_end_matches('/'));
        let (tx, rx) = mpsc::channel(QUEUE);
        tasks.spawn(send_loop(http, url, rx, shutdown));
        Self { tx }
    }

    /// Queues one alert; never waits.
    pub fn push(&self, a: &Alert) {
        if self.tx.try_send(AmAlert::from_alert(a)).is_err() {
            metrics::counter!(m::ALERTMANAGER_PUSHES_TOTAL, "result" => "dropped").increment(1);
        }
    }
}

async fn send_loop(http: reqwest::Client, url: String, mut rx: mpsc::Receiver<AmAlert>, shutdown: CancellationToken) {
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => break,
            a = rx.recv() => match a { Some(a) => a, None => break },
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        let mut backoff = Duration::from_millis(500);
        for attempt in 1..=ATTEMPTS {
            match http.post(&url).json(&batch).send().await {
                Ok(r) if r.status().is_success() => {
                    metrics::counter!(m::ALERTMANAGER_PUSHES_TOTAL, "result" => "ok").increment(batch.len() as u64);
                    break;
                }
                outcome => {
                    let why = match outcome {
                        Ok(r) => format!("status {}", r.status()),
                        Err(e) => e.to_string(),
                    };
                    if attempt == ATTEMPTS {
                        metrics::counter!(m::ALERTMANAGER_PUSHES_TOTAL, "result" => "failed")
                            .increment(batch.len() as u64);
                        tracing::warn!(alerts = batch.len(), error = %why, "Alertmanager did not take the alerts; the next sweep re-sends open ones");
                        break;
                    }
                    tracing::debug!(attempt, error = %why, "Alertmanager push failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff *= 2;
                }
            }
        }
    }
}
