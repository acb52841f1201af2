//! Trace context on gRPC calls: every client call ([`super::Channel`]) runs
//! in a client span whose W3C context it sends as `traceparent` /
//! `tracestate` metadata; every server ([`super::serve`]) answers each call
//! in a server span that continues the caller's trace when the metadata
//! carries a valid one (a malformed, forged-looking or oversized value
//! starts a new trace, never an error), as work of its service
//! ([`crate::telemetry::in_service`]).

use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::task::futures::TaskLocalFuture;
use tonic::codegen::http::Request;
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::telemetry::{self, propagate};

/// The method of a call's path (`pantau.v1.X/Method`), the spans' `otel.name`.
fn method(path: &str) -> &str {
    path.trim_start_matches('/')
}

/// A server span: a root unless the caller's context is set as its parent.
fn server_span(path: &str) -> tracing::Span {
    let method = method(path);
    tracing::info_span!(
        parent: None,
        "grpc.server",
        otel.name = method,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.method = method
    )
}

/// The client span of a call to `req`'s method, with its context written
/// into `req`'s metadata unless the caller set a `traceparent` itself.
pub fn client_span<B>(req: &mut Request<B>) -> tracing::Span {
    let method = method(req.uri().path());
    let span = tracing::info_span!(
        "grpc.client",
        otel.name = method,
        otel.kind = "client",
        rpc.system = "grpc",
        rpc.method = method
    );
    if !req.headers().contains_key(propagate::TRACEPARENT) {
        let _g = span.enter();
        propagate::inject_http(req.headers_mut());
    }
    span
}

/// The layer in front of every Pantau gRPC server (outside the guard, so a
/// refused call is traced too).
#[derive(Debug, Clone)]
pub struct TraceLayer {
    service: Arc<str>,
}

impl TraceLayer {
    /// Calls are work of `service`.
    pub fn new(service: &str) -> Self {
        Self {
            service: service.into(),
        }
    }
}

impl<S> tower::Layer<S> for TraceLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Traced {
            inner,
            service: Arc::clone(&self.service),
        }
    }
}

/// A service behind the [`TraceLayer`].
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
    service: Arc<str>,
}

impl<S, B> tower::Service<Request<B>> for Traced<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TaskLocalFuture<Arc<str>, Instrumented<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let service = Arc::clone(&self.service);
        let fut = telemetry::by_service::in_service_sync(Arc::clone(&service), || {
            let span = server_span(req.uri().path());
            propagate::set_parent_from_http(&span, req.headers());
            let fut = span.in_scope(|| self.inner.call(req));
            fut.instrument(span)
        });
        telemetry::in_service(service, fut)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use opentelemetry::trace::{SpanId, SpanKind, TraceContextExt};
    use opentelemetry_sdk::trace::SpanData;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    use tracing::Instrument;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use crate::bus::memory::MemoryBus;
    use crate::grpc::{Channel, Credentials, client::Tls};
    use crate::service::Context;
    use crate::telemetry::testing::{Collected, install};

    const METHOD: &str = "grpc.health.v1.Health/Check";

    /// The server span of the `n`th call (they end in call order).
    async fn server_span(spans: &Collected, n: usize) -> (String, SpanData) {
        for _ in 0..200 {
            let found: Vec<_> = spans
                .spans()
                .into_iter()
                .filter(|(_, s)| s.name == METHOD && s.span_kind == SpanKind::Server)
                .collect();
            if let Some(s) = found.get(n) {
                return s.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no server span #{n}: {:?}", spans.spans());
    }

    /// A real tonic server (`grpc::serve`, health only) on loopback and a
    /// client `Channel` to it: the call continues the caller's trace across
    /// the wire, and a hostile `traceparent` starts a new trace without
    /// failing the call.
    #[tokio::test]
    async fn calls_carry_the_trace_and_hostile_metadata_starts_a_new_one() {
        let (_subscriber, _provider, spans) = install();
        let dir = tempfile::tempdir().unwrap();
        let cfg = pantau_config::Config {
            data_dir: dir.path().join("data"),
            ..pantau_config::Config::default()
        };
        cfg.validate().unwrap();
        let ctx = Context::new(Arc::new(cfg), Arc::new(MemoryBus::new())).service("traced");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let serving = {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                crate::grpc::serve(&ctx, listener, tonic::service::Routes::default(), &[], None).await
            })
        };
        let channel = Channel::lazy(&url, &Tls::default(), Credentials::None).unwrap();
        let mut client = HealthClient::new(channel);
        let req = || HealthCheckRequest { service: String::new() };

        // (c) One trace: caller → client span → server span.
        let caller = tracing::info_span!("caller");
        let trace_id = caller.context().span().span_context().trace_id();
        let answer = client.check(req()).instrument(caller.clone()).await;
        assert_eq!(answer.unwrap().into_inner().status, 1, "SERVING");
        let (_, server) = server_span(&spans, 0).await;
        drop(caller);
        let all = spans.spans();
        let client_span = all
            .iter()
            .map(|(_, s)| s)
            .find(|s| s.name == METHOD && s.span_kind == SpanKind::Client)
            .expect("a client span");
        assert_eq!(
            server.span_context.trace_id(),
            trace_id,
            "the server continues the caller's trace"
        );
        assert_eq!(
            server.parent_span_id,
            client_span.span_context.span_id(),
            "the server's parent is the client span"
        );
        assert!(server.parent_span_is_remote);
        assert_eq!(client_span.span_context.trace_id(), trace_id);

        // (d) Hostile metadata: answered, and the server span is a new root.
        let hostile: Vec<String> = crate::telemetry::propagate::tests::hostile()
            .into_iter()
            .filter(|v| v.len() <= 8 * 1024)
            .chain([format!("00-{}-00f067aa0ba902b7-01", "ab".repeat(3_000))])
            .collect();
        let mut n = 1;
        for bad in &hostile {
            let Ok(v) = tonic::metadata::MetadataValue::try_from(bad.as_str()) else {
                continue;
            };
            let mut r = tonic::Request::new(req());
            r.metadata_mut().insert("traceparent", v.clone());
            r.metadata_mut().insert("tracestate", v);
            let what = crate::error::quote(bad);
            let answer = client.check(r).await;
            assert_eq!(answer.map(|a| a.into_inner().status).ok(), Some(1), "{what}");
            let (_, server) = server_span(&spans, n).await;
            n += 1;
            assert_eq!(server.parent_span_id, SpanId::INVALID, "a new root for {what}");
            assert_ne!(server.span_context.trace_id(), trace_id, "{what}");
        }
        // Bytes that are not text.
        let mut r = tonic::Request::new(req());
        let bytes = tonic::metadata::MetadataValue::try_from(&b"00-\xff\xfe\x80-01"[..]).unwrap();
        r.metadata_mut().insert("traceparent", bytes);
        assert!(client.check(r).await.is_ok(), "bytes that are not text are ignored");
        let (_, server) = server_span(&spans, n).await;
        assert_eq!(server.parent_span_id, SpanId::INVALID);
        assert!(n > 8, "every hostile value was sent: {n}");

        ctx.shutdown.cancel();
        serving.await.unwrap().unwrap();
    }
}
