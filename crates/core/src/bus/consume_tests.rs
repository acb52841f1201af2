//! Tests of the consumer loop (`consume.rs`).
use std::sync::Mutex;
use std::sync::atomic::AtomicU32;

use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use pantau_proto::v1::MetricSample;
use tokio::sync::{mpsc, watch};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;
use crate::bus::MessageStream;
use crate::bus::memory::MemoryBus;

const WAIT: Duration = Duration::from_secs(5);

/// A bus whose subscriptions can be cut and whose next subscribes can be refused.
#[derive(Clone)]
struct Flaky {
    inner: MemoryBus,
    refuse: Arc<AtomicU32>,
    cut: watch::Sender<u32>,
}

impl Flaky {
    fn new() -> Self {
        Self {
            inner: MemoryBus::new(),
            refuse: Arc::default(),
            cut: watch::channel(0).0,
        }
    }

    /// Ends every subscription made so far.
    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

#[async_trait]
impl Bus for Flaky {
    async fn publish(&self, subject: &str, headers: Headers, payload: Bytes) -> Result<(), BusError> {
        self.inner.publish(subject, headers, payload).await
    }

    async fn subscribe(&self, sub: Subscription) -> Result<MessageStream, BusError> {
        let refused = self
            .refuse
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if refused {
            return Err(BusError::Closed);
        }
        let mut cut = self.cut.subscribe();
        cut.mark_unchanged();
        let stream = self.inner.subscribe(sub).await?;
        Ok(Box::pin(stream.take_until(async move {
            let _ = cut.changed().await;
        })))
    }

    fn kind(&self) -> &'static str {
        "flaky"
    }

    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }
}

