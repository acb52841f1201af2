//! `udp`: send a datagram and expect an answer (containing `expect`, when
//! set).

use super::parse::Problems;
use super::{CheckType, HostPort, RawTarget, TargetSpec};

/// A UDP send/expect check.
#[derive(Debug, Clone, PartialEq)]
pub struct UdpTarget {
    pub address: HostPort,
    /// Sent as one datagram (`\r\n`, `\t`, `\0`, `\\` escapes honoured).
    pub send: String,
    /// The answer must contain this; any answer when unset.
    pub expect: Option<String>,
}

/// Fields a `udp` target takes.
pub(super) const UDP_FIELDS: &[&str] = &["address", "send", "expect"];

/// Largest datagram a check sends.
pub const MAX_DATAGRAM: usize = 1400;

pub(super) fn address(check: CheckType, r: &RawTarget, p: &mut Problems<'_>) -> Option<HostPort> {
    let a = p.required(r.address.as_deref(), check, "address", ", as host:port")?;
    a.parse::<HostPort>().map_err(|why| p.add("address", a, why)).ok()
}

/// The typed spec of a `udp` target, or `None` with the problems added.
pub(super) fn parse_udp(r: &RawTarget, p: &mut Problems<'_>) -> Option<TargetSpec> {
    let send = p.required(r.send.clone(), CheckType::Udp, "send", ": the datagram to send");
    if let Some(s) = &send
        && (s.is_empty() || s.len() > MAX_DATAGRAM)
    {
        p.add("send", s, format!("must be 1–{MAX_DATAGRAM} bytes"));
    }
    if r.expect.as_deref() == Some("") {
        p.add("expect", "", "must not be empty: leave it out to accept any answer");
    }
    let address = address(CheckType::Udp, r, p)?;
    Some(TargetSpec::Udp(Box::new(UdpTarget {
        address,
        send: send?,
        expect: r.expect.clone(),
    })))
}

pub(super) fn udp_to_raw(x: UdpTarget, r: &mut RawTarget) {
    r.address = Some(x.address.to_string());
    r.send = Some(x.send);
    r.expect = x.expect;
}

#[cfg(test)]
mod tests {
    use super::super::refused;
    use crate::{CheckType, RawTarget};

    #[test]
    fn udp_and_ssh_targets_parse_round_trip_and_refuse_bad_fields_by_name() {
        let mut udp = RawTarget::new("u", CheckType::Udp);
        udp.address = Some("127.0.0.1:7".into());
        udp.send = Some("ping\\n".into());
        udp.expect = Some("pong".into());
        let parsed = udp.clone().parse("t").unwrap();
        assert_eq!(RawTarget::from(parsed), udp);
        let mut ssh = RawTarget::new("s", CheckType::Ssh);
        ssh.address = Some("127.0.0.1:22".into());
        ssh.expect = Some("OpenSSH".into());
        let parsed = ssh.clone().parse("t").unwrap();
        assert_eq!(RawTarget::from(parsed), ssh);

        let cases: [(CheckType, fn(&mut RawTarget), &str); 7] = [
            (CheckType::Udp, |r| r.send = None, "t.send"),
            (CheckType::Udp, |r| r.send = Some("x".repeat(2000)), "t.send"),
            (CheckType::Udp, |r| r.expect = Some(String::new()), "t.expect"),
            (CheckType::Udp, |r| r.address = Some("h:70000".into()), "t.address"),
            (CheckType::Ssh, |r| r.expect = Some("a\r\nb".into()), "t.expect"),
            (CheckType::Ssh, |r| r.send = Some("x".into()), "t.send"),
            (CheckType::Ssh, |r| r.address = None, "t.address"),
        ];
        for (check, edit, key) in cases {
            let mut r = RawTarget::new("x", check);
            r.address = Some("127.0.0.1:1".into());
            if check == CheckType::Udp {
                r.send = Some("x".into());
            }
            edit(&mut r);
            let e = refused(r);
            assert!(e.contains(key), "{key}: {e}");
        }
    }
}
