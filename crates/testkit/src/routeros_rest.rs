//! The RouterOS v7 REST API of [`super::RouterOsSim`], from the same state:
//! `GET /rest/<menu>` with basic auth; every value is a string; query
//! parameters filter rows (`dst-address=0.0.0.0/0`) and `.proplist` picks
//! properties; `system/*` menus answer one object, the others a list.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{ROUTEROS_PASSWORD, ROUTEROS_USER, Shared, lock, select};

/// HTTPS: a TCP listener whose connections pass a TLS handshake first
/// (a failed handshake is dropped and the next connection accepted).
pub(super) struct TlsListener {
    pub(super) inner: TcpListener,
    pub(super) acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.inner.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

pub(super) async fn serve<L: axum::serve::Listener>(listener: L, state: Shared)
where
    L::Addr: std::fmt::Debug,
{
    let app = axum::Router::new().route("/rest/{*menu}", get(menu)).with_state(state);
    let _ = axum::serve(listener, app).await;
}

fn authorized(headers: &HeaderMap) -> bool {
    let want = base64::engine::general_purpose::STANDARD.encode(format!("{ROUTEROS_USER}:{ROUTEROS_PASSWORD}"));
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        == Some(want.as_str())
}

async fn menu(
    State(state): State<Shared>,
    Path(menu): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"RouterOS\"")],
            axum::Json(json!({"error": 401, "message": "Unauthorized"})),
        )
            .into_response();
    }
    let Some(rows) = lock(&state).menu(menu.trim_end_matches('/')) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": 400, "message": "Bad Request", "detail": "no such command"})),
        )
            .into_response();
    };
    let filters: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| *k != ".proplist")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let rows = select(rows, &filters, query.get(".proplist").map(String::as_str));
    let object = |r: Vec<(String, String)>| {
        Value::Object(r.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<Map<_, _>>())
    };
    let body = if menu.starts_with("system/") {
        rows.into_iter().next().map_or(Value::Object(Map::new()), object)
    } else {
        Value::Array(rows.into_iter().map(object).collect())
    };
    axum::Json(body).into_response()
}
