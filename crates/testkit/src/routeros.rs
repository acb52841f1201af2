//! [`RouterOsSim`]: a MikroTik RouterOS simulator on free loopback ports,
//! faithful to the API protocol (and optionally serving the v7 REST API
//! from the same state), whose state a test changes as it goes.
//!
//! API (port from [`RouterOsSim::api_addr`]):
//! - words are length-prefixed (1–5 byte lengths), sentences end with an
//!   empty word; every reply sentence carries the command's `.tag`;
//! - `/login =name= =password=` (the post-6.43 plaintext login): `!done`,
//!   or `!trap =message=invalid user name or password (6)` then `!done`
//!   (or a close, with [`SimState::login_failure_closes`]);
//!   any other command before login is `!fatal not logged in` and a close;
//! - `/system/identity/print`, `/system/resource/print`, `/interface/print`,
//!   `/ip/route/print`, `/ip/address/print`, `/interface/pppoe-client/print`:
//!   `!re` rows then `!done`; `=.proplist=a,b` and `?key=value` queries;
//! - an unknown command: `!trap =message=no such command` then `!done`;
//!   `/quit`: `!fatal session terminated on request` and a close;
//!   [`RouterOsSim::fatal_next`] makes the next command `!fatal`.
//!
//! API-SSL ([`RouterOsSim::start_tls`]): the same over TLS with a
//! self-signed certificate for `localhost` and 127.0.0.1, whose PEM is at
//! [`RouterOsSim::ca_file`].
//!
//! REST ([`RouterOsSim::start_with_rest`]): `GET /rest/<menu>` with basic
//! auth (401 otherwise), all values as strings, `?key=value` filters and
//! `.proplist`.
//!
//! The test changes the state: [`RouterOsSim::add_traffic`],
//! [`RouterOsSim::set_counters`], [`RouterOsSim::reset_counters`] (a counter
//! reset), [`RouterOsSim::reboot`] (uptime back to seconds, counters to 0),
//! [`RouterOsSim::set_running`], and [`RouterOsSim::stop`] /
//! [`RouterOsSim::restart`] on the same ports (an unreachable router).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::TestkitError;

#[path = "routeros_api.rs"]
mod api;
#[path = "routeros_rest.rs"]
mod rest;

/// The user the simulator accepts.
pub const ROUTEROS_USER: &str = "pantau";
/// [`ROUTEROS_USER`]'s password.
pub const ROUTEROS_PASSWORD: &str = "ros-secret-1";

/// One simulated interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimInterface {
    /// The internal id: `.id` is `*<hex>`.
    pub id: u32,
    pub name: String,
    /// `ether`, `pppoe-out`, `bridge`, `lte`, …
    pub kind: String,
    pub running: bool,
    pub disabled: bool,
    pub comment: String,
    pub rx_byte: u64,
    pub tx_byte: u64,
    pub rx_packet: u64,
    pub tx_packet: u64,
    pub rx_error: u64,
    pub tx_error: u64,
    pub rx_drop: u64,
    pub tx_drop: u64,
}

impl SimInterface {
    /// A running, enabled interface with zero counters.
    pub fn new(id: u32, name: &str, kind: &str, comment: &str) -> Self {
        Self {
            id,
            name: name.to_owned(),
            kind: kind.to_owned(),
            running: true,
            disabled: false,
            comment: comment.to_owned(),
            rx_byte: 0,
            tx_byte: 0,
            rx_packet: 0,
            tx_packet: 0,
            rx_error: 0,
            tx_error: 0,
            rx_drop: 0,
            tx_drop: 0,
        }
    }
}

/// Everything the simulated router answers from.
#[derive(Debug, Clone)]
pub struct SimState {
    pub identity: String,
    pub version: String,
    pub board_name: String,
    /// Uptime when `since` was set; it grows with real time.
    pub uptime_base: Duration,
    pub since: Instant,
    pub interfaces: Vec<SimInterface>,
    /// `(dst-address, gateway, immediate-gw, active)`.
    pub routes: Vec<(String, String, String, bool)>,
    /// `(address/prefix, interface)`.
    pub addresses: Vec<(String, String)>,
    /// `(interface name, PPPoE user)`.
    pub pppoe_clients: Vec<(String, String)>,
    /// When set, the next API command is answered `!fatal <reason>`.
    pub fatal_next: Option<String>,
    /// When set, a refused login is `!trap` and a closed connection, with
    /// no `!done` (as some RouterOS versions do).
    pub login_failure_closes: bool,
}

