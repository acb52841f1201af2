//! The contract every [`Bus`] honours, as generic tests over a
//! [`BusFixture`]; `bus_contract!` instantiates them per implementation.
//!
//! A message that must not match is published before one that must: messages
//! from one publisher arrive in order, so an over-match shows up as the first
//! message received, without waiting for a timeout.

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use pantau_core::bus::{self, Bus, BusError, Headers, MessageStream, Subscription};
use pantau_proto::v1::{CheckKind, CheckResult, CheckStatus};

use super::{BusFixture, assert_quiet, next};

async fn publish(bus: &dyn Bus, subject: &str, payload: &str) -> anyhow::Result<()> {
    bus.publish(subject, Headers::new(), Bytes::from(payload.to_owned()))
        .await
        .with_context(|| format!("publish on {subject}"))
}

async fn subscribe(fixture: &impl BusFixture, sub: Subscription) -> anyhow::Result<MessageStream> {
    let shown = format!("{sub:?}");
    let stream = fixture
        .bus()
        .subscribe(sub)
        .await
        .with_context(|| format!("subscribe {shown}"))?;
    fixture.settle().await?;
    Ok(stream)
}

/// Receives the next message and checks its subject and payload.
async fn expect(stream: &mut MessageStream, subject: &str, payload: &str) -> anyhow::Result<()> {
    let m = next(stream).await.with_context(|| format!("waiting for {subject}"))?;
    ensure!(
        m.subject == subject && m.payload == payload.as_bytes(),
        "expected {subject} {payload:?}, got {} {:?}",
        m.subject,
        m.payload
    );
    Ok(())
}

pub(super) async fn exact_subject(f: &impl BusFixture) -> anyhow::Result<()> {
    let mut sub = subscribe(f, Subscription::live("pantau.event.reboot.r1")).await?;
    publish(f.bus(), "pantau.event.reboot.r2", "other router").await?;
    publish(f.bus(), "pantau.event.reboot.r1.x", "longer").await?;
    publish(f.bus(), "pantau.event.reboot", "shorter").await?;
    publish(f.bus(), "pantau.event.reboot.r1", "hit").await?;
    expect(&mut sub, "pantau.event.reboot.r1", "hit").await?;
    assert_quiet(&mut sub).await
}

pub(super) async fn star_matches_exactly_one_token(f: &impl BusFixture) -> anyhow::Result<()> {
    let mut sub = subscribe(f, Subscription::live("pantau.check.result.*.web")).await?;
    for miss in [
        "pantau.check.result.web",
        "pantau.check.result.jkt.api",
        "pantau.check.result.jkt.web.extra",
        "pantau.check.result.jkt.sby.web",
        "pantau.event.result.jkt.web",
    ] {
        publish(f.bus(), miss, "miss").await?;
    }
    publish(f.bus(), "pantau.check.result.jkt.web", "jkt").await?;
    publish(f.bus(), "pantau.check.result.sby.web", "sby").await?;
    expect(&mut sub, "pantau.check.result.jkt.web", "jkt").await?;
    expect(&mut sub, "pantau.check.result.sby.web", "sby").await?;
    assert_quiet(&mut sub).await
}

pub(super) async fn greater_than_matches_one_or_more_trailing_tokens(f: &impl BusFixture) -> anyhow::Result<()> {
    let mut sub = subscribe(f, Subscription::live(bus::subject::ALL_CHECK_RESULTS)).await?;
    for miss in [
        "pantau.check.result",
        "pantau.check.results.jkt",
        "pantau.check.other.jkt.web",
        "pantau.iface.sample.r1.4",
    ] {
        publish(f.bus(), miss, "miss").await?;
    }
    publish(f.bus(), "pantau.check.result.jkt", "one").await?;
    publish(f.bus(), "pantau.check.result.jkt.web", "two").await?;
    publish(f.bus(), "pantau.check.result.jkt.web.deep", "three").await?;
    expect(&mut sub, "pantau.check.result.jkt", "one").await?;
    expect(&mut sub, "pantau.check.result.jkt.web", "two").await?;
    expect(&mut sub, "pantau.check.result.jkt.web.deep", "three").await?;
    assert_quiet(&mut sub).await
}

