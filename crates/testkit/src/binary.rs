//! Finding the server binaries, running helper commands, and reading logs.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::TestkitError;

/// Directories searched after `PATH`: Debian puts servers in `sbin`, which a
/// non-login shell's `PATH` may lack.
const EXTRA_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin"];

/// The executable `name` from `PATH` (or a standard `sbin`/`bin` directory).
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// `name` from `PATH`, or an error naming the Debian `package` to install.
pub(crate) fn require(name: &'static str, package: &'static str) -> Result<PathBuf, TestkitError> {
    find_on_path(name).ok_or_else(|| TestkitError::MissingBinary {
        binary: name,
        looked: "on PATH".to_owned(),
        package,
    })
}

pub(crate) fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `command` to completion; a non-zero exit is an error carrying its
/// output.
pub(crate) async fn run(mut command: Command) -> Result<String, TestkitError> {
    let shown = describe(&command);
    command.stdin(std::process::Stdio::null()).kill_on_drop(true);
    let output = command
        .output()
        .await
        .map_err(|source| TestkitError::io("run", shown.clone(), source))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if output.status.success() {
        Ok(text)
    } else {
        Err(TestkitError::Command {
            command: shown,
            status: output.status.to_string(),
            output: text,
        })
    }
}

/// `program arg arg ..` for messages.
pub(crate) fn describe(command: &Command) -> String {
    let std = command.as_std();
    std::iter::once(std.get_program())
        .chain(std.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `lines` lines of a log file, or a note on why there are none.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(no log at {}: {e})", path.display()),
    }
}

/// Waits until `probe` says the server answers; fails with the log's tail if
/// the process exits first (and forgets it) or `within` passes.
pub(crate) async fn wait_until_ready<F, Fut>(
    server: &'static str,
    child: &mut Option<tokio::process::Child>,
    log: &Path,
    within: std::time::Duration,
    mut probe: F,
) -> Result<(), TestkitError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(c) = child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            *child = None;
            return Err(TestkitError::Exited {
                server,
                status: status.to_string(),
                log_tail: log_tail(log, 40),
            });
        }
        if probe().await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TestkitError::NotReady {
                server,
                after: within,
                log_tail: log_tail(log, 40),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Whether `GET path` on 127.0.0.1:`port` answers 200 within a second.
pub(crate) async fn http_ok(port: u16, path: &str) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes())
            .await?;
        // The status line is enough (some servers keep the connection open).
        let mut response = Vec::new();
        let mut buf = [0u8; 256];
        while !response.contains(&b'\n') {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(response)
    };
    match tokio::time::timeout(std::time::Duration::from_secs(1), attempt).await {
        Ok(Ok(response)) => {
            let line = response.split(|b| *b == b'\n').next().unwrap_or_default();
            let mut parts = line.split(|b| *b == b' ');
            parts.next().is_some_and(|v| v.starts_with(b"HTTP/")) && parts.next() == Some(b"200".as_slice())
        }
        _ => false,
    }
}
