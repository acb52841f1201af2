//! The consensus path in traces: each location's result a primary receives
//! gets a `sync.receive` span continuing the result's own trace (the
//! `trace_parent` the sync outbox wrote into it where it left the bus), and
//! each window's consensus a `sync.consensus` span (with
//! `sync.consensus.compute` and `sync.consensus.publish` below it) whose
//! parent is the result that decided it: the latest DOWN result of the
//! window when there is one, else the latest result. The window's other
//! results are span links. So a majority page leads back to the check on
//! the dependent that made it.
//!
//! What is kept between the two is in memory and bounded
//! ([`MAX_WINDOWS`]); after a restart or a failover the windows already
//! received publish without a parent (a new trace).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use opentelemetry::trace::{SpanContext, TraceContextExt};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::store::Incoming;

/// Windows whose causes are remembered at most (the oldest go first).
pub const MAX_WINDOWS: usize = 50_000;
/// Links to a window's other results at most.
pub const MAX_LINKS: usize = 16;

#[derive(Debug, Default)]
struct Window {
    /// (checked at, the `sync.receive` span) of the latest DOWN result.
    down: Option<(i64, SpanContext)>,
    /// The same for the latest result of any status.
    any: Option<(i64, SpanContext)>,
    others: Vec<SpanContext>,
}

impl Window {
    fn add(&mut self, checked_ms: i64, up: bool, sc: SpanContext) {
        let later = |slot: &Option<(i64, SpanContext)>| slot.as_ref().is_none_or(|(at, _)| checked_ms >= *at);
        if !up && later(&self.down) {
            self.down = Some((checked_ms, sc.clone()));
        }
        if later(&self.any) {
            self.any = Some((checked_ms, sc.clone()));
        }
        if self.others.len() < MAX_LINKS {
            self.others.push(sc);
        }
    }
}

/// The causes of the windows not yet published, by (window start, target).
#[derive(Debug, Default)]
pub struct Causes {
    windows: Mutex<BTreeMap<(i64, String), Window>>,
}

impl Causes {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(i64, String), Window>> {
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A `sync.receive` span for each result of `batch` that carries a
    /// valid trace (others are not traced), remembered for its window.
    pub fn received(&self, instance: &str, batch: &[Incoming]) {
        for r in batch {
            let Some(parent) = pantau_core::telemetry::propagate::context_of(&r.trace_parent) else {
                continue;
            };
            let span = tracing::info_span!(
                parent: None,
                "sync.receive",
                instance,
                location = %r.location,
                target = %r.target_id,
                up = r.up,
                seq = r.seq
            );
            let _ = span.set_parent(parent);
            let sc = span.context().span().span_context().clone();
            if !sc.is_valid() {
                // No trace exporter: nothing to remember.
                continue;
            }
            let mut windows = self.lock();
            windows
                .entry((r.window_ms, r.target_id.clone()))
                .or_default()
                .add(r.checked_ms, r.up, sc);
            while windows.len() > MAX_WINDOWS {
                windows.pop_first();
            }
        }
    }

    /// The `sync.consensus` span of `target`'s window: a child of the
    /// result that decided it, linked to the others; a new trace when no
    /// result of the window was traced.
    pub fn consensus_span(&self, target: &str, window_ms: i64) -> tracing::Span {
        let span = tracing::info_span!(
            parent: None,
            "sync.consensus",
            target,
            window_ms,
            status = tracing::field::Empty,
            locations = tracing::field::Empty
        );
        let Some(w) = self.lock().remove(&(window_ms, target.to_owned())) else {
            return span;
        };
        let Some((_, cause)) = w.down.or(w.any) else {
            return span;
        };
        let parent = opentelemetry::Context::new().with_remote_span_context(cause.clone());
        let _ = span.set_parent(parent);
        for other in w.others.into_iter().filter(|o| o.span_id() != cause.span_id()) {
            span.add_link(other);
        }
        span
    }

    /// How many windows are remembered (for tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
