//! TCP: resolve, connect, measure the connect time; optionally send bytes and
//! expect some in the answer.

use std::io::ErrorKind;

use pantau_proto::v1::FailureReason;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Outcome, tcp_detail};

/// Most bytes read while waiting for `expect`.
const MAX_READ: usize = 64 * 1024;

/// Resolves `address` (`host:port`) and connects to the first address that
/// answers; a failure is the down [`Outcome`] to report.
pub async fn connect(address: &str, started: Instant) -> Result<TcpStream, Outcome> {
    let addrs: Vec<_> = match tokio::net::lookup_host(address).await {
        Ok(a) => a.collect(),
        Err(e) => {
            return Err(Outcome::down(
                started.elapsed(),
                FailureReason::Dns,
                format!("cannot resolve {address}: {e}"),
            ));
        }
    };
    if addrs.is_empty() {
        return Err(Outcome::down(
            started.elapsed(),
            FailureReason::Dns,
            format!("{address} resolves to no address"),
        ));
    }
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some((addr, e)),
        }
    }
    let (addr, e) = last.expect("at least one address was tried");
    let reason = match e.kind() {
        ErrorKind::ConnectionRefused => FailureReason::Refused,
        ErrorKind::TimedOut => FailureReason::Timeout,
        _ => FailureReason::Connect,
    };
    let what = match reason {
        FailureReason::Refused => "connection refused".to_owned(),
        _ => format!("cannot connect: {e}"),
    };
    Err(Outcome::down(
        started.elapsed(),
        reason,
        format!("{what} by {addr} ({address})"),
    ))
}

/// Connects to `address`, then sends `send` and waits for `expect` if given;
/// the caller bounds the time.
pub async fn check(address: &str, send: Option<&[u8]>, expect: Option<&[u8]>, started: Instant) -> Outcome {
    let mut stream = match connect(address, started).await {
        Ok(s) => s,
        Err(down) => return down,
    };
    let connected = started.elapsed();
    let peer = stream.peer_addr().ok();
    let detail = peer.map(tcp_detail);
    if let Some(bytes) = send
        && let Err(e) = stream.write_all(bytes).await
    {
        return Outcome::down(
            started.elapsed(),
            FailureReason::Connect,
            format!("sending to {address} failed: {e}"),
        );
    }
    let Some(wanted) = expect else {
        return Outcome::up(connected, detail);
    };
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if got.windows(wanted.len().max(1)).any(|w| w == wanted) {
            return Outcome::up(started.elapsed(), detail);
        }
        if got.len() >= MAX_READ {
            break;
        }
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => {
                return Outcome::down(
                    started.elapsed(),
                    FailureReason::Connect,
                    format!("reading from {address} failed: {e}"),
                );
            }
        }
    }
    let shown = String::from_utf8_lossy(&got[..got.len().min(120)]).into_owned();
    Outcome::down(
        started.elapsed(),
        FailureReason::Assertion,
        format!(
            "{address} answered {shown:?}, which lacks the expected {:?}",
            String::from_utf8_lossy(wanted)
        ),
    )
}

/// `\r`, `\n`, `\t`, `\\` and `\0` escapes in configured send/expect text.
pub fn unescape(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut b = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(0),
            Some('\\') | None => out.push(b'\\'),
            Some(other) => {
                out.push(b'\\');
                let mut b = [0; 4];
                out.extend_from_slice(other.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_port_is_up() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let o = check(&addr, None, None, Instant::now()).await;
        assert!(o.up, "{o:?}");
        assert_eq!(o.reason, FailureReason::Unspecified);
    }

    #[tokio::test]
    async fn closed_port_is_refused() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let o = check(&addr, None, None, Instant::now()).await;
        assert!(!o.up);
        assert_eq!(o.reason, FailureReason::Refused, "{o:?}");
        assert!(o.message.contains("connection refused"), "{}", o.message);
    }

    #[tokio::test]
    async fn unknown_host_is_dns() {
        let o = check("no-such-host.invalid:80", None, None, Instant::now()).await;
        assert!(!o.up);
        assert_eq!(o.reason, FailureReason::Dns, "{o:?}");
    }

    #[tokio::test]
    async fn send_and_expect() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 64];
                let n = s.read(&mut buf).await.unwrap();
                let reply: &[u8] = if &buf[..n] == b"PING\r\n" {
                    b"+PONG\r\n"
                } else {
                    b"-ERR\r\n"
                };
                s.write_all(reply).await.unwrap();
            }
        });
        let ping = unescape("PING\\r\\n");
        assert_eq!(ping, b"PING\r\n");
        let up = check(&addr, Some(&ping), Some(b"+PONG"), Instant::now()).await;
        assert!(up.up, "{up:?}");
        let down = check(&addr, Some(b"HELLO\r\n"), Some(b"+PONG"), Instant::now()).await;
        assert_eq!(down.reason, FailureReason::Assertion, "{down:?}");
        assert!(down.message.contains("-ERR"), "{}", down.message);
    }
}
