//! `websocket`: open a WebSocket (`ws://` or `wss://`), optionally send one
//! text message and expect the answer to contain a text or match a regex.

use std::collections::BTreeMap;

use super::parse::{Problems, tls_files};
use super::{CheckType, RawTarget, TargetSpec, TlsFiles, is_secret_header};
use crate::types::{Pattern, quote};

/// Headers a handshake may not set: the WebSocket client writes them.
const OWN_HEADERS: &[&str] = &[
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
];

/// A `ws://` or `wss://` URL naming a host, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl(url::Url);

impl WsUrl {
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the URL is `wss://`.
    pub fn is_tls(&self) -> bool {
        self.0.scheme() == "wss"
    }

    /// The same URL with its password, if any, replaced by `***`.
    #[must_use]
    pub fn masked(&self) -> Self {
        let mut u = self.0.clone();
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
        }
        Self(u)
    }
}

impl std::str::FromStr for WsUrl {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = url::Url::parse(s).map_err(|_| "must be an absolute ws:// or wss:// URL")?;
        if !matches!(url.scheme(), "ws" | "wss") {
            return Err("must be an absolute ws:// or wss:// URL");
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must name a host");
        }
        if url.fragment().is_some() {
            return Err("must not have a #fragment");
        }
        Ok(Self(url))
    }
}

impl std::fmt::Display for WsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A WebSocket check. Its `Debug` masks credential headers and a URL password.
#[derive(Clone, PartialEq)]
pub struct WebSocketTarget {
    pub url: WsUrl,
    /// Extra handshake headers (`Authorization`, `Origin`, …).
    pub headers: BTreeMap<String, String>,
    /// One text message sent once the socket is open.
    pub send: Option<String>,
    /// The first message received must contain this.
    pub expect: Option<String>,
    /// The first message received must match this (case-insensitive) regex.
    pub expect_matches: Option<Pattern>,
    /// `wss://` only: verify the chain and name; true when unset.
    pub verify_tls: Option<bool>,
    /// `wss://` only.
    pub tls: TlsFiles,
}

impl std::fmt::Debug for WebSocketTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), if is_secret_header(k) { "***" } else { v.as_str() }))
            .collect();
        f.debug_struct("WebSocketTarget")
            .field("url", &self.url.masked().as_str())
            .field("headers", &headers)
            .field("send", &self.send)
            .field("expect", &self.expect)
            .field("expect_matches", &self.expect_matches.as_ref().map(Pattern::as_str))
            .field("verify_tls", &self.verify_tls)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Fields a `websocket` target takes.
pub(super) const FIELDS: &[&str] = &[
    "url",
    "headers",
    "send",
    "expect",
    "expect_matches",
    "verify_tls",
    "ca_file",
    "client_cert",
    "client_key",
];

/// The typed spec of a `websocket` target, or `None` with the problems added.
pub(super) fn parse(r: &RawTarget, p: &mut Problems<'_>) -> Option<TargetSpec> {
    for (name, value) in &r.headers {
        let lower = name.to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            p.add("headers", name, "must be header names of visible ASCII without `:`");
        } else if OWN_HEADERS.contains(&lower.as_str()) {
            p.add(
                "headers",
                name,
                "is written by the WebSocket handshake itself; leave it out",
            );
        } else if value.chars().any(|c| c.is_control() && c != '\t') {
            p.add(
                &format!("headers.{}", quote(name)),
                "***",
                "must not hold control characters",
            );
        }
    }
    if r.send.as_deref() == Some("") {
        p.add("send", "", "must not be empty: leave it out to send nothing");
    }
    if r.expect.as_deref() == Some("") {
        p.add("expect", "", "must not be empty: leave it out to accept any answer");
    }
    let expect_matches = r.expect_matches.as_deref().and_then(|m| {
        if m.len() > crate::types::limits::PAYLOAD {
            p.add(
                "expect_matches",
                m,
                format!("must be at most {} bytes", crate::types::limits::PAYLOAD),
            );
            return None;
        }
        Pattern::new(m)
            .map_err(|e| p.add("expect_matches", m, format!("must be a regular expression: {e}")))
            .ok()
    });
    let url = p.required(r.url.as_deref(), CheckType::Websocket, "url", ", ws:// or wss://")?;
    let url = url.parse::<WsUrl>().map_err(|why| p.add("url", url, why)).ok();
    if let Some(u) = &url
        && !u.is_tls()
    {
        for (field, set) in [
            ("verify_tls", r.verify_tls.is_some()),
            ("ca_file", r.ca_file.is_some()),
            ("client_cert", r.client_cert.is_some()),
        ] {
            if set {
                p.add(field, "", "applies only to a wss:// URL");
            }
        }
    }
    let tls = tls_files(r, p)?;
    Some(TargetSpec::Websocket(Box::new(WebSocketTarget {
        url: url?,
        headers: r.headers.clone(),
        send: r.send.clone(),
        expect: r.expect.clone(),
        expect_matches,
        verify_tls: r.verify_tls,
        tls,
    })))
}

