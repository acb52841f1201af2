//! SIGINT/SIGTERM into a [`CancellationToken`]; a second signal exits at once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Cancels the returned token on the first SIGINT or SIGTERM; on a second,
/// the process exits with status 130 without draining.
pub fn on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; draining (send the signal again to exit at once)");
        t.cancel();
        wait_for_signal().await;
        tracing::warn!("second signal: exiting without draining");
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the process");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Waits up to `grace` for the tracked tasks to finish; says whether they did.
pub async fn drain(tracker: &TaskTracker, grace: Duration) -> bool {
    tracker.close();
    let drained = tokio::time::timeout(grace, tracker.wait()).await.is_ok();
    if drained {
        tracing::info!("all tasks drained");
    } else {
        tracing::warn!(
            grace_seconds = grace.as_secs_f64(),
            remaining = tracker.len(),
            "tasks still running after the grace period; exiting anyway"
        );
    }
    drained
}
