//! Connection options of `http` and `http_steps` targets: a proxy to go
//! through (`proxy: http://…` or `socks5://…`), host names resolved to
//! fixed addresses (`resolve:`, like curl's `--resolve`) and a DNS server to
//! resolve the others through (`dns_server: ip:port`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::RawTarget;
use super::parse::Problems;

/// Most `resolve` entries a target may have.
pub const MAX_RESOLVE: usize = 16;

/// Proxy URL schemes a check can go through.
const PROXY_SCHEMES: &[&str] = &["http", "https", "socks5", "socks5h"];

/// A proxy's URL: `http://`, `https://`, `socks5://` (names resolved by the
/// collector) or `socks5h://` (names resolved by the proxy), with a host and
/// an optional `user:password@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl(url::Url);

impl ProxyUrl {
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }

    /// The URL with its password, if any, replaced by `***`.
    #[must_use]
    pub fn masked(&self) -> Self {
        let mut u = self.0.clone();
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
        }
        Self(u)
    }
}

impl std::fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl std::str::FromStr for ProxyUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let u = url::Url::parse(s).map_err(|e| format!("is not a URL ({e})"))?;
        if !PROXY_SCHEMES.contains(&u.scheme()) {
            return Err(format!(
                "scheme `{}` is not one of {}",
                crate::types::quote(u.scheme()),
                PROXY_SCHEMES.join(", ")
            ));
        }
        if u.host_str().is_none_or(str::is_empty) {
            return Err("must name the proxy's host".into());
        }
        if !matches!(u.path(), "" | "/") || u.query().is_some() || u.fragment().is_some() {
            return Err("must be scheme://[user:password@]host[:port] with no path".into());
        }
        Ok(Self(u))
    }
}

/// How an HTTP check reaches its server, beyond the system's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpOptions {
    /// Every request goes through this proxy (for http and https URLs);
    /// boxed, as most targets have none and every `http` target carries
    /// these options.
    pub proxy: Option<Box<ProxyUrl>>,
    /// A host name connects to this address instead of what DNS says (the
    /// URL's port is kept; TLS still verifies the name); at most
    /// [`MAX_RESOLVE`] entries.
    pub resolve: BTreeMap<String, IpAddr>,
    /// Host names not in `resolve` are resolved through this DNS server
    /// (UDP; TCP for a truncated answer) instead of the system's resolver.
    pub dns_server: Option<SocketAddr>,
}

impl HttpOptions {
    pub fn is_empty(&self) -> bool {
        self.proxy.is_none() && self.resolve.is_empty() && self.dns_server.is_none()
    }

    /// The same options with the proxy's password replaced by `***`.
    #[must_use]
    pub fn masked(&self) -> Self {
        Self {
            proxy: self.proxy.as_deref().map(|p| Box::new(p.masked())),
            resolve: self.resolve.clone(),
            dns_server: self.dns_server,
        }
    }
}

/// `proxy` and `resolve` of `r`, each problem keyed.
pub(super) fn parse(r: &RawTarget, p: &mut Problems<'_>) -> Option<HttpOptions> {
    let mut ok = true;
    let proxy = match r.proxy.as_deref() {
        None => None,
        Some(text) if text.len() > crate::types::limits::URL => {
            p.add(
                "proxy",
                &crate::mask_url_password(text),
                format!("must be at most {} bytes", crate::types::limits::URL),
            );
            ok = false;
            None
        }
        Some(text) => match text.parse::<ProxyUrl>() {
            Ok(u) => Some(Box::new(u)),
            Err(why) => {
                p.add("proxy", &crate::mask_url_password(text), why);
                ok = false;
                None
            }
        },
    };
    if r.resolve.len() > MAX_RESOLVE {
        p.add(
            "resolve",
            &format!("{} entries", r.resolve.len()),
            format!("must have at most {MAX_RESOLVE} entries"),
        );
        return None;
    }
    let mut resolve = BTreeMap::new();
    for (host, addr) in &r.resolve {
        let key = format!("resolve.{}", crate::types::quote(host));
        if !is_host_name(host) {
            p.add(
                &key,
                host,
                "must be keyed by a host name (letters, digits, `-` and `.`, at most 253 bytes)",
            );
            ok = false;
            continue;
        }
        if let Ok(ip) = addr.parse::<IpAddr>() {
            resolve.insert(host.to_ascii_lowercase(), ip);
        } else {
            p.add(&key, addr, "must be an IP address, e.g. 127.0.0.1 or ::1");
            ok = false;
        }
    }
    let dns_server = r.dns_server.as_deref().and_then(|text| {
        let addr = super::parse::resolver(text).filter(|a| a.port() != 0 && text.len() <= 64);
        if addr.is_none() {
            let shown: String = text.chars().take(64).collect();
            p.add(
                "dns_server",
                &shown,
                "must be a DNS server's ip:port (or ip, port 53), e.g. 127.0.0.1:5353 or [::1]:53",
            );
            ok = false;
        }
        addr
    });
    ok.then_some(HttpOptions {
        proxy,
        resolve,
        dns_server,
    })
}

/// Sets `r`'s `proxy` and `resolve` from `o`.
pub(super) fn to_raw(o: HttpOptions, r: &mut RawTarget) {
    r.proxy = o.proxy.map(|u| u.to_string());
    r.resolve = o.resolve.into_iter().map(|(h, ip)| (h, ip.to_string())).collect();
    r.dns_server = o.dns_server.map(|a| a.to_string());
}

fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= crate::types::limits::HOST
        && h.split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

#[cfg(test)]
mod tests {
    use super::super::refused;
    use crate::{CheckType, RawTarget, TargetSpec};

