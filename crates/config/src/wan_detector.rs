//! `wan_detector`: ports, the per-router cache, the WAN name patterns, ISP
//! recognition (patterns and address prefixes), traffic analysis thresholds
//! and manual WAN assignments. Every regex is compiled here at validation, so
//! a bad one stops start-up with its key and the regex error.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;
use super::duration::format as fmt_d;
use super::validate::is_subject_token;
use super::{Config, Invalid};

/// The WAN detector service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WanDetectorConfig {
    /// gRPC port of `WanDetectorService`.
    pub grpc_port: u16,
    /// Admin port (`/metrics`, `/healthz`, `/readyz`) when run alone.
    pub admin_port: u16,
    /// How long a router's WAN judgement is answered from the cache; `0s`
    /// judges on every request. `DetectWan` with `force_refresh` bypasses it.
    #[serde(with = "duration")]
    pub cache_ttl: Duration,
    /// A router not polled for this long is reported unreachable (its links
    /// unknown), as when the collector reports it down.
    #[serde(with = "duration")]
    pub stale_after: Duration,
    /// An interface is WAN when its hybrid confidence reaches this (0–1].
    pub threshold: f64,
    /// Regexes (matched case-insensitively) on interface names, comments,
    /// aliases and descriptions that suggest a WAN uplink (confidence 0.5).
    pub patterns: Vec<String>,
    /// Extra ISP recognition: regex (case-insensitive) → ISP name, tried
    /// before the built-in ISPs on comments, PPPoE user names, aliases and names.
    pub isp_map: BTreeMap<String, String>,
    /// Address hints: CIDR prefix → ISP name, for interface addresses
    /// (`36.64.0.0/11: telkom`). Longest prefix wins.
    pub isp_prefixes: BTreeMap<String, String>,
    /// Traffic analysis.
    pub traffic: WanTrafficConfig,
    /// Interfaces the operator declares WAN (or not WAN), overriding detection.
    pub manual: Vec<ManualWan>,
}

impl Default for WanDetectorConfig {
    fn default() -> Self {
        Self {
            grpc_port: 50052,
            admin_port: 9102,
            cache_ttl: Duration::from_secs(300),
            stale_after: Duration::from_secs(300),
            threshold: 0.5,
            patterns: DEFAULT_PATTERNS.iter().map(|p| (*p).to_owned()).collect(),
            isp_map: BTreeMap::new(),
            isp_prefixes: BTreeMap::new(),
            traffic: WanTrafficConfig::default(),
            manual: Vec::new(),
        }
    }
}

/// The WAN name patterns used when `wan_detector.patterns` is not set.
pub const DEFAULT_PATTERNS: &[&str] = &["^ether1$", "wan", "^pppoe-out", "^lte", "^sfp", "uplink", "internet"];

/// Traffic analysis: an interface whose traffic is, over most of the recent
/// samples, both voluminous and download-heavy (received ≫ sent) looks like
/// an uplink; a LAN port sees the mirror image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WanTrafficConfig {
    /// Samples kept per interface (the window).
    pub window: usize,
    /// Fewest samples with valid rates before traffic is judged at all.
    pub min_samples: usize,
    /// Least received + sent bits per second a sample needs to count.
    pub min_bps: f64,
    /// Least received ÷ sent ratio a sample needs to count.
    pub min_ratio: f64,
    /// Share of the valid samples (0–1] that must count.
    pub sustained: f64,
}

impl Default for WanTrafficConfig {
    fn default() -> Self {
        Self {
            window: 10,
            min_samples: 5,
            min_bps: 1_000_000.0,
            min_ratio: 2.0,
            sustained: 0.8,
        }
    }
}

/// An operator's WAN assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualWan {
    /// The router id (as in `collector.routers[].id`).
    pub router: String,
    /// The interface's name, or its ifIndex written as a number.
    pub interface: String,
    /// `true` (the default): a WAN with confidence 1.0; `false`: never a WAN.
    #[serde(default = "yes")]
    pub wan: bool,
    /// The ISP of this link; recognised from names when absent.
    #[serde(default)]
    pub isp: Option<String>,
}

