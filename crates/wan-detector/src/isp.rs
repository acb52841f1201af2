//! ISP recognition: which provider an interface is an uplink to, from the
//! operator's words on it (comment, PPPoE user name, alias, name, ifDescr)
//! and from its addresses.
//!
//! The configured `wan_detector.isp_map` (regex → ISP) is tried first, then
//! the built-in Indonesian ISPs, on each text source in turn (comment,
//! pppoe_user, alias, name, descr): the first source that names an ISP wins.
//! Failing that, the interface's addresses are looked up in
//! `wan_detector.isp_prefixes` (longest prefix wins).

use std::net::IpAddr;

use pantau_config::WanDetectorConfig;
use pantau_config::types::{Cidr, Pattern};
use pantau_proto::v1::RouterInterface;

/// The built-in ISPs: canonical name and the regex that recognises it.
/// Short names (`xl`, `im3`, `tri`) must stand alone between non-alphanumeric
/// characters (`pppoe-xl`, `user@xl.co.id`), so they do not match inside
/// other words.
pub const BUILTIN: &[(&str, &str)] = &[
    ("telkom", r"telkom|indi-?home|speedy"),
    (
        "indosat",
        r"indosat|ooredoo|(?:^|[^a-z0-9])(?:im3|im2|isat)(?:[^a-z0-9]|$)",
    ),
    ("xl", r"axiata|xl-?home|(?:^|[^a-z0-9])xl(?:[^a-z0-9]|$)"),
    ("smartfren", r"smart-?fren"),
    (
        "three",
        r"hutchison|(?:^|[^a-z0-9])(?:tri|three|3id|h3i)(?:[^a-z0-9]|$)",
    ),
    ("biznet", r"biznet"),
    ("firstmedia", r"first[-_ .]?media|link-?net"),
    ("myrepublic", r"my[-_ .]?republic"),
];

/// Every ISP name the built-in list can produce (bounded metric labels).
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(n, _)| *n)
}

/// Where an ISP was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Manual,
    Comment,
    PppoeUser,
    Alias,
    Name,
    Descr,
    Address,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Comment => "comment",
            Self::PppoeUser => "pppoe_user",
            Self::Alias => "alias",
            Self::Name => "name",
            Self::Descr => "descr",
            Self::Address => "address",
        }
    }
}

/// A recognised ISP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognised {
    pub name: String,
    pub source: Source,
    /// The text (or address) that matched.
    pub matched: String,
}

/// The compiled recognisers.
#[derive(Debug)]
pub struct IspMatcher {
    /// Configured first, then built-in.
    patterns: Vec<(String, Pattern)>,
    /// Longest prefix first.
    prefixes: Vec<(Cidr, String)>,
}

impl IspMatcher {
    /// The configured map and prefixes (compiled when the configuration was
    /// read) with the built-in ISPs.
    pub fn new(cfg: &WanDetectorConfig) -> Result<Self, crate::WanError> {
        let mut patterns: Vec<(String, Pattern)> = cfg
            .isp_map
            .iter()
            .map(|(pattern, isp)| (isp.to_string(), pattern.clone()))
            .collect();
        for (isp, pattern) in BUILTIN {
            let re = Pattern::new(pattern).map_err(|e| crate::WanError::Pattern {
                key: format!("built-in ISP {isp}"),
                error: e.to_string(),
            })?;
            patterns.push(((*isp).to_owned(), re));
        }
        let mut prefixes: Vec<(Cidr, String)> = cfg.isp_prefixes.iter().map(|(c, isp)| (*c, isp.to_string())).collect();
        prefixes.sort_by_key(|(c, _)| std::cmp::Reverse(c.prefix_len()));
        Ok(Self { patterns, prefixes })
    }

    /// The ISP a text names, if any.
    pub fn in_text(&self, text: &str) -> Option<&str> {
        if text.trim().is_empty() {
            return None;
        }
        self.patterns
            .iter()
            .find(|(_, re)| re.is_match(text))
            .map(|(isp, _)| isp.as_str())
    }

