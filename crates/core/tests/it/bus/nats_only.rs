//! What only the NATS bus promises: durable consumers resume after the last
//! acknowledged message, and the bus rides out a server restart.

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use futures::StreamExt;
use pantau_core::bus::subject::{ALL_CHECK_RESULTS, check_result, event};
use pantau_core::bus::{Bus, Headers, Message, MessageStream, Subscription};
use tokio::time::Instant;

use super::{BusFixture, NatsFixture, assert_quiet, next};

/// How long the bus gets to recover from a server restart.
const RECOVERY: Duration = Duration::from_secs(15);

async fn publish(bus: &dyn Bus, subject: &str, payload: &str) -> anyhow::Result<()> {
    bus.publish(subject, Headers::new(), Bytes::from(payload.to_owned()))
        .await
        .with_context(|| format!("publish {payload:?} on {subject}"))
}

fn text(m: &Message) -> String {
    String::from_utf8_lossy(&m.payload).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_subscription_resumes_after_the_last_ack() -> anyhow::Result<()> {
    let f = NatsFixture::start().await?;
    let spec = Subscription::durable(ALL_CHECK_RESULTS, "d1");
    let subject = check_result("jkt", "web-1");

    let mut sub = f.bus.subscribe(spec.clone()).await?;
    publish(&f.bus, &subject, "1").await?;
    let m = next(&mut sub).await?;
    assert_eq!(text(&m), "1");
    m.ack().await?;
    f.settle().await?; // the ack has reached the server
    drop(sub);
    // The pump notices the drop and withdraws its pull request; a request
    // still pending would take the next messages and hold them for ack_wait.
    tokio::time::sleep(Duration::from_millis(200)).await;

    publish(&f.bus, &subject, "2").await?;
    publish(&f.bus, &subject, "3").await?;

    let mut sub = f.bus.subscribe(spec).await?;
    for expected in ["2", "3"] {
        let m = next(&mut sub)
            .await
            .with_context(|| format!("waiting for {expected}"))?;
        assert_eq!(
            text(&m),
            expected,
            "the resumed consumer must start after the acknowledged message"
        );
        m.ack().await?;
    }
    assert_quiet(&mut sub).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_recovers_from_a_server_restart() -> anyhow::Result<()> {
    let mut f = NatsFixture::start().await?;
    let mut live = f.bus.subscribe(Subscription::live("pantau.event.>")).await?;
    let mut durable = f
        .bus
        .subscribe(Subscription::durable(ALL_CHECK_RESULTS, "restart"))
        .await?;
    f.settle().await?;
    let check_subject = check_result("jkt", "web-1");
    let event_subject = event("reboot", "r1");

    publish(&f.bus, &check_subject, "before").await?;
    publish(&f.bus, &event_subject, "before").await?;
    assert_eq!(text(&next(&mut live).await?), "before");
    let m = next(&mut durable).await?;
    assert_eq!(text(&m), "before");
    m.ack().await?;
    f.settle().await?;
    f.bus.check().await.context("connected before the restart")?;

    f.nats.stop().await;
    eventually(
        Duration::from_secs(5),
        "the bus reports the lost connection",
        async || f.bus.check().await.is_err(),
    )
    .await?;
    f.nats.start_again().await?;

    // Publishing works again once the client has reconnected.
    let deadline = Instant::now() + RECOVERY;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match publish(&f.bus, &check_subject, &format!("after-{attempt}")).await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                note_retry(&e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                return Err(e.context(format!("publishing still fails {RECOVERY:?} after the restart")));
            }
        }
    }
    f.bus.check().await.context("connected after the restart")?;

    // The durable consumer re-attaches and gets what was published after the
    // restart; a redelivery of "before" (its ack may be lost in a kill) is
    // allowed, as are earlier attempts that the server stored after all.
    let got = receive_until(&mut durable, RECOVERY, |m| text(m).starts_with("after-")).await?;
    got.ack().await?;

    // The live subscription is re-established on reconnect; it only sees
    // messages published after that, so keep publishing until one arrives.
    let deadline = Instant::now() + RECOVERY;
    let mut n = 0;
    loop {
        n += 1;
        publish(&f.bus, &event_subject, &format!("after-{n}")).await?;
        match tokio::time::timeout(Duration::from_millis(500), live.next()).await {
            Ok(Some(m)) if text(&m).starts_with("after-") => break,
            Ok(Some(m)) => bail!("unexpected live message {:?}", text(&m)),
            Ok(None) => bail!("the live subscription ended with the restart"),
            Err(_) if Instant::now() < deadline => {}
            Err(_) => bail!("the live subscription got nothing {RECOVERY:?} after the restart"),
        }
    }
    Ok(())
}

