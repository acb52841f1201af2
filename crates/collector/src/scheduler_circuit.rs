//! A result's message bound, and the DOWN result of a target whose breaker
//! is open. Part of [`crate::scheduler`].

use std::time::{Duration, SystemTime};

use pantau_proto::v1::FailureReason;
use tokio::time::Instant;

use super::{Entry, MAX_MESSAGE};
use crate::checks::Outcome;
use crate::last_cert;

/// `message` cut to [`MAX_MESSAGE`] characters.
pub(super) fn bounded(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE) {
        None => message.to_owned(),
        Some((end, _)) => format!("{}…", &message[..end]),
    }
}

/// The DOWN result of a target whose breaker is open: the last real
/// failure's reason, its message quoted once, and the last certificate a
/// check read (marked `last_known`, its days counted to now), so the expiry
/// stays known exactly while the service is down. Its message starts with
/// `circuit open`: the alert engine's dependencies tell it from a check
/// that ran by that (`alert-engine/src/deps.rs`).
pub(super) fn circuit_open(entry: &Entry, retry_at: Instant) -> Outcome {
    let rare = entry
        .last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .rare
        .as_deref()
        .cloned()
        .unwrap_or_default();
    let (reason, last) = rare.failure.unwrap_or((FailureReason::Internal, String::new()));
    let known = rare.certificate;
    let wait = retry_at.saturating_duration_since(Instant::now());
    let outcome = Outcome::down(
        Duration::ZERO,
        reason,
        format!(
            "circuit open, not probing for {}s (last failure: {last})",
            wait.as_secs()
        ),
    );
    match known {
        Some(detail) => outcome.with_detail(last_cert::last_known(detail, SystemTime::now())),
        None => outcome,
    }
}
