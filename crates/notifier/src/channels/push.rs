//! Push notification services, each with its priority scheme (see
//! `ChannelConfig::priority`; a resolve goes out at the lower `resolved`
//! priority):
//! - ntfy, published as JSON: `POST <base>/` `{"topic", "title", "message",
//!   "priority": 1–5, "tags", "click"?}`, `Authorization: Bearer <token>`
//!   when the topic is protected.
//! - Gotify: `POST <base>/message?token=<app token>` `{"title", "message",
//!   "priority": 0–10, "extras"}`.
//! - Pushover Message API: `POST <base>/1/messages.json`, a form of `token`,
//!   `user`, `title`, `message`, `priority` (-2–2), `url`; an emergency
//!   (priority 2) also carries `retry`, `expire` and a `tags` value naming
//!   the alert, and its resolve first cancels the repeats with
//!   `POST <base>/1/receipts/cancel_by_tag/<tag>.json`. Success is
//!   `{"status": 1}`.

use async_trait::async_trait;
use pantau_config::{ChannelConfig, ChannelType};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::chat::truncate;
use super::{Channel, Outcome, Outgoing};
use crate::notification::Notification;

pub const NTFY_API: &str = "https://ntfy.sh";
pub const PUSHOVER_API: &str = "https://api.pushover.net";
/// An emergency repeats every `retry` seconds until acknowledged or `expire`.
pub const PUSHOVER_RETRY_SECONDS: u32 = 60;
pub const PUSHOVER_EXPIRE_SECONDS: u32 = 3600;
const NTFY_MAX: usize = 4096;
const GOTIFY_MAX: usize = 16_384;
const PUSHOVER_MAX: usize = 1024;
const PUSHOVER_TITLE_MAX: usize = 250;

pub struct Push {
    http: reqwest::Client,
    config: ChannelConfig,
    base: String,
}

