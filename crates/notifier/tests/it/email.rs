//! Email through a real SMTP server on loopback: aiosmtpd (PyPI) writes
//! every message it receives to a directory, which the test reads back.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use pantau_core::bus::memory::MemoryBus;
use pantau_proto::v1::{AlertState, Severity};
use serde_json::json;

use crate::harness::{Running, config, event, publish};

/// The Python with aiosmtpd: `.venv-smtp` at the workspace root (made by `make deps`).
fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let py = root.join(".venv-smtp/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `make deps` (it makes the venv with /usr/bin/python3 -m venv and installs aiosmtpd from PyPI)",
        py.display()
    );
    py
}

const SERVER: &str = r"
import asyncio, sys, pathlib
from aiosmtpd.controller import Controller
out = pathlib.Path(sys.argv[2])
import itertools
counter = itertools.count()
class Handler:
    async def handle_DATA(self, server, session, envelope):
        n = next(counter)
        tls = session.ssl or server.transport.get_extra_info('ssl_object') is not None
        (out / f'{n}.rcpt').write_text(','.join(envelope.rcpt_tos))
        (out / f'{n}.tls').write_text('yes' if tls else 'no')
        # The message last, atomically: once it exists, everything else does.
        (out / f'{n}.eml.tmp').write_bytes(envelope.content)
        (out / f'{n}.eml.tmp').rename(out / f'{n}.eml')
        return '250 OK stored'
import os, ssl
kw = {}
if os.environ.get('SMTP_USER'):
    from aiosmtpd.smtp import AuthResult, LoginPassword
    user, password = os.environ['SMTP_USER'].encode(), os.environ['SMTP_PASS'].encode()
    def auth(server, session, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and data.login == user and data.password == password
        return AuthResult(success=ok, handled=False)
    kw.update(authenticator=auth, auth_required=True, auth_require_tls=False)
mode = os.environ.get('SMTP_TLS')
if mode:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.environ['SMTP_CERT'], os.environ['SMTP_KEY'])
    if mode == 'starttls':
        kw.update(tls_context=ctx, require_starttls=True)
    else:
        kw.update(ssl_context=ctx)
c = Controller(Handler(), hostname='127.0.0.1', port=int(sys.argv[1]), **kw)
c.start()
print('ready', flush=True)
import time
while True:
    time.sleep(3600)
";

