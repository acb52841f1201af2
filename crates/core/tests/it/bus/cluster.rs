//! The NATS bus on a 3-node JetStream cluster with the stream kept on all
//! three (`nats.replicas: 3`): losing one node while results flow loses none
//! of them, and neither the publisher nor the consumer needs a restart.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use async_nats::jetstream;
use bytes::Bytes;
use futures::StreamExt;
use pantau_config::NatsConfig;
use pantau_core::bus::nats::NatsBus;
use pantau_core::bus::subject::{ALL_CHECK_RESULTS, check_result};
use pantau_core::bus::{Bus, Headers, Subscription};
use pantau_testkit::NatsCluster;
use tokio::time::Instant;

/// Results published in all.
const MESSAGES: usize = 2_000;
/// One result every this often: 2,000 take about four seconds.
const EVERY: Duration = Duration::from_millis(2);
/// The node goes down once this many results were acknowledged.
const KILL_AFTER: usize = MESSAGES / 2;
/// How long one result may take to be accepted again after the kill.
const RECOVERY: Duration = Duration::from_secs(20);
/// How long the consumer gets, after the last publish, to have received and
/// acknowledged everything: one `ack_wait` (30 s) for deliveries that were in
/// flight on the dead node, plus slack.
const DRAIN: Duration = Duration::from_secs(45);
const TOKEN: &str = "cluster-test-token";
const STREAM: &str = "PANTAU";
const CONSUMER: &str = "cluster-results";

