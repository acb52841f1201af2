//! `collector.routers`: the routers the collector polls, over SNMP (v2c or
//! v3), the MikroTik RouterOS API (8728, or 8729 over TLS) or the RouterOS v7
//! REST API; their credentials, cadence and labels, with validation naming
//! each key and masking of the community, USM and RouterOS passwords.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::{self, format as fmt_d};
use super::validate::is_subject_token;
use super::{CollectorConfig, Invalid, text};

/// The SNMP port when `address` has none.
pub const DEFAULT_SNMP_PORT: u16 = 161;
/// The RouterOS API port when `address` has none.
pub const DEFAULT_ROUTEROS_PORT: u16 = 8728;
/// The RouterOS API-SSL port when `address` has none and `tls` is on.
pub const DEFAULT_ROUTEROS_TLS_PORT: u16 = 8729;
/// Retries per request when a router does not set its own.
pub const DEFAULT_RETRIES: u32 = 2;
/// Most retries a router may ask for.
pub const MAX_RETRIES: u32 = 10;

/// How a router is polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouterDriver {
    /// SNMP v2c or v3 (`snmp`), port 161.
    #[default]
    Snmp,
    /// The MikroTik RouterOS API (`username`, `password`), port 8728, or 8729 with `tls`.
    Routeros,
    /// The RouterOS v7 REST API (`username`, `password`), port 80, or 443 with `tls`.
    RouterosRest,
}

impl RouterDriver {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snmp => "snmp",
            Self::Routeros => "routeros",
            Self::RouterosRest => "routeros_rest",
        }
    }
}

/// SNMP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnmpVersion {
    /// Community-based v2c (`community`).
    #[default]
    V2c,
    /// User-based v3 (`user`, and auth/priv protocols and passwords).
    V3,
}

/// SNMPv3 authentication protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnmpAuthProtocol {
    Md5,
    /// SHA-1 (net-snmp's `SHA`).
    Sha,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// SNMPv3 privacy (encryption) protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnmpPrivProtocol {
    Des,
    /// AES-128 (net-snmp's `AES`).
    Aes,
    Aes192,
    Aes256,
}

/// How to speak SNMP to one router.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnmpConfig {
    /// `v2c` or `v3`.
    pub version: SnmpVersion,
    /// v2c: the community (a secret; masked when printed).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub community: Option<String>,
    /// v3: the USM user name.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub user: Option<String>,
    /// v3: `md5`, `sha`, `sha224`, `sha256`, `sha384` or `sha512`; unset means noAuthNoPriv.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_protocol: Option<SnmpAuthProtocol>,
    /// v3: the authentication password, at least 8 characters (a secret).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub auth_password: Option<String>,
    /// v3: `des`, `aes`, `aes192` or `aes256`; unset means no privacy (authNoPriv).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priv_protocol: Option<SnmpPrivProtocol>,
    /// v3: the privacy password, at least 8 characters (a secret).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub priv_password: Option<String>,
}

/// One router the collector polls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// Stable id: letters, digits, `-` and `_` (it is a bus subject token).
    #[serde(deserialize_with = "text::deserialize")]
    pub id: String,
    /// Human name; the id when unset.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub name: Option<String>,
    /// `host:port` or `host` of the router (port 161 for SNMP, 8728 for the
    /// RouterOS API, 8729 with `tls`, 80 for REST, 443 for REST with `tls`).
    #[serde(deserialize_with = "text::deserialize")]
    pub address: String,
    /// `snmp` (default), `routeros` (the API) or `routeros_rest` (RouterOS v7 REST).
    #[serde(default)]
    pub driver: RouterDriver,
    /// SNMP version and credentials (driver `snmp` only).
    #[serde(default, skip_serializing_if = "is_default_snmp")]
    pub snmp: SnmpConfig,
    /// RouterOS user name (drivers `routeros` and `routeros_rest`).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub username: Option<String>,
    /// RouterOS password (a secret; masked when printed).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub password: Option<String>,
    /// RouterOS: API-SSL (8729) instead of the plain API, or HTTPS for REST.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// With `tls`: verify the router's certificate (against `ca_file`, else
    /// the public web roots). RouterOS ships self-signed certificates, so
    /// `false` is common; the traffic is still encrypted.
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub tls_verify: bool,
    /// With `tls` and `tls_verify`: a PEM file of the CA that signed the
    /// router's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// How often the router is polled; `collector.interval` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "duration::option")]
    pub interval: Option<Duration>,
    /// How long one SNMP request waits for an answer; `collector.timeout` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "duration::option")]
    pub timeout: Option<Duration>,
    /// Times an unanswered request is sent again; 2 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Free-form labels carried on the router's info messages.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl RouterConfig {
    /// A v2c router at `address` with community `public` and nothing else set.
    pub fn new(id: impl Into<String>, address: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: None,
            address: address.into(),
            driver: RouterDriver::Snmp,
            snmp: SnmpConfig {
                community: Some("public".to_owned()),
                ..SnmpConfig::default()
            },
            username: None,
            password: None,
            tls: false,
            tls_verify: true,
            ca_file: None,
            interval: None,
            timeout: None,
            retries: None,
            labels: BTreeMap::new(),
        }
    }

    /// A RouterOS router polled with `driver` as `username`/`password`.
    pub fn routeros(
        id: impl Into<String>,
        address: impl Into<String>,
        driver: RouterDriver,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            driver,
            snmp: SnmpConfig::default(),
            username: Some(username.into()),
            password: Some(password.into()),
            ..Self::new(id, address)
        }
    }

    /// The port used when `address` names none, by driver and `tls`.
    pub fn default_port(&self) -> u16 {
        match (self.driver, self.tls) {
            (RouterDriver::Snmp, _) => DEFAULT_SNMP_PORT,
            (RouterDriver::Routeros, false) => DEFAULT_ROUTEROS_PORT,
            (RouterDriver::Routeros, true) => DEFAULT_ROUTEROS_TLS_PORT,
            (RouterDriver::RouterosRest, false) => 80,
            (RouterDriver::RouterosRest, true) => 443,
        }
    }

    /// The host and port of `address` ([`Self::default_port`] when it names none).
    pub fn host_port(&self) -> Result<(String, u16), &'static str> {
        split_address(&self.address).map(|(h, p)| (h, p.unwrap_or_else(|| self.default_port())))
    }

    /// The name shown to people: `name`, or the id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

