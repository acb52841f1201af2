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
class Handler:
    async def handle_DATA(self, server, session, envelope):
        n = len(list(out.iterdir()))
        (out / f'{n}.eml.tmp').write_bytes(envelope.content)
        (out / f'{n}.eml.tmp').rename(out / f'{n}.eml')
        (out / f'{n}.rcpt').write_text(','.join(envelope.rcpt_tos))
        return '250 OK stored'
kw = {}
if len(sys.argv) > 3:
    from aiosmtpd.smtp import AuthResult, LoginPassword
    user, password = sys.argv[3].encode(), sys.argv[4].encode()
    def auth(server, session, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and data.login == user and data.password == password
        return AuthResult(success=ok, handled=False)
    kw = dict(authenticator=auth, auth_required=True, auth_require_tls=False)
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
    /// `auth`: a user and password the server requires.
    async fn start(auth: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = pantau_testkit::free_port();
        let mut child = tokio::process::Command::new(python())
            .arg("-c")
            .arg(SERVER)
            .arg(port.to_string())
            .arg(dir.path())
            .args(auth.map(|(u, p)| [u.to_owned(), p.to_owned()]).into_iter().flatten())
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
    let mut smtp = Smtp::start(None).await;
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
    let mut smtp = Smtp::start(Some(("pantau", "s3cret-smtp"))).await;
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
                .await
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
            .await
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
