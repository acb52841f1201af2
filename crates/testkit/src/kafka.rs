//! [`Kafka`]: a real Kafka-protocol broker, crates.io's `tansu`, on a free
//! loopback port with in-memory storage, in its own temporary directory.
//! Ready once it answers an `ApiVersions` request; it can be stopped (a
//! broker outage) and started again on the same port.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::{TestkitError, binary, free_port};

/// How long `tansu` gets to answer.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// Starts tried with fresh ports when another process took one meanwhile.
const START_ATTEMPTS: u32 = 3;
/// The Cargo features `make deps` installs tansu with (`memory://` storage).
pub const TANSU_FEATURES: &str = " --features dynostore";

/// A running `tansu broker`, killed when dropped.
pub struct Kafka {
    binary: PathBuf,
    dir: TempDir,
    port: u16,
    child: Option<Child>,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka")
            .field("bootstrap", &self.bootstrap())
            .field("dir", &self.dir.path())
            .field("running", &self.child.is_some())
            .finish_non_exhaustive()
    }
}

/// `tansu` from `PATH` or `~/.cargo/bin`, or an error naming the crate.
fn find_tansu() -> Result<PathBuf, TestkitError> {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|d| d.join("bin").join("tansu"));
    binary::find_on_path("tansu")
        .or_else(|| cargo_bin.filter(|p| binary::is_executable(p)))
        .ok_or_else(|| TestkitError::MissingCrate {
            binary: "tansu",
            looked: "on PATH or in ~/.cargo/bin".to_owned(),
            package: "tansu",
            features: TANSU_FEATURES,
        })
}

impl Kafka {
    /// Starts `tansu broker` with `memory://` storage on a free port and
    /// waits until it answers.
    pub async fn start() -> Result<Self, TestkitError> {
        let binary = find_tansu()?;
        let dir = tempfile::Builder::new()
            .prefix("pantau-kafka-")
            .tempdir()
            .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        let mut kafka = Self {
            binary,
            dir,
            port: free_port(),
            child: None,
        };
        let mut attempt = 1;
        loop {
            match kafka.start_again().await {
                Err(e) if attempt < START_ATTEMPTS && e.port_taken() => {
                    attempt += 1;
                    kafka.port = free_port();
                }
                result => return result.map(|()| kafka),
            }
        }
    }

    /// `127.0.0.1:PORT`, for `bootstrap_servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's log file (every run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("tansu.log")
    }

    pub fn log_tail(&self) -> String {
        binary::log_tail(&self.log_path(), 40)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the broker (SIGKILL, like a crash). Its in-memory topics are lost.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }

    /// Starts the broker on the same port and waits until it answers; does
    /// nothing when it is running.
    pub async fn start_again(&mut self) -> Result<(), TestkitError> {
        if self.child.is_some() {
            return Ok(());
        }
        let log = self.log_path();
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| TestkitError::io("open", &log, e))?;
        let err = out.try_clone().map_err(|e| TestkitError::io("open", &log, e))?;
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut command = Command::new(&self.binary);
        command
            .arg("broker")
            .arg("--listener-url")
            .arg(&url)
            .arg("--advertised-listener-url")
            .arg(&url)
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .arg("--cluster-id")
            .arg("pantau-test")
            .current_dir(self.dir.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .map_err(|e| TestkitError::io("start", self.binary.clone(), e))?;
        self.child = Some(child);
        let port = self.port;
        binary::wait_until_ready("tansu", &mut self.child, &log, READY_WITHIN, || answers(port)).await
    }

    /// Creates `topic` with `partitions` partitions (`tansu topic create`).
    pub async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), TestkitError> {
        let mut command = Command::new(&self.binary);
        command
            .arg("topic")
            .arg("create")
            .arg(topic)
            .arg("--broker")
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .arg("--partitions")
            .arg(partitions.to_string())
            .env("RUST_LOG", "warn");
        binary::run(command).await.map(|_| ())
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// An `ApiVersions` v0 request (correlation id 1, client `pantau-testkit`),
/// length-prefixed.
fn api_versions_request() -> Vec<u8> {
    let client = b"pantau-testkit";
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    body.extend_from_slice(&0i16.to_be_bytes()); // version 0
    body.extend_from_slice(&1i32.to_be_bytes()); // correlation id
    body.extend_from_slice(&i16::try_from(client.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(client);
    let mut out = i32::try_from(body.len()).unwrap_or(0).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Whether the broker on 127.0.0.1:`port` answers `ApiVersions` with
/// correlation id 1 and error code 0 within a second.
pub(crate) async fn answers(port: u16) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(&api_versions_request()).await?;
        let len = s.read_i32().await?;
        let correlation = s.read_i32().await?;
        let error = s.read_i16().await?;
        Ok::<_, std::io::Error>(len > 6 && correlation == 1 && error == 0)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), attempt).await,
        Ok(Ok(true))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_framed() {
        let r = api_versions_request();
        let len = i32::from_be_bytes([r[0], r[1], r[2], r[3]]);
        assert_eq!(usize::try_from(len).unwrap(), r.len() - 4);
        assert_eq!(&r[4..6], &18i16.to_be_bytes());
    }

    #[test]
    fn missing_tansu_names_the_crate() {
        let e = TestkitError::MissingCrate {
            binary: "tansu",
            looked: "on PATH".into(),
            package: "tansu",
            features: TANSU_FEATURES,
        };
        assert!(
            e.to_string()
                .contains("cargo install --locked tansu --features dynostore"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn starts_answers_stops_and_starts_again() {
        let mut k = Kafka::start().await.expect("tansu starts");
        assert!(answers(k.port()).await, "{}", k.log_tail());
        k.create_topic("testkit-topic", 2).await.expect("topic created");
        k.stop().await;
        assert!(!answers(k.port()).await);
        k.start_again().await.expect("tansu starts again");
        assert!(answers(k.port()).await);
    }
}
