//! [`Smtp`]: an aiosmtpd (PyPI) SMTP server on a free loopback port, plain,
//! offering STARTTLS, or speaking TLS from the first byte, with a given
//! certificate. aiosmtpd is found in `.venv-smtp` at the workspace root
//! (`make deps-smtp` makes it with Debian's python3).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

use crate::{TestkitError, free_port};

const VENV: &str = ".venv-smtp";
/// How long start-up may take.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// The server: accepts and discards every message; prints `ready` once it listens.
const SERVER: &str = r"
import os, ssl, sys, time
from aiosmtpd.controller import Controller
class Handler:
    async def handle_DATA(self, server, session, envelope):
        return '250 OK discarded'
kw = {}
mode = os.environ.get('SMTP_TLS', '')
if mode:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.environ['SMTP_CERT'], os.environ['SMTP_KEY'])
    if mode == 'starttls':
        kw.update(tls_context=ctx)
    else:
        kw.update(ssl_context=ctx)
c = Controller(Handler(), hostname='127.0.0.1', port=int(sys.argv[1]), ident='pantau-test ESMTP', **kw)
c.start()
print('ready', flush=True)
while True:
    time.sleep(3600)
";

/// How the server speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text, no STARTTLS offered.
    None,
    /// Plain text, STARTTLS offered (not required).
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

/// A running aiosmtpd, killed when dropped.
pub struct Smtp {
    port: u16,
    _child: Child,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp").field("port", &self.port).finish_non_exhaustive()
    }
}

fn python() -> Result<PathBuf, TestkitError> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(VENV)
        .join("bin/python");
    if py.is_file() {
        return Ok(py);
    }
    Err(TestkitError::MissingPyPi {
        binary: "aiosmtpd",
        looked: format!("in {}", py.display()),
        package: "aiosmtpd",
        venv: VENV,
    })
}

impl Smtp {
    /// Starts aiosmtpd on 127.0.0.1; `cert` and `key` (PEM files) are
    /// needed for `StartTls` and `Implicit`.
    pub async fn start(tls: SmtpTls, cert_and_key: Option<(&Path, &Path)>) -> Result<Self, TestkitError> {
        let py = python()?;
        let port = free_port();
        let mut cmd = Command::new(&py);
        cmd.arg("-c").arg(SERVER).arg(port.to_string());
        match (tls, cert_and_key) {
            (SmtpTls::None, _) => {}
            (mode, Some((cert, key))) => {
                let m = if mode == SmtpTls::StartTls { "starttls" } else { "tls" };
                cmd.env("SMTP_TLS", m).env("SMTP_CERT", cert).env("SMTP_KEY", key);
            }
            (_, None) => {
                return Err(TestkitError::io(
                    "start",
                    &py,
                    std::io::Error::other("a TLS SMTP server needs a certificate and key"),
                ));
            }
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TestkitError::io("start", py.clone(), e))?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(READY_WITHIN, lines.next_line()).await;
        if let Ok(Ok(Some(line))) = &ready
            && line == "ready"
        {
            return Ok(Self { port, _child: child });
        }
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use tokio::io::AsyncReadExt;
            let _ = tokio::time::timeout(Duration::from_secs(2), e.read_to_string(&mut err)).await;
        }
        Err(match ready {
            Err(_) => TestkitError::NotReady {
                server: "aiosmtpd",
                after: READY_WITHIN,
                log_tail: err,
            },
            Ok(_) => TestkitError::Exited {
                server: "aiosmtpd",
                status: "no `ready` line".into(),
                log_tail: err,
            },
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}
