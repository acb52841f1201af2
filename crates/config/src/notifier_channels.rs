//! What each channel type needs: the fields it requires, allows and forbids
//! ([`channel_problems`], each problem naming its field), the priority
//! scheme of services that have one ([`PriorityFor`], [`PriorityValue`]),
//! the SMS gateway's request options, and the catalogue of fields per type
//! that the console's channel form shows ([`ChannelType::fields`]).

use serde::{Deserialize, Serialize};

use crate::notifier::{ChannelConfig, ChannelType, SmtpTls};

/// Longest URL accepted in a channel.
pub const MAX_URL: usize = 2048;
/// Longest token, key, id or name accepted in a channel.
pub const MAX_TEXT: usize = 1024;
/// Most recipients of one channel.
pub const MAX_RECIPIENTS: usize = 100;
/// Largest SMS body template, encoded as JSON.
pub const MAX_BODY: usize = 8192;

/// The HTTP method of an SMS gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpMethod {
    #[default]
    Post,
    Put,
    /// The body's fields go in the query string.
    Get,
}

/// How an SMS gateway's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// `application/json`.
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

/// What a priority applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorityFor {
    Info,
    Warning,
    Critical,
    /// Resolves and acknowledgements.
    Resolved,
}

impl PriorityFor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
            Self::Resolved => "resolved",
        }
    }

    /// What a notification of `status` and `severity` is sent as.
    pub fn of(status: &str, severity: &str) -> Self {
        match (status, severity) {
            ("resolved" | "acknowledged", _) => Self::Resolved,
            (_, "critical") => Self::Critical,
            (_, "warning") => Self::Warning,
            _ => Self::Info,
        }
    }
}

/// A priority as written: a number or a service's name for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PriorityValue {
    Number(i64),
    Name(String),
}

impl<'de> Deserialize<'de> for PriorityValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = PriorityValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a priority: a number or a name such as high or P1")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(PriorityValue::Number(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(PriorityValue::Number)
                    .map_err(|_| E::custom("the priority is out of range"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v.chars().count() > 32 {
                    return Err(E::custom("the priority is longer than 32 characters"));
                }
                Ok(PriorityValue::Name(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

impl std::fmt::Display for PriorityValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Name(s) => f.write_str(s),
        }
    }
}

/// The priority scheme of a service: its allowed values and defaults.
struct Scheme {
    allowed: &'static str,
    names: &'static [(&'static str, i64)],
    numbers: Option<(i64, i64)>,
    /// info, warning, critical, resolved; `None` where the type has no such priority.
    defaults: [Option<i64>; 4],
}

fn scheme(kind: ChannelType) -> Option<Scheme> {
    match kind {
        ChannelType::Ntfy => Some(Scheme {
            allowed: "1–5 or min, low, default, high, max, urgent",
            names: &[
                ("min", 1),
                ("low", 2),
                ("default", 3),
                ("high", 4),
                ("max", 5),
                ("urgent", 5),
            ],
            numbers: Some((1, 5)),
            defaults: [Some(3), Some(4), Some(5), Some(2)],
        }),
        ChannelType::Gotify => Some(Scheme {
            allowed: "0–10",
            names: &[],
            numbers: Some((0, 10)),
            defaults: [Some(3), Some(5), Some(8), Some(1)],
        }),
        ChannelType::Pushover => Some(Scheme {
            allowed: "-2–2 or lowest, low, normal, high, emergency",
            names: &[
                ("lowest", -2),
                ("low", -1),
                ("normal", 0),
                ("high", 1),
                ("emergency", 2),
            ],
            numbers: Some((-2, 2)),
            defaults: [Some(0), Some(1), Some(2), Some(-1)],
        }),
        ChannelType::Opsgenie => Some(Scheme {
            allowed: "P1, P2, P3, P4 or P5 (resolves close the alert: no `resolved` priority)",
            names: &[("P1", 1), ("P2", 2), ("P3", 3), ("P4", 4), ("P5", 5)],
            numbers: None,
            defaults: [Some(5), Some(3), Some(1), None],
        }),
        _ => None,
    }
}

fn slot(p: PriorityFor) -> usize {
    match p {
        PriorityFor::Info => 0,
        PriorityFor::Warning => 1,
        PriorityFor::Critical => 2,
        PriorityFor::Resolved => 3,
    }
}

