//! [`Dovecot`]: Debian's IMAP and POP3 server (`dovecot-imapd`,
//! `dovecot-pop3d`) with a configuration of its own in a temporary
//! directory (none of `/etc/dovecot` is read), on four free loopback ports:
//! IMAP and POP3 offering STARTTLS/STLS, and IMAPS and POP3S, with a given
//! certificate. Nobody can log in (no password is accepted); the tests only
//! read greetings and certificates. Stopped with SIGTERM (the master then
//! stops its children) when dropped.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::{TestkitError, binary, free_port};

/// How long start-up may take.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running `dovecot -F`.
pub struct Dovecot {
    _dir: TempDir,
    imap: u16,
    imaps: u16,
    pop3: u16,
    pop3s: u16,
    child: Option<Child>,
}

impl std::fmt::Debug for Dovecot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dovecot")
            .field("imap", &self.imap)
            .field("imaps", &self.imaps)
            .field("pop3", &self.pop3)
            .field("pop3s", &self.pop3s)
            .finish_non_exhaustive()
    }
}

/// Whether `/etc/passwd` has `user`.
fn user_exists(user: &str) -> bool {
    std::fs::read_to_string("/etc/passwd").is_ok_and(|p| p.lines().any(|l| l.split(':').next() == Some(user)))
}

impl Dovecot {
    /// Starts dovecot presenting `cert` and `key` (PEM files); ready once
    /// all four ports greet.
    pub async fn start(cert: &Path, key: &Path) -> Result<Self, TestkitError> {
        let bin = binary::require("dovecot", "dovecot-imapd")?;
        for (file, package) in [
            ("/usr/lib/dovecot/imap-login", "dovecot-imapd"),
            ("/usr/lib/dovecot/pop3-login", "dovecot-pop3d"),
        ] {
            if !binary::is_executable(Path::new(file)) {
                return Err(TestkitError::MissingBinary {
                    binary: if package == "dovecot-imapd" {
                        "imap-login"
                    } else {
                        "pop3-login"
                    },
                    looked: "in /usr/lib/dovecot".to_owned(),
                    package,
                });
            }
        }
        let root = crate::postgres::effective_uid_is_root();
        let (internal, login) = if root {
            for user in ["dovecot", "dovenull"] {
                if !user_exists(user) {
                    return Err(TestkitError::MissingUser {
                        user: if user == "dovecot" { "dovecot" } else { "dovenull" },
                        why: "dovecot runs its own processes as it",
                        package: "dovecot-core",
                    });
                }
            }
            ("dovecot".to_owned(), "dovenull".to_owned())
        } else {
            let mut id = Command::new("id");
            id.arg("-un");
            let me = binary::run(id).await?.trim().to_owned();
            (me.clone(), me)
        };
        let dir = tempfile::Builder::new()
            .prefix("pantau-dovecot-")
            .tempdir()
            .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        // The login processes (another user) reach their sockets under it.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| TestkitError::io("chmod", dir.path(), e))?;
        let d = dir.path().display().to_string();
        let (imap, imaps, pop3, pop3s) = (free_port(), free_port(), free_port(), free_port());
        let chroot = if root { "" } else { "  chroot =\n" };
        let conf = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/log\n\
             protocols = imap pop3\nlisten = 127.0.0.1\nssl = yes\n\
             ssl_cert = <{cert}\nssl_key = <{key}\n\
             default_internal_user = {internal}\ndefault_login_user = {login}\n\
             mail_location = maildir:{d}/mail/%u\n\
             passdb {{\n  driver = static\n  args = password=pantau-never-{nonce}\n}}\n\
             userdb {{\n  driver = static\n  args = uid={internal} gid={internal} home={d}/home/%u\n}}\n\
             service imap-login {{\n{chroot}  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap}\n  }}\n  \
             inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps}\n    ssl = yes\n  }}\n}}\n\
             service pop3-login {{\n{chroot}  inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {pop3}\n  }}\n  \
             inet_listener pop3s {{\n    address = 127.0.0.1\n    port = {pop3s}\n    ssl = yes\n  }}\n}}\n",
            cert = cert.display(),
            key = key.display(),
            nonce = imap,
        );
        let conf_path = dir.path().join("dovecot.conf");
        std::fs::write(&conf_path, conf).map_err(|e| TestkitError::io("write", conf_path.clone(), e))?;
        let log = dir.path().join("log");
        let out_path = dir.path().join("out");
        let out = std::fs::File::create(&out_path).map_err(|e| TestkitError::io("create", out_path.clone(), e))?;
        let mut child = Some(
            Command::new(&bin)
                .arg("-F")
                .arg("-c")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(out)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| TestkitError::io("start", bin.clone(), e))?,
        );
        let mut me = Self {
            _dir: dir,
            imap,
            imaps,
            pop3,
            pop3s,
            child: None,
        };
        let ready = binary::wait_until_ready("dovecot", &mut child, &log, READY_WITHIN, || async move {
            greets(imap, b"* OK").await && greets(pop3, b"+OK").await && accepts(imaps).await && accepts(pop3s).await
        })
        .await;
        me.child = child;
        ready.map(|()| me).map_err(|e| match e {
            TestkitError::Exited { server, status, .. } => TestkitError::Exited {
                server,
                status,
                log_tail: binary::log_tail(&out_path, 20),
            },
            other => other,
        })
    }

    /// IMAP, offering STARTTLS.
    pub fn imap(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.imap))
    }

    /// IMAPS: TLS from the first byte.
    pub fn imaps(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.imaps))
    }

    /// POP3, offering STLS.
    pub fn pop3(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.pop3))
    }

    /// POP3S: TLS from the first byte.
    pub fn pop3s(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.pop3s))
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its login, auth and log processes;
        // the child's kill on drop follows.
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Whether 127.0.0.1:`port` greets with `prefix` within a short while.
async fn greets(port: u16, prefix: &[u8]) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut buf = vec![0_u8; prefix.len()];
    matches!(
        tokio::time::timeout(Duration::from_millis(500), s.read_exact(&mut buf)).await,
        Ok(Ok(_)) if buf == prefix
    )
}

async fn accepts(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).await.is_ok()
}
