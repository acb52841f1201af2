//! Chat channels:
//! - Slack incoming webhook: `POST <url>` `{"text": ..}` (mrkdwn).
//! - Discord webhook: `POST <url>` `{"content": .., "username": ..}`, at most 2000 characters.
//! - Microsoft Teams (incoming webhook or Workflows): `POST <url>` with a
//!   message carrying one Adaptive Card.
//! - Telegram bot API: `POST <base>/bot<token>/sendMessage`
//!   `{"chat_id", "text", "disable_web_page_preview"}`, at most 4096
//!   characters; success is `{"ok": true}`.

use async_trait::async_trait;
use pantau_config::{ChannelConfig, ChannelType};
use serde_json::json;

use super::{Channel, Outcome, Outgoing};

pub const TELEGRAM_API: &str = "https://api.telegram.org";
const DISCORD_MAX: usize = 2000;
const TELEGRAM_MAX: usize = 4096;

pub struct Chat {
    http: reqwest::Client,
    kind: ChannelType,
    url: String,
    recipient: String,
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

impl Chat {
    pub fn new(http: reqwest::Client, c: &ChannelConfig) -> Result<Self, &'static str> {
        let url = match c.kind {
            ChannelType::Telegram => {
                let base = c.url.as_deref().unwrap_or(TELEGRAM_API).trim_end_matches('/');
                let token = c.token.as_deref().ok_or("token is required")?;
                format!("{base}/bot{token}/sendMessage")
            }
            _ => c.url.clone().ok_or("url is required")?,
        };
        Ok(Self {
            http,
            kind: c.kind,
            url,
            recipient: c.chat_id.clone().unwrap_or_default(),
        })
    }
}

fn teams_color(severity: &str, status: &str) -> &'static str {
    match (status, severity) {
        ("resolved", _) => "Good",
        (_, "critical") => "Attention",
        (_, "warning") => "Warning",
        _ => "Default",
    }
}

#[async_trait]
impl Channel for Chat {
    async fn send(&self, out: Outgoing<'_>) -> Outcome {
        let n = out.notification;
        let body = match self.kind {
            ChannelType::Slack => json!({ "text": out.text, "mrkdwn": true }),
            ChannelType::Discord => json!({
                "content": truncate(out.text, DISCORD_MAX),
                "username": "Pantau",
                "allowed_mentions": { "parse": [] },
            }),
            ChannelType::Teams => json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            { "type": "TextBlock", "text": n.title, "weight": "Bolder", "size": "Medium",
                              "color": teams_color(&n.severity, &n.status), "wrap": true },
                            { "type": "TextBlock", "text": out.text, "wrap": true },
                        ],
                    },
                }],
            }),
            _ => json!({
                "chat_id": self.recipient,
                "text": truncate(out.text, TELEGRAM_MAX),
                "disable_web_page_preview": true,
            }),
        };
        let (outcome, text) = super::post_json(self.http.post(&self.url), &body).await;
        if self.kind == ChannelType::Telegram && outcome.result.is_ok() {
            let ok = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("ok").and_then(serde_json::Value::as_bool));
            if ok != Some(true) {
                return Outcome::permanent(outcome.status_code, "telegram answered without \"ok\": true");
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo!", 5), "héll…");
    }
}
