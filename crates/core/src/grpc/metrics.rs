//! gRPC server metrics per method, with the names of grpc-ecosystem's
//! go-grpc-prometheus, so its dashboards and alerts work unchanged:
//!
//! - `grpc_server_started_total{grpc_service,grpc_method}`: calls received;
//! - `grpc_server_handled_total{grpc_service,grpc_method,grpc_code}`: calls
//!   finished, by status code name (`OK`, `NotFound`, `Unauthenticated`, …);
//! - `grpc_server_handling_seconds{grpc_service,grpc_method}`: from the call's
//!   arrival to its status (the end of a stream's last message).
//!
//! [`MetricsLayer`] is the outermost layer of every server ([`super::serve`]),
//! so calls the guard refuses are counted too. Label values come from the
//! known method set (`access`'s table, health and reflection): any other
//! path — a probe, a typo, a hostile client — is counted under `unknown`,
//! never under its own name. A call whose client went away before its status
//! is counted as `Canceled`.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::Instant;
use tonic::body::Body;
use tonic::codegen::http::{HeaderMap, Request, Response};

pub const STARTED: &str = "grpc_server_started_total";
pub const HANDLED: &str = "grpc_server_handled_total";
pub const HANDLING: &str = "grpc_server_handling_seconds";
/// The service and method of a path outside the known set.
pub const UNKNOWN: &str = "unknown";

/// Describes the metrics and registers every known method of `services`
/// at 0 (counters and histogram), so the first scrape has them.
pub fn describe(services: &[&str]) {
    metrics::describe_counter!(STARTED, metrics::Unit::Count, "gRPC calls started on the server");
    metrics::describe_counter!(
        HANDLED,
        metrics::Unit::Count,
        "gRPC calls completed on the server, by status code"
    );
    metrics::describe_histogram!(
        HANDLING,
        metrics::Unit::Seconds,
        "Time from a gRPC call's arrival to its status, on the server"
    );
    for (service, method) in super::access::methods().filter(|(s, _)| services.contains(s)) {
        metrics::counter!(STARTED, "grpc_service" => service, "grpc_method" => method).increment(0);
        metrics::counter!(HANDLED, "grpc_service" => service, "grpc_method" => method, "grpc_code" => "OK")
            .increment(0);
        // Registered without a sample: its buckets are on /metrics at 0.
        let _ = metrics::histogram!(HANDLING, "grpc_service" => service, "grpc_method" => method);
    }
}

/// `(service, method)` of a known path, else `(unknown, unknown)`.
pub fn labels(path: &str) -> (&'static str, &'static str) {
    super::access::known(path).unwrap_or((UNKNOWN, UNKNOWN))
}

/// go-grpc-prometheus' name of a status code (Go's `codes.Code.String()`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The status a header map states (`grpc-status`), if any; a value that is
/// not a number is `Unknown` (never a label of its own).
fn status_of(h: &HeaderMap) -> Option<tonic::Code> {
    let v = h.get("grpc-status")?;
    Some(
        v.to_str()
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
            .map_or(tonic::Code::Unknown, tonic::Code::from_i32),
    )
}

/// One call being measured; records once, at its status or when dropped.
struct Call {
    service: &'static str,
    method: &'static str,
    started: Instant,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: tonic::Code) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let (service, method) = (self.service, self.method);
        metrics::histogram!(HANDLING, "grpc_service" => service, "grpc_method" => method)
            .record(self.started.elapsed().as_secs_f64());
        metrics::counter!(HANDLED, "grpc_service" => service, "grpc_method" => method, "grpc_code" => code_name(code))
            .increment(1);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The response (or its body) went away before a status: the client left.
        self.finish(tonic::Code::Cancelled);
    }
}

/// Counts and times every call by method (see the module).
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsLayer;

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metered { inner }
    }
}

/// A service behind the [`MetricsLayer`].
#[derive(Debug, Clone)]
pub struct Metered<S> {
    inner: S,
}

impl<S> tower::Service<Request<Body>> for Metered<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = tower::BoxError> + Send,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = tower::BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, tower::BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let (service, method) = labels(req.uri().path());
        metrics::counter!(STARTED, "grpc_service" => service, "grpc_method" => method).increment(1);
        let mut call = Call {
            service,
            method,
            started: Instant::now(),
            done: false,
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = match fut.await {
                Ok(res) => res,
                Err(e) => {
                    call.finish(tonic::Code::Unknown);
                    return Err(e);
                }
            };
            // A trailers-only answer (every error, most refusals) states its
            // status in the head; otherwise it comes in the body's trailers.
            if let Some(code) = status_of(res.headers()) {
                call.finish(code);
                return Ok(res);
            }
            let (parts, body) = res.into_parts();
            let body = Body::new(Watched {
                inner: body,
                call: Some(call),
            });
            Ok(Response::from_parts(parts, body))
        })
    }
}

