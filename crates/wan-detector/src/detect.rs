//! The detection methods and the hybrid score, without I/O.
//!
//! Methods, each giving evidence with a fixed confidence:
//! - **route** (0.9): the interface carries a default route
//!   (`RouterInfo.default_route_if_indexes`).
//! - **traffic** (0.7): over the last `traffic.window` samples with valid
//!   rates (at least `traffic.min_samples`), a `traffic.sustained` share
//!   moved at least `traffic.min_bps` (in + out) *and* received at least
//!   `traffic.min_ratio` times what it sent: an uplink downloads, while the
//!   LAN port behind it sees the mirror image (sends more than it receives).
//! - **name** (0.5): its name, comment, alias or ifDescr matches one of
//!   `wan_detector.patterns`, it is a PPPoE client (it has a PPPoE user
//!   name), or its words name an ISP.
//! - **manual** (1.0): `wan_detector.manual` names it; it overrides the rest,
//!   and `wan: false` makes it never a WAN (confidence 0).
//!
//! Loopback interfaces (ifType 24, or named `lo`) are never judged WAN by the
//! automatic methods.
//!
//! **Hybrid score.** Without a manual entry, the methods are independent
//! pieces of evidence combined with a noisy-OR, capped below certainty:
//!
//! ```text
//! confidence = min(0.99, 1 − Π (1 − cᵢ))   over the methods that fired
//! ```
//!
//! so route alone is 0.9, route + traffic 0.97, route + traffic + name
//! 0.985, traffic + name 0.85, name alone 0.5; only a manual entry reaches
//! 1.0. An interface is WAN when its confidence reaches
//! `wan_detector.threshold` (0.5 by default).

use std::collections::VecDeque;

use pantau_config::types::Pattern;
use pantau_config::{ManualWan, WanDetectorConfig, WanTrafficConfig};

/// The WAN name patterns used when `wan_detector.patterns` is not set.
/// `wan`, `uplink` and `internet` must stand as words (between non-letters:
/// `ether2-WAN`, `wan1`, `pppoe_wan`), so an alias such as `wuxianwangluo` or
/// `swan` is no WAN hint.
pub const DEFAULT_PATTERNS: &[&str] = &[
    "^ether1$",
    "(^|[^a-z])wan([^a-z]|$)",
    "^pppoe-out",
    "^lte",
    "^sfp",
    "(^|[^a-z])uplink([^a-z]|$)",
    "(^|[^a-z])internet([^a-z]|$)",
];
use pantau_proto::v1::{InterfaceSample, RouterInfo, RouterInterface, WanMethod};

use crate::isp::{IspMatcher, Recognised, Source};

pub const ROUTE_CONFIDENCE: f64 = 0.9;
pub const TRAFFIC_CONFIDENCE: f64 = 0.7;
pub const NAME_CONFIDENCE: f64 = 0.5;
pub const MANUAL_CONFIDENCE: f64 = 1.0;
/// The most automatic methods together can reach.
pub const AUTOMATIC_CAP: f64 = 0.99;

/// One method's finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub method: WanMethod,
    pub confidence: f64,
    pub detail: String,
}

/// The judgement of one interface.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub if_index: u32,
    pub name: String,
    pub is_wan: bool,
    pub confidence: f64,
    /// Strongest first.
    pub evidence: Vec<Evidence>,
    pub isp: Option<Recognised>,
}

/// The detection rules compiled from `wan_detector`.
#[derive(Debug)]
pub struct Rules {
    patterns: Vec<Pattern>,
    pub isp: IspMatcher,
    pub traffic: WanTrafficConfig,
    manual: Vec<ManualWan>,
    pub threshold: f64,
}