fn yes() -> bool {
    true
}

fn is_default_snmp(s: &SnmpConfig) -> bool {
    *s == SnmpConfig::default()
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` → host and port, if named.
fn split_address(a: &str) -> Result<(String, Option<u16>), &'static str> {
    const SHAPE: &str = "must be host or host:port, e.g. 192.0.2.1:161 or router.lan";
    let a = a.trim();
    if a.is_empty() {
        return Err(SHAPE);
    }
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("must end in a port between 1 and 65535 when it has one"),
    };
    if let Some(rest) = a.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(SHAPE)?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("must hold an IPv6 address between [ and ]");
        }
        return match after {
            "" => Ok((host.to_owned(), None)),
            p => Ok((host.to_owned(), Some(port(p.strip_prefix(':').ok_or(SHAPE)?)?))),
        };
    }
    if a.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((a.to_owned(), None));
    }
    let (host, p) = match a.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (a, None),
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/' || c == '@') {
        return Err(SHAPE);
    }
    Ok((host.to_owned(), p.map(port).transpose()?))
}

impl CollectorConfig {
    /// Replaces the routers' SNMP community, USM and RouterOS passwords by `***`.
    pub fn mask_routers(&mut self) {
        for r in &mut self.routers {
            for secret in [
                &mut r.password,
                &mut r.snmp.community,
                &mut r.snmp.auth_password,
                &mut r.snmp.priv_password,
            ] {
                if secret.is_some() {
                    *secret = Some("***".to_owned());
                }
            }
        }
    }
}

/// Every problem of `collector.routers`, each naming its key.
pub(super) fn router_problems(col: &CollectorConfig) -> Vec<Invalid> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in col.routers.iter().enumerate() {
        let prefix = format!("collector.routers[{i}]");
        let mut add = |field: &str, value: String, allowed: &str| {
            out.push(Invalid {
                key: format!("{prefix}.{field}"),
                value,
                allowed: allowed.to_owned(),
            });
        };
        if !is_subject_token(&r.id) {
            add(
                "id",
                r.id.clone(),
                "must be 1–128 characters of letters, digits, `-` or `_`",
            );
        } else if !seen.insert(r.id.as_str()) {
            add("id", r.id.clone(), "must be unique: another router has this id");
        }
        if let Err(why) = r.host_port() {
            add("address", r.address.clone(), why);
        }
        if r.driver == RouterDriver::Snmp {
            for (set, field) in [
                (r.username.is_some(), "username"),
                (r.password.is_some(), "password"),
                (r.tls, "tls"),
                (!r.tls_verify, "tls_verify"),
                (r.ca_file.is_some(), "ca_file"),
            ] {
                if set {
                    add(
                        field,
                        String::new(),
                        "applies to the RouterOS drivers only (driver: routeros or routeros_rest)",
                    );
                }
            }
        } else {
            routeros_problems(r, &mut add);
            interval_problems(r, col, &mut add);
            continue;
        }
        let s = &r.snmp;
        match s.version {
            SnmpVersion::V2c => {
                if s.community.as_deref().is_none_or(str::is_empty) {
                    add("snmp.community", String::new(), "is required for SNMP v2c");
                }
                for (set, field) in [
                    (s.user.is_some(), "snmp.user"),
                    (s.auth_protocol.is_some(), "snmp.auth_protocol"),
                    (s.auth_password.is_some(), "snmp.auth_password"),
                    (s.priv_protocol.is_some(), "snmp.priv_protocol"),
                    (s.priv_password.is_some(), "snmp.priv_password"),
                ] {
                    if set {
                        add(field, String::new(), "applies to SNMP v3 only (set snmp.version: v3)");
                    }
                }
            }
            SnmpVersion::V3 => {
                if s.community.is_some() {
                    add(
                        "snmp.community",
                        "***".to_owned(),
                        "applies to SNMP v2c only; v3 uses snmp.user",
                    );
                }
                if s.user.as_deref().is_none_or(str::is_empty) {
                    add("snmp.user", String::new(), "is required for SNMP v3");
                }
                let short = |p: &Option<String>| p.as_ref().is_some_and(|p| p.len() < 8);
                match (s.auth_protocol, &s.auth_password) {
                    (Some(_), None) => add(
                        "snmp.auth_password",
                        String::new(),
                        "is required with snmp.auth_protocol",
                    ),
                    (None, Some(_)) => add(
                        "snmp.auth_protocol",
                        String::new(),
                        "is required with snmp.auth_password: md5, sha, sha224, sha256, sha384 or sha512",
                    ),
                    _ if short(&s.auth_password) => add(
                        "snmp.auth_password",
                        "***".to_owned(),
                        "must be at least 8 characters (RFC 3414)",
                    ),
                    _ => {}
                }
                match (s.priv_protocol, &s.priv_password) {
                    (Some(_), None) => add(
                        "snmp.priv_password",
                        String::new(),
                        "is required with snmp.priv_protocol",
                    ),
                    (None, Some(_)) => add(
                        "snmp.priv_protocol",
                        String::new(),
                        "is required with snmp.priv_password: des, aes, aes192 or aes256",
                    ),
                    _ if short(&s.priv_password) => add(
                        "snmp.priv_password",
                        "***".to_owned(),
                        "must be at least 8 characters (RFC 3414)",
                    ),
                    _ => {}
                }
                if s.priv_protocol.is_some() && s.auth_protocol.is_none() {
                    add(
                        "snmp.priv_protocol",
                        String::new(),
                        "needs snmp.auth_protocol too: SNMP v3 has no privacy without authentication",
                    );
                }
            }
        }
        interval_problems(r, col, &mut add);
        if let Some(n) = r.retries
            && n > MAX_RETRIES
        {
            add("retries", n.to_string(), "must be between 0 and 10");
        }
    }
    out
}

/// The keys of a RouterOS router (`driver: routeros | routeros_rest`).
fn routeros_problems(r: &RouterConfig, add: &mut impl FnMut(&str, String, &str)) {
    let driver = r.driver.as_str();
    if r.username.as_deref().is_none_or(str::is_empty) {
        add("username", String::new(), &format!("is required for driver {driver}"));
    }
    if r.password.is_none() {
        add(
            "password",
            String::new(),
            &format!("is required for driver {driver} (an empty password is written \"\")"),
        );
    }
    if !is_default_snmp(&r.snmp) {
        add("snmp", String::new(), "applies to driver snmp only");
    }
    if r.retries.is_some() {
        add(
            "retries",
            String::new(),
            "applies to driver snmp only (TCP retransmits itself)",
        );
    }
    if !r.tls && (!r.tls_verify || r.ca_file.is_some()) {
        let field = if r.ca_file.is_some() { "ca_file" } else { "tls_verify" };
        add(field, String::new(), "applies only with tls: true");
    }
    if let Some(ca) = &r.ca_file
        && !r.tls_verify
    {
        add(
            "ca_file",
            ca.display().to_string(),
            "is not used with tls_verify: false; remove one of them",
        );
    }
}

/// `interval` and `timeout` of any router.
fn interval_problems(r: &RouterConfig, col: &CollectorConfig, add: &mut impl FnMut(&str, String, &str)) {
    let interval = r.interval.unwrap_or(col.interval);
    let timeout = r.timeout.unwrap_or(col.timeout);
    if interval < Duration::from_secs(1) {
        add("interval", fmt_d(interval), "must be at least 1s");
    } else if interval > super::target::MAX_INTERVAL {
        add(
            "interval",
            fmt_d(interval),
            &format!("must be at most {}", fmt_d(super::target::MAX_INTERVAL)),
        );
    }
    if timeout < Duration::from_millis(10) {
        add("timeout", fmt_d(timeout), "must be at least 10ms");
    } else if timeout > interval {
        add(
            "timeout",
            fmt_d(timeout),
            &format!("must not exceed the router's interval ({})", fmt_d(interval)),
        );
    }
}

#[cfg(test)]
#[path = "routers_tests.rs"]
mod tests;