pub(super) async fn headers_round_trip(f: &impl BusFixture) -> anyhow::Result<()> {
    let mut sub = subscribe(f, Subscription::live("pantau.alert.>")).await?;
    let mut headers = Headers::new();
    headers.insert(
        "traceparent".to_owned(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
    );
    headers.insert("tracestate".to_owned(), "pantau=t61rcWkgMzE".to_owned());
    headers.insert("x-pantau-note".to_owned(), "value with spaces".to_owned());
    f.bus()
        .publish("pantau.alert.firing.a1", headers.clone(), Bytes::from_static(b"alert"))
        .await?;
    let m = next(&mut sub).await?;
    assert_eq!(m.subject, "pantau.alert.firing.a1");
    assert_eq!(m.payload, "alert");
    for (key, value) in &headers {
        assert_eq!(m.headers.get(key), Some(value), "header {key} in {:?}", m.headers);
    }
    Ok(())
}

pub(super) async fn invalid_subjects_are_rejected(f: &impl BusFixture) -> anyhow::Result<()> {
    for subject in [
        "",
        "pantau..x",
        "pantau.x.",
        ".pantau.x",
        "pantau.a b",
        "pantau.tab\there",
        "pantau.check.>",
        "pantau.*.result",
        "pantau.a*",
    ] {
        let result = f.bus().publish(subject, Headers::new(), Bytes::new()).await;
        assert!(
            matches!(result, Err(BusError::InvalidSubject { .. })),
            "publish on {subject:?} gave {result:?}"
        );
    }
    for pattern in ["", "pantau..x", "pantau.>.x", "pantau.a*", "pantau.>x", "pantau.a b"] {
        let result = f.bus().subscribe(Subscription::live(pattern)).await;
        assert!(
            matches!(result, Err(BusError::InvalidSubject { .. })),
            "subscribe to {pattern:?} gave {:?}",
            result.map(|_| "a subscription")
        );
    }
    let result = f.bus().subscribe(Subscription::durable("pantau.>", "bad name")).await;
    assert!(
        matches!(result, Err(BusError::InvalidDurable(_))),
        "a durable named `bad name` gave {:?}",
        result.map(|_| "a subscription")
    );
    Ok(())
}

pub(super) async fn every_subscriber_gets_the_message(f: &impl BusFixture) -> anyhow::Result<()> {
    let subject = "pantau.event.wan_detected.r1";
    let mut subs = vec![
        subscribe(f, Subscription::live(subject)).await?,
        subscribe(f, Subscription::live(subject)).await?,
        subscribe(f, Subscription::live("pantau.event.*.r1")).await?,
        subscribe(f, Subscription::live("pantau.>")).await?,
    ];
    publish(f.bus(), subject, "wan").await?;
    for (i, sub) in subs.iter_mut().enumerate() {
        expect(sub, subject, "wan")
            .await
            .with_context(|| format!("subscriber {i}"))?;
    }
    for sub in &mut subs {
        assert_quiet(sub).await?;
    }
    Ok(())
}

fn sample_result() -> CheckResult {
    CheckResult {
        target_id: "web-1".to_owned(),
        target_name: "Company website".to_owned(),
        kind: CheckKind::Http.into(),
        location: "jkt".to_owned(),
        instance: "pantau-jkt-1".to_owned(),
        status: CheckStatus::Down.into(),
        latency: Some(prost_types::Duration {
            seconds: 1,
            nanos: 250_000_000,
        }),
        message: "HTTP 503 from https://example.com/".to_owned(),
        labels: [("team".to_owned(), "web".to_owned())].into(),
        ..CheckResult::default()
    }
}

pub(super) async fn proto_round_trip(f: &impl BusFixture) -> anyhow::Result<()> {
    let mut sub = subscribe(f, Subscription::live(bus::subject::ALL_CHECK_RESULTS)).await?;
    let sent = sample_result();
    let subject = bus::subject::check_result("jkt", "web-1");
    bus::publish_proto(f.bus(), &subject, &sent).await?;
    let m = next(&mut sub).await?;
    assert_eq!(m.subject, subject);
    assert_eq!(
        m.headers.get("content-type").map(String::as_str),
        Some("application/protobuf")
    );
    let got: CheckResult = bus::decode(&m).context("a CheckResult decodes")?;
    assert_eq!(got, sent);
    Ok(())
}

pub(super) async fn garbage_payload_does_not_decode(f: &impl BusFixture) -> anyhow::Result<()> {
    let mut sub = subscribe(f, Subscription::live(bus::subject::ALL_CHECK_RESULTS)).await?;
    let subject = bus::subject::check_result("jkt", "web-1");
    let garbage: [&'static [u8]; 3] = [
        // A varint that never ends.
        &[0xff; 11],
        // Field 1 with wire type 7, which does not exist.
        &[0x0f, 0x01, 0x02],
        // Field 1 (a string) announcing 100 bytes and carrying 2.
        &[0x0a, 0x64, b'h', b'i'],
    ];
    for payload in garbage {
        f.bus()
            .publish(&subject, Headers::new(), Bytes::from_static(payload))
            .await?;
    }
    for payload in garbage {
        let m = next(&mut sub).await?;
        assert_eq!(m.payload, payload);
        assert_eq!(bus::decode::<CheckResult>(&m), None, "{payload:?} decoded");
    }
    // The subscription keeps working after garbage.
    bus::publish_proto(f.bus(), &subject, &sample_result()).await?;
    let m = next(&mut sub).await?;
    assert_eq!(bus::decode::<CheckResult>(&m), Some(sample_result()));
    Ok(())
}

pub(super) async fn durable_subscription_receives_and_acks(f: &impl BusFixture) -> anyhow::Result<()> {
    let mut sub = subscribe(f, Subscription::durable(bus::subject::ALL_CHECK_RESULTS, "contract")).await?;
    publish(f.bus(), "pantau.event.reboot.r1", "miss").await?;
    for i in 0..3 {
        publish(
            f.bus(),
            &bus::subject::check_result("jkt", &format!("t{i}")),
            &i.to_string(),
        )
        .await?;
    }
    for i in 0..3 {
        let m = next(&mut sub).await?;
        ensure!(
            m.subject == bus::subject::check_result("jkt", &format!("t{i}")) && m.payload == i.to_string(),
            "durable delivery {i} was {} {:?}",
            m.subject,
            m.payload
        );
        m.ack().await.context("ack")?;
    }
    assert_quiet(&mut sub).await
}

pub(super) async fn subscribers_sharing_a_durable_name_share_its_messages(f: &impl BusFixture) -> anyhow::Result<()> {
    let mut a = subscribe(f, Subscription::durable("pantau.metric.>", "shared")).await?;
    let mut b = subscribe(f, Subscription::durable("pantau.metric.>", "shared")).await?;
    for i in 0..10 {
        publish(f.bus(), &format!("pantau.metric.m{i}"), &i.to_string()).await?;
    }
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + super::WAIT;
    while seen.len() < 10 && tokio::time::Instant::now() < deadline {
        for sub in [&mut a, &mut b] {
            if let Ok(Some(m)) =
                tokio::time::timeout(std::time::Duration::from_millis(100), futures::StreamExt::next(sub)).await
            {
                m.ack().await.context("ack")?;
                seen.push(String::from_utf8_lossy(&m.payload).into_owned());
            }
        }
    }
    seen.sort_by_key(|s| s.parse::<u32>().unwrap_or(u32::MAX));
    let expected: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    ensure!(
        seen == expected,
        "each message exactly once across the group, got {seen:?}"
    );
    assert_quiet(&mut a).await?;
    assert_quiet(&mut b).await
}

pub(super) async fn a_durable_name_follows_its_new_subject(f: &impl BusFixture) -> anyhow::Result<()> {
    let first = subscribe(f, Subscription::durable("pantau.event.>", "moving")).await?;
    drop(first);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut moved = subscribe(f, Subscription::durable("pantau.metric.>", "moving")).await?;
    publish(f.bus(), "pantau.event.reboot.r1", "old subject").await?;
    publish(f.bus(), "pantau.metric.cpu", "new subject").await?;
    let m = next(&mut moved).await?;
    ensure!(m.payload == "new subject", "got {} {:?}", m.subject, m.payload);
    m.ack().await.context("ack")?;
    assert_quiet(&mut moved).await
}

/// Services that start together publish before the others subscribe: a
/// durable name's first subscriber still gets what was published just
/// before it existed; a live subscriber does not, nor does a later member
/// of a name that already has one.
pub(super) async fn a_new_durable_name_gets_what_was_published_just_before(f: &impl BusFixture) -> anyhow::Result<()> {
    publish(f.bus(), "pantau.alert.firing.a1", "early").await?;
    let mut live = subscribe(f, Subscription::live("pantau.alert.>")).await?;
    let mut first = subscribe(f, Subscription::durable("pantau.alert.>", "latecomer")).await?;
    let m = next(&mut first).await?;
    ensure!(m.payload == "early", "got {} {:?}", m.subject, m.payload);
    m.ack().await.context("ack")?;
    let mut second = subscribe(f, Subscription::durable("pantau.alert.>", "latecomer")).await?;
    publish(f.bus(), "pantau.alert.firing.a2", "after").await?;
    let mut got = Vec::new();
    for sub in [&mut first, &mut second] {
        if let Ok(Some(m)) = tokio::time::timeout(super::QUIET, futures::StreamExt::next(sub)).await {
            m.ack().await.context("ack")?;
            got.push(String::from_utf8_lossy(&m.payload).into_owned());
        }
    }
    ensure!(
        got == ["after"],
        "the group gets the new message once and the early one no more: {got:?}"
    );
    expect(&mut live, "pantau.alert.firing.a2", "after").await?;
    assert_quiet(&mut live).await
}

pub(super) use super::consume::{
    consumer_dead_letters_a_permanent_failure_at_once, consumer_dead_letters_garbage_and_handles_the_next,
    consumer_handles_every_family_it_subscribes_to, consumer_retries_a_transient_failure_then_dead_letters_it,
};
