//! The targets' HTTP server (a child process), and what the bench sees: webhooks and WebSocket events.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::{lock, runtime};

type Down = Arc<[AtomicUsize; 2]>; // from, count

pub async fn target(State(d): State<Down>, Path(i): Path<usize>) -> (StatusCode, &'static str) {
    let (from, count) = (d[0].load(Relaxed), d[1].load(Relaxed));
    if i >= from && i < from + count {
        (StatusCode::SERVICE_UNAVAILABLE, "down")
    } else {
        (StatusCode::OK, "ok")
    }
}

pub async fn control(State(d): State<Down>, Query(q): Query<HashMap<String, String>>) -> &'static str {
    let num = |k: &str| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
    d[1].store(0, Relaxed);
    d[0].store(num("from"), Relaxed);
    d[1].store(num("count"), Relaxed);
    "ok"
}

/// `GET /t/<i>`: 200 "ok", or 503 for `from <= i < from + count` as set by
/// `POST /control/down?from=&count=`. Prints `port <p>`; exits when stdin closes.
pub fn http_server() {
    runtime().block_on(async {
        let down: Down = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let app = Router::new()
            .route("/t/{i}", get(target))
            .route("/control/down", post(control))
            .with_state(down);
        let l = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("http-server: cannot bind 127.0.0.1: {e}");
                std::process::exit(1);
            }
        };
        println!("port {}", l.local_addr().map_or(0, |a| a.port()));
        let eof = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new()));
        tokio::select! {
            r = axum::serve(l, app) => if let Err(e) = r { eprintln!("http-server: {e}") },
            _ = eof => {}
        }
        std::process::exit(0);
    });
}

/// The child process serving the targets; killed on drop.
pub struct TargetServer {
    pub child: Child,
    pub port: u16,
}

impl TargetServer {
    pub fn start() -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
        let mut child = Command::new(exe)
            .env("BENCH_ROLE", "http-server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the HTTP server process: {e}"))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        let port = line
            .strip_prefix("port ")
            .and_then(|p| p.trim().parse().ok())
            .filter(|p| *p > 0);
        let mut s = Self { child, port: 0 };
        s.port = port.ok_or(format!("the HTTP server process did not say its port (said {line:?})"))?;
        Ok(s)
    }
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- what this process sees: webhooks and WebSocket events ----

#[derive(Default)]
pub struct Seen {
    /// Targets h0..h<armed> are being taken down; 0 = none.
    pub armed: AtomicUsize,
    /// Per target index: `checked_at` of its first DOWN result on the WebSocket.
    pub downs: Mutex<HashMap<usize, SystemTime>>,
    /// Per target index: arrival of its first `bench-down` firing webhook.
    pub hooks: Mutex<HashMap<usize, SystemTime>>,
    pub ws_events: AtomicU64,
}

impl Seen {
    pub fn armed(&self, target: Option<&str>) -> Option<usize> {
        let i: usize = target?.strip_prefix('h')?.parse().ok()?;
        (i < self.armed.load(Relaxed)).then_some(i)
    }
}

pub async fn hook(State(seen): State<Arc<Seen>>, body: Bytes) -> StatusCode {
    let at = SystemTime::now();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
        && v["status"] == "firing"
    {
        for a in v["notification"]["alerts"].as_array().into_iter().flatten() {
            if a["name"] == "bench-down"
                && let Some(i) = seen.armed(a["labels"]["target"].as_str())
            {
                lock(&seen.hooks).entry(i).or_insert(at);
            }
        }
    }
    StatusCode::OK
}

pub async fn start_hook(seen: Arc<Seen>) -> Result<u16, String> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("webhook bind: {e}"))?;
    let port = l.local_addr().map_err(|e| e.to_string())?.port();
    tokio::spawn(async move { axum::serve(l, Router::new().route("/hook", post(hook)).with_state(seen)).await });
    Ok(port)
}

/// Counts WebSocket events; records the first DOWN `checked_at` of armed targets.
pub async fn watch(
    mut ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    seen: Arc<Seen>,
) {
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(t) = msg else { continue };
        seen.ws_events.fetch_add(1, Relaxed);
        if seen.armed.load(Relaxed) == 0 || !t.contains(r#""status":"down""#) {
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) else {
            continue;
        };
        let at = v["data"]["checked_at"]
            .as_str()
            .and_then(|s| humantime::parse_rfc3339(s).ok());
        if let (Some(i), Some(at)) = (seen.armed(v["data"]["target_id"].as_str()), at) {
            lock(&seen.downs).entry(i).or_insert(at);
        }
    }
}