struct Smtp {
    child: tokio::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Smtp {
    /// `env`: SMTP_USER + SMTP_PASS (auth required), SMTP_TLS (`starttls`
    /// or `tls`) + SMTP_CERT + SMTP_KEY.
    async fn start(env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = pantau_testkit::free_port();
        let mut child = tokio::process::Command::new(python())
            .arg("-c")
            .arg(SERVER)
            .arg(port.to_string())
            .arg(dir.path())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start aiosmtpd");
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("aiosmtpd started in time")
            .unwrap();
        assert_eq!(line.as_deref(), Some("ready"));
        Self { child, port, dir }
    }

    async fn messages(&self, n: usize) -> Vec<(String, String)> {
        tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let mut got = Vec::new();
                for i in 0..n {
                    let eml = self.dir.path().join(format!("{i}.eml"));
                    let rcpt = self.dir.path().join(format!("{i}.rcpt"));
                    if let (Ok(m), Ok(r)) = (std::fs::read_to_string(&eml), std::fs::read_to_string(&rcpt)) {
                        got.push((m, r));
                    }
                }
                if got.len() == n {
                    return got;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
        .await
        .expect("the SMTP server received the messages")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_reaches_a_real_smtp_server() {
    let mut smtp = Smtp::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(MemoryBus::new());
    let cfg = config(
        dir.path(),
        json!({
            "channels": [{"name": "mail", "type": "email", "to": ["ops@example.org", "noc@example.org"],
                "smtp": {"host": "127.0.0.1", "port": smtp.port, "tls": "none", "from": "Pantau <pantau@example.org>"}}],
            "routes": [{"severity": ["critical"], "channels": ["mail"]}],
        }),
    );
    let n = Running::start(cfg, bus.clone()).await;
    publish(bus.as_ref(), &event("db-down", AlertState::Firing, Severity::Critical)).await;
    // A warning is not routed to email.
    publish(bus.as_ref(), &event("disk", AlertState::Firing, Severity::Warning)).await;
    let got = smtp.messages(1).await;
    let (msg, rcpt) = &got[0];
    assert_eq!(rcpt, "ops@example.org,noc@example.org");
    assert!(msg.contains("From: Pantau <pantau@example.org>"), "{msg}");
    assert!(msg.contains("To: ops@example.org, noc@example.org"), "{msg}");
    assert!(msg.contains("Subject: =?utf-8?") || msg.contains("Subject: "), "{msg}");
    assert!(msg.contains("db-down is down"), "{msg}");
    assert!(msg.contains("on api.example.org"), "{msg}");
    assert!(msg.contains("Message-ID: <"), "{msg}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!smtp.dir.path().join("1.eml").exists(), "the warning went to email");
    n.stop().await;
    smtp.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_authenticates_and_a_wrong_password_is_given_up() {
    let mut smtp = Smtp::start(&[("SMTP_USER", "pantau".into()), ("SMTP_PASS", "s3cret-smtp".into())]).await;
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(MemoryBus::new());
    let channel = |name: &str, password: &str| {
        json!({"name": name, "type": "email", "to": ["ops@example.org"],
            "smtp": {"host": "127.0.0.1", "port": smtp.port, "tls": "none", "username": "pantau",
                     "password": password, "from": "pantau@example.org"}})
    };
    let cfg = config(
        dir.path(),
        json!({
            "channels": [channel("good", "s3cret-smtp"), channel("bad", "wrong-password")],
            "routes": [{"channels": ["good", "bad"]}],
        }),
    );
    assert!(!cfg.to_masked_yaml().contains("s3cret-smtp"));
    let n = Running::start(cfg, bus.clone()).await;
    publish(bus.as_ref(), &event("auth", AlertState::Firing, Severity::Critical)).await;
    let got = smtp.messages(1).await;
    assert!(got[0].0.contains("auth is down"), "{}", got[0].0);
    // The wrong password is a permanent SMTP error (535): given up at once.
    let failed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let d = n
                .client()
                .list_deliveries(pantau_proto::v1::ListDeliveriesRequest {
                    channel: "bad".into(),
                    status: pantau_proto::v1::DeliveryStatus::Failed.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .deliveries;
            if let Some(d) = d.into_iter().next() {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    let Ok(failed) = failed else {
        let all = n
            .client()
            .list_deliveries(pantau_proto::v1::ListDeliveriesRequest::default())
            .await
            .unwrap()
            .into_inner();
        panic!("the bad channel's delivery did not fail: {all:?}");
    };
    assert_eq!(failed.attempts, 1);
    assert_eq!(failed.attempt_log[0].status_code, 535, "{:?}", failed.attempt_log);
    assert!(!failed.attempt_log[0].error.contains("wrong-password"));
    n.stop().await;
    smtp.child.kill().await.unwrap();
}

/// A private CA and a server certificate for 127.0.0.1 signed by it (openssl).
fn certificates(dir: &Path) -> (String, String, String) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (Debian package openssl) makes the test certificates");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"],
        &ec[..],
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=pantau test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"],
        &ec[..],
        &["-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1"],
    ]
    .concat());
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    let p = |f: &str| dir.join(f).display().to_string();
    (p("ca.pem"), p("srv.pem"), p("srv.key"))
}

async fn encrypted_delivery(mode: &str) {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(certs.path());
    let mut smtp = Smtp::start(&[
        ("SMTP_TLS", mode.to_owned()),
        ("SMTP_CERT", cert),
        ("SMTP_KEY", key),
        ("SMTP_USER", "pantau".into()),
        ("SMTP_PASS", "tls-pass".into()),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(MemoryBus::new());
    let cfg = config(
        dir.path(),
        json!({
            "channels": [
                {"name": "mail", "type": "email", "to": ["ops@example.org"],
                 "smtp": {"host": "127.0.0.1", "port": smtp.port, "tls": mode, "username": "pantau",
                          "password": "tls-pass", "from": "pantau@example.org", "ca_file": ca}},
                // Without the CA the server's certificate is not trusted: nothing is sent.
                {"name": "untrusted", "type": "email", "to": ["ops@example.org"],
                 "smtp": {"host": "127.0.0.1", "port": smtp.port, "tls": mode, "username": "pantau",
                          "password": "tls-pass", "from": "pantau@example.org"}},
            ],
            "routes": [{"channels": ["mail", "untrusted"]}],
        }),
    );
    let n = Running::start(cfg, bus.clone()).await;
    publish(bus.as_ref(), &event("tls", AlertState::Firing, Severity::Critical)).await;
    let got = smtp.messages(1).await;
    assert!(got[0].0.contains("tls is down"), "{}", got[0].0);
    let encrypted = std::fs::read_to_string(smtp.dir.path().join("0.tls")).unwrap();
    assert_eq!(encrypted, "yes", "the message went over plaintext");
    let untrusted = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let d = n
                .client()
                .list_deliveries(pantau_proto::v1::ListDeliveriesRequest {
                    channel: "untrusted".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .deliveries;
            if let Some(d) = d.into_iter().find(|d| !d.attempt_log.is_empty()) {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await
    .expect("the untrusted channel attempted");
    assert_ne!(untrusted.status(), pantau_proto::v1::DeliveryStatus::Delivered);
    let error = &untrusted.attempt_log[0].error;
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert!(
        !smtp.dir.path().join("1.eml").exists(),
        "an untrusted server got the message"
    );
    n.stop().await;
    smtp.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_starttls_with_a_private_ca() {
    encrypted_delivery("starttls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_implicit_tls_with_a_private_ca() {
    encrypted_delivery("tls").await;
}
