//! PagerDuty Events API v2: `POST <base>/v2/enqueue` with
//! `{"routing_key", "event_action": "trigger"|"acknowledge"|"resolve", "dedup_key", "payload": {..}}`;
//! the alert key is the dedup key, so the resolve closes the incident the trigger opened.

use async_trait::async_trait;
use pantau_config::ChannelConfig;
use serde_json::json;

use super::{Channel, Outcome, Outgoing};

pub const EVENTS_API: &str = "https://events.pagerduty.com";

pub struct PagerDuty {
    http: reqwest::Client,
    url: String,
    routing_key: String,
}

impl PagerDuty {
    pub fn new(http: reqwest::Client, c: &ChannelConfig) -> Result<Self, &'static str> {
        let base = c.url.as_deref().unwrap_or(EVENTS_API).trim_end_matches('/');
        Ok(Self {
            http,
            url: format!("{base}/v2/enqueue"),
            routing_key: c.routing_key.clone().ok_or("routing_key is required")?,
        })
    }
}

/// PagerDuty's severities are critical, error, warning and info.
fn pd_severity(s: &str) -> &'static str {
    match s {
        "critical" => "critical",
        "warning" => "warning",
        _ => "info",
    }
}

#[async_trait]
impl Channel for PagerDuty {
    async fn send(&self, out: Outgoing<'_>) -> Outcome {
        let n = out.notification;
        let action = match n.status.as_str() {
            "resolved" => "resolve",
            "acknowledged" => "acknowledge",
            _ => "trigger",
        };
        let dedup_key: String = format!("pantau-{}", n.key).chars().take(255).collect();
        let mut body = json!({
            "routing_key": self.routing_key,
            "event_action": action,
            "dedup_key": dedup_key,
            "client": "Pantau",
        });
        if action == "trigger" {
            let first = n.alerts.first();
            let source = first
                .and_then(|a| a.labels.get("instance").cloned())
                .unwrap_or_else(|| "pantau".to_owned());
            let summary: String = n.title.chars().take(1024).collect();
            body["payload"] = json!({
                "summary": if summary.is_empty() { "alert".to_owned() } else { summary },
                "source": source,
                "severity": pd_severity(&n.severity),
                "timestamp": first.map(|a| a.starts_at.clone()).filter(|s| !s.is_empty()),
                "component": first.map(|a| a.name.clone()),
                "custom_details": { "text": out.text, "labels": n.common_labels },
            });
            if !n.external_url.is_empty() {
                body["client_url"] = json!(n.external_url);
            }
        }
        super::post_json(self.http.post(&self.url), &body).await.0
    }
}
