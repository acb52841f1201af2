//! gRPC clients the Pantau way: `https://` URLs use TLS (rustls; the CA of
//! `grpc.ca_file`, else the Mozilla roots), and a call carries the caller's
//! credentials in the `authorization` metadata unless it set its own, and
//! its trace context in `traceparent`/`tracestate` ([`super::trace`]).
//!
//! A transport failure is UNAVAILABLE naming the URL and the whole cause
//! (`cannot reach https://10.0.0.1:50055: … invalid peer certificate:
//! UnknownIssuer`). A `http://` URL to a host that is not on loopback with
//! credentials is warned about once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http::{HeaderValue, Request, Response};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use super::guard::ON_BEHALF_OF;
use crate::auth::ServiceToken;

tokio::task_local! {
    /// The user a request is made for (the gateway sets it around each REST
    /// request); sent as `x-pantau-on-behalf-of` with a service token.
    pub static ON_BEHALF: String;
}

/// What a client presents.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Nothing of its own (the sync API's calls to another instance carry
    /// the join or instance token they set themselves).
    None,
    /// This process's `service` token.
    Service(Arc<ServiceToken>),
    /// A given token (tests, tools).
    Token(Arc<str>),
    /// The channel could not be built: every call fails with this.
    Broken(Arc<str>),
}

/// Why a channel cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("`{url}` is not a usable gRPC URL: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot read grpc.ca_file {path}: {source}")]
    CaFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up TLS for {url}: {reason}")]
    Tls { url: String, reason: String },
}

/// A gRPC channel with credentials; the type every Pantau client uses.
#[derive(Debug, Clone)]
pub struct Channel {
    inner: tonic::transport::Channel,
    url: Arc<str>,
    credentials: Credentials,
}

/// The URLs already warned about.
fn warned() -> &'static Mutex<HashSet<String>> {
    static W: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    W.get_or_init(Mutex::default)
}

/// The TLS settings for `https://` URLs.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// PEM CA certificates to trust instead of the Mozilla roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl Tls {
    /// From `grpc.ca_file`.
    pub fn from_config(g: &pantau_config::GrpcConfig) -> Result<Self, ClientError> {
        let ca_pem = g
            .ca_file
            .as_ref()
            .map(|p| {
                std::fs::read(p).map_err(|source| ClientError::CaFile {
                    path: p.clone(),
                    source,
                })
            })
            .transpose()?;
        Ok(Self { ca_pem })
    }
}

impl Channel {
    /// A channel to `url` that connects on first use and again after failures.
    pub fn lazy(url: &str, tls: &Tls, credentials: Credentials) -> Result<Self, ClientError> {
        let bad = |reason: String| ClientError::Url {
            url: url.to_owned(),
            reason,
        };
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10));
        match endpoint.uri().scheme_str() {
            Some("https") => {
                let cfg = match &tls.ca_pem {
                    Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
                    None => ClientTlsConfig::new().with_webpki_roots(),
                };
                endpoint = endpoint.tls_config(cfg).map_err(|e| ClientError::Tls {
                    url: url.to_owned(),
                    reason: chain(&e),
                })?;
            }
            Some("http") => {
                let secret = !matches!(credentials, Credentials::None | Credentials::Broken(_));
                if secret
                    && !pantau_config::is_loopback_url(url)
                    && warned()
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(url.to_owned())
                {
                    tracing::warn!(
                        url,
                        "gRPC credentials go to a host that is not on loopback over cleartext http://; use https:// (grpc.tls_cert_file on the server)"
                    );
                }
            }
            _ => return Err(bad("the scheme must be http:// or https://".to_owned())),
        }
        Ok(Self {
            inner: endpoint.connect_lazy(),
            url: url.into(),
            credentials,
        })
    }

    /// A channel whose every call fails with `why` (a channel that could not
    /// be built, at a place that cannot fail).
    pub fn broken(url: &str, why: &str) -> Self {
        Self {
            inner: Endpoint::from_static("http://127.0.0.1:9").connect_lazy(),
            url: url.into(),
            credentials: Credentials::Broken(why.into()),
        }
    }

    /// The URL this channel calls.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// An error and its causes, `: `-separated.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

impl tower::Service<Request<Body>> for Channel {
    type Response = Response<Body>;
    type Error = tower::BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, tower::BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let url = Arc::clone(&self.url);
        tower::Service::poll_ready(&mut self.inner, cx).map_err(|e| unreachable_at(&url, &e))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let url = Arc::clone(&self.url);
        let token = match &self.credentials {
            Credentials::None => None,
            Credentials::Token(t) => Some(Ok(t.to_string())),
            Credentials::Service(s) => Some(
                s.token()
                    .map_err(|e| Status::unauthenticated(format!("cannot mint this process's service token: {e}"))),
            ),
            Credentials::Broken(why) => {
                let status = Status::unavailable(format!("cannot call {url}: {why}"));
                return Box::pin(async move { Err(Box::new(status) as tower::BoxError) });
            }
        };
        let headers = req.headers_mut();
        if let Some(token) = token
            && !headers.contains_key("authorization")
        {
            match token.map(|t| HeaderValue::from_str(&format!("Bearer {t}"))) {
                Ok(Ok(mut v)) => {
                    v.set_sensitive(true);
                    headers.insert("authorization", v);
                }
                Ok(Err(_)) => {
                    let status = Status::unauthenticated("the configured token cannot be sent as metadata");
                    return Box::pin(async move { Err(Box::new(status) as tower::BoxError) });
                }
                Err(status) => return Box::pin(async move { Err(Box::new(status) as tower::BoxError) }),
            }
            if let Ok(Some(v)) = ON_BEHALF.try_with(|u| HeaderValue::from_str(u).ok()) {
                headers.insert(ON_BEHALF_OF, v);
            }
        }
        let span = super::trace::client_span(&mut req);
        let fut = span.in_scope(|| tower::Service::call(&mut self.inner, req));
        Box::pin(tracing::Instrument::instrument(
            async move { fut.await.map_err(|e| unreachable_at(&url, &e)) },
            span,
        ))
    }
}

/// A transport failure as UNAVAILABLE naming the URL and every cause.
fn unreachable_at(url: &str, e: &tonic::transport::Error) -> tower::BoxError {
    Box::new(Status::unavailable(format!("cannot reach {url}: {}", chain(e))))
}
