//! Logs, traces and metrics.
//!
//! - Logs: `tracing` with a `RUST_LOG`-style filter, pretty on a terminal and
//!   JSON otherwise (or as configured).
//! - Traces: exported over OTLP/gRPC when `telemetry.otlp_endpoint`
//!   (`OTEL_EXPORTER_OTLP_ENDPOINT`) is set; W3C trace context crosses the bus
//!   in message headers, gRPC metadata and HTTP headers ([`propagate`]);
//!   each span is exported under the service that started it, even when
//!   services share a process ([`by_service`]).
//! - Metrics: the `metrics` facade recorded by one process-wide Prometheus
//!   recorder ([`prometheus`]), rendered on the admin port's `/metrics`;
//!   gauges with one series per target are written at scrape time from the
//!   service's own state instead of being registered ([`scraped`]).

pub mod by_service;
pub mod propagate;
pub mod scraped;
#[cfg(test)]
pub(crate) mod testing;

use std::io::IsTerminal;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanProcessor};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use pantau_config::{LogConfig, LogFormat, TelemetryConfig};

pub use by_service::{ByService, current_service, in_current_service, in_service};
pub use propagate::{
    Headers, extract_context, extract_http, inject_context, inject_http, set_parent_from, set_parent_from_http,
    set_parent_from_traceparent, traceparent,
};

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter for {endpoint}: {source}")]
    Otlp {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps trace export alive; [`Telemetry::shutdown`] flushes it.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes pending spans and stops the exporter.
    pub fn shutdown(self) {
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown()
        {
            tracing::warn!(error = %e, "trace exporter did not shut down cleanly");
        }
    }
}

/// Who the process is, for telemetry: its command (`all`, or the one
/// service it runs), the services it runs and its instance name.
#[derive(Debug, Clone, Copy)]
pub struct Process<'a> {
    pub name: &'a str,
    pub services: &'a [&'a str],
    pub instance: &'a str,
}

/// Installs the global subscriber, the propagator and, when configured, OTLP
/// export: one exporter per service of the process, each span exported as
/// `pantau-<service>` ([`ByService`]).
pub fn init(process: Process<'_>, log: &LogConfig, tel: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(&log.level));
    let json = match log.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let fmt: Box<dyn Layer<_> + Send + Sync> = if json {
        Box::new(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr))
    } else {
        Box::new(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
    };
    let mut provider = None;
    let otel = match &tel.otlp_endpoint {
        Some(endpoint) => {
            let p = SdkTracerProvider::builder()
                .with_span_processor(by_service(process, endpoint)?)
                .build();
            let tracer = p.tracer("pantau");
            opentelemetry::global::set_tracer_provider(p.clone());
            provider = Some(p);
            Some(tracing_opentelemetry::layer().with_tracer(tracer))
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(Telemetry { provider })
}

/// One batch processor and OTLP exporter per service of `process` (and
/// one for the process itself), routed by [`ByService`].
fn by_service(process: Process<'_>, endpoint: &str) -> Result<ByService, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;
    let mut names: Vec<&str> = process.services.to_vec();
    if !names.contains(&process.name) {
        names.push(process.name);
    }
    let mut processors = Vec::with_capacity(names.len());
    for name in names {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|source| TelemetryError::Otlp {
                endpoint: endpoint.to_owned(),
                source,
            })?;
        let p: Box<dyn SpanProcessor> = Box::new(BatchSpanProcessor::builder(exporter).build());
        processors.push((name.to_owned(), p));
    }
    let shared = vec![opentelemetry::KeyValue::new(
        "service.instance.id",
        process.instance.to_owned(),
    )];
    Ok(ByService::new(process.name, processors, shared))
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".to_owned()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ],
            )
            .expect("bucket list is not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        crate::bus::describe_metrics();
        process_metrics().describe();
        process_metrics().collect();
        handle
    })
}

/// The process's own figures (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, `process_open_fds`, `process_threads`,
/// …), read again at every scrape.
fn process_metrics() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// The current metrics in Prometheus text format.
pub fn render_metrics() -> String {
    let h = prometheus();
    process_metrics().collect();
    crate::store::metrics::collect();
    h.run_upkeep();
    let mut out = h.render();
    scraped::render(&mut out);
    out
}
