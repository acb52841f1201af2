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
