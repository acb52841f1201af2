//! The notifier's section: channels, routes, retries and rate limits.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::format as fmt_d;
use super::{EscalationConfig, Invalid, duration, text};
use crate::notifier_channels::channel_problems;
pub use crate::notifier_channels::{BodyFormat, ChannelField, HttpMethod, PriorityFor, PriorityValue};

/// The notifier service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifierConfig {
    /// gRPC port of `NotifierService`.
    pub grpc_port: u16,
    /// Admin port of `pantau notifier` (`/metrics`, `/healthz`, `/readyz`,
    /// `POST /webhooks/alertmanager`); `pantau all` uses the top-level `admin_port`.
    pub admin_port: u16,
    /// Deliveries attempted at once by this replica.
    pub concurrency: usize,
    /// How often pending deliveries are looked for when nothing new arrived.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// How long one attempt (HTTP request or SMTP session) may take.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// Retries: exponential backoff with jitter, then give up.
    pub retry: RetryConfig,
    /// How long delivered and failed deliveries stay in the delivery log.
    #[serde(with = "duration")]
    pub retention: Duration,
    /// Where notifications go.
    pub channels: Vec<ChannelConfig>,
    /// Which alerts go to which channels; every matching route applies.
    pub routes: Vec<RouteConfig>,
    /// Escalation policies routes name with `escalation`: repeats while
    /// nobody acknowledges, further channels later, reminders.
    pub escalations: Vec<EscalationConfig>,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            grpc_port: 50054,
            admin_port: 9104,
            concurrency: 16,
            poll_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            retry: RetryConfig::default(),
            retention: Duration::from_secs(7 * 24 * 3600),
            channels: Vec::new(),
            routes: Vec::new(),
            escalations: Vec::new(),
        }
    }
}

/// Exponential backoff with full jitter between attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Wait before the first retry; doubled after each failure.
    #[serde(with = "duration")]
    pub initial_backoff: Duration,
    /// Longest wait between two attempts.
    #[serde(with = "duration")]
    pub max_backoff: Duration,
    /// Attempts before a delivery is given up (reported as failed).
    pub max_attempts: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            max_attempts: 10,
        }
    }
}

/// The kind of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelType {
    /// Generic JSON webhook, signed with HMAC-SHA256 when `secret` is set.
    Webhook,
    /// Slack incoming webhook (`url`).
    Slack,
    /// Discord webhook (`url`).
    Discord,
    /// Microsoft Teams incoming webhook / workflow (`url`), adaptive card.
    Teams,
    /// Telegram bot API (`token`, `chat_id`; `url` defaults to https://api.telegram.org).
    Telegram,
    /// WhatsApp Cloud API (`token`, `phone_number_id`, `to`; `url` defaults to https://graph.facebook.com/v21.0).
    Whatsapp,
    /// A local WhatsApp HTTP gateway (`url`, optional bearer `token`, `to`): `{"to", "message"}`.
    WhatsappGateway,
    /// PagerDuty Events API v2 (`routing_key`; `url` defaults to https://events.pagerduty.com).
    Pagerduty,
    /// Email over SMTP (`smtp`, `to`).
    Email,
    /// ntfy publish as JSON (`topic`, optional access `token`; `url` defaults to https://ntfy.sh).
    Ntfy,
    /// Gotify `POST /message?token=` (`url` of the server, application `token`).
    Gotify,
    /// Pushover Message API (`token`, `user_key`; `url` defaults to https://api.pushover.net).
    Pushover,
    /// Matrix client-server API: `m.room.message` into `room_id` (`token`;
    /// `url` defaults to https://matrix-client.matrix.org).
    Matrix,
    /// Mattermost incoming webhook (`url`, optional `channel`).
    Mattermost,
    /// Google Chat space webhook (`url`).
    GoogleChat,
    /// Opsgenie Alert API v2 (`token` is the API key; `url` defaults to https://api.opsgenie.com).
    Opsgenie,
    /// Rocket.Chat incoming webhook (`url`, optional `channel`).
    Rocketchat,
    /// signal-cli REST API `POST /v2/send` (`url`, `sender`, `to`).
    Signal,
    /// A generic SMS HTTP gateway (`url`, `to`, optional `method`,
    /// `body_format`, `body` template and `auth_header`).
    Sms,
}