/// A failed publish during recovery is expected; printed for the test log.
fn note_retry(e: &anyhow::Error) {
    eprintln!("publish during recovery failed (retrying): {e:#}");
}

/// Waits until `condition` holds, polling every 50 ms, for at most `within`.
async fn eventually(within: Duration, what: &str, mut condition: impl AsyncFnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while !condition().await {
        ensure!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Receives (acknowledging what it skips) until a message satisfies `wanted`.
async fn receive_until(
    stream: &mut MessageStream,
    within: Duration,
    wanted: impl Fn(&Message) -> bool,
) -> anyhow::Result<Message> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = tokio::time::timeout(left, stream.next())
            .await
            .with_context(|| format!("no wanted message within {within:?}"))?
            .context("the subscription ended")?;
        if wanted(&m) {
            return Ok(m);
        }
        m.ack().await?;
    }
}

/// Services starting together race to create the stream; every one of them
/// connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_connecting_at_once_share_the_stream() -> anyhow::Result<()> {
    let nats = pantau_testkit::Nats::start().await?;
    let cfg = super::NatsFixture::config(&nats);
    let (first, second, third) = tokio::join!(
        pantau_core::bus::nats::NatsBus::connect(&cfg, "first"),
        pantau_core::bus::nats::NatsBus::connect(&cfg, "second"),
        pantau_core::bus::nats::NatsBus::connect(&cfg, "third")
    );
    first?;
    second?;
    third?;
    Ok(())
}

/// A consumer rides out a server restart: readiness fails while the server
/// is gone, comes back, and what is published afterwards is handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_resubscribes_after_a_server_restart() -> anyhow::Result<()> {
    use pantau_core::bus::{BusEvent, Consumer, Delivery};
    use pantau_proto::v1::MetricSample;

    let mut f = NatsFixture::start().await?;
    let (tx, mut handled) = tokio::sync::mpsc::unbounded_channel();
    let consumer = Consumer::new(
        f.shared(),
        "restarting",
        [Subscription::durable("pantau.metric.>", "restarting")],
    );
    let ready = consumer.readiness();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    tokio::spawn(
        consumer
            .start(shutdown, move |d: Delivery| {
                if let BusEvent::Metric(m) = d.event {
                    let _ = tx.send(m.name);
                }
                std::future::ready(Ok(()))
            })
            .await?,
    );
    let sample = |name: &str| MetricSample {
        name: name.to_owned(),
        ..Default::default()
    };
    pantau_core::bus::publish_proto(&f.bus, "pantau.metric.before", &sample("before")).await?;
    let got = tokio::time::timeout(super::WAIT, handled.recv()).await?;
    ensure!(got.as_deref() == Some("before"), "{got:?}");
    ensure!(ready.check().await.is_ok(), "{:?}", ready.check().await);

    f.nats.stop().await;
    eventually(
        Duration::from_secs(5),
        "readiness fails without the server",
        async || ready.check().await.is_err(),
    )
    .await?;
    f.nats.start_again().await?;
    eventually(RECOVERY, "readiness recovers with the server", async || {
        ready.check().await.is_ok()
    })
    .await?;

    // Publish until one arrives: the first attempts may land while the
    // consumer re-attaches; anything they stored is delivered too.
    let deadline = Instant::now() + RECOVERY;
    let mut n = 0;
    loop {
        n += 1;
        match pantau_core::bus::publish_proto(&f.bus, "pantau.metric.after", &sample("after")).await {
            Ok(()) => {}
            Err(e) if Instant::now() < deadline => note_retry(&anyhow::Error::from(e)),
            Err(e) => return Err(e).context("publishing after the restart"),
        }
        match tokio::time::timeout(Duration::from_millis(500), handled.recv()).await {
            Ok(Some(name)) if name == "after" => break,
            Ok(Some(name)) if name == "before" => {} // its ack may have been lost with the server
            Ok(other) => bail!("unexpected {other:?} after the restart"),
            Err(_) if Instant::now() < deadline => {}
            Err(_) => bail!("nothing handled {RECOVERY:?} after the restart ({n} publishes)"),
        }
    }
    ensure!(ready.check().await.is_ok(), "{:?}", ready.check().await);
    Ok(())
}
