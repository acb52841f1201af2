//! [`Sshd`]: Debian's OpenSSH server (`openssh-server`) on a free loopback
//! port with a host key made for it in a temporary directory and no
//! configuration file; nobody can log in (no authorized keys), which is
//! enough for banner checks.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::{TestkitError, binary, free_port};

/// How long start-up may take.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// A running `sshd`, killed when dropped.
pub struct Sshd {
    _dir: TempDir,
    port: u16,
    child: Child,
}

impl std::fmt::Debug for Sshd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sshd").field("port", &self.port).finish_non_exhaustive()
    }
}

impl Sshd {
    /// Makes an ed25519 host key and starts `sshd -D` on 127.0.0.1; ready
    /// once it sends its version line.
    pub async fn start() -> Result<Self, TestkitError> {
        let sshd = binary::require("sshd", "openssh-server")?;
        let keygen = binary::require("ssh-keygen", "openssh-client")?;
        let dir = tempfile::Builder::new()
            .prefix("pantau-sshd-")
            .tempdir()
            .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        let key = dir.path().join("host_ed25519");
        let mut cmd = Command::new(&keygen);
        cmd.args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key);
        binary::run(cmd).await?;
        if crate::postgres::effective_uid_is_root() {
            // As root sshd wants its privilege separation directory, which
            // the Debian service makes at boot.
            std::fs::create_dir_all("/run/sshd").map_err(|e| TestkitError::io("create", "/run/sshd", e))?;
        }
        let port = free_port();
        let log = dir.path().join("log");
        let out = std::fs::File::create(&log).map_err(|e| TestkitError::io("create", log.clone(), e))?;
        let child = Command::new(&sshd)
            .args(["-D", "-e", "-f", "/dev/null"])
            .arg("-o")
            .arg(format!("HostKey={}", key.display()))
            .arg("-o")
            .arg(format!("ListenAddress=127.0.0.1:{port}"))
            .arg("-o")
            .arg(format!("PidFile={}", dir.path().join("pid").display()))
            .args([
                "-o",
                "PasswordAuthentication=no",
                "-o",
                "KbdInteractiveAuthentication=no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TestkitError::io("start", sshd.clone(), e))?;
        let mut me = Self { _dir: dir, port, child };
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = me
                .child
                .try_wait()
                .map_err(|e| TestkitError::io("wait for", sshd.clone(), e))?
            {
                return Err(TestkitError::Exited {
                    server: "sshd",
                    status: status.to_string(),
                    log_tail: binary::log_tail(&log, 20),
                });
            }
            if banner(me.addr()).await {
                return Ok(me);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(TestkitError::NotReady {
                    server: "sshd",
                    after: READY_WITHIN,
                    log_tail: binary::log_tail(&log, 20),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// Whether `addr` sends something starting `SSH-` within a short while.
async fn banner(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return false;
    };
    let mut buf = [0_u8; 4];
    matches!(
        tokio::time::timeout(Duration::from_millis(500), s.read_exact(&mut buf)).await,
        Ok(Ok(_)) if &buf == b"SSH-"
    )
}
