//! [`Snmpd`]: Debian's net-snmp agent (`snmpd`) on a free UDP loopback port,
//! serving this machine's real interfaces, counters and routes, with a v2c
//! community and an SNMPv3 authPriv (SHA/AES) user.
//!
//! It runs with `-C` (no system configuration), its own config file, and its
//! persistent state (`SNMP_PERSISTENT_DIR`) in a temporary directory; the
//! listen address goes only on the command line (with `agentaddress` in the
//! file too, snmpd exits with "Error opening specified endpoint").

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::{TestkitError, binary};

/// IF-MIB::ifOperStatus, the column [`Snmpd::set_link`] writes.
const IF_OPER_STATUS: &str = ".1.3.6.1.2.1.2.2.1.8";
/// The v2c community that may write the links [`Snmpd::start_with_links`]
/// names (and nothing else), from 127.0.0.1.
pub const LINK_COMMUNITY: &str = "pantau-links";

/// How long snmpd gets to answer its first GET.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// The v2c community snmpd answers (read-only, from 127.0.0.1).
pub const COMMUNITY: &str = "public";
/// The SNMPv3 user (authPriv, SHA-1 authentication, AES-128 privacy).
pub const V3_USER: &str = "pantau";
/// [`V3_USER`]'s authentication password.
pub const V3_AUTH_PASSWORD: &str = "authpass123";
/// [`V3_USER`]'s privacy password.
pub const V3_PRIV_PASSWORD: &str = "privpass123";

/// A running `snmpd`, killed when dropped.
pub struct Snmpd {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
}

impl std::fmt::Debug for Snmpd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snmpd")
            .field("addr", &self.addr())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Snmpd {
    /// Starts snmpd on 127.0.0.1 with [`COMMUNITY`] and [`V3_USER`], and
    /// waits until it answers a v2c GET of `sysUpTime.0`.
    pub async fn start() -> Result<Self, TestkitError> {
        Self::start_with_links(&[]).await
    }

    /// [`Snmpd::start`], and each of `links` (ifIndexes) reports the
    /// ifOperStatus [`Snmpd::set_link`] gives it (up at first) instead of
    /// the kernel's: a router whose link a test takes down and up.
    pub async fn start_with_links(links: &[u32]) -> Result<Self, TestkitError> {
        Self::start_with_links_on(free_udp_port(), links).await
    }

    /// [`Snmpd::start_with_links`] on a given UDP port (chosen with
    /// [`free_udp_port`] beforehand): a router that starts answering after
    /// its poller was configured.
    pub async fn start_with_links_on(port: u16, links: &[u32]) -> Result<Self, TestkitError> {
        let bin = binary::require("snmpd", "snmpd")?;
        if !links.is_empty() {
            // Fail now, naming the package, rather than at the first set.
            binary::require("snmpset", "snmp")?;
        }
        let dir = tempfile::Builder::new()
            .prefix("pantau-snmpd-")
            .tempdir()
            .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        let conf = dir.path().join("snmpd.conf");
        let mut text = format!(
            "rocommunity {COMMUNITY} 127.0.0.1\n\
             createUser {V3_USER} SHA \"{V3_AUTH_PASSWORD}\" AES \"{V3_PRIV_PASSWORD}\"\n\
             rouser {V3_USER} priv\n"
        );
        if !links.is_empty() {
            // Writable only where the overrides are: `view` limits the community.
            use std::fmt::Write as _;
            // Writing to a String cannot fail.
            let _ = writeln!(text, "view links included {IF_OPER_STATUS}");
            let _ = writeln!(text, "rwcommunity {LINK_COMMUNITY} 127.0.0.1 -V links");
            for l in links {
                let _ = writeln!(text, "override -rw {IF_OPER_STATUS}.{l} integer 1");
            }
        }
        std::fs::write(&conf, text).map_err(|e| TestkitError::io("write", &conf, e))?;
        let persist = dir.path().join("persist");
        std::fs::create_dir_all(&persist).map_err(|e| TestkitError::io("create", &persist, e))?;
        let log = dir.path().join("log");
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| TestkitError::io("open", &log, e))?;
        let err = out.try_clone().map_err(|e| TestkitError::io("open", &log, e))?;
        let child = Command::new(&bin)
            .arg("-f")
            .arg("-Lo")
            .arg("-C")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path().join("snmpd.pid"))
            .arg(format!("udp:127.0.0.1:{port}"))
            .env("SNMP_PERSISTENT_DIR", &persist)
            .env("MIBS", "")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TestkitError::io("start", &bin, e))?;
        let mut me = Self {
            dir,
            port,
            child: Some(child),
        };
        me.wait_ready().await?;
        Ok(me)
    }

    /// `127.0.0.1:PORT` (UDP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The agent's UDP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        binary::log_tail(&self.log_path(), 40)
    }

    /// Sets the ifOperStatus of `if_index` (one of the links it was
    /// started with) to up (1) or down (2), with Debian's `snmpset`.
    pub async fn set_link(&self, if_index: u32, up: bool) -> Result<(), TestkitError> {
        let bin = binary::require("snmpset", "snmp")?;
        let oid = format!("{IF_OPER_STATUS}.{if_index}");
        let value = if up { "1" } else { "2" };
        let out = Command::new(&bin)
            .args(["-v2c", "-c", LINK_COMMUNITY, "-t", "2", "-r", "1"])
            .arg(self.addr().to_string())
            .args([oid.as_str(), "i", value])
            .env("SNMP_PERSISTENT_DIR", self.dir.path().join("persist"))
            .env("MIBS", "")
            .output()
            .await
            .map_err(|e| TestkitError::io("run", &bin, e))?;
        if out.status.success() {
            return Ok(());
        }
        Err(TestkitError::Command {
            command: format!("snmpset {oid} i {value}"),
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }

    async fn wait_ready(&mut self) -> Result<(), TestkitError> {
        let log = self.log_path();
        let addr = self.addr();
        binary::wait_until_ready("snmpd", &mut self.child, &log, READY_WITHIN, || answers(addr)).await
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// This machine's IPv4 default route interface (from `/proc/net/route`)
/// and its ifIndex (the kernel's, which snmpd reports): the link a router
/// test takes down.
pub fn default_route_link() -> Option<(String, u32)> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    let name = table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 7 && f[1] == "00000000" && f[7] == "00000000").then(|| f[0].to_owned())
    })?;
    let index = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some((name, index))
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
///
/// # Panics
/// If the loopback interface cannot be bound at all.
pub fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind(("127.0.0.1", 0)).expect("cannot bind a loopback UDP port");
    s.local_addr().expect("a bound socket has an address").port()
}

