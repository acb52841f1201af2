//! [`Postgres`]: a real PostgreSQL cluster on a free loopback port.
//!
//! `initdb` refuses to run as root, so when the tests run as root the
//! temporary directory is handed to the `postgres` user and `initdb`/`pg_ctl`
//! run through `runuser -u postgres --`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tempfile::TempDir;
use tokio::process::Command;

use crate::{TestkitError, binary, free_port};

/// Where Debian installs each PostgreSQL version (`<dir>/<version>/bin`).
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
/// The Debian package that provides the server binaries.
const PACKAGE: &str = "postgresql";
/// Seconds `pg_ctl start` waits for the server to accept connections.
const START_TIMEOUT_SECS: &str = "30";
/// Starts tried with a fresh port when another process took it meanwhile.
const START_ATTEMPTS: u32 = 3;

/// A running PostgreSQL cluster with trust authentication for the
/// `postgres` superuser, stopped (`pg_ctl stop -m immediate`) when dropped.
pub struct Postgres {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    /// `runuser` when the tests run as root, to act as `postgres`.
    runuser: Option<PathBuf>,
    running: bool,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("url", &self.url())
            .field("dir", &self.dir.path())
            .field("bin", &self.bin)
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl Postgres {
    /// Runs `initdb` into a new temporary directory and starts the server on
    /// a free port, listening on 127.0.0.1 only, with `fsync=off`.
    pub async fn start() -> Result<Self, TestkitError> {
        let bin = find_bin_dir()?;
        let as_root = effective_uid_is_root();
        // Under /tmp when root, so the `postgres` user can traverse the parents.
        let mut builder = tempfile::Builder::new();
        builder.prefix("pantau-pg-");
        let made = if as_root {
            builder.tempdir_in("/tmp")
        } else {
            builder.tempdir()
        };
        let dir = made.map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        let runuser = if as_root {
            let (uid, gid) = postgres_user()?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| TestkitError::io("hand to the postgres user", dir.path(), e))?;
            Some(binary::require("runuser", "util-linux")?)
        } else {
            None
        };
        let mut pg = Self {
            bin,
            dir,
            port: free_port(),
            runuser,
            running: false,
        };
        let mut initdb = pg.command("initdb");
        initdb.arg("-D").arg(pg.data_dir()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]);
        binary::run(initdb).await?;
        let mut attempt = 1;
        loop {
            match pg.start_again().await {
                Err(e) if attempt < START_ATTEMPTS && e.port_taken() => {
                    attempt += 1;
                    pg.port = free_port();
                }
                result => return result.map(|()| pg),
            }
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of database `name` on this server.
    pub fn url_for(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        binary::log_tail(&self.log_path(), 40)
    }

    /// Creates database `name` (lowercase letters, digits, `_`) and returns
    /// its URL.
    pub async fn create_database(&self, name: &str) -> Result<String, TestkitError> {
        let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(TestkitError::InvalidName(name.to_owned()));
        }
        let createdb = match self.bin.join("createdb") {
            p if binary::is_executable(&p) => p,
            _ => binary::require("createdb", "postgresql-client")?,
        };
        let mut command = Command::new(createdb);
        command
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", name])
            .current_dir(self.dir.path());
        binary::run(command).await?;
        Ok(self.url_for(name))
    }

