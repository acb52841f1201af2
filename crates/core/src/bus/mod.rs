//! The event bus: one [`Bus`] trait, two implementations, one typed contract
//! and one consumer loop.
//!
//! - [`nats::NatsBus`]: NATS JetStream. Everything under `pantau.>` is
//!   captured by the stream (`nats.stream`, bounded by age and bytes); durable
//!   subscriptions are JetStream pull consumers, so a restarted service resumes
//!   where it stopped; the client reconnects on its own.
//! - [`memory::MemoryBus`]: in-process, for `pantau all` without `nats.url`.
//! - [`subject`]: the subjects, their builders and wildcard matching.
//! - [`event`]: [`BusEvent::decode`], from subject and protobuf payload to
//!   one typed variant, or a [`DecodeError`] naming what was wrong.
//! - [`consume`]: the [`Consumer`] every service runs: re-subscription,
//!   trace context, ack after handling, bounded retries, dead letters
//!   (`pantau.deadletter.<consumer>`) and readiness.
//!
//! Both buses honour the same subjects and the `*` (one token) and `>` (one or more
//! trailing tokens) wildcards. Payloads are protobuf messages from
//! `events.proto`; [`publish_proto`] writes the W3C trace context into the
//! headers.

pub mod consume;
pub mod event;
pub mod memory;
pub mod nats;
pub mod subject;

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub use consume::{Consumer, Delivery, HandleError, RetryPolicy, consume};
pub use event::{BusEvent, DecodeError};

pub use crate::telemetry::Headers;

/// A received message.
pub struct Message {
    pub subject: String,
    pub headers: Headers,
    pub payload: Bytes,
    acker: Option<Box<dyn Acker>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("subject", &self.subject)
            .field("headers", &self.headers)
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

impl Message {
    pub fn new(subject: impl Into<String>, headers: Headers, payload: Bytes) -> Self {
        Self {
            subject: subject.into(),
            headers,
            payload,
            acker: None,
        }
    }

    fn with_acker(mut self, acker: Box<dyn Acker>) -> Self {
        self.acker = Some(acker);
        self
    }

    /// Confirms a durable delivery so it is not redelivered; a no-op for live
    /// subscriptions and the in-process bus.
    pub async fn ack(&self) -> Result<(), BusError> {
        match &self.acker {
            Some(a) => a.ack().await,
            None => Ok(()),
        }
    }

    /// Asks for a redelivery (after `delay`, if given) instead of waiting
    /// for the ack deadline; a no-op where nothing is redelivered.
    pub async fn nak(&self, delay: Option<std::time::Duration>) -> Result<(), BusError> {
        match &self.acker {
            Some(a) => a.nak(delay).await,
            None => Ok(()),
        }
    }

    /// Says the message is still being worked on, extending its ack
    /// deadline; a no-op where nothing is redelivered.
    pub async fn in_progress(&self) -> Result<(), BusError> {
        match &self.acker {
            Some(a) => a.in_progress().await,
            None => Ok(()),
        }
    }
}

#[async_trait]
trait Acker: Send + Sync {
    async fn ack(&self) -> Result<(), BusError>;
    async fn nak(&self, delay: Option<std::time::Duration>) -> Result<(), BusError>;
    async fn in_progress(&self) -> Result<(), BusError>;
}

/// A stream of received messages; dropping it unsubscribes.
pub type MessageStream = Pin<Box<dyn Stream<Item = Message> + Send>>;

/// What to subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Subject pattern, wildcards allowed.
    pub pattern: String,
    /// A durable consumer name: deliveries must be acknowledged, and a
    /// restarted subscriber with the same name resumes after the last one it
    /// acknowledged (NATS). A name's first subscriber starts a minute back
    /// (both buses), so services that start together do not miss each
    /// other's first messages. `None` is a live subscription: what is
    /// published while nobody listens is not replayed.
    pub durable: Option<String>,
    /// A durable consumer created by this subscription starts at the oldest
    /// message the stream keeps instead of a minute back (NATS; the
    /// in-process bus keeps only its last minute).
    pub replay: bool,
}

