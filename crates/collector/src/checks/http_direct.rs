//! Plain-HTTP checks on a new connection (`reuse_connection: false`), without
//! reqwest: hyper-util's connector (the system resolver, as reqwest's, and
//! happy eyeballs between address families; `TCP_NODELAY`) and one HTTP/1.1
//! connection driven in the check's own task, then dropped.
//!
//! reqwest would put the same request through its connector layers, a pool
//! that keeps nothing, and a task spawned per connection; at saturation those
//! cost as much CPU as the kernel's connect and close. What the check sends
//! and what it reports are reqwest's: the same headers (`user-agent`,
//! `accept: */*`, `host`, the location's and the target's own), the same
//! reasons and messages for a failure (see [`super::http::classify_chain`]).
//!
//! Taken only where nothing reqwest adds applies ([`Direct::uri`]): an `http://`
//! URL without credentials, the shared clients (no TLS files, proxy or fixed
//! addresses of the target's own), no proxy in the environment, and, when
//! redirects are followed, a GET or HEAD: a redirect answer is then handed to
//! reqwest, which asks again and follows it (a safe method may be asked twice).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use std::net::{IpAddr, SocketAddr};
use tower::Service;

use super::http_conn::Conn;

use super::http::{Answer, MAX_BODY};

/// What failed, before or after the answer's head.
#[derive(Debug)]
pub enum Failure {
    /// Connecting, sending or reading the head.
    Request(Box<dyn std::error::Error + Send + Sync>),
    /// Reading the body.
    Body(hyper::Error),
}

/// The connector and whether the path may be taken at all.
#[derive(Clone)]
pub struct Direct {
    connector: HttpConnector,
    /// `false` when a proxy variable is set: reqwest's shared clients
    /// honour `http_proxy` and `all_proxy`, so their checks go through it.
    enabled: bool,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// The variables through which reqwest's shared clients find a proxy for an
/// `http://` URL.
const PROXY_VARIABLES: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];

impl Direct {
    /// Enabled unless the environment names a proxy for `http://` URLs.
    pub fn from_env() -> Self {
        let proxied = PROXY_VARIABLES
            .iter()
            .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()));
        Self::with(!proxied)
    }

    fn with(enabled: bool) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        // No timer of its own: the check's timeout bounds the whole request.
        connector.set_connect_timeout(None);
        Self { connector, enabled }
    }

    /// The URL as hyper takes it, when the direct path may carry this check:
    /// `http://`, no credentials, no client of the target's own, a new
    /// connection each time, and a safe method if redirects are followed.
    pub fn uri(&self, url: &str, reuse: bool, own_client: bool, follow: bool, method: &Method) -> Option<Uri> {
        if !self.enabled || reuse || own_client || (follow && *method != Method::GET && *method != Method::HEAD) {
            return None;
        }
        let uri: Uri = url.parse().ok()?;
        let plain = uri.scheme_str() == Some("http") && uri.authority().is_some_and(|a| !a.as_str().contains('@'));
        plain.then_some(uri)
    }

    /// Sends `method` to `uri` with `headers` (to which the host is added)
    /// and `body` on a new connection; the answer's body is read up to
    /// [`MAX_BODY`]. The connection is closed when this returns.
    pub async fn request(
        &self,
        uri: Uri,
        method: Method,
        mut headers: HeaderMap,
        body: Option<&str>,
    ) -> Result<Answer, Failure> {
        let Some(authority) = uri.authority().cloned() else {
            return Err(Failure::Request("the URL has no host".into()));
        };
        if !headers.contains_key(header::HOST) {
            let host = HeaderValue::from_str(authority.as_str()).map_err(|e| Failure::Request(Box::new(e)))?;
            headers.insert(header::HOST, host);
        }
        let target = uri.path_and_query().map_or("/", hyper::http::uri::PathAndQuery::as_str);
        let mut request = Request::new(Full::new(
            body.map_or_else(Bytes::new, |b| Bytes::copy_from_slice(b.as_bytes())),
        ));
        *request.method_mut() = method;
        *request.uri_mut() = target
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| Failure::Request(Box::new(e)))?;
        *request.headers_mut() = headers;

        let io = self.connect(uri).await.map_err(Failure::Request)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io)
            .await
            .map_err(|e| Failure::Request(Box::new(e)))?;
        let exchange = async move {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| Failure::Request(Box::new(e)))?;
            let (head, mut incoming) = response.into_parts();
            let mut body = Vec::new();
            let mut body_bytes: u64 = 0;
            while let Some(frame) = incoming.frame().await {
                let frame = frame.map_err(Failure::Body)?;
                // As reqwest's path reads: the chunk past the limit is
                // counted, then reading stops.
                if let Ok(chunk) = frame.into_data() {
                    body_bytes += chunk.len() as u64;
                    if body.len() < MAX_BODY {
                        body.extend_from_slice(&chunk[..chunk.len().min(MAX_BODY - body.len())]);
                    } else {
                        break;
                    }
                }
            }
            Ok(Answer {
                status: head.status,
                version: head.version,
                certificate: None,
                headers: head.headers,
                body,
                body_bytes,
            })
        };
        // The connection is driven here, not in a task of its own; once the
        // exchange ends it is dropped, which closes the socket.
        let exchange = std::pin::pin!(exchange);
        match futures::future::select(exchange, conn).await {
            futures::future::Either::Left((answer, _conn)) => answer,
            // A connection that ends first has handed its error to the
            // exchange, which now ends too.
            futures::future::Either::Right((_, exchange)) => exchange.await,
        }
    }
}

