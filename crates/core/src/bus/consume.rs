//! The one consumer loop every service uses.
//!
//! A [`Consumer`] subscribes to its [`Subscription`]s and hands each message,
//! decoded into a [`BusEvent`], to an async handler inside a span that
//! continues the publisher's trace. What the loop promises:
//!
//! - **Ack after handling.** A message is acknowledged once its handler
//!   returned `Ok`, or once it was dead-lettered; never before.
//! - **Bounded retries.** A [`HandleError::Transient`] failure is retried
//!   with backoff ([`RetryPolicy`]); on JetStream the ack deadline is extended
//!   meanwhile, so the server does not redeliver it behind the consumer's back.
//! - **Dead letters.** A message that does not decode, fails permanently,
//!   panics its handler, or fails transiently [`RetryPolicy::max_attempts`]
//!   times is published on `pantau.deadletter.<consumer>` (payload and
//!   headers as received, plus the [`header`]s saying why), acknowledged,
//!   counted in `pantau_bus_dead_letters_total{consumer}` (and one that
//!   does not decode in `pantau_bus_decode_errors_total{family}`) and logged once
//!   with a short excerpt. It never stops the consumer.
//! - **Re-subscription.** A subscription that fails or ends is made again,
//!   with a bounded backoff, until shutdown.
//! - **Readiness.** [`Consumer::readiness`] fails while a subscription is
//!   missing or the bus is disconnected.
//! - **Batches, when asked.** [`Consumer::start_batches`] hands a handler
//!   every message already waiting (up to a bound) at once, so it can store
//!   what they cause in one transaction; each is acknowledged after the
//!   batch's handler returned `Ok`. A batch that fails is handled again one
//!   message at a time, with the retries and dead letters above, so one bad
//!   message never takes the others down with it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::stream::SelectAll;
use futures::{FutureExt as _, StreamExt as _};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::event::{BusEvent, clip, excerpt};
use super::{Bus, BusError, Headers, Message, Subscription, metric, subject};
use crate::health::ReadinessCheck;

/// Headers a dead letter carries besides the original ones.
pub mod header {
    /// The subject the message was received on.
    pub const ORIGINAL_SUBJECT: &str = "pantau-original-subject";
    /// The consumer that gave up on it.
    pub const CONSUMER: &str = "pantau-consumer";
    /// Why, in at most a few hundred bytes.
    pub const REASON: &str = "pantau-dead-letter-reason";
    /// How many times the handler ran (0 when it did not decode).
    pub const ATTEMPTS: &str = "pantau-attempts";
}

/// An error a boxed handler returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a handler did not take a message in.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// It may work later (a store is down): retried, then dead-lettered.
    #[error("{0}")]
    Transient(BoxError),
    /// It will never work (the message is wrong): dead-lettered at once.
    #[error("{0}")]
    Permanent(BoxError),
}

impl HandleError {
    pub fn transient(e: impl Into<BoxError>) -> Self {
        Self::Transient(e.into())
    }

    pub fn permanent(e: impl Into<BoxError>) -> Self {
        Self::Permanent(e.into())
    }
}