fn metric(name: &str) -> MetricSample {
    MetricSample {
        name: name.into(),
        value: 1.0,
        ..Default::default()
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("nothing within 5s")
        .expect("channel closed")
}

async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A handler that sends the metric names it sees to a channel.
fn names() -> (
    impl Fn(Delivery) -> std::future::Ready<Result<(), HandleError>> + Send + Sync + 'static,
    mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = move |d: Delivery| {
        let BusEvent::Metric(m) = d.event else {
            return std::future::ready(Err(HandleError::permanent("not a metric")));
        };
        let _ = tx.send(m.name);
        std::future::ready(Ok(()))
    };
    (handler, rx)
}

#[tokio::test]
async fn resubscribes_after_the_stream_ends_and_readiness_follows() {
    let bus = Flaky::new();
    let consumer = Consumer::new(
        Arc::new(bus.clone()),
        "test",
        [Subscription::durable("pantau.metric.>", "test")],
    );
    let ready = consumer.readiness();
    assert!(ready.check().await.is_err(), "ready before subscribing");
    let (handler, mut seen) = names();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(consumer.start(shutdown.clone(), handler).await.unwrap());
    assert_eq!(ready.check().await, Ok(()));
    crate::bus::publish_proto(&bus, "pantau.metric.a", &metric("a"))
        .await
        .unwrap();
    assert_eq!(recv(&mut seen).await, "a");

    bus.refuse.store(3, Ordering::Release);
    bus.cut();
    eventually("readiness fails once unsubscribed", async || {
        ready.check().await.is_err()
    })
    .await;
    assert_eq!(ready.check().await, Err("consumer `test` is not subscribed".to_owned()));
    eventually("readiness recovers", async || ready.check().await.is_ok()).await;
    assert_eq!(bus.refuse.load(Ordering::Acquire), 0, "every refusal was met");
    crate::bus::publish_proto(&bus, "pantau.metric.b", &metric("b"))
        .await
        .unwrap();
    assert_eq!(recv(&mut seen).await, "b");

    shutdown.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    assert!(ready.check().await.is_err(), "ready after shutdown");
}

#[tokio::test]
async fn run_keeps_subscribing_until_the_bus_accepts() {
    let bus = Flaky::new();
    bus.refuse.store(2, Ordering::Release);
    let consumer = Consumer::new(
        Arc::new(bus.clone()),
        "test",
        [Subscription::durable("pantau.metric.>", "test")],
    );
    let ready = consumer.readiness();
    let (handler, mut seen) = names();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(consumer.run(shutdown.clone(), handler));
    eventually("subscribed after two refusals", async || ready.check().await.is_ok()).await;
    crate::bus::publish_proto(&bus, "pantau.metric.x", &metric("x"))
        .await
        .unwrap();
    assert_eq!(recv(&mut seen).await, "x");
    shutdown.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_transient_failure_that_clears_is_not_dead_lettered() {
    let bus = MemoryBus::new();
    let mut dead = bus.subscribe(Subscription::live("pantau.deadletter.>")).await.unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let (tx, mut seen) = mpsc::unbounded_channel();
    let handler = {
        let calls = Arc::clone(&calls);
        move |d: Delivery| {
            let n = calls.fetch_add(1, Ordering::AcqRel) + 1;
            let tx = tx.clone();
            async move {
                if n < 3 {
                    return Err(HandleError::transient(format!("store down ({n})")));
                }
                let _ = tx.send(d.attempt);
                Ok(())
            }
        }
    };
    let shutdown = CancellationToken::new();
    let consumer =
        Consumer::new(Arc::new(bus.clone()), "t", [Subscription::live("pantau.metric.>")]).with_retry(fast());
    tokio::spawn(consumer.start(shutdown.clone(), handler).await.unwrap());
    crate::bus::publish_proto(&bus, "pantau.metric.a", &metric("a"))
        .await
        .unwrap();
    assert_eq!(recv(&mut seen).await, 3, "handled at the third attempt");
    assert!(
        tokio::time::timeout(Duration::from_millis(100), dead.next())
            .await
            .is_err(),
        "nothing is dead-lettered"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_panicking_handler_dead_letters_and_goes_on() {
    let bus = MemoryBus::new();
    let mut dead = bus.subscribe(Subscription::live("pantau.deadletter.>")).await.unwrap();
    let (tx, mut seen) = mpsc::unbounded_channel();
    let handler = move |d: Delivery| {
        let tx = tx.clone();
        async move {
            let BusEvent::Metric(m) = d.event else { unreachable!() };
            assert_ne!(m.name, "boom", "a handler bug");
            let _ = tx.send(m.name);
            Ok(())
        }
    };
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(Arc::new(bus.clone()), "p", [Subscription::live("pantau.metric.>")]);
    tokio::spawn(consumer.start(shutdown.clone(), handler).await.unwrap());
    crate::bus::publish_proto(&bus, "pantau.metric.boom", &metric("boom"))
        .await
        .unwrap();
    crate::bus::publish_proto(&bus, "pantau.metric.fine", &metric("fine"))
        .await
        .unwrap();
    assert_eq!(recv(&mut seen).await, "fine");
    let d = tokio::time::timeout(WAIT, dead.next()).await.unwrap().unwrap();
    assert_eq!(d.subject, "pantau.deadletter.p");
    assert_eq!(d.headers[header::ORIGINAL_SUBJECT], "pantau.metric.boom");
    assert_eq!(d.headers[header::ATTEMPTS], "1");
    let reason = &d.headers[header::REASON];
    assert!(reason.starts_with("the handler panicked: assertion"), "{reason}");
    assert!(!reason.contains('\n'), "{reason:?}");
    shutdown.cancel();
}

#[tokio::test(flavor = "current_thread")]
async fn the_handler_continues_the_publishers_trace() {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);
    let bus = MemoryBus::new();
    let (tx, mut seen) = mpsc::unbounded_channel();
    let handler = move |_: Delivery| {
        let trace = tracing::Span::current().context().span().span_context().trace_id();
        let _ = tx.send(trace);
        std::future::ready(Ok(()))
    };
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(Arc::new(bus.clone()), "t", [Subscription::live("pantau.metric.>")]);
    tokio::spawn(consumer.start(shutdown.clone(), handler).await.unwrap());
    let span = tracing::info_span!("producer");
    let sent = span.context().span().span_context().trace_id();
    crate::bus::publish_proto(&bus, "pantau.metric.a", &metric("a"))
        .instrument(span)
        .await
        .unwrap();
    assert_eq!(recv(&mut seen).await, sent);
    shutdown.cancel();
}

/// A hostile `traceparent` in the headers: the message is handled (and
/// acknowledged, not dead-lettered), in a trace of its own.
#[tokio::test(flavor = "current_thread")]
async fn a_hostile_traceparent_is_ignored_by_the_consumer() {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);
    let bus = MemoryBus::new();
    let mut dead = bus.subscribe(Subscription::live("pantau.deadletter.>")).await.unwrap();
    let (tx, mut seen) = mpsc::unbounded_channel();
    let handler = move |_: Delivery| {
        let sc = tracing::Span::current().context().span().span_context().clone();
        let _ = tx.send((sc.is_valid(), sc.trace_id().to_string()));
        std::future::ready(Ok(()))
    };
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(Arc::new(bus.clone()), "t", [Subscription::live("pantau.metric.>")]);
    tokio::spawn(consumer.start(shutdown.clone(), handler).await.unwrap());
    let hostile = crate::telemetry::propagate::tests::hostile();
    for bad in &hostile {
        let headers = Headers::from([
            ("traceparent".to_owned(), bad.clone()),
            ("tracestate".to_owned(), bad.clone()),
        ]);
        let payload = Bytes::from(prost::Message::encode_to_vec(&metric("a")));
        bus.publish("pantau.metric.a", headers, payload).await.unwrap();
        let (valid, trace) = tokio::time::timeout(WAIT, seen.recv()).await.unwrap().unwrap();
        assert!(valid, "the handler runs in a span of its own");
        assert!(!bad.contains(&trace), "{} was taken", crate::error::quote(bad));
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), dead.next())
            .await
            .is_err(),
        "a hostile traceparent is not a reason to dead-letter"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_dead_letter_is_never_dead_lettered_again() {
    let bus = MemoryBus::new();
    let mut dead = bus.subscribe(Subscription::live("pantau.deadletter.>")).await.unwrap();
    let shutdown = CancellationToken::new();
    let calls = Arc::new(Mutex::new(0));
    let handler = {
        let calls = Arc::clone(&calls);
        move |_: Delivery| {
            *calls.lock().unwrap() += 1;
            std::future::ready(Ok(()))
        }
    };
    let consumer = Consumer::new(Arc::new(bus.clone()), "all", [Subscription::live("pantau.>")]);
    tokio::spawn(consumer.start(shutdown.clone(), handler).await.unwrap());
    bus.publish("pantau.metric.x", Headers::new(), Bytes::from_static(b"garbage"))
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, dead.next()).await.unwrap().unwrap();
    assert_eq!(first.subject, "pantau.deadletter.all");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), dead.next())
            .await
            .is_err(),
        "the consumer dead-lettered its own dead letter"
    );
    assert_eq!(*calls.lock().unwrap(), 0);
    shutdown.cancel();
}

