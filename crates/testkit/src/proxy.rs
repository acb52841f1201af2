//! Proxies for the collector's proxy tests: [`HttpProxy`] is Debian's
//! `tinyproxy` (HTTP forward proxy and CONNECT), [`SocksProxy`] is Debian's
//! `danted` (`dante-server`, SOCKS5 without authentication). Each listens on
//! a free loopback port, lets only 127.0.0.0/8 in, logs into its temporary
//! directory and is killed when dropped (or by `stop`, for an outage).

use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::Command;

use crate::process::Process;
use crate::{TestkitError, binary, free_port};

/// How long start-up may take.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// A running proxy, killed when dropped.
pub struct Proxy {
    dir: TempDir,
    port: u16,
    process: Process,
    server: &'static str,
}

/// `tinyproxy`: an HTTP proxy (`http://127.0.0.1:PORT`), forwarding plain
/// requests and tunnelling CONNECT to any port. It adds a `Via` header
/// naming itself (`pantau-test-proxy`) to what it forwards.
pub type HttpProxy = Proxy;
/// `danted`: a SOCKS5 proxy (`socks5://127.0.0.1:PORT`).
pub type SocksProxy = Proxy;

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("server", &self.server)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Starts Debian's `tinyproxy` on 127.0.0.1, in the foreground.
    pub async fn tinyproxy() -> Result<Self, TestkitError> {
        let bin = binary::require("tinyproxy", "tinyproxy")?;
        let (dir, port) = workdir("pantau-tinyproxy-")?;
        let d = dir.path().display();
        let conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 50\nAllow 127.0.0.1\n\
             LogLevel Info\nLogFile \"{d}/log\"\nPidFile \"{d}/pid\"\nViaProxyName \"pantau-test-proxy\"\n"
        );
        let conf_path = write(dir.path(), "tinyproxy.conf", &conf)?;
        let mut cmd = Command::new(&bin);
        cmd.arg("-d").arg("-c").arg(&conf_path);
        Self::spawn("tinyproxy", cmd, dir, port).await
    }

    /// Starts Debian's `danted` on 127.0.0.1: SOCKS5, no authentication,
    /// clients and destinations on 127.0.0.0/8 only.
    pub async fn dante() -> Result<Self, TestkitError> {
        let bin = binary::require("danted", "dante-server")?;
        let (dir, port) = workdir("pantau-danted-")?;
        let d = dir.path().display();
        // As root, danted drops to `nobody` for the connections it makes.
        let users = if crate::postgres::effective_uid_is_root() {
            "user.privileged: root\nuser.unprivileged: nobody\n"
        } else {
            ""
        };
        let conf = format!(
            "logoutput: {d}/log\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n\
             clientmethod: none\nsocksmethod: none\n{users}\
             client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
             socks pass {{ from: 127.0.0.0/8 to: 127.0.0.0/8 }}\n\
             socks block {{ from: 0.0.0.0/0 to: 0.0.0.0/0 }}\n"
        );
        let conf_path = write(dir.path(), "danted.conf", &conf)?;
        let mut cmd = Command::new(&bin);
        cmd.arg("-f")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path().join("pid"))
            .args(["-N", "1"]);
        Self::spawn("danted", cmd, dir, port).await
    }

    async fn spawn(server: &'static str, cmd: Command, dir: TempDir, port: u16) -> Result<Self, TestkitError> {
        let mut process = Process::new(server, dir.path().join("out"));
        process
            .start(cmd, READY_WITHIN, || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
            })
            .await?;
        Ok(Self {
            dir,
            port,
            process,
            server,
        })
    }

    /// `http://127.0.0.1:PORT` (tinyproxy) or `socks5://127.0.0.1:PORT` (danted).
    pub fn url(&self) -> String {
        let scheme = if self.server == "danted" { "socks5" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the proxy logged so far (each connection it carried is there).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Kills the proxy (its port then refuses connections).
    pub async fn stop(&mut self) {
        self.process.stop().await;
    }
}

fn workdir(prefix: &str) -> Result<(TempDir, u16), TestkitError> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
    // The proxy (or the user it drops to) writes its log there.
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777));
    }
    Ok((dir, free_port()))
}

fn write(dir: &Path, name: &str, text: &str) -> Result<std::path::PathBuf, TestkitError> {
    let p = dir.join(name);
    std::fs::write(&p, text).map_err(|e| TestkitError::io("write", p.clone(), e))?;
    Ok(p)
}
