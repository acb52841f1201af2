//! SSH: connect and read the server's identification line (RFC 4253 §4.2,
//! `SSH-protoversion-softwareversion comments`), which it sends first; the
//! lines a server may send before it are skipped, within bounds.

use std::collections::HashMap;

use pantau_proto::v1::{FailureReason, ProbeDetail, check_result::Detail};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::{Outcome, tcp};

/// A compiled `ssh` target.
#[derive(Debug, Clone)]
pub struct SshSpec {
    pub address: String,
    pub expect: Option<String>,
}

impl SshSpec {
    pub fn new(x: &pantau_config::SshTarget) -> Self {
        Self {
            address: x.address.to_string(),
            expect: x.expect.clone(),
        }
    }
}

/// Most bytes read looking for the version line (RFC 4253 lets a server
/// send other lines first; each at most 255 bytes).
const MAX_BANNER: usize = 8 * 1024;

/// The version line within `got`, once a whole one has arrived: `Ok(Some)`,
/// `Ok(None)` to read more, `Err` when what came is not SSH.
fn version_line(got: &[u8]) -> Result<Option<String>, String> {
    for line in got.split_inclusive(|b| *b == b'\n') {
        if !line.ends_with(b"\n") {
            // Incomplete: wait for more, unless it cannot be a version line.
            return if line.len() > 255 {
                Err("a line longer than 255 bytes".into())
            } else {
                Ok(None)
            };
        }
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.starts_with(b"SSH-") {
            if text.len() > 253 {
                return Err("a version line longer than 255 bytes".into());
            }
            return std::str::from_utf8(text)
                .map(|s| Some(s.to_owned()))
                .map_err(|_| "a version line that is not text".into());
        }
    }
    Ok(None)
}

fn shown(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(100)])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Runs the check of `spec`; the caller bounds the time.
pub async fn check(spec: &SshSpec, started: Instant) -> Outcome {
    let address = &spec.address;
    let mut stream = match tcp::connect(address, started).await {
        Ok(s) => s,
        Err(down) => return down,
    };
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let mut got = Vec::new();
    let mut buf = [0_u8; 1024];
    let line = loop {
        match version_line(&got) {
            Ok(Some(line)) => break line,
            Ok(None) if got.len() < MAX_BANNER => {}
            Ok(None) => {
                return Outcome::down(
                    started.elapsed(),
                    FailureReason::Protocol,
                    format!("{address} sent {MAX_BANNER} bytes without an SSH version line"),
                );
            }
            Err(why) => {
                return Outcome::down(
                    started.elapsed(),
                    FailureReason::Protocol,
                    format!("{address} is not an SSH server: it sent {why}: {:?}", shown(&got)),
                );
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) => {
                return Outcome::down(
                    started.elapsed(),
                    FailureReason::Protocol,
                    format!(
                        "{address} closed the connection without an SSH version line (it sent {:?})",
                        shown(&got)
                    ),
                );
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => {
                return Outcome::down(
                    started.elapsed(),
                    FailureReason::Connect,
                    format!("reading from {address} failed: {e}"),
                );
            }
        }
    };
    let latency = started.elapsed();
    // SSH-protoversion-softwareversion SP comments
    let rest = &line[4..];
    let (proto, software) = rest.split_once('-').unwrap_or((rest, ""));
    let software = software.split(' ').next().unwrap_or_default();
    let detail = Detail::Probe(ProbeDetail {
        peer,
        metadata: HashMap::from([
            ("banner".to_owned(), shown(line.as_bytes())),
            ("protocol".to_owned(), shown(proto.as_bytes())),
            ("software".to_owned(), shown(software.as_bytes())),
        ]),
        certificate: None,
    });
    if proto != "2.0" && proto != "1.99" {
        return Outcome::down(
            latency,
            FailureReason::Protocol,
            format!("{address} speaks SSH protocol {:?}, not 2.0", shown(proto.as_bytes())),
        )
        .with_detail(detail);
    }
    match &spec.expect {
        Some(want) if !line.contains(want.as_str()) => Outcome::down(
            latency,
            FailureReason::Assertion,
            format!(
                "{address} identifies as {:?}, which lacks the expected {want:?}",
                shown(line.as_bytes())
            ),
        )
        .with_detail(detail),
        _ => Outcome::up(latency, Some(detail)),
    }
}

#[cfg(test)]
mod tests {
    use super::version_line;

    #[test]
    fn the_version_line_is_found_after_other_lines_and_garbage_is_refused() {
        assert_eq!(
            version_line(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n").unwrap().unwrap(),
            "SSH-2.0-OpenSSH_9.2p1 Debian"
        );
        assert_eq!(version_line(b"hello\r\nSSH-2.0-x\r\n").unwrap().unwrap(), "SSH-2.0-x");
        assert_eq!(version_line(b"SSH-2.0-dropb").unwrap(), None);
        assert!(version_line(&[b'x'; 300]).is_err());
        let mut long = b"SSH-2.0-".to_vec();
        long.extend([b'a'; 300]);
        long.extend(b"\r\n");
        assert!(version_line(&long).is_err());
        assert!(version_line(b"SSH-2.0-\xff\xfe\r\n").is_err());
    }
}
