//! Value types shared by every section: what a URL, a host:port or a piece
//! of free text must be before it is accepted.

/// Checks that `u` is an absolute `http://` or `https://` URL naming a host.
pub fn check_http_url(u: &str) -> Result<url::Url, &'static str> {
    let url = url::Url::parse(u).map_err(|_| "must be an absolute http:// or https:// URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an absolute http:// or https:// URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host");
    }
    Ok(url)
}

/// An absolute `http://` or `https://` URL naming a host, checked once and
/// kept as its normalised text: 16 bytes, where a parsed `url::Url` is 88
/// and a hundred thousand targets each keep one. [`HttpUrl::to_url`] parses
/// it again where a `url::Url` is needed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HttpUrl(Box<str>);

impl HttpUrl {
    /// The URL, parsed from its text (which parsed when it was checked).
    pub fn to_url(&self) -> Result<url::Url, url::ParseError> {
        url::Url::parse(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same URL with its password, if any, replaced by `***`.
    #[must_use]
    pub fn masked(&self) -> Self {
        match self.to_url() {
            Ok(mut u) if u.password().is_some() => {
                // Cannot fail: the URL has a host (it has a password).
                let _ = u.set_password(Some("***"));
                Self(String::from(u).into_boxed_str())
            }
            _ => self.clone(),
        }
    }
}

impl std::str::FromStr for HttpUrl {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_http_url(s).map(|u| Self(String::from(u).into_boxed_str()))
    }
}

impl TryFrom<String> for HttpUrl {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map_err(|why| format!("`{}` {why}", quote(&s)))
    }
}

impl From<HttpUrl> for String {
    fn from(u: HttpUrl) -> Self {
        u.0.into_string()
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `host:port` (`[v6]:port` for an IPv6 address): a non-empty host and a
/// port between 1 and 65535.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostPort {
    host: String,
    port: std::num::NonZeroU16,
}

impl HostPort {
    /// The host, without brackets around an IPv6 address.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port.get()
    }
}

impl std::str::FromStr for HostPort {
    type Err = &'static str;

    fn from_str(a: &str) -> Result<Self, Self::Err> {
        let (host, port) = a.rsplit_once(':').ok_or("must be host:port, e.g. 127.0.0.1:22")?;
        let bracketed = host.starts_with('[') && host.ends_with(']');
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err("must be host:port with a host");
        }
        if host.contains(':') && !bracketed {
            return Err("must put an IPv6 address in brackets: [::1]:22");
        }
        if host.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err("must be host:port with a host without spaces");
        }
        let port = port
            .parse::<std::num::NonZeroU16>()
            .map_err(|_| "must be host:port with a port between 1 and 65535")?;
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl TryFrom<String> for HostPort {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map_err(|why| format!("`{}` {why}", quote(&s)))
    }
}

