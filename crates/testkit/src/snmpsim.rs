//! [`SnmpSim`]: `snmpsim-command-responder` (PyPI `snmpsim`) on a free UDP
//! loopback port, serving recorded device data: the `.snmprec` files of
//! `crates/testkit/data/snmpsim` (a MikroTik-like RB5009, see
//! [`MIKROTIK_COMMUNITY`], and the recordings named by the other
//! `*_COMMUNITY` constants). The community is the recording's file name.
//!
//! snmpsim is found in `.venv-snmpsim` at the workspace root (`make
//! deps-snmpsim` makes it with Debian's python3), else on PATH. As root it
//! must drop privileges (`--process-user nobody --process-group nogroup`),
//! so its data and cache live in a world-readable temporary directory.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::{TestkitError, binary};

/// The recording of a MikroTik RB5009 (RouterOS) with ifTable, ifXTable
/// (HC counters), sysUpTime, ipCidrRouteTable and inetCidrRouteTable.
pub const MIKROTIK_COMMUNITY: &str = "mikrotik-rb5009";
/// The same device with only ipCidrRouteTable (no inetCidrRouteTable).
pub const MIKROTIK_IPCIDR_COMMUNITY: &str = "mikrotik-ipcidr";
/// An old switch-router (Brocade ICX): 32-bit counters only, the default
/// route only in RFC 1213 `ipRouteTable` (the 0.0.0.0 row, rows after it);
/// eth0's `ifInOctets`/`ifOutOctets` (at 2^32 − 1000 and 100) and eth1's
/// `ifOperStatus` (up) are writable (snmpsim's writecache: SET them between
/// polls); eth2 is enabled and never up, eth3 disabled.
pub const BROCADE_IPROUTE_COMMUNITY: &str = "brocade-iproute";
/// An agent sending wrong types: `ifOperStatus.1` as the text "up",
/// `ifHCInOctets.2` as a text, and an ifXTable row (ifIndex 9) with no
/// ifTable row.
pub const BAD_TYPES_COMMUNITY: &str = "bad-types";
/// Interface addresses in both MIB generations: ether1 203.0.113.7/29
/// (`ipAddrTable` and `ipAddressTable`) and 2001:db8:42::7/48, ether2
/// 192.168.88.1/24 (`ipAddrTable` only), ether3 2001:db8:77::2/64
/// (`ipAddressTable` only); default routes 0.0.0.0/0 via ether1 and ::/0
/// via ether3 (`inetCidrRouteTable`).
pub const ISP_ADDRESSES_COMMUNITY: &str = "isp-addresses";

/// How long snmpsim gets to index the data and answer its first GET.
const READY_WITHIN: Duration = Duration::from_secs(30);
const VENV: &str = ".venv-snmpsim";
const PROGRAM: &str = "snmpsim-command-responder";

/// The directory of the recordings shipped with pantau-testkit.
pub fn snmpsim_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/snmpsim")
}

/// A running snmpsim, killed when dropped.
pub struct SnmpSim {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
}

impl std::fmt::Debug for SnmpSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnmpSim")
            .field("addr", &self.addr())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

fn program() -> Result<PathBuf, TestkitError> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(VENV)
        .join("bin")
        .join(PROGRAM);
    if venv.is_file() {
        return Ok(venv);
    }
    binary::find_on_path(PROGRAM).ok_or_else(|| TestkitError::MissingPyPi {
        binary: PROGRAM,
        looked: format!("in {} or on PATH", venv.display()),
        package: "snmpsim pysmi",
        venv: VENV,
    })
}

fn chmod(path: &Path, mode: u32) -> Result<(), TestkitError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| TestkitError::io("chmod", path, e))
}

impl SnmpSim {
    /// Serves every `.snmprec` of [`snmpsim_data_dir`].
    pub async fn start() -> Result<Self, TestkitError> {
        Self::start_with(&snmpsim_data_dir()).await
    }

