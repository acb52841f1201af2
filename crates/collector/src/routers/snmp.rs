//! One SNMP poll of one router (async-snmp, v2c or v3 USM): the system
//! group, `hrSystemUptime` and `snmpEngineTime`, IF-MIB `ifTable` and
//! `ifXTable` walked with GETBULK, and the default route's ifIndex from
//! IP-FORWARD-MIB `inetCidrRouteTable`, falling back to `ipCidrRouteTable`,
//! then RFC 1213 `ipRouteTable`. OIDs are numeric: agents and hosts need no
//! MIB files.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use async_snmp::{Auth, AuthProtocol, Client, Oid, PrivProtocol, Retry, UsmConfig, Value, VarBind};
use pantau_config::{DEFAULT_RETRIES, RouterConfig, SnmpAuthProtocol, SnmpConfig, SnmpPrivProtocol, SnmpVersion};

use super::counters::{Width, uptime_centis};
pub use super::reading::{IfReading, Reading};

const SYS_DESCR: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 1, 0];
const SYS_UPTIME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
const SYS_NAME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 5, 0];
const HR_SYSTEM_UPTIME: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 1, 1, 0];
const SNMP_ENGINE_TIME: &[u32] = &[1, 3, 6, 1, 6, 3, 10, 2, 1, 3, 0];
/// `ifEntry`: columns 2 descr, 3 type, 5 speed, 7 admin, 8 oper, 10 in
/// octets, 11 in ucast, 13 in discards, 14 in errors, 16 out octets, 17 out
/// ucast, 19 out discards, 20 out errors.
const IF_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1];
/// `ifXEntry`: 1 name, 6 HC in octets, 7 HC in ucast, 10 HC out octets,
/// 11 HC out ucast, 15 high speed (Mbit/s), 18 alias, 19 counter
/// discontinuity time.
const IFX_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1];
/// `inetCidrRouteIfIndex`.
const INET_CIDR_ROUTE_IF_INDEX: &[u32] = &[1, 3, 6, 1, 2, 1, 4, 24, 7, 1, 7];
/// `ipCidrRouteIfIndex`.
const IP_CIDR_ROUTE_IF_INDEX: &[u32] = &[1, 3, 6, 1, 2, 1, 4, 24, 4, 1, 5];
/// RFC 1213 `ipRouteIfIndex`.
const IP_ROUTE_IF_INDEX: &[u32] = &[1, 3, 6, 1, 2, 1, 4, 21, 1, 2];

/// GETBULK max-repetitions for table walks.
const MAX_REPETITIONS: u32 = 50;
/// GETBULK max-repetitions for the default-route subtrees (a few rows).
const MAX_REPETITIONS_ROUTES: u32 = 8;

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("cannot set up SNMP to {address}: {source}")]
    Setup {
        address: String,
        #[source]
        source: Box<async_snmp::Error>,
    },
    #[error("SNMP v3 credentials rejected by the SNMP library: {0}")]
    Credentials(String),
    #[error("address `{address}` {why}")]
    Address { address: String, why: &'static str },
    #[error("retries: {0}")]
    Retries(String),
    #[error("{what} failed: {source}")]
    Request {
        what: &'static str,
        #[source]
        source: Box<async_snmp::Error>,
    },
    #[error("the agent answered without sysUpTime; it is not a usable SNMP agent")]
    NoUptime,
}

/// An SNMP session with one router.
pub struct Session {
    client: Client,
    /// Set once a GETBULK of the routing table failed where GETNEXT worked:
    /// later polls go straight to GETNEXT.
    routes_by_getnext: AtomicBool,
}

impl Session {
    /// Sets up the client for `r` (v3 engine discovery happens on first use).
    pub async fn connect(r: &RouterConfig, timeout: Duration) -> Result<Self, PollError> {
        let (host, port) = r.host_port().map_err(|why| PollError::Address {
            address: r.address.clone(),
            why,
        })?;
        let retries = r.retries.unwrap_or(DEFAULT_RETRIES);
        let retry = Retry::fixed(retries, Duration::ZERO).map_err(|e| PollError::Retries(e.to_string()))?;
        let client = Client::builder((host.as_str(), port), auth(&r.snmp)?)
            .request_timeout(timeout)
            .retry(retry)
            .connect()
            .await
            .map_err(|source| PollError::Setup {
                address: r.address.clone(),
                source,
            })?;
        Ok(Self {
            client,
            routes_by_getnext: AtomicBool::new(false),
        })
    }