    fn http() -> RawTarget {
        let mut r = RawTarget::new("h", CheckType::Http);
        r.url = Some("https://svc.internal:8443/health".into());
        r
    }

    #[test]
    fn proxy_and_resolve_parse_and_travel_back() {
        let mut r = http();
        r.proxy = Some("socks5h://user:pw@127.0.0.1:1080".into());
        r.resolve.insert("svc.internal".into(), "127.0.0.1".into());
        let t = r.clone().parse("t").unwrap();
        let TargetSpec::Http(h) = &t.spec else { panic!() };
        assert_eq!(h.options().proxy.as_ref().unwrap().as_url().scheme(), "socks5h");
        assert_eq!(h.options().resolve["svc.internal"].to_string(), "127.0.0.1");
        assert_eq!(RawTarget::from(t), r);
    }

    #[test]
    fn hostile_proxy_and_resolve_are_refused_naming_the_key() {
        let cases: [(fn(&mut RawTarget), &str); 8] = [
            (|r| r.proxy = Some("ftp://127.0.0.1:21".into()), "t.proxy"),
            (|r| r.proxy = Some("not a url".into()), "t.proxy"),
            (|r| r.proxy = Some("http://127.0.0.1:3128/some/path".into()), "t.proxy"),
            (
                |r| r.proxy = Some(format!("http://{}.example", "a".repeat(5000))),
                "t.proxy",
            ),
            (
                |r| {
                    r.resolve.insert("svc.internal".into(), "not-an-ip".into());
                },
                "t.resolve.svc.internal",
            ),
            (
                |r| {
                    r.resolve.insert("bad host!".into(), "127.0.0.1".into());
                },
                "t.resolve.bad host!",
            ),
            (
                |r| {
                    for i in 0..100 {
                        r.resolve.insert(format!("h{i}.internal"), "127.0.0.1".into());
                    }
                },
                "t.resolve",
            ),
            (
                |r| {
                    r.check = CheckType::Tcp;
                    r.url = None;
                    r.address = Some("127.0.0.1:80".into());
                    r.proxy = Some("http://127.0.0.1:3128".into());
                },
                "t.proxy",
            ),
        ];
        for (i, (edit, key)) in cases.into_iter().enumerate() {
            let mut r = http();
            edit(&mut r);
            let e = refused(r);
            assert!(e.contains(key), "case {i}: `{e}` lacks {key}");
        }
    }

    #[test]
    fn dns_server_parses_travels_back_and_through_protobuf() {
        for (text, want) in [
            ("127.0.0.1:5353", "127.0.0.1:5353"),
            ("10.0.0.53", "10.0.0.53:53"),
            ("[::1]:53", "[::1]:53"),
        ] {
            let mut r = http();
            r.dns_server = Some(text.into());
            let t = r.clone().parse("t").unwrap();
            let TargetSpec::Http(h) = &t.spec else { panic!() };
            assert_eq!(h.options().dns_server.unwrap().to_string(), want);
            assert_eq!(RawTarget::from(t.clone()).dns_server.as_deref(), Some(want));
            assert_eq!(through_proto(&t).spec, t.spec);
        }
        let mut s = RawTarget::new("s", CheckType::HttpSteps);
        s.steps = vec![crate::RawStep {
            url: Some("http://svc.internal/".into()),
            ..crate::RawStep::default()
        }];
        s.dns_server = Some("127.0.0.1:5353".into());
        let t = s.parse("t").unwrap();
        let TargetSpec::HttpSteps(x) = &t.spec else { panic!() };
        assert_eq!(x.options.dns_server.unwrap().port(), 5353);
        assert_eq!(through_proto(&t).spec, t.spec);
    }

    fn through_proto(t: &crate::TargetConfig) -> crate::TargetConfig {
        let p = pantau_proto::v1::Target {
            id: t.id.clone(),
            spec: Some(crate::proto::spec_to_proto(t)),
            ..pantau_proto::v1::Target::default()
        };
        crate::proto::target_from_proto(&p).unwrap()
    }

    #[test]
    fn hostile_dns_servers_are_refused_naming_the_key() {
        let huge = "1".repeat(100_000);
        for bad in [
            "dns.internal:53",
            "127.0.0.1:0",
            "127.0.0.1:70000",
            "127.0.0.1:-1",
            "not an address",
            "",
            "999.1.1.1",
            huge.as_str(),
        ] {
            let mut r = http();
            r.dns_server = Some(bad.into());
            let e = refused(r);
            assert!(e.contains("t.dns_server"), "{bad:.40}: `{e}`");
            assert!(e.len() < 1000, "{e:.200}");
        }
        let mut r = RawTarget::new("x", CheckType::Tcp);
        r.address = Some("127.0.0.1:80".into());
        r.dns_server = Some("127.0.0.1:53".into());
        assert!(refused(r).contains("t.dns_server"));
    }

    #[test]
    fn a_proxy_password_is_never_shown() {
        let mut r = http();
        r.proxy = Some("http://user:hunter2@127.0.0.1:3128/x".into());
        let e = refused(r.clone());
        assert!(!e.contains("hunter2"), "{e}");
        r.proxy = Some("http://user:hunter2@127.0.0.1:3128".into());
        let mut c = crate::CollectorConfig {
            targets: vec![std::sync::Arc::new(r.parse("t").unwrap())],
            ..crate::CollectorConfig::default()
        };
        c.mask();
        let TargetSpec::Http(h) = &c.targets[0].spec else {
            panic!()
        };
        let shown = h.options().proxy.as_ref().unwrap().to_string();
        assert!(!shown.contains("hunter2") && shown.contains("***"), "{shown}");
    }
}
