//! Chat channels:
//! - Slack incoming webhook: `POST <url>` `{"text": ..}` (mrkdwn).
//! - Discord webhook: `POST <url>` `{"content": .., "username": ..}`, at most 2000 characters.
//! - Microsoft Teams (incoming webhook or Workflows): `POST <url>` with a
//!   message carrying one Adaptive Card.
//! - Telegram bot API: `POST <base>/bot<token>/sendMessage`
//!   `{"chat_id", "text", "disable_web_page_preview"}`, at most 4096
//!   characters; success is `{"ok": true}`.
//! - Mattermost incoming webhook: `POST <url>` `{"text", "channel"?}`
//!   (Markdown), at most 16383 characters.
//! - Google Chat space webhook: `POST <url>&threadKey=<alert>&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD`
//!   `{"text"}`, at most 4096 characters: an alert's resolve is posted in
//!   the thread its firing opened.
//! - Rocket.Chat incoming webhook: `POST <url>` `{"text", "alias": "Pantau",
//!   "channel"?, "attachments": [{"title", "color"}]}`.

use async_trait::async_trait;
use pantau_config::{ChannelConfig, ChannelType};
use serde_json::json;

use sha2::{Digest, Sha256};

use super::{Channel, Outcome, Outgoing};

pub const TELEGRAM_API: &str = "https://api.telegram.org";
const DISCORD_MAX: usize = 2000;
const TELEGRAM_MAX: usize = 4096;
const MATTERMOST_MAX: usize = 16_383;
const GOOGLE_CHAT_MAX: usize = 4096;
const ROCKETCHAT_MAX: usize = 5000;

pub struct Chat {
    http: reqwest::Client,
    kind: ChannelType,
    url: String,
    recipient: String,
    /// Mattermost and Rocket.Chat: the channel instead of the webhook's.
    channel: Option<String>,
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
            channel: c.channel.clone(),
        })
    }
}

/// The Google Chat thread of an alert: stable per alert key.
pub fn thread_key(key: &str) -> String {
    let h = Sha256::digest(key.as_bytes());
    format!("pantau-{}", hex::encode(&h[..12]))
}

fn rocketchat_color(severity: &str, status: &str) -> &'static str {
    match (status, severity) {
        ("resolved", _) => "#2eb886",
        ("acknowledged", _) => "#439fe0",
        (_, "critical") => "#d00000",
        (_, "warning") => "#f2a900",
        _ => "#2f80ed",
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
            ChannelType::Mattermost => {
                let mut b = json!({ "text": truncate(out.text, MATTERMOST_MAX) });
                if let Some(ch) = &self.channel {
                    b["channel"] = json!(ch);
                }
                b
            }
            ChannelType::GoogleChat => json!({ "text": truncate(out.text, GOOGLE_CHAT_MAX) }),
            ChannelType::Rocketchat => {
                let mut b = json!({
                    "alias": "Pantau",
                    "text": truncate(out.text, ROCKETCHAT_MAX),
                    "attachments": [{
                        "title": truncate(&n.title, 256),
                        "color": rocketchat_color(&n.severity, &n.status),
                    }],
                });
                if let Some(ch) = &self.channel {
                    b["channel"] = json!(ch);
                }
                b
            }
            _ => json!({
                "chat_id": self.recipient,
                "text": truncate(out.text, TELEGRAM_MAX),
                "disable_web_page_preview": true,
            }),
        };
        let req = if self.kind == ChannelType::GoogleChat {
            let q = [
                ("threadKey", thread_key(&n.key)),
                ("messageReplyOption", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD".to_owned()),
            ];
            match super::push::with_query(&self.url, &q) {
                Some(u) => self.http.post(u),
                None => return Outcome::permanent(0, "the google_chat url is not valid"),
            }
        } else {
            self.http.post(&self.url)
        };
        let (outcome, text) = super::post_json(req, &body).await;
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
