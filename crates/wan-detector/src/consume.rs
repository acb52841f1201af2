//! From the bus into the [`Detector`]: durable subscriptions to router info,
//! interface samples, and the collector's reachability events for routers
//! (`target_down` / `target_up` with attribute `kind: router`). Each message
//! is acknowledged once the detector has taken it in.

use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;
use pantau_core::bus::{Bus, BusError, Message, Subscription, decode};
use pantau_proto::v1::{InterfaceSample, RouterEvent, RouterInfo};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::metrics as m;
use crate::state::Detector;

/// The subscriptions: (pattern, durable name).
pub const SUBSCRIPTIONS: [(&str, &str); 4] = [
    ("pantau.router.info.>", "wan-detector-info"),
    ("pantau.iface.sample.>", "wan-detector-samples"),
    ("pantau.event.target_down.>", "wan-detector-down"),
    ("pantau.event.target_up.>", "wan-detector-up"),
];

/// Takes one message into the detector.
pub async fn ingest(detector: &Detector, msg: &Message, now: SystemTime) {
    let s = msg.subject.as_str();
    if s.starts_with("pantau.router.info.") {
        ::metrics::counter!(m::MESSAGES_TOTAL, "family" => "info").increment(1);
        if let Some(info) = decode::<RouterInfo>(msg) {
            if info.router_id.is_empty() {
                tracing::warn!(subject = %s, "skipping a RouterInfo without a router id");
            } else {
                detector.on_info(info, now).await;
            }
        }
    } else if s.starts_with("pantau.iface.sample.") {
        ::metrics::counter!(m::MESSAGES_TOTAL, "family" => "sample").increment(1);
        if let Some(sample) = decode::<InterfaceSample>(msg) {
            if sample.router_id.is_empty() {
                tracing::warn!(subject = %s, "skipping an InterfaceSample without a router id");
            } else {
                detector.on_sample(sample, now);
            }
        }
    } else if s.starts_with("pantau.event.") {
        ::metrics::counter!(m::MESSAGES_TOTAL, "family" => "event").increment(1);
        if let Some(e) = decode::<RouterEvent>(msg)
            && e.attributes.get("kind").is_some_and(|k| k == "router")
            && !e.source.is_empty()
        {
            let up = s.starts_with("pantau.event.target_up.");
            detector.on_reachability(&e.source, up, now);
        }
    }
}

/// Subscribes (before returning, so nothing published afterwards is
/// missed), then feeds every message to the detector until `shutdown`.
pub async fn start(
    detector: Arc<Detector>,
    bus: &Arc<dyn Bus>,
    shutdown: CancellationToken,
) -> Result<impl Future<Output = ()> + Send + 'static, BusError> {
    let mut streams = Vec::new();
    for (pattern, durable) in SUBSCRIPTIONS {
        streams.push(bus.subscribe(Subscription::durable(pattern, durable)).await?);
    }
    let mut all = futures::stream::select_all(streams);
    Ok(async move {
        loop {
            let msg = tokio::select! {
                () = shutdown.cancelled() => break,
                next = all.next() => {
                    let Some(m) = next else {
                        tracing::warn!("bus subscriptions ended");
                        break;
                    };
                    m
                }
            };
            let span = tracing::debug_span!("wan_detector.ingest", subject = %msg.subject);
            pantau_core::telemetry::set_parent_from(&span, &msg.headers);
            ingest(&detector, &msg, SystemTime::now()).instrument(span).await;
            if let Err(e) = msg.ack().await {
                tracing::warn!(subject = %msg.subject, error = %e, "cannot acknowledge a bus message; it may be redelivered");
            }
        }
    })
}