impl Subscription {
    /// A live subscription to `pattern`.
    pub fn live(pattern: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
            durable: None,
            replay: false,
        }
    }

    /// A durable subscription to `pattern` named `name`.
    pub fn durable(pattern: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
            durable: Some(name.into()),
            replay: false,
        }
    }

    /// Replays what the stream keeps when the durable consumer is new.
    #[must_use]
    pub fn replaying(mut self) -> Self {
        self.replay = true;
        self
    }
}

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("invalid subject `{subject}`: {reason}")]
    InvalidSubject { subject: String, reason: &'static str },
    #[error("invalid durable name `{0}`: use letters, digits, `-` or `_`")]
    InvalidDurable(String),
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("NATS {op} failed: {source}")]
    Nats {
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("NATS did not acknowledge the publish within {0:?}")]
    AckTimeout(std::time::Duration),
    #[error("the bus is closed")]
    Closed,
}

impl BusError {
    fn nats(op: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Nats {
            op,
            source: Box::new(source),
        }
    }
}

/// Publish and subscribe on `pantau.*` subjects.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes `payload` on `subject` (no wildcards). With NATS this waits
    /// for JetStream's acknowledgement, so success means stored.
    async fn publish(&self, subject: &str, headers: Headers, payload: Bytes) -> Result<(), BusError>;

    /// Subscribes to a pattern.
    async fn subscribe(&self, sub: Subscription) -> Result<MessageStream, BusError>;

    /// `nats` or `memory`.
    fn kind(&self) -> &'static str;

    /// Whether the bus can carry messages now.
    async fn check(&self) -> Result<(), BusError>;
}

/// A readiness check over a bus.
pub fn readiness(bus: std::sync::Arc<dyn Bus>) -> std::sync::Arc<dyn crate::health::ReadinessCheck> {
    struct Check(std::sync::Arc<dyn Bus>);
    #[async_trait]
    impl crate::health::ReadinessCheck for Check {
        async fn check(&self) -> Result<(), String> {
            self.0.check().await.map_err(|e| e.to_string())
        }

        fn essential(&self) -> bool {
            true
        }
    }
    std::sync::Arc::new(Check(bus))
}

/// Metric names of the bus.
pub mod metric {
    pub const PUBLISHED: &str = "pantau_bus_published_total";
    pub const PUBLISH_ERRORS: &str = "pantau_bus_publish_errors_total";
    pub const DECODE_ERRORS: &str = "pantau_bus_decode_errors_total";
    pub const DROPPED: &str = "pantau_bus_dropped_total";
    pub const DEAD_LETTERS: &str = "pantau_bus_dead_letters_total";
    pub const HANDLER_RETRIES: &str = "pantau_bus_handler_retries_total";
}

/// The families every Pantau process knows from the start, whose error and
/// drop counters are exported as 0 from the first scrape (a panel reads 0,
/// not "No data"): results, samples, router info, every event kind, alert
/// states, consensus and dead letters. (`pantau.metric.<name>` families
/// follow the names that are published.)
pub fn known_families() -> Vec<String> {
    let mut out: Vec<String> = ["pantau.check.result", "pantau.iface.sample", "pantau.router.info"]
        .map(str::to_owned)
        .to_vec();
    let mut k = 1;
    while let Ok(kind) = pantau_proto::v1::EventKind::try_from(k) {
        out.push(format!("pantau.event.{}", event::event_kind_token(kind)));
        k += 1;
    }
    out.extend(["firing", "acknowledged", "resolved"].map(|s| format!("pantau.alert.{s}")));
    out.extend(["pantau.consensus", "pantau.deadletter"].map(str::to_owned));
    out.extend(["delivered", "failed"].map(|s| format!("pantau.delivery.{s}")));
    out.extend(["changed", "deleted", "snapshot", "wanted"].map(|s| format!("pantau.maintenance.{s}")));
    out
}