fn config(cluster: &NatsCluster) -> NatsConfig {
    NatsConfig {
        url: Some(cluster.urls()),
        token: Some(TOKEN.to_owned()),
        replicas: 3,
        publish_timeout: Duration::from_secs(2),
        ..NatsConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_one_of_three_nodes_loses_no_result() -> anyhow::Result<()> {
    let mut cluster = NatsCluster::start_with_token(3, TOKEN).await?;
    let cfg = config(&cluster);
    let publisher = NatsBus::connect(&cfg, "publisher")
        .await
        .context("publisher connects")?;
    let consumer_bus = NatsBus::connect(&cfg, "consumer").await.context("consumer connects")?;
    let js = jetstream::new(publisher.client().clone());
    let info = js.get_stream(STREAM).await?.info().await?.clone();
    ensure!(
        info.config.num_replicas == 3,
        "stream replicas {}",
        info.config.num_replicas
    );

    // The worst node to lose: the stream's leader, ideally also the server
    // the publisher is connected to: a few step-downs try to move the
    // leadership there (best effort; the leader is killed either way).
    let publisher_server = publisher.client().server_info().server_name;
    let mut leader = stream_leader(&js).await?;
    for _ in 0..5 {
        if leader == publisher_server {
            break;
        }
        publisher
            .client()
            .request(format!("$JS.API.STREAM.LEADER.STEPDOWN.{STREAM}"), Bytes::new())
            .await
            .context("stream leader step-down")?;
        leader = settled_leader(&js).await?;
    }
    let victim = (0..cluster.size())
        .find(|i| NatsCluster::server_name(*i) == leader)
        .with_context(|| format!("stream leader {leader:?} is no node of the cluster"))?;
    let consumer_server = consumer_bus.client().server_info().server_name;
    eprintln!(
        "victim n{victim}: the stream leader; publisher connected to {publisher_server}, consumer to {consumer_server}"
    );

    // The consumer: a durable subscription, every message acknowledged, ids
    // deduplicated (a delivery whose ack died with the node comes again).
    let mut sub = consumer_bus
        .subscribe(Subscription::durable(ALL_CHECK_RESULTS, CONSUMER))
        .await?;
    let received = Arc::new(std::sync::Mutex::new(HashSet::<usize>::new()));
    let deliveries = Arc::new(AtomicUsize::new(0));
    let ack_failures = Arc::new(AtomicUsize::new(0));
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let consuming = tokio::spawn({
        let (received, deliveries, ack_failures) = (received.clone(), deliveries.clone(), ack_failures.clone());
        async move {
            loop {
                let m = tokio::select! {
                    _ = &mut stopped => return anyhow::Ok(()),
                    m = sub.next() => m.context("the durable subscription ended")?,
                };
                deliveries.fetch_add(1, Ordering::Relaxed);
                let id: usize = std::str::from_utf8(&m.payload)?.parse()?;
                if m.ack().await.is_err() {
                    ack_failures.fetch_add(1, Ordering::Relaxed);
                }
                received.lock().unwrap().insert(id);
            }
        }
    });

    // The publisher: one result every EVERY; a failed publish is retried
    // with the same Nats-Msg-Id, so JetStream stores it once.
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let publishing = tokio::spawn({
        let (bus, acknowledged) = (publisher.clone(), acknowledged.clone());
        async move {
            let subject = check_result("jkt", "web-1");
            let mut retries = 0usize;
            let mut slowest = Duration::ZERO;
            let mut tick = tokio::time::interval(EVERY);
            for id in 0..MESSAGES {
                tick.tick().await;
                let started = Instant::now();
                let mut headers = Headers::new();
                headers.insert("Nats-Msg-Id".to_owned(), format!("result-{id}"));
                loop {
                    match bus
                        .publish(&subject, headers.clone(), Bytes::from(id.to_string()))
                        .await
                    {
                        Ok(()) => break,
                        Err(e) if started.elapsed() < RECOVERY => {
                            retries += 1;
                            if retries <= 3 {
                                eprintln!("publish {id} failed (retrying): {e}");
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => bail!("result {id} not accepted within {RECOVERY:?}: {e}"),
                    }
                }
                slowest = slowest.max(started.elapsed());
                acknowledged.store(id + 1, Ordering::SeqCst);
            }
            Ok((retries, slowest))
        }
    });

    while acknowledged.load(Ordering::SeqCst) < KILL_AFTER {
        ensure!(!publishing.is_finished(), "the publisher stopped before the kill");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed_at = Instant::now();
    let before = acknowledged.load(Ordering::SeqCst);
    cluster.kill(victim).await;
    eprintln!("killed n{victim} after {before} acknowledged results");

    let (retries, slowest) = publishing.await??;
    let published_in = killed_at.elapsed();

    // Every result received, and acknowledged: the consumer has nothing
    // pending nor waiting for an ack. An ack that died with the node is
    // redelivered after ack_wait and acknowledged then (a counted duplicate).
    let deadline = Instant::now() + DRAIN;
    // JetStream's API may time out while the cluster re-elects: the
    // test's own queries are retried until the deadline.
    let (pending, ack_pending) = loop {
        ensure!(!consuming.is_finished(), "the consumer stopped: {:?}", consuming.await);
        let state = consumer_state(&js).await;
        let all = received.lock().unwrap().len() == MESSAGES;
        match state {
            Ok((0, 0)) if all => break (0, 0),
            Ok(s) if Instant::now() >= deadline => break s,
            Err(e) if Instant::now() >= deadline => return Err(e.context("consumer state")),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let drained_in = killed_at.elapsed();
    let _ = stop.send(());
    consuming.await??;
    let stored = loop {
        match js.get_stream(STREAM).await {
            Ok(mut s) => match s.info().await {
                Ok(i) => break i.state.messages,
                Err(e) if Instant::now() >= deadline + DRAIN => return Err(e.into()),
                Err(_) => {}
            },
            Err(e) if Instant::now() >= deadline + DRAIN => return Err(e.into()),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let got = received.lock().unwrap().len();
    let delivered = deliveries.load(Ordering::Relaxed);
    eprintln!(
        "published {MESSAGES} (acknowledged {before} before the kill, {retries} retried publishes, slowest {slowest:?}, \
         the rest within {published_in:?} of the kill); stream holds {stored}; received {got} distinct in {delivered} \
         deliveries ({} duplicates, {} failed acks); lost {}; consumer pending {pending}, awaiting ack {ack_pending} \
         ({drained_in:?} after the kill)",
        delivered - got,
        ack_failures.load(Ordering::Relaxed),
        MESSAGES - got,
    );
    ensure!(
        got == MESSAGES,
        "{} results lost\n{}",
        MESSAGES - got,
        cluster.log_tail()
    );
    ensure!(
        pending == 0 && ack_pending == 0,
        "consumer left {pending} undelivered and {ack_pending} unacknowledged"
    );
    // A publish retried across the kill may be stored twice if its first
    // attempt landed but the new leader lost the Nats-Msg-Id; the consumer
    // dedups by id, so only fewer than MESSAGES would be a loss.
    ensure!(
        stored >= MESSAGES as u64,
        "the stream holds only {stored} of {MESSAGES} results"
    );
    // The same clients are still connected: nothing had to be restarted.
    publisher.check().await.context("publisher after the kill")?;
    consumer_bus.check().await.context("consumer after the kill")?;
    ensure!(!cluster.is_running(victim), "the victim is still down");
    Ok(())
}

/// The durable consumer's (undelivered, unacknowledged) counts.
async fn consumer_state(js: &jetstream::Context) -> anyhow::Result<(u64, usize)> {
    let mut c = js
        .get_stream(STREAM)
        .await?
        .get_consumer::<jetstream::consumer::pull::Config>(CONSUMER)
        .await
        .map_err(|e| anyhow::anyhow!("get consumer {CONSUMER}: {e}"))?;
    let i = c.info().await?;
    Ok((i.num_pending, i.num_ack_pending))
}

async fn stream_leader(js: &jetstream::Context) -> anyhow::Result<String> {
    let info = js.get_stream(STREAM).await?.info().await?.clone();
    info.cluster.and_then(|c| c.leader).context("the stream has no leader")
}

/// The stream's leader once an election after a step-down is over: the same
/// leader seen twice 500 ms apart (at most 10 s).
async fn settled_leader(js: &jetstream::Context) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = stream_leader(js).await.ok();
        if now.is_some() && now == last {
            return Ok(now.unwrap_or_default());
        }
        ensure!(
            Instant::now() < deadline,
            "the stream has no settled leader after a step-down"
        );
        last = now;
    }
}

/// A stream made with one replica is moved to `nats.replicas` when a
/// service connects with the new setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_stream_moves_to_the_configured_replicas() -> anyhow::Result<()> {
    let cluster = NatsCluster::start_with_token(3, TOKEN).await?;
    let one = NatsConfig {
        replicas: 1,
        ..config(&cluster)
    };
    let first = NatsBus::connect(&one, "first").await?;
    let js = jetstream::new(first.client().clone());
    let replicas =
        async || -> anyhow::Result<usize> { Ok(js.get_stream(STREAM).await?.info().await?.config.num_replicas) };
    ensure!(replicas().await? == 1, "made with one replica");
    NatsBus::connect(&config(&cluster), "second").await?;
    ensure!(replicas().await? == 3, "not moved to 3 replicas");
    Ok(())
}

/// `nats.ca_file`: a cluster that wants TLS and the token is reached over
/// `tls://` seeds when its CA is trusted, and refused when it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_configured_ca_and_the_token() -> anyhow::Result<()> {
    let cluster = NatsCluster::start_with_tls(3, TOKEN).await?;
    let ca = cluster.ca_file().context("a TLS cluster has a CA")?;
    let cfg = NatsConfig {
        ca_file: Some(ca),
        ..config(&cluster)
    };
    ensure!(cluster.urls().starts_with("tls://"), "{}", cluster.urls());
    let bus = NatsBus::connect(&cfg, "tls").await.context("connect over TLS")?;
    bus.publish(&check_result("jkt", "web-1"), Headers::new(), Bytes::from_static(b"1"))
        .await
        .context("publish over TLS")?;
    let untrusted = NatsConfig {
        ca_file: None,
        ..cfg.clone()
    };
    let Err(e) = NatsBus::connect(&untrusted, "untrusted").await else {
        bail!("connected without trusting the servers' CA");
    };
    eprintln!("without the CA: {e}");
    let no_token = NatsConfig { token: None, ..cfg };
    let Err(e) = NatsBus::connect(&no_token, "no-token").await else {
        bail!("connected without the token");
    };
    eprintln!("without the token: {e}");
    Ok(())
}