/// A v2c GET of `sysUpTime.0` with [`COMMUNITY`], BER-encoded by hand.
#[cfg(test)]
fn get_sys_uptime() -> Vec<u8> {
    get_sys_uptime_as(COMMUNITY)
}

/// A v2c GET of `sysUpTime.0` with `community` (under 100 bytes).
fn get_sys_uptime_as(community: &str) -> Vec<u8> {
    let oid = [0x2b, 6, 1, 2, 1, 1, 3, 0];
    let mut varbind = vec![0x06, oid.len() as u8];
    varbind.extend(oid);
    varbind.extend([0x05, 0x00]);
    // request-id 42, error-status 0, error-index 0, then the varbind list.
    let mut pdu_body = vec![0x02, 0x01, 0x2a, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00];
    pdu_body.extend(list_wrapped(&varbind));
    let mut pdu = vec![0xa0, pdu_body.len() as u8];
    pdu.extend(&pdu_body);
    let mut body = vec![0x02, 0x01, 0x01, 0x04, community.len() as u8];
    body.extend(community.as_bytes());
    body.extend(&pdu);
    let mut msg = vec![0x30, body.len() as u8];
    msg.extend(&body);
    msg
}

/// `SEQUENCE { varbind }` (the varbind list) around one encoded varbind.
fn list_wrapped(varbind: &[u8]) -> Vec<u8> {
    let mut inner = vec![0x30, varbind.len() as u8];
    inner.extend(varbind);
    let mut outer = vec![0x30, inner.len() as u8];
    outer.extend(&inner);
    outer
}

/// Whether an SNMP agent at `addr` answers a v2c GET.
async fn answers(addr: SocketAddr) -> bool {
    answers_as(addr, COMMUNITY).await
}

/// Whether an SNMP agent at `addr` answers a v2c GET with `community`.
pub(crate) async fn answers_as(addr: SocketAddr, community: &str) -> bool {
    let Ok(sock) = tokio::net::UdpSocket::bind("127.0.0.1:0").await else {
        return false;
    };
    if sock.send_to(&get_sys_uptime_as(community), addr).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 1500];
    matches!(
        tokio::time::timeout(Duration::from_millis(300), sock.recv_from(&mut buf)).await,
        Ok(Ok((n, _))) if n > 0 && buf[0] == 0x30
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_well_formed_ber() {
        let m = get_sys_uptime();
        assert_eq!(m[0], 0x30);
        assert_eq!(m[1] as usize, m.len() - 2);
        // version 1 (v2c), then the community.
        assert_eq!(&m[2..5], &[0x02, 0x01, 0x01]);
        assert_eq!(&m[7..7 + COMMUNITY.len()], COMMUNITY.as_bytes());
        let pdu = 7 + COMMUNITY.len();
        assert_eq!(m[pdu], 0xa0);
        assert_eq!(m[pdu + 1] as usize, m.len() - pdu - 2);
        assert!(m.ends_with(&[0x2b, 6, 1, 2, 1, 1, 3, 0, 0x05, 0x00]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn starts_answers_and_stops() {
        let agent = Snmpd::start().await.unwrap_or_else(|e| panic!("{e}"));
        // UDP: a probe (or its answer) may be lost on a loaded machine; one
        // answer in five probes shows the agent is up.
        let mut answered = false;
        for _ in 0..5 {
            if answers(agent.addr()).await {
                answered = true;
                break;
            }
        }
        assert!(answered, "{}", agent.log_tail());
        let addr = agent.addr();
        drop(agent);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!answers(addr).await, "snmpd still answers after drop");
    }

    /// ifOperStatus of `if_index` as `snmpget` reads it with the read community.
    fn oper_status(agent: &Snmpd, if_index: u32) -> String {
        let out = std::process::Command::new("snmpget")
            .args(["-v2c", "-c", COMMUNITY, "-Oqv", "-On"])
            .arg(agent.addr().to_string())
            .arg(format!("{IF_OPER_STATUS}.{if_index}"))
            .env("MIBS", "")
            .env("SNMP_PERSISTENT_DIR", agent.dir.path().join("persist"))
            .output()
            .expect("snmpget runs (Debian package `snmp`)");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_controlled_link_goes_down_and_up() {
        let (_, link) = default_route_link().expect("this machine has an IPv4 default route");
        let agent = Snmpd::start_with_links(&[link]).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(oper_status(&agent, link), "1", "{}", agent.log_tail());
        agent.set_link(link, false).await.unwrap();
        assert_eq!(oper_status(&agent, link), "2");
        agent.set_link(link, true).await.unwrap();
        assert_eq!(oper_status(&agent, link), "1");
        // Only the controlled links are writable.
        let e = agent.set_link(link + 1000, false).await.unwrap_err().to_string();
        assert!(e.contains("snmpset"), "{e}");
    }
}
