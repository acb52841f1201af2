//! MikroTik RouterOS: the API (`api`, port 8728 or API-SSL 8729) and the
//! RouterOS v7 REST API (`rest`) read the same menus, as rows of
//! `property → text`, which [`reading`] turns into the driver-neutral
//! [`Reading`] the tracker compares poll to poll.
//!
//! - `/system/identity` → sysName; `/system/resource` → uptime (`1w2d3h4m5s`),
//!   version and board → sysDescr.
//! - `/interface` → interfaces: ifIndex is the `.id` (`*1A` → 0x1A), 64-bit
//!   counters `rx-byte`/`tx-byte`, packets, errors, drops; `running` is the
//!   oper status and `disabled` the admin status.
//! - `/ip/route` with `dst-address=0.0.0.0/0` → the default route's interface
//!   (from `immediate-gw` `addr%iface`, v6's `gateway-status` `… via iface`,
//!   or a gateway that names an interface).
//! - `/ip/address` → each interface's addresses; `/interface/pppoe-client` →
//!   PPPoE user names (ISP hints), when the router has that menu.

pub mod api;
pub mod rest;
pub mod tls;
pub mod word;

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::counters::Width;
use super::reading::{IfReading, Reading};

/// One row of a RouterOS menu: property → value, as text.
pub type Row = BTreeMap<String, String>;

/// Where [`Reading::route_table`] says the default route came from.
pub const ROUTE_TABLE: &str = "routeros /ip/route";

/// The interface properties read each poll.
pub const INTERFACE_PROPS: &str =
    ".id,name,type,running,disabled,comment,rx-byte,tx-byte,rx-packet,tx-packet,rx-error,tx-error,rx-drop,tx-drop";

/// Why a RouterOS poll failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("address `{address}` {why}")]
    Address { address: String, why: &'static str },
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("login as `{user}` refused: {message}")]
    Login { user: String, message: String },
    #[error("the router closed the session (!fatal): {0}")]
    Fatal(String),
    #[error("`{command}` failed (!trap): {message}")]
    Trap { command: String, message: String },
    #[error("RouterOS API protocol error: {0}")]
    Protocol(String),
    #[error("{0} timed out")]
    Timeout(String),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("GET {url}: {why}")]
    Http { url: String, why: String },
    #[error("{what}: `{value}` is not {expected}")]
    Value {
        what: String,
        value: String,
        expected: &'static str,
    },
}

/// What one poll read from the router's menus.
#[derive(Debug, Default)]
pub struct Menus {
    pub identity: Option<Row>,
    pub resource: Row,
    pub interfaces: Vec<Row>,
    pub default_routes: Vec<Row>,
    pub addresses: Vec<Row>,
    pub pppoe_clients: Vec<Row>,
}

/// `1w2d3h4m5s` (optionally with `ms`), or v7's `3d04:05:06`, in hundredths.
pub fn parse_uptime(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let mut centis = 0u64;
    let mut num = String::new();
    let mut rest = t;
    // A trailing `hh:mm:ss` clock.
    if let Some(pos) = t.find(':') {
        let start = t[..pos].rfind(|c: char| !c.is_ascii_digit()).map_or(0, |i| i + 1);
        let clock: Vec<&str> = t[start..].split(':').collect();
        let [h, m, s] = clock.as_slice() else { return None };
        let (h, m, s): (u64, u64, u64) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
        centis = (h * 3600 + m * 60 + s) * 100;
        rest = &t[..start];
    }
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'w' => 7 * 24 * 3600 * 100,
            'd' => 24 * 3600 * 100,
            'h' => 3600 * 100,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                centis += n / 10;
                continue;
            }
            'm' => 60 * 100,
            's' => 100,
            _ => return None,
        };
        centis += n * unit;
    }
    num.is_empty().then_some(centis)
}

/// `*1A` → 0x1A: the interface's internal id, stable while it exists.
pub fn if_index(id: &str) -> Option<u32> {
    u32::from_str_radix(id.strip_prefix('*')?, 16).ok()
}

/// IF-MIB ifType for a RouterOS interface `type`.
pub fn if_type(kind: &str) -> i32 {
    match kind {
        "ether" | "veth" => 6,
        "wlan" | "wifi" | "wifiwave2" => 71,
        "pppoe-out" | "pppoe-in" | "pptp-out" | "l2tp-out" | "sstp-out" | "ovpn-out" | "ppp-out" => 23,
        "vlan" => 135,
        "bridge" => 209,
        "loopback" => 24,
        "lte" => 243,
        "gre-tunnel" | "ipip-tunnel" | "eoip-tunnel" | "wg" | "wireguard" | "6to4-tunnel" => 131,
        "bond" => 161,
        _ => 1,
    }
}