/// How often and how patiently a transiently failing message is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts at handling one message before it is dead-lettered; at least 1.
    pub max_attempts: u32,
    /// The wait after the first failure, doubled after each next one…
    pub initial_backoff: Duration,
    /// …up to this.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 10 attempts over about 40 seconds.
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// For handlers that write to a store: 30 attempts over about four and a
    /// half minutes, enough to ride out a database restart.
    pub const fn patient() -> Self {
        Self {
            max_attempts: 30,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }

    /// The wait after `failures` consecutive failures (1 or more).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// Waits between attempts to subscribe again: doubling from the first to the last.
const RESUBSCRIBE: RetryPolicy = RetryPolicy {
    max_attempts: u32::MAX,
    initial_backoff: Duration::from_millis(100),
    max_backoff: Duration::from_secs(5),
};

/// One message for a handler.
#[derive(Debug)]
pub struct Delivery {
    pub subject: String,
    pub headers: Headers,
    pub event: BusEvent,
    /// The encoded message `event` was decoded from (shared, not copied).
    pub payload: bytes::Bytes,
    /// 1 for the first attempt at this message in this process.
    pub attempt: u32,
}

/// A named consumer of some subscriptions; see the [module](self) docs.
pub struct Consumer {
    bus: Arc<dyn Bus>,
    name: String,
    subscriptions: Vec<Subscription>,
    retry: RetryPolicy,
    subscribed: Arc<AtomicBool>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .field("subscriptions", &self.subscriptions)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// A consumer `name` (a token: it names the dead-letter subject) of
    /// `subscriptions` on `bus`, with the default [`RetryPolicy`].
    pub fn new(
        bus: Arc<dyn Bus>,
        name: impl Into<String>,
        subscriptions: impl IntoIterator<Item = Subscription>,
    ) -> Self {
        let name = name.into();
        // On /metrics from the start, 0 until a message is dead-lettered.
        metrics::counter!(metric::DEAD_LETTERS, "consumer" => name.clone()).increment(0);
        Self {
            bus,
            name,
            subscriptions: subscriptions.into_iter().collect(),
            retry: RetryPolicy::default(),
            subscribed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Retries transient failures as `retry` says.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = RetryPolicy {
            max_attempts: retry.max_attempts.max(1),
            ..retry
        };
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where this consumer's dead letters go.
    pub fn dead_letter_subject(&self) -> String {
        let token: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        subject::dead_letter(if token.is_empty() { "unnamed" } else { &token })
    }

    /// Whether every subscription is in place (the bus may still be down).
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// Fails while a subscription is missing or the bus is disconnected.
    pub fn readiness(&self) -> Arc<dyn ReadinessCheck> {
        Arc::new(Readiness {
            name: self.name.clone(),
            subscribed: Arc::clone(&self.subscribed),
            bus: Arc::clone(&self.bus),
        })
    }

    /// Subscribes now, failing if the bus refuses, so that nothing published
    /// after this returns is missed; the returned loop then handles messages
    /// until `shutdown`.
    pub async fn start<H, Fut>(
        self,
        shutdown: CancellationToken,
        handler: H,
    ) -> Result<impl Future<Output = ()> + Send + 'static, BusError>
    where
        H: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandleError>> + Send + 'static,
    {
        self.start_batches(shutdown, 1, one_by_one(handler)).await
    }

    /// Like [`start`](Self::start), but hands `handler` up to `max` messages
    /// at once: the first one to arrive and every one already waiting behind
    /// it (see the [module](self) docs).
    pub async fn start_batches<H, Fut>(
        self,
        shutdown: CancellationToken,
        max: usize,
        handler: H,
    ) -> Result<impl Future<Output = ()> + Send + 'static, BusError>
    where
        H: Fn(Vec<Delivery>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandleError>> + Send + 'static,
    {
        let mut streams = SelectAll::new();
        for i in 0..self.subscriptions.len() {
            streams.push(self.subscribe(i).await?);
        }
        self.subscribed.store(true, Ordering::Release);
        Ok(self.run_with(streams, Vec::new(), shutdown, max, handler))
    }

    /// Like [`start`](Self::start), but subscribing inside the loop (again
    /// and again while the bus refuses) instead of failing.
    pub async fn run<H, Fut>(self, shutdown: CancellationToken, handler: H)
    where
        H: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandleError>> + Send + 'static,
    {
        self.run_batches(shutdown, 1, one_by_one(handler)).await;
    }

    /// [`run`](Self::run) in batches of up to `max`, as [`start_batches`](Self::start_batches).
    pub async fn run_batches<H, Fut>(self, shutdown: CancellationToken, max: usize, handler: H)
    where
        H: Fn(Vec<Delivery>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandleError>> + Send + 'static,
    {
        let missing = (0..self.subscriptions.len()).collect();
        self.run_with(SelectAll::new(), missing, shutdown, max, handler).await;
    }

    /// Subscription `i`, as a stream of `(i, Some(message))` ending with `(i, None)`.
    async fn subscribe(&self, i: usize) -> Result<Tagged, BusError> {
        let stream = self.bus.subscribe(self.subscriptions[i].clone()).await?;
        Ok(Box::pin(
            stream
                .map(move |m| (i, Some(m)))
                .chain(futures::stream::once(async move { (i, None) })),
        ))
    }

    async fn run_with<H, Fut>(
        self,
        mut streams: SelectAll<Tagged>,
        mut missing: Vec<usize>,
        shutdown: CancellationToken,
        max: usize,
        handler: H,
    ) where
        H: Fn(Vec<Delivery>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandleError>> + Send + 'static,
    {
        let mut failures: u32 = 0;
        loop {
            while let Some(&i) = missing.last() {
                match self.subscribe(i).await {
                    Ok(s) => {
                        streams.push(s);
                        missing.pop();
                        if missing.is_empty() {
                            tracing::info!(consumer = %self.name, subscriptions = self.subscriptions.len(), "subscribed");
                        }
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let wait = RESUBSCRIBE.backoff(failures);
                        let pattern = &self.subscriptions[i].pattern;
                        tracing::warn!(consumer = %self.name, pattern = %pattern, error = %e, retry_in = ?wait, "cannot subscribe");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                }
            }
            self.subscribed.store(true, Ordering::Release);
            let next = tokio::select! {
                () = shutdown.cancelled() => break,
                next = streams.next() => next,
            };
            match next {
                Some((_, Some(msg))) => {
                    failures = 0;
                    // Every message already waiting joins it, up to `max`.
                    let mut batch = vec![msg];
                    let mut ended = None;
                    while batch.len() < max {
                        match streams.next().now_or_never() {
                            Some(Some((_, Some(m)))) => batch.push(m),
                            Some(Some((i, None))) => {
                                ended = Some(i);
                                break;
                            }
                            Some(None) | None => break,
                        }
                    }
                    if self.handle_batch(batch, &shutdown, &handler).await.is_break() {
                        break;
                    }
                    if let Some(i) = ended {
                        self.subscribed.store(false, Ordering::Release);
                        tracing::warn!(consumer = %self.name, pattern = %self.subscriptions[i].pattern, "subscription ended; subscribing again");
                        missing.push(i);
                    }
                }
                Some((i, None)) => {
                    self.subscribed.store(false, Ordering::Release);
                    failures = failures.saturating_add(1);
                    let wait = RESUBSCRIBE.backoff(failures);
                    let pattern = &self.subscriptions[i].pattern;
                    tracing::warn!(consumer = %self.name, pattern = %pattern, retry_in = ?wait, "subscription ended; subscribing again");
                    missing.push(i);
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                // No subscriptions at all: nothing to wait for but shutdown.
                None => {
                    shutdown.cancelled().await;
                    break;
                }
            }
        }
        self.subscribed.store(false, Ordering::Release);
    }

    /// Handles a batch: at once when every message decodes and the handler
    /// takes them all, each acknowledged then; else each message on its own
    /// ([`handle`](Self::handle)). A batch of one is handled on its own.
    async fn handle_batch<H, Fut>(
        &self,
        mut batch: Vec<Message>,
        shutdown: &CancellationToken,
        handler: &H,
    ) -> std::ops::ControlFlow<()>
    where
        H: Fn(Vec<Delivery>) -> Fut,
        Fut: Future<Output = Result<(), HandleError>>,
    {
        use std::ops::ControlFlow::{Break, Continue};
        if batch.len() == 1 {
            if let Some(msg) = batch.pop() {
                return self.handle(msg, 1, shutdown, handler).await;
            }
            return Continue(());
        }
        let mut deliveries = Vec::with_capacity(batch.len());
        let mut taken = Vec::with_capacity(batch.len());
        for msg in batch {
            match BusEvent::decode(&msg) {
                Ok(event) => {
                    deliveries.push(Delivery {
                        subject: msg.subject.clone(),
                        headers: msg.headers.clone(),
                        event,
                        payload: msg.payload.clone(),
                        attempt: 1,
                    });
                    taken.push(msg);
                }
                Err(e) => {
                    let family = subject::family(&msg.subject);
                    metrics::counter!(metric::DECODE_ERRORS, "family" => family).increment(1);
                    self.dead_letter(&msg, &e.to_string(), 0).await;
                }
            }
        }
        if taken.is_empty() {
            return Continue(());
        }
        // The batch continues the first message's trace.
        let span = tracing::info_span!("bus.consume_batch", consumer = %self.name, messages = taken.len());
        if let Some(first) = taken.first() {
            crate::telemetry::set_parent_from(&span, &first.headers);
        }
        let outcome = AssertUnwindSafe(handler(deliveries).instrument(span))
            .catch_unwind()
            .await;
        if let Ok(Ok(())) = outcome {
            for msg in &taken {
                if let Err(e) = msg.ack().await {
                    tracing::warn!(consumer = %self.name, error = %e, "cannot acknowledge a bus message; it may be redelivered");
                }
            }
            return Continue(());
        }
        metrics::counter!(metric::HANDLER_RETRIES, "consumer" => self.name.clone()).increment(1);
        tracing::warn!(consumer = %self.name, messages = taken.len(), "a batch failed; handling its messages one by one");
        for msg in taken {
            if self.handle(msg, 2, shutdown, handler).await.is_break() {
                return Break(());
            }
        }
        Continue(())
    }

    /// Handles one message to its end: acknowledged, or dead-lettered and
    /// acknowledged, or (at shutdown) left for redelivery. `attempt` is the
    /// first attempt's number (2 after its batch failed).
    async fn handle<H, Fut>(
        &self,
        msg: Message,
        attempt: u32,
        shutdown: &CancellationToken,
        handler: &H,
    ) -> std::ops::ControlFlow<()>
    where
        H: Fn(Vec<Delivery>) -> Fut,
        Fut: Future<Output = Result<(), HandleError>>,
    {
        use std::ops::ControlFlow::{Break, Continue};
        let span = tracing::info_span!("bus.consume", consumer = %self.name, subject = %msg.subject);
        crate::telemetry::set_parent_from(&span, &msg.headers);
        async {
            let mut first = match BusEvent::decode(&msg) {
                Ok(event) => Some(event),
                Err(e) => {
                    let family = subject::family(&msg.subject);
                    metrics::counter!(metric::DECODE_ERRORS, "family" => family).increment(1);
                    self.dead_letter(&msg, &e.to_string(), 0).await;
                    return Continue(());
                }
            };
            let mut attempt = attempt.max(1);
            loop {
                // Decoded once; decoded again (to the same) only for a retry.
                let event = match first.take() {
                    Some(e) => e,
                    None => match BusEvent::decode(&msg) {
                        Ok(e) => e,
                        Err(e) => {
                            self.dead_letter(&msg, &e.to_string(), attempt.saturating_sub(1)).await;
                            return Continue(());
                        }
                    },
                };
                let delivery = Delivery {
                    subject: msg.subject.clone(),
                    headers: msg.headers.clone(),
                    event,
                    payload: msg.payload.clone(),
                    attempt,
                };
                let outcome = AssertUnwindSafe(handler(vec![delivery])).catch_unwind().await;
                let error = match outcome {
                    Ok(Ok(())) => {
                        if let Err(e) = msg.ack().await {
                            tracing::warn!(consumer = %self.name, error = %e, "cannot acknowledge a bus message; it may be redelivered");
                        }
                        return Continue(());
                    }
                    Ok(Err(HandleError::Permanent(e))) => {
                        self.dead_letter(&msg, &e.to_string(), attempt).await;
                        return Continue(());
                    }
                    Err(panic) => {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        self.dead_letter(&msg, &format!("the handler panicked: {what}"), attempt)
                            .await;
                        return Continue(());
                    }
                    Ok(Err(HandleError::Transient(e))) => e,
                };
                if attempt >= self.retry.max_attempts {
                    let reason = format!("still failing after {attempt} attempts: {error}");
                    self.dead_letter(&msg, &reason, attempt).await;
                    return Continue(());
                }
                let wait = self.retry.backoff(attempt);
                metrics::counter!(metric::HANDLER_RETRIES, "consumer" => self.name.clone()).increment(1);
                tracing::warn!(consumer = %self.name, attempt, max_attempts = self.retry.max_attempts, retry_in = ?wait, error = %error, "cannot handle a bus message; retrying");
                // Keeps JetStream from redelivering it while we wait.
                let _ = msg.in_progress().await;
                tokio::select! {
                    () = shutdown.cancelled() => {
                        let _ = msg.nak(None).await;
                        return Break(());
                    }
                    () = tokio::time::sleep(wait) => {}
                }
                attempt += 1;
            }
        }
        .instrument(span)
        .await
    }

    /// Publishes `msg` on the dead-letter subject and acknowledges it; if
    /// that publish fails, leaves it for redelivery instead.
    async fn dead_letter(&self, msg: &Message, reason: &str, attempts: u32) {
        let reason: String = clip(reason)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let shown_subject = clip(&msg.subject);
        if msg.subject.starts_with(subject::DEAD_LETTER_PREFIX) {
            // Never a dead letter of a dead letter.
            tracing::error!(consumer = %self.name, subject = %shown_subject, reason = %reason, "dropping a dead letter that reached a consumer");
            let _ = msg.ack().await;
            return;
        }
        let mut headers = msg.headers.clone();
        headers.insert(header::ORIGINAL_SUBJECT.to_owned(), msg.subject.clone());
        headers.insert(header::CONSUMER.to_owned(), self.name.clone());
        headers.insert(header::REASON.to_owned(), reason.clone());
        headers.insert(header::ATTEMPTS.to_owned(), attempts.to_string());
        let to = self.dead_letter_subject();
        match self.bus.publish(&to, headers, msg.payload.clone()).await {
            Ok(()) => {
                metrics::counter!(metric::DEAD_LETTERS, "consumer" => self.name.clone()).increment(1);
                tracing::error!(
                    consumer = %self.name,
                    subject = %shown_subject,
                    bytes = msg.payload.len(),
                    excerpt = %excerpt(&msg.payload),
                    attempts,
                    reason = %reason,
                    dead_letter = %to,
                    "dead-lettered a bus message"
                );
                if let Err(e) = msg.ack().await {
                    tracing::warn!(consumer = %self.name, error = %e, "cannot acknowledge a dead-lettered message; it may come again");
                }
            }
            Err(e) => {
                tracing::error!(consumer = %self.name, subject = %shown_subject, reason = %reason, error = %e, "cannot dead-letter a bus message; leaving it for redelivery");
                let _ = msg.nak(Some(RESUBSCRIBE.max_backoff)).await;
            }
        }
    }
}

/// A handler of one delivery as a handler of batches (each of one).
pub(crate) fn one_by_one<H, Fut>(
    handler: H,
) -> impl Fn(Vec<Delivery>) -> futures::future::BoxFuture<'static, Result<(), HandleError>> + Clone + Send + Sync + 'static
where
    H: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandleError>> + Send + 'static,
{
    let handler = Arc::new(handler);
    move |batch: Vec<Delivery>| {
        let handler = Arc::clone(&handler);
        Box::pin(async move {
            for d in batch {
                handler(d).await?;
            }
            Ok(())
        })
    }
}

type Tagged = std::pin::Pin<Box<dyn futures::Stream<Item = (usize, Option<Message>)> + Send>>;

struct Readiness {
    name: String,
    subscribed: Arc<AtomicBool>,
    bus: Arc<dyn Bus>,
}

#[async_trait::async_trait]
impl ReadinessCheck for Readiness {
    async fn check(&self) -> Result<(), String> {
        if !self.subscribed.load(Ordering::Acquire) {
            return Err(format!("consumer `{}` is not subscribed", self.name));
        }
        self.bus
            .check()
            .await
            .map_err(|e| format!("consumer `{}`: {e}", self.name))
    }
}

/// Runs a [`Consumer`] named `name` of `subscriptions` until `shutdown`;
/// it subscribes inside the loop and never fails.
pub async fn consume<H, Fut>(
    bus: Arc<dyn Bus>,
    name: &str,
    subscriptions: impl IntoIterator<Item = Subscription>,
    shutdown: CancellationToken,
    handler: H,
) where
    H: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandleError>> + Send + 'static,
{
    Consumer::new(bus, name, subscriptions).run(shutdown, handler).await;
}

#[cfg(test)]
#[path = "consume_tests.rs"]
mod tests;
