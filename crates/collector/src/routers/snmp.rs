//! One SNMP poll of one router (async-snmp, v2c or v3 USM): the system
//! group, `hrSystemUptime` and `snmpEngineTime`, IF-MIB `ifTable` and
//! `ifXTable` walked with GETBULK, the interfaces' addresses from
//! `ipAddrTable` and `ipAddressTable`, and the default route's ifIndex from
//! IP-FORWARD-MIB `inetCidrRouteTable`, falling back to `ipCidrRouteTable`,
//! then RFC 1213 `ipRouteTable`. OIDs are numeric: agents and hosts need no
//! MIB files. What the values mean, and the one type each may have, is
//! [`super::mib`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use async_snmp::{Auth, AuthProtocol, Client, Oid, PrivProtocol, Retry, UsmConfig, VarBind};
use pantau_config::{DEFAULT_RETRIES, RouterConfig, SnmpAuthProtocol, SnmpConfig, SnmpPrivProtocol, SnmpVersion};

use super::counters::uptime_centis;
use super::mib::{self, Got, Strict, Want};
pub use super::reading::{IfReading, Reading};

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
        let mut strict = Strict::default();
        let scalars = [
            mib::SYS_DESCR,
            mib::SYS_UPTIME,
            mib::SYS_NAME,
            mib::HR_SYSTEM_UPTIME,
            mib::SNMP_ENGINE_TIME,
        ]
        .map(Oid::from_slice);
        let got = self
            .client
            .get_many(&scalars)
            .await
            .map_err(|source| PollError::Request {
                what: "GET of the system group",
                source,
            })?;
        let mut scalar = |i: usize, object: &'static str, want: Want| {
            let v = got.varbinds.iter().find(|v| v.oid == scalars[i])?;
            strict.get(object, &v.oid, &v.value, want)
        };
        let text = |g: Option<Got<'_>>| match g {
            Some(Got::Text(b)) => String::from_utf8_lossy(b).trim_end_matches('\0').to_owned(),
            _ => String::new(),
        };
        let ticks = |g: Option<Got<'_>>| match g {
            Some(Got::Unsigned(t)) => u32::try_from(t).ok(),
            _ => None,
        };
        let sys_descr = text(scalar(0, "sysDescr", Want::OctetString));
        let sys_uptime = ticks(scalar(1, "sysUpTime", Want::TimeTicks)).ok_or(PollError::NoUptime)?;
        let sys_name = text(scalar(2, "sysName", Want::OctetString));
        let hr_uptime = ticks(scalar(3, "hrSystemUptime", Want::TimeTicks));
        let engine_time = match scalar(4, "snmpEngineTime", Want::NON_NEGATIVE) {
            Some(Got::Int(t)) => u32::try_from(t).ok(),
            _ => None,
        };
        let uptime = uptime_centis(Some(sys_uptime), hr_uptime, engine_time).unwrap_or_default();
        let if_table = self.walk(mib::IF_ENTRY, "walk of ifTable").await?;
        let ifx_table = self.walk(mib::IFX_ENTRY, "walk of ifXTable").await?;
        let mut interfaces = mib::interfaces(&if_table, &ifx_table, &mut strict);
        let mut addresses = self.addresses(&mut strict).await;
        for (idx, i) in &mut interfaces {
            if let Some(a) = addresses.remove(idx) {
                i.addresses = a;
            }
        }
        let (default_route_if_indexes, route_table) = self.default_routes(&mut strict).await?;
        Ok(Reading {
            at,
            sys_name,
            sys_descr,
            uptime_centis: uptime,
            interfaces,
            default_route_if_indexes,
            route_table,
            bad_values: strict.bad,
        })
    }

    /// The interfaces' addresses from both MIB generations. A table the
    /// agent does not serve, or answers with an error, adds nothing.
    async fn addresses(&self, strict: &mut Strict) -> std::collections::BTreeMap<u32, Vec<String>> {
        let mut tables: [Vec<VarBind>; 4] = Default::default();
        let oids = [
            mib::IP_AD_ENT_IF_INDEX,
            mib::IP_AD_ENT_NET_MASK,
            mib::IP_ADDRESS_IF_INDEX,
            mib::IP_ADDRESS_PREFIX,
        ];
        for (rows, base) in tables.iter_mut().zip(oids) {
            match self.walk(base, "walk of the address tables").await {
                Ok(r) => *rows = r,
                Err(e) => tracing::debug!(error = %e, "address table unreadable"),
            }
        }
        let [a, b, c, d] = &tables;
        mib::addresses(a, b, c, d, strict)
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
    /// Only the default-route part of each table is read (the subtree of
    /// destination 0.0.0.0/0, and ::/0, walked; in `ipRouteTable`, whose
    /// index is the destination alone, the one row 0.0.0.0 asked for by a
    /// GET, since a walk starting at a row skips the row itself), so a
    /// router carrying a full Internet table costs a few requests, not a
    /// million rows.
    async fn default_routes(&self, strict: &mut Strict) -> Result<(Vec<u32>, &'static str), PollError> {
        let mut v6 = vec![2, 16];
        v6.extend([0; 16]);
        v6.push(0);
        let tables: [(&[u32], &'static str, Vec<Lookup>, fn(&[u32]) -> bool); 3] = [
            (
                mib::INET_CIDR_ROUTE_IF_INDEX,
                "inetCidrRouteIfIndex",
                vec![Lookup::Walk(vec![1, 4, 0, 0, 0, 0, 0]), Lookup::Walk(v6)],
                mib::is_default_inet_cidr,
            ),
            (
                mib::IP_CIDR_ROUTE_IF_INDEX,
                "ipCidrRouteIfIndex",
                vec![Lookup::Walk(vec![0; 8])],
                mib::is_default_ip_cidr,
            ),
            (
                mib::IP_ROUTE_IF_INDEX,
                "ipRouteIfIndex",
                vec![Lookup::Get(vec![0; 4])],
                mib::is_default_ip_route,
            ),
        ];
        for (base, object, lookups, is_default) in tables {
            let mut idx = Vec::new();
            for lookup in lookups {
                let rows = match lookup {
                    Lookup::Walk(prefix) => {
                        let subtree: Vec<u32> = base.iter().chain(&prefix).copied().collect();
                        match self.walk_routes(&subtree, object).await {
                            Some(rows) => rows,
                            None => continue,
                        }
                    }
                    Lookup::Get(instance) => {
                        let oid: Vec<u32> = base.iter().chain(&instance).copied().collect();
                        match self.client.get(&Oid::from_slice(&oid)).await {
                            Ok(r) => r.varbinds,
                            Err(e) => {
                                tracing::debug!(table = object, error = %e, "routing table unreadable");
                                continue;
                            }
                        }
                    }
                };
                for v in &rows {
                    if !v.oid.arcs().get(base.len()..).is_some_and(is_default) {
                        continue;
                    }
                    if let Some(Got::Int(i)) = strict.get(object, &v.oid, &v.value, Want::NON_NEGATIVE) {
                        idx.extend(u32::try_from(i).ok());
                    }
                }
            }
            idx.retain(|i| *i > 0);
            if idx.is_empty() {
                continue;
            }
            idx.sort_unstable();
            idx.dedup();
            let table = match object {
                "inetCidrRouteIfIndex" => "inetCidrRouteTable",
                "ipCidrRouteIfIndex" => "ipCidrRouteTable",
                _ => "ipRouteTable",
            };
            return Ok((idx, table));
        }
        Ok((Vec::new(), ""))
    }

    /// The rows of a routing-table subtree, `None` when the agent serves it
    /// neither by GETBULK nor by GETNEXT.
    async fn walk_routes(&self, subtree: &[u32], table: &'static str) -> Option<Vec<VarBind>> {
        // Agents differ in how well they serve these tables (net-snmp
        // answers a v3 GETBULK of inetCidrRouteTable with genErr): a GETNEXT
        // walk stands in, and a table that fails both is skipped like a
        // missing one.
        if self.routes_by_getnext.load(Ordering::Relaxed) {
            return match self.walk_getnext(subtree).await {
                Ok(rows) => Some(rows),
                Err(e) => {
                    tracing::debug!(table, error = %e, "routing table unreadable");
                    None
                }
            };
        }
        match self.walk_with(subtree, MAX_REPETITIONS_ROUTES).await {
            Ok(rows) => Some(rows),
            Err(bulk) => match self.walk_getnext(subtree).await {
                Ok(rows) => {
                    self.routes_by_getnext.store(true, Ordering::Relaxed);
                    Some(rows)
                }
                Err(e) => {
                    tracing::debug!(table, bulk = %bulk, getnext = %e, "routing table unreadable");
                    None
                }
            },
        }
    }
}

/// How the default-route part of a routing table is read.
enum Lookup {
    /// A walk of the subtree under this index prefix.
    Walk(Vec<u32>),
    /// A GET of this one row (its index is the destination alone).
    Get(Vec<u32>),
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