impl ChannelType {
    /// The name used in configuration, metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Teams => "teams",
            Self::Telegram => "telegram",
            Self::Whatsapp => "whatsapp",
            Self::WhatsappGateway => "whatsapp_gateway",
            Self::Pagerduty => "pagerduty",
            Self::Email => "email",
            Self::Ntfy => "ntfy",
            Self::Gotify => "gotify",
            Self::Pushover => "pushover",
            Self::Matrix => "matrix",
            Self::Mattermost => "mattermost",
            Self::GoogleChat => "google_chat",
            Self::Opsgenie => "opsgenie",
            Self::Rocketchat => "rocketchat",
            Self::Signal => "signal",
            Self::Sms => "sms",
        }
    }

    /// Every channel type, in the order the documentation lists them.
    pub const ALL: [ChannelType; 19] = [
        Self::Webhook,
        Self::Slack,
        Self::Discord,
        Self::Teams,
        Self::Telegram,
        Self::Whatsapp,
        Self::WhatsappGateway,
        Self::Pagerduty,
        Self::Email,
        Self::Ntfy,
        Self::Gotify,
        Self::Pushover,
        Self::Matrix,
        Self::Mattermost,
        Self::GoogleChat,
        Self::Opsgenie,
        Self::Rocketchat,
        Self::Signal,
        Self::Sms,
    ];

    /// The type named `s` in configuration.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Types whose URL itself is the key (a webhook path or query): the API
    /// shows only its scheme and host.
    pub fn url_is_secret(self) -> bool {
        matches!(
            self,
            Self::Webhook
                | Self::Slack
                | Self::Discord
                | Self::Teams
                | Self::WhatsappGateway
                | Self::Mattermost
                | Self::GoogleChat
                | Self::Rocketchat
                | Self::Sms
        )
    }

    /// Types that send one delivery per `to` recipient.
    pub fn per_recipient(self) -> bool {
        matches!(self, Self::Whatsapp | Self::WhatsappGateway | Self::Signal | Self::Sms)
    }
}

