//! [`RouterOsSim`]: a MikroTik RouterOS simulator on free loopback ports,
//! faithful to the API protocol (and optionally serving the v7 REST API
//! from the same state), whose state a test changes as it goes.
//!
//! API (port from [`RouterOsSim::api_addr`]):
//! - words are length-prefixed (1–5 byte lengths), sentences end with an
//!   empty word; every reply sentence carries the command's `.tag`;
//! - `/login =name= =password=` (the post-6.43 plaintext login): `!done`,
//!   or `!trap =message=invalid user name or password (6)` then `!done`;
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

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::TestkitError;

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
        Self::start_inner(false, Some(self_signed()?)).await
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
            .push(tokio::spawn(serve_api(api, Arc::clone(&self.state), acceptor)));
        if let Some(port) = self.rest_port {
            let l = bind(port).await?;
            self.servers.push(tokio::spawn(rest::serve(l, Arc::clone(&self.state))));
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

/// A self-signed certificate for `localhost` and 127.0.0.1: the acceptor,
/// and a directory with its PEM as `ca.pem`.
fn self_signed() -> Result<(TlsAcceptor, tempfile::TempDir), TestkitError> {
    let bad = |what: &'static str, e: &dyn std::fmt::Display| {
        TestkitError::io(
            what,
            "the simulator's certificate",
            std::io::Error::other(e.to_string()),
        )
    };
    let key = rcgen::KeyPair::generate().map_err(|e| bad("generate a key for", &e))?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).map_err(|e| bad("make", &e))?;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pantau RouterOS simulator");
    let cert = params.self_signed(&key).map_err(|e| bad("sign", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("configure TLS with", &e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .map_err(|e| bad("configure TLS with", &e))?;
    let dir = tempfile::Builder::new()
        .prefix("pantau-routeros-")
        .tempdir()
        .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, cert.pem()).map_err(|e| TestkitError::io("write", &pem, e))?;
    Ok((TlsAcceptor::from(Arc::new(config)), dir))
}

async fn serve_api(listener: TcpListener, state: Shared, tls: Option<TlsAcceptor>) {
    // Connections live in this set: aborting the server drops them all.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = Arc::clone(&state);
                match tls.clone() {
                    Some(acceptor) => conns.spawn(async move {
                        if let Ok(s) = acceptor.accept(stream).await {
                            api_connection(s, state).await;
                        }
                    }),
                    None => conns.spawn(api_connection(stream, state)),
                };
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Appends RouterOS's encoding of `len` (1–5 bytes).
#[allow(clippy::cast_possible_truncation)]
fn put_len(len: usize, out: &mut Vec<u8>) {
    let n = len as u32;
    match len {
        0..0x80 => out.push(n as u8),
        0x80..0x4000 => out.extend_from_slice(&(0x8000 | n as u16).to_be_bytes()),
        0x4000..0x20_0000 => out.extend_from_slice(&(0xC0_0000 | n).to_be_bytes()[1..]),
        0x20_0000..0x1000_0000 => out.extend_from_slice(&(0xE000_0000 | n).to_be_bytes()),
        _ => {
            out.push(0xF0);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn sentence(words: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for w in words {
        put_len(w.len(), &mut out);
        out.extend_from_slice(w.as_bytes());
    }
    out.push(0);
    out
}

/// Reads one length (1–5 bytes); `None` at a reserved control byte.
async fn read_len<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Option<usize>> {
    let b = s.read_u8().await?;
    let (more, first) = match b {
        0x00..=0x7F => (0, u32::from(b)),
        0x80..=0xBF => (1, u32::from(b & 0x3F)),
        0xC0..=0xDF => (2, u32::from(b & 0x1F)),
        0xE0..=0xEF => (3, u32::from(b & 0x0F)),
        0xF0 => (4, 0),
        _ => return Ok(None),
    };
    let mut n = first;
    for _ in 0..more {
        n = (n << 8) | u32::from(s.read_u8().await?);
    }
    Ok(Some(n as usize))
}

/// Reads one sentence; `None` on a protocol error.
async fn read_sentence<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Option<Vec<String>>> {
    let mut words = Vec::new();
    loop {
        let Some(len) = read_len(s).await? else { return Ok(None) };
        if len == 0 {
            return Ok(Some(words));
        }
        if len > 1 << 20 {
            return Ok(None);
        }
        let mut w = vec![0; len];
        s.read_exact(&mut w).await?;
        words.push(String::from_utf8_lossy(&w).into_owned());
    }
}

async fn api_connection<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, state: Shared) {
    let mut logged_in = false;
    while let Ok(Some(words)) = read_sentence(&mut stream).await {
        let Some(command) = words.first().cloned() else {
            continue;
        };
        let mut tag = None;
        let mut attrs = Vec::new();
        let mut queries = Vec::new();
        for w in &words[1..] {
            if let Some(t) = w.strip_prefix(".tag=") {
                tag = Some(t.to_owned());
            } else if let Some(a) = w.strip_prefix('=') {
                let (k, v) = a.split_once('=').unwrap_or((a, ""));
                attrs.push((k.to_owned(), v.to_owned()));
            } else if let Some(q) = w.strip_prefix('?') {
                let (k, v) = q.split_once('=').unwrap_or((q, ""));
                queries.push((k.to_owned(), v.to_owned()));
            }
        }
        let tagged = |mut s: Vec<String>| {
            if let Some(t) = &tag {
                s.push(format!(".tag={t}"));
            }
            sentence(&s)
        };
        let fatal = lock(&state).fatal_next.take();
        let fatal = fatal.or_else(|| match command.as_str() {
            "/quit" => Some("session terminated on request".to_owned()),
            "/login" => None,
            _ if !logged_in => Some("not logged in".to_owned()),
            _ => None,
        });
        if let Some(reason) = fatal {
            let _ = stream.write_all(&sentence(&["!fatal".to_owned(), reason])).await;
            let _ = stream.shutdown().await;
            return;
        }
        let mut out = Vec::new();
        if command == "/login" {
            let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
            if get("name") == Some(ROUTEROS_USER) && get("password") == Some(ROUTEROS_PASSWORD) {
                logged_in = true;
            } else {
                out.extend(tagged(vec![
                    "!trap".into(),
                    "=message=invalid user name or password (6)".into(),
                ]));
            }
        } else {
            let menu = command
                .strip_prefix('/')
                .and_then(|c| c.strip_suffix("/print"))
                .and_then(|m| lock(&state).menu(m));
            match menu {
                Some(rows) => {
                    let proplist = attrs.iter().find(|(k, _)| k == ".proplist").map(|(_, v)| v.as_str());
                    for row in select(rows, &queries, proplist) {
                        let mut s = vec!["!re".to_owned()];
                        s.extend(row.into_iter().map(|(k, v)| format!("={k}={v}")));
                        out.extend(tagged(s));
                    }
                }
                None => out.extend(tagged(vec!["!trap".into(), "=message=no such command".into()])),
            }
        }
        out.extend(tagged(vec!["!done".into()]));
        if stream.write_all(&out).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    #[test]
    fn uptimes_are_written_like_routeros() {
        assert_eq!(format_uptime(Duration::from_secs(0)), "0s");
        assert_eq!(format_uptime(Duration::from_secs(65)), "1m5s");
        assert_eq!(format_uptime(Duration::from_secs(694_800 + 5)), "1w1d1h5s");
    }

    #[test]
    fn lengths_use_every_form() {
        let enc = |n| {
            let mut v = Vec::new();
            put_len(n, &mut v);
            v
        };
        assert_eq!(enc(0x7F), [0x7F]);
        assert_eq!(enc(0x80), [0x80, 0x80]);
        assert_eq!(enc(0x4000), [0xC0, 0x40, 0x00]);
        assert_eq!(enc(0x20_0000), [0xE0, 0x20, 0x00, 0x00]);
        assert_eq!(enc(0x1000_0000), [0xF0, 0x10, 0x00, 0x00, 0x00]);
    }

    #[tokio::test]
    async fn login_then_print_with_tags_and_queries() {
        let sim = RouterOsSim::start().await.unwrap();
        let mut s = TcpStream::connect(sim.api_addr()).await.unwrap();
        let send = |w: &[&str]| sentence(&w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        s.write_all(&send(&["/interface/print"])).await.unwrap();
        assert_eq!(
            read_sentence(&mut s).await.unwrap().unwrap(),
            ["!fatal", "not logged in"]
        );
        let mut s = TcpStream::connect(sim.api_addr()).await.unwrap();
        s.write_all(&send(&["/login", "=name=pantau", "=password=nope", ".tag=1"]))
            .await
            .unwrap();
        let trap = read_sentence(&mut s).await.unwrap().unwrap();
        assert_eq!(trap[0], "!trap");
        assert_eq!(read_sentence(&mut s).await.unwrap().unwrap(), ["!done", ".tag=1"]);
        s.write_all(&send(&["/login", "=name=pantau", "=password=ros-secret-1", ".tag=2"]))
            .await
            .unwrap();
        assert_eq!(read_sentence(&mut s).await.unwrap().unwrap(), ["!done", ".tag=2"]);
        s.write_all(&send(&[
            "/ip/route/print",
            "?dst-address=0.0.0.0/0",
            "=.proplist=gateway",
            ".tag=3",
        ]))
        .await
        .unwrap();
        assert_eq!(
            read_sentence(&mut s).await.unwrap().unwrap(),
            ["!re", "=gateway=192.0.2.1", ".tag=3"]
        );
        assert_eq!(
            read_sentence(&mut s).await.unwrap().unwrap(),
            ["!re", "=gateway=pppoe-out1", ".tag=3"]
        );
        assert_eq!(read_sentence(&mut s).await.unwrap().unwrap(), ["!done", ".tag=3"]);
        s.write_all(&send(&["/nope/print", ".tag=4"])).await.unwrap();
        assert_eq!(read_sentence(&mut s).await.unwrap().unwrap()[0], "!trap");
        assert_eq!(read_sentence(&mut s).await.unwrap().unwrap(), ["!done", ".tag=4"]);
    }
}
