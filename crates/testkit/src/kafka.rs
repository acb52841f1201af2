//! [`Kafka`]: a real Kafka-protocol broker, crates.io's `tansu`, on a free
//! loopback port with in-memory storage, in its own temporary directory.
//! Ready once it answers an `ApiVersions` request; it can be stopped (a
//! broker outage) and started again on the same port.
//!
//! [`KafkaOptions`] asks for SASL and for TLS:
//! - `--authentication`: tansu 0.6 (as `make deps` builds it) offers
//!   SCRAM-SHA-256 and SCRAM-SHA-512 (and OAUTHBEARER, which it then
//!   refuses); not PLAIN. Its users live in the storage engine, and with
//!   `memory://` none can be made: `tansu user create` itself needs an
//!   authenticated connection. So every login is refused — the broker's
//!   real SCRAM verdict on credentials it does not hold.
//! - TLS: tansu 0.6 takes `--cert`/`--key` but does not serve TLS with
//!   them, so TLS is Debian's `stunnel4` in front of it ([`crate::Stunnel`]),
//!   the broker advertising the TLS port so clients stay on TLS.

use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::process::{Process, on_free_ports};
use crate::{Stunnel, TestkitError, TlsFiles, binary, free_port};

/// How long `tansu` gets to answer.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// Starts tried with fresh ports when another process took one meanwhile.
const START_ATTEMPTS: u32 = 3;
/// The Cargo features `make deps` installs tansu with (`memory://` storage).
pub const TANSU_FEATURES: &str = " --features dynostore";

/// What a [`Kafka`] requires of its clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KafkaOptions {
    /// SASL authentication (`--authentication`).
    pub authentication: bool,
    /// TLS (stunnel in front; the broker advertises the TLS port).
    pub tls: bool,
}

/// A running `tansu broker`, killed when dropped.
pub struct Kafka {
    binary: PathBuf,
    dir: TempDir,
    port: u16,
    /// The port clients are told about: the TLS port with TLS.
    advertised: u16,
    options: KafkaOptions,
    process: Process,
    tls: Option<(TlsFiles, Stunnel)>,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka")
            .field("bootstrap", &self.bootstrap())
            .field("options", &self.options)
            .field("dir", &self.dir.path())
            .field("running", &self.process.is_running())
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
    /// Starts `tansu broker` with `memory://` storage on a free port, no
    /// authentication, no TLS, and waits until it answers.
    pub async fn start() -> Result<Self, TestkitError> {
        Self::start_with(KafkaOptions::default()).await
    }

    /// Starts `tansu broker` as `options` say and waits until it answers
    /// (through TLS too, with TLS).
    pub async fn start_with(options: KafkaOptions) -> Result<Self, TestkitError> {
        let binary = find_tansu()?;
        let dir = tempfile::Builder::new()
            .prefix("pantau-kafka-")
            .tempdir()
            .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        let process = Process::new("tansu", dir.path().join("tansu.log"));
        let port = free_port();
        let mut kafka = Self {
            binary,
            port,
            advertised: if options.tls { free_port() } else { port },
            options,
            process,
            tls: None,
            dir,
        };
        on_free_ports(&mut kafka, START_ATTEMPTS, Self::start_again, |k| {
            k.port = free_port();
            if !k.options.tls {
                k.advertised = k.port;
            }
        })
        .await?;
        if options.tls {
            let files = TlsFiles::generate(&kafka.dir.path().join("tls"))?;
            let stunnel = Stunnel::start(kafka.advertised, kafka.port, &files).await?;
            kafka.tls = Some((files, stunnel));
        }
        Ok(kafka)
    }

    /// `127.0.0.1:PORT`, for `bootstrap_servers`: the TLS port with TLS.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.advertised)
    }

    /// The broker's own (plaintext) port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA and server certificate stunnel serves, with TLS.
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref().map(|(f, _)| f)
    }

    /// The broker's log file (every run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.process.log_path().to_owned()
    }

    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// Kills the broker (SIGKILL, like a crash). Its in-memory topics and
    /// users are lost.
    pub async fn stop(&mut self) {
        self.process.stop().await;
    }

    /// Starts the broker on the same port and waits until it answers; does
    /// nothing when it is running.
    pub async fn start_again(&mut self) -> Result<(), TestkitError> {
        if self.process.is_running() {
            return Ok(());
        }
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised);
        let mut command = Command::new(&self.binary);
        command
            .arg("broker")
            .arg("--listener-url")
            .arg(&url)
            .arg("--advertised-listener-url")
            .arg(&advertised)
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .arg("--cluster-id")
            .arg("pantau-test")
            .current_dir(self.dir.path())
            .env("RUST_LOG", "warn");
        if self.options.authentication {
            command.arg("--authentication");
        }
        let port = self.port;
        self.process.start(command, READY_WITHIN, || answers(port)).await
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

/// A request frame: `api_key`, `version`, correlation id 1, client
/// `pantau-testkit`, then `body`, length-prefixed.
fn request(api_key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let client = b"pantau-testkit";
    let mut frame = Vec::new();
    frame.extend_from_slice(&api_key.to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&1i32.to_be_bytes()); // correlation id
    frame.extend_from_slice(&i16::try_from(client.len()).unwrap_or(0).to_be_bytes());
    frame.extend_from_slice(client);
    frame.extend_from_slice(body);
    let mut out = i32::try_from(frame.len()).unwrap_or(0).to_be_bytes().to_vec();
    out.extend_from_slice(&frame);
    out
}

/// An `ApiVersions` v0 request (correlation id 1, client `pantau-testkit`),
/// length-prefixed.
fn api_versions_request() -> Vec<u8> {
    request(18, 0, &[])
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
    async fn with_authentication_an_unauthenticated_client_is_refused() {
        let k = Kafka::start_with(KafkaOptions {
            authentication: true,
            tls: false,
        })
        .await
        .expect("tansu starts");
        // ApiVersions is answered (the readiness probe), anything else is not.
        assert!(answers(k.port()).await);
        assert!(k.create_topic("refused", 1).await.is_err(), "{}", k.log_tail());
    }

    #[tokio::test]
    async fn with_tls_it_answers_through_stunnel_on_the_advertised_port() {
        let k = Kafka::start_with(KafkaOptions {
            authentication: false,
            tls: true,
        })
        .await
        .expect("tansu and stunnel4 start");
        assert!(k.tls_files().is_some());
        assert_ne!(k.bootstrap(), format!("127.0.0.1:{}", k.port()));
        k.create_topic("over-tls", 1)
            .await
            .expect("topic created on the plaintext port");
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