impl Direct {
    /// A connection to `uri`'s host: an address in the URL is connected to
    /// at once, by [`Conn::eager`] (a socket made non-blocking at creation, two
    /// `fcntl` calls fewer than the connector's, written before the reactor
    /// reports it writable); a name goes through the connector, which
    /// resolves it.
    async fn connect(&self, uri: Uri) -> Result<Conn, Box<dyn std::error::Error + Send + Sync>> {
        let host = uri.host().unwrap_or_default();
        let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>();
        let Ok(ip) = literal else {
            return Ok(Conn::resolved(self.connector.clone().call(uri).await?)?);
        };
        Ok(Conn::eager(SocketAddr::new(ip, uri.port_u16().unwrap_or(80)))?)
    }
}

/// Whether reqwest would follow this answer: a redirect status with a
/// `location`.
pub fn is_followed_redirect(a: &Answer) -> bool {
    matches!(
        a.status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    ) && a.headers.contains_key(header::LOCATION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_without_credentials_or_own_client_goes_direct() {
        let d = Direct::with(true);
        let get = Method::GET;
        assert!(d.uri("http://127.0.0.1:8080/x?y=1", false, false, true, &get).is_some());
        assert!(
            d.uri("http://example.test/", false, false, false, &Method::POST)
                .is_some()
        );
        assert!(
            d.uri("https://127.0.0.1/", false, false, true, &get).is_none(),
            "TLS is reqwest's"
        );
        assert!(
            d.uri("http://u:p@127.0.0.1/", false, false, true, &get).is_none(),
            "credentials"
        );
        assert!(
            d.uri("http://127.0.0.1/", true, false, true, &get).is_none(),
            "keep-alive"
        );
        assert!(
            d.uri("http://127.0.0.1/", false, true, true, &get).is_none(),
            "own client"
        );
        assert!(
            d.uri("http://127.0.0.1/", false, false, true, &Method::POST).is_none(),
            "a POST that may be redirected is not asked twice"
        );
        assert!(d.uri("not a url", false, false, true, &get).is_none());
        assert!(
            Direct::with(false)
                .uri("http://127.0.0.1/", false, false, true, &get)
                .is_none(),
            "a proxy in the environment"
        );
    }
}