/// A response body that records its call at the trailers (or its end).
struct Watched {
    inner: Body,
    call: Option<Call>,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_of)
                    && let Some(mut c) = this.call.take()
                {
                    c.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(mut c) = this.call.take() {
                    c.finish(tonic::Code::Internal);
                }
            }
            Poll::Ready(None) => {
                // Ended without a status: tonic always sends one, so this is
                // a body that broke off.
                if let Some(mut c) = this.call.take() {
                    c.finish(tonic::Code::Unknown);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    use tower::{Layer, Service, ServiceExt};

    use super::*;
    use crate::grpc::access::methods;

    /// A body of one message and then trailers stating `code`.
    struct Streamed {
        data: Option<Bytes>,
        code: Option<i32>,
    }

    impl HttpBody for Streamed {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if let Some(d) = self.data.take() {
                return Poll::Ready(Some(Ok(Frame::data(d))));
            }
            Poll::Ready(self.code.take().map(|c| {
                let mut h = HeaderMap::new();
                h.insert("grpc-status", c.to_string().parse().unwrap());
                Ok(Frame::trailers(h))
            }))
        }
    }

    /// A server answering a trailers-only NOT_FOUND for `/…/Missing`, else
    /// OK in the trailers.
    fn server() -> impl Service<Request<Body>, Response = Response<Body>, Error = tower::BoxError> + Clone {
        MetricsLayer.layer(tower::service_fn(|req: Request<Body>| async move {
            if req.uri().path().ends_with("/GetAlert") {
                let status = tonic::Status::not_found("no alert");
                return Ok::<_, tower::BoxError>(status.into_http::<Body>());
            }
            let body = Body::new(Streamed {
                data: Some(Bytes::from_static(b"\0\0\0\0\0")),
                code: Some(0),
            });
            Ok(Response::new(body))
        }))
    }

    fn call(path: &str) -> Request<Body> {
        Request::builder().uri(path).body(Body::empty()).unwrap()
    }

    async fn drain(res: Response<Body>) {
        let mut body = res.into_body();
        while let Some(f) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            f.unwrap();
        }
    }

    /// `HANDLED` counts by (service, method, code).
    fn handled(s: &Snapshotter) -> Vec<(String, String, String, u64)> {
        let mut out = Vec::new();
        for (key, _, _, v) in s.snapshot().into_vec() {
            if key.key().name() != HANDLED {
                continue;
            }
            let DebugValue::Counter(n) = v else { continue };
            let l = |name: &str| {
                key.key()
                    .labels()
                    .find(|l| l.key() == name)
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default()
            };
            out.push((l("grpc_service"), l("grpc_method"), l("grpc_code"), n));
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn calls_are_counted_by_known_method_and_code_and_hostile_paths_are_unknown() {
        let recorder = DebuggingRecorder::new();
        let snap = recorder.snapshotter();
        let _guard = metrics::set_default_local_recorder(&recorder);
        let mut svc = server();

        let ok = svc
            .ready()
            .await
            .unwrap()
            .call(call("/grpc.health.v1.Health/Check"))
            .await
            .unwrap();
        drain(ok).await;
        let missing = svc
            .ready()
            .await
            .unwrap()
            .call(call("/pantau.v1.AlertEngineService/GetAlert"))
            .await
            .unwrap();
        drain(missing).await;
        let hostile = format!("/pantau.v1.{}/{}", "x".repeat(10_000), "\u{7f}");
        for path in ["/pantau.v1.Nope/Nope", "/", hostile.as_str()] {
            let uri_ok = Request::builder().uri(path).body(Body::empty()).is_ok();
            if uri_ok {
                drain(svc.ready().await.unwrap().call(call(path)).await.unwrap()).await;
            }
        }
        // A client that leaves before the status.
        let left = svc
            .ready()
            .await
            .unwrap()
            .call(call("/grpc.health.v1.Health/Watch"))
            .await
            .unwrap();
        drop(left);

        let h = handled(&snap);
        let get = |svc: &str, m: &str, code: &str| {
            h.iter()
                .find(|(s, mm, c, _)| s == svc && mm == m && c == code)
                .map_or(0, |x| x.3)
        };
        assert_eq!(get("grpc.health.v1.Health", "Check", "OK"), 1, "{h:?}");
        assert_eq!(get("pantau.v1.AlertEngineService", "GetAlert", "NotFound"), 1, "{h:?}");
        assert_eq!(get("grpc.health.v1.Health", "Watch", "Canceled"), 1, "{h:?}");
        assert!(get(UNKNOWN, UNKNOWN, "OK") >= 2, "{h:?}");
        for (s, m, _, _) in &h {
            assert!(
                s == UNKNOWN || methods().any(|(ks, km)| ks == s && km == m),
                "{s}/{m} is not a known method"
            );
        }
        let histogram = snap
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(k, ..)| k.key().name() == HANDLING)
            .count();
        assert!(histogram >= 3, "one histogram per method seen: {histogram}");
    }

    #[test]
    fn code_names_are_go_grpc_prometheus_ones() {
        assert_eq!(code_name(tonic::Code::Cancelled), "Canceled");
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        let mut h = HeaderMap::new();
        h.insert("grpc-status", "banana".parse().unwrap());
        assert_eq!(status_of(&h), Some(tonic::Code::Unknown));
        h.insert("grpc-status", "999".parse().unwrap());
        assert_eq!(status_of(&h), Some(tonic::Code::Unknown));
    }

    #[test]
    fn every_pantau_method_is_known_and_nothing_else() {
        assert_eq!(
            labels("/pantau.v1.AlertEngineService/CreateAlert"),
            ("pantau.v1.AlertEngineService", "CreateAlert")
        );
        assert_eq!(
            labels("/pantau.v1.AlertEngineService/CreateAlert/x"),
            (UNKNOWN, UNKNOWN)
        );
        assert_eq!(labels("pantau.v1.AlertEngineService/CreateAlert"), (UNKNOWN, UNKNOWN));
        assert!(methods().count() > 40);
    }
}
