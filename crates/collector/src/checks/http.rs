//! HTTP and HTTPS: request the URL, read the body, judge the status code.

use std::error::Error as _;
use std::time::Duration;

use pantau_proto::v1::{FailureReason, HttpDetail, check_result::Detail};
use tokio::time::Instant;

use super::Outcome;

/// Bodies are read (and timed) up to this size; the rest is not downloaded.
const MAX_BODY: u64 = 4 << 20;

/// The shared client: rustls with the ring provider, up to 10 redirects.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    // reqwest is built without a default crypto provider; ring is ours.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("pantau/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::limited(10))
        .connect_timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
}

/// Requests `url`; the caller bounds the time.
pub async fn check(client: &reqwest::Client, url: &reqwest::Url, expected: &[u16], started: Instant) -> Outcome {
    let mut resp = match client.get(url.clone()).send().await {
        Ok(r) => r,
        Err(e) => {
            let (reason, message) = classify(&e);
            return Outcome::down(started.elapsed(), reason, message);
        }
    };
    let status = resp.status();
    let version = format!("{:?}", resp.version());
    let mut body_bytes: u64 = 0;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                body_bytes += chunk.len() as u64;
                if body_bytes >= MAX_BODY {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                let (reason, message) = classify(&e);
                return Outcome::down(started.elapsed(), reason, format!("reading the body: {message}"));
            }
        }
    }
    let latency = started.elapsed();
    let detail = Detail::Http(HttpDetail {
        status_code: u32::from(status.as_u16()),
        body_bytes,
        http_version: version,
    });
    let accepted = if expected.is_empty() {
        (200..400).contains(&status.as_u16())
    } else {
        expected.contains(&status.as_u16())
    };
    if accepted {
        Outcome::up(latency, Some(detail))
    } else {
        let wanted = if expected.is_empty() {
            "200–399".to_owned()
        } else {
            expected.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        };
        Outcome::down(
            latency,
            FailureReason::HttpStatus,
            format!("{url} answered {status}, expected {wanted}"),
        )
        .with_detail(detail)
    }
}

/// The typed reason and a readable message for a failed request.
fn classify(e: &reqwest::Error) -> (FailureReason, String) {
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
    let url = e.url().map(ToString::to_string).unwrap_or_default();
    let cause = causes.last().cloned().unwrap_or_else(|| e.to_string());
    let message = match reason {
        FailureReason::Refused => format!("connection refused by {url}"),
        FailureReason::Dns => format!("cannot resolve the host of {url}: {cause}"),
        FailureReason::Timeout => format!("{url} did not answer in time"),
        FailureReason::Tls => format!("TLS with {url} failed: {cause}"),
        _ => format!("request to {url} failed: {cause}"),
    };
    (reason, message)
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::routing::get;

    use super::*;

    async fn serve() -> String {
        let app = axum::Router::new()
            .route("/ok", get(|| async { "fine" }))
            .route("/broken", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }))
            .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn status_codes_decide() {
        let base = serve().await;
        let c = client().unwrap();
        let url = |p: &str| reqwest::Url::parse(&format!("{base}{p}")).unwrap();
        let ok = check(&c, &url("/ok"), &[], Instant::now()).await;
        assert!(ok.up, "{ok:?}");
        assert!(matches!(
            ok.detail,
            Some(Detail::Http(HttpDetail {
                status_code: 200,
                body_bytes: 4,
                ..
            }))
        ));
        let broken = check(&c, &url("/broken"), &[], Instant::now()).await;
        assert!(!broken.up);
        assert_eq!(broken.reason, FailureReason::HttpStatus);
        assert!(broken.message.contains("503"), "{}", broken.message);
        let teapot = check(&c, &url("/teapot"), &[418], Instant::now()).await;
        assert!(teapot.up, "{teapot:?}");
    }

    #[tokio::test]
    async fn refused_and_dns_are_typed() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let c = client().unwrap();
        let refused = check(
            &c,
            &reqwest::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
            &[],
            Instant::now(),
        )
        .await;
        assert_eq!(refused.reason, FailureReason::Refused, "{refused:?}");
        let dns = check(
            &c,
            &reqwest::Url::parse("http://no-such-host.invalid/").unwrap(),
            &[],
            Instant::now(),
        )
        .await;
        assert_eq!(dns.reason, FailureReason::Dns, "{dns:?}");
    }
}
