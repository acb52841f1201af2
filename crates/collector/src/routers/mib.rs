//! What the SNMP objects Pantau reads mean, as pure functions: their OIDs,
//! the one type each may have, and how rows become interfaces, addresses
//! and default routes.
//!
//! Strict by design: a varbind of another type than its MIB says (an
//! `OCTET STRING "up"` for `ifOperStatus`, an `OCTET STRING` for
//! `ifHCInOctets`) or out of its range is never reinterpreted. It is left
//! out and recorded as a [`BadValue`], which the poller counts and logs once
//! per router and object. What a bad value leaves unknown stays unknown:
//! - an interface whose `ifAdminStatus` or `ifOperStatus` is bad, or that
//!   has an `ifXTable` row and no `ifTable` row, is left out of the poll
//!   (its state is not known, so it is neither up nor down);
//! - an interface with a bad traffic counter has no counters this poll
//!   (`width: None`: no rate, no counter reset);
//! - a bad text, speed or type is empty or 0, as when the agent has none.
//!
//! `noSuchObject`, `noSuchInstance` and `endOfMibView` are absences, not bad
//! values.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use async_snmp::{Oid, Value, VarBind};

use super::counters::Width;
use super::reading::{BadValue, IfReading};

pub const SYS_DESCR: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 1, 0];
pub const SYS_UPTIME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
pub const SYS_NAME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 5, 0];
pub const HR_SYSTEM_UPTIME: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 1, 1, 0];
pub const SNMP_ENGINE_TIME: &[u32] = &[1, 3, 6, 1, 6, 3, 10, 2, 1, 3, 0];
/// `ifEntry`: columns 2 descr, 3 type, 5 speed, 7 admin, 8 oper, 10 in
/// octets, 11 in ucast, 13 in discards, 14 in errors, 16 out octets, 17 out
/// ucast, 19 out discards, 20 out errors.
pub const IF_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1];
/// `ifXEntry`: 1 name, 6 HC in octets, 7 HC in ucast, 10 HC out octets,
/// 11 HC out ucast, 15 high speed (Mbit/s), 18 alias, 19 counter
/// discontinuity time.
pub const IFX_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1];
/// `inetCidrRouteIfIndex`.
pub const INET_CIDR_ROUTE_IF_INDEX: &[u32] = &[1, 3, 6, 1, 2, 1, 4, 24, 7, 1, 7];
/// `ipCidrRouteIfIndex`.
pub const IP_CIDR_ROUTE_IF_INDEX: &[u32] = &[1, 3, 6, 1, 2, 1, 4, 24, 4, 1, 5];
/// RFC 1213 `ipRouteIfIndex`.
pub const IP_ROUTE_IF_INDEX: &[u32] = &[1, 3, 6, 1, 2, 1, 4, 21, 1, 2];
/// RFC 1213 `ipAdEntIfIndex` (IPv4 only; index: the address).
pub const IP_AD_ENT_IF_INDEX: &[u32] = &[1, 3, 6, 1, 2, 1, 4, 20, 1, 2];
/// RFC 1213 `ipAdEntNetMask`.
pub const IP_AD_ENT_NET_MASK: &[u32] = &[1, 3, 6, 1, 2, 1, 4, 20, 1, 3];
/// RFC 4293 `ipAddressIfIndex` (IPv4 and IPv6; index: type, length, address).
pub const IP_ADDRESS_IF_INDEX: &[u32] = &[1, 3, 6, 1, 2, 1, 4, 34, 1, 3];
/// RFC 4293 `ipAddressPrefix`: a pointer into `ipAddressPrefixTable` whose
/// last arc is the prefix length.
pub const IP_ADDRESS_PREFIX: &[u32] = &[1, 3, 6, 1, 2, 1, 4, 34, 1, 5];

