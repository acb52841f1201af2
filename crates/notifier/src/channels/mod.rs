//! Channels: where notifications go. One [`Channel`] trait; one
//! implementation per provider, each sending that provider's documented
//! request shape:
//! - [`webhook`]: generic JSON webhook, HMAC-SHA256 signed, with an `Idempotency-Key`.
//! - [`chat`]: Slack, Discord, Microsoft Teams, Mattermost, Google Chat and
//!   Rocket.Chat webhooks, the Telegram bot API.
//! - [`whatsapp`]: the WhatsApp Cloud API and a generic HTTP gateway.
//! - [`pagerduty`]: PagerDuty Events API v2.
//! - [`opsgenie`]: Opsgenie Alert API v2 (create, close, acknowledge by alias).
//! - [`email`]: SMTP (STARTTLS, TLS or plain, with optional auth).
//! - [`push`]: ntfy, Gotify and Pushover, with their priority schemes.
//! - [`matrix`]: the Matrix client-server API (the transaction id is the idempotency key).
//! - [`signal`]: signal-cli-rest-api `/v2/send`.
//! - [`sms`]: a generic SMS HTTP gateway (JSON, form or query, templated body).
//!
//! Errors never carry a URL or a secret: webhook URLs hold keys.

pub mod chat;
pub mod email;
pub mod matrix;
pub mod opsgenie;
pub mod pagerduty;
pub mod push;
pub mod signal;
pub mod sms;
pub mod webhook;
pub mod whatsapp;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pantau_config::{ChannelConfig, ChannelType, NotifierConfig};
use serde::Serialize;

use crate::notification::Notification;

/// One message to send.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Stable across retries: receivers can de-duplicate on it.
    pub idempotency_key: &'a str,
    /// The recipient (phone number) for channels with several; empty otherwise.
    pub recipient: &'a str,
    pub notification: &'a Notification,
    /// The rendered text.
    pub text: &'a str,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: a timeout, a refused connection, 5xx, 429.
    #[error("{0}")]
    Temporary(String),
    /// Retrying will not help: a 4xx, a rejected recipient, a bad template.
    #[error("{0}")]
    Permanent(String),
}

impl SendError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent(_))
    }
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The HTTP status or SMTP reply code; 0 when none came back.
    pub status_code: u16,
    pub result: Result<(), SendError>,
}

impl Outcome {
    pub fn ok(status_code: u16) -> Self {
        Self {
            status_code,
            result: Ok(()),
        }
    }

    pub fn temporary(status_code: u16, why: impl Into<String>) -> Self {
        Self {
            status_code,
            result: Err(SendError::Temporary(why.into())),
        }
    }

    pub fn permanent(status_code: u16, why: impl Into<String>) -> Self {
        Self {
            status_code,
            result: Err(SendError::Permanent(why.into())),
        }
    }
}

/// A place notifications go.
#[async_trait]
pub trait Channel: Send + Sync {
    /// Sends one message; never panics, never logs secrets.
    async fn send(&self, out: Outgoing<'_>) -> Outcome;
}

/// A configured channel with its sender.
#[derive(Clone)]
pub struct Configured {
    pub config: ChannelConfig,
    pub sender: Arc<dyn Channel>,
}

impl Configured {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn kind(&self) -> ChannelType {
        self.config.kind
    }

    /// The recipients that each get their own delivery: the `to` numbers of
    /// WhatsApp, Signal and SMS channels; one empty recipient otherwise.
    pub fn recipients(&self) -> Vec<String> {
        if self.config.kind.per_recipient() {
            self.config.to.clone()
        } else {
            vec![String::new()]
        }
    }
}

/// The API base a type uses when its `url` is not set; `None` where `url`
/// is required.
pub fn default_url(kind: ChannelType) -> Option<&'static str> {
    match kind {
        ChannelType::Telegram => Some(chat::TELEGRAM_API),
        ChannelType::Whatsapp => Some(whatsapp::CLOUD_API),
        ChannelType::Pagerduty => Some(pagerduty::EVENTS_API),
        ChannelType::Ntfy => Some(push::NTFY_API),
        ChannelType::Pushover => Some(push::PUSHOVER_API),
        ChannelType::Matrix => Some(matrix::HOMESERVER),
        ChannelType::Opsgenie => Some(opsgenie::ALERT_API),
        ChannelType::Webhook
        | ChannelType::Slack
        | ChannelType::Discord
        | ChannelType::Teams
        | ChannelType::WhatsappGateway
        | ChannelType::Email
        | ChannelType::Gotify
        | ChannelType::Mattermost
        | ChannelType::GoogleChat
        | ChannelType::Rocketchat
        | ChannelType::Signal
        | ChannelType::Sms => None,
    }
}

