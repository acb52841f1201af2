//! The WebSocket hub: `/api/v1/monitoring/events`.
//!
//! Each client gets the events it subscribed to as JSON text frames
//! (`{"type": "check_result", "data": {...}}`; types in [`crate::hub::TYPES`]).
//! It chooses at connect time with query parameters (browsers cannot set
//! headers): `?types=check_result,alert&target=web,r1&severity=critical`, and
//! at any time by sending `{"subscribe": ["alert"], "filters": {"target":
//! ["web"], "severity": ["critical"]}}` (answered `{"type": "subscribed"}`, or
//! `{"type": "error", ...}` naming what is wrong). `target`, `router` and
//! `resource` all filter on what an event is about. Without a choice a
//! client gets everything. A ping goes out every
//! `gateway.dashboard.ping_interval`; a client silent for
//! `gateway.dashboard.idle_timeout` is closed; beyond
//! `gateway.dashboard.max_connections` new clients get 503.

use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pantau_core::error::{ApiError, ErrorCode};
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::AppState;
use crate::hub::{Filter, TYPES};
use crate::input;
use crate::labels::Severity;
use crate::metrics as m;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/monitoring/events", get(upgrade))
}

/// Query parameters at connect time, comma-separated.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConnectQuery {
    /// Event types, comma-separated (spaces and empty items are ignored).
    #[param(schema_with = types_schema)]
    pub types: Option<String>,
    /// Target ids, comma-separated.
    pub target: Option<String>,
    /// Router ids, comma-separated.
    pub router: Option<String>,
    /// Any resource an event is about, comma-separated.
    pub resource: Option<String>,
    /// Severities, comma-separated (spaces and empty items are ignored).
    #[param(schema_with = severities_schema)]
    pub severity: Option<String>,
}

/// Comma-separated `choices`, where spaces and empty items are ignored.
fn loose_list(choices: &[&str]) -> String {
    let one = choices.join("|");
    format!("^ *(({one}) *)?(, *(({one}) *)?)*$")
}

fn types_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    input::schema(input::pattern_schema(loose_list(TYPES), "event types, comma-separated"))
}

fn severities_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    let choices = [Severity::Info, Severity::Warning, Severity::Critical].map(Severity::as_str);
    input::schema(input::pattern_schema(
        loose_list(&choices),
        "severities, comma-separated",
    ))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(upgrade))]
pub struct Doc;

fn split(v: Option<&String>) -> Option<Vec<String>> {
    v.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

impl ConnectQuery {
    fn filter(&self) -> Result<Filter, String> {
        let resources: Vec<String> = [&self.target, &self.router, &self.resource]
            .into_iter()
            .filter_map(|v| split(v.as_ref()))
            .flatten()
            .collect();
        Filter::build(
            split(self.types.as_ref()),
            Some(resources),
            split(self.severity.as_ref()),
        )
    }
}

/// A client's message: `{"subscribe": [...], "filters": {...}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeMessage {
    subscribe: Option<Vec<String>>,
    #[serde(default)]
    filters: Filters,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Filters {
    target: Option<Vec<String>>,
    router: Option<Vec<String>>,
    resource: Option<Vec<String>>,
    severity: Option<Vec<String>>,
}

fn parse_subscribe(text: &str) -> Result<Filter, String> {
    let m: SubscribeMessage = serde_json::from_str(text).map_err(|e| format!("not a subscribe message: {e}"))?;
    let resources: Vec<String> = [m.filters.target, m.filters.router, m.filters.resource]
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    Filter::build(m.subscribe, Some(resources), m.filters.severity)
}

/// The real-time event stream (WebSocket). Authenticate with the bearer
/// header or `?token=`; subscribe with these parameters or later with
/// `{"subscribe": [...], "filters": {...}}` messages.
#[utoipa::path(get, path = "/api/v1/monitoring/events", tag = "events", params(ConnectQuery),
    security(("bearer" = []), ("query_token" = [])),
    responses((status = 101, description = "switching to WebSocket"),
        (status = 426, description = "not a WebSocket upgrade request"),
        (status = 503, description = "at gateway.dashboard.max_connections")))]
async fn upgrade(
    State(s): State<AppState>,
    q: Result<Query<ConnectQuery>, axum::extract::rejection::QueryRejection>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            return ApiError::new(ErrorCode::InvalidArgument, e.body_text())
                .reason("invalid_subscription")
                .into_response();
        }
    };
    let filter = match q.filter() {
        Ok(f) => f,
        Err(e) => {
            return ApiError::new(ErrorCode::InvalidArgument, e)
                .reason("invalid_subscription")
                .into_response();
        }
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            let mut r = ApiError::new(
                ErrorCode::FailedPrecondition,
                format!("this is a WebSocket: {}", e.body_text()),
            )
            .reason("upgrade_required")
            .status(StatusCode::UPGRADE_REQUIRED)
            .into_response();
            r.headers_mut().insert(
                axum::http::header::UPGRADE,
                axum::http::HeaderValue::from_static("websocket"),
            );
            return r;
        }
    };
    let Ok(slot) = Arc::clone(&s.ws_slots).try_acquire_owned() else {
        ::metrics::counter!(m::WS_REJECTED).increment(1);
        return ApiError::new(
            ErrorCode::Unavailable,
            format!(
                "the hub has its maximum of {} clients (gateway.dashboard.max_connections)",
                s.ctx.config.gateway.dashboard.max_connections
            ),
        )
        .reason("too_many_connections")
        .into_response();
    };
    // Clients send little: a small read buffer keeps 10,000 connections in
    // tens of megabytes rather than the default 128 KiB each.
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| client(socket, s, slot, filter))
}