/// `v` in the scheme of `kind`, or what is allowed.
fn parse_priority(kind: ChannelType, p: PriorityFor, v: &PriorityValue) -> Result<i64, String> {
    let Some(s) = scheme(kind) else {
        return Err(format!("does not apply to a {} channel", kind.as_str()));
    };
    if s.defaults[slot(p)].is_none() {
        return Err(format!("must not be set: {}", s.allowed));
    }
    let n = match v {
        PriorityValue::Number(n) => s.numbers.filter(|(lo, hi)| (*lo..=*hi).contains(n)).map(|_| *n),
        PriorityValue::Name(name) => s
            .names
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, n)| *n)
            .or_else(|| {
                let n: i64 = name.trim().parse().ok()?;
                s.numbers.filter(|(lo, hi)| (*lo..=*hi).contains(&n)).map(|_| n)
            }),
    };
    n.ok_or_else(|| format!("must be {}", s.allowed))
}

impl ChannelConfig {
    /// The service's priority of a notification of `status` and `severity`:
    /// the configured one, else the type's default (see README). Opsgenie's
    /// are 1–5 for P1–P5. `None` for types without priorities, and for
    /// Opsgenie resolves.
    pub fn priority(&self, status: &str, severity: &str) -> Option<i64> {
        let p = PriorityFor::of(status, severity);
        let s = scheme(self.kind)?;
        self.priorities
            .get(&p)
            .and_then(|v| parse_priority(self.kind, p, v).ok())
            .or(s.defaults[slot(p)])
    }
}

/// One field of a channel type, as the console's channel form offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChannelField {
    pub name: &'static str,
    pub required: bool,
    /// Shown as `***` by the API and `config print`.
    pub secret: bool,
    pub help: &'static str,
}

const fn f(name: &'static str, required: bool, secret: bool, help: &'static str) -> ChannelField {
    ChannelField {
        name,
        required,
        secret,
        help,
    }
}