    /// The ISP whose prefix holds `addr` (an address, with or without `/len`).
    pub fn in_address(&self, addr: &str) -> Option<&str> {
        let ip: IpAddr = addr.split('/').next()?.trim().parse().ok()?;
        self.prefixes
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, isp)| isp.as_str())
    }

    /// The ISP of one interface, from its texts then its addresses.
    pub fn recognise(&self, i: &RouterInterface) -> Option<Recognised> {
        let texts = [
            (Source::Comment, &i.comment),
            (Source::PppoeUser, &i.pppoe_user),
            (Source::Alias, &i.if_alias),
            (Source::Name, &i.if_name),
            (Source::Descr, &i.if_descr),
        ];
        for (source, text) in texts {
            if let Some(isp) = self.in_text(text) {
                return Some(Recognised {
                    name: isp.to_owned(),
                    source,
                    matched: text.clone(),
                });
            }
        }
        i.addresses.iter().find_map(|a| {
            self.in_address(a).map(|isp| Recognised {
                name: isp.to_owned(),
                source: Source::Address,
                matched: a.clone(),
            })
        })
    }

    /// Every ISP name this matcher can produce: configured and built-in.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .patterns
            .iter()
            .map(|(n, _)| n.clone())
            .chain(self.prefixes.iter().map(|(_, n)| n.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> IspMatcher {
        IspMatcher::new(&WanDetectorConfig::default()).unwrap()
    }

    #[test]
    fn every_builtin_isp_is_recognised_from_the_words_operators_use() {
        let m = matcher();
        let cases = [
            ("Telkom Indihome 100M", "telkom"),
            ("INDIHOME", "telkom"),
            ("1234567890@telkom.net", "telkom"),
            ("indi-home backup", "telkom"),
            ("Indosat GIG", "indosat"),
            ("lte-im3", "indosat"),
            ("Ooredoo fiber", "indosat"),
            ("XL Home", "xl"),
            ("pppoe-xl", "xl"),
            ("user@xl.co.id", "xl"),
            ("xl-axiata fiber", "xl"),
            ("Smartfren LTE", "smartfren"),
            ("smart-fren", "smartfren"),
            ("Tri 4G", "three"),
            ("lte-three", "three"),
            ("modem 3ID", "three"),
            ("Biznet Metronet", "biznet"),
            ("First Media", "firstmedia"),
            ("firstmedia-cable", "firstmedia"),
            ("FIRST_MEDIA", "firstmedia"),
            ("MyRepublic", "myrepublic"),
            ("my-republic 50M", "myrepublic"),
        ];
        for (text, want) in cases {
            assert_eq!(m.in_text(text), Some(want), "{text}");
        }
    }

    #[test]
    fn short_names_do_not_match_inside_other_words() {
        let m = matcher();
        for text in [
            "ether1",
            "bridge-lan",
            "pixl",
            "xlan",
            "triangle",
            "im30",
            "distribution",
            "",
        ] {
            assert_eq!(m.in_text(text), None, "{text}");
        }
    }

    #[test]
    fn the_configured_map_wins_over_the_builtin_list() {
        let mut cfg = WanDetectorConfig::default();
        cfg.isp_map
            .insert(Pattern::new("^cbn|telkom-backup").unwrap(), "cbn".try_into().unwrap());
        let m = IspMatcher::new(&cfg).unwrap();
        assert_eq!(m.in_text("telkom-backup"), Some("cbn"));
        assert_eq!(m.in_text("CBN fiber"), Some("cbn"));
        assert_eq!(m.in_text("telkom"), Some("telkom"));
        assert!(m.names().contains(&"cbn".to_owned()));
    }

    #[test]
    fn sources_are_tried_in_order_and_addresses_last() {
        let mut cfg = WanDetectorConfig::default();
        cfg.isp_prefixes
            .insert("36.64.0.0/11".parse().unwrap(), "telkom".try_into().unwrap());
        cfg.isp_prefixes
            .insert("36.70.0.0/16".parse().unwrap(), "acme".try_into().unwrap());
        cfg.isp_prefixes
            .insert("2001:db8::/32".parse().unwrap(), "biznet".try_into().unwrap());
        let m = IspMatcher::new(&cfg).unwrap();
        let mut i = RouterInterface {
            if_name: "pppoe-out1".into(),
            comment: "Biznet uplink".into(),
            pppoe_user: "x@telkom.net".into(),
            ..RouterInterface::default()
        };
        let r = m.recognise(&i).unwrap();
        assert_eq!((r.name.as_str(), r.source), ("biznet", Source::Comment));
        i.comment.clear();
        let r = m.recognise(&i).unwrap();
        assert_eq!((r.name.as_str(), r.source), ("telkom", Source::PppoeUser));
        i.pppoe_user.clear();
        assert_eq!(m.recognise(&i), None);
        i.addresses = vec!["10.0.0.1/24".into(), "36.70.1.2/24".into()];
        let r = m.recognise(&i).unwrap();
        assert_eq!((r.name.as_str(), r.source), ("acme", Source::Address), "longest prefix");
        i.addresses = vec!["36.65.1.2/24".into()];
        assert_eq!(m.recognise(&i).unwrap().name, "telkom");
        i.addresses = vec!["2001:db8:1::1/64".into()];
        assert_eq!(m.recognise(&i).unwrap().name, "biznet");
        i.addresses = vec!["192.0.2.1/24".into()];
        assert_eq!(m.recognise(&i), None);
    }
}
