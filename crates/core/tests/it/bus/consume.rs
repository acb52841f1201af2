//! The consumer loop over a real bus: dead letters, bounded retries, and
//! acknowledgement after handling (counted by NATS itself).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use pantau_core::bus::consume::header;
use pantau_core::bus::subject::{self, ALL_ALERTS};
use pantau_core::bus::{
    self, BusEvent, Consumer, Delivery, HandleError, Headers, Message, MessageStream, RetryPolicy, Subscription,
};
use pantau_proto::v1::{AlertEvent, AlertState, CheckResult, ConsensusResult, EventKind, MetricSample, RouterEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{BusFixture, WAIT, assert_quiet, next};

/// Retries quick enough for a test.
const FAST: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    initial_backoff: Duration::from_millis(10),
    max_backoff: Duration::from_millis(50),
};

fn alert(id: &str) -> AlertEvent {
    AlertEvent {
        alert_id: id.into(),
        state: AlertState::Firing.into(),
        summary: format!("{id} is down"),
        ..Default::default()
    }
}

/// Starts `consumer` with `handler`; the loop stops when the token is dropped.
async fn start<H, Fut>(consumer: Consumer, handler: H) -> anyhow::Result<tokio_util::sync::DropGuard>
where
    H: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandleError>> + Send + 'static,
{
    let shutdown = CancellationToken::new();
    let run = consumer
        .start(shutdown.clone(), handler)
        .await
        .context("start the consumer")?;
    tokio::spawn(run);
    Ok(shutdown.drop_guard())
}

async fn received<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> anyhow::Result<T> {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .with_context(|| format!("{what}: nothing within {WAIT:?}"))?
        .context("the handler is gone")
}

/// The next dead letter, checked against the original subject and payload.
async fn dead_letter(
    dead: &mut MessageStream,
    consumer: &str,
    original: &str,
    payload: &[u8],
) -> anyhow::Result<Message> {
    let d = next(dead).await.context("waiting for a dead letter")?;
    ensure!(
        d.subject == subject::dead_letter(consumer),
        "dead letter on {}",
        d.subject
    );
    ensure!(
        d.headers.get(header::ORIGINAL_SUBJECT).map(String::as_str) == Some(original),
        "original subject header: {:?}",
        d.headers
    );
    ensure!(d.headers.get(header::CONSUMER).map(String::as_str) == Some(consumer));
    ensure!(d.payload == payload, "dead letter payload {:?}", d.payload);
    Ok(d)
}