impl Default for SimState {
    /// A MikroTik-like edge router: ether1 the Telkom uplink (default
    /// route), ether2 the LAN, pppoe-out1 a second ISP, bridge1.
    fn default() -> Self {
        let mut ether1 = SimInterface::new(1, "ether1", "ether", "WAN Telkom");
        ether1.rx_byte = 9_000_000_000;
        ether1.tx_byte = 1_000_000_000;
        ether1.rx_packet = 7_000_000;
        ether1.tx_packet = 2_000_000;
        let mut ether2 = SimInterface::new(2, "ether2", "ether", "LAN");
        ether2.rx_byte = 1_000_000_000;
        ether2.tx_byte = 9_000_000_000;
        let pppoe = SimInterface::new(0x1A, "pppoe-out1", "pppoe-out", "backup Biznet");
        let bridge = SimInterface::new(0x10, "bridge1", "bridge", "");
        Self {
            identity: "edge-jkt".to_owned(),
            version: "7.16.1 (stable)".to_owned(),
            board_name: "RB5009UG+S+".to_owned(),
            uptime_base: Duration::from_secs(3 * 86_400 + 3600),
            since: Instant::now(),
            interfaces: vec![ether1, ether2, pppoe, bridge],
            routes: vec![
                ("0.0.0.0/0".into(), "192.0.2.1".into(), "192.0.2.1%ether1".into(), true),
                ("0.0.0.0/0".into(), "pppoe-out1".into(), "pppoe-out1".into(), false),
                ("192.168.88.0/24".into(), "bridge1".into(), "bridge1".into(), true),
            ],
            addresses: vec![
                ("192.0.2.2/24".into(), "ether1".into()),
                ("192.168.88.1/24".into(), "bridge1".into()),
            ],
            pppoe_clients: vec![("pppoe-out1".into(), "acct@biznet".into())],
            fatal_next: None,
            login_failure_closes: false,
        }
    }
}

/// `1w2d3h4m5s` as RouterOS writes an uptime.
pub fn format_uptime(d: Duration) -> String {
    use std::fmt::Write as _;
    let mut s = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [('w', 604_800), ('d', 86_400), ('h', 3600), ('m', 60)] {
        if s >= size {
            let _ = write!(out, "{}{unit}", s / size);
            s %= size;
        }
    }
    if s > 0 || out.is_empty() {
        let _ = write!(out, "{s}s");
    }
    out
}

type Row = Vec<(String, String)>;

impl SimState {
    fn uptime(&self) -> Duration {
        self.uptime_base + self.since.elapsed()
    }

