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
