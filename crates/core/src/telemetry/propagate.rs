//! W3C trace context (`traceparent`, `tracestate`) across every door: bus
//! message headers, gRPC metadata and HTTP headers, and a bare
//! `traceparent` string kept with a record (a notification, a buffered
//! check result).
//!
//! What arrives is untrusted: a value that is not text, longer than
//! [`MAX_VALUE`], malformed or naming the invalid all-zero trace is
//! ignored, and the span it was meant to parent starts a new trace. Nothing
//! here fails or panics on input.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Message headers as they travel on the bus.
pub type Headers = BTreeMap<String, String>;

/// The longest `traceparent` or `tracestate` value read (a valid
/// `traceparent` has 55 characters; W3C asks to carry 512 of `tracestate`).
pub const MAX_VALUE: usize = 1024;

/// The header that carries the trace.
pub const TRACEPARENT: &str = "traceparent";

fn propagator() -> TraceContextPropagator {
    TraceContextPropagator::new()
}

struct MapInjector<'a>(&'a mut Headers);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct MapExtractor<'a>(&'a Headers);

impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| v.len() <= MAX_VALUE)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct HttpInjector<'a>(&'a mut HeaderMap);

impl Injector for HttpInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(key.as_bytes()), HeaderValue::from_str(&value)) {
            self.0.insert(k, v);
        }
    }
}

struct HttpExtractor<'a>(&'a HeaderMap);

impl Extractor for HttpExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .filter(|v| v.len() <= MAX_VALUE)
            .and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// The context, only when it carries a valid span context.
fn valid(cx: opentelemetry::Context) -> Option<opentelemetry::Context> {
    cx.span().span_context().is_valid().then_some(cx)
}

/// Writes the current span's W3C trace context (`traceparent`, `tracestate`)
/// into `headers` (nothing when there is no sampled trace).
pub fn inject_context(headers: &mut Headers) {
    let cx = tracing::Span::current().context();
    propagator().inject_context(&cx, &mut MapInjector(headers));
}

/// The trace context carried by `headers` (an empty context when none or
/// when it is not valid: never the current one, which `extract` falls back to).
pub fn extract_context(headers: &Headers) -> opentelemetry::Context {
    propagator().extract_with_context(&opentelemetry::Context::new(), &MapExtractor(headers))
}

/// Makes `span` a child of the trace carried in `headers`, if it carries a
/// valid one; otherwise `span` keeps its own parent (or starts a trace).
pub fn set_parent_from(span: &tracing::Span, headers: &Headers) {
    if headers.contains_key(TRACEPARENT)
        && let Some(cx) = valid(extract_context(headers))
    {
        let _ = span.set_parent(cx);
    }
}

/// The current span's `traceparent`, if there is a trace to continue.
pub fn traceparent() -> Option<String> {
    let mut h = Headers::new();
    inject_context(&mut h);
    h.remove(TRACEPARENT)
}

/// The valid trace context a stored `traceparent` names, if any.
pub fn context_of(traceparent: &str) -> Option<opentelemetry::Context> {
    if traceparent.is_empty() || traceparent.len() > MAX_VALUE {
        return None;
    }
    let h = Headers::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    valid(extract_context(&h))
}

/// Makes `span` a child of the stored `traceparent`, if it is valid.
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: &str) {
    if let Some(cx) = context_of(traceparent) {
        let _ = span.set_parent(cx);
    }
}

/// Writes the current span's trace context into HTTP headers (or gRPC
/// metadata, which travels as HTTP/2 headers).
pub fn inject_http(headers: &mut HeaderMap) {
    let cx = tracing::Span::current().context();
    propagator().inject_context(&cx, &mut HttpInjector(headers));
}

/// The valid trace context carried by HTTP headers (or gRPC metadata), if any.
pub fn extract_http(headers: &HeaderMap) -> Option<opentelemetry::Context> {
    if !headers.contains_key(TRACEPARENT) {
        return None;
    }
    valid(propagator().extract_with_context(&opentelemetry::Context::new(), &HttpExtractor(headers)))
}

/// Makes `span` a child of the trace carried by HTTP headers, if valid.
pub fn set_parent_from_http(span: &tracing::Span, headers: &HeaderMap) {
    if let Some(cx) = extract_http(headers) {
        let _ = span.set_parent(cx);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    fn traced<T>(f: impl FnOnce() -> T) -> T {
        let provider = SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, f)
    }

    #[test]
    fn trace_context_round_trips_through_headers() {
        traced(|| {
            let span = tracing::info_span!("publish");
            let _g = span.enter();
            let mut h = Headers::new();
            inject_context(&mut h);
            let tp = h.get(TRACEPARENT).expect("traceparent injected").clone();
            assert!(tp.starts_with("00-"), "{tp}");
            let cx = extract_context(&h);
            let sent = span.context().span().span_context().trace_id();
            assert_eq!(cx.span().span_context().trace_id(), sent);
            assert_eq!(traceparent().as_deref(), Some(tp.as_str()));
            let mut http = HeaderMap::new();
            inject_http(&mut http);
            let back = extract_http(&http).expect("the HTTP headers carry the trace");
            assert_eq!(back.span().span_context().trace_id(), sent);
        });
    }

    /// What a hostile or broken peer may send as `traceparent`.
    pub(crate) fn hostile() -> Vec<String> {
        vec![
            String::new(),
            "garbage".to_owned(),
            "00-".to_owned(),
            // The invalid all-zero trace and span ids.
            "00-00000000000000000000000000000000-0000000000000000-01".to_owned(),
            // Version ff is forbidden; an upper-case id is malformed.
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra-fields".to_owned(),
            "\u{0}\u{1}\u{7f}-é-ü".to_owned(),
            format!("00-{}-00f067aa0ba902b7-01", "a".repeat(100_000)),
            "x".repeat(1 << 20),
        ]
    }

    #[test]
    fn hostile_traceparents_are_ignored_everywhere() {
        traced(|| {
            for bad in hostile() {
                let what = crate::error::quote(&bad);
                assert!(context_of(&bad).is_none(), "{what}");
                let h = Headers::from([
                    (TRACEPARENT.to_owned(), bad.clone()),
                    ("tracestate".to_owned(), bad.clone()),
                ]);
                // The span keeps the parent it had: the input is not taken.
                let parent = tracing::info_span!("handler");
                let _g = parent.enter();
                let span = tracing::info_span!("consume");
                set_parent_from(&span, &h);
                set_parent_from_traceparent(&span, &bad);
                let own = parent.context().span().span_context().trace_id();
                assert_eq!(span.context().span().span_context().trace_id(), own, "{what}");
                let mut http = HeaderMap::new();
                if let Ok(v) = HeaderValue::from_str(&bad) {
                    http.insert(TRACEPARENT, v);
                    assert!(extract_http(&http).is_none(), "{what}");
                }
            }
            // Bytes that are not text in an HTTP header.
            let mut http = HeaderMap::new();
            http.insert(TRACEPARENT, HeaderValue::from_bytes(b"00-\xff\xfe-01").unwrap());
            assert!(extract_http(&http).is_none());
        });
    }

    #[test]
    fn a_valid_traceparent_is_taken() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = context_of(tp).expect("valid");
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(cx.span().span_context().is_remote());
    }
}
