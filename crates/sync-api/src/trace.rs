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

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    fn result(target: &str, window_ms: i64, checked_ms: i64, up: bool, trace: u8) -> Incoming {
        Incoming {
            seq: checked_ms as u64,
            target_id: target.into(),
            location: "bdg".into(),
            up,
            latency_us: 1,
            checked_ms,
            window_ms,
            trace_parent: format!("00-{}-00f067aa0ba902b7-01", format!("{trace:02x}").repeat(16)),
        }
    }

    fn trace_of(span: &tracing::Span) -> String {
        span.context().span().span_context().trace_id().to_string()
    }

    #[test]
    fn the_latest_down_result_decides_else_the_latest_and_garbage_is_not_taken() {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let causes = Causes::default();
            let mut garbage = result("web", 0, 1_900, false, 4);
            garbage.trace_parent = "00-garbage".into();
            causes.received(
                "bdg-1",
                &[
                    result("web", 0, 1_000, true, 1),
                    result("web", 0, 1_500, false, 2),
                    result("web", 0, 1_800, true, 3),
                    garbage,
                    result("api", 0, 1_000, true, 5),
                    result("api", 0, 1_200, true, 6),
                ],
            );
            assert_eq!(causes.len(), 2);
            // The DOWN result at 1.5 s decides, not the later UP nor the garbage.
            assert_eq!(trace_of(&causes.consensus_span("web", 0)), "02".repeat(16));
            // All UP: the latest.
            assert_eq!(trace_of(&causes.consensus_span("api", 0)), "06".repeat(16));
            assert!(causes.is_empty(), "a published window is forgotten");
            // Nothing traced: a new trace.
            let fresh = trace_of(&causes.consensus_span("web", 0));
            assert_ne!(fresh, "02".repeat(16));
            // Bounded: the oldest windows go first.
            let many: Vec<Incoming> = (0..MAX_WINDOWS as i64 + 10)
                .map(|w| result("web", w, w, true, 7))
                .collect();
            causes.received("bdg-1", &many);
            assert_eq!(causes.len(), MAX_WINDOWS);
            assert_ne!(trace_of(&causes.consensus_span("web", 0)), "07".repeat(16));
            assert_eq!(trace_of(&causes.consensus_span("web", 10)), "07".repeat(16));
        });
    }
}