#[test]
fn backoff_is_bounded_and_names_are_subjects() {
    let p = RetryPolicy::default();
    assert_eq!(p.backoff(1), Duration::from_millis(200));
    assert_eq!(p.backoff(2), Duration::from_millis(400));
    assert_eq!(p.backoff(100), Duration::from_secs(8));
    assert_eq!(p.backoff(u32::MAX), Duration::from_secs(8));
    let c =
        Consumer::new(Arc::new(MemoryBus::new()), "sync outbox.1", []).with_retry(RetryPolicy { max_attempts: 0, ..p });
    assert_eq!(c.dead_letter_subject(), "pantau.deadletter.sync_outbox_1");
    assert_eq!(c.retry.max_attempts, 1);
    crate::bus::subject::validate_publish(&c.dead_letter_subject()).unwrap();
}

#[tokio::test]
async fn batches_take_every_waiting_message_and_a_failed_batch_is_handled_one_by_one() {
    let bus = MemoryBus::new();
    let mut dead = bus.subscribe(Subscription::live("pantau.deadletter.>")).await.unwrap();
    let (tx, mut seen) = mpsc::unbounded_channel::<Vec<String>>();
    // The first call waits until released, so the next messages queue up.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let first = Arc::new(AtomicBool::new(true));
    let handler = {
        let gate = Arc::clone(&gate);
        move |batch: Vec<Delivery>| {
            let names: Vec<String> = batch
                .iter()
                .map(|d| match &d.event {
                    BusEvent::Metric(m) => m.name.clone(),
                    _ => String::new(),
                })
                .collect();
            let (tx, gate, wait) = (tx.clone(), Arc::clone(&gate), first.swap(false, Ordering::AcqRel));
            async move {
                let bad = names.iter().any(|n| n == "bad");
                let _ = tx.send(names);
                if wait {
                    let _ = gate.acquire().await;
                }
                if bad {
                    return Err(HandleError::permanent("a bad message"));
                }
                Ok(())
            }
        }
    };
    let shutdown = CancellationToken::new();
    let consumer =
        Consumer::new(Arc::new(bus.clone()), "b", [Subscription::live("pantau.metric.>")]).with_retry(fast());
    tokio::spawn(consumer.start_batches(shutdown.clone(), 4, handler).await.unwrap());
    crate::bus::publish_proto(&bus, "pantau.metric.first", &metric("first"))
        .await
        .unwrap();
    assert_eq!(recv(&mut seen).await, ["first"]);
    for n in ["a", "b", "c", "d", "bad", "e"] {
        crate::bus::publish_proto(&bus, &format!("pantau.metric.{n}"), &metric(n))
            .await
            .unwrap();
    }
    gate.add_permits(1);
    // Every waiting message at once, up to the bound of 4…
    assert_eq!(recv(&mut seen).await, ["a", "b", "c", "d"]);
    // …then the rest, whose failure sends each message through on its own.
    assert_eq!(recv(&mut seen).await, ["bad", "e"]);
    assert_eq!(recv(&mut seen).await, ["bad"]);
    assert_eq!(recv(&mut seen).await, ["e"]);
    let d = tokio::time::timeout(WAIT, dead.next()).await.unwrap().unwrap();
    assert_eq!(d.headers[header::ORIGINAL_SUBJECT], "pantau.metric.bad");
    assert_eq!(d.headers[header::ATTEMPTS], "2", "its batch was the first attempt");
    assert!(
        tokio::time::timeout(Duration::from_millis(100), dead.next())
            .await
            .is_err(),
        "only the bad message is dead-lettered"
    );
    shutdown.cancel();
}
