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
            // Its own process group, so the browsers it starts can be killed
            // with it (they outlive a killed chromedriver otherwise).
            .process_group(0)
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
            // The whole group: chromedriver and every chromium it started.
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
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

    #[tokio::test]
    async fn dropping_the_driver_kills_the_browsers_it_started() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let d = ChromeDriver::start()
            .await
            .expect("chromedriver (Debian: chromium-driver)");
        let body = serde_json::json!({"capabilities": {"alwaysMatch": d.capabilities(400, 300)}}).to_string();
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", d.port)).await.unwrap();
        let request = format!(
            "POST /session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(request.as_bytes()).await.unwrap();
        // chromedriver keeps the connection open: read the head, then the
        // body by its length.
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let complete = |a: &[u8]| {
            let text = String::from_utf8_lossy(a);
            let Some((head, body)) = text.split_once("\r\n\r\n") else {
                return false;
            };
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok());
            length.is_some_and(|n| body.len() >= n)
        };
        while !complete(&answer) {
            let n = tokio::time::timeout(std::time::Duration::from_secs(60), s.read(&mut buf))
                .await
                .expect("chromedriver answers POST /session within 60 s")
                .unwrap();
            assert!(n > 0, "chromedriver closed: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buf[..n]);
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.contains("sessionId"), "{answer}\n{}", d.log_tail());
        // Its browsers are the processes naming its directory.
        let marker = d.dir.path().display().to_string();
        let running = move || {
            std::process::Command::new("pgrep")
                .args(["-f", &marker])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        assert!(running(), "a browser runs for the session");
        drop(d);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while running() {
            assert!(
                std::time::Instant::now() < deadline,
                "the browsers outlived their driver"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}
