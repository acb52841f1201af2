//! HTTP and HTTPS: the configured request, then status code, conditions and,
//! over HTTPS, the server certificate's expiry.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use pantau_proto::v1::{FailureReason, HttpDetail, check_result::Detail};
use tokio::time::Instant;

use pantau_config::{HttpOptions, HttpTarget, TlsFiles};

use super::{Outcome, cert, http_direct, trust};
use crate::CollectorError;
use crate::target::HttpSpec;

/// Bodies are read (and timed) up to this size; the rest is not downloaded.
pub(crate) const MAX_BODY: usize = 4 << 20;

/// One client per (verify TLS, follow redirects, reuse connections)
/// combination, sharing nothing but settings; each keeps its own connection
/// pool (the ones that do not reuse connections keep none).
#[derive(Clone)]
pub struct Clients {
    shared: [reqwest::Client; 8],
    /// Sent as [`LOCATION_HEADER`] on every check, unless the target sets it.
    location: Option<reqwest::header::HeaderValue>,
    /// Plain-HTTP checks on a new connection, without reqwest.
    direct: http_direct::Direct,
}

/// The `user-agent` of every check.
const USER_AGENT_TEXT: &str = concat!("pantau/", env!("CARGO_PKG_VERSION"));
static USER_AGENT: reqwest::header::HeaderValue = reqwest::header::HeaderValue::from_static(USER_AGENT_TEXT);
/// reqwest's default `accept`, sent on direct checks too.
static ACCEPT_ANY: reqwest::header::HeaderValue = reqwest::header::HeaderValue::from_static("*/*");
/// `connection: close` on a connection that carries one request (RFC 9112, 9.6).
static CLOSE: reqwest::header::HeaderValue = reqwest::header::HeaderValue::from_static("close");

/// The header naming the location a check comes from, so the checked
/// service can tell the locations apart (in its logs, or to answer them
/// differently in tests).
pub const LOCATION_HEADER: &str = "x-pantau-location";

/// An HTTP client for checks: TLS from [`trust::client_config`] (the
/// system's roots, `files`' CA and client certificate), redirects followed or
/// not, connections kept or not, and `options`' proxy and fixed addresses.
pub fn build(
    files: &TlsFiles,
    verify: bool,
    follow: bool,
    reuse: bool,
    options: &HttpOptions,
) -> Result<reqwest::Client, CollectorError> {
    let tls = trust::client_config(files, verify, true).map_err(CollectorError::Tls)?;
    let b = super::http_options::apply(reqwest::Client::builder(), options)?;
    // No idle connection kept: each check connects anew and says so
    // (`connection: close`, so the server closes first), and a connection
    // that carries one request gets no TCP keep-alive probing (four
    // `setsockopt` calls per check saved).
    let b = if reuse {
        b
    } else {
        let mut close = reqwest::header::HeaderMap::new();
        close.insert(reqwest::header::CONNECTION, CLOSE.clone());
        b.pool_max_idle_per_host(0)
            .default_headers(close)
            .tcp_keepalive(None)
            .tcp_keepalive_interval(None)
            .tcp_keepalive_retries(None)
    };
    Ok(b.user_agent(USER_AGENT_TEXT)
        .redirect(if follow {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .use_preconfigured_tls(tls)
        .tls_info(true)
        .connect_timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(90))
        .build()?)
}

impl Clients {
    pub fn new() -> Result<Self, CollectorError> {
        // reqwest is built without a default crypto provider; ring is ours.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let none = TlsFiles::default();
        let plain = HttpOptions::default();
        let build = |verify: bool, follow: bool, reuse: bool| build(&none, verify, follow, reuse, &plain);
        Ok(Self {
            shared: [
                build(true, true, true)?,
                build(true, false, true)?,
                build(false, true, true)?,
                build(false, false, true)?,
                build(true, true, false)?,
                build(true, false, false)?,
                build(false, true, false)?,
                build(false, false, false)?,
            ],
            location: None,
            direct: http_direct::Direct::from_env(),
        })
    }

    /// Names `location` on every check (a location is a token, so a valid header value).
    #[must_use]
    pub fn with_location(mut self, location: &str) -> Self {
        self.location = reqwest::header::HeaderValue::from_str(location).ok();
        self
    }

    fn get(&self, spec: &HttpSpec) -> &reqwest::Client {
        self.pick(spec.verify_tls, spec.follow_redirects, spec.reuse_connection)
    }

    /// The shared client with these settings.
    pub(crate) fn pick(&self, verify: bool, follow: bool, reuse: bool) -> &reqwest::Client {
        &self.shared[usize::from(!reuse) * 4 + usize::from(!verify) * 2 + usize::from(!follow)]
    }

    /// The location header's value, when set.
    pub(crate) fn location(&self) -> Option<&reqwest::header::HeaderValue> {
        self.location.as_ref()
    }
}

/// What a request found: the answer's head and its body up to [`MAX_BODY`].
#[derive(Debug)]
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub version: reqwest::Version,
    /// The server's certificate, over HTTPS.
    pub certificate: Option<pantau_proto::v1::CertificateInfo>,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    /// Bytes of body read (past [`MAX_BODY`], what was read when reading stopped).
    pub body_bytes: u64,
}

