//! WebSocket: connect (TCP, then TLS for `wss://` with what the `tls` check
//! trusts), the HTTP/1.1 upgrade handshake with tokio-tungstenite, then
//! optionally one text message sent and the first message received compared
//! with `expect` and `expect_matches`. Messages and frames are bounded
//! ([`MAX_MESSAGE`]); the server's words are cut and quoted in results.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use pantau_config::types::Pattern;
use pantau_proto::v1::{FailureReason, ProbeDetail, check_result::Detail};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Request};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{Outcome, tcp, trust};

/// Largest message (and frame) a check accepts from a server.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Longest part of a server's text put in a message or the metadata.
const MAX_SHOWN: usize = 100;

/// A compiled `websocket` target.
#[derive(Clone)]
pub struct WebSocketSpec {
    /// The URL as configured (password included), for the handshake.
    url: String,
    /// The URL with its password masked, for messages.
    pub shown_url: String,
    /// `host:port` to connect to.
    pub address: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    pub send: Option<String>,
    pub expect: Option<String>,
    pub expect_matches: Option<Pattern>,
    /// The connector and server name, for `wss://`.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for WebSocketSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketSpec")
            .field("url", &self.shown_url)
            .field("headers", &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("send", &self.send)
            .field("expect", &self.expect)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl WebSocketSpec {
    /// Compiles `w`; an error names the field (`headers`, `ca_file`, …).
    pub fn new(w: &pantau_config::WebSocketTarget) -> Result<Self, (String, String)> {
        let url = w.url.as_url();
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url
            .port_or_known_default()
            .unwrap_or(if w.url.is_tls() { 443 } else { 80 });
        let address = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut headers = Vec::with_capacity(w.headers.len());
        for (k, v) in &w.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| ("headers".to_owned(), format!("`{k}` is not a header name: {e}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|e| (format!("headers.{k}"), format!("is not a header value: {e}")))?;
            headers.push((name, value));
        }
        let tls = if w.url.is_tls() {
            let config = trust::client_config(&w.tls, w.verify_tls.unwrap_or(true), false)
                .map_err(|e| (super::super::target::tls_key(&e).to_owned(), e))?;
            let bare = host.trim_start_matches('[').trim_end_matches(']').to_owned();
            let name = ServerName::try_from(bare.clone())
                .map_err(|e| ("url".to_owned(), format!("`{bare}` is not a TLS server name: {e}")))?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Self {
            url: w.url.as_str().to_owned(),
            shown_url: w.url.masked().as_str().to_owned(),
            address,
            headers,
            send: w.send.clone(),
            expect: w.expect.clone(),
            expect_matches: w.expect_matches.clone(),
            tls,
        })
    }

    fn request(&self) -> Result<Request<()>, WsError> {
        let mut request = self.url.as_str().into_client_request()?;
        for (name, value) in &self.headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        Ok(request)
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// `text` cut to [`MAX_SHOWN`] characters, control characters replaced, and
/// its full length when it was cut.
fn shown(text: &str) -> String {
    let cut: String = text
        .chars()
        .take(MAX_SHOWN)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > MAX_SHOWN {
        format!("{cut}… ({} bytes)", text.len())
    } else {
        cut
    }
}

/// Runs the check of `spec`; the caller bounds the time.
pub async fn check(spec: &WebSocketSpec, started: Instant) -> Outcome {
    let url = &spec.shown_url;
    let stream = match tcp::connect(&spec.address, started).await {
        Ok(s) => s,
        Err(down) => return down,
    };
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let io: Box<dyn Io> = match &spec.tls {
        None => Box::new(stream),
        Some((connector, name)) => match connector.connect(name.clone(), stream).await {
            Ok(s) => Box::new(s),
            Err(e) => {
                let why = trust::refusal(&e).unwrap_or_else(|| e.to_string());
                return Outcome::down(
                    started.elapsed(),
                    FailureReason::Tls,
                    format!("TLS handshake with {} failed: {why}", spec.address),
                );
            }
        },
    };
    let request = match spec.request() {
        Ok(r) => r,
        Err(e) => {
            return Outcome::down(
                started.elapsed(),
                FailureReason::Internal,
                format!("cannot make the handshake request for {url}: {e}"),
            );
        }
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let (mut ws, response) = match tokio_tungstenite::client_async_with_config(request, io, Some(config)).await {
        Ok(x) => x,
        Err(e) => return handshake_down(started, url, e),
    };
    let handshake = started.elapsed();
    let mut metadata = HashMap::from([("status".to_owned(), response.status().as_u16().to_string())]);
    for (header, key) in [("sec-websocket-protocol", "subprotocol"), ("server", "server")] {
        if let Some(v) = response.headers().get(header).and_then(|v| v.to_str().ok()) {
            metadata.insert(key.to_owned(), shown(v));
        }
    }
    if spec.send.is_none() && spec.expect.is_none() && spec.expect_matches.is_none() {
        let _ = ws.close(None).await;
        return Outcome::up(handshake, Some(probe(peer, metadata)));
    }
    if let Some(text) = &spec.send
        && let Err(e) = ws.send(Message::text(text.clone())).await
    {
        return Outcome::down(
            started.elapsed(),
            FailureReason::Connect,
            format!("sending to {url} failed: {e}"),
        )
        .with_detail(probe(peer, metadata));
    }
    let reply = loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => break t.as_str().to_owned(),
            Some(Ok(Message::Binary(b))) => break String::from_utf8_lossy(&b).into_owned(),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Ok(Message::Close(frame))) => {
                let why = frame.map_or_else(
                    || "no close code".to_owned(),
                    |f| format!("close code {}: {:?}", u16::from(f.code), shown(&f.reason)),
                );
                return Outcome::down(
                    started.elapsed(),
                    FailureReason::Protocol,
                    format!("{url} closed the socket before answering ({why})"),
                )
                .with_detail(probe(peer, metadata));
            }
            None => {
                return Outcome::down(
                    started.elapsed(),
                    FailureReason::Protocol,
                    format!("{url} closed the connection before answering"),
                )
                .with_detail(probe(peer, metadata));
            }
            Some(Err(e)) => {
                let (reason, what) = match &e {
                    WsError::Io(_) | WsError::ConnectionClosed | WsError::AlreadyClosed => {
                        (FailureReason::Connect, "the connection failed")
                    }
                    _ => (FailureReason::Protocol, "it broke the WebSocket protocol"),
                };
                return Outcome::down(
                    started.elapsed(),
                    reason,
                    format!("reading from {url} failed, {what}: {}", shown(&e.to_string())),
                )
                .with_detail(probe(peer, metadata));
            }
        }
    };
    let latency = started.elapsed();
    let _ = ws.close(None).await;
    metadata.insert("reply".to_owned(), shown(&reply));
    metadata.insert("reply_bytes".to_owned(), reply.len().to_string());
    metadata.insert("handshake_ms".to_owned(), handshake.as_millis().to_string());
    let detail = probe(peer, metadata);
    if let Some(want) = &spec.expect
        && !reply.contains(want.as_str())
    {
        return Outcome::down(
            latency,
            FailureReason::Assertion,
            format!(
                "{url} answered {:?}, which lacks the expected {:?}",
                shown(&reply),
                shown(want)
            ),
        )
        .with_detail(detail);
    }
    if let Some(pattern) = &spec.expect_matches
        && !pattern.is_match(&reply)
    {
        return Outcome::down(
            latency,
            FailureReason::Assertion,
            format!(
                "{url} answered {:?}, which does not match /{}/",
                shown(&reply),
                shown(pattern.as_str())
            ),
        )
        .with_detail(detail);
    }
    Outcome::up(latency, Some(detail))
}

fn probe(peer: String, metadata: HashMap<String, String>) -> Detail {
    Detail::Probe(ProbeDetail {
        peer,
        metadata,
        certificate: None,
    })
}

/// The down outcome of a failed upgrade handshake.
fn handshake_down(started: Instant, url: &str, e: WsError) -> Outcome {
    let (reason, message) = match e {
        WsError::Http(response) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(|b| format!(": {:?}", shown(&String::from_utf8_lossy(b))))
                .unwrap_or_default();
            (
                FailureReason::HttpStatus,
                format!(
                    "{url} refused the WebSocket handshake with HTTP {}{body}",
                    status.as_u16()
                ),
            )
        }
        WsError::Io(e) => (
            FailureReason::Connect,
            format!("the WebSocket handshake with {url} failed: {e}"),
        ),
        WsError::ConnectionClosed | WsError::AlreadyClosed => (
            FailureReason::Protocol,
            format!("{url} closed the connection during the WebSocket handshake"),
        ),
        other => (
            FailureReason::Protocol,
            format!(
                "{url} did not complete a WebSocket handshake: {}",
                shown(&other.to_string())
            ),
        ),
    };
    Outcome::down(started.elapsed(), reason, message)
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn server_text_is_cut_and_cleaned() {
        assert_eq!(shown("a\r\nb"), "a??b");
        let long = "x".repeat(500);
        let s = shown(&long);
        assert!(s.starts_with(&"x".repeat(100)) && s.ends_with("(500 bytes)"), "{s}");
    }
}