    /// The rows of `menu` (`interface`, `ip/route`, …), `None` when unknown.
    fn menu(&self, menu: &str) -> Option<Vec<Row>> {
        let kv =
            |pairs: &[(&str, String)]| -> Row { pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect() };
        Some(match menu {
            "system/identity" => vec![kv(&[("name", self.identity.clone())])],
            "system/resource" => vec![kv(&[
                ("uptime", format_uptime(self.uptime())),
                ("version", self.version.clone()),
                ("board-name", self.board_name.clone()),
                ("architecture-name", "arm64".into()),
                ("cpu-load", "3".into()),
            ])],
            "interface" => self
                .interfaces
                .iter()
                .map(|i| {
                    kv(&[
                        (".id", format!("*{:X}", i.id)),
                        ("name", i.name.clone()),
                        ("type", i.kind.clone()),
                        ("mtu", "1500".into()),
                        ("running", i.running.to_string()),
                        ("disabled", i.disabled.to_string()),
                        ("comment", i.comment.clone()),
                        ("rx-byte", i.rx_byte.to_string()),
                        ("tx-byte", i.tx_byte.to_string()),
                        ("rx-packet", i.rx_packet.to_string()),
                        ("tx-packet", i.tx_packet.to_string()),
                        ("rx-error", i.rx_error.to_string()),
                        ("tx-error", i.tx_error.to_string()),
                        ("rx-drop", i.rx_drop.to_string()),
                        ("tx-drop", i.tx_drop.to_string()),
                    ])
                })
                .collect(),
            "ip/route" => self
                .routes
                .iter()
                .enumerate()
                .map(|(n, (dst, gw, imm, active))| {
                    kv(&[
                        (".id", format!("*{:X}", 0x8000_0000u32 + n as u32)),
                        ("dst-address", dst.clone()),
                        ("gateway", gw.clone()),
                        ("immediate-gw", imm.clone()),
                        ("distance", "1".into()),
                        ("active", active.to_string()),
                        ("disabled", "false".into()),
                    ])
                })
                .collect(),
            "ip/address" => self
                .addresses
                .iter()
                .enumerate()
                .map(|(n, (a, i))| {
                    kv(&[
                        (".id", format!("*{:X}", n + 1)),
                        ("address", a.clone()),
                        ("interface", i.clone()),
                        ("disabled", "false".into()),
                        ("invalid", "false".into()),
                    ])
                })
                .collect(),
            "interface/pppoe-client" => self
                .pppoe_clients
                .iter()
                .map(|(name, user)| kv(&[("name", name.clone()), ("user", user.clone())]))
                .collect(),
            _ => return None,
        })
    }

    fn interface(&mut self, name: &str) -> &mut SimInterface {
        self.interfaces
            .iter_mut()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("the simulator has no interface {name}"))
    }
}

/// Keeps rows matching every `(key, value)` and only the `proplist` keys.
fn select(rows: Vec<Row>, filters: &[(String, String)], proplist: Option<&str>) -> Vec<Row> {
    let props: Option<Vec<&str>> = proplist.map(|p| p.split(',').collect());
    rows.into_iter()
        .filter(|r| filters.iter().all(|(k, v)| r.iter().any(|(rk, rv)| rk == k && rv == v)))
        .map(|r| match &props {
            Some(p) => r.into_iter().filter(|(k, _)| p.contains(&k.as_str())).collect(),
            None => r,
        })
        .collect()
}

type Shared = Arc<Mutex<SimState>>;

fn lock(s: &Shared) -> MutexGuard<'_, SimState> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running simulator; its servers stop when it is dropped.
pub struct RouterOsSim {
    state: Shared,
    api_port: u16,
    rest_port: Option<u16>,
    servers: Vec<JoinHandle<()>>,
    /// API-SSL: the acceptor and the directory holding `ca.pem`.
    tls: Option<(TlsAcceptor, tempfile::TempDir)>,
}

impl std::fmt::Debug for RouterOsSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterOsSim")
            .field("api", &self.api_addr())
            .field("rest", &self.rest_addr())
            .finish_non_exhaustive()
    }
}

impl RouterOsSim {
    /// The API on a free loopback port, with [`SimState::default`].
    pub async fn start() -> Result<Self, TestkitError> {
        Self::start_inner(false, None).await
    }

    /// The API and the REST API (plain HTTP), each on a free loopback port.
    pub async fn start_with_rest() -> Result<Self, TestkitError> {
        Self::start_inner(true, None).await
    }

    /// API-SSL only: the API over TLS with a fresh self-signed certificate
    /// (see [`Self::ca_file`]).
    pub async fn start_tls() -> Result<Self, TestkitError> {
        Self::start_inner(false, Some(api::self_signed()?)).await
    }

    /// API-SSL and REST over HTTPS, with one self-signed certificate.
    pub async fn start_tls_with_rest() -> Result<Self, TestkitError> {
        Self::start_inner(true, Some(api::self_signed()?)).await
    }

    async fn start_inner(rest: bool, tls: Option<(TlsAcceptor, tempfile::TempDir)>) -> Result<Self, TestkitError> {
        let mut me = Self {
            state: Arc::new(Mutex::new(SimState::default())),
            api_port: crate::free_port(),
            rest_port: rest.then(crate::free_port),
            servers: Vec::new(),
            tls,
        };
        me.restart().await?;
        Ok(me)
    }

