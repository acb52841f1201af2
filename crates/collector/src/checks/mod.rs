//! The checks. Each gives an [`Outcome`]: up or down, how long it took, and
//! for a failure a typed reason plus a message a person can act on.

pub mod http;
pub mod tcp;

use std::time::Duration;

use pantau_proto::v1::{self, FailureReason, check_result::Detail};
use tokio::time::Instant;

use crate::target::{Spec, Target};

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub up: bool,
    pub latency: Duration,
    pub reason: FailureReason,
    pub message: String,
    pub detail: Option<Detail>,
}

impl Outcome {
    pub fn up(latency: Duration, detail: Option<Detail>) -> Self {
        Self {
            up: true,
            latency,
            reason: FailureReason::Unspecified,
            message: String::new(),
            detail,
        }
    }

    pub fn down(latency: Duration, reason: FailureReason, message: impl Into<String>) -> Self {
        Self {
            up: false,
            latency,
            reason,
            message: message.into(),
            detail: None,
        }
    }

    #[must_use]
    pub fn with_detail(mut self, detail: Detail) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// Runs checks; holds what they share (the HTTP client and its pool).
#[derive(Clone)]
pub struct Checker {
    http: reqwest::Client,
}

impl Checker {
    pub fn new() -> Result<Self, reqwest::Error> {
        Ok(Self { http: http::client()? })
    }

    /// Runs `target`'s check within its timeout.
    pub async fn check(&self, target: &Target) -> Outcome {
        let started = Instant::now();
        let run = async {
            match &target.spec {
                Spec::Http { url, expected_status } => http::check(&self.http, url, expected_status, started).await,
                Spec::Tcp { address } => tcp::check(address, started).await,
            }
        };
        match tokio::time::timeout(target.timeout, run).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::down(
                started.elapsed(),
                FailureReason::Timeout,
                format!(
                    "no answer from {} within {}",
                    target.address(),
                    humantime_ms(target.timeout)
                ),
            ),
        }
    }
}

fn humantime_ms(d: Duration) -> String {
    pantau_core::config::duration::format(d)
}

/// The kind-specific fields of a proto result.
pub(crate) fn tcp_detail(peer: std::net::SocketAddr) -> Detail {
    Detail::Tcp(v1::TcpDetail { peer: peer.to_string() })
}
