//! Matrix client-server API: `PUT <homeserver>/_matrix/client/v3/rooms/<room
//! id>/send/m.room.message/<txn id>` with `Authorization: Bearer <token>` and
//! `{"msgtype", "body", "format": "org.matrix.custom.html", "formatted_body"}`.
//! The transaction id is the delivery's idempotency key, so the homeserver
//! drops a retry of a message it already has. A firing is an `m.text`; a
//! resolve or acknowledgement an `m.notice` (clients notify less for those).
//! Success carries the new `event_id`.

use async_trait::async_trait;
use pantau_config::ChannelConfig;
use serde_json::json;

use super::{Channel, Outcome, Outgoing};

pub const HOMESERVER: &str = "https://matrix-client.matrix.org";
const MAX_BODY: usize = 16_000;

pub struct Matrix {
    http: reqwest::Client,
    base: String,
    room: String,
    token: String,
}

impl Matrix {
    pub fn new(http: reqwest::Client, c: &ChannelConfig) -> Result<Self, &'static str> {
        Ok(Self {
            http,
            base: c.url.as_deref().unwrap_or(HOMESERVER).trim_end_matches('/').to_owned(),
            room: c.room_id.clone().ok_or("room_id is required")?,
            token: c.token.clone().ok_or("token is required")?,
        })
    }

    /// The send URL of one transaction.
    pub fn send_url(&self, txn: &str) -> String {
        format!(
            "{}/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
            self.base,
            encode_segment(&self.room),
            encode_segment(txn)
        )
    }
}

/// Percent-encodes everything but letters, digits and `-._*`.
pub fn encode_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `text` as HTML: escaped, the first line bold, line breaks kept.
pub fn html(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let mut lines = escaped.lines();
    let first = lines.next().unwrap_or_default();
    let mut out = format!("<b>{first}</b>");
    for l in lines {
        out.push_str("<br>");
        out.push_str(l);
    }
    out
}

#[async_trait]
impl Channel for Matrix {
    async fn send(&self, out: Outgoing<'_>) -> Outcome {
        let text = super::chat::truncate(out.text, MAX_BODY);
        let msgtype = if out.notification.status == "firing" {
            "m.text"
        } else {
            "m.notice"
        };
        let body = json!({
            "msgtype": msgtype,
            "body": text,
            "format": "org.matrix.custom.html",
            "formatted_body": html(&text),
        });
        let req = self
            .http
            .put(self.send_url(out.idempotency_key))
            .bearer_auth(&self.token)
            .json(&body);
        let (outcome, answer) = super::send_request(req).await;
        if outcome.result.is_ok() {
            let event = serde_json::from_str::<serde_json::Value>(&answer)
                .ok()
                .and_then(|v| v.get("event_id").and_then(|e| e.as_str().map(str::to_owned)));
            if event.is_none_or(|e| e.is_empty()) {
                return Outcome::permanent(outcome.status_code, "matrix answered without an event_id");
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_encoded_in_the_path() {
        assert_eq!(encode_segment("!abc:example.org"), "%21abc%3Aexample.org");
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(html("🔴 <b> & co\nline 2"), "<b>🔴 &lt;b&gt; &amp; co</b><br>line 2");
    }
}
