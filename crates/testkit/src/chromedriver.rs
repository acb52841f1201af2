//! [`ChromeDriver`]: Debian's `chromedriver` (package `chromium-driver`) on a
//! free loopback port, ready once `/status` answers 200, driving Debian's
//! `chromium` headless. A WebDriver client (the tests use `fantoccini`)
//! connects to [`ChromeDriver::url`] with [`ChromeDriver::capabilities`].

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::{TestkitError, binary, free_port};

/// How long chromedriver gets to answer `/status` with 200.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running chromedriver, killed when dropped (with the browsers it started).
pub struct ChromeDriver {
    dir: TempDir,
    port: u16,
    chromium: PathBuf,
    child: Option<Child>,
}

impl std::fmt::Debug for ChromeDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChromeDriver")
            .field("url", &self.url())
            .field("chromium", &self.chromium)
            .finish_non_exhaustive()
    }
}

impl ChromeDriver {
    /// Starts chromedriver on a free loopback port; fails naming the Debian
    /// package when `chromedriver` or `chromium` is missing.
    pub async fn start() -> Result<Self, TestkitError> {
        let bin = binary::require("chromedriver", "chromium-driver")?;
        let chromium = binary::require("chromium", "chromium")?;
        let dir = tempfile::Builder::new()
            .prefix("pantau-chromedriver-")
            .tempdir()
            .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        let log = dir.path().join("log");
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| TestkitError::io("open", &log, e))?;
        let err = out.try_clone().map_err(|e| TestkitError::io("open", &log, e))?;
        let port = free_port();
        let child = Command::new(&bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TestkitError::io("start", &bin, e))?;
        let mut driver = Self {
            dir,
            port,
            chromium,
            child: Some(child),
        };
        let log = driver.log_path();
        binary::wait_until_ready("chromedriver", &mut driver.child, &log, READY_WITHIN, || {
            binary::http_ok(port, "/status")
        })
        .await?;
        Ok(driver)
    }

    /// `http://127.0.0.1:PORT`, the WebDriver endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// W3C capabilities for a headless Chromium of `width`×`height` pixels,
    /// with its profile in this driver's temporary directory. As root the
    /// sandbox cannot start, so it is off (the browser only opens loopback
    /// pages the test serves).
    pub fn capabilities(&self, width: u32, height: u32) -> serde_json::Map<String, serde_json::Value> {
        let profile = self.dir.path().join(format!("profile-{}", free_port()));
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-extensions".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({ "binary": self.chromium, "args": args }),
        );
        caps
    }

    /// The driver's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// The last lines of the driver's log, for failure messages.
    pub fn log_tail(&self) -> String {
        binary::log_tail(&self.log_path(), 40)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chromedriver_starts_and_answers_status() {
        let d = ChromeDriver::start()
            .await
            .expect("chromedriver (Debian: chromium-driver)");
        assert!(binary::http_ok(d.port, "/status").await, "{}", d.log_tail());
        let caps = d.capabilities(800, 600);
        assert!(caps["goog:chromeOptions"]["args"].to_string().contains("--headless"));
    }
}
