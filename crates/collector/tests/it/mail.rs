//! `mail` checks against real mail servers started by the testkit: aiosmtpd
//! (PyPI) plain, with STARTTLS and with implicit TLS, and Debian's dovecot
//! for IMAP, IMAPS, POP3 and POP3S, each presenting a certificate made here
//! with a known expiry; and against hostile servers made here (a refusal, a
//! server that is not mail, an endless line, data injected after STARTTLS,
//! silence).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pantau_collector::checks::{Checker, Outcome};
use pantau_collector::target::Target;
use pantau_config::{CheckType, CollectorConfig, MailProtocol, RawTarget};
use pantau_proto::v1::{FailureReason, MailDetail, TargetSource, check_result::Detail};
use pantau_testkit::{Dovecot, Smtp, SmtpTls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn run(t: &RawTarget) -> Outcome {
    let cfg = CollectorConfig {
        timeout: Duration::from_secs(3),
        ..CollectorConfig::default()
    };
    let parsed = Arc::new(t.clone().parse("t").unwrap_or_else(|e| panic!("{e:?}")));
    let target = Target::compile(&parsed, "t", &cfg, TargetSource::Config).unwrap_or_else(|e| panic!("{e:?}"));
    Checker::new().unwrap().check(&target).await
}

fn detail(o: &Outcome) -> &MailDetail {
    let Some(Detail::Mail(d)) = &o.detail else {
        panic!("no mail detail: {o:?}")
    };
    d
}

fn mail(protocol: MailProtocol, address: &str) -> RawTarget {
    let mut t = RawTarget::new("mx", CheckType::Mail);
    t.protocol = Some(protocol);
    t.address = Some(address.to_owned());
    t
}

/// A self-signed certificate for localhost and 127.0.0.1 valid `days` more
/// days, as PEM files in `dir`.
fn cert_files(dir: &std::path::Path, days: i64) -> (PathBuf, PathBuf) {
    let made = crate::trust::leaf("pantau-mail", &["localhost", "127.0.0.1"], -1, days, None);
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &made.pem).unwrap();
    std::fs::write(&key, made.key.serialize_pem()).unwrap();
    // Dovecot's processes read them as another user.
    for p in [dir, cert.as_path(), key.as_path()] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    (cert, key)
}

#[tokio::test]
async fn smtp_plain_greets_and_its_banner_is_compared() {
    let smtp = Smtp::start(SmtpTls::None, None).await.unwrap();
    let mut t = mail(MailProtocol::Smtp, &smtp.addr().to_string());
    t.expect = Some("pantau-test ESMTP".into());
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
    let d = detail(&o);
    assert!(
        d.banner.starts_with("220 ") && d.banner.contains("pantau-test ESMTP"),
        "{d:?}"
    );
    assert_eq!(d.protocol, "smtp");
    assert_eq!(d.tls_mode, "none");
    assert!(d.capabilities.iter().any(|c| c == "8BITMIME"), "{d:?}");
    assert!(d.certificate.is_none());

    t.expect = Some("Postfix".into());
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Assertion, "{o:?}");
    assert!(o.message.contains("Postfix"), "{}", o.message);

    // STARTTLS asked of a server that does not offer it.
    t.expect = None;
    t.starttls = Some(true);
    t.verify_tls = Some(false);
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Tls, "{o:?}");
    assert!(o.message.contains("does not offer STARTTLS"), "{}", o.message);
}

#[tokio::test]
async fn smtp_starttls_and_implicit_tls_report_the_certificate_and_its_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_files(dir.path(), 40);
    let starttls = Smtp::start(SmtpTls::StartTls, Some((&cert, &key))).await.unwrap();
    let mut t = mail(MailProtocol::Smtp, &starttls.addr().to_string());
    t.starttls = Some(true);
    // The self-signed certificate is refused when verified.
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Tls, "{o:?}");
    t.verify_tls = Some(false);
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
    let d = detail(&o);
    assert_eq!(d.tls_mode, "starttls");
    assert!(d.tls_version.contains("TLS"), "{d:?}");
    let c = d.certificate.as_ref().expect("certificate reported");
    assert_eq!(c.days_to_expiry, 40);
    assert!(c.subject.contains("pantau-mail"), "{c:?}");
    // After STARTTLS the capabilities are asked again, and STARTTLS is gone.
    assert!(!d.capabilities.iter().any(|c| c == "STARTTLS"), "{d:?}");
    t.warn_days = Some(60);
    let o = run(&t).await;
    assert_eq!(o.reason, FailureReason::Tls, "{o:?}");
    assert!(o.message.contains("expires in 40 days"), "{}", o.message);
    assert_eq!(detail(&o).certificate.as_ref().unwrap().days_to_expiry, 40);

    let implicit = Smtp::start(SmtpTls::Implicit, Some((&cert, &key))).await.unwrap();
    let mut t = mail(MailProtocol::Smtp, &implicit.addr().to_string());
    t.use_tls = Some(true);
    t.verify_tls = Some(false);
    let o = run(&t).await;
    assert!(o.up, "{o:?}");
    let d = detail(&o);
    assert_eq!(d.tls_mode, "implicit");
    assert!(d.banner.contains("pantau-test ESMTP"), "{d:?}");
    assert_eq!(d.certificate.as_ref().unwrap().days_to_expiry, 40);
    // Plain text to a TLS port is not SMTP.
    t.use_tls = None;
    t.verify_tls = None;
    let o = run(&t).await;
    assert!(!o.up, "{o:?}");
}