    /// Reads everything once.
    pub async fn poll(&self) -> Result<Reading, PollError> {
        let at = SystemTime::now();
        let scalars = [SYS_DESCR, SYS_UPTIME, SYS_NAME, HR_SYSTEM_UPTIME, SNMP_ENGINE_TIME].map(Oid::from_slice);
        let got = self
            .client
            .get_many(&scalars)
            .await
            .map_err(|source| PollError::Request {
                what: "GET of the system group",
                source,
            })?;
        let find = |o: &Oid| got.varbinds.iter().find(|v| &v.oid == o).map(|v| &v.value);
        let text = |o: &Oid| find(o).and_then(value_text).unwrap_or_default();
        let ticks = |o: &Oid| find(o).and_then(Value::as_u32);
        let sys_uptime = ticks(&scalars[1]).ok_or(PollError::NoUptime)?;
        let engine_time = find(&scalars[4])
            .and_then(Value::as_i32)
            .and_then(|v| u32::try_from(v).ok());
        let uptime = uptime_centis(Some(sys_uptime), ticks(&scalars[3]), engine_time).unwrap_or_default();
        let if_table = self.walk(IF_ENTRY, "walk of ifTable").await?;
        let ifx_table = self.walk(IFX_ENTRY, "walk of ifXTable").await?;
        let (default_route_if_indexes, route_table) = self.default_routes().await?;
        Ok(Reading {
            at,
            sys_name: text(&scalars[2]),
            sys_descr: text(&scalars[0]),
            uptime_centis: uptime,
            interfaces: interfaces(&if_table, &ifx_table),
            default_route_if_indexes,
            route_table,
        })
    }

    async fn walk(&self, base: &[u32], what: &'static str) -> Result<Vec<VarBind>, PollError> {
        self.bulk(base, MAX_REPETITIONS, what).await
    }

    async fn walk_with(&self, base: &[u32], reps: u32) -> Result<Vec<VarBind>, PollError> {
        self.bulk(base, reps, "walk of the routing table").await
    }

    async fn bulk(&self, base: &[u32], reps: u32, what: &'static str) -> Result<Vec<VarBind>, PollError> {
        self.client
            .bulk_walk(Oid::from_slice(base), reps)
            .map_err(|source| PollError::Request { what, source })?
            .collect()
            .await
            .map_err(|source| PollError::Request { what, source })
    }

    async fn walk_getnext(&self, base: &[u32]) -> Result<Vec<VarBind>, PollError> {
        let what = "GETNEXT walk of the routing table";
        self.client
            .walk_getnext(Oid::from_slice(base))
            .map_err(|source| PollError::Request { what, source })?
            .collect()
            .await
            .map_err(|source| PollError::Request { what, source })
    }