/// One channel. Which fields apply depends on `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Unique name routes refer to.
    #[serde(deserialize_with = "text::deserialize")]
    pub name: String,
    /// `webhook`, `slack`, `discord`, `teams`, `telegram`, `whatsapp`,
    /// `whatsapp_gateway`, `pagerduty`, `email`, `ntfy`, `gotify`,
    /// `pushover`, `matrix`, `mattermost`, `google_chat`, `opsgenie`,
    /// `rocketchat`, `signal` or `sms`.
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// The webhook URL, or the API base URL of telegram, whatsapp, pagerduty,
    /// ntfy, gotify, pushover, matrix, opsgenie and signal (secret: webhook
    /// URLs carry keys).
    #[serde(default, deserialize_with = "text::option")]
    pub url: Option<String>,
    /// Webhook only: HMAC-SHA256 key of the `X-Pantau-Signature` header (secret).
    #[serde(default, deserialize_with = "text::option")]
    pub secret: Option<String>,
    /// Telegram bot token, WhatsApp access token, gateway bearer token, ntfy
    /// access token, Gotify application token, Pushover application token,
    /// Matrix access token or Opsgenie API key (secret).
    #[serde(default, deserialize_with = "text::option")]
    pub token: Option<String>,
    /// Telegram chat id.
    #[serde(default, deserialize_with = "text::option")]
    pub chat_id: Option<String>,
    /// WhatsApp Cloud API sender phone number id.
    #[serde(default, deserialize_with = "text::option")]
    pub phone_number_id: Option<String>,
    /// PagerDuty integration (routing) key (secret).
    #[serde(default, deserialize_with = "text::option")]
    pub routing_key: Option<String>,
    /// Recipients: phone numbers (WhatsApp, Signal, SMS: one delivery each),
    /// Signal group ids (`group.…`) or email addresses.
    #[serde(default)]
    pub to: Vec<String>,
    /// ntfy topic (secret: on a public server the topic is the password).
    #[serde(default, deserialize_with = "text::option")]
    pub topic: Option<String>,
    /// Pushover user or group key (secret).
    #[serde(default, deserialize_with = "text::option")]
    pub user_key: Option<String>,
    /// Matrix room id, e.g. `!abcdef:example.org`.
    #[serde(default, deserialize_with = "text::option")]
    pub room_id: Option<String>,
    /// Mattermost or Rocket.Chat: post to this channel instead of the
    /// webhook's own (`town-square`, `#ops`, `@alice`).
    #[serde(default, deserialize_with = "text::option")]
    pub channel: Option<String>,
    /// Signal: the number registered with signal-cli that sends, e.g. `+628111234567`.
    #[serde(default, deserialize_with = "text::option")]
    pub sender: Option<String>,
    /// SMS gateway: the HTTP method, `post` (default), `put` or `get`
    /// (`get` sends the body's fields as query parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,
    /// SMS gateway: `json` (default) or `form` (`application/x-www-form-urlencoded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_format: Option<BodyFormat>,
    /// SMS gateway: the request body, an object whose text values are
    /// templates seeing `to`, `message`, `title`, `severity` and `status`;
    /// default `{"to": "{{ to }}", "message": "{{ message }}"}`. Form bodies
    /// and `get` take a flat object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Map<String, serde_json::Value>>,
    /// SMS gateway: one header sent with each request, `Name: value`
    /// (e.g. `Authorization: Basic …` or `X-Api-Key: …`) (secret).
    #[serde(default, deserialize_with = "text::option")]
    pub auth_header: Option<String>,
    /// ntfy, gotify, pushover and opsgenie: the service's priority for
    /// `info`, `warning`, `critical` and `resolved` (also used for
    /// acknowledgements), replacing the defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub priorities: BTreeMap<PriorityFor, PriorityValue>,
    /// Email only: the SMTP server.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// Most deliveries per `rate_limit_period`; 0 means unlimited. Deliveries
    /// over the limit wait for the next free slot, they are not dropped.
    #[serde(default)]
    pub rate_limit: u32,
    /// The window of `rate_limit`.
    #[serde(default = "default_rate_period", with = "duration")]
    pub rate_limit_period: Duration,
    /// A minijinja template replacing the channel's default message text.
    #[serde(default)]
    pub template: Option<String>,
    /// Send the notifications due together for one recipient as one message
    /// (a storm becomes one message per `group_wait`), for phone channels.
    #[serde(default)]
    pub group: bool,
    /// With `group`: how long a new notification waits for others to join it.
    #[serde(default, with = "duration")]
    pub group_wait: Duration,
}

fn default_rate_period() -> Duration {
    Duration::from_secs(60)
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (a relay on loopback).
    None,
}