fn yes() -> bool {
    true
}

/// Compiles a configured pattern the way the detector uses it.
pub fn compile_pattern(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
}

/// Whether an ISP name can be a metric label and a JSON value.
fn isp_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

const ISP_NAME: &str = "must be 1–40 lower-case letters, digits, `-` or `_` (it becomes a metric label)";

/// Every problem of the `wan_detector` section (and `gateway.wan_detector_url`).
pub(super) fn problems(c: &Config) -> Vec<Invalid> {
    let w = &c.wan_detector;
    let mut out = Vec::new();
    let mut add = |key: String, value: String, allowed: String| out.push(Invalid { key, value, allowed });
    if w.stale_after < Duration::from_secs(1) {
        add(
            "wan_detector.stale_after".into(),
            fmt_d(w.stale_after),
            "must be at least 1s".into(),
        );
    }
    if !(w.threshold > 0.0 && w.threshold <= 1.0) {
        add(
            "wan_detector.threshold".into(),
            w.threshold.to_string(),
            "must be greater than 0 and at most 1".into(),
        );
    }
    for (i, p) in w.patterns.iter().enumerate() {
        if let Err(e) = compile_pattern(p) {
            add(
                format!("wan_detector.patterns[{i}]"),
                p.clone(),
                format!("must be a valid regex: {e}"),
            );
        }
    }
    for (pattern, isp) in &w.isp_map {
        if let Err(e) = compile_pattern(pattern) {
            add(
                format!("wan_detector.isp_map.{pattern}"),
                pattern.clone(),
                format!("must be a valid regex: {e}"),
            );
        }
        if !isp_name_ok(isp) {
            add(format!("wan_detector.isp_map.{pattern}"), isp.clone(), ISP_NAME.into());
        }
    }
    for (prefix, isp) in &w.isp_prefixes {
        if parse_cidr(prefix).is_none() {
            add(
                format!("wan_detector.isp_prefixes.{prefix}"),
                prefix.clone(),
                "must be a CIDR prefix such as 36.64.0.0/11 or 2001:db8::/32".into(),
            );
        }
        if !isp_name_ok(isp) {
            add(
                format!("wan_detector.isp_prefixes.{prefix}"),
                isp.clone(),
                ISP_NAME.into(),
            );
        }
    }
    let t = &w.traffic;
    if t.window == 0 || t.window > 1000 {
        add(
            "wan_detector.traffic.window".into(),
            t.window.to_string(),
            "must be between 1 and 1000 samples".into(),
        );
    }
    if t.min_samples == 0 || t.min_samples > t.window {
        add(
            "wan_detector.traffic.min_samples".into(),
            t.min_samples.to_string(),
            format!("must be between 1 and wan_detector.traffic.window ({})", t.window),
        );
    }
    if !(t.min_bps.is_finite() && t.min_bps >= 0.0) {
        add(
            "wan_detector.traffic.min_bps".into(),
            t.min_bps.to_string(),
            "must be a number of bits per second, 0 or more".into(),
        );
    }
    if !(t.min_ratio.is_finite() && t.min_ratio >= 1.0) {
        add(
            "wan_detector.traffic.min_ratio".into(),
            t.min_ratio.to_string(),
            "must be at least 1".into(),
        );
    }
    if !(t.sustained > 0.0 && t.sustained <= 1.0) {
        add(
            "wan_detector.traffic.sustained".into(),
            t.sustained.to_string(),
            "must be greater than 0 and at most 1".into(),
        );
    }
    for (i, m) in w.manual.iter().enumerate() {
        let key = format!("wan_detector.manual[{i}]");
        if !is_subject_token(&m.router) {
            add(
                format!("{key}.router"),
                m.router.clone(),
                "must be a router id: 1–128 letters, digits, `-` or `_`".into(),
            );
        }
        if m.interface.trim().is_empty() {
            add(
                format!("{key}.interface"),
                m.interface.clone(),
                "must name an interface, or give its ifIndex".into(),
            );
        }
        if let Some(isp) = &m.isp
            && !isp_name_ok(isp)
        {
            add(format!("{key}.isp"), isp.clone(), ISP_NAME.into());
        }
        if w.manual[..i]
            .iter()
            .any(|o| o.router == m.router && o.interface == m.interface)
        {
            add(
                format!("{key}.interface"),
                m.interface.clone(),
                "must be unique: another manual entry names this router and interface".into(),
            );
        }
    }
    let u = &c.gateway.wan_detector_url;
    if crate::types::check_http_url(u).is_err() {
        add(
            "gateway.wan_detector_url".into(),
            u.clone(),
            "must be an http:// or https:// URL such as http://127.0.0.1:50052".into(),
        );
    }
    out
}

