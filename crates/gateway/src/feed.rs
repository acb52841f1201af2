//! From the bus to clients: the latest result per target, and every event
//! serialised once and fanned out to WebSocket clients through a bounded
//! broadcast ring (a slow client loses its oldest messages, never slowing
//! the others).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use pantau_core::bus::{self, MessageStream, Subscription, subject};
use pantau_core::service::Context;
use pantau_core::telemetry::set_parent_from;
use pantau_proto::v1::CheckResult;
use tokio::sync::broadcast;
use tracing::Instrument;

use crate::metrics as m;
use crate::view::{CheckResultView, Event};

/// Latest results and the event fan-out.
pub struct Feed {
    latest: RwLock<HashMap<String, CheckResultView>>,
    events: broadcast::Sender<Arc<str>>,
}

impl Feed {
    pub fn new(buffer: usize) -> Self {
        Self {
            latest: RwLock::default(),
            events: broadcast::channel(buffer.max(1)).0,
        }
    }

    /// Every target's latest result, by target id.
    pub fn latest(&self) -> Vec<CheckResultView> {
        let map = self.latest.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut v: Vec<_> = map.values().cloned().collect();
        v.sort_by(|a, b| a.target_id.cmp(&b.target_id).then_with(|| a.location.cmp(&b.location)));
        v
    }

    /// Events from now on, as JSON text.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.events.subscribe()
    }

    /// Takes in one result: keeps it if it is the newest of its target and
    /// location, and sends it to WebSocket clients.
    pub fn accept(&self, r: &CheckResult) {
        let view = CheckResultView::from(r);
        let key = format!("{}\u{0}{}", view.location, view.target_id);
        {
            let mut map = self.latest.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let newer = map.get(&key).is_none_or(|old| old.checked_at <= view.checked_at);
            if newer {
                map.insert(key, view.clone());
            }
        }
        match serde_json::to_string(&Event {
            kind: "check_result",
            data: &view,
        }) {
            Ok(text) => {
                let _ = self.events.send(Arc::from(text));
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialise a check result"),
        }
    }
}

/// Subscribes to every check result and spawns the pump on `ctx.tasks`.
pub async fn start(feed: &Arc<Feed>, ctx: &Context) -> Result<(), bus::BusError> {
    let stream = ctx
        .bus
        .subscribe(Subscription::live(subject::ALL_CHECK_RESULTS))
        .await?;
    let feed = Arc::clone(feed);
    let ctx2 = ctx.clone();
    ctx.tasks.spawn(async move { pump(feed, ctx2, stream).await });
    Ok(())
}

async fn pump(feed: Arc<Feed>, ctx: Context, mut stream: MessageStream) {
    loop {
        let next = tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            next = stream.next() => next,
        };
        let Some(msg) = next else {
            tracing::warn!("check result subscription ended; subscribing again");
            stream = loop {
                tokio::select! {
                    () = ctx.shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                match ctx.bus.subscribe(Subscription::live(subject::ALL_CHECK_RESULTS)).await {
                    Ok(s) => break s,
                    Err(e) => tracing::warn!(error = %e, "cannot subscribe to check results"),
                }
            };
            continue;
        };
        let span = tracing::debug_span!("gateway.check_result", subject = %msg.subject);
        set_parent_from(&span, &msg.headers);
        async {
            if let Some(r) = bus::decode::<CheckResult>(&msg) {
                ::metrics::counter!(m::EVENTS, "type" => "check_result").increment(1);
                feed.accept(&r);
            }
        }
        .instrument(span)
        .await;
    }
}
