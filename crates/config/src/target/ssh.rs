//! `ssh`: read the server's version banner.

use super::parse::Problems;
use super::udp::address;
use super::{CheckType, HostPort, RawTarget, TargetSpec};

/// An SSH banner check.
#[derive(Debug, Clone, PartialEq)]
pub struct SshTarget {
    pub address: HostPort,
    /// The version line (`SSH-2.0-OpenSSH_9.2p1 …`) must contain this.
    pub expect: Option<String>,
}

/// Fields an `ssh` target takes.
pub(super) const FIELDS: &[&str] = &["address", "expect"];

/// The typed spec of an `ssh` target, or `None` with the problems added.
pub(super) fn parse(r: &RawTarget, p: &mut Problems<'_>) -> Option<TargetSpec> {
    if let Some(e) = &r.expect
        && (e.is_empty() || e.len() > 255 || e.chars().any(char::is_control))
    {
        p.add("expect", e, "must be 1–255 bytes of a version line, e.g. OpenSSH_9");
    }
    let address = address(CheckType::Ssh, r, p)?;
    Some(TargetSpec::Ssh(SshTarget {
        address,
        expect: r.expect.clone(),
    }))
}

pub(super) fn to_raw(x: SshTarget, r: &mut RawTarget) {
    r.address = Some(x.address.to_string());
    r.expect = x.expect;
}
