//! `wan_detector`: ports, the per-router cache, the WAN name patterns, ISP
//! recognition (patterns and address prefixes), traffic analysis thresholds
//! and manual WAN assignments. Regexes, prefixes and ISP names are typed
//! ([`Pattern`], [`Cidr`], [`IspName`]): a bad one is refused where it is read,
//! with its key and the reason.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;
use super::duration::format as fmt_d;
use super::validate::is_subject_token;
use super::{Config, Invalid};
use crate::types::{Cidr, IspName, Pattern};

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
    /// Unset: the detector's built-in set (`^ether1$`, `^pppoe-out`, `^lte`,
    /// `^sfp`, and `wan`, `uplink`, `internet` as words between non-letters);
    /// `[]`: no name patterns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patterns: Option<Vec<Pattern>>,
    /// Extra ISP recognition: regex (case-insensitive) → ISP name, tried
    /// before the built-in ISPs on comments, PPPoE user names, aliases and names.
    pub isp_map: BTreeMap<Pattern, IspName>,
    /// Address hints: CIDR prefix → ISP name, for interface addresses
    /// (`36.64.0.0/11: telkom`). Longest prefix wins.
    pub isp_prefixes: BTreeMap<Cidr, IspName>,
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
            patterns: None,
            isp_map: BTreeMap::new(),
            isp_prefixes: BTreeMap::new(),
            traffic: WanTrafficConfig::default(),
            manual: Vec::new(),
        }
    }
}

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
    pub isp: Option<IspName>,
}

fn yes() -> bool {
    true
}

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
    fn a_bad_regex_prefix_or_isp_name_is_refused_where_it_is_read() {
        for (yaml, want) in [
            ("patterns: [wan, '(unclosed']\n", "unclosed group"),
            ("isp_map: {'[a-': acme}\n", "valid regex"),
            ("isp_map: {ok: Not A Label}\n", "lower-case"),
            ("isp_prefixes: {36.64.0.0/33: telkom}\n", "CIDR prefix"),
            ("manual: [{router: r1, interface: e1, isp: Telkom}]\n", "lower-case"),
        ] {
            let err = serde_yaml::from_str::<WanDetectorConfig>(yaml).unwrap_err().to_string();
            assert!(err.contains(want), "{yaml}: {err}");
        }
        let ok: WanDetectorConfig =
            serde_yaml::from_str("patterns: []\nisp_prefixes: {36.64.1.0/11: telkom}\nisp_map: {'^cbn': cbn}\n")
                .unwrap();
        assert_eq!(
            ok.patterns,
            Some(vec![]),
            "`[]` is no name patterns, not the built-in set"
        );
        assert_eq!(ok.isp_prefixes.keys().next().unwrap().to_string(), "36.64.0.0/11");
        assert!(ok.isp_map.keys().next().unwrap().is_match("CBN-backup"));
    }

    #[test]
    fn traffic_manual_and_url_are_checked() {
        let mut c = Config::default();
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
                isp: None,
            },
        ];
        c.gateway.wan_detector_url = "127.0.0.1:50052".into();
        let got: Vec<String> = keys(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            got,
            [
                "wan_detector.threshold",
                "wan_detector.traffic.min_samples",
                "wan_detector.manual[0].router",
                "wan_detector.manual[1].interface",
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
}
