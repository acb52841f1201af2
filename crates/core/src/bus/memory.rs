//! The in-process bus, for `pantau all` without NATS.
//!
//! Live subscribers get a bounded buffer each: a subscriber that falls behind
//! misses messages (counted in `pantau_bus_dropped_total`) instead of slowing
//! the publisher and everyone else. Durable subscribers are meant to see
//! everything, so a full durable buffer makes the publisher wait. As on NATS,
//! subscribers sharing a durable name share its messages: each goes to one of
//! them, in turn. Nothing outlives the process: a durable name here does not
//! resume after a restart.
//!
//! The services of `pantau all` start together, so one may publish before
//! another has subscribed. A durable name's first subscriber therefore gets
//! the recent messages that match it first ([`RECENT`] at most, none older
//! than [`RECENT_AGE`]); a NATS durable consumer created for the first time
//! starts as far back (see `nats.rs`).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{Bus, BusError, Headers, Message, MessageStream, Subscription, metric, subject};

/// Buffered messages per subscriber.
const BUFFER: usize = 4096;

/// Recent messages kept for durable names that subscribe later; fits in a
/// new subscriber's buffer.
pub const RECENT: usize = BUFFER;

/// How far back a durable name's first subscriber starts.
pub const RECENT_AGE: Duration = Duration::from_secs(60);

struct Subscriber {
    pattern: String,
    durable: Option<String>,
    tx: mpsc::Sender<Message>,
}

/// The in-process [`Bus`]; clones share subscribers.
#[derive(Clone, Default)]
pub struct MemoryBus {
    subscribers: Arc<RwLock<Vec<Subscriber>>>,
    /// Turns among subscribers that share a durable name.
    turn: Arc<AtomicUsize>,
    /// What was published lately, oldest first, and the durable names seen.
    /// Locked after `subscribers`, never before it.
    recent: Arc<Mutex<Recent>>,
}

#[derive(Default)]
struct Recent {
    messages: VecDeque<(Instant, Message)>,
    names: HashSet<String>,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, subject: &str, headers: Headers, payload: Bytes) -> Result<(), BusError> {
        subject::validate_publish(subject)?;
        let targets: Vec<(mpsc::Sender<Message>, bool)> = {
            let subs = self.subscribers.read().unwrap_or_else(PoisonError::into_inner);
            let mut live = Vec::new();
            let mut groups: BTreeMap<&str, Vec<mpsc::Sender<Message>>> = BTreeMap::new();
            for s in subs
                .iter()
                .filter(|s| !s.tx.is_closed() && subject::matches(&s.pattern, subject))
            {
                match &s.durable {
                    Some(name) => groups.entry(name.as_str()).or_default().push(s.tx.clone()),
                    None => live.push((s.tx.clone(), false)),
                }
            }
            let turn = self.turn.fetch_add(1, Ordering::Relaxed);
            live.extend(
                groups
                    .into_values()
                    .map(|members| (members[turn % members.len()].clone(), true)),
            );
            // Kept under the subscribers' lock: a durable name subscribing
            // meanwhile either is among `targets` or finds this message.
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            if recent.messages.len() == RECENT {
                recent.messages.pop_front();
            }
            recent
                .messages
                .push_back((Instant::now(), Message::new(subject, headers.clone(), payload.clone())));
            live
        };
        let mut closed = false;
        for (tx, durable) in targets {
            let msg = Message::new(subject, headers.clone(), payload.clone());
            if durable {
                closed |= tx.send(msg).await.is_err();
            } else {
                match tx.try_send(msg) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        metrics::counter!(metric::DROPPED, "family" => subject::family(subject)).increment(1);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => closed = true,
                }
            }
        }
        if closed {
            self.subscribers
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|s| !s.tx.is_closed());
        }
        Ok(())
    }

    async fn subscribe(&self, sub: Subscription) -> Result<MessageStream, BusError> {
        subject::validate_pattern(&sub.pattern)?;
        if let Some(name) = &sub.durable
            && !pantau_config::is_token(name)
        {
            return Err(BusError::InvalidDurable(name.clone()));
        }
        let (tx, rx) = mpsc::channel(BUFFER);
        let mut subscribers = self.subscribers.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(name) = &sub.durable {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            if recent.names.insert(name.clone()) {
                let since = Instant::now().checked_sub(RECENT_AGE);
                for (at, m) in &recent.messages {
                    if since.is_none_or(|t| *at >= t) && subject::matches(&sub.pattern, &m.subject) {
                        // Cannot be full: the buffer holds `RECENT` messages.
                        let _ = tx.try_send(Message::new(m.subject.clone(), m.headers.clone(), m.payload.clone()));
                    }
                }
            }
        }
        subscribers.push(Subscriber {
            pattern: sub.pattern,
            durable: sub.durable,
            tx,
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }
}