/// Runs the request of `cfg` as `spec` compiled it; the caller bounds the time.
pub async fn check(clients: &Clients, cfg: &HttpTarget, spec: &HttpSpec, started: Instant) -> Outcome {
    let mut started = started;
    if let Some(uri) = clients.direct.uri(
        cfg.url.as_str(),
        spec.reuse_connection,
        spec.client.is_some(),
        spec.follow_redirects,
        &spec.method,
    ) {
        let mut headers = reqwest::header::HeaderMap::with_capacity(6);
        headers.insert(reqwest::header::USER_AGENT, USER_AGENT.clone());
        headers.insert(reqwest::header::ACCEPT, ACCEPT_ANY.clone());
        headers.insert(reqwest::header::CONNECTION, CLOSE.clone());
        if let Some(l) = &clients.location {
            headers.insert(LOCATION_HEADER, l.clone());
        }
        if let Some(h) = &spec.headers {
            for (name, value) in h.iter() {
                headers.insert(name.clone(), value.clone());
            }
        }
        match clients
            .direct
            .request(uri, spec.method.clone(), headers, cfg.body())
            .await
        {
            Ok(a) if spec.follow_redirects && http_direct::is_followed_redirect(&a) => {
                // reqwest asks again and follows; the latency is its alone.
                started = Instant::now();
            }
            Ok(a) => return judge(cfg, spec, &a, started.elapsed()),
            Err(http_direct::Failure::Request(e)) => {
                let (reason, message) = classify_chain(Some(&*e), false, cfg.url.as_str(), None);
                return Outcome::down(started.elapsed(), reason, message);
            }
            Err(http_direct::Failure::Body(e)) => {
                let (reason, message) = classify_chain(Some(&e), false, cfg.url.as_str(), None);
                return Outcome::down(started.elapsed(), reason, format!("reading the body: {message}"));
            }
        }
    }
    let client = spec.client.as_ref().unwrap_or_else(|| clients.get(spec));
    let mut req = client.request(spec.method.clone(), cfg.url.as_str());
    if let Some(h) = &spec.headers {
        req = req.headers((**h).clone());
    }
    if let Some(l) = &clients.location
        && !spec.headers.as_ref().is_some_and(|h| h.contains_key(LOCATION_HEADER))
    {
        req = req.header(LOCATION_HEADER, l.clone());
    }
    if let Some(b) = cfg.body() {
        req = req.body(b.to_owned());
    }
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            let (reason, message) = classify(&e, cfg.url.as_str());
            return Outcome::down(started.elapsed(), reason, message);
        }
    };
    let status = resp.status();
    let version = resp.version();
    let certificate = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(reqwest::tls::TlsInfo::peer_certificate)
        .and_then(|der| cert::info(der, SystemTime::now()));
    let headers = resp.headers().clone();
    let (body, body_bytes) = match read_body_counted(&mut resp).await {
        Ok(b) => b,
        Err(e) => {
            let (reason, message) = classify(&e, cfg.url.as_str());
            return Outcome::down(started.elapsed(), reason, format!("reading the body: {message}"));
        }
    };
    let answer = Answer {
        status,
        version,
        certificate,
        headers,
        body,
        body_bytes,
    };
    judge(cfg, spec, &answer, started.elapsed())
}