impl Push {
    pub fn new(http: reqwest::Client, c: &ChannelConfig) -> Result<Self, &'static str> {
        let base = match c.kind {
            ChannelType::Ntfy => c.url.as_deref().unwrap_or(NTFY_API),
            ChannelType::Pushover => c.url.as_deref().unwrap_or(PUSHOVER_API),
            ChannelType::Gotify => c.url.as_deref().ok_or("url is required")?,
            _ => return Err("not a push channel"),
        };
        match c.kind {
            ChannelType::Ntfy if c.topic.is_none() => return Err("topic is required"),
            ChannelType::Gotify if c.token.is_none() => return Err("token is required"),
            ChannelType::Pushover if c.token.is_none() || c.user_key.is_none() => {
                return Err("token and user_key are required");
            }
            _ => {}
        }
        Ok(Self {
            http,
            config: c.clone(),
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    fn priority(&self, n: &Notification) -> i64 {
        self.config.priority(&n.status, &n.severity).unwrap_or_default()
    }

    async fn ntfy(&self, out: Outgoing<'_>) -> Outcome {
        let n = out.notification;
        let tag = match (n.status.as_str(), n.severity.as_str()) {
            ("resolved", _) => "white_check_mark",
            ("acknowledged", _) => "eyes",
            (_, "critical") => "rotating_light",
            (_, "warning") => "warning",
            _ => "information_source",
        };
        let mut body = json!({
            "topic": self.config.topic,
            "title": truncate(&n.title, 256),
            "message": truncate(out.text, NTFY_MAX),
            "priority": self.priority(n),
            "tags": [tag, "pantau"],
        });
        if !n.external_url.is_empty() {
            body["click"] = json!(n.external_url);
        }
        let mut req = self.http.post(format!("{}/", self.base));
        if let Some(t) = &self.config.token {
            req = req.bearer_auth(t);
        }
        super::post_json(req, &body).await.0
    }

    async fn gotify(&self, out: Outgoing<'_>) -> Outcome {
        let n = out.notification;
        let Some(url) = with_query(&format!("{}/message", self.base), &[("token", token(&self.config))]) else {
            return Outcome::permanent(0, "the gotify url is not valid");
        };
        let body = json!({
            "title": truncate(&n.title, 256),
            "message": truncate(out.text, GOTIFY_MAX),
            "priority": self.priority(n),
            "extras": { "client::display": { "contentType": "text/plain" } },
        });
        super::post_json(self.http.post(url), &body).await.0
    }

    async fn pushover(&self, out: Outgoing<'_>) -> Outcome {
        let n = out.notification;
        let priority = self.priority(n);
        let tag = pushover_tag(&n.key);
        // The firing of this alert was an emergency that repeats until
        // acknowledged: the resolve stops the repeats first.
        let firing_priority = self.config.priority("firing", &n.severity);
        if n.status != "firing" && firing_priority == Some(2) {
            let cancel = format!("{}/1/receipts/cancel_by_tag/{tag}.json", self.base);
            let form = encode_form(&[("token", token(&self.config).to_owned())]);
            let (o, _) = super::send_request(
                self.http
                    .post(cancel)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form),
            )
            .await;
            if let Err(e) = &o.result
                && !e.is_permanent()
            {
                return o;
            }
        }
        let mut fields = vec![
            ("token", token(&self.config).to_owned()),
            ("user", self.config.user_key.clone().unwrap_or_default()),
            ("title", truncate(&n.title, PUSHOVER_TITLE_MAX)),
            ("message", truncate(out.text, PUSHOVER_MAX)),
            ("priority", priority.to_string()),
        ];
        if priority == 2 {
            fields.push(("retry", PUSHOVER_RETRY_SECONDS.to_string()));
            fields.push(("expire", PUSHOVER_EXPIRE_SECONDS.to_string()));
            fields.push(("tags", tag));
        }
        if !n.external_url.is_empty() {
            fields.push(("url", truncate(&n.external_url, 512)));
        }
        let req = self
            .http
            .post(format!("{}/1/messages.json", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode_form(&fields));
        let (outcome, text) = super::send_request(req).await;
        if outcome.result.is_ok() {
            let status = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("status").and_then(serde_json::Value::as_i64));
            if status != Some(1) {
                return Outcome::permanent(outcome.status_code, "pushover answered without \"status\": 1");
            }
        }
        outcome
    }
}

fn token(c: &ChannelConfig) -> &str {
    c.token.as_deref().unwrap_or_default()
}

/// The Pushover tag of an alert's emergencies: stable per alert key.
pub fn pushover_tag(key: &str) -> String {
    let h = Sha256::digest(key.as_bytes());
    format!("pantau-{}", hex::encode(&h[..8]))
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub(crate) fn encode_form<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k.as_ref(), v.as_ref());
    }
    s.finish()
}

/// `url` with `pairs` appended to its query; `None` if it does not parse.
pub(crate) fn with_query<K: AsRef<str>, V: AsRef<str>>(url: &str, pairs: &[(K, V)]) -> Option<url::Url> {
    let mut u = url::Url::parse(url).ok()?;
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k.as_ref(), v.as_ref());
        }
    }
    Some(u)
}

#[async_trait]
impl Channel for Push {
    async fn send(&self, out: Outgoing<'_>) -> Outcome {
        match self.config.kind {
            ChannelType::Ntfy => self.ntfy(out).await,
            ChannelType::Gotify => self.gotify(out).await,
            _ => self.pushover(out).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_queries_are_encoded() {
        assert_eq!(encode_form(&[("a", "x y&z"), ("b", "é")]), "a=x+y%26z&b=%C3%A9");
        let u = with_query("http://127.0.0.1:1/g/message", &[("token", "a&b")]).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:1/g/message?token=a%26b");
        assert!(with_query("not a url", &[("a", "b")]).is_none());
    }

    #[test]
    fn tags_are_stable_per_alert() {
        assert_eq!(pushover_tag("a1"), pushover_tag("a1"));
        assert_ne!(pushover_tag("a1"), pushover_tag("a2"));
        assert_eq!(pushover_tag("a1").len(), "pantau-".len() + 16);
    }
}