impl ChannelType {
    /// The fields this type takes, besides `name`, `type` and the common
    /// `template`, `rate_limit`, `rate_limit_period`, `group`, `group_wait`.
    pub fn fields(self) -> &'static [ChannelField] {
        match self {
            Self::Webhook => {
                const F: &[ChannelField] = &[
                    f("url", true, true, "where the JSON is posted"),
                    f("secret", false, true, "HMAC-SHA256 key of X-Pantau-Signature"),
                ];
                F
            }
            Self::Slack => {
                const F: &[ChannelField] = &[f("url", true, true, "incoming webhook URL")];
                F
            }
            Self::Discord => {
                const F: &[ChannelField] = &[f("url", true, true, "webhook URL")];
                F
            }
            Self::Teams => {
                const F: &[ChannelField] = &[f("url", true, true, "incoming webhook or Workflows URL")];
                F
            }
            Self::Telegram => {
                const F: &[ChannelField] = &[
                    f("token", true, true, "bot token"),
                    f("chat_id", true, false, "chat id, e.g. -1001234567890"),
                    f("url", false, false, "API base, default https://api.telegram.org"),
                ];
                F
            }
            Self::Whatsapp => {
                const F: &[ChannelField] = &[
                    f("token", true, true, "Cloud API access token"),
                    f("phone_number_id", true, false, "sender phone number id"),
                    f("to", true, false, "recipient numbers, one message each"),
                    f(
                        "url",
                        false,
                        false,
                        "API base, default https://graph.facebook.com/v21.0",
                    ),
                ];
                F
            }
            Self::WhatsappGateway => {
                const F: &[ChannelField] = &[
                    f("url", true, true, "gateway URL receiving {\"to\", \"message\"}"),
                    f("to", true, false, "recipient numbers, one message each"),
                    f("token", false, true, "bearer token"),
                ];
                F
            }
            Self::Pagerduty => {
                const F: &[ChannelField] = &[
                    f("routing_key", true, true, "Events API v2 integration key"),
                    f("url", false, false, "API base, default https://events.pagerduty.com"),
                ];
                F
            }
            Self::Email => {
                const F: &[ChannelField] = &[
                    f(
                        "smtp",
                        true,
                        false,
                        "SMTP server: host, port, tls, username, password, from",
                    ),
                    f("to", true, false, "email addresses"),
                ];
                F
            }
            Self::Ntfy => {
                const F: &[ChannelField] = &[
                    f(
                        "topic",
                        true,
                        true,
                        "topic (on a public server, the topic is the password)",
                    ),
                    f("token", false, true, "access token (tk_…) of a protected topic"),
                    f("url", false, false, "server, default https://ntfy.sh"),
                    f("priorities", false, false, "1–5 per info, warning, critical, resolved"),
                ];
                F
            }
            Self::Gotify => {
                const F: &[ChannelField] = &[
                    f("url", true, false, "Gotify server"),
                    f("token", true, true, "application token"),
                    f("priorities", false, false, "0–10 per info, warning, critical, resolved"),
                ];
                F
            }
            Self::Pushover => {
                const F: &[ChannelField] = &[
                    f("token", true, true, "application API token (30 characters)"),
                    f("user_key", true, true, "user or group key (30 characters)"),
                    f("url", false, false, "API base, default https://api.pushover.net"),
                    f("priorities", false, false, "-2–2 per info, warning, critical, resolved"),
                ];
                F
            }
            Self::Matrix => {
                const F: &[ChannelField] = &[
                    f("room_id", true, false, "room id, e.g. !abcdef:example.org"),
                    f("token", true, true, "access token of the sending user"),
                    f(
                        "url",
                        false,
                        false,
                        "homeserver, default https://matrix-client.matrix.org",
                    ),
                ];
                F
            }
            Self::Mattermost => {
                const F: &[ChannelField] = &[
                    f("url", true, true, "incoming webhook URL"),
                    f("channel", false, false, "channel to post in instead of the webhook's"),
                ];
                F
            }
            Self::GoogleChat => {
                const F: &[ChannelField] = &[f("url", true, true, "space webhook URL (with key and token)")];
                F
            }
            Self::Opsgenie => {
                const F: &[ChannelField] = &[
                    f("token", true, true, "API key of an API integration (GenieKey)"),
                    f(
                        "url",
                        false,
                        false,
                        "API base, default https://api.opsgenie.com (EU: https://api.eu.opsgenie.com)",
                    ),
                    f("priorities", false, false, "P1–P5 per info, warning, critical"),
                ];
                F
            }
            Self::Rocketchat => {
                const F: &[ChannelField] = &[
                    f("url", true, true, "incoming webhook URL"),
                    f(
                        "channel",
                        false,
                        false,
                        "channel (#ops) or user (@alice) instead of the webhook's",
                    ),
                ];
                F
            }
            Self::Signal => {
                const F: &[ChannelField] = &[
                    f("url", true, false, "signal-cli REST API server"),
                    f(
                        "sender",
                        true,
                        false,
                        "registered number that sends, e.g. +628111234567",
                    ),
                    f("to", true, false, "numbers or group ids (group.…), one message each"),
                ];
                F
            }
            Self::Sms => {
                const F: &[ChannelField] = &[
                    f("url", true, true, "gateway URL"),
                    f("to", true, false, "phone numbers, one message each"),
                    f("method", false, false, "post (default), put or get"),
                    f("body_format", false, false, "json (default) or form"),
                    f("body", false, true, "fields, templates with {{ to }} and {{ message }}"),
                    f("auth_header", false, true, "one header, Name: value"),
                ];
                F
            }
        }
    }
}

fn http_url_ok(u: &str) -> bool {
    crate::types::check_http_url(u).is_ok()
}

fn is_e164(s: &str) -> bool {
    let Some(d) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
}