fn flag(row: &Row, key: &str) -> bool {
    row.get(key).is_some_and(|v| v == "true" || v == "yes")
}

fn counter(row: &Row, key: &str, name: &str) -> Result<u64, Error> {
    match row.get(key).map(String::as_str) {
        None | Some("") => Ok(0),
        Some(v) => v.parse().map_err(|_| Error::Value {
            what: format!("{key} of interface {name}"),
            value: v.to_owned(),
            expected: "a counter",
        }),
    }
}

/// The interface a default-route row goes out of, by name.
fn route_interface(route: &Row) -> Option<String> {
    if let Some(gw) = route.get("immediate-gw")
        && let Some((_, iface)) = gw.split_once('%')
    {
        return Some(iface.to_owned());
    }
    if let Some(status) = route.get("gateway-status")
        && let Some((_, via)) = status.split_once(" via ")
    {
        return Some(via.split_whitespace().next()?.to_owned());
    }
    if let Some(gw) = route.get("gateway")
        && let Some((_, iface)) = gw.split_once('%')
    {
        return Some(iface.to_owned());
    }
    route.get("gateway").cloned()
}

/// Turns the menus one poll read into a [`Reading`].
pub fn reading(at: SystemTime, m: Menus) -> Result<Reading, Error> {
    let raw = m.resource.get("uptime").cloned().unwrap_or_default();
    let uptime_centis = parse_uptime(&raw).ok_or_else(|| Error::Value {
        what: "/system/resource uptime".to_owned(),
        value: raw,
        expected: "an uptime like 1w2d3h4m5s",
    })?;
    let mut interfaces = BTreeMap::new();
    for row in &m.interfaces {
        let id = row.get(".id").map_or("", String::as_str);
        let index = if_index(id).ok_or_else(|| Error::Value {
            what: "/interface .id".to_owned(),
            value: id.to_owned(),
            expected: "an internal id like *1A",
        })?;
        let name = row.get("name").cloned().unwrap_or_else(|| format!("if{index}"));
        let c = |key: &str| counter(row, key, &name);
        let i = IfReading {
            index,
            descr: name.clone(),
            alias: String::new(),
            if_type: if_type(row.get("type").map_or("", String::as_str)),
            oper_up: flag(row, "running"),
            admin_up: !flag(row, "disabled"),
            speed_bps: 0,
            width: Some(Width::Bits64),
            in_octets: c("rx-byte")?,
            out_octets: c("tx-byte")?,
            in_ucast: c("rx-packet")?,
            out_ucast: c("tx-packet")?,
            in_errors: c("rx-error")?,
            out_errors: c("tx-error")?,
            in_discards: c("rx-drop")?,
            out_discards: c("tx-drop")?,
            discontinuity: None,
            comment: row.get("comment").cloned().unwrap_or_default(),
            pppoe_user: m
                .pppoe_clients
                .iter()
                .find(|p| p.get("name") == Some(&name))
                .and_then(|p| p.get("user").cloned())
                .unwrap_or_default(),
            addresses: m
                .addresses
                .iter()
                .filter(|a| a.get("interface") == Some(&name) && !flag(a, "disabled") && !flag(a, "invalid"))
                .filter_map(|a| a.get("address").cloned())
                .collect(),
            name,
        };
        interfaces.insert(index, i);
    }
    let mut default_route_if_indexes: Vec<u32> = m
        .default_routes
        .iter()
        .filter(|r| r.get("dst-address").map(String::as_str) == Some("0.0.0.0/0"))
        .filter(|r| !flag(r, "disabled") && r.get("active").is_none_or(|a| a == "true" || a == "yes"))
        .filter_map(route_interface)
        .filter_map(|name| interfaces.values().find(|i| i.name == name).map(|i| i.index))
        .collect();
    default_route_if_indexes.sort_unstable();
    default_route_if_indexes.dedup();
    let version = m.resource.get("version").map_or("", String::as_str);
    let board = m.resource.get("board-name").map_or("", String::as_str);
    Ok(Reading {
        at,
        sys_name: m.identity.and_then(|i| i.get("name").cloned()).unwrap_or_default(),
        sys_descr: format!("RouterOS {version} {board}").trim().to_owned(),
        uptime_centis,
        route_table: if default_route_if_indexes.is_empty() {
            ""
        } else {
            ROUTE_TABLE
        },
        default_route_if_indexes,
        interfaces,
        bad_values: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kv: &[(&str, &str)]) -> Row {
        kv.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn uptimes() {
        assert_eq!(parse_uptime("5s"), Some(500));
        assert_eq!(
            parse_uptime("1w2d3h4m5s"),
            Some((((9 * 24 + 3) * 60 + 4) * 60 + 5) * 100)
        );
        assert_eq!(parse_uptime("4m"), Some(24_000));
        assert_eq!(parse_uptime("1s500ms"), Some(150));
        assert_eq!(
            parse_uptime("3d04:05:06"),
            Some(((3 * 24 + 4) * 3600 + 5 * 60 + 6) * 100)
        );
        assert_eq!(parse_uptime("00:00:07"), Some(700));
        for bad in ["", "5", "5x", "1:2", "abc"] {
            assert_eq!(parse_uptime(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_and_types() {
        assert_eq!(if_index("*1"), Some(1));
        assert_eq!(if_index("*1A"), Some(26));
        assert_eq!(if_index("1"), None);
        assert_eq!(if_type("ether"), 6);
        assert_eq!(if_type("pppoe-out"), 23);
        assert_eq!(if_type("something-new"), 1);
    }

    #[test]
    fn menus_become_a_reading() {
        let m = Menus {
            identity: Some(row(&[("name", "edge-jkt")])),
            resource: row(&[
                ("uptime", "2d3h"),
                ("version", "7.16.1 (stable)"),
                ("board-name", "RB5009"),
            ]),
            interfaces: vec![
                row(&[
                    (".id", "*1"),
                    ("name", "ether1"),
                    ("type", "ether"),
                    ("running", "true"),
                    ("disabled", "false"),
                    ("comment", "WAN Telkom"),
                    ("rx-byte", "18446744073709551000"),
                    ("tx-byte", "77"),
                ]),
                row(&[
                    (".id", "*A"),
                    ("name", "pppoe-out1"),
                    ("type", "pppoe-out"),
                    ("running", "false"),
                ]),
            ],
            default_routes: vec![
                row(&[
                    ("dst-address", "0.0.0.0/0"),
                    ("gateway", "pppoe-out1"),
                    ("active", "false"),
                ]),
                row(&[
                    ("dst-address", "0.0.0.0/0"),
                    ("gateway", "192.0.2.1"),
                    ("immediate-gw", "192.0.2.1%ether1"),
                    ("active", "true"),
                ]),
            ],
            addresses: vec![row(&[("address", "192.0.2.2/24"), ("interface", "ether1")])],
            pppoe_clients: vec![row(&[("name", "pppoe-out1"), ("user", "acct@telkom.net")])],
        };
        let r = reading(SystemTime::UNIX_EPOCH, m).unwrap();
        assert_eq!(r.sys_name, "edge-jkt");
        assert_eq!(r.sys_descr, "RouterOS 7.16.1 (stable) RB5009");
        assert_eq!(r.uptime_centis, (2 * 24 + 3) * 3600 * 100);
        assert_eq!(r.default_route_if_indexes, [1]);
        assert_eq!(r.route_table, ROUTE_TABLE);
        let e1 = &r.interfaces[&1];
        assert_eq!((e1.in_octets, e1.out_octets), (18_446_744_073_709_551_000, 77));
        assert!(e1.oper_up && e1.admin_up);
        assert_eq!(e1.comment, "WAN Telkom");
        assert_eq!(e1.addresses, ["192.0.2.2/24"]);
        assert_eq!(e1.width, Some(Width::Bits64));
        let p = &r.interfaces[&10];
        assert_eq!((p.if_type, p.oper_up), (23, false));
        assert_eq!(p.pppoe_user, "acct@telkom.net");
    }

    #[test]
    fn bad_values_name_what_is_wrong() {
        let m = Menus {
            resource: row(&[("uptime", "soon")]),
            ..Menus::default()
        };
        let e = reading(SystemTime::UNIX_EPOCH, m).unwrap_err().to_string();
        assert!(e.contains("uptime") && e.contains("soon"), "{e}");
        let m = Menus {
            resource: row(&[("uptime", "5s")]),
            interfaces: vec![row(&[(".id", "*1"), ("name", "ether1"), ("rx-byte", "-3")])],
            ..Menus::default()
        };
        let e = reading(SystemTime::UNIX_EPOCH, m).unwrap_err().to_string();
        assert!(e.contains("rx-byte of interface ether1") && e.contains("-3"), "{e}");
        // v6: the interface from gateway-status.
        let r = row(&[("gateway-status", "10.0.0.1 reachable via  ether2")]);
        assert_eq!(route_interface(&r).as_deref(), Some("ether2"));
    }
}
