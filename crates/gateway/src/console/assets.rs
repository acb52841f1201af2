//! The console's assets, embedded in the binary: nothing is read from disk
//! or fetched from a CDN. Vendored files carry their version in the name
//! and are cached for a year; the console's own for five minutes.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `(name, content type, body, immutable)`.
const FILES: &[(&str, &str, &[u8], bool)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/console.css"),
        false,
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console.js"),
        false,
    ),
    (
        "net.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/net.js"),
        false,
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/admin.js"),
        false,
    ),
    (
        "htmx-2.0.11.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/htmx-2.0.11.min.js"),
        true,
    ),
    (
        "uplot-1.6.32.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/uplot-1.6.32.iife.min.js"),
        true,
    ),
    (
        "uplot-1.6.32.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/uplot-1.6.32.min.css"),
        true,
    ),
];

/// The asset `name`, or 404.
pub fn find(name: &str) -> Option<(&'static str, &'static [u8], bool)> {
    FILES.iter().find(|f| f.0 == name).map(|f| (f.1, f.2, f.3))
}

/// `GET /assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let Some((kind, body, immutable)) = find(&file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_and_unknown_names_are_not_found() {
        for f in FILES {
            assert!(!f.2.is_empty(), "{}", f.0);
        }
        assert!(find("htmx-2.0.11.min.js").is_some_and(|f| f.2));
        assert!(find("../Cargo.toml").is_none());
        assert!(find("").is_none());
    }
}