/// Waits until NATS counts no unacknowledged delivery for `durable`.
async fn all_acknowledged(f: &impl BusFixture, durable: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match f.unacknowledged(durable).await? {
            None | Some(0) => return Ok(()),
            Some(n) => ensure!(
                tokio::time::Instant::now() < deadline,
                "{n} deliveries of {durable} still unacknowledged"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The notifier's case: a garbage payload on the alert subject must not stop
/// the alerts after it.
pub(super) async fn consumer_dead_letters_garbage_and_handles_the_next(f: &impl BusFixture) -> anyhow::Result<()> {
    let mut dead = f.bus().subscribe(Subscription::live("pantau.deadletter.>")).await?;
    let (tx, mut handled) = mpsc::unbounded_channel();
    let consumer = Consumer::new(
        f.shared(),
        "notifier-test",
        [Subscription::durable(ALL_ALERTS, "notifier-test")],
    );
    let ready = consumer.readiness();
    let _stop = start(consumer, move |d: Delivery| {
        let tx = tx.clone();
        async move {
            let BusEvent::Alert { state, alert } = d.event else {
                return Err(HandleError::permanent("not an alert"));
            };
            let _ = tx.send((state, alert.alert_id, d.subject));
            Ok(())
        }
    })
    .await?;
    f.settle().await?;
    ensure!(
        ready.check().await.is_ok(),
        "not ready once started: {:?}",
        ready.check().await
    );

    let bad = subject::alert("firing", "a1");
    f.bus()
        .publish(&bad, Headers::new(), Bytes::from_static(b"garbage"))
        .await?;
    bus::publish_proto(f.bus(), &subject::alert("firing", "a2"), &alert("a2")).await?;

    let (state, id, on) = received(&mut handled, "the good alert").await?;
    ensure!(state == AlertState::Firing && id == "a2" && on == "pantau.alert.firing.a2");
    let d = dead_letter(&mut dead, "notifier-test", &bad, b"garbage").await?;
    let reason = &d.headers[header::REASON];
    ensure!(
        reason.contains("AlertEvent") && reason.contains(&bad),
        "the reason names the subject and type: {reason}"
    );
    ensure!(d.headers[header::ATTEMPTS] == "0");
    all_acknowledged(f, "notifier-test").await?;
    assert_quiet(&mut dead).await
}

/// A handler that keeps failing transiently is retried `max_attempts` times,
/// then its message is dead-lettered and acknowledged; the next one is handled.
pub(super) async fn consumer_retries_a_transient_failure_then_dead_letters_it(
    f: &impl BusFixture,
) -> anyhow::Result<()> {
    let mut dead = f.bus().subscribe(Subscription::live("pantau.deadletter.>")).await?;
    let attempts = Arc::new(AtomicU32::new(0));
    let (tx, mut handled) = mpsc::unbounded_channel();
    let consumer = Consumer::new(
        f.shared(),
        "retrying",
        [Subscription::durable("pantau.metric.>", "retrying")],
    )
    .with_retry(FAST);
    let _stop = start(consumer, {
        let attempts = Arc::clone(&attempts);
        move |d: Delivery| {
            let attempts = Arc::clone(&attempts);
            let tx = tx.clone();
            async move {
                let BusEvent::Metric(m) = d.event else {
                    return Err(HandleError::permanent("not a metric"));
                };
                if m.name == "flaky" {
                    attempts.fetch_add(1, Ordering::AcqRel);
                    return Err(HandleError::transient(format!("store down at attempt {}", d.attempt)));
                }
                let _ = tx.send(m.name);
                Ok(())
            }
        }
    })
    .await?;
    f.settle().await?;
    let flaky = MetricSample {
        name: "flaky".into(),
        ..Default::default()
    };
    bus::publish_proto(f.bus(), &subject::metric("flaky"), &flaky).await?;
    bus::publish_proto(
        f.bus(),
        &subject::metric("fine"),
        &MetricSample {
            name: "fine".into(),
            ..Default::default()
        },
    )
    .await?;

    ensure!(received(&mut handled, "the next message").await? == "fine");
    ensure!(attempts.load(Ordering::Acquire) == 3, "attempts: {attempts:?}");
    let d = dead_letter(
        &mut dead,
        "retrying",
        "pantau.metric.flaky",
        &pantau_proto::prost::Message::encode_to_vec(&flaky),
    )
    .await?;
    ensure!(d.headers[header::ATTEMPTS] == "3");
    let reason = &d.headers[header::REASON];
    ensure!(
        reason == "still failing after 3 attempts: store down at attempt 3",
        "{reason}"
    );
    all_acknowledged(f, "retrying").await?;
    assert_quiet(&mut dead).await
}

/// A permanent failure is dead-lettered at the first attempt, with the trace
/// context it came with.
pub(super) async fn consumer_dead_letters_a_permanent_failure_at_once(f: &impl BusFixture) -> anyhow::Result<()> {
    let mut dead = f.bus().subscribe(Subscription::live("pantau.deadletter.>")).await?;
    let calls = Arc::new(AtomicU32::new(0));
    let consumer = Consumer::new(
        f.shared(),
        "strict",
        [Subscription::durable("pantau.event.>", "strict")],
    )
    .with_retry(FAST);
    let _stop = start(consumer, {
        let calls = Arc::clone(&calls);
        move |_: Delivery| {
            calls.fetch_add(1, Ordering::AcqRel);
            std::future::ready(Err(HandleError::permanent("an event without a source")))
        }
    })
    .await?;
    f.settle().await?;
    let subject = subject::event("reboot", "r1");
    let mut headers = Headers::new();
    headers.insert(
        "traceparent".into(),
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
    );
    let event = pantau_proto::prost::Message::encode_to_vec(&RouterEvent::default());
    f.bus().publish(&subject, headers, Bytes::from(event.clone())).await?;
    let d = dead_letter(&mut dead, "strict", &subject, &event).await?;
    ensure!(d.headers[header::REASON] == "an event without a source");
    ensure!(d.headers[header::ATTEMPTS] == "1");
    ensure!(d.headers["traceparent"].starts_with("00-0af7651916cd43dd8448eb211c80319c-"));
    ensure!(calls.load(Ordering::Acquire) == 1, "called {calls:?} times");
    all_acknowledged(f, "strict").await
}

/// One consumer over several subscriptions gets each family as its variant,
/// consensus on its own subject included.
pub(super) async fn consumer_handles_every_family_it_subscribes_to(f: &impl BusFixture) -> anyhow::Result<()> {
    let (tx, mut handled) = mpsc::unbounded_channel();
    let consumer = Consumer::new(
        f.shared(),
        "families",
        [
            Subscription::durable(subject::ALL_CHECK_RESULTS, "families-checks"),
            Subscription::durable(subject::ALL_EVENTS, "families-events"),
            Subscription::live(subject::ALL_CONSENSUS),
        ],
    );
    let _stop = start(consumer, move |d: Delivery| {
        let _ = tx.send(d.event);
        std::future::ready(Ok(()))
    })
    .await?;
    f.settle().await?;
    let check = CheckResult {
        target_id: "web".into(),
        ..Default::default()
    };
    let consensus = ConsensusResult {
        target_id: "web".into(),
        ..Default::default()
    };
    let down = RouterEvent {
        source: "web".into(),
        kind: EventKind::TargetDown.into(),
        ..Default::default()
    };
    bus::publish_proto(f.bus(), &subject::check_result("jkt", "web"), &check).await?;
    bus::publish_proto(f.bus(), &subject::consensus("web"), &consensus).await?;
    bus::publish_proto(f.bus(), &subject::event("target_down", "web"), &down).await?;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(received(&mut handled, "three events").await?);
    }
    // Three subscriptions: their relative order is not promised.
    got.sort_by_key(BusEvent::family);
    ensure!(
        got == [
            BusEvent::CheckResult(check),
            BusEvent::Consensus(consensus),
            BusEvent::Event {
                kind: EventKind::TargetDown,
                event: down
            },
        ],
        "{got:?}"
    );
    all_acknowledged(f, "families-checks").await?;
    all_acknowledged(f, "families-events").await
}
