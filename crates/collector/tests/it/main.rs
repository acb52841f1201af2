//! The collector as a library: its gRPC service and results on the bus over
//! the in-process bus, and target state persisted in SQLite and PostgreSQL.

#![allow(
    clippy::many_single_char_names,
    clippy::field_reassign_with_default,
    clippy::assigning_clones
)]

mod backlog;
mod checks;
mod contract;
mod grpc;
mod grpc_health;
mod http_direct;
mod http_options;
mod kafka;
mod kafka_security;
mod mail;
mod maintenance;
mod mqtt;
mod panics;
mod pause;
mod redis;
mod routeros;
mod routers;
mod snmpsim;
mod sql;
mod state;
mod steps;
mod targets;
mod traffic;
mod trust;
mod udp_ssh;
mod websocket;

/// Runs `f` to its end on a runtime of this thread, with a metrics recorder
/// local to it; returns what `f` returned and what it recorded.
pub(crate) fn recorded<T>(f: impl std::future::Future<Output = T>) -> (T, metrics_util::debugging::Snapshotter) {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = metrics::with_local_recorder(&recorder, || rt.block_on(f));
    (out, snapshotter)
}

/// Shuts the collector of `ctx` down and waits up to 5 s for `run` (its
/// `pantau_collector::run`) to end without error.
pub(crate) async fn stop_collector(
    ctx: &pantau_core::service::Context,
    run: tokio::task::JoinHandle<Result<(), pantau_collector::CollectorError>>,
) {
    ctx.shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(5), run)
        .await
        .expect("the collector stops")
        .unwrap()
        .expect("the collector stops without error");
}