fn no_space(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// RFC 9110 token characters: a header name.
fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A text field worth checking further: set, not blank, not too long.
fn set(v: Option<&String>) -> Option<&str> {
    v.map(String::as_str)
        .filter(|s| !s.trim().is_empty() && s.chars().count() <= MAX_TEXT)
}

/// Every problem of one channel as (field, what is wrong).
pub(crate) fn channel_problems(c: &ChannelConfig) -> Vec<(String, String)> {
    use ChannelType as T;
    let mut p: Vec<(String, String)> = Vec::new();
    let t = c.kind.as_str();
    let fields = c.kind.fields();
    let takes = |name: &str| fields.iter().any(|f| f.name == name);
    let needs = |name: &str| fields.iter().any(|f| f.name == name && f.required);
    match &c.url {
        None if needs("url") => p.push(("url".into(), format!("is required for a {t} channel"))),
        Some(_) if !takes("url") => p.push(("url".into(), format!("does not apply to a {t} channel"))),
        Some(u) if u.len() > MAX_URL => p.push(("url".into(), format!("must be at most {MAX_URL} characters"))),
        Some(u) if !http_url_ok(u) => p.push(("url".into(), "must be an absolute http:// or https:// URL".into())),
        _ => {}
    }
    let texts: [(&str, &Option<String>); 11] = [
        ("secret", &c.secret),
        ("token", &c.token),
        ("chat_id", &c.chat_id),
        ("phone_number_id", &c.phone_number_id),
        ("routing_key", &c.routing_key),
        ("topic", &c.topic),
        ("user_key", &c.user_key),
        ("room_id", &c.room_id),
        ("channel", &c.channel),
        ("sender", &c.sender),
        ("auth_header", &c.auth_header),
    ];
    for (field, value) in texts {
        match value {
            None if needs(field) => p.push((field.into(), format!("is required for a {t} channel"))),
            Some(_) if !takes(field) => p.push((field.into(), format!("does not apply to a {t} channel"))),
            Some(v) if v.trim().is_empty() => p.push((field.into(), "must not be empty".into())),
            Some(v) if v.chars().count() > MAX_TEXT => {
                p.push((field.into(), format!("must be at most {MAX_TEXT} characters")));
            }
            _ => {}
        }
    }
    if c.to.is_empty() && needs("to") {
        p.push(("to".into(), format!("is required for a {t} channel")));
    } else if !c.to.is_empty() && !takes("to") {
        p.push(("to".into(), format!("does not apply to a {t} channel")));
    } else if c.to.len() > MAX_RECIPIENTS {
        p.push(("to".into(), format!("must list at most {MAX_RECIPIENTS} recipients")));
    } else if c.to.iter().any(|a| a.trim().is_empty() || a.chars().count() > 254) {
        p.push(("to".into(), "must list recipients of 1–254 characters".into()));
    }
    for (field, present) in [
        ("smtp", c.smtp.is_some()),
        ("method", c.method.is_some()),
        ("body_format", c.body_format.is_some()),
        ("body", c.body.is_some()),
        ("priorities", !c.priorities.is_empty()),
    ] {
        if !present && needs(field) {
            p.push((field.into(), format!("is required for a {t} channel")));
        } else if present && !takes(field) {
            p.push((field.into(), format!("does not apply to a {t} channel")));
        }
    }
    if scheme(c.kind).is_some() {
        for (k, v) in &c.priorities {
            if let Err(why) = parse_priority(c.kind, *k, v) {
                p.push((format!("priorities.{}", k.as_str()), why));
            }
        }
    }
    match c.kind {
        T::Email => email_problems(c, &mut p),
        T::Ntfy => {
            if let Some(topic) = set(c.topic.as_ref())
                && (topic.len() > 64
                    || !topic
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            {
                p.push((
                    "topic".into(),
                    "must be 1–64 characters of letters, digits, `-` or `_`".into(),
                ));
            }
        }
        T::Pushover => {
            for (field, v) in [("token", &c.token), ("user_key", &c.user_key)] {
                if let Some(v) = set(v.as_ref())
                    && (v.len() != 30 || !v.bytes().all(|b| b.is_ascii_alphanumeric()))
                {
                    p.push((
                        field.into(),
                        "must be 30 letters and digits, as Pushover issues it".into(),
                    ));
                }
            }
        }
        T::Matrix => {
            if let Some(room) = set(c.room_id.as_ref())
                && (!room.starts_with('!') || room.len() < 2 || room.len() > 255 || !no_space(room))
            {
                p.push((
                    "room_id".into(),
                    "must be a room id such as !abcdef:example.org (not an #alias)".into(),
                ));
            }
        }
        T::Mattermost | T::Rocketchat => {
            if let Some(ch) = set(c.channel.as_ref())
                && (ch.chars().count() > 128 || !no_space(ch))
            {
                p.push(("channel".into(), "must be 1–128 characters without spaces".into()));
            }
        }
        T::Signal => {
            if let Some(s) = set(c.sender.as_ref())
                && !is_e164(s)
            {
                p.push((
                    "sender".into(),
                    "must be a number in E.164 form such as +628111234567".into(),
                ));
            }
            if c.to
                .iter()
                .any(|r| !(is_e164(r) || (r.starts_with("group.") && r.len() > 6 && no_space(r))))
            {
                p.push((
                    "to".into(),
                    "must list numbers in E.164 form (+628111234567) or group ids (group.…)".into(),
                ));
            }
        }
        T::Sms => sms_problems(c, &mut p),
        T::Opsgenie if c.group => p.push((
            "group".into(),
            "must be false for opsgenie: each alert needs its own alias".into(),
        )),
        _ => {}
    }
    p
}

fn email_problems(c: &ChannelConfig, p: &mut Vec<(String, String)>) {
    for a in &c.to {
        if !a.contains('@') {
            p.push(("to".into(), "must list email addresses such as ops@example.org".into()));
            break;
        }
    }
    if let Some(s) = &c.smtp {
        if s.host.trim().is_empty() {
            p.push(("smtp.host".into(), "must name the SMTP server".into()));
        }
        if !s.from.contains('@') {
            p.push((
                "smtp.from".into(),
                "must be an address such as `Pantau <pantau@example.org>`".into(),
            ));
        }
        if s.ca_file.is_some() && s.tls == SmtpTls::None {
            p.push(("smtp.ca_file".into(), "applies to tls: starttls or tls only".into()));
        }
        if s.username.is_some() != s.password.is_some() {
            p.push((
                "smtp.password".into(),
                "smtp.username and smtp.password go together".into(),
            ));
        }
    }
}

/// Whether any text in `v` uses the template variable `name`.
fn uses(v: &serde_json::Value, name: &str) -> bool {
    match v {
        serde_json::Value::String(s) => s
            .split("{{")
            .skip(1)
            .any(|part| part.split("}}").next().is_some_and(|expr| expr.contains(name))),
        serde_json::Value::Array(a) => a.iter().any(|x| uses(x, name)),
        serde_json::Value::Object(m) => m.values().any(|x| uses(x, name)),
        _ => false,
    }
}

fn sms_problems(c: &ChannelConfig, p: &mut Vec<(String, String)>) {
    if c.to.iter().any(|r| {
        let d = r.strip_prefix('+').unwrap_or(r);
        !(3..=20).contains(&d.len()) || !d.bytes().all(|b| b.is_ascii_digit())
    }) {
        p.push((
            "to".into(),
            "must list phone numbers: 3–20 digits, optionally after +".into(),
        ));
    }
    let flat = c.method == Some(HttpMethod::Get) || c.body_format == Some(BodyFormat::Form);
    if c.method == Some(HttpMethod::Get) && c.body_format == Some(BodyFormat::Json) {
        p.push((
            "body_format".into(),
            "must be form (or unset) with method: get: the fields go in the query string".into(),
        ));
    }
    if let Some(body) = &c.body {
        let whole = serde_json::Value::Object(body.clone());
        if body.is_empty() {
            p.push(("body".into(), "must have at least one field".into()));
        } else if whole.to_string().len() > MAX_BODY {
            p.push(("body".into(), format!("must be at most {MAX_BODY} bytes as JSON")));
        } else {
            if flat {
                for (k, v) in body {
                    if v.is_object() || v.is_array() || v.is_null() {
                        p.push((
                            format!("body.{k}"),
                            "must be text, a number or a boolean: form and query fields are flat".into(),
                        ));
                    }
                }
            }
            if !uses(&whole, "to") {
                p.push(("body".into(), "must use {{ to }} in one of its fields".into()));
            }
            if !uses(&whole, "message") && !uses(&whole, "title") {
                p.push((
                    "body".into(),
                    "must use {{ message }} (or {{ title }}) in one of its fields".into(),
                ));
            }
        }
    }
    if let Some(h) = c.auth_header.as_deref().filter(|h| h.chars().count() <= MAX_TEXT) {
        let ok = h.split_once(':').is_some_and(|(name, value)| {
            is_header_name(name.trim_end())
                && !value.trim().is_empty()
                && value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        });
        if !ok {
            p.push((
                "auth_header".into(),
                "must be `Name: value`, e.g. `Authorization: Basic …`, in visible ASCII".into(),
            ));
        }
    }
}

#[cfg(test)]
#[path = "notifier_channels_tests.rs"]
mod tests;