/// Every object name a [`BadValue`] can carry (the metric's `oid_name`
/// values, exported as 0 from the start).
pub const OBJECT_NAMES: &[&str] = &[
    "sysDescr",
    "sysUpTime",
    "sysName",
    "hrSystemUptime",
    "snmpEngineTime",
    "ifDescr",
    "ifType",
    "ifSpeed",
    "ifAdminStatus",
    "ifOperStatus",
    "ifInOctets",
    "ifInUcastPkts",
    "ifInDiscards",
    "ifInErrors",
    "ifOutOctets",
    "ifOutUcastPkts",
    "ifOutDiscards",
    "ifOutErrors",
    "ifName",
    "ifHCInOctets",
    "ifHCInUcastPkts",
    "ifHCOutOctets",
    "ifHCOutUcastPkts",
    "ifHighSpeed",
    "ifAlias",
    "ifCounterDiscontinuityTime",
    "ifXEntry",
    "inetCidrRouteIfIndex",
    "ipCidrRouteIfIndex",
    "ipRouteIfIndex",
    "ipAdEntIfIndex",
    "ipAdEntNetMask",
    "ipAddressIfIndex",
    "ipAddressPrefix",
];

/// The SMI type an object must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// `INTEGER` / `Integer32` within `min..=max`.
    Integer {
        min: i32,
        max: i32,
    },
    OctetString,
    Counter32,
    Counter64,
    /// `Gauge32` / `Unsigned32`.
    Gauge32,
    TimeTicks,
    IpAddress,
    ObjectIdentifier,
}

impl Want {
    /// Any non-negative `INTEGER` (ifIndex, `InterfaceIndexOrZero`, `snmpEngineTime`).
    pub const NON_NEGATIVE: Self = Self::Integer { min: 0, max: i32::MAX };

    fn describe(self) -> String {
        match self {
            Self::Integer { min, max } if max == i32::MAX => format!("INTEGER ≥ {min}"),
            Self::Integer { min, max } => format!("INTEGER {min}..{max}"),
            Self::OctetString => "OCTET STRING".into(),
            Self::Counter32 => "Counter32".into(),
            Self::Counter64 => "Counter64".into(),
            Self::Gauge32 => "Gauge32".into(),
            Self::TimeTicks => "TimeTicks".into(),
            Self::IpAddress => "IpAddress".into(),
            Self::ObjectIdentifier => "OBJECT IDENTIFIER".into(),
        }
    }
}

/// What a value of the wanted type holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Got<'a> {
    Int(i32),
    Text(&'a [u8]),
    Unsigned(u64),
    Ip(Ipv4Addr),
    Oid(&'a Oid),
}

impl Got<'_> {
    fn int(&self) -> Option<i32> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn unsigned(&self) -> Option<u64> {
        match self {
            Self::Unsigned(u) => Some(*u),
            _ => None,
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            Self::Text(b) => Some(String::from_utf8_lossy(b).trim_end_matches('\0').to_owned()),
            _ => None,
        }
    }
}

/// The values of one poll that were not what their MIB says.
#[derive(Debug, Default)]
pub struct Strict {
    pub bad: Vec<BadValue>,
}

impl Strict {
    /// `v` as `want`; `None` (recorded as bad) when it is another type or
    /// out of range, `None` (not recorded) when the agent has no such object.
    pub fn get<'a>(&mut self, object: &'static str, oid: &Oid, v: &'a Value, want: Want) -> Option<Got<'a>> {
        let got = match (want, v) {
            (_, Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView) => return None,
            (Want::Integer { min, max }, Value::Integer(i)) if (min..=max).contains(i) => Some(Got::Int(*i)),
            (Want::OctetString, Value::OctetString(b)) => Some(Got::Text(b)),
            (Want::Counter32, Value::Counter32(u))
            | (Want::Gauge32, Value::Gauge32(u) | Value::UInteger32(u))
            | (Want::TimeTicks, Value::TimeTicks(u)) => Some(Got::Unsigned(u64::from(*u))),
            (Want::Counter64, Value::Counter64(u)) => Some(Got::Unsigned(*u)),
            (Want::IpAddress, Value::IpAddress(a)) => Some(Got::Ip(Ipv4Addr::from(*a))),
            (Want::ObjectIdentifier, Value::ObjectIdentifier(o)) => Some(Got::Oid(o)),
            _ => None,
        };
        if got.is_none() {
            self.bad.push(BadValue {
                object,
                oid: oid.to_string(),
                want: want.describe(),
                got: describe(v),
            });
        }
        got
    }

    /// A value a row cannot do without that is missing (an `ifXTable` row
    /// without its `ifTable` row, an `ifTable` row without a status).
    fn orphan(&mut self, object: &'static str, oid: &Oid, want: &str) {
        self.bad.push(BadValue {
            object,
            oid: oid.to_string(),
            want: want.to_owned(),
            got: "none".to_owned(),
        });
    }
}

