//! Signal through signal-cli-rest-api, one delivery per recipient:
//! `POST <url>/v2/send` `{"message", "number": <sender>, "recipients": [<recipient>]}`;
//! a recipient is a number or a group id (`group.…`). Success is 201 with a
//! `timestamp`.

use async_trait::async_trait;
use pantau_config::ChannelConfig;
use serde_json::json;

use super::{Channel, Outcome, Outgoing};

const MAX_BODY: usize = 4096;

pub struct Signal {
    http: reqwest::Client,
    url: String,
    sender: String,
}

impl Signal {
    pub fn new(http: reqwest::Client, c: &ChannelConfig) -> Result<Self, &'static str> {
        let base = c.url.as_deref().ok_or("url is required")?.trim_end_matches('/');
        Ok(Self {
            http,
            url: format!("{base}/v2/send"),
            sender: c.sender.clone().ok_or("sender is required")?,
        })
    }
}

#[async_trait]
impl Channel for Signal {
    async fn send(&self, out: Outgoing<'_>) -> Outcome {
        if out.recipient.is_empty() {
            return Outcome::permanent(0, "no recipient");
        }
        let body = json!({
            "message": super::chat::truncate(out.text, MAX_BODY),
            "number": self.sender,
            "recipients": [out.recipient],
        });
        super::post_json(self.http.post(&self.url), &body).await.0
    }
}
