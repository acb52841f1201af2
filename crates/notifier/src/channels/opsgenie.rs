//! Opsgenie Alert API v2, `Authorization: GenieKey <api key>`:
//! - firing: `POST <base>/v2/alerts` `{"message", "alias", "description",
//!   "priority": "P1"–"P5", "source", "tags", "details", "entity"}`; the alias
//!   is the alert's fingerprint, so a repeat of an open alert is
//!   de-duplicated by Opsgenie instead of opening another;
//! - resolved: `POST <base>/v2/alerts/<alias>/close?identifierType=alias`
//!   `{"source", "user", "note"}`;
//! - acknowledged: `POST <base>/v2/alerts/<alias>/acknowledge?identifierType=alias`, same body.
//!
//! Opsgenie answers 202 and processes the request asynchronously.

use async_trait::async_trait;
use pantau_config::ChannelConfig;
use serde_json::json;

use super::chat::truncate;
use super::{Channel, Outcome, Outgoing};
use crate::notification::Notification;

pub const ALERT_API: &str = "https://api.opsgenie.com";

pub struct Opsgenie {
    http: reqwest::Client,
    config: ChannelConfig,
    base: String,
    key: String,
}

impl Opsgenie {
    pub fn new(http: reqwest::Client, c: &ChannelConfig) -> Result<Self, &'static str> {
        Ok(Self {
            http,
            base: c.url.as_deref().unwrap_or(ALERT_API).trim_end_matches('/').to_owned(),
            key: c.token.clone().ok_or("token is required")?,
            config: c.clone(),
        })
    }
}

/// The alias of a notification: the alert's fingerprint (one alert), else
/// its key; at most 512 characters.
pub fn alias(n: &Notification) -> String {
    let fp = match n.alerts.as_slice() {
        [one] if !one.fingerprint.is_empty() => one.fingerprint.clone(),
        _ => format!("pantau-{}", n.key),
    };
    truncate_plain(&fp, 512)
}

fn truncate_plain(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[async_trait]
impl Channel for Opsgenie {
    async fn send(&self, out: Outgoing<'_>) -> Outcome {
        let n = out.notification;
        let alias = alias(n);
        let auth = format!("GenieKey {}", self.key);
        let (url, body) = match n.status.as_str() {
            "resolved" | "acknowledged" => {
                let action = if n.status == "resolved" { "close" } else { "acknowledge" };
                let actor = n.alerts.first().map(|a| a.actor.as_str()).unwrap_or_default();
                let url = format!(
                    "{}/v2/alerts/{}/{action}?identifierType=alias",
                    self.base,
                    super::matrix::encode_segment(&alias)
                );
                let body = json!({
                    "source": "Pantau",
                    "user": if actor.is_empty() { "Pantau" } else { actor },
                    "note": truncate(out.text, 25_000),
                });
                (url, body)
            }
            _ => {
                let priority = self.config.priority(&n.status, &n.severity).unwrap_or(3);
                let first = n.alerts.first();
                let message = if n.title.is_empty() { "alert" } else { n.title.as_str() };
                let mut details = serde_json::Map::new();
                for (k, v) in n.common_labels.iter().take(50) {
                    details.insert(truncate_plain(k, 100), json!(truncate_plain(v, 1000)));
                }
                let mut body = json!({
                    "message": truncate(message, 130),
                    "alias": alias,
                    "description": truncate(out.text, 15_000),
                    "priority": format!("P{priority}"),
                    "source": "Pantau",
                    "tags": ["pantau", n.severity],
                    "details": details,
                });
                if let Some(entity) = first.and_then(|a| a.labels.get("instance")) {
                    body["entity"] = json!(truncate_plain(entity, 512));
                }
                (format!("{}/v2/alerts", self.base), body)
            }
        };
        super::post_json(self.http.post(url).header("authorization", auth), &body)
            .await
            .0
    }
}