/// A value as the agent sent it, type and (at most 100 bytes of) content.
fn describe(v: &Value) -> String {
    let kind = v.kind().as_str();
    match v {
        Value::OctetString(b) | Value::Opaque(b) | Value::Nsap(b) => {
            let text = String::from_utf8_lossy(b);
            format!("{kind} \"{}\"", pantau_config::types::quote(&text))
        }
        Value::Integer(i) => format!("{kind} {i}"),
        Value::Counter32(u) | Value::Gauge32(u) | Value::UInteger32(u) | Value::TimeTicks(u) => {
            format!("{kind} {u}")
        }
        Value::Counter64(u) => format!("{kind} {u}"),
        Value::IpAddress(a) => format!("{kind} {}", Ipv4Addr::from(*a)),
        Value::ObjectIdentifier(o) => {
            let text = o.to_string();
            format!("{kind} {}", pantau_config::types::quote(&text))
        }
        _ => kind.to_owned(),
    }
}

/// `(column, ifIndex)` of a row under `entry`.
fn column_index(v: &VarBind, entry: &[u32]) -> Option<(u32, u32)> {
    match v.oid.arcs().get(entry.len()..)? {
        [column, index] => Some((*column, *index)),
        _ => None,
    }
}

/// One interface's values as read, before they are judged together.
#[derive(Debug, Default)]
struct Row {
    i: IfReading,
    admin: Option<i32>,
    oper: Option<i32>,
    status_bad: bool,
    counters_bad: bool,
    in32: Option<u64>,
    out32: Option<u64>,
    in64: Option<u64>,
    out64: Option<u64>,
    in_ucast64: Option<u64>,
    out_ucast64: Option<u64>,
}

