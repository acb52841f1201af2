//! [`Dnsmasq`]: a real DNS server (`dnsmasq`) on a free loopback port,
//! answering only the records a test gives it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::{TestkitError, binary, free_port};

/// A running `dnsmasq`, killed when dropped.
pub struct Dnsmasq {
    dir: TempDir,
    port: u16,
    child: Child,
}

impl std::fmt::Debug for Dnsmasq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dnsmasq")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// A record dnsmasq should answer.
#[derive(Debug, Clone)]
pub enum Record {
    /// `name` → IPv4 or IPv6 address.
    Address(String, std::net::IpAddr),
    /// `name` → MX `exchange` with `preference`.
    Mx(String, String, u16),
    /// `name` → TXT `text`.
    Txt(String, String),
    /// `alias` → CNAME `target` (target must be a name dnsmasq knows).
    Cname(String, String),
}

impl Dnsmasq {
    /// Starts `dnsmasq` on 127.0.0.1 with exactly `records`, no upstream.
    pub async fn start(records: &[Record]) -> Result<Self, TestkitError> {
        let bin = binary::require("dnsmasq", "dnsmasq-base")?;
        let dir = tempfile::Builder::new()
            .prefix("pantau-dnsmasq-")
            .tempdir()
            .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        let port = free_port();
        let mut args: Vec<String> = vec![
            "--keep-in-foreground".into(),
            "--conf-file=/dev/null".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--listen-address=127.0.0.1".into(),
            "--bind-interfaces".into(),
            format!("--port={port}"),
            format!("--pid-file={}", dir.path().join("pid").display()),
            "--user=root".into(),
            "--log-facility=-".into(),
        ];
        for r in records {
            args.push(match r {
                Record::Address(name, ip) => format!("--host-record={name},{ip}"),
                Record::Mx(name, exchange, pref) => format!("--mx-host={name},{exchange},{pref}"),
                Record::Txt(name, text) => format!("--txt-record={name},{text}"),
                Record::Cname(alias, target) => format!("--cname={alias},{target}"),
            });
        }
        let log = std::fs::File::create(dir.path().join("log"))
            .map_err(|e| TestkitError::io("create", dir.path().join("log"), e))?;
        let child = Command::new(&bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TestkitError::io("start", bin.clone(), e))?;
        let mut me = Self { dir, port, child };
        // Ready once it answers on UDP: a query for a name it does not know
        // still gets a reply.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = me
                .child
                .try_wait()
                .map_err(|e| TestkitError::io("wait for", PathBuf::from("dnsmasq"), e))?
            {
                let log = std::fs::read_to_string(me.dir.path().join("log")).unwrap_or_default();
                return Err(TestkitError::Command {
                    command: format!("dnsmasq {}", args.join(" ")),
                    status: status.to_string(),
                    output: log,
                });
            }
            if probe(me.addr()).await {
                return Ok(me);
            }
            if tokio::time::Instant::now() > deadline {
                me.child.start_kill().ok();
                return Err(TestkitError::Command {
                    command: "dnsmasq".into(),
                    status: "no answer within 10s".into(),
                    output: std::fs::read_to_string(me.dir.path().join("log")).unwrap_or_default(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// Sends a minimal DNS query (`. IN A`) and waits briefly for any answer.
async fn probe(addr: SocketAddr) -> bool {
    let Ok(sock) = tokio::net::UdpSocket::bind("127.0.0.1:0").await else {
        return false;
    };
    let query = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1];
    if sock.send_to(&query, addr).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    matches!(
        tokio::time::timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await,
        Ok(Ok(_))
    )
}
