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
c = Controller(Handler(), hostname='127.0.0.1', port=int(sys.argv[1]))
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
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = pantau_testkit::free_port();
        let mut child = tokio::process::Command::new(python())
            .arg("-c")
            .arg(SERVER)
            .arg(port.to_string())
            .arg(dir.path())
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
    let mut smtp = Smtp::start().await;
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
