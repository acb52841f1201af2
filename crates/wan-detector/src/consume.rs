//! From the bus into the [`Detector`]: durable subscriptions to router info,
//! interface samples, and the collector's reachability events for routers
//! (`target_down` / `target_up` with attribute `kind: router`), run by one
//! [`Consumer`] that acknowledges each message once the detector has taken it
//! in (and dead-letters what does not decode on
//! `pantau.deadletter.wan-detector`).

use std::sync::Arc;
use std::time::SystemTime;

use pantau_core::bus::{Bus, BusError, BusEvent, Consumer, Delivery, HandleError, Subscription, subject};
use pantau_core::health::ReadinessCheck;
use pantau_proto::v1::EventKind;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::metrics as m;
use crate::state::Detector;

/// The consumer's name (its dead-letter subject is `pantau.deadletter.wan-detector`).
pub const CONSUMER: &str = "wan-detector";

/// The subscriptions: (pattern, durable name).
pub const SUBSCRIPTIONS: [(&str, &str); 4] = [
    (subject::ALL_ROUTER_INFO, "wan-detector-info"),
    (subject::ALL_IFACE_SAMPLES, "wan-detector-samples"),
    ("pantau.event.target_down.>", "wan-detector-down"),
    ("pantau.event.target_up.>", "wan-detector-up"),
];

/// Takes one message into the detector.
pub async fn ingest(detector: &Detector, subject: &str, event: BusEvent, now: SystemTime) {
    match event {
        BusEvent::RouterInfo(info) => {
            ::metrics::counter!(m::MESSAGES_TOTAL, "family" => "info").increment(1);
            if info.router_id.is_empty() {
                tracing::warn!(subject = %subject, "skipping a RouterInfo without a router id");
            } else {
                detector.on_info(info, now).await;
            }
        }
        BusEvent::InterfaceSample(sample) => {
            ::metrics::counter!(m::MESSAGES_TOTAL, "family" => "sample").increment(1);
            if sample.router_id.is_empty() {
                tracing::warn!(subject = %subject, "skipping an InterfaceSample without a router id");
            } else {
                detector.on_sample(sample, now);
            }
        }
        BusEvent::Event { kind, event } => {
            ::metrics::counter!(m::MESSAGES_TOTAL, "family" => "event").increment(1);
            let up = match kind {
                EventKind::TargetUp => true,
                EventKind::TargetDown => false,
                _ => return,
            };
            if event.attributes.get("kind").is_some_and(|k| k == "router") && !event.source.is_empty() {
                detector.on_reachability(&event.source, up, now);
            }
        }
        BusEvent::CheckResult(_)
        | BusEvent::Metric(_)
        | BusEvent::Alert { .. }
        | BusEvent::Incident { .. }
        | BusEvent::Delivery { .. }
        | BusEvent::Consensus(_) => {}
    }
}

/// The consumer of [`SUBSCRIPTIONS`] on `bus`, and its readiness check.
pub fn consumer(bus: &Arc<dyn Bus>) -> (Consumer, Arc<dyn ReadinessCheck>) {
    let consumer = Consumer::new(
        Arc::clone(bus),
        CONSUMER,
        SUBSCRIPTIONS
            .iter()
            .map(|(pattern, durable)| Subscription::durable(*pattern, *durable)),
    );
    let ready = consumer.readiness();
    (consumer, ready)
}

/// Subscribes (before returning, so nothing published afterwards is
/// missed), then feeds every message to the detector until `shutdown`.
pub async fn start(
    detector: Arc<Detector>,
    consumer: Consumer,
    shutdown: CancellationToken,
) -> Result<impl Future<Output = ()> + Send + 'static, BusError> {
    consumer
        .start(shutdown, move |d: Delivery| {
            let detector = Arc::clone(&detector);
            async move {
                let span = tracing::debug_span!("wan_detector.ingest", subject = %d.subject);
                ingest(&detector, &d.subject, d.event, SystemTime::now())
                    .instrument(span)
                    .await;
                Ok::<(), HandleError>(())
            }
        })
        .await
}
