//! [`Alertmanager`]: a real Prometheus Alertmanager (Debian's
//! `prometheus-alertmanager`) on a free loopback port, with HA gossip off.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::{TestkitError, binary, free_port};

/// How long Alertmanager gets to answer `/-/ready` with 200.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running Alertmanager, killed when dropped.
pub struct Alertmanager {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
}

impl std::fmt::Debug for Alertmanager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alertmanager")
            .field("url", &self.url())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Alertmanager {
    /// Starts Alertmanager with `config` (the text of its `alertmanager.yml`)
    /// on a free port in a new temporary directory, and waits until it is ready.
    pub async fn start(config: &str) -> Result<Self, TestkitError> {
        let bin = binary::find_on_path("prometheus-alertmanager")
            .or_else(|| binary::find_on_path("alertmanager"))
            .ok_or(TestkitError::MissingBinary {
                binary: "prometheus-alertmanager",
                looked: "on PATH (nor alertmanager)".to_owned(),
                package: "prometheus-alertmanager",
            })?;
        let dir = tempfile::Builder::new()
            .prefix("pantau-alertmanager-")
            .tempdir()
            .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config).map_err(|e| TestkitError::io("write", &config_path, e))?;
        let log = dir.path().join("log");
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| TestkitError::io("open", &log, e))?;
        let err = out.try_clone().map_err(|e| TestkitError::io("open", &log, e))?;
        let port = free_port();
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Empty: no HA gossip listener on 0.0.0.0:9094.
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TestkitError::io("start", &bin, e))?;
        let mut am = Self {
            dir,
            port,
            child: Some(child),
        };
        am.wait_ready().await?;
        Ok(am)
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        binary::log_tail(&self.log_path(), 40)
    }

    async fn wait_ready(&mut self) -> Result<(), TestkitError> {
        let log = self.log_path();
        let port = self.port;
        binary::wait_until_ready("prometheus-alertmanager", &mut self.child, &log, READY_WITHIN, || {
            binary::http_ok(port, "/-/ready")
        })
        .await
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}