    /// Creates a login role `name` with `password` that must authenticate
    /// with it (scram-sha-256 over TCP, unlike the trusted `postgres`), for
    /// tests of wrong passwords. `name` as for [`Self::create_database`];
    /// `password` without `'`.
    pub async fn create_login(&self, name: &str, password: &str) -> Result<(), TestkitError> {
        let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid || password.contains('\'') {
            return Err(TestkitError::InvalidName(name.to_owned()));
        }
        let psql = match self.bin.join("psql") {
            p if binary::is_executable(&p) => p,
            _ => binary::require("psql", "postgresql-client")?,
        };
        let mut command = Command::new(psql);
        command
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .args(["-c", &format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'")])
            .current_dir(self.dir.path());
        binary::run(command).await?;
        // First match wins: the role's own line goes before the trust lines.
        let hba = self.data_dir().join("pg_hba.conf");
        let old = std::fs::read_to_string(&hba).map_err(|e| TestkitError::io("read", hba.clone(), e))?;
        let new = format!("host all {name} 127.0.0.1/32 scram-sha-256\n{old}");
        std::fs::write(&hba, new).map_err(|e| TestkitError::io("write", hba.clone(), e))?;
        let mut reload = self.command("pg_ctl");
        reload.arg("-D").arg(self.data_dir()).arg("reload");
        binary::run(reload).await?;
        // A reload is a signal: the new rules hold once the server has read them.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        Ok(())
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`, like a crash),
    /// keeping its data. Does nothing when it is not running.
    pub async fn stop(&mut self) -> Result<(), TestkitError> {
        if !self.running {
            return Ok(());
        }
        let mut command = self.command("pg_ctl");
        command
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"]);
        binary::run(command).await?;
        self.running = false;
        Ok(())
    }

    /// Starts the server (again) on the same port with the same data, and
    /// waits until it accepts connections.
    pub async fn start_again(&mut self) -> Result<(), TestkitError> {
        self.stop().await?;
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let mut command = self.command("pg_ctl");
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", START_TIMEOUT_SECS, "-o", &options, "start"]);
        match binary::run(command).await {
            Ok(_) => {
                self.running = true;
                Ok(())
            }
            Err(TestkitError::Command {
                command,
                status,
                output,
            }) => Err(TestkitError::Command {
                command,
                status,
                output: format!("{output}\nlog tail:\n{}", self.log_tail()),
            }),
            Err(e) => Err(e),
        }
    }

    /// `tool` from the server's bin directory, run as `postgres` when root,
    /// from the temporary directory (which that user can enter).
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        let mut command = match &self.runuser {
            Some(runuser) => {
                let mut c = Command::new(runuser);
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        command.current_dir(self.dir.path());
        command
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        // Blocking, but `-m immediate` takes a moment; the directory is
        // removed right after, so the server must be gone first.
        let mut command = self.command("pg_ctl").into_std();
        command
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = command.status();
    }
}

/// The bin directory of the newest `/usr/lib/postgresql/<version>`, else the
/// directory `initdb` on `PATH` really lives in.
fn find_bin_dir() -> Result<PathBuf, TestkitError> {
    if let Some(dir) = newest_debian_bin(Path::new(DEBIAN_ROOT)) {
        return Ok(dir);
    }
    let missing = |binary| TestkitError::MissingBinary {
        binary,
        looked: format!("under {DEBIAN_ROOT}/*/bin or on PATH"),
        package: PACKAGE,
    };
    let initdb = binary::find_on_path("initdb").ok_or_else(|| missing("initdb"))?;
    let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
    let dir = real.parent().map(Path::to_path_buf).unwrap_or_default();
    if binary::is_executable(&dir.join("pg_ctl")) {
        Ok(dir)
    } else {
        Err(missing("pg_ctl"))
    }
}

fn newest_debian_bin(root: &Path) -> Option<PathBuf> {
    std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = parse_version(&entry.file_name().to_string_lossy())?;
            let bin = entry.path().join("bin");
            let complete = binary::is_executable(&bin.join("initdb")) && binary::is_executable(&bin.join("pg_ctl"));
            complete.then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// `15` → `[15]`, `9.6` → `[9, 6]`; anything else is not a version.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// Whether the effective uid is 0, from `/proc/self/status`.
pub(crate) fn effective_uid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            // Uid: real effective saved filesystem
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// The uid and gid of `postgres`, from /etc/passwd.
fn postgres_user() -> Result<(u32, u32), TestkitError> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd_entry(&passwd, "postgres").ok_or(TestkitError::MissingUser {
        user: "postgres",
        why: "initdb refuses to run as root and runs as that user instead",
        package: PACKAGE,
    })
}

fn passwd_entry(passwd: &str, user: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("15") > parse_version("9.6"));
        assert_eq!(parse_version("main"), None);
    }

    #[test]
    fn passwd_lookup() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(passwd_entry(passwd, "postgres"), Some((101, 104)));
        assert_eq!(passwd_entry(passwd, "nobody"), None);
    }

    #[tokio::test]
    async fn starts_creates_a_database_and_stops() {
        let mut pg = Postgres::start().await.expect("postgres starts");
        let url = pg.create_database("pantau_test").await.expect("createdb");
        assert_eq!(url, format!("postgres://postgres@127.0.0.1:{}/pantau_test", pg.port()));
        assert!(matches!(
            pg.create_database("Bad-Name").await,
            Err(TestkitError::InvalidName(_))
        ));
        pg.stop().await.expect("pg_ctl stop");
        assert!(std::net::TcpStream::connect(("127.0.0.1", pg.port())).is_err());
        pg.start_again().await.expect("pg_ctl start");
        assert!(std::net::TcpStream::connect(("127.0.0.1", pg.port())).is_ok());
    }
}