/// An SMTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name or address.
    #[serde(deserialize_with = "text::deserialize")]
    pub host: String,
    /// Port; defaults to 587 (starttls), 465 (tls) or 25 (none).
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls`, `tls` or `none`.
    #[serde(default)]
    pub tls: SmtpTls,
    /// Login user, if the server wants authentication.
    #[serde(default, deserialize_with = "text::option")]
    pub username: Option<String>,
    /// Login password (secret).
    #[serde(default, deserialize_with = "text::option")]
    pub password: Option<String>,
    /// The From address, e.g. `Pantau <pantau@example.org>`.
    #[serde(deserialize_with = "text::deserialize")]
    pub from: String,
    /// A PEM file of a CA to trust besides the public ones (a relay with a
    /// private or self-signed certificate).
    #[serde(default, deserialize_with = "text::option")]
    pub ca_file: Option<String>,
}

/// A route: alerts matching every condition go to `channels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Severities matched (`info`, `warning`, `critical`); empty means any.
    #[serde(default)]
    pub severity: Vec<String>,
    /// Labels that must be present with exactly these values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Channel names.
    pub channels: Vec<String>,
    /// The escalation policy (a name in `notifier.escalations`) of alerts this
    /// route matches; none: each transition is notified once.
    #[serde(default, deserialize_with = "text::option")]
    pub escalation: Option<String>,
}

const MASK: &str = "***";

impl NotifierConfig {
    /// Replaces every channel secret with `***`.
    pub fn mask(&mut self) {
        for c in &mut self.channels {
            c.mask();
        }
    }
}

impl ChannelConfig {
    /// Every problem of this channel as (field, what is wrong), the checks
    /// `notifier.channels[]` gets at start-up (for an entry that came from
    /// elsewhere, e.g. a primary's sync API). The field's value is never
    /// quoted: it may be a secret.
    pub fn problems(&self) -> Vec<(String, String)> {
        channel_problems(self)
    }

    /// Replaces every secret of the channel with `***`: tokens, keys,
    /// passwords, and the URL of webhook channels (it carries the key).
    pub fn mask(&mut self) {
        for s in [
            &mut self.secret,
            &mut self.token,
            &mut self.routing_key,
            &mut self.topic,
            &mut self.user_key,
            &mut self.auth_header,
        ] {
            if s.is_some() {
                *s = Some(MASK.to_owned());
            }
        }
        if let Some(u) = &self.url {
            self.url = Some(mask_channel_url(self.kind, u));
        }
        if let Some(smtp) = &mut self.smtp
            && smtp.password.is_some()
        {
            smtp.password = Some(MASK.to_owned());
        }
        if let Some(body) = &mut self.body {
            mask_body(body);
        }
    }
}