impl Rules {
    pub fn new(cfg: &WanDetectorConfig) -> Result<Self, crate::WanError> {
        let patterns = match &cfg.patterns {
            Some(configured) => configured.clone(),
            None => DEFAULT_PATTERNS
                .iter()
                .map(|p| {
                    Pattern::new(p).map_err(|e| crate::WanError::Pattern {
                        key: format!("built-in WAN pattern {p}"),
                        error: e.to_string(),
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Self {
            patterns,
            isp: IspMatcher::new(cfg)?,
            traffic: cfg.traffic.clone(),
            manual: cfg.manual.clone(),
            threshold: cfg.threshold,
        })
    }

    fn manual_for(&self, router: &str, i: &RouterInterface) -> Option<&ManualWan> {
        let index = i.if_index.to_string();
        self.manual
            .iter()
            .find(|m| m.router == router && (m.interface == i.if_name || m.interface == index))
    }

    /// Judges every interface of `info`; `windows(if_index)` gives that
    /// interface's recent samples, oldest first.
    pub fn judge<'a>(
        &self,
        info: &RouterInfo,
        windows: impl Fn(u32) -> Option<&'a VecDeque<InterfaceSample>>,
    ) -> Vec<Judged> {
        info.interfaces
            .iter()
            .map(|i| self.judge_one(info, i, windows(i.if_index)))
            .collect()
    }

    fn judge_one(&self, info: &RouterInfo, i: &RouterInterface, window: Option<&VecDeque<InterfaceSample>>) -> Judged {
        let mut isp = self.isp.recognise(i);
        if let Some(m) = self.manual_for(&info.router_id, i) {
            if let Some(name) = &m.isp {
                isp = Some(Recognised {
                    name: name.to_string(),
                    source: Source::Manual,
                    matched: name.to_string(),
                });
            }
            let (confidence, detail) = if m.wan {
                (MANUAL_CONFIDENCE, "configured as WAN")
            } else {
                (0.0, "configured as not WAN")
            };
            return Judged {
                if_index: i.if_index,
                name: i.if_name.clone(),
                is_wan: m.wan,
                confidence,
                evidence: vec![Evidence {
                    method: WanMethod::Manual,
                    confidence,
                    detail: detail.to_owned(),
                }],
                isp,
            };
        }
        let mut evidence = Vec::new();
        if !is_loopback(i) {
            evidence.extend(route(info, i));
            evidence.extend(window.and_then(|w| traffic(&self.traffic, w)));
            evidence.extend(self.name(i, isp.as_ref()));
        }
        let confidence = hybrid(&evidence);
        Judged {
            if_index: i.if_index,
            name: i.if_name.clone(),
            is_wan: confidence >= self.threshold,
            confidence,
            evidence,
            isp,
        }
    }

    /// The name method.
    pub fn name(&self, i: &RouterInterface, isp: Option<&Recognised>) -> Option<Evidence> {
        let texts = [
            ("name", &i.if_name),
            ("comment", &i.comment),
            ("alias", &i.if_alias),
            ("descr", &i.if_descr),
        ];
        let hit = texts.iter().find_map(|(what, text)| {
            if text.is_empty() {
                return None;
            }
            self.patterns
                .iter()
                .find(|p| p.is_match(text))
                .map(|p| format!("{what} `{text}` matches {p}"))
        });
        let detail = hit
            .or_else(|| (!i.pppoe_user.is_empty()).then(|| "a PPPoE client".to_owned()))
            .or_else(|| {
                isp.filter(|r| r.source != Source::Address)
                    .map(|r| format!("{} `{}` names ISP {}", r.source.as_str(), r.matched, r.name))
            })?;
        Some(Evidence {
            method: WanMethod::Name,
            confidence: NAME_CONFIDENCE,
            detail,
        })
    }
}

fn is_loopback(i: &RouterInterface) -> bool {
    i.if_type == 24 || i.if_name == "lo"
}

/// The route method.
pub fn route(info: &RouterInfo, i: &RouterInterface) -> Option<Evidence> {
    info.default_route_if_indexes.contains(&i.if_index).then(|| Evidence {
        method: WanMethod::Route,
        confidence: ROUTE_CONFIDENCE,
        detail: if info.route_table.is_empty() {
            "carries the default route".to_owned()
        } else {
            format!("carries the default route ({})", info.route_table)
        },
    })
}

/// The traffic method over one interface's window, oldest first.
pub fn traffic(cfg: &WanTrafficConfig, window: &VecDeque<InterfaceSample>) -> Option<Evidence> {
    let valid: Vec<&InterfaceSample> = window.iter().filter(|s| s.rates_valid).collect();
    if valid.len() < cfg.min_samples.max(1) {
        return None;
    }
    let counted = valid
        .iter()
        .filter(|s| {
            let (rx, tx) = (s.in_bits_per_second, s.out_bits_per_second);
            rx + tx >= cfg.min_bps && rx >= cfg.min_ratio * tx && rx > 0.0
        })
        .count();
    let share = counted as f64 / valid.len() as f64;
    if share < cfg.sustained {
        return None;
    }
    let n = valid.len() as f64;
    let rx = valid.iter().map(|s| s.in_bits_per_second).sum::<f64>() / n;
    let tx = valid.iter().map(|s| s.out_bits_per_second).sum::<f64>() / n;
    Some(Evidence {
        method: WanMethod::Traffic,
        confidence: TRAFFIC_CONFIDENCE,
        detail: format!(
            "in {:.1} Mbit/s vs out {:.1} Mbit/s on average; {counted} of {} samples download-heavy",
            rx / 1e6,
            tx / 1e6,
            valid.len()
        ),
    })
}

/// The hybrid score of automatic evidence: a noisy-OR, capped at [`AUTOMATIC_CAP`].
pub fn hybrid(evidence: &[Evidence]) -> f64 {
    if evidence.is_empty() {
        return 0.0;
    }
    let miss: f64 = evidence.iter().map(|e| 1.0 - e.confidence.clamp(0.0, 1.0)).product();
    (1.0 - miss).min(AUTOMATIC_CAP)
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;

    fn iface(index: u32, name: &str) -> RouterInterface {
        RouterInterface {
            if_index: index,
            if_name: name.into(),
            if_descr: name.into(),
            if_type: 6,
            oper_up: true,
            admin_up: true,
            ..RouterInterface::default()
        }
    }

    fn info(ifaces: Vec<RouterInterface>, default: &[u32]) -> RouterInfo {
        RouterInfo {
            router_id: "r1".into(),
            router_name: "r1".into(),
            default_route_if_indexes: default.to_vec(),
            route_table: "inetCidrRouteTable".into(),
            interfaces: ifaces,
            ..RouterInfo::default()
        }
    }

    fn samples(rx: f64, tx: f64, n: usize) -> VecDeque<InterfaceSample> {
        (0..n)
            .map(|_| InterfaceSample {
                in_bits_per_second: rx,
                out_bits_per_second: tx,
                rates_valid: true,
                ..InterfaceSample::default()
            })
            .collect()
    }

    fn rules(cfg: &WanDetectorConfig) -> Rules {
        Rules::new(cfg).unwrap()
    }

    fn methods(j: &Judged) -> Vec<WanMethod> {
        let mut v: Vec<WanMethod> = j.evidence.iter().map(|e| e.method).collect();
        v.sort_by_key(|m| *m as i32);
        v
    }

    #[test]
    fn route_method_finds_the_default_route_interface() {
        let r = rules(&WanDetectorConfig::default());
        let info = info(vec![iface(1, "lo"), iface(2, "bridge"), iface(3, "eth0")], &[3]);
        let j = r.judge(&info, |_| None);
        assert_eq!(j[2].name, "eth0");
        assert!(j[2].is_wan);
        assert!((j[2].confidence - 0.9).abs() < 1e-9);
        assert_eq!(methods(&j[2]), [WanMethod::Route]);
        assert!(j[2].evidence[0].detail.contains("inetCidrRouteTable"));
        assert!(!j[1].is_wan && j[1].evidence.is_empty());
        // A default route over loopback is not a WAN.
        let lo = rules(&WanDetectorConfig::default()).judge(&super::tests::info(vec![iface(1, "lo")], &[1]), |_| None);
        assert!(!lo[0].is_wan);
    }

    #[test]
    fn default_name_patterns_match_words_not_substrings() {
        let r = rules(&WanDetectorConfig::default());
        for (name, wan) in [
            ("ether2-WAN", true),
            ("wan1", true),
            ("pppoe_wan", true),
            ("Internet uplink", true),
            ("wuxianwangluo", false),
            ("swan", false),
            ("wanda-office", false),
            ("uplinks", false),
        ] {
            let mut i = iface(2, "port2");
            i.if_alias = name.to_owned();
            assert_eq!(r.name(&i, None).is_some(), wan, "{name}");
        }
    }

    #[test]
    fn traffic_method_needs_sustained_download_heavy_volume() {
        let cfg = WanTrafficConfig::default();
        // 40 Mbit/s down, 2 up, ten samples: an uplink.
        let e = traffic(&cfg, &samples(40e6, 2e6, 10)).unwrap();
        assert_eq!(e.method, WanMethod::Traffic);
        assert!((e.confidence - 0.7).abs() < 1e-9);
        assert!(e.detail.contains("in 40.0 Mbit/s"), "{}", e.detail);
        // The LAN side: the mirror image.
        assert!(traffic(&cfg, &samples(2e6, 40e6, 10)).is_none());
        // Too little volume.
        assert!(traffic(&cfg, &samples(400e3, 10e3, 10)).is_none());
        // Too few samples with valid rates.
        assert!(traffic(&cfg, &samples(40e6, 2e6, 4)).is_none());
        let mut w = samples(40e6, 2e6, 10);
        for s in w.iter_mut().take(6) {
            s.rates_valid = false;
        }
        assert!(traffic(&cfg, &w).is_none());
        // Not sustained: 7 of 10 download-heavy is below 80 %.
        let mut w = samples(40e6, 2e6, 7);
        w.extend(samples(5e6, 5e6, 3));
        assert!(traffic(&cfg, &w).is_none());
        // 8 of 10 is enough.
        let mut w = samples(40e6, 2e6, 8);
        w.extend(samples(5e6, 5e6, 2));
        assert!(traffic(&cfg, &w).is_some());
        // Silence in both directions is not download-heavy, even at min_bps 0.
        let zero = WanTrafficConfig {
            min_bps: 0.0,
            ..cfg.clone()
        };
        assert!(traffic(&zero, &samples(0.0, 0.0, 10)).is_none());
    }

    #[test]
    fn name_method_uses_patterns_comments_pppoe_and_isp_words() {
        let r = rules(&WanDetectorConfig::default());
        let cases: [(RouterInterface, bool); 9] = [
            (iface(1, "ether1"), true),
            (iface(2, "ether2"), false),
            (iface(3, "pppoe-out1"), true),
            (iface(4, "WAN-backup"), true),
            (iface(5, "lte1"), true),
            (iface(6, "sfp-sfpplus1"), true),
            (
                RouterInterface {
                    comment: "ke Indihome".into(),
                    ..iface(7, "ether5")
                },
                true,
            ),
            (
                RouterInterface {
                    pppoe_user: "abc@example.net".into(),
                    ..iface(8, "pppoe-client")
                },
                true,
            ),
            (iface(9, "bridge-lan"), false),
        ];
        for (i, want) in cases {
            let isp = r.isp.recognise(&i);
            let got = r.name(&i, isp.as_ref());
            assert_eq!(got.is_some(), want, "{i:?}: {got:?}");
            if let Some(e) = got {
                assert!((e.confidence - 0.5).abs() < 1e-9);
            }
        }
        // Configured patterns replace the defaults.
        let cfg = WanDetectorConfig {
            patterns: Some(vec![Pattern::new("^uplink-").unwrap()]),
            ..WanDetectorConfig::default()
        };
        let r = rules(&cfg);
        assert!(r.name(&iface(1, "ether1"), None).is_none());
        assert!(r.name(&iface(1, "UPLINK-a"), None).is_some());
    }

    #[test]
    fn manual_overrides_every_other_method() {
        let mut cfg = WanDetectorConfig::default();
        cfg.manual = vec![
            ManualWan {
                router: "r1".into(),
                interface: "ether7".into(),
                wan: true,
                isp: Some("biznet".try_into().unwrap()),
            },
            ManualWan {
                router: "r1".into(),
                interface: "3".into(),
                wan: false,
                isp: None,
            },
            ManualWan {
                router: "other".into(),
                interface: "ether8".into(),
                wan: true,
                isp: None,
            },
        ];
        let r = rules(&cfg);
        let info = info(vec![iface(7, "ether7"), iface(3, "ether1"), iface(8, "ether8")], &[3]);
        let j = r.judge(&info, |_| None);
        assert!(j[0].is_wan);
        assert!((j[0].confidence - 1.0).abs() < 1e-9);
        assert_eq!(methods(&j[0]), [WanMethod::Manual]);
        let isp = j[0].isp.as_ref().unwrap();
        assert_eq!((isp.name.as_str(), isp.source), ("biznet", Source::Manual));
        // The default route and the name say WAN; the operator says no.
        assert!(!j[1].is_wan);
        assert!(j[1].confidence.abs() < 1e-9);
        // Another router's entry does not apply.
        assert!(!j[2].is_wan);
    }

    #[test]
    fn hybrid_score_is_a_capped_noisy_or() {
        let e = |method, confidence| Evidence {
            method,
            confidence,
            detail: String::new(),
        };
        assert!(hybrid(&[]).abs() < 1e-12);
        let route = e(WanMethod::Route, ROUTE_CONFIDENCE);
        let traffic = e(WanMethod::Traffic, TRAFFIC_CONFIDENCE);
        let name = e(WanMethod::Name, NAME_CONFIDENCE);
        assert!((hybrid(std::slice::from_ref(&route)) - 0.9).abs() < 1e-9);
        assert!((hybrid(&[route.clone(), traffic.clone()]) - 0.97).abs() < 1e-9);
        assert!((hybrid(&[route.clone(), traffic.clone(), name.clone()]) - 0.985).abs() < 1e-9);
        assert!((hybrid(&[traffic.clone(), name.clone()]) - 0.85).abs() < 1e-9);
        assert!((hybrid(std::slice::from_ref(&name)) - 0.5).abs() < 1e-9);
        // Never certain without the operator.
        let many = vec![route; 10];
        assert!((hybrid(&many) - AUTOMATIC_CAP).abs() < 1e-12);
    }

    #[test]
    fn all_methods_together_and_the_threshold() {
        let mut cfg = WanDetectorConfig::default();
        cfg.threshold = 0.8;
        let r = rules(&cfg);
        let info = info(vec![iface(1, "ether1"), iface(2, "ether2"), iface(3, "wan2")], &[1]);
        let w1 = samples(50e6, 3e6, 10);
        let w2 = samples(3e6, 50e6, 10);
        let w3 = samples(20e6, 1e6, 10);
        let j = r.judge(&info, |i| match i {
            1 => Some(&w1),
            2 => Some(&w2),
            3 => Some(&w3),
            _ => None,
        });
        assert_eq!(methods(&j[0]), [WanMethod::Route, WanMethod::Traffic, WanMethod::Name]);
        assert!((j[0].confidence - 0.985).abs() < 1e-9);
        assert!(j[0].is_wan);
        assert!(!j[1].is_wan && j[1].evidence.is_empty());
        // traffic + name = 0.85 >= 0.8.
        assert!(j[2].is_wan);
        assert!((j[2].confidence - 0.85).abs() < 1e-9);
    }
}
