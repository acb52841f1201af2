//! [`Process`]: the spawn-and-wait shape the restartable starters share
//! (`nats-server`, `tansu`, `stunnel4`, `tinyproxy`, `danted`): one log
//! file every run appends to, a child killed on drop, a readiness probe,
//! and a retry on fresh ports when another process took one between
//! [`crate::free_port`] and the bind.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::{TestkitError, binary};

/// A server process that can be stopped and started again.
pub(crate) struct Process {
    server: &'static str,
    log: PathBuf,
    child: Option<Child>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("server", &self.server)
            .field("log", &self.log)
            .field("running", &self.child.is_some())
            .finish()
    }
}

impl Process {
    /// A stopped `server` logging to `log`.
    pub(crate) fn new(server: &'static str, log: PathBuf) -> Self {
        Self {
            server,
            log,
            child: None,
        }
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log
    }

    pub(crate) fn log_tail(&self) -> String {
        binary::log_tail(&self.log, 40)
    }

    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Spawns `command` (stdin closed, stdout and stderr appended to the
    /// log, killed on drop) and waits until `probe` answers true within
    /// `within`; stopped again when it does not. Stops a running one first.
    pub(crate) async fn start<F, Fut>(
        &mut self,
        mut command: Command,
        within: Duration,
        probe: F,
    ) -> Result<(), TestkitError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        self.stop().await;
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| TestkitError::io("open", &self.log, e))?;
        let err = out.try_clone().map_err(|e| TestkitError::io("open", &self.log, e))?;
        command.stdin(Stdio::null()).stdout(out).stderr(err).kill_on_drop(true);
        let shown = binary::describe(&command);
        let child = command.spawn().map_err(|e| TestkitError::io("start", shown, e))?;
        self.child = Some(child);
        let ready = binary::wait_until_ready(self.server, &mut self.child, &self.log, within, probe).await;
        if ready.is_err() {
            self.stop().await;
        }
        ready
    }

    /// Kills the process (SIGKILL, like a crash) and reaps it; does nothing
    /// when it is not running.
    pub(crate) async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error means it has already exited; `wait` reaps it either way.
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // `kill_on_drop` would too; this makes it explicit and immediate.
            let _ = child.start_kill();
        }
    }
}

/// Runs `start` on `server` up to `attempts` times, letting `repick` choose
/// fresh ports after a start that failed because a port was taken.
pub(crate) async fn on_free_ports<S>(
    server: &mut S,
    attempts: u32,
    mut start: impl AsyncFnMut(&mut S) -> Result<(), TestkitError>,
    mut repick: impl FnMut(&mut S),
) -> Result<(), TestkitError> {
    let mut attempt = 1;
    loop {
        match start(server).await {
            Err(e) if attempt < attempts && e.port_taken() => {
                attempt += 1;
                repick(server);
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_process_that_exits_is_reported_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Process::new("sh", dir.path().join("log"));
        let mut command = Command::new("sh");
        command.args(["-c", "echo going away; exit 3"]);
        let e = p
            .start(command, Duration::from_secs(5), || async { false })
            .await
            .unwrap_err();
        assert!(!p.is_running());
        assert!(e.to_string().contains("going away"), "{e}");
    }

    #[tokio::test]
    async fn a_ready_process_runs_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Process::new("sleep", dir.path().join("log"));
        let mut command = Command::new("sleep");
        command.arg("30");
        p.start(command, Duration::from_secs(5), || async { true })
            .await
            .unwrap();
        assert!(p.is_running());
        p.stop().await;
        assert!(!p.is_running());
    }

    #[tokio::test]
    async fn taken_ports_are_retried_with_fresh_ones() {
        let mut tries = 0u32;
        let r = on_free_ports(
            &mut tries,
            3,
            async |t: &mut u32| {
                *t += 1;
                Err(TestkitError::NotReady {
                    server: "x",
                    after: Duration::ZERO,
                    log_tail: "Address already in use".into(),
                })
            },
            |_| {},
        )
        .await;
        assert!(r.is_err());
        assert_eq!(tries, 3);
    }
}