#[tokio::test]
async fn dovecot_imap_and_pop3_with_starttls_and_implicit_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_files(dir.path(), 20);
    let dovecot = Dovecot::start(&cert, &key).await.unwrap();
    for (protocol, plain, tls) in [
        (MailProtocol::Imap, dovecot.imap(), dovecot.imaps()),
        (MailProtocol::Pop3, dovecot.pop3(), dovecot.pop3s()),
    ] {
        let mut t = mail(protocol, &plain.to_string());
        t.expect = Some("Dovecot".into());
        let o = run(&t).await;
        assert!(o.up, "{protocol:?} plain: {o:?}");
        let stls = if protocol == MailProtocol::Imap {
            "STARTTLS"
        } else {
            "STLS"
        };
        assert!(detail(&o).capabilities.iter().any(|c| c == stls), "{o:?}");

        t.starttls = Some(true);
        t.verify_tls = Some(false);
        let o = run(&t).await;
        assert!(o.up, "{protocol:?} STARTTLS: {o:?}");
        assert_eq!(detail(&o).certificate.as_ref().unwrap().days_to_expiry, 20);
        t.warn_days = Some(30);
        let o = run(&t).await;
        assert_eq!(o.reason, FailureReason::Tls, "{protocol:?}: {o:?}");

        let mut t = mail(protocol, &tls.to_string());
        t.use_tls = Some(true);
        t.verify_tls = Some(false);
        let o = run(&t).await;
        assert!(o.up, "{protocol:?} implicit: {o:?}");
        assert!(detail(&o).banner.contains("Dovecot"), "{o:?}");
        assert_eq!(detail(&o).certificate.as_ref().unwrap().days_to_expiry, 20);
        t.verify_tls = None;
        t.ca_file = Some(cert.clone());
        t.server_name = Some("localhost".into());
        let o = run(&t).await;
        assert!(o.up, "{protocol:?} verified with ca_file: {o:?}");
    }
}

/// A server that reads a line and answers with the next of `script` each
/// time (the first is the greeting), then stays silent.
async fn scripted(script: &'static [&'static [u8]]) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0_u8; 1024];
                for (i, answer) in script.iter().enumerate() {
                    if i > 0 && s.read(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if s.write_all(answer).await.is_err() {
                        return;
                    }
                }
                while s.read(&mut buf).await.unwrap_or(0) > 0 {}
            });
        }
    });
    a
}

#[tokio::test]
async fn hostile_mail_servers_are_down_with_their_reason() {
    let cases: [(MailProtocol, &'static [&'static [u8]], bool, FailureReason, &str); 8] = [
        (
            MailProtocol::Smtp,
            &[b"554 no service for you\r\n"],
            false,
            FailureReason::Protocol,
            "554",
        ),
        (
            MailProtocol::Smtp,
            &[b"HTTP/1.1 400 Bad Request\r\n"],
            false,
            FailureReason::Protocol,
            "not an SMTP server",
        ),
        (
            MailProtocol::Imap,
            &[b"* BYE too busy\r\n"],
            false,
            FailureReason::Protocol,
            "BYE",
        ),
        (
            MailProtocol::Pop3,
            &[b"-ERR go away\r\n"],
            false,
            FailureReason::Protocol,
            "-ERR",
        ),
        (
            MailProtocol::Pop3,
            &[b"\0\xff\xfe\r\n"],
            false,
            FailureReason::Protocol,
            "not a POP3 server",
        ),
        // Data after the STARTTLS answer, before the handshake.
        (
            MailProtocol::Smtp,
            &[
                b"220 mx ESMTP\r\n",
                b"250-mx\r\n250 STARTTLS\r\n",
                b"220 go ahead\r\nINJECTED\r\n",
            ],
            true,
            FailureReason::Protocol,
            "injected",
        ),
        // STARTTLS offered, then refused.
        (
            MailProtocol::Imap,
            &[b"* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n", b"p2 NO not today\r\n"],
            true,
            FailureReason::Tls,
            "not today",
        ),
        // A greeting, then silence where the EHLO answer should be.
        (
            MailProtocol::Smtp,
            &[b"220 mx ESMTP\r\n"],
            false,
            FailureReason::Timeout,
            "",
        ),
    ];
    for (protocol, script, starttls, reason, words) in cases {
        let a = scripted(script).await;
        let mut t = mail(protocol, &a);
        if starttls {
            t.starttls = Some(true);
            t.verify_tls = Some(false);
        }
        let o = run(&t).await;
        assert_eq!(o.reason, reason, "{script:?}: {o:?}");
        assert!(o.message.contains(words), "{words}: {}", o.message);
        assert!(o.message.len() < 600, "{}", o.message);
    }

    // An endless line is cut off, not buffered.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let chunk = vec![b'x'; 16 * 1024];
                while s.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    let o = run(&mail(MailProtocol::Imap, &a)).await;
    assert_eq!(o.reason, FailureReason::Protocol, "{o:?}");
    assert!(o.message.contains("longer than"), "{}", o.message);

    let free = pantau_testkit::free_port();
    let o = run(&mail(MailProtocol::Pop3, &format!("127.0.0.1:{free}"))).await;
    assert_eq!(o.reason, FailureReason::Refused, "{o:?}");
}
