//! UDP: send one datagram to `address` and wait for an answer (containing
//! `expect`, when set). An ICMP port unreachable is `refused`; silence is
//! the check's timeout.

use std::collections::HashMap;

use pantau_proto::v1::{FailureReason, ProbeDetail, check_result::Detail};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::Outcome;

/// A compiled `udp` target.
#[derive(Debug, Clone)]
pub struct UdpSpec {
    pub host: String,
    pub port: u16,
    pub send: Vec<u8>,
    pub expect: Option<Vec<u8>>,
}

impl UdpSpec {
    pub fn new(x: &pantau_config::UdpTarget) -> Self {
        Self {
            host: x.address.host().to_owned(),
            port: x.address.port(),
            send: super::tcp::unescape(&x.send),
            expect: x.expect.as_deref().map(super::tcp::unescape),
        }
    }

    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Largest answer read.
const MAX_ANSWER: usize = 65_535;

/// Runs the check of `spec`; the caller bounds the time.
pub async fn check(spec: &UdpSpec, started: Instant) -> Outcome {
    let address = spec.address();
    let peer = match super::resolve(&spec.host, spec.port, started).await {
        Ok(a) => a,
        Err(down) => return down,
    };
    let local = if peer.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let socket = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => {
            return Outcome::down(
                started.elapsed(),
                FailureReason::Internal,
                format!("cannot open a UDP socket: {e}"),
            );
        }
    };
    let io_down = |e: std::io::Error, what: &str| {
        let reason = if e.kind() == std::io::ErrorKind::ConnectionRefused {
            FailureReason::Refused
        } else {
            FailureReason::Connect
        };
        Outcome::down(started.elapsed(), reason, format!("{what} {address} ({peer}): {e}"))
    };
    if let Err(e) = socket.connect(peer).await {
        return io_down(e, "cannot reach");
    }
    if let Err(e) = socket.send(&spec.send).await {
        return io_down(e, "sending to");
    }
    let mut buf = vec![0_u8; MAX_ANSWER];
    let n = match socket.recv(&mut buf).await {
        Ok(n) => n,
        Err(e) => return io_down(e, "no answer from"),
    };
    let latency = started.elapsed();
    let answer = &buf[..n];
    let shown: String = String::from_utf8_lossy(&answer[..n.min(100)])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let detail = Detail::Probe(ProbeDetail {
        peer: peer.to_string(),
        metadata: HashMap::from([
            ("answer_bytes".to_owned(), n.to_string()),
            ("answer".to_owned(), shown.clone()),
        ]),
        certificate: None,
    });
    match &spec.expect {
        Some(want) if !answer.windows(want.len().max(1)).any(|w| w == want.as_slice()) => Outcome::down(
            latency,
            FailureReason::Assertion,
            format!(
                "{address} answered {shown:?} ({n} bytes), which lacks the expected {:?}",
                String::from_utf8_lossy(want)
            ),
        )
        .with_detail(detail),
        _ => Outcome::up(latency, Some(detail)),
    }
}