    /// The ifIndexes of the default routes and the table they came from.
    ///
    /// Only the default-route part of each table is walked (the subtree of
    /// destination 0.0.0.0/0, and ::/0), so a router carrying a full
    /// Internet table costs a few requests, not a million rows.
    async fn default_routes(&self) -> Result<(Vec<u32>, &'static str), PollError> {
        let mut v6 = vec![2, 16];
        v6.extend([0; 16]);
        v6.push(0);
        let tables: [(&[u32], &'static str, Vec<Vec<u32>>, fn(&[u32]) -> bool); 3] = [
            (
                INET_CIDR_ROUTE_IF_INDEX,
                "inetCidrRouteTable",
                vec![vec![1, 4, 0, 0, 0, 0, 0], v6],
                is_default_inet_cidr,
            ),
            (
                IP_CIDR_ROUTE_IF_INDEX,
                "ipCidrRouteTable",
                vec![vec![0; 8]],
                is_default_ip_cidr,
            ),
            (IP_ROUTE_IF_INDEX, "ipRouteTable", vec![vec![0; 4]], is_default_ip_route),
        ];
        for (base, name, prefixes, is_default) in tables {
            let mut idx = Vec::new();
            for prefix in prefixes {
                let subtree: Vec<u32> = base.iter().chain(&prefix).copied().collect();
                // Agents differ in how well they serve these tables (net-snmp
                // answers a v3 GETBULK of inetCidrRouteTable with genErr): a
                // GETNEXT walk stands in, and a table that fails both is
                // skipped like a missing one.
                let bulk = if self.routes_by_getnext.load(Ordering::Relaxed) {
                    None
                } else {
                    Some(self.walk_with(&subtree, MAX_REPETITIONS_ROUTES).await)
                };
                let rows = match bulk {
                    Some(Ok(rows)) => rows,
                    None => match self.walk_getnext(&subtree).await {
                        Ok(rows) => rows,
                        Err(e) => {
                            tracing::debug!(table = name, error = %e, "routing table unreadable");
                            continue;
                        }
                    },
                    Some(Err(bulk)) => match self.walk_getnext(&subtree).await {
                        Ok(rows) => {
                            self.routes_by_getnext.store(true, Ordering::Relaxed);
                            rows
                        }
                        Err(e) => {
                            tracing::debug!(table = name, bulk = %bulk, getnext = %e, "routing table unreadable");
                            continue;
                        }
                    },
                };
                idx.extend(rows.iter().filter_map(|v| {
                    let index = v.oid.arcs().get(base.len()..)?;
                    is_default(index).then(|| v.value.as_u32()).flatten()
                }));
            }
            idx.retain(|i| *i > 0);
            if idx.is_empty() {
                continue;
            }
            idx.sort_unstable();
            idx.dedup();
            return Ok((idx, name));
        }
        Ok((Vec::new(), ""))
    }
}

/// The USM or community credentials of `s`.
fn auth(s: &SnmpConfig) -> Result<Auth, PollError> {
    match s.version {
        SnmpVersion::V2c => Ok(Auth::v2c(s.community.clone().unwrap_or_default())),
        SnmpVersion::V3 => {
            let usm = UsmConfig::new(s.user.clone().unwrap_or_default());
            let bad = |e: async_snmp::CryptoError| PollError::Credentials(e.to_string());
            let usm = match (s.auth_protocol, &s.auth_password, s.priv_protocol, &s.priv_password) {
                (Some(a), Some(ap), Some(p), Some(pp)) => usm.auth_priv(auth_protocol(a), ap, priv_protocol(p), pp),
                (Some(a), Some(ap), None, _) => usm.auth(auth_protocol(a), ap),
                _ => Ok(usm),
            }
            .map_err(bad)?;
            Ok(usm.into())
        }
    }
}

fn auth_protocol(p: SnmpAuthProtocol) -> AuthProtocol {
    match p {
        SnmpAuthProtocol::Md5 => AuthProtocol::Md5,
        SnmpAuthProtocol::Sha => AuthProtocol::Sha1,
        SnmpAuthProtocol::Sha224 => AuthProtocol::Sha224,
        SnmpAuthProtocol::Sha256 => AuthProtocol::Sha256,
        SnmpAuthProtocol::Sha384 => AuthProtocol::Sha384,
        SnmpAuthProtocol::Sha512 => AuthProtocol::Sha512,
    }
}

fn priv_protocol(p: SnmpPrivProtocol) -> PrivProtocol {
    match p {
        SnmpPrivProtocol::Des => PrivProtocol::Des,
        SnmpPrivProtocol::Aes => PrivProtocol::Aes128,
        SnmpPrivProtocol::Aes192 => PrivProtocol::Aes192Blumenthal,
        SnmpPrivProtocol::Aes256 => PrivProtocol::Aes256Blumenthal,
    }
}

fn value_text(v: &Value) -> Option<String> {
    v.as_bytes()
        .map(|b| String::from_utf8_lossy(b).trim_end_matches('\0').to_owned())
}

/// `(column, ifIndex)` of a row under `entry`.
fn column_index(v: &VarBind, entry: &[u32]) -> Option<(u32, u32)> {
    match v.oid.arcs().get(entry.len()..)? {
        [column, index] => Some((*column, *index)),
        _ => None,
    }
}

/// Joins the ifTable and ifXTable rows into interfaces by ifIndex,
/// preferring the 64-bit counters where the agent has them.
pub fn interfaces(if_table: &[VarBind], ifx_table: &[VarBind]) -> BTreeMap<u32, IfReading> {
    let mut out: BTreeMap<u32, IfReading> = BTreeMap::new();
    let mut hc_in = BTreeMap::new();
    let mut hc_out = BTreeMap::new();
    let mut hc_in_ucast = BTreeMap::new();
    let mut hc_out_ucast = BTreeMap::new();
    let mut low32 = std::collections::BTreeSet::new();
    for v in if_table {
        let Some((col, idx)) = column_index(v, IF_ENTRY) else {
            continue;
        };
        let i = out.entry(idx).or_insert_with(|| IfReading {
            index: idx,
            ..IfReading::default()
        });
        let n = || v.value.as_u32().map(u64::from).unwrap_or_default();
        match col {
            2 => i.descr = value_text(&v.value).unwrap_or_default(),
            3 => i.if_type = v.value.as_i32().unwrap_or_default(),
            5 if i.speed_bps == 0 => i.speed_bps = n(),
            7 => i.admin_up = v.value.as_i32() == Some(1),
            8 => i.oper_up = v.value.as_i32() == Some(1),
            10 => {
                i.in_octets = n();
                low32.insert(idx);
            }
            11 => i.in_ucast = n(),
            13 => i.in_discards = n(),
            14 => i.in_errors = n(),
            16 => i.out_octets = n(),
            17 => i.out_ucast = n(),
            19 => i.out_discards = n(),
            20 => i.out_errors = n(),
            _ => {}
        }
    }
    for v in ifx_table {
        let Some((col, idx)) = column_index(v, IFX_ENTRY) else {
            continue;
        };
        let Some(i) = out.get_mut(&idx) else { continue };
        match col {
            1 => i.name = value_text(&v.value).unwrap_or_default(),
            6 => {
                if let Some(c) = v.value.as_u64() {
                    hc_in.insert(idx, c);
                }
            }
            7 => {
                if let Some(c) = v.value.as_u64() {
                    hc_in_ucast.insert(idx, c);
                }
            }
            10 => {
                if let Some(c) = v.value.as_u64() {
                    hc_out.insert(idx, c);
                }
            }
            11 => {
                if let Some(c) = v.value.as_u64() {
                    hc_out_ucast.insert(idx, c);
                }
            }
            15 => {
                if let Some(mbit) = v.value.as_u32().filter(|m| *m > 0) {
                    i.speed_bps = u64::from(mbit) * 1_000_000;
                }
            }
            18 => i.alias = value_text(&v.value).unwrap_or_default(),
            19 => i.discontinuity = v.value.as_u32(),
            _ => {}
        }
    }
    for (idx, i) in &mut out {
        if let (Some(a), Some(b)) = (hc_in.get(idx), hc_out.get(idx)) {
            i.in_octets = *a;
            i.out_octets = *b;
            i.width = Some(Width::Bits64);
        } else if low32.contains(idx) {
            i.width = Some(Width::Bits32);
        }
        if let (Some(a), Some(b)) = (hc_in_ucast.get(idx), hc_out_ucast.get(idx)) {
            i.in_ucast = *a;
            i.out_ucast = *b;
        }
        if i.name.is_empty() {
            i.name.clone_from(&i.descr);
        }
        if i.name.is_empty() {
            i.name = format!("if{idx}");
        }
    }
    out
}

/// `inetCidrRouteTable` index: destType, len, dest…, pfxLen, policy…,
/// nextHopType, len, nextHop…; default when dest is all zeros and pfxLen 0.
fn is_default_inet_cidr(index: &[u32]) -> bool {
    let [_kind, len, rest @ ..] = index else { return false };
    let len = *len as usize;
    rest.len() > len && rest[..len].iter().all(|a| *a == 0) && rest[len] == 0
}

/// `ipCidrRouteTable` index: dest(4), mask(4), tos, nextHop(4).
fn is_default_ip_cidr(index: &[u32]) -> bool {
    index.len() >= 8 && index[..8].iter().all(|a| *a == 0)
}

/// `ipRouteTable` index: dest(4).
fn is_default_ip_route(index: &[u32]) -> bool {
    index.len() == 4 && index.iter().all(|a| *a == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vb(arcs: &[u32], value: Value) -> VarBind {
        VarBind {
            oid: Oid::from_slice(arcs),
            value,
        }
    }

    #[test]
    fn default_route_indexes() {
        // 0.0.0.0/0 via 192.0.2.1, and 10.0.0.0/8.
        assert!(is_default_inet_cidr(&[
            1, 4, 0, 0, 0, 0, 0, 2, 0, 0, 1, 4, 192, 0, 2, 1
        ]));
        assert!(!is_default_inet_cidr(&[
            1, 4, 10, 0, 0, 0, 8, 2, 0, 0, 1, 4, 0, 0, 0, 0
        ]));
        // ::/0
        let mut v6 = vec![2, 16];
        v6.extend([0; 16]);
        v6.extend([0, 2, 0, 0, 2, 16]);
        assert!(is_default_inet_cidr(&v6));
        assert!(!is_default_inet_cidr(&[1, 4, 0, 0]));
        assert!(is_default_ip_cidr(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1]));
        assert!(!is_default_ip_cidr(&[10, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0]));
        assert!(is_default_ip_route(&[0, 0, 0, 0]));
        assert!(!is_default_ip_route(&[127, 0, 0, 0]));
    }

    #[test]
    fn tables_join_and_prefer_64_bit() {
        let e = |col: u32, idx: u32, v: Value| {
            let mut a = IF_ENTRY.to_vec();
            a.extend([col, idx]);
            vb(&a, v)
        };
        let x = |col: u32, idx: u32, v: Value| {
            let mut a = IFX_ENTRY.to_vec();
            a.extend([col, idx]);
            vb(&a, v)
        };
        let if_table = vec![
            e(2, 1, Value::OctetString("lo".into())),
            e(2, 4, Value::OctetString("eth0".into())),
            e(5, 4, Value::Gauge32(4_294_967_295)),
            e(8, 1, Value::Integer(1)),
            e(8, 4, Value::Integer(2)),
            e(10, 1, Value::Counter32(5)),
            e(10, 4, Value::Counter32(7)),
            e(16, 4, Value::Counter32(9)),
            e(14, 4, Value::Counter32(3)),
        ];
        let ifx = vec![
            x(1, 4, Value::OctetString("ether1".into())),
            x(6, 4, Value::Counter64(70_000_000_000)),
            x(10, 4, Value::Counter64(90_000_000_000)),
            x(15, 4, Value::Gauge32(10_000)),
            x(18, 4, Value::OctetString("uplink telkom".into())),
        ];
        let m = interfaces(&if_table, &ifx);
        assert_eq!(m.len(), 2);
        let lo = &m[&1];
        assert_eq!(
            (lo.name.as_str(), lo.oper_up, lo.width),
            ("lo", true, Some(Width::Bits32))
        );
        assert_eq!(lo.in_octets, 5);
        let eth = &m[&4];
        assert_eq!(eth.name, "ether1");
        assert_eq!(eth.descr, "eth0");
        assert_eq!(eth.alias, "uplink telkom");
        assert_eq!(eth.width, Some(Width::Bits64));
        assert_eq!((eth.in_octets, eth.out_octets), (70_000_000_000, 90_000_000_000));
        assert_eq!(eth.speed_bps, 10_000_000_000);
        assert_eq!(eth.in_errors, 3);
        assert!(!eth.oper_up);
    }
}
