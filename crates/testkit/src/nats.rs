//! [`Nats`]: a real `nats-server` with JetStream on a free loopback port.

use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::process::{Process, on_free_ports};
use crate::{TestkitError, binary, free_port};

/// How long `nats-server` gets to answer `/healthz` with 200.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// Starts tried with fresh ports when another process took one meanwhile.
const START_ATTEMPTS: u32 = 3;

/// A running `nats-server` with JetStream, killed when dropped.
///
/// The client port and the JetStream store directory stay the same across
/// [`Nats::stop`] and [`Nats::start_again`], so streams, their messages and
/// durable consumers survive a restart.
pub struct Nats {
    binary: PathBuf,
    dir: TempDir,
    port: u16,
    monitor_port: u16,
    process: Process,
}

impl std::fmt::Debug for Nats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nats")
            .field("url", &self.url())
            .field("monitor_port", &self.monitor_port)
            .field("dir", &self.dir.path())
            .field("running", &self.process.is_running())
            .finish_non_exhaustive()
    }
}

impl Nats {
    /// Starts `nats-server -js` on free ports in a new temporary directory and
    /// waits until it is healthy.
    pub async fn start() -> Result<Self, TestkitError> {
        let binary = binary::require("nats-server", "nats-server")?;
        let dir = tempfile::Builder::new()
            .prefix("pantau-nats-")
            .tempdir()
            .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        let process = Process::new("nats-server", dir.path().join("nats.log"));
        let mut nats = Self {
            binary,
            dir,
            port: free_port(),
            monitor_port: free_port(),
            process,
        };
        on_free_ports(&mut nats, START_ATTEMPTS, Self::start_again, |n| {
            n.port = free_port();
            n.monitor_port = free_port();
        })
        .await?;
        Ok(nats)
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` of the monitoring endpoint (`/healthz`, `/jsz`, ..).
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("js")
    }

    /// The server's log file (stdout and stderr of every run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.process.log_path().to_owned()
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    /// Whether the server process is running (it was started and not stopped).
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// Kills the server (SIGKILL, like a crash) and waits for it to exit. The
    /// store directory is kept. Does nothing when it is not running.
    pub async fn stop(&mut self) {
        self.process.stop().await;
    }

    /// Starts the server again on the same ports with the same store, and
    /// waits until it is healthy. Stops it first if it is running.
    pub async fn start_again(&mut self) -> Result<(), TestkitError> {
        let mut command = Command::new(&self.binary);
        command
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string(), "-js", "-sd"])
            .arg(self.store_dir());
        let port = self.monitor_port;
        self.process.start(command, READY_WITHIN, || healthz(port)).await
    }
}

/// Whether `GET /healthz` on the monitoring port answers 200.
pub(crate) async fn healthz(port: u16) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    match tokio::time::timeout(Duration::from_secs(1), attempt).await {
        Ok(Ok(response)) => status_is_ok(&response),
        _ => false,
    }
}

fn status_is_ok(response: &[u8]) -> bool {
    let line = response.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    parts.next().is_some_and(|v| v.starts_with(b"HTTP/")) && parts.next() == Some(b"200".as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line() {
        assert!(status_is_ok(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"));
        assert!(!status_is_ok(b"HTTP/1.1 503 Service Unavailable\r\n\r\n"));
        assert!(!status_is_ok(b""));
    }

    #[tokio::test]
    async fn starts_stops_and_starts_again_on_the_same_port() {
        let mut nats = Nats::start().await.expect("nats-server starts");
        assert!(nats.url().starts_with("nats://127.0.0.1:"));
        assert!(healthz(nats.monitor_port).await);
        nats.stop().await;
        assert!(!nats.is_running());
        assert!(!healthz(nats.monitor_port).await);
        nats.start_again().await.expect("nats-server starts again");
        assert!(healthz(nats.monitor_port).await);
        assert!(nats.store_dir().join("jetstream").is_dir(), "{}", nats.log_tail());
    }
}
