//! [`Mariadb`]: Debian's MariaDB server (`mariadb-server`) on a free loopback
//! port: `mysql_install_db` into a temporary directory, `mariadbd` with the
//! grant tables on, and a user with a password ([`MARIADB_USER`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::{TestkitError, binary, free_port};

/// The user every [`Mariadb`] has, allowed to `SELECT` anything.
pub const MARIADB_USER: &str = "pantau";
/// [`MARIADB_USER`]'s password.
pub const MARIADB_PASSWORD: &str = "pantau-mariadb-test-pw";

/// How long start-up may take.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A running `mariadbd`, killed when dropped.
pub struct Mariadb {
    dir: TempDir,
    port: u16,
    client: PathBuf,
    child: Child,
}

impl std::fmt::Debug for Mariadb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mariadb")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Mariadb {
    /// Installs a fresh data directory, starts `mariadbd` on 127.0.0.1 and
    /// creates [`MARIADB_USER`]; ready once that user can log in over TCP.
    pub async fn start() -> Result<Self, TestkitError> {
        let install = binary::require("mysql_install_db", "mariadb-server")?;
        let server = binary::require("mariadbd", "mariadb-server")?;
        let client = binary::require("mariadb", "mariadb-client")?;
        let dir = tempfile::Builder::new()
            .prefix("pantau-mariadb-")
            .tempdir_in("/tmp")
            .map_err(|e| TestkitError::io("create a temporary directory in", "/tmp", e))?;
        let root = crate::postgres::effective_uid_is_root();
        let data = dir.path().join("data");
        let mut cmd = Command::new(&install);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if root {
            cmd.arg("--user=root");
        }
        binary::run(cmd).await?;
        let port = free_port();
        let log = dir.path().join("error.log");
        let mut cmd = Command::new(&server);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .args(["--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=16M"]);
        if root {
            cmd.arg("--user=root");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TestkitError::io("start", server.clone(), e))?;
        let mut me = Self {
            dir,
            port,
            client,
            child,
        };
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        let create = format!(
            "CREATE USER IF NOT EXISTS '{MARIADB_USER}'@'%' IDENTIFIED BY '{MARIADB_PASSWORD}'; \
             GRANT SELECT ON *.* TO '{MARIADB_USER}'@'%';"
        );
        loop {
            if let Some(status) = me
                .child
                .try_wait()
                .map_err(|e| TestkitError::io("wait for", server.clone(), e))?
            {
                return Err(TestkitError::Exited {
                    server: "mariadbd",
                    status: status.to_string(),
                    log_tail: binary::log_tail(&log, 20),
                });
            }
            if me.root_sql(&create).await.is_ok() {
                return Ok(me);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(TestkitError::NotReady {
                    server: "mariadbd",
                    after: READY_WITHIN,
                    log_tail: binary::log_tail(&log, 20),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Runs `sql` as root over the server's socket (to set up what a test reads).
    pub async fn root_sql(&self, sql: &str) -> Result<String, TestkitError> {
        let mut cmd = Command::new(&self.client);
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.dir.path().join("sock").display()))
            .args(["-u", "root", "-e", sql]);
        binary::run(cmd).await
    }
}
