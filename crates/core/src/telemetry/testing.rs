//! A trace pipeline for unit tests: spans are kept in memory as they end,
//! with the `service.name` of the resource they were exported under.

use std::sync::{Arc, Mutex};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SimpleSpanProcessor, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;

/// Keeps every span it exports, with its resource's `service.name`.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    spans: Arc<Mutex<Vec<(String, SpanData)>>>,
    service: Arc<Mutex<String>>,
}

impl Collected {
    /// The same store, exported under another resource.
    pub fn sibling(&self) -> Self {
        Self {
            spans: Arc::clone(&self.spans),
            service: Arc::default(),
        }
    }

    /// Every span so far, with its service.
    pub fn spans(&self) -> Vec<(String, SpanData)> {
        self.spans.lock().unwrap().clone()
    }
}

impl SpanExporter for Collected {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let service = self.service.lock().unwrap().clone();
        self.spans
            .lock()
            .unwrap()
            .extend(batch.into_iter().map(|s| (service.clone(), s)));
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        let name = resource
            .get(&opentelemetry::Key::from_static_str(super::by_service::SERVICE_NAME))
            .map(|v| v.to_string())
            .unwrap_or_default();
        *self.service.lock().unwrap() = name;
    }
}

/// A thread-default subscriber exporting every span to the returned store
/// as soon as it ends (use a current-thread runtime so spawned tasks see it).
pub fn install() -> (tracing::subscriber::DefaultGuard, SdkTracerProvider, Collected) {
    let collected = Collected::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(SimpleSpanProcessor::new(collected.clone()))
        .build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    (tracing::subscriber::set_default(subscriber), provider, collected)
}