/// The check's verdict on an answer that took `latency`: its status against
/// the expected ones, then the conditions, then the certificate's expiry.
fn judge(cfg: &HttpTarget, spec: &HttpSpec, a: &Answer, latency: std::time::Duration) -> Outcome {
    let status = a.status;
    let detail = Detail::Http(HttpDetail {
        status_code: u32::from(status.as_u16()),
        body_bytes: a.body_bytes,
        http_version: format!("{:?}", a.version),
        certificate: a.certificate.clone(),
    });
    let accepted = if cfg.expected_status.is_empty() {
        (200..400).contains(&status.as_u16())
    } else {
        cfg.expected_status.contains(&status.as_u16())
    };
    if !accepted {
        let wanted = if cfg.expected_status.is_empty() {
            "200–399".to_owned()
        } else {
            cfg.expected_status
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Outcome::down(
            latency,
            FailureReason::HttpStatus,
            format!(
                "{} answered {status}, expected {wanted}",
                pantau_config::mask_url_password(cfg.url.as_str())
            ),
        )
        .with_detail(detail);
    }
    for c in &spec.conditions {
        if let Err(why) = c.check(latency, &a.headers, &a.body) {
            return Outcome::down(latency, FailureReason::Assertion, why).with_detail(detail);
        }
    }
    if let Some(problem) = a
        .certificate
        .as_ref()
        .and_then(|c| cert::expiry_problem(c, spec.warn_days))
    {
        return Outcome::down(latency, FailureReason::Tls, problem).with_detail(detail);
    }
    Outcome::up(latency, Some(detail))
}

/// The body, up to [`MAX_BODY`] bytes (the rest is not downloaded).
pub(crate) async fn read_body(resp: &mut reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    read_body_counted(resp).await.map(|(b, _)| b)
}

/// The body up to [`MAX_BODY`], and how many bytes were read.
async fn read_body_counted(resp: &mut reqwest::Response) -> Result<(Vec<u8>, u64), reqwest::Error> {
    let mut body = Vec::new();
    let mut body_bytes: u64 = 0;
    while let Some(chunk) = resp.chunk().await? {
        body_bytes += chunk.len() as u64;
        if body.len() < MAX_BODY {
            body.extend_from_slice(&chunk[..chunk.len().min(MAX_BODY - body.len())]);
        } else {
            break;
        }
    }
    Ok((body, body_bytes))
}

/// The typed reason and a readable message for a failed request to `url`
/// (the error's own URL when it has one: a redirect's; errors reading a body
/// have none).
pub(crate) fn classify(e: &reqwest::Error, url: &str) -> (FailureReason, String) {
    let url = e.url().map_or(url, reqwest::Url::as_str);
    // A refused certificate in words; an error without causes quoted whole.
    let cause = trust::refusal(e).or_else(|| e.source().is_none().then(|| e.to_string()));
    classify_chain(e.source(), e.is_timeout(), url, cause)
}

/// The typed reason and a readable message for a failure whose causes start
/// at `first` (the innermost one is quoted), for the URL `url` (its password
/// masked here); `timed_out` when the client itself gave up; `cause`, when
/// set, quoted instead of the innermost one.
pub(crate) fn classify_chain(
    first: Option<&(dyn std::error::Error + 'static)>,
    timed_out: bool,
    url: &str,
    cause: Option<String>,
) -> (FailureReason, String) {
    let mut causes = Vec::new();
    let mut source = first;
    let mut reason = None;
    while let Some(s) = source {
        causes.push(s.to_string());
        if reason.is_none() {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                reason = match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => Some(FailureReason::Refused),
                    std::io::ErrorKind::TimedOut => Some(FailureReason::Timeout),
                    _ => None,
                };
            }
            if s.downcast_ref::<rustls::Error>().is_some() {
                reason = Some(FailureReason::Tls);
            }
        }
        source = s.source();
    }
    let text = causes.join(": ").to_lowercase();
    let reason = reason.unwrap_or_else(|| {
        if timed_out {
            FailureReason::Timeout
        } else if text.contains("dns error") || text.contains("failed to lookup address") {
            FailureReason::Dns
        } else if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
            FailureReason::Tls
        } else {
            FailureReason::Connect
        }
    });
    let url = pantau_config::mask_url_password(url);
    let cause = cause.unwrap_or_else(|| causes.last().cloned().unwrap_or_default());
    let message = match reason {
        FailureReason::Refused => format!("connection refused by {url}"),
        FailureReason::Dns => format!("cannot resolve the host of {url}: {cause}"),
        FailureReason::Timeout => format!("{url} did not answer in time"),
        FailureReason::Tls => format!("TLS with {url} failed: {cause}"),
        _ => format!("request to {url} failed: {cause}"),
    };
    (reason, message)
}
