//! HTTP and HTTPS: the configured request, then status code, conditions and,
//! over HTTPS, the server certificate's expiry.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use pantau_proto::v1::{FailureReason, HttpDetail, check_result::Detail};
use tokio::time::Instant;

use pantau_config::{HttpOptions, HttpTarget, TlsFiles};

use super::{Outcome, cert, trust};
use crate::CollectorError;
use crate::target::HttpSpec;

/// Bodies are read (and timed) up to this size; the rest is not downloaded.
const MAX_BODY: usize = 4 << 20;

/// One client per (verify TLS, follow redirects, reuse connections)
/// combination, sharing nothing but settings; each keeps its own connection
/// pool (the ones that do not reuse connections keep none).
#[derive(Clone)]
pub struct Clients {
    clients: [reqwest::Client; 8],
    /// Sent as [`LOCATION_HEADER`] on every check, unless the target sets it.
    location: Option<reqwest::header::HeaderValue>,
}

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
    // No idle connection kept: each check connects anew, and a connection
    // that carries one request gets no TCP keep-alive probing (four
    // `setsockopt` calls per check saved).
    let b = if reuse {
        b
    } else {
        b.pool_max_idle_per_host(0)
            .tcp_keepalive(None)
            .tcp_keepalive_interval(None)
            .tcp_keepalive_retries(None)
    };
    Ok(b.user_agent(concat!("pantau/", env!("CARGO_PKG_VERSION")))
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
            clients: [
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
        &self.clients[usize::from(!reuse) * 4 + usize::from(!verify) * 2 + usize::from(!follow)]
    }

    /// The location header's value, when set.
    pub(crate) fn location(&self) -> Option<&reqwest::header::HeaderValue> {
        self.location.as_ref()
    }
}

/// Runs the request of `cfg` as `spec` compiled it; the caller bounds the time.
pub async fn check(clients: &Clients, cfg: &HttpTarget, spec: &HttpSpec, started: Instant) -> Outcome {
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
            let (reason, message) = classify(&e);
            return Outcome::down(started.elapsed(), reason, message);
        }
    };
    let status = resp.status();
    let version = format!("{:?}", resp.version());
    let certificate = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(reqwest::tls::TlsInfo::peer_certificate)
        .and_then(|der| cert::info(der, SystemTime::now()));
    let headers = resp.headers().clone();
    let (body, body_bytes) = match read_body_counted(&mut resp).await {
        Ok(b) => b,
        Err(e) => {
            let (reason, message) = classify(&e);
            return Outcome::down(started.elapsed(), reason, format!("reading the body: {message}"));
        }
    };
    let latency = started.elapsed();
    let detail = Detail::Http(HttpDetail {
        status_code: u32::from(status.as_u16()),
        body_bytes,
        http_version: version,
        certificate: certificate.clone(),
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
        if let Err(why) = c.check(latency, &headers, &body) {
            return Outcome::down(latency, FailureReason::Assertion, why).with_detail(detail);
        }
    }
    if let Some(problem) = certificate
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

/// The typed reason and a readable message for a failed request.
pub(crate) fn classify(e: &reqwest::Error) -> (FailureReason, String) {
    let mut causes = Vec::new();
    let mut source = e.source();
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
        if e.is_timeout() {
            FailureReason::Timeout
        } else if text.contains("dns error") || text.contains("failed to lookup address") {
            FailureReason::Dns
        } else if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
            FailureReason::Tls
        } else {
            FailureReason::Connect
        }
    });
    let url = e
        .url()
        .map(|u| pantau_config::mask_url_password(u.as_str()))
        .unwrap_or_default();
    let cause = trust::refusal(e).unwrap_or_else(|| causes.last().cloned().unwrap_or_else(|| e.to_string()));
    let message = match reason {
        FailureReason::Refused => format!("connection refused by {url}"),
        FailureReason::Dns => format!("cannot resolve the host of {url}: {cause}"),
        FailureReason::Timeout => format!("{url} did not answer in time"),
        FailureReason::Tls => format!("TLS with {url} failed: {cause}"),
        _ => format!("request to {url} failed: {cause}"),
    };
    (reason, message)
}
