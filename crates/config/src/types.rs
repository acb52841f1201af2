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

#[cfg(test)]
mod tests {
    use super::check_http_url;

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
