//! Badges for READMEs, without login, for the targets on a public status
//! page only (any other id is a grey "unknown" badge with 404, so ids
//! cannot be probed):
//!
//! - `GET /badge/{target}/status.svg`: up, degraded (down from some
//!   locations) or down;
//! - `GET /badge/{target}/uptime/{7d|30d|90d}.svg`: from the rolled-up history;
//! - `GET /badge/{target}/latency.svg`: the mean of the locations' latest.
//!
//! Cached by clients and proxies for a minute.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Console;
use super::model::State as RowState;
use super::status::{days, is_public};

pub fn router() -> Router<Console> {
    Router::new()
        .route("/badge/{target}/status.svg", get(status))
        .route("/badge/{target}/uptime/{span}", get(uptime))
        .route("/badge/{target}/latency.svg", get(latency))
}

const GREEN: &str = "#2e9e44";
const YELLOW: &str = "#d9a400";
const RED: &str = "#d0342c";
const GREY: &str = "#777";

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A two-part badge, about 7 px per character.
pub fn svg(label: &str, message: &str, color: &str) -> String {
    let w = |s: &str| 10 + 7 * s.chars().count();
    let (lw, mw) = (w(label), w(message));
    let total = lw + mw;
    let (label, message) = (esc(label), esc(message));
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{label}: {message}"><title>{label}: {message}</title><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{mw}" height="20" fill="{color}"/><g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11"><text x="{lx}" y="14">{label}</text><text x="{mx}" y="14">{message}</text></g></svg>"##,
        lx = lw / 2,
        mx = lw + mw / 2,
    )
}

fn answer(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

fn unknown(label: &str) -> Response {
    answer(StatusCode::NOT_FOUND, svg(label, "unknown", GREY))
}

async fn status(State(c): State<Console>, Path(target): Path<String>) -> Response {
    if !is_public(&c, &target) {
        return unknown("status");
    }
    let latest = c.app.feed.latest_where(|t| t == target);
    let state = RowState::of(latest.get(&target).map_or(&[][..], Vec::as_slice));
    let (text, color) = match state {
        RowState::Up => ("up", GREEN),
        RowState::Partial => ("degraded", YELLOW),
        RowState::Down => ("down", RED),
        RowState::Pending => ("pending", GREY),
    };
    answer(StatusCode::OK, svg("status", text, color))
}

async fn uptime(State(c): State<Console>, Path((target, span)): Path<(String, String)>) -> Response {
    let days_back = match span.as_str() {
        "7d.svg" => 7,
        "30d.svg" => 30,
        "90d.svg" => 90,
        _ => return answer(StatusCode::NOT_FOUND, svg("uptime", "use 7d, 30d or 90d", GREY)),
    };
    let label = format!("uptime {days_back}d");
    if !is_public(&c, &target) {
        return unknown(&label);
    }
    let (days, _) = days(&c, &target).await;
    let (checks, up) = days
        .iter()
        .rev()
        .take(days_back)
        .fold((0u64, 0u64), |(n, u), d| (n + d.checks.0, u + d.checks.1));
    let Some(pct) = (checks > 0).then(|| up as f64 * 100.0 / checks as f64) else {
        return answer(StatusCode::OK, svg(&label, "no data", GREY));
    };
    let color = if pct >= 99.0 {
        GREEN
    } else if pct >= 95.0 {
        YELLOW
    } else {
        RED
    };
    answer(StatusCode::OK, svg(&label, &format!("{pct:.2}%"), color))
}

async fn latency(State(c): State<Console>, Path(target): Path<String>) -> Response {
    if !is_public(&c, &target) {
        return unknown("latency");
    }
    let latest = c.app.feed.latest_where(|t| t == target);
    let lat: Vec<f64> = latest
        .get(&target)
        .into_iter()
        .flatten()
        .filter_map(|r| r.latency.as_ref().and_then(pantau_core::time::from_duration))
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    if lat.is_empty() {
        return answer(StatusCode::OK, svg("latency", "no data", GREY));
    }
    let ms = lat.iter().sum::<f64>() / lat.len() as f64;
    answer(
        StatusCode::OK,
        svg(
            "latency",
            &format!("{ms:.0} ms"),
            if ms < 500.0 { GREEN } else { YELLOW },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges_escape_their_text() {
        let s = svg("status", "<up & \"away\">", GREEN);
        assert!(s.starts_with("<svg") && s.contains("&lt;up &amp; &quot;away&quot;&gt;"));
        assert!(!s.contains("<up"));
    }
}
