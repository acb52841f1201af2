//! The bus contract: the same tests for [`MemoryBus`] and [`NatsBus`].
//!
//! Each test gets a fresh bus (and, for NATS, its own `nats-server`), so the
//! tests run in parallel without sharing subjects or the stream.

mod cluster;
mod consume;
mod contract;
mod nats_only;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use pantau_config::NatsConfig;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::nats::NatsBus;
use pantau_core::bus::{Bus, Message, MessageStream};
use pantau_testkit::Nats;

/// The longest a test waits for a message that should arrive.
pub(crate) const WAIT: Duration = Duration::from_secs(5);
/// How long a test watches for a message that must not arrive.
pub(crate) const QUIET: Duration = Duration::from_millis(300);

/// A bus implementation under test, with whatever keeps it alive.
trait BusFixture: Sized {
    async fn start() -> anyhow::Result<Self>;

    fn bus(&self) -> &dyn Bus;

    /// The same bus, shared, for a [`pantau_core::bus::Consumer`].
    fn shared(&self) -> Arc<dyn Bus>;

    /// Returns once the subscriptions made so far are in effect.
    async fn settle(&self) -> anyhow::Result<()>;

    /// Deliveries of the durable consumer `name` not acknowledged yet, where
    /// the bus keeps count (NATS).
    async fn unacknowledged(&self, name: &str) -> anyhow::Result<Option<usize>>;
}

struct MemoryFixture(MemoryBus);

impl BusFixture for MemoryFixture {
    async fn start() -> anyhow::Result<Self> {
        Ok(Self(MemoryBus::new()))
    }

    fn bus(&self) -> &dyn Bus {
        &self.0
    }

    fn shared(&self) -> Arc<dyn Bus> {
        Arc::new(self.0.clone())
    }

    async fn settle(&self) -> anyhow::Result<()> {
        Ok(())
    }

    async fn unacknowledged(&self, _: &str) -> anyhow::Result<Option<usize>> {
        Ok(None)
    }
}

pub(crate) struct NatsFixture {
    // Dropped after the bus, which is declared first.
    pub(crate) bus: NatsBus,
    pub(crate) nats: Nats,
}

impl NatsFixture {
    pub(crate) fn config(nats: &Nats) -> NatsConfig {
        NatsConfig {
            url: Some(nats.url()),
            ..NatsConfig::default()
        }
    }
}

impl BusFixture for NatsFixture {
    async fn start() -> anyhow::Result<Self> {
        let nats = Nats::start().await?;
        let bus = NatsBus::connect(&Self::config(&nats), "test").await?;
        Ok(Self { bus, nats })
    }

    fn bus(&self) -> &dyn Bus {
        &self.bus
    }

    fn shared(&self) -> Arc<dyn Bus> {
        Arc::new(self.bus.clone())
    }

    async fn settle(&self) -> anyhow::Result<()> {
        // A PING/PONG round trip: the server has processed every SUB before it.
        self.bus.client().flush().await.context("flush")?;
        Ok(())
    }

    async fn unacknowledged(&self, name: &str) -> anyhow::Result<Option<usize>> {
        use async_nats::jetstream::consumer::pull;
        let js = async_nats::jetstream::new(self.bus.client().clone());
        let stream = js
            .get_stream(NatsConfig::default().stream)
            .await
            .context("get stream")?;
        let mut consumer = stream
            .get_consumer::<pull::Config>(name)
            .await
            .map_err(|e| anyhow::anyhow!("get consumer {name}: {e}"))?;
        let info = consumer.info().await.context("consumer info")?;
        Ok(Some(info.num_ack_pending))
    }
}

/// The next message on `stream`, failing after [`WAIT`].
pub(crate) async fn next(stream: &mut MessageStream) -> anyhow::Result<Message> {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .with_context(|| format!("no message within {WAIT:?}"))?
        .context("the subscription ended")
}

/// Fails if a message arrives on `stream` within [`QUIET`].
pub(crate) async fn assert_quiet(stream: &mut MessageStream) -> anyhow::Result<()> {
    match tokio::time::timeout(QUIET, stream.next()).await {
        Err(_) => Ok(()),
        Ok(Some(m)) => anyhow::bail!("unexpected message on {}: {:?}", m.subject, m.payload),
        Ok(None) => anyhow::bail!("the subscription ended"),
    }
}

/// Generates one `#[tokio::test]` per contract test for a fixture.
macro_rules! bus_contract {
    ($module:ident, $fixture:ty) => {
        mod $module {
            bus_contract!(@tests $fixture;
                exact_subject,
                star_matches_exactly_one_token,
                greater_than_matches_one_or_more_trailing_tokens,
                headers_round_trip,
                invalid_subjects_are_rejected,
                every_subscriber_gets_the_message,
                proto_round_trip,
                garbage_payload_does_not_decode,
                durable_subscription_receives_and_acks,
                subscribers_sharing_a_durable_name_share_its_messages,
                a_durable_name_follows_its_new_subject,
                a_new_durable_name_gets_what_was_published_just_before,
                consumer_dead_letters_garbage_and_handles_the_next,
                consumer_retries_a_transient_failure_then_dead_letters_it,
                consumer_dead_letters_a_permanent_failure_at_once,
                consumer_handles_every_family_it_subscribes_to,
            );
        }
    };
    (@tests $fixture:ty; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() -> anyhow::Result<()> {
                let fixture = <$fixture as super::BusFixture>::start().await?;
                super::contract::$test(&fixture).await
            }
        )*
    };
}

bus_contract!(memory, super::MemoryFixture);
bus_contract!(nats, super::NatsFixture);