/// `addr/len` → (address, prefix length), when well-formed.
pub fn parse_cidr(s: &str) -> Option<(std::net::IpAddr, u8)> {
    let (addr, len) = s.trim().split_once('/')?;
    let addr: std::net::IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(c: &Config) -> Vec<(String, String)> {
        problems(c).into_iter().map(|i| (i.key, i.allowed)).collect()
    }

    #[test]
    fn defaults_are_valid_and_match_the_design_ports() {
        let c = Config::default();
        assert!(keys(&c).is_empty(), "{:?}", keys(&c));
        assert_eq!(c.wan_detector.grpc_port, 50052);
        assert_eq!(c.wan_detector.admin_port, 9102);
        assert_eq!(c.wan_detector.cache_ttl, Duration::from_secs(300));
    }

    #[test]
    fn a_bad_regex_names_its_key_and_the_regex_error() {
        let mut c = Config::default();
        c.wan_detector.patterns = vec!["wan".into(), "(unclosed".into()];
        c.wan_detector.isp_map.insert("[a-".into(), "acme".into());
        c.wan_detector.isp_map.insert("ok".into(), "Not A Label".into());
        let p = keys(&c);
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(p[0].0, "wan_detector.patterns[1]");
        assert!(p[0].1.contains("unclosed group"), "{}", p[0].1);
        assert_eq!(p[1].0, "wan_detector.isp_map.[a-");
        assert!(p[1].1.contains("valid regex"), "{}", p[1].1);
        assert_eq!(p[2].0, "wan_detector.isp_map.ok");
    }

    #[test]
    fn prefixes_traffic_manual_and_url_are_checked() {
        let mut c = Config::default();
        c.wan_detector
            .isp_prefixes
            .insert("36.64.0.0/33".into(), "telkom".into());
        c.wan_detector.traffic.min_samples = 11;
        c.wan_detector.threshold = 0.0;
        c.wan_detector.manual = vec![
            ManualWan {
                router: "r 1".into(),
                interface: "ether1".into(),
                wan: true,
                isp: None,
            },
            ManualWan {
                router: "r1".into(),
                interface: String::new(),
                wan: true,
                isp: Some("Telkom".into()),
            },
        ];
        c.gateway.wan_detector_url = "127.0.0.1:50052".into();
        let got: Vec<String> = keys(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            got,
            [
                "wan_detector.threshold",
                "wan_detector.isp_prefixes.36.64.0.0/33",
                "wan_detector.traffic.min_samples",
                "wan_detector.manual[0].router",
                "wan_detector.manual[1].interface",
                "wan_detector.manual[1].isp",
                "gateway.wan_detector_url",
            ]
        );
    }

    #[test]
    fn yaml_with_an_unknown_key_is_refused() {
        let err = serde_yaml::from_str::<WanDetectorConfig>("cache_tll: 1m\n").unwrap_err();
        assert!(err.to_string().contains("cache_tll"), "{err}");
        let ok: WanDetectorConfig =
            serde_yaml::from_str("cache_ttl: 1m\nmanual: [{router: r1, interface: ether2, isp: biznet}]\n").unwrap();
        assert_eq!(ok.cache_ttl, Duration::from_secs(60));
        assert!(ok.manual[0].wan);
    }

    #[test]
    fn cidr_parsing() {
        assert!(parse_cidr("36.64.0.0/11").is_some());
        assert!(parse_cidr("2001:db8::/32").is_some());
        assert!(parse_cidr("36.64.0.0").is_none());
        assert!(parse_cidr("2001:db8::/129").is_none());
    }
}
