//! TCP: resolve, connect, measure the connect time.

use std::io::ErrorKind;

use pantau_proto::v1::FailureReason;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Outcome, tcp_detail};

/// Connects to `address` (`host:port`); the caller bounds the time.
pub async fn check(address: &str, started: Instant) -> Outcome {
    let addrs: Vec<_> = match tokio::net::lookup_host(address).await {
        Ok(a) => a.collect(),
        Err(e) => {
            return Outcome::down(
                started.elapsed(),
                FailureReason::Dns,
                format!("cannot resolve {address}: {e}"),
            );
        }
    };
    let Some(first) = addrs.first().copied() else {
        return Outcome::down(
            started.elapsed(),
            FailureReason::Dns,
            format!("{address} resolves to no address"),
        );
    };
    let mut last_err = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let latency = started.elapsed();
                drop(stream);
                return Outcome::up(latency, Some(tcp_detail(addr)));
            }
            Err(e) => last_err = Some((addr, e)),
        }
    }
    let (addr, e) = last_err.unwrap_or_else(|| (first, std::io::Error::other("no address tried")));
    let reason = match e.kind() {
        ErrorKind::ConnectionRefused => FailureReason::Refused,
        ErrorKind::TimedOut => FailureReason::Timeout,
        _ => FailureReason::Connect,
    };
    let what = match reason {
        FailureReason::Refused => "connection refused".to_owned(),
        _ => format!("cannot connect: {e}"),
    };
    Outcome::down(started.elapsed(), reason, format!("{what} by {addr} ({address})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_port_is_up() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let o = check(&addr, Instant::now()).await;
        assert!(o.up, "{o:?}");
        assert_eq!(o.reason, FailureReason::Unspecified);
    }

    #[tokio::test]
    async fn closed_port_is_refused() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let o = check(&addr, Instant::now()).await;
        assert!(!o.up);
        assert_eq!(o.reason, FailureReason::Refused, "{o:?}");
        assert!(o.message.contains("connection refused"), "{}", o.message);
    }

    #[tokio::test]
    async fn unknown_host_is_dns() {
        let o = check("no-such-host.invalid:80", Instant::now()).await;
        assert!(!o.up);
        assert_eq!(o.reason, FailureReason::Dns, "{o:?}");
    }
}
