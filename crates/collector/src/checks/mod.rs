//! The checks. Each gives an [`Outcome`]: up or down, how long it took, and
//! for a failure a typed reason plus a message a person can act on.

pub mod cert;
pub mod conditions;
pub mod dns;
pub mod grpc;
pub mod http;
mod http_conn;
pub mod http_direct;
pub mod http_options;
pub mod icmp;
pub mod kafka;
pub mod mail;
pub mod mqtt;
pub mod push;
pub mod redis;
pub mod sql;
pub mod ssh;
pub mod steps;
pub mod tcp;
pub mod tls;
pub mod trust;
pub mod udp;
pub mod websocket;

use std::time::Duration;

use pantau_proto::v1::{self, FailureReason, check_result::Detail};
use tokio::time::Instant;

use crate::target::{HttpSpec, Spec, Target};

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

/// Tests only (`test-hooks`): a check of a `tcp` target whose address names
/// this host panics, as a buggy check would. The `.invalid` name never
/// resolves, and other builds have no such hook (only `tcp` is looked at, so
/// the benches, built with the hook, pay nothing for it on other checks).
#[cfg(any(test, feature = "test-hooks"))]
pub const PANIC_HOST: &str = "pantau-test-panic.invalid";

/// Runs checks; holds what they share (HTTP clients and pools, TLS
/// connectors, ICMP sockets, the system resolver).
pub struct Checker {
    http: http::Clients,
    tls: tls::Tls,
    icmp: icmp::Pinger,
    dns: dns::Dns,
    pub push: push::Pushes,
    kafka: kafka::Kafka,
}

impl Checker {
    pub fn new() -> Result<Self, crate::CollectorError> {
        Ok(Self {
            http: http::Clients::new()?,
            tls: tls::Tls::new()?,
            icmp: icmp::Pinger::default(),
            dns: dns::Dns::default(),
            push: push::Pushes::default(),
            kafka: kafka::Kafka::default(),
        })
    }

    /// HTTP checks name `location` in the `x-pantau-location` header.
    #[must_use]
    pub fn with_location(mut self, location: &str) -> Self {
        self.http = self.http.with_location(location);
        self
    }

    /// Runs `target`'s check within its timeout.
    pub async fn check(&self, target: &Target) -> Outcome {
        let started = Instant::now();
        let run = async {
            #[cfg(any(test, feature = "test-hooks"))]
            if let Spec::Tcp(t) = &target.spec {
                assert!(
                    !t.address.contains(PANIC_HOST),
                    "check of `{}` panicked on purpose (test hook)",
                    target.id()
                );
            }
            match &target.spec {
                Spec::Http(spec) => match target.http() {
                    Some(cfg) => match spec {
                        Some(spec) => http::check(&self.http, cfg, spec, started).await,
                        None => http::check(&self.http, cfg, &HttpSpec::plain(cfg), started).await,
                    },
                    None => Outcome::down(
                        started.elapsed(),
                        FailureReason::Internal,
                        format!(
                            "target `{}` was compiled as http but is configured as {}",
                            target.id(),
                            target.kind_label()
                        ),
                    ),
                },
                Spec::Tcp(t) => tcp::check(&t.address, t.send.as_deref(), t.expect.as_deref(), started).await,
                Spec::Tls(t) => {
                    self.tls
                        .check(
                            &t.address,
                            &t.server_name,
                            t.verify,
                            t.warn_days,
                            t.connector.as_ref(),
                            started,
                        )
                        .await
                }
                Spec::Icmp(i) => {
                    // Replies are awaited until just before the check's own
                    // timeout, so total loss is reported as such, with its numbers.
                    let margin = (target.timeout / 10).min(Duration::from_millis(100));
                    self.icmp
                        .check(
                            &i.host,
                            i.count,
                            i.max_loss_percent,
                            target.timeout.saturating_sub(margin),
                            started,
                        )
                        .await
                }
                Spec::Dns(d) => {
                    self.dns
                        .check(&d.name, d.record_type, d.resolver, &d.expected, started)
                        .await
                }
                Spec::Push { grace, .. } => {
                    self.push
                        .evaluate(target.id(), target.interval, *grace, std::time::SystemTime::now())
                }
                Spec::Grpc(spec) => grpc::check(spec, started).await,
                Spec::Redis(spec) => redis::check(spec, started).await,
                Spec::Sql(spec) => sql::check(spec, started).await,
                Spec::Udp(spec) => udp::check(spec, started).await,
                Spec::Ssh(spec) => ssh::check(spec, started).await,
                Spec::KafkaProducer(k) => self.kafka.produce(target.id(), k, target.timeout, started).await,
                Spec::KafkaConsumer(k) => self.kafka.consume(target.id(), k, started).await,
                Spec::HttpSteps(s) => steps::check(&self.http, s, started).await,
                Spec::Websocket(spec) => websocket::check(spec, started).await,
                Spec::Mqtt(spec) => mqtt::check(spec, target.id(), target.timeout, started).await,
                Spec::Mail(spec) => mail::check(spec, started).await,
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
                    pantau_config::duration::format(target.timeout)
                ),
            ),
        }
    }
}

/// The kind-specific fields of a TCP result.
pub(crate) fn tcp_detail(peer: std::net::SocketAddr) -> Detail {
    Detail::Tcp(v1::TcpDetail { peer: peer.to_string() })
}

/// The first address `host:port` resolves to, or the down outcome.
pub(crate) async fn resolve(host: &str, port: u16, started: Instant) -> Result<std::net::SocketAddr, Outcome> {
    match tokio::net::lookup_host((host, port)).await {
        Ok(mut a) => a.next().ok_or_else(|| {
            Outcome::down(
                started.elapsed(),
                FailureReason::Dns,
                format!("{host}:{port} resolves to no address"),
            )
        }),
        Err(e) => Err(Outcome::down(
            started.elapsed(),
            FailureReason::Dns,
            format!("cannot resolve {host}:{port}: {e}"),
        )),
    }
}
