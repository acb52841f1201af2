//! WhatsApp, one delivery per recipient:
//! - Cloud API: `POST <base>/<phone_number_id>/messages` with
//!   `Authorization: Bearer <token>` and
//!   `{"messaging_product": "whatsapp", "recipient_type": "individual", "to", "type": "text", "text": {"preview_url": false, "body"}}`.
//! - Gateway (local providers): `POST <url>` `{"to", "message"}`, with
//!   `Authorization: Bearer <token>` when a token is set.

use async_trait::async_trait;
use pantau_config::{ChannelConfig, ChannelType};
use serde_json::json;

use super::{Channel, Outcome, Outgoing};

pub const CLOUD_API: &str = "https://graph.facebook.com/v21.0";
const MAX_BODY: usize = 4096;

pub struct WhatsApp {
    http: reqwest::Client,
    cloud: bool,
    url: String,
    token: Option<String>,
}

impl WhatsApp {
    pub fn new(http: reqwest::Client, c: &ChannelConfig) -> Result<Self, &'static str> {
        let cloud = c.kind == ChannelType::Whatsapp;
        let url = if cloud {
            let base = c.url.as_deref().unwrap_or(CLOUD_API).trim_end_matches('/');
            let id = c.phone_number_id.as_deref().ok_or("phone_number_id is required")?;
            format!("{base}/{id}/messages")
        } else {
            c.url.clone().ok_or("url is required")?
        };
        Ok(Self {
            http,
            cloud,
            url,
            token: c.token.clone(),
        })
    }
}

#[async_trait]
impl Channel for WhatsApp {
    async fn send(&self, out: Outgoing<'_>) -> Outcome {
        if out.recipient.is_empty() {
            return Outcome::permanent(0, "no recipient");
        }
        let text = super::chat::truncate(out.text, MAX_BODY);
        let body = if self.cloud {
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": out.recipient,
                "type": "text",
                "text": { "preview_url": false, "body": text },
            })
        } else {
            json!({ "to": out.recipient, "message": text })
        };
        let mut req = self.http.post(&self.url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        super::post_json(req, &body).await.0
    }
}