pub(crate) fn describe_metrics() {
    for family in known_families() {
        for name in [metric::PUBLISH_ERRORS, metric::DECODE_ERRORS, metric::DROPPED] {
            metrics::counter!(name, "family" => family.clone()).increment(0);
        }
    }
    metrics::describe_counter!(
        metric::PUBLISHED,
        metrics::Unit::Count,
        "Messages published on the bus, by subject family"
    );
    metrics::describe_counter!(
        metric::PUBLISH_ERRORS,
        metrics::Unit::Count,
        "Publishes the bus refused or did not acknowledge"
    );
    metrics::describe_counter!(
        metric::DECODE_ERRORS,
        metrics::Unit::Count,
        "Received messages that did not decode (a consumer dead-letters them)"
    );
    metrics::describe_counter!(
        metric::DROPPED,
        metrics::Unit::Count,
        "Messages a slow live subscriber of the in-process bus missed"
    );
    metrics::describe_counter!(
        metric::DEAD_LETTERS,
        metrics::Unit::Count,
        "Messages a consumer could not decode or handle and published on pantau.deadletter.<consumer>"
    );
    metrics::describe_counter!(
        metric::HANDLER_RETRIES,
        metrics::Unit::Count,
        "Transient handling failures a consumer retried"
    );
}

/// Encodes `msg`, adds the current trace context, publishes, and counts.
pub async fn publish_proto<M: prost::Message>(bus: &dyn Bus, subject: &str, msg: &M) -> Result<(), BusError> {
    publish_encoded(bus, subject, Bytes::from(msg.encode_to_vec())).await
}

/// [`publish_proto`] of a message already encoded (kept by the caller too:
/// on the in-process bus every subscriber shares the one allocation).
pub async fn publish_encoded(bus: &dyn Bus, subject: &str, payload: Bytes) -> Result<(), BusError> {
    let mut headers = Headers::new();
    crate::telemetry::inject_context(&mut headers);
    headers.insert("content-type".to_owned(), "application/protobuf".to_owned());
    let family = subject::family(subject);
    match bus.publish(subject, headers, payload).await {
        Ok(()) => {
            metrics::counter!(metric::PUBLISHED, "family" => family).increment(1);
            Ok(())
        }
        Err(e) => {
            metrics::counter!(metric::PUBLISH_ERRORS, "family" => family).increment(1);
            Err(e)
        }
    }
}

/// Decodes a received message as `M`, for tools and tests that know what
/// they subscribed to (services use [`BusEvent::decode`] through a
/// [`Consumer`]); a message that does not decode is counted in
/// `pantau_bus_decode_errors_total`, logged, and `None`.
pub fn decode<M: prost::Message + Default>(msg: &Message) -> Option<M> {
    match M::decode(msg.payload.as_ref()) {
        Ok(m) => Some(m),
        Err(e) => {
            let family = subject::family(&msg.subject);
            metrics::counter!(metric::DECODE_ERRORS, "family" => family).increment(1);
            tracing::warn!(subject = %msg.subject, bytes = msg.payload.len(), error = %e, "skipping a bus message that does not decode");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use tracing::Instrument;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn known_families_are_bounded_and_name_every_event_kind() {
        let f = known_families();
        assert!(f.contains(&"pantau.event.metrics_update".to_owned()), "{f:?}");
        assert!(f.contains(&"pantau.event.target_down".to_owned()), "{f:?}");
        assert!(f.contains(&"pantau.alert.firing".to_owned()), "{f:?}");
        assert!(f.iter().all(|x| subject::family(&format!("{x}.a.b")) == *x), "{f:?}");
        assert!(f.len() < 40, "{f:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn publish_proto_carries_the_trace_to_the_consumer() {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let _guard = tracing::subscriber::set_default(subscriber);
        let bus = memory::MemoryBus::new();
        let mut sub = bus.subscribe(Subscription::live("pantau.metric.>")).await.unwrap();
        let span = tracing::info_span!("producer");
        let sent_trace = span.context().span().span_context().trace_id();
        let sample = pantau_proto::v1::MetricSample {
            name: "cpu".into(),
            value: 0.5,
            ..Default::default()
        };
        publish_proto(&bus, "pantau.metric.cpu", &sample)
            .instrument(span)
            .await
            .unwrap();
        let msg = sub.next().await.unwrap();
        assert_eq!(decode::<pantau_proto::v1::MetricSample>(&msg), Some(sample));
        let consumer = tracing::info_span!("consumer");
        crate::telemetry::set_parent_from(&consumer, &msg.headers);
        assert_eq!(consumer.context().span().span_context().trace_id(), sent_trace);
        assert_eq!(
            msg.headers.get("content-type").map(String::as_str),
            Some("application/protobuf")
        );
    }
}