    /// Serves every `.snmprec` in `data`, and waits until
    /// [`MIKROTIK_COMMUNITY`] (or the first recording) answers a GET.
    pub async fn start_with(data: &Path) -> Result<Self, TestkitError> {
        let bin = program()?;
        let dir = tempfile::Builder::new()
            .prefix("pantau-snmpsim-")
            .tempdir()
            .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        chmod(dir.path(), 0o755)?;
        let (data_dir, cache) = (dir.path().join("data"), dir.path().join("cache"));
        for d in [&data_dir, &cache] {
            std::fs::create_dir(d).map_err(|e| TestkitError::io("create", d, e))?;
        }
        chmod(&data_dir, 0o755)?;
        chmod(&cache, 0o777)?;
        let mut probe = None;
        let entries = std::fs::read_dir(data).map_err(|e| TestkitError::io("read", data, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(community) = name.strip_suffix(".snmprec") else {
                continue;
            };
            if probe.is_none() || community == MIKROTIK_COMMUNITY {
                probe = Some(community.to_owned());
            }
            let to = data_dir.join(&name);
            std::fs::copy(entry.path(), &to).map_err(|e| TestkitError::io("copy", entry.path(), e))?;
            chmod(&to, 0o644)?;
        }
        let probe = probe.ok_or_else(|| {
            TestkitError::io(
                "find a .snmprec file in",
                data,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?;
        let log = dir.path().join("log");
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| TestkitError::io("open", &log, e))?;
        let err = out.try_clone().map_err(|e| TestkitError::io("open", &log, e))?;
        let port = crate::free_udp_port();
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--cache-dir={}", cache.display()))
            .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"));
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        if root {
            cmd.args(["--process-user=nobody", "--process-group=nogroup"]);
        }
        let child = cmd
            .current_dir(dir.path())
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
        me.wait_ready(&probe).await?;
        Ok(me)
    }

    /// `127.0.0.1:PORT` (UDP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The last lines of snmpsim's log, for failure messages.
    pub fn log_tail(&self) -> String {
        binary::log_tail(&self.dir.path().join("log"), 40)
    }

    async fn wait_ready(&mut self, community: &str) -> Result<(), TestkitError> {
        let log = self.dir.path().join("log");
        let addr = self.addr();
        binary::wait_until_ready("snmpsim", &mut self.child, &log, READY_WITHIN, || {
            crate::snmpd::answers_as(addr, community)
        })
        .await
    }
}

impl Drop for SnmpSim {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_are_sorted_and_well_formed() {
        for name in [
            MIKROTIK_COMMUNITY,
            MIKROTIK_IPCIDR_COMMUNITY,
            BROCADE_IPROUTE_COMMUNITY,
            BAD_TYPES_COMMUNITY,
            ISP_ADDRESSES_COMMUNITY,
        ]
        .map(|c| format!("{c}.snmprec"))
        {
            let text = std::fs::read_to_string(snmpsim_data_dir().join(&name)).unwrap();
            let oids: Vec<Vec<u32>> = text
                .lines()
                .map(|l| {
                    let f: Vec<&str> = l.splitn(3, '|').collect();
                    assert_eq!(f.len(), 3, "{name}: {l}");
                    f[0].split('.').map(|a| a.parse().unwrap()).collect()
                })
                .collect();
            assert!(oids.windows(2).all(|w| w[0] < w[1]), "{name} is not in OID order");
        }
    }

    #[test]
    fn a_missing_snmpsim_names_the_pypi_package() {
        let e = TestkitError::MissingPyPi {
            binary: PROGRAM,
            looked: "on PATH".into(),
            package: "snmpsim pysmi",
            venv: VENV,
        };
        let text = e.to_string();
        assert!(
            text.contains("PyPI package snmpsim") && text.contains("make test"),
            "{text}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_the_mikrotik_recording() {
        let sim = SnmpSim::start().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(crate::snmpd::answers_as(sim.addr(), MIKROTIK_COMMUNITY).await);
        assert!(crate::snmpd::answers_as(sim.addr(), MIKROTIK_IPCIDR_COMMUNITY).await);
        for c in [BROCADE_IPROUTE_COMMUNITY, BAD_TYPES_COMMUNITY, ISP_ADDRESSES_COMMUNITY] {
            assert!(crate::snmpd::answers_as(sim.addr(), c).await, "{c}");
        }
    }
}