/// Joins the ifTable and ifXTable rows into interfaces by ifIndex,
/// preferring the 64-bit counters where the agent has them.
pub fn interfaces(if_table: &[VarBind], ifx_table: &[VarBind], strict: &mut Strict) -> BTreeMap<u32, IfReading> {
    use Want::{Counter32, Counter64, Gauge32, OctetString, TimeTicks};
    let mut rows: BTreeMap<u32, Row> = BTreeMap::new();
    for v in if_table {
        let Some((col, idx)) = column_index(v, IF_ENTRY) else {
            continue;
        };
        let r = rows.entry(idx).or_default();
        let (object, want) = match col {
            2 => ("ifDescr", OctetString),
            3 => ("ifType", Want::Integer { min: 1, max: i32::MAX }),
            5 => ("ifSpeed", Gauge32),
            7 => ("ifAdminStatus", Want::Integer { min: 1, max: 3 }),
            8 => ("ifOperStatus", Want::Integer { min: 1, max: 7 }),
            10 => ("ifInOctets", Counter32),
            11 => ("ifInUcastPkts", Counter32),
            13 => ("ifInDiscards", Counter32),
            14 => ("ifInErrors", Counter32),
            16 => ("ifOutOctets", Counter32),
            17 => ("ifOutUcastPkts", Counter32),
            19 => ("ifOutDiscards", Counter32),
            20 => ("ifOutErrors", Counter32),
            _ => continue,
        };
        let got = strict.get(object, &v.oid, &v.value, want);
        let bad = got.is_none() && !is_absent(&v.value);
        match col {
            7 | 8 => r.status_bad |= bad,
            10 | 11 | 13 | 14 | 16 | 17 | 19 | 20 => r.counters_bad |= bad,
            _ => {}
        }
        let Some(got) = got else { continue };
        let n = got.unsigned();
        match col {
            2 => r.i.descr = got.text().unwrap_or_default(),
            3 => r.i.if_type = got.int().unwrap_or_default(),
            5 if r.i.speed_bps == 0 => r.i.speed_bps = n.unwrap_or_default(),
            7 => r.admin = got.int(),
            8 => r.oper = got.int(),
            10 => r.in32 = n,
            11 => r.i.in_ucast = n.unwrap_or_default(),
            13 => r.i.in_discards = n.unwrap_or_default(),
            14 => r.i.in_errors = n.unwrap_or_default(),
            16 => r.out32 = n,
            17 => r.i.out_ucast = n.unwrap_or_default(),
            19 => r.i.out_discards = n.unwrap_or_default(),
            20 => r.i.out_errors = n.unwrap_or_default(),
            _ => {}
        }
    }
    for v in ifx_table {
        let Some((col, idx)) = column_index(v, IFX_ENTRY) else {
            continue;
        };
        let (object, want) = match col {
            1 => ("ifName", OctetString),
            6 => ("ifHCInOctets", Counter64),
            7 => ("ifHCInUcastPkts", Counter64),
            10 => ("ifHCOutOctets", Counter64),
            11 => ("ifHCOutUcastPkts", Counter64),
            15 => ("ifHighSpeed", Gauge32),
            18 => ("ifAlias", OctetString),
            19 => ("ifCounterDiscontinuityTime", TimeTicks),
            _ => continue,
        };
        let Some(r) = rows.get_mut(&idx) else {
            if col == 1 {
                strict.orphan("ifXEntry", &v.oid, "an ifTable row of the same ifIndex");
            }
            continue;
        };
        let got = strict.get(object, &v.oid, &v.value, want);
        if got.is_none() && !is_absent(&v.value) && matches!(col, 6 | 7 | 10 | 11) {
            r.counters_bad = true;
        }
        let Some(got) = got else { continue };
        let n = got.unsigned();
        match col {
            1 => r.i.name = got.text().unwrap_or_default(),
            6 => r.in64 = n,
            7 => r.in_ucast64 = n,
            10 => r.out64 = n,
            11 => r.out_ucast64 = n,
            15 => {
                if let Some(mbit) = n.filter(|m| *m > 0) {
                    r.i.speed_bps = mbit * 1_000_000;
                }
            }
            18 => r.i.alias = got.text().unwrap_or_default(),
            19 => r.i.discontinuity = n.and_then(|t| u32::try_from(t).ok()),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    for (idx, mut r) in rows {
        // Neither up nor down is known: the interface sits this poll out.
        let (Some(admin), Some(oper), false) = (r.admin, r.oper, r.status_bad) else {
            for (col, object, value) in [(7, "ifAdminStatus", r.admin), (8, "ifOperStatus", r.oper)] {
                if value.is_none() && !r.status_bad {
                    let oid = Oid::from_slice(&[IF_ENTRY, &[col, idx]].concat());
                    strict.orphan(object, &oid, "a value in every ifTable row");
                }
            }
            continue;
        };
        let i = &mut r.i;
        i.index = idx;
        i.admin_up = admin == 1;
        i.oper_up = oper == 1;
        if !r.counters_bad {
            if let (Some(a), Some(b)) = (r.in64, r.out64) {
                (i.in_octets, i.out_octets, i.width) = (a, b, Some(Width::Bits64));
            } else if let (Some(a), Some(b)) = (r.in32, r.out32) {
                (i.in_octets, i.out_octets, i.width) = (a, b, Some(Width::Bits32));
            }
            if let (Some(a), Some(b)) = (r.in_ucast64, r.out_ucast64) {
                (i.in_ucast, i.out_ucast) = (a, b);
            }
        }
        if i.name.is_empty() {
            i.name.clone_from(&i.descr);
        }
        if i.name.is_empty() {
            i.name = format!("if{idx}");
        }
        out.insert(idx, r.i);
    }
    out
}

fn is_absent(v: &Value) -> bool {
    matches!(v, Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView)
}

/// The addresses of each ifIndex, in CIDR form, from RFC 1213 `ipAddrTable`
/// (`ipAdEntIfIndex`, `ipAdEntNetMask`: IPv4) and RFC 4293 `ipAddressTable`
/// (`ipAddressIfIndex`, `ipAddressPrefix`: IPv4 and IPv6), merged: an agent
/// may serve either or both. Zoned addresses (`ipv4z`, `ipv6z`) are left
/// out; an address whose prefix is unknown is given as a host address.
pub fn addresses(
    ad_if_index: &[VarBind],
    ad_mask: &[VarBind],
    address_if_index: &[VarBind],
    address_prefix: &[VarBind],
    strict: &mut Strict,
) -> BTreeMap<u32, Vec<String>> {
    let mut out: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    // ipAddrTable: index = the IPv4 address.
    let v4_of = |v: &VarBind, base: &[u32]| -> Option<Ipv4Addr> {
        match v.oid.arcs().get(base.len()..)? {
            [a, b, c, d] => Some(Ipv4Addr::new(
                u8::try_from(*a).ok()?,
                u8::try_from(*b).ok()?,
                u8::try_from(*c).ok()?,
                u8::try_from(*d).ok()?,
            )),
            _ => None,
        }
    };
    let mut masks: BTreeMap<Ipv4Addr, u8> = BTreeMap::new();
    for v in ad_mask {
        let (Some(addr), Some(Got::Ip(mask))) = (
            v4_of(v, IP_AD_ENT_NET_MASK),
            strict.get("ipAdEntNetMask", &v.oid, &v.value, Want::IpAddress),
        ) else {
            continue;
        };
        let bits = u32::from(mask);
        // A mask is contiguous ones; anything else is not a prefix length.
        if bits.leading_ones() + bits.trailing_zeros() == 32 {
            masks.insert(addr, bits.leading_ones() as u8);
        }
    }
    for v in ad_if_index {
        let Some(addr) = v4_of(v, IP_AD_ENT_IF_INDEX) else {
            continue;
        };
        let Some(Got::Int(idx)) = strict.get("ipAdEntIfIndex", &v.oid, &v.value, Want::NON_NEGATIVE) else {
            continue;
        };
        let len = masks.get(&addr).copied().unwrap_or(32);
        push(&mut out, idx, format!("{addr}/{len}"));
    }
    // ipAddressTable: index = addrType, length, address octets.
    let inet_of = |v: &VarBind, base: &[u32]| -> Option<IpAddr> {
        let (kind, rest) = v.oid.arcs().get(base.len()..)?.split_first()?;
        let (len, octets) = rest.split_first()?;
        if octets.len() != *len as usize {
            return None;
        }
        let bytes: Vec<u8> = octets.iter().map(|o| u8::try_from(*o).ok()).collect::<Option<_>>()?;
        match (kind, bytes.len()) {
            (1, 4) => Some(IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))),
            (2, 16) => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?))),
            _ => None,
        }
    };
    let mut prefixes: BTreeMap<IpAddr, u8> = BTreeMap::new();
    for v in address_prefix {
        let Some(addr) = inet_of(v, IP_ADDRESS_PREFIX) else {
            continue;
        };
        let Some(Got::Oid(p)) = strict.get("ipAddressPrefix", &v.oid, &v.value, Want::ObjectIdentifier) else {
            continue;
        };
        // zeroDotZero (0.0) when the agent does not know; else the last arc.
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if let Some(len) = p
            .arcs()
            .last()
            .filter(|_| p.arcs().len() > 2)
            .and_then(|l| u8::try_from(*l).ok())
            .filter(|l| *l <= max)
        {
            prefixes.insert(addr, len);
        }
    }
    for v in address_if_index {
        let Some(addr) = inet_of(v, IP_ADDRESS_IF_INDEX) else {
            continue;
        };
        let Some(Got::Int(idx)) = strict.get("ipAddressIfIndex", &v.oid, &v.value, Want::NON_NEGATIVE) else {
            continue;
        };
        let len = prefixes
            .get(&addr)
            .copied()
            .unwrap_or(if addr.is_ipv4() { 32 } else { 128 });
        push(&mut out, idx, format!("{addr}/{len}"));
    }
    out
}

