//! [`Redis`]: Debian's `redis-server` on a free loopback port, in a
//! temporary directory, with no persistence, asking for a password.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::{TestkitError, binary, free_port};

/// The password of the default user of every [`Redis`].
pub const REDIS_PASSWORD: &str = "pantau-redis-test-pw";

/// How long start-up may take.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// A running `redis-server`, killed when dropped.
pub struct Redis {
    dir: TempDir,
    port: u16,
    child: Child,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Starts `redis-server` on 127.0.0.1 with [`REDIS_PASSWORD`]; ready once
    /// it answers `PING` (with `NOAUTH`, as it asks for the password).
    pub async fn start() -> Result<Self, TestkitError> {
        let bin = binary::require("redis-server", "redis-server")?;
        let dir = tempfile::Builder::new()
            .prefix("pantau-redis-")
            .tempdir()
            .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        let port = free_port();
        let log = dir.path().join("log");
        let out = std::fs::File::create(&log).map_err(|e| TestkitError::io("create", log.clone(), e))?;
        let child = Command::new(&bin)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(["--requirepass", REDIS_PASSWORD])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TestkitError::io("start", bin.clone(), e))?;
        let mut me = Self { dir, port, child };
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = me
                .child
                .try_wait()
                .map_err(|e| TestkitError::io("wait for", bin.clone(), e))?
            {
                return Err(TestkitError::Exited {
                    server: "redis-server",
                    status: status.to_string(),
                    log_tail: binary::log_tail(&log, 20),
                });
            }
            if let Ok(reply) = me.raw("PING\r\n").await
                && (reply.starts_with("+PONG") || reply.starts_with("-NOAUTH"))
            {
                return Ok(me);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(TestkitError::NotReady {
                    server: "redis-server",
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

    /// Sets `key` to `value` (after AUTH), for a check that reads it.
    pub async fn set(&self, key: &str, value: &str) -> Result<(), TestkitError> {
        let resp = |words: &[&str]| {
            use std::fmt::Write as _;
            let mut s = format!("*{}\r\n", words.len());
            for w in words {
                let _ = write!(s, "${}\r\n{w}\r\n", w.len());
            }
            s
        };
        let text = resp(&["AUTH", REDIS_PASSWORD]) + &resp(&["SET", key, value]);
        let reply = self.raw(&text).await?;
        if reply.matches("+OK").count() == 2 {
            Ok(())
        } else {
            Err(TestkitError::Command {
                command: format!("redis SET {key}"),
                status: "unexpected reply".into(),
                output: reply,
            })
        }
    }

    /// Sends `text` and reads what comes back within a short while.
    async fn raw(&self, text: &str) -> Result<String, TestkitError> {
        let io = |e| TestkitError::io("talk to", self.dir.path().join("redis"), e);
        let mut s = TcpStream::connect(self.addr()).await.map_err(io)?;
        s.write_all(text.as_bytes()).await.map_err(io)?;
        let mut got = Vec::new();
        let mut buf = [0_u8; 1024];
        let want = text.matches("\r\n*").count() + 1;
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.split(|b| *b == b'\n').count() > want {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&got).into_owned())
    }
}
