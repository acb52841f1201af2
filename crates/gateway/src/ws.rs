//! The WebSocket hub: `/api/v1/monitoring/events`.
//!
//! Each client gets every event as a JSON text frame
//! (`{"type": "check_result", "data": {...}}`), a ping every
//! `gateway.dashboard.ping_interval`, and is closed after
//! `gateway.dashboard.idle_timeout` without a frame from it. Beyond
//! `gateway.dashboard.max_connections` new clients get 503.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use pantau_core::health::ApiError;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::AppState;
use crate::metrics as m;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/monitoring/events", get(upgrade))
}

async fn upgrade(State(s): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let Ok(slot) = Arc::clone(&s.ws_slots).try_acquire_owned() else {
        ::metrics::counter!(m::WS_REJECTED).increment(1);
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            format!(
                "the hub has its maximum of {} clients (gateway.dashboard.max_connections)",
                s.ctx.config.gateway.dashboard.max_connections
            ),
        )
        .into_response();
    };
    ws.on_upgrade(move |socket| client(socket, s, slot))
}

async fn client(socket: WebSocket, s: AppState, _slot: OwnedSemaphorePermit) {
    let dash = &s.ctx.config.gateway.dashboard;
    let connected = ::metrics::gauge!(m::WS_CONNECTIONS);
    connected.increment(1.0);
    let (mut tx, mut rx) = socket.split();
    let mut events = s.feed.subscribe();
    let mut ping = tokio::time::interval_at(Instant::now() + dash.ping_interval, dash.ping_interval);
    let mut last_heard = Instant::now();
    let close = |code, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(text) => {
                    if tx.send(Message::Text(text.as_ref().into())).await.is_err() {
                        break;
                    }
                    ::metrics::counter!(m::WS_SENT).increment(1);
                }
                Err(RecvError::Lagged(n)) => {
                    ::metrics::counter!(m::WS_DROPPED).increment(n);
                }
                Err(RecvError::Closed) => break,
            },
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > dash.idle_timeout {
                    tracing::debug!("closing a silent websocket client");
                    let _ = tx.send(close(close_code::POLICY, "no pong within the idle timeout")).await;
                    break;
                }
                if tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            () = s.ctx.shutdown.cancelled() => {
                let _ = tx.send(close(close_code::AWAY, "server shutting down")).await;
                break;
            }
        }
    }
    connected.decrement(1.0);
}