fn push(out: &mut BTreeMap<u32, Vec<String>>, idx: i32, cidr: String) {
    let Ok(idx) = u32::try_from(idx) else { return };
    if idx == 0 {
        return;
    }
    let list = out.entry(idx).or_default();
    if !list.contains(&cidr) {
        list.push(cidr);
    }
}

/// `inetCidrRouteTable` index: destType, len, dest…, pfxLen, policy…,
/// nextHopType, len, nextHop…; default when dest is all zeros and pfxLen 0.
pub fn is_default_inet_cidr(index: &[u32]) -> bool {
    let [_kind, len, rest @ ..] = index else { return false };
    let len = *len as usize;
    rest.len() > len && rest[..len].iter().all(|a| *a == 0) && rest[len] == 0
}

/// `ipCidrRouteTable` index: dest(4), mask(4), tos, nextHop(4).
pub fn is_default_ip_cidr(index: &[u32]) -> bool {
    index.len() >= 8 && index[..8].iter().all(|a| *a == 0)
}

/// `ipRouteTable` index: dest(4).
pub fn is_default_ip_route(index: &[u32]) -> bool {
    index.len() == 4 && index.iter().all(|a| *a == 0)
}

#[cfg(test)]
#[path = "mib_tests.rs"]
mod tests;
