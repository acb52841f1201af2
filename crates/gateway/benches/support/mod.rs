//! What the gateway's benchmarks share: the WebSocket one here and the REST
//! one in `crates/pantau/benches/gateway.rs`, which includes this file by
//! path (it needs the alert engine, which the gateway's crate may not use).

use std::time::Duration;

use pantau_config::Config;
use pantau_core::service::Context;
use pantau_gateway::auth::{Keys, Scopes};

/// An environment variable's value, or `default` when unset or unreadable.
pub fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The benchmark's runtime, with rustls' ring provider installed.
pub fn runtime() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A gateway configuration for `dir`: logs at `warn`, a JWT secret, no rate
/// limit and room for 60,000 WebSocket clients.
pub fn config(dir: &std::path::Path) -> Config {
    let mut c = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    c.log.level = "warn".into();
    c.gateway.auth.jwt_secret = Some("bench-secret-bench-secret-bench-secret!!".into());
    // Every client shares one token: the per-client limit would refuse a
    // dashboard wall connecting at once, so it is off for the benchmark.
    c.gateway.rate_limit.requests_per_second = 0;
    c.gateway.dashboard.max_connections = 60_000;
    c
}

/// A token with every scope, valid for an hour.
pub fn token(c: &Config) -> String {
    let keys = Keys::load(&c.gateway.auth, &c.data_dir).expect("keys");
    keys.mint("bench", Scopes::all(), Duration::from_secs(3600))
        .expect("mint")
        .0
}

/// Runs the gateway on a free loopback port; returns once it accepts (or
/// after 4 s).
pub async fn start_gateway(ctx: &Context) -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(pantau_gateway::run(ctx.clone(), l));
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    addr
}