async fn client(socket: WebSocket, s: AppState, _slot: OwnedSemaphorePermit, filter: Filter) {
    let dash = &s.ctx.config.gateway.dashboard;
    let connected = ::metrics::gauge!(m::WS_CONNECTIONS);
    let dropped = ::metrics::counter!(m::WS_DROPPED);
    connected.increment(1.0);
    let member = s.feed.hub().join(filter);
    // From here the publisher writes to the socket itself when it has room;
    // this task writes what it had not, reads the client, pings and closes.
    let queue = &member.queue;
    queue.attach(socket);
    let mut ping = tokio::time::interval_at(Instant::now() + dash.ping_interval, dash.ping_interval);
    let mut last_heard = Instant::now();
    let close = |code, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    // Made once: a `cancelled()` made at every turn of the loop would join
    // and leave the token's waiter list (one lock shared by every client).
    let shutdown = s.ctx.shutdown.cancelled();
    tokio::pin!(shutdown);
    'client: loop {
        tokio::select! {
            () = queue.ready.notified() => {
                // A client whose socket takes nothing within the idle timeout
                // is stuck, not slow: it is closed and what it missed counted.
                match within(dash.idle_timeout, std::future::poll_fn(|cx| queue.pump(cx))).await {
                    Some(Ok(())) => {}
                    Some(Err(_)) => break 'client,
                    None => {
                        dropped.increment(queue.len() as u64 + queue.take_dropped());
                        tracing::debug!("closing a websocket client that takes nothing");
                        break 'client;
                    }
                }
                let lost = queue.take_dropped();
                if lost > 0 {
                    dropped.increment(lost);
                }
            },
            incoming = std::future::poll_fn(|cx| queue.poll_next(cx)) => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    let reply = match parse_subscribe(&text) {
                        Ok(f) => {
                            member.set_filter(f);
                            serde_json::json!({"type": "subscribed"})
                        }
                        Err(e) => serde_json::json!({"type": "error", "error": {"code": "invalid_subscription", "message": e}}),
                    };
                    if queue.send(Message::Text(reply.to_string().into())).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > dash.idle_timeout {
                    tracing::debug!("closing a silent websocket client");
                    let _ = within(dash.idle_timeout, queue.send(close(close_code::POLICY, "no pong within the idle timeout"))).await;
                    break;
                }
                if within(dash.idle_timeout, queue.send(Message::Ping(Vec::new().into()))).await.is_none_or(|r| r.is_err()) {
                    break;
                }
            }
            () = &mut shutdown => {
                let _ = within(dash.idle_timeout, queue.send(close(close_code::AWAY, "server shutting down"))).await;
                break;
            }
        }
    }
    connected.decrement(1.0);
}

/// `fut` to its end, or `None` once `limit` has passed. The timer is armed
/// only when the first poll does not finish: a socket that takes a batch at
/// once (nearly always) costs no timer, where one per frame cost 100,000 timer
/// registrations a second at 10,000 clients.
async fn within<F: std::future::Future>(limit: std::time::Duration, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    if let Some(done) = futures::FutureExt::now_or_never(fut.as_mut()) {
        return Some(done);
    }
    tokio::time::timeout(limit, fut).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubEvent;

    fn ev(kind: &str, resource: &str, severity: &str) -> HubEvent {
        HubEvent {
            kind: kind.into(),
            resource: resource.into(),
            severity: severity.into(),
            json: "{}".into(),
            received: std::time::Instant::now(),
        }
    }

    #[test]
    fn filters_match_type_resource_and_severity() {
        let f = parse_subscribe(
            r#"{"subscribe": ["alert", "reboot"], "filters": {"router": ["r1"], "severity": ["critical"]}}"#,
        )
        .unwrap();
        assert!(f.matches(&ev("alert", "r1", "critical")));
        assert!(!f.matches(&ev("alert", "r1", "warning")));
        assert!(!f.matches(&ev("check_result", "r1", "critical")));
        assert!(!f.matches(&ev("reboot", "r2", "critical")));
        assert!(Filter::default().matches(&ev("check_result", "web", "")));
    }

    #[test]
    fn bad_subscriptions_name_the_problem() {
        assert!(
            parse_subscribe(r#"{"subscribe": ["alerts"]}"#)
                .unwrap_err()
                .contains("unknown event type `alerts`")
        );
        assert!(
            parse_subscribe(r#"{"subscribe": ["alert"], "filters": {"severity": ["high"]}}"#)
                .unwrap_err()
                .contains("high")
        );
        assert!(
            parse_subscribe(r#"{"subscribe": ["alert"], "bogus": 1}"#)
                .unwrap_err()
                .contains("bogus")
        );
        assert!(
            parse_subscribe("not json")
                .unwrap_err()
                .contains("not a subscribe message")
        );
        let q = ConnectQuery {
            types: Some("check_result, alert".into()),
            target: Some("web".into()),
            ..Default::default()
        };
        let f = q.filter().unwrap();
        assert!(f.matches(&ev("check_result", "web", "")));
        assert!(!f.matches(&ev("check_result", "db", "")));
    }

    #[tokio::test]
    async fn a_write_ends_in_time_or_is_given_up() {
        let limit = std::time::Duration::from_millis(30);
        assert_eq!(within(limit, async { 7 }).await, Some(7));
        // Finishing after a wait, within the limit, is not giving up.
        let late = async {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            8
        };
        assert_eq!(within(limit, late).await, Some(8));
        let started = Instant::now();
        assert_eq!(within(limit, std::future::pending::<u8>()).await, None);
        assert!(started.elapsed() >= limit);
    }
}
