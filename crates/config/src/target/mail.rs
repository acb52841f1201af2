//! `mail`: read an SMTP, IMAP or POP3 server's greeting, optionally over
//! TLS (implicit, `use_tls`, or upgraded with STARTTLS/STLS, `starttls`),
//! and report the certificate's expiry as the `tls` check does.

use serde::{Deserialize, Serialize};

use super::parse::{Problems, tls_files};
use super::udp::address;
use super::{CheckType, HostPort, RawTarget, TargetSpec, TlsFiles};

/// The mail protocol a `mail` target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailProtocol {
    /// SMTP (25, 587; 465 with `use_tls`): a `220` greeting; STARTTLS after EHLO.
    Smtp,
    /// IMAP (143; 993 with `use_tls`): `* OK`; STARTTLS after CAPABILITY.
    Imap,
    /// POP3 (110; 995 with `use_tls`): `+OK`; STLS after CAPA.
    Pop3,
}

impl MailProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smtp => "smtp",
            Self::Imap => "imap",
            Self::Pop3 => "pop3",
        }
    }

    /// The protocol named `text` (`smtp`, `imap`, `pop3`, any case).
    pub fn from_name(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "smtp" => Some(Self::Smtp),
            "imap" => Some(Self::Imap),
            "pop3" => Some(Self::Pop3),
            _ => None,
        }
    }
}

/// How a `mail` check speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTls {
    /// Plain text: the greeting only, no certificate.
    None,
    /// The greeting in plain text, then STARTTLS (STLS for POP3) and a handshake.
    StartTls,
    /// TLS from the first byte (SMTPS 465, IMAPS 993, POP3S 995).
    Implicit,
}

impl MailTls {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::StartTls => "starttls",
            Self::Implicit => "implicit",
        }
    }
}

/// A mail server check.
#[derive(Debug, Clone, PartialEq)]
pub struct MailTarget {
    pub protocol: MailProtocol,
    pub address: HostPort,
    /// `use_tls: true` is implicit TLS, `starttls: true` an upgrade; never both.
    pub use_tls: Option<bool>,
    pub starttls: Option<bool>,
    /// The greeting must contain this.
    pub expect: Option<String>,
    /// TLS only: SNI and the name verified; the address's host when unset.
    pub server_name: Option<String>,
    /// TLS only: verify the chain and name; true when unset.
    pub verify_tls: Option<bool>,
    /// TLS only: a certificate expiring within this many days is down; 14
    /// when unset, 0 to only report the days.
    pub warn_days: Option<u32>,
    /// TLS only.
    pub tls: TlsFiles,
}

impl MailTarget {
    pub fn tls_mode(&self) -> MailTls {
        if self.use_tls == Some(true) {
            MailTls::Implicit
        } else if self.starttls == Some(true) {
            MailTls::StartTls
        } else {
            MailTls::None
        }
    }
}

/// Fields a `mail` target takes.
pub(super) const FIELDS: &[&str] = &[
    "protocol",
    "address",
    "use_tls",
    "starttls",
    "expect",
    "server_name",
    "verify_tls",
    "warn_days",
    "ca_file",
    "client_cert",
    "client_key",
];

/// Longest `expect`: a greeting line is at most 512 bytes in SMTP.
pub const MAX_EXPECT: usize = 255;