    /// API-SSL: the PEM of the simulator's self-signed certificate (a CA
    /// for `ca_file`).
    pub fn ca_file(&self) -> Option<std::path::PathBuf> {
        self.tls.as_ref().map(|(_, dir)| dir.path().join("ca.pem"))
    }

    /// `127.0.0.1:<api port>`.
    pub fn api_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.api_port))
    }

    /// `127.0.0.1:<rest port>` when REST is served.
    pub fn rest_addr(&self) -> Option<SocketAddr> {
        self.rest_port.map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
    }

    /// Changes the state under the lock.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut SimState) -> T) -> T {
        f(&mut lock(&self.state))
    }

    /// Adds traffic to `iface` (bytes and one packet per 1000 bytes).
    pub fn add_traffic(&self, iface: &str, rx: u64, tx: u64) {
        self.with_state(|s| {
            let i = s.interface(iface);
            i.rx_byte += rx;
            i.tx_byte += tx;
            i.rx_packet += rx / 1000;
            i.tx_packet += tx / 1000;
        });
    }

    /// Sets `iface`'s byte counters.
    pub fn set_counters(&self, iface: &str, rx: u64, tx: u64) {
        self.with_state(|s| {
            let i = s.interface(iface);
            i.rx_byte = rx;
            i.tx_byte = tx;
        });
    }

    /// `/interface reset-counters`: every counter of `iface` back to 0.
    pub fn reset_counters(&self, iface: &str) {
        self.with_state(|s| {
            let i = s.interface(iface);
            let keep = SimInterface::new(i.id, &i.name, &i.kind, &i.comment);
            *i = SimInterface {
                running: i.running,
                disabled: i.disabled,
                ..keep
            };
        });
    }

    /// A reboot: uptime back to `uptime`, every counter to 0.
    pub fn reboot(&self, uptime: Duration) {
        self.with_state(|s| {
            s.uptime_base = uptime;
            s.since = Instant::now();
            for i in &mut s.interfaces {
                *i = SimInterface {
                    running: i.running,
                    disabled: i.disabled,
                    ..SimInterface::new(i.id, &i.name, &i.kind, &i.comment)
                };
            }
        });
    }

    /// Link state of `iface` (`running`).
    pub fn set_running(&self, iface: &str, running: bool) {
        self.with_state(|s| s.interface(iface).running = running);
    }

    /// The next API command is answered `!fatal <reason>` and the connection closed.
    pub fn fatal_next(&self, reason: &str) {
        self.with_state(|s| s.fatal_next = Some(reason.to_owned()));
    }

    /// Stops listening and drops every open connection (the router is unreachable).
    pub fn stop(&mut self) {
        for s in self.servers.drain(..) {
            s.abort();
        }
    }

    /// Listens again on the same ports with the same state.
    pub async fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop();
        let api = bind(self.api_port).await?;
        let acceptor = self.tls.as_ref().map(|(a, _)| a.clone());
        self.servers
            .push(tokio::spawn(api::serve_api(api, Arc::clone(&self.state), acceptor)));
        if let Some(port) = self.rest_port {
            let l = bind(port).await?;
            let state = Arc::clone(&self.state);
            self.servers.push(match self.tls.as_ref().map(|(a, _)| a.clone()) {
                Some(acceptor) => tokio::spawn(rest::serve(rest::TlsListener { inner: l, acceptor }, state)),
                None => tokio::spawn(rest::serve(l, state)),
            });
        }
        Ok(())
    }
}

impl Drop for RouterOsSim {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds `port`, retrying briefly while a just-aborted listener lets go.
async fn bind(port: u16) -> Result<TcpListener, TestkitError> {
    let mut tries = 0;
    loop {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => return Ok(l),
            Err(e) if tries < 50 => {
                let _ = e;
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(TestkitError::io("bind", format!("127.0.0.1:{port}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes_are_written_like_routeros() {
        assert_eq!(format_uptime(Duration::from_secs(0)), "0s");
        assert_eq!(format_uptime(Duration::from_secs(65)), "1m5s");
        assert_eq!(format_uptime(Duration::from_secs(694_800 + 5)), "1w1d1h5s");
    }
}