/// Why the channels could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("channel `{channel}`: {why}")]
    Invalid { channel: String, why: String },
}

/// Builds every configured channel, sharing one HTTP client.
pub fn build(cfg: &NotifierConfig) -> Result<HashMap<String, Configured>, BuildError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(cfg.request_timeout)
        .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("pantau-notifier/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut out = HashMap::new();
    for c in &cfg.channels {
        let invalid = |why: &str| BuildError::Invalid {
            channel: c.name.clone(),
            why: why.to_owned(),
        };
        let sender: Arc<dyn Channel> = match c.kind {
            ChannelType::Webhook => {
                Arc::new(webhook::Webhook::new(http.clone(), c).ok_or_else(|| invalid("url is required"))?)
            }
            ChannelType::Slack
            | ChannelType::Discord
            | ChannelType::Teams
            | ChannelType::Telegram
            | ChannelType::Mattermost
            | ChannelType::GoogleChat
            | ChannelType::Rocketchat => Arc::new(chat::Chat::new(http.clone(), c).map_err(&invalid)?),
            ChannelType::Whatsapp | ChannelType::WhatsappGateway => {
                Arc::new(whatsapp::WhatsApp::new(http.clone(), c).map_err(&invalid)?)
            }
            ChannelType::Pagerduty => Arc::new(pagerduty::PagerDuty::new(http.clone(), c).map_err(&invalid)?),
            ChannelType::Email => Arc::new(email::Email::new(c, cfg.request_timeout).map_err(|w| invalid(&w))?),
            ChannelType::Ntfy | ChannelType::Gotify | ChannelType::Pushover => {
                Arc::new(push::Push::new(http.clone(), c).map_err(&invalid)?)
            }
            ChannelType::Matrix => Arc::new(matrix::Matrix::new(http.clone(), c).map_err(&invalid)?),
            ChannelType::Opsgenie => Arc::new(opsgenie::Opsgenie::new(http.clone(), c).map_err(&invalid)?),
            ChannelType::Signal => Arc::new(signal::Signal::new(http.clone(), c).map_err(&invalid)?),
            ChannelType::Sms => Arc::new(sms::Sms::new(http.clone(), c).map_err(|w| invalid(&w))?),
        };
        out.insert(
            c.name.clone(),
            Configured {
                config: c.clone(),
                sender,
            },
        );
    }
    Ok(out)
}

/// Posts `body` as JSON; see [`send_request`].
pub(crate) async fn post_json<B: Serialize + ?Sized>(req: reqwest::RequestBuilder, body: &B) -> (Outcome, String) {
    send_request(req.json(body)).await
}

/// Sends a request and classifies the answer: 2xx delivered; 408, 429 and
/// 5xx temporary; other statuses permanent; transport errors temporary.
/// Also returns the response body (for providers that answer 200 with an
/// error inside). Error texts name the status or the failure, never the URL.
pub(crate) async fn send_request(req: reqwest::RequestBuilder) -> (Outcome, String) {
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            let what = if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                format!("cannot connect: {}", e.without_url())
            } else {
                e.without_url().to_string()
            };
            return (Outcome::temporary(0, what), String::new());
        }
    };
    let status = resp.status();
    let code = status.as_u16();
    let text = resp.text().await.unwrap_or_default();
    let snippet: String = text.chars().take(200).collect();
    let outcome = if status.is_success() {
        Outcome::ok(code)
    } else if code == 408 || code == 429 || status.is_server_error() {
        Outcome::temporary(code, format!("HTTP {code}: {snippet}"))
    } else {
        Outcome::permanent(code, format!("HTTP {code}: {snippet}"))
    };
    (outcome, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn transport_errors_do_not_leak_the_url() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = pantau_testkit::free_port();
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/services/SECRETKEY");
        let (o, _) = post_json(client.post(&url), &serde_json::json!({})).await;
        let err = o.result.unwrap_err();
        assert!(!err.is_permanent());
        assert!(!err.to_string().contains("SECRETKEY"), "{err}");
    }
}