/// Sets the raw fields of `x`.
pub(super) fn to_raw(x: WebSocketTarget, r: &mut RawTarget) {
    r.url = Some(x.url.as_str().to_owned());
    r.headers = x.headers;
    r.send = x.send;
    r.expect = x.expect;
    r.expect_matches = x.expect_matches.map(String::from);
    r.verify_tls = x.verify_tls;
    r.set_tls(x.tls);
}

#[cfg(test)]
mod tests {
    use super::super::refused;
    use crate::{CheckType, CollectorConfig, RawTarget, TargetSpec};

    fn ws() -> RawTarget {
        let mut r = RawTarget::new("w", CheckType::Websocket);
        r.url = Some("ws://127.0.0.1:9000/echo".into());
        r
    }

    #[test]
    fn a_websocket_target_parses_round_trips_and_masks_credentials() {
        let mut r = ws();
        r.url = Some("wss://user:s3cret@example.org/live?x=1".into());
        r.headers.insert("Authorization".into(), "Bearer t0ken".into());
        r.headers.insert("Origin".into(), "https://example.org".into());
        r.send = Some("ping".into());
        r.expect = Some("pong".into());
        r.expect_matches = Some("^p[o]ng$".into());
        r.verify_tls = Some(false);
        let t = r.clone().parse("t").unwrap();
        let TargetSpec::Websocket(w) = &t.spec else {
            panic!("{t:?}")
        };
        assert!(w.url.is_tls());
        assert!(w.expect_matches.as_ref().unwrap().is_match("PONG"));
        assert_eq!(RawTarget::from(t.clone()), r);
        let shown = format!("{t:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("t0ken"), "{shown}");
        let mut c = CollectorConfig {
            targets: vec![t.into()],
            ..CollectorConfig::default()
        };
        c.mask();
        let TargetSpec::Websocket(w) = &c.targets[0].spec else {
            panic!()
        };
        assert_eq!(w.headers["Authorization"], "***");
        assert_eq!(w.headers["Origin"], "https://example.org");
        assert!(!w.url.as_str().contains("s3cret"), "{}", w.url);
    }

    #[test]
    fn a_bad_websocket_target_is_refused_naming_the_field() {
        let cases: [(fn(&mut RawTarget), &str); 13] = [
            (|r| r.url = None, "t.url"),
            (|r| r.url = Some("http://example.org/".into()), "t.url"),
            (|r| r.url = Some("ws://".into()), "t.url"),
            (|r| r.url = Some("ws://h/#frag".into()), "t.url"),
            (|r| r.url = Some("\u{0}garbage".into()), "t.url"),
            (|r| r.send = Some(String::new()), "t.send"),
            (|r| r.send = Some("x".repeat(5000)), "t.send"),
            (|r| r.expect = Some(String::new()), "t.expect"),
            (|r| r.expect_matches = Some("(unclosed".into()), "t.expect_matches"),
            (|r| r.verify_tls = Some(false), "t.verify_tls"),
            (
                |r| {
                    r.headers.insert("Sec-WebSocket-Key".into(), "x".into());
                },
                "t.headers",
            ),
            (
                |r| {
                    r.headers.insert("X-A".into(), "a\r\nInjected: 1".into());
                },
                "t.headers.X-A",
            ),
            (|r| r.address = Some("h:1".into()), "t.address"),
        ];
        for (edit, key) in cases {
            let mut r = ws();
            edit(&mut r);
            let e = refused(r);
            assert!(e.contains(key), "{key}: {e}");
            assert!(!e.contains("Injected"), "a header value is never quoted: {e}");
        }
    }
}
