//! ICMP echo: N packets, loss, round-trip min/avg/max and jitter.
//!
//! Uses an ICMP datagram socket where the kernel allows it for this user
//! (`net.ipv4.ping_group_range`), else a raw socket (root or CAP_NET_RAW).
//! Without either the check is down with a message saying how to allow it.

use std::net::IpAddr;
use std::time::Duration;

use pantau_core::time::to_duration;
use pantau_proto::v1::{FailureReason, IcmpDetail, check_result::Detail};
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::Outcome;

/// Shared ICMP clients (one socket each for IPv4 and IPv6), opened on first use.
#[derive(Default)]
pub struct Pinger {
    v4: OnceCell<Result<Client, String>>,
    v6: OnceCell<Result<Client, String>>,
}

const PAYLOAD: [u8; 32] = *b"pantau icmp echo, 32 bytes long.";

impl Pinger {
    async fn client(&self, v6: bool) -> Result<&Client, String> {
        let cell = if v6 { &self.v6 } else { &self.v4 };
        cell.get_or_init(|| async move {
            let cfg = if v6 {
                Config::builder().kind(ICMP::V6).build()
            } else {
                Config::default()
            };
            Client::new(&cfg).map_err(|e| {
                format!(
                    "cannot open an ICMP socket ({e}): run as root, give the binary CAP_NET_RAW \
                     (setcap cap_net_raw+ep pantau), or allow ICMP datagram sockets with \
                     sysctl -w net.ipv4.ping_group_range=\"0 2147483647\""
                )
            })
        })
        .await
        .as_ref()
        .map_err(Clone::clone)
    }

    /// Pings `host` `count` times and waits for replies until `budget` after
    /// `started`: requests go out `budget / (2 × count)` apart (at most 1 s),
    /// and every one may be answered until the budget ends, so a slow reply
    /// still counts and no reply at all is 100 % loss, not a timeout.
    pub async fn check(
        &self,
        host: &str,
        count: u16,
        max_loss_percent: f64,
        budget: Duration,
        started: Instant,
    ) -> Outcome {
        let ip: IpAddr = match host.parse() {
            Ok(ip) => ip,
            Err(_) => match tokio::net::lookup_host((host, 0)).await.map(|mut a| a.next()) {
                Ok(Some(a)) => a.ip(),
                Ok(None) => {
                    return Outcome::down(
                        started.elapsed(),
                        FailureReason::Dns,
                        format!("{host} resolves to no address"),
                    );
                }
                Err(e) => {
                    return Outcome::down(
                        started.elapsed(),
                        FailureReason::Dns,
                        format!("cannot resolve {host}: {e}"),
                    );
                }
            },
        };
        let client = match self.client(ip.is_ipv6()).await {
            Ok(c) => c,
            Err(why) => return Outcome::down(started.elapsed(), FailureReason::Internal, why),
        };
        let ident = PingIdentifier(rand::random());
        // A random first sequence number: with datagram sockets the kernel
        // sets the identifier, so two checks of one host tell their replies
        // apart by sequence alone.
        let first: u16 = rand::random();
        let deadline = started + budget;
        let spacing = (budget / (2 * u32::from(count.max(1)))).min(Duration::from_secs(1));
        let pings = (0..count).map(|i| async move {
            tokio::time::sleep_until(started + spacing * u32::from(i)).await;
            let mut pinger = client.pinger(ip, ident).await;
            pinger.timeout(deadline.saturating_duration_since(Instant::now()));
            pinger.ping(PingSequence(first.wrapping_add(i)), &PAYLOAD).await
        });
        let mut rtts = Vec::with_capacity(usize::from(count));
        let mut last_error = None;
        for answer in futures::future::join_all(pings).await {
            match answer {
                Ok((_, rtt)) => rtts.push(rtt),
                Err(SurgeError::Timeout { .. }) => {}
                Err(e) => last_error = Some(e.to_string()),
            }
        }
        let sent = u32::from(count);
        let received = rtts.len() as u32;
        let loss = f64::from(sent - received) * 100.0 / f64::from(sent);
        let detail = stats(&rtts, sent, received, loss, ip);
        let latency = rtts
            .iter()
            .sum::<Duration>()
            .checked_div(received.max(1))
            .unwrap_or_default();
        if loss > max_loss_percent {
            let why = last_error.map(|e| format!(" ({e})")).unwrap_or_default();
            Outcome::down(
                latency,
                FailureReason::IcmpLoss,
                if received == 0 {
                    format!("no echo reply from {ip} to {sent} requests, 100% loss{why}")
                } else {
                    format!(
                        "{received} of {sent} echo replies from {ip}, {loss:.0}% loss (allowed {max_loss_percent}%){why}"
                    )
                },
            )
            .with_detail(detail)
        } else {
            Outcome::up(latency, Some(detail))
        }
    }
}

fn stats(rtts: &[Duration], sent: u32, received: u32, loss: f64, ip: IpAddr) -> Detail {
    let min = rtts.iter().min().copied().unwrap_or_default();
    let max = rtts.iter().max().copied().unwrap_or_default();
    let avg = rtts
        .iter()
        .sum::<Duration>()
        .checked_div(received.max(1))
        .unwrap_or_default();
    let jitter = if rtts.len() < 2 {
        Duration::ZERO
    } else {
        let total: f64 = rtts
            .windows(2)
            .map(|w| (w[1].as_secs_f64() - w[0].as_secs_f64()).abs())
            .sum();
        Duration::from_secs_f64(total / (rtts.len() - 1) as f64)
    };
    Detail::Icmp(IcmpDetail {
        sent,
        received,
        loss_percent: loss,
        rtt_min: Some(to_duration(min)),
        rtt_avg: Some(to_duration(avg)),
        rtt_max: Some(to_duration(max)),
        jitter: Some(to_duration(jitter)),
        address: ip.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_mean_absolute_difference() {
        let rtts = [
            Duration::from_millis(10),
            Duration::from_millis(14),
            Duration::from_millis(12),
        ];
        let Detail::Icmp(d) = stats(&rtts, 4, 3, 25.0, "127.0.0.1".parse().unwrap()) else {
            unreachable!()
        };
        assert_eq!(
            pantau_core::time::from_duration(d.jitter.as_ref().unwrap()),
            Some(Duration::from_millis(3))
        );
        assert_eq!(
            pantau_core::time::from_duration(d.rtt_avg.as_ref().unwrap()),
            Some(Duration::from_millis(12))
        );
        assert_eq!(d.received, 3);
    }
}