/// The typed spec of a `mail` target, or `None` with the problems added.
pub(super) fn parse(r: &RawTarget, p: &mut Problems<'_>) -> Option<TargetSpec> {
    let protocol = p.required(r.protocol, CheckType::Mail, "protocol", ": smtp, imap or pop3");
    if r.use_tls == Some(true) && r.starttls == Some(true) {
        p.add(
            "starttls",
            "true",
            "cannot be combined with use_tls: true (implicit TLS); choose one",
        );
    }
    if let Some(e) = &r.expect
        && (e.is_empty() || e.len() > MAX_EXPECT || e.chars().any(char::is_control))
    {
        p.add(
            "expect",
            e,
            format!("must be 1–{MAX_EXPECT} bytes of a greeting line, e.g. ESMTP"),
        );
    }
    if r.use_tls != Some(true) && r.starttls != Some(true) {
        for (field, set) in [
            ("server_name", r.server_name.is_some()),
            ("verify_tls", r.verify_tls.is_some()),
            ("warn_days", r.warn_days.is_some()),
            ("ca_file", r.ca_file.is_some()),
            ("client_cert", r.client_cert.is_some()),
        ] {
            if set {
                p.add(field, "", "applies only with use_tls: true or starttls: true");
            }
        }
    }
    if let Some(d) = r.warn_days
        && d > 3650
    {
        p.add("warn_days", &d.to_string(), "must be at most 3650 days");
    }
    let address = address(CheckType::Mail, r, p);
    let tls = tls_files(r, p)?;
    Some(TargetSpec::Mail(Box::new(MailTarget {
        protocol: protocol?,
        address: address?,
        use_tls: r.use_tls,
        starttls: r.starttls,
        expect: r.expect.clone(),
        server_name: r.server_name.clone(),
        verify_tls: r.verify_tls,
        warn_days: r.warn_days,
        tls,
    })))
}

/// Sets the raw fields of `x`.
pub(super) fn to_raw(x: MailTarget, r: &mut RawTarget) {
    r.protocol = Some(x.protocol);
    r.address = Some(x.address.to_string());
    r.use_tls = x.use_tls;
    r.starttls = x.starttls;
    r.expect = x.expect;
    r.server_name = x.server_name;
    r.verify_tls = x.verify_tls;
    r.warn_days = x.warn_days;
    r.set_tls(x.tls);
}

#[cfg(test)]
mod tests {
    use super::{MailProtocol, MailTls};
    use crate::{CheckType, RawTarget, TargetSpec};

    fn mail(protocol: MailProtocol) -> RawTarget {
        let mut r = RawTarget::new("mx", CheckType::Mail);
        r.protocol = Some(protocol);
        r.address = Some("127.0.0.1:25".into());
        r
    }

    #[test]
    fn mail_targets_parse_and_round_trip() {
        for protocol in [MailProtocol::Smtp, MailProtocol::Imap, MailProtocol::Pop3] {
            let mut r = mail(protocol);
            r.starttls = Some(true);
            r.expect = Some("ready".into());
            r.warn_days = Some(30);
            r.server_name = Some("mail.example.org".into());
            let t = r.clone().parse("t").unwrap();
            let TargetSpec::Mail(m) = &t.spec else { panic!("{t:?}") };
            assert_eq!(m.tls_mode(), MailTls::StartTls);
            assert_eq!(m.protocol, protocol);
            assert_eq!(RawTarget::from(t), r);
            assert_eq!(MailProtocol::from_name(protocol.as_str()), Some(protocol));
        }
        let mut r = mail(MailProtocol::Imap);
        r.use_tls = Some(true);
        let t = r.parse("t").unwrap();
        let TargetSpec::Mail(m) = &t.spec else { panic!() };
        assert_eq!(m.tls_mode(), MailTls::Implicit);
    }

    #[test]
    fn a_bad_mail_target_is_refused_naming_the_field() {
        let cases: [(fn(&mut RawTarget), &str); 10] = [
            (|r| r.protocol = None, "t.protocol"),
            (|r| r.address = None, "t.address"),
            (|r| r.address = Some("mx".into()), "t.address"),
            (
                |r| {
                    r.use_tls = Some(true);
                    r.starttls = Some(true);
                },
                "t.starttls",
            ),
            (|r| r.expect = Some(String::new()), "t.expect"),
            (|r| r.expect = Some("a\r\nb".into()), "t.expect"),
            (|r| r.expect = Some("e".repeat(300)), "t.expect"),
            (|r| r.warn_days = Some(7), "t.warn_days"),
            (|r| r.verify_tls = Some(false), "t.verify_tls"),
            (|r| r.send = Some("EHLO x".into()), "t.send"),
        ];
        for (edit, key) in cases {
            let mut r = mail(MailProtocol::Smtp);
            edit(&mut r);
            let e = r
                .parse("t")
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            assert!(e.contains(key), "{key}: {e}");
        }
    }
}
