//! Spans named by the service that made them, even when several services
//! share one process (`pantau all`).
//!
//! OpenTelemetry names the service on the *resource*, one per tracer
//! provider, and tracing-opentelemetry feeds one provider. So the process
//! has one provider whose only processor is [`ByService`]: it holds one
//! batch processor per service, each with its own exporter and a resource
//! whose `service.name` is `pantau-<service>`, and hands each ended span
//! to the processor of the service that started it.
//!
//! Which service started a span: the one whose work is running
//! ([`in_service`] scopes a service's run, its tasks, and each gRPC call it
//! serves), else the service of the span's parent in this process, else the
//! process's own name.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::trace::{Span as _, SpanId, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use tokio::task::futures::TaskLocalFuture;

tokio::task_local! {
    /// The service whose work the current task does.
    static SERVICE: Arc<str>;
}

/// Runs `fut` as work of `service`: spans it starts are that service's.
pub fn in_service<F: Future>(service: impl Into<Arc<str>>, fut: F) -> TaskLocalFuture<Arc<str>, F> {
    SERVICE.scope(service.into(), fut)
}

/// Runs `fut` (to be spawned) as work of the service the current task
/// works for, if any: a task-local does not follow `tokio::spawn`.
pub fn in_current_service<F: Future>(fut: F) -> TaskLocalFuture<Arc<str>, F> {
    SERVICE.scope(current_service().unwrap_or_else(|| Arc::from("")), fut)
}

/// Runs `f` as work of `service` (the synchronous part of a call).
pub fn in_service_sync<R>(service: Arc<str>, f: impl FnOnce() -> R) -> R {
    SERVICE.sync_scope(service, f)
}

/// The service whose work the current task does, if it says.
pub fn current_service() -> Option<Arc<str>> {
    SERVICE.try_with(Arc::clone).ok()
}

/// Live spans remembered for their children at most; beyond, a child whose
/// task names no service is the process's.
const MAX_LIVE: usize = 100_000;

/// The resource attribute naming the service.
pub const SERVICE_NAME: &str = "service.name";

/// The span processor that routes spans to their service's processor.
#[derive(Debug)]
pub struct ByService {
    /// The process's own name (`all`, or the one service it runs).
    default: Arc<str>,
    processors: HashMap<Arc<str>, Box<dyn SpanProcessor>>,
    /// The service of each started, not yet ended span.
    live: Mutex<HashMap<SpanId, Arc<str>>>,
    /// Resource attributes every service shares (the instance).
    shared: Vec<KeyValue>,
}

impl ByService {
    /// `processors` by service name; `default` must be one of them.
    pub fn new(default: &str, processors: Vec<(String, Box<dyn SpanProcessor>)>, shared: Vec<KeyValue>) -> Self {
        Self {
            default: default.into(),
            processors: processors.into_iter().map(|(k, v)| (Arc::from(k), v)).collect(),
            live: Mutex::default(),
            shared,
        }
    }

    /// The resource service `name`'s spans are exported with.
    pub fn resource_name(name: &str) -> String {
        format!("pantau-{name}")
    }

    fn known(&self, s: Arc<str>) -> Option<Arc<str>> {
        self.processors.contains_key(&*s).then_some(s)
    }

    fn processor(&self, service: &str) -> Option<&dyn SpanProcessor> {
        self.processors
            .get(service)
            .or_else(|| self.processors.get(&*self.default))
            .map(AsRef::as_ref)
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<SpanId, Arc<str>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn each(&self, f: impl Fn(&dyn SpanProcessor) -> OTelSdkResult) -> OTelSdkResult {
        let errors: Vec<String> = self
            .processors
            .iter()
            .filter_map(|(name, p)| f(p.as_ref()).err().map(|e| format!("{name}: {e}")))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(OTelSdkError::InternalFailure(errors.join("; ")))
        }
    }
}

impl SpanProcessor for ByService {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        let parent = cx.span().span_context().span_id();
        let service = current_service()
            .and_then(|s| self.known(s))
            .or_else(|| self.live().get(&parent).cloned())
            .unwrap_or_else(|| Arc::clone(&self.default));
        if let Some(p) = self.processor(&service) {
            p.on_start(span, cx);
        }
        let mut live = self.live();
        if live.len() < MAX_LIVE {
            live.insert(span.span_context().span_id(), service);
        }
    }

    fn on_end(&self, span: SpanData) {
        let service = self.live().remove(&span.span_context.span_id());
        if let Some(p) = self.processor(service.as_deref().unwrap_or(&self.default)) {
            p.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.each(|p| p.force_flush())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.each(|p| p.shutdown_with_timeout(timeout))
    }

    /// Each service gets the provider's resource with its own
    /// `service.name` and the shared attributes.
    fn set_resource(&mut self, resource: &Resource) {
        for (name, p) in &mut self.processors {
            let own = Resource::builder_empty()
                .with_attributes(resource.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())))
                .with_attributes(self.shared.iter().cloned())
                .with_service_name(Self::resource_name(name))
                .build();
            p.set_resource(&own);
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SimpleSpanProcessor};
    use tracing::Instrument;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::telemetry::testing::Collected;

    #[tokio::test]
    async fn spans_go_to_the_service_that_started_them() {
        let keep = Collected::default();
        let processors = ["all", "collector", "alert-engine"]
            .iter()
            .map(|n| {
                let p: Box<dyn SpanProcessor> = Box::new(SimpleSpanProcessor::new(keep.sibling()));
                ((*n).to_owned(), p)
            })
            .collect();
        let shared = vec![KeyValue::new("service.instance.id", "a")];
        let provider = SdkTracerProvider::builder()
            .with_span_processor(ByService::new("all", processors, shared))
            .build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let _default = tracing::subscriber::set_default(subscriber);

        // A collector task; a child of its span started outside any service.
        let check = tracing::info_span!("collector.check");
        in_service("collector", async {
            let _g = check.enter();
        })
        .await;
        drop(tracing::info_span!(parent: &check, "child"));
        drop(check);
        // An alert-engine call inside a span started before it; a span of a
        // service the process does not know is the process's.
        in_service("alert-engine", async { tracing::info_span!("ingest").in_scope(|| ()) })
            .instrument(tracing::info_span!("outer"))
            .await;
        in_service("no-such", async { tracing::info_span!("elsewhere").in_scope(|| ()) }).await;
        provider.force_flush().unwrap();

        let mut got: Vec<(String, String)> = keep
            .spans()
            .into_iter()
            .map(|(service, s)| (service, s.name.into_owned()))
            .collect();
        got.sort();
        let want = [
            ("pantau-alert-engine", "ingest"),
            ("pantau-all", "elsewhere"),
            ("pantau-all", "outer"),
            ("pantau-collector", "child"),
            ("pantau-collector", "collector.check"),
        ];
        let want: Vec<(String, String)> = want.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
        assert_eq!(got, want);
        assert!(keep.spans().len() == 5 && ByService::resource_name("x") == "pantau-x");
    }
}