impl From<HostPort> for String {
    fn from(a: HostPort) -> Self {
        a.to_string()
    }
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A duration with a floor and a ceiling, checked once where it is read.
macro_rules! bounded_duration {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(std::time::Duration);

        impl $name {
            pub const MIN: std::time::Duration = $min;
            pub const MAX: std::time::Duration = $max;

            /// `d` if it lies within `MIN..=MAX`; otherwise what is allowed.
            pub fn new(d: std::time::Duration) -> Result<Self, String> {
                if (Self::MIN..=Self::MAX).contains(&d) {
                    Ok(Self(d))
                } else {
                    Err(format!(
                        "must be between {} and {}",
                        crate::duration::format(Self::MIN),
                        crate::duration::format(Self::MAX)
                    ))
                }
            }

            pub fn get(self) -> std::time::Duration {
                self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                crate::duration::serialize(&self.0, s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = crate::duration::deserialize(d)?;
                Self::new(v).map_err(|why| {
                    serde::de::Error::custom(format!("`{}` {why}", crate::duration::format(v)))
                })
            }
        }
    };
}

bounded_duration!(
    /// How often a target is checked: 1 s to 30 days. The scheduler's timer
    /// wheel cannot hold a delay past about 795 days; before this bound,
    /// `interval: 3000d` passed validation and stopped every check.
    Interval,
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(30 * 86_400)
);
bounded_duration!(
    /// The longest a check may take: 10 ms to 30 days (and, checked across
    /// fields, no longer than the target's interval).
    Timeout,
    std::time::Duration::from_millis(10),
    std::time::Duration::from_secs(30 * 86_400)
);
bounded_duration!(
    /// How long past its interval a push target may stay silent: 0 to 30 days.
    Grace,
    std::time::Duration::ZERO,
    std::time::Duration::from_secs(30 * 86_400)
);

/// A regular expression, matched case-insensitively, compiled once where it
/// is read (YAML, environment or API) so a bad one is refused there with the
/// regex error, and never compiled again.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pattern(regex::Regex);

impl Pattern {
    /// The most memory one compiled pattern may take.
    const SIZE_LIMIT: usize = 1 << 20;

    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        regex::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .size_limit(Self::SIZE_LIMIT)
            .build()
            .map(Self)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

impl TryFrom<String> for Pattern {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Self::new(&s).map_err(|e| format!("`{}` must be a valid regex: {e}", quote(&s)))
    }
}

impl From<Pattern> for String {
    fn from(p: Pattern) -> Self {
        p.as_str().to_owned()
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Pattern {}

impl PartialOrd for Pattern {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pattern {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IPv4 or IPv6 prefix (`36.64.0.0/11`, `2001:db8::/32`); host bits are cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr(ipnet::IpNet);

impl Cidr {
    pub fn net(&self) -> ipnet::IpNet {
        self.0
    }

    pub fn contains(&self, ip: &std::net::IpAddr) -> bool {
        self.0.contains(ip)
    }

    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.trim().parse::<ipnet::IpNet>().map(|n| Self(n.trunc())).map_err(|_| {
            format!(
                "`{}` must be a CIDR prefix such as 36.64.0.0/11 or 2001:db8::/32",
                quote(s)
            )
        })
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> Self {
        c.0.to_string()
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An ISP's name as it appears in metric labels and JSON: 1–40 lower-case
/// letters, digits, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IspName(String);

impl IspName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IspName {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 40
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s))
        } else {
            Err(format!(
                "`{}` must be 1–40 lower-case letters, digits, `-` or `_` (it becomes a metric label)",
                quote(&s)
            ))
        }
    }
}

impl TryFrom<&str> for IspName {
    type Error = String;

    fn try_from(s: &str) -> Result<Self, String> {
        s.to_owned().try_into()
    }
}

impl From<IspName> for String {
    fn from(n: IspName) -> Self {
        n.0
    }
}

impl std::fmt::Display for IspName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Most bytes of a refused value an error message quotes.
pub const QUOTE_MAX: usize = 100;

/// `value` as an error message may quote it: at most [`QUOTE_MAX`] bytes (cut
/// at a character boundary), with how long the whole was.
pub fn quote(value: &str) -> std::borrow::Cow<'_, str> {
    if value.len() <= QUOTE_MAX {
        return value.into();
    }
    let mut end = QUOTE_MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &value[..end], value.len()).into()
}

/// The longest text each field of a target may hold, in bytes, and the most
/// entries each list or map may hold. One table, read by every input path
/// (YAML, environment, REST, gRPC), since they all validate here.
pub mod limits {
    /// `name`: a person's label for the target.
    pub const NAME: usize = 200;
    /// Entries of `labels`, `headers`, `conditions`, `expected_status`, `expected_answers`.
    pub const ENTRIES: usize = 32;
    /// A label key.
    pub const LABEL_KEY: usize = 64;
    /// A label value.
    pub const LABEL_VALUE: usize = 256;
    /// A URL.
    pub const URL: usize = 2048;
    /// A header name.
    pub const HEADER_NAME: usize = 128;
    /// A header value.
    pub const HEADER_VALUE: usize = 4096;
    /// An HTTP request body.
    pub const BODY: usize = 65_536;
    /// TCP `send` and `expect`, and every text a condition compares with.
    pub const PAYLOAD: usize = 4096;
    /// A host name, address, server name or DNS name (253 is DNS's own limit).
    pub const HOST: usize = 253;
    /// A push token.
    pub const TOKEN: usize = 128;
    /// A file path.
    pub const PATH: usize = 4096;
    /// `quorum`: locations that must agree on DOWN.
    pub const QUORUM: u32 = 64;
}

#[cfg(test)]
mod tests {
    use super::{QUOTE_MAX, check_http_url, quote};

    #[test]
    fn typed_values_refuse_bad_text_with_the_reason() {
        use super::{Cidr, IspName, Pattern};
        assert!(Pattern::try_from("^ether1$".to_owned()).unwrap().is_match("ETHER1"));
        let e = Pattern::try_from("(unclosed".to_owned()).unwrap_err();
        assert!(e.contains("unclosed group"), "{e}");
        assert_eq!("36.64.1.0/11".parse::<Cidr>().unwrap().to_string(), "36.64.0.0/11");
        assert!("2001:db8::/32".parse::<Cidr>().is_ok());
        for bad in ["36.64.0.0", "2001:db8::/129", "36.64.0.0/33", "x/1", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert!(IspName::try_from("telkom").is_ok());
        assert!(IspName::try_from("Not A Label").is_err());
        assert!(IspName::try_from("x".repeat(41).as_str()).is_err());
    }

    #[test]
    fn a_quote_is_bounded_and_cut_at_a_character() {
        assert_eq!(quote("short"), "short");
        let long = "é".repeat(1_000_000);
        let q = quote(&long);
        assert!(q.len() < QUOTE_MAX + 32, "{}", q.len());
        assert!(q.ends_with("(2000000 bytes)"), "{q}");
    }

    #[test]
    fn http_urls_need_a_scheme_and_a_host() {
        assert!(check_http_url("http://127.0.0.1:50053").is_ok());
        assert!(check_http_url("https://example.invalid/x?y=1").is_ok());
        assert!(check_http_url("127.0.0.1:50053").is_err());
        assert!(check_http_url("ftp://h/").is_err());
        assert!(check_http_url("http://").is_err());
        assert!(check_http_url("http:// spaces").is_err());
        assert!(check_http_url("").is_err());
    }
}
bounded_duration!(
    /// A step, a repeat or a reminder of an escalation policy
    /// (`notifier.escalations[]`): 1 s to 30 days.
    EscalationDelay,
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(30 * 86_400)
);