/// Masks every text value of an SMS body that is not a template: a literal
/// value there is usually the gateway's API key.
fn mask_body(body: &mut serde_json::Map<String, serde_json::Value>) {
    for v in body.values_mut() {
        match v {
            serde_json::Value::String(s) if !s.contains("{{") => MASK.clone_into(s),
            serde_json::Value::Object(m) => mask_body(m),
            serde_json::Value::Array(a) => {
                for item in a {
                    if let serde_json::Value::Object(m) = item {
                        mask_body(m);
                    } else if item.as_str().is_some_and(|s| !s.contains("{{")) {
                        *item = serde_json::Value::String(MASK.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
}

/// A channel URL safe to show: passwords masked, and for webhook-style
/// channels (whose path or query is the key) everything after the host.
pub fn mask_channel_url(kind: ChannelType, url: &str) -> String {
    let url = super::mask_url_password(url);
    let secret_path = kind.url_is_secret();
    let Some(scheme_end) = url.find("://") else {
        return MASK.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    if secret_path && cut < rest.len() {
        format!("{}{}/{MASK}", &url[..scheme_end + 3], &rest[..cut])
    } else {
        url
    }
}

const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

/// Every problem of the notifier section, each naming its key.
pub(super) fn problems(n: &NotifierConfig) -> Vec<Invalid> {
    let mut out = Vec::new();
    let mut add = |key: String, value: String, allowed: &str| {
        out.push(Invalid {
            key,
            value,
            allowed: allowed.to_owned(),
        });
    };
    if n.concurrency == 0 || n.concurrency > 1024 {
        add(
            "notifier.concurrency".into(),
            n.concurrency.to_string(),
            "must be between 1 and 1024",
        );
    }
    if n.poll_interval < Duration::from_millis(10) || n.poll_interval > Duration::from_secs(60) {
        add(
            "notifier.poll_interval".into(),
            fmt_d(n.poll_interval),
            "must be between 10ms and 1m",
        );
    }
    if n.request_timeout < Duration::from_millis(100) || n.request_timeout > Duration::from_secs(300) {
        add(
            "notifier.request_timeout".into(),
            fmt_d(n.request_timeout),
            "must be between 100ms and 5m",
        );
    }
    let r = &n.retry;
    if r.initial_backoff < Duration::from_millis(1) {
        add(
            "notifier.retry.initial_backoff".into(),
            fmt_d(r.initial_backoff),
            "must be at least 1ms",
        );
    }
    if r.max_backoff < r.initial_backoff {
        add(
            "notifier.retry.max_backoff".into(),
            fmt_d(r.max_backoff),
            "must be at least notifier.retry.initial_backoff",
        );
    }
    if r.max_attempts == 0 || r.max_attempts > 1000 {
        add(
            "notifier.retry.max_attempts".into(),
            r.max_attempts.to_string(),
            "must be between 1 and 1000",
        );
    }
    if n.retention < Duration::from_secs(60) {
        add("notifier.retention".into(), fmt_d(n.retention), "must be at least 1m");
    }
    let mut names = HashSet::new();
    for (i, c) in n.channels.iter().enumerate() {
        let key = |f: &str| format!("notifier.channels[{i}].{f}");
        if !super::is_token(&c.name) {
            add(
                key("name"),
                c.name.clone(),
                "must be 1–128 characters of letters, digits, `-` or `_`",
            );
        } else if !names.insert(c.name.as_str()) {
            add(
                key("name"),
                c.name.clone(),
                "must be unique: another channel has this name",
            );
        }
        for (field, why) in channel_problems(c) {
            let shown = match field.as_str() {
                "url" => c
                    .url
                    .as_deref()
                    .map(|u| mask_channel_url(c.kind, u))
                    .unwrap_or_default(),
                "chat_id" => c.chat_id.clone().unwrap_or_default(),
                "phone_number_id" => c.phone_number_id.clone().unwrap_or_default(),
                "room_id" => c.room_id.clone().unwrap_or_default(),
                "channel" => c.channel.clone().unwrap_or_default(),
                "sender" => c.sender.clone().unwrap_or_default(),
                "to" => c.to.join(","),
                "smtp.from" => c.smtp.as_ref().map(|s| s.from.clone()).unwrap_or_default(),
                "smtp.host" => c.smtp.as_ref().map(|s| s.host.clone()).unwrap_or_default(),
                // A priority is shown; secrets are never echoed.
                f => f
                    .strip_prefix("priorities.")
                    .and_then(|k| {
                        c.priorities
                            .iter()
                            .find(|(p, _)| p.as_str() == k)
                            .map(|(_, v)| v.to_string())
                    })
                    .unwrap_or_default(),
            };
            let shown = if shown.chars().count() > 256 {
                let mut s: String = shown.chars().take(255).collect();
                s.push('…');
                s
            } else {
                shown
            };
            add(key(&field), shown, &why);
        }
        if c.rate_limit > 0 && c.rate_limit_period < Duration::from_secs(1) {
            add(
                key("rate_limit_period"),
                fmt_d(c.rate_limit_period),
                "must be at least 1s",
            );
        }
        if c.group && c.kind == ChannelType::Pagerduty {
            add(
                key("group"),
                "true".into(),
                "must be false for pagerduty: each alert needs its own dedup_key",
            );
        }
        if c.group_wait > Duration::from_secs(600) || (!c.group && !c.group_wait.is_zero()) {
            add(
                key("group_wait"),
                fmt_d(c.group_wait),
                "must be at most 10m, and only set together with group: true",
            );
        }
        if let Some(t) = &c.template
            && t.trim().is_empty()
        {
            add(
                key("template"),
                String::new(),
                "must not be empty; remove it to use the default",
            );
        }
    }
    for (i, r) in n.routes.iter().enumerate() {
        for s in &r.severity {
            if !SEVERITIES.contains(&s.as_str()) {
                add(
                    format!("notifier.routes[{i}].severity"),
                    s.clone(),
                    "must list info, warning or critical",
                );
            }
        }
        if r.channels.is_empty() {
            add(
                format!("notifier.routes[{i}].channels"),
                String::new(),
                "must name at least one channel",
            );
        }
        for ch in &r.channels {
            if !n.channels.iter().any(|c| &c.name == ch) {
                add(
                    format!("notifier.routes[{i}].channels"),
                    ch.clone(),
                    "must name a channel defined in notifier.channels",
                );
            }
        }
    }
    out.extend(super::escalation::problems(n));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(kind: ChannelType) -> ChannelConfig {
        ChannelConfig {
            name: "c".into(),
            kind,
            url: None,
            secret: None,
            token: None,
            chat_id: None,
            phone_number_id: None,
            routing_key: None,
            to: vec![],
            topic: None,
            user_key: None,
            room_id: None,
            channel: None,
            sender: None,
            method: None,
            body_format: None,
            body: None,
            auth_header: None,
            priorities: BTreeMap::new(),
            smtp: None,
            rate_limit: 0,
            rate_limit_period: default_rate_period(),
            template: None,
            group: false,
            group_wait: Duration::ZERO,
        }
    }

    #[test]
    fn each_type_names_what_it_misses() {
        let mut n = NotifierConfig {
            channels: vec![channel(ChannelType::Telegram)],
            ..NotifierConfig::default()
        };
        let keys: Vec<String> = problems(&n).into_iter().map(|i| i.key).collect();
        assert_eq!(keys, ["notifier.channels[0].token", "notifier.channels[0].chat_id"]);
        n.channels[0].token = Some("123:abc".into());
        n.channels[0].chat_id = Some("-100".into());
        assert!(problems(&n).is_empty());
        n.routes = vec![RouteConfig {
            severity: vec!["fatal".into()],
            labels: BTreeMap::new(),
            channels: vec!["nope".into()],
            escalation: None,
        }];
        let keys: Vec<String> = problems(&n).into_iter().map(|i| i.key).collect();
        assert_eq!(keys, ["notifier.routes[0].severity", "notifier.routes[0].channels"]);
    }

    #[test]
    fn grouping_is_checked() {
        let mut pd = channel(ChannelType::Pagerduty);
        pd.routing_key = Some("key".into());
        pd.group = true;
        let mut slack = channel(ChannelType::Slack);
        slack.name = "s".into();
        slack.url = Some("https://hooks.slack.com/services/x".into());
        slack.group_wait = Duration::from_secs(5);
        let mut n = NotifierConfig {
            channels: vec![pd, slack],
            ..NotifierConfig::default()
        };
        let keys: Vec<String> = problems(&n).into_iter().map(|i| i.key).collect();
        assert_eq!(keys, ["notifier.channels[0].group", "notifier.channels[1].group_wait"]);
        n.channels[1].group = true;
        n.channels[0].group = false;
        assert!(problems(&n).is_empty());
    }

    #[test]
    fn masking_hides_secrets_and_webhook_paths() {
        let mut c = channel(ChannelType::Slack);
        c.url = Some("https://hooks.slack.com/services/T0/B0/XYZSECRET".into());
        c.mask();
        assert_eq!(c.url.as_deref(), Some("https://hooks.slack.com/***"));
        let mut t = channel(ChannelType::Telegram);
        t.url = Some("https://api.telegram.org".into());
        t.token = Some("123:abc".into());
        t.mask();
        assert_eq!(t.url.as_deref(), Some("https://api.telegram.org"));
        assert_eq!(t.token.as_deref(), Some("***"));
    }
}
