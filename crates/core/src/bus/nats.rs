//! The NATS JetStream bus.
//!
//! On connect it makes sure the stream (`nats.stream`, default `PANTAU`)
//! captures `pantau.>` with bounded age and size, kept on `nats.replicas`
//! servers of a cluster. `nats.url` may list several seeds separated by commas. Publishes wait for the
//! stream's acknowledgement. Live subscriptions are core NATS subscriptions;
//! durable ones are JetStream pull consumers whose pump re-attaches after
//! errors. The client reconnects by itself, forever, with a capped backoff.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{Acker, Bus, BusError, Headers, Message, MessageStream, Subscription, subject};
use pantau_config::NatsConfig;

/// Subjects the stream captures.
pub const STREAM_SUBJECTS: &str = "pantau.>";

/// The NATS [`Bus`].
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: String,
    url: String,
    publish_timeout: Duration,
}

impl NatsBus {
    /// Connects (failing at once if the server cannot be reached) and ensures
    /// the stream. `name` identifies this client in the server's monitoring.
    pub async fn connect(cfg: &NatsConfig, name: &str) -> Result<Self, BusError> {
        let client = client(cfg, name).await?;
        let shown = pantau_config::mask_urls_passwords(cfg.url.as_deref().unwrap_or(DEFAULT_URL));
        let mut js = jetstream::new(client.clone());
        js.set_timeout(cfg.publish_timeout);
        let config = stream::Config {
            name: cfg.stream.clone(),
            subjects: vec![STREAM_SUBJECTS.to_owned()],
            max_age: cfg.max_age,
            max_bytes: cfg.max_bytes,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::Old,
            num_replicas: cfg.replicas,
            ..Default::default()
        };
        // Services starting together race to create the stream: the loser's
        // create fails ("subjects overlap") although the stream now exists,
        // so look again before giving up.
        let mut attempt: u64 = 0;
        loop {
            match js.get_or_create_stream(config.clone()).await {
                Ok(existing) => {
                    // A stream made before `nats.replicas` changed keeps its
                    // old count unless told: JetStream can move it in place.
                    let was = existing.cached_info().config.num_replicas;
                    if was != cfg.replicas {
                        let mut changed = existing.cached_info().config.clone();
                        changed.num_replicas = cfg.replicas;
                        js.update_stream(changed)
                            .await
                            .map_err(|e| BusError::nats("update stream replicas", e))?;
                        tracing::info!(stream = %cfg.stream, was, now = cfg.replicas, "stream replicas changed");
                    }
                    break;
                }
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "stream not ready; looking again");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(BusError::nats("create stream", e)),
            }
        }
        tracing::info!(url = %shown, stream = %cfg.stream, "nats bus ready");
        Ok(Self {
            client,
            js,
            stream: cfg.stream.clone(),
            url: shown,
            publish_timeout: cfg.publish_timeout,
        })
    }

    /// The underlying client, for tools that need plain NATS.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    async fn durable(&self, pattern: String, name: String, replay: bool) -> Result<MessageStream, BusError> {
        let consumer = self.consumer(&pattern, &name, replay).await?;
        let (tx, rx) = mpsc::channel(1024);
        let bus = self.clone();
        tokio::spawn(async move { bus.pump(consumer, (pattern, name, replay), tx).await });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    /// The durable consumer `name` filtered on `pattern`. An existing one
    /// with another filter is replaced (its position is lost, with a warning):
    /// a durable name means one subscription, not whatever it was before.
    async fn consumer(&self, pattern: &str, name: &str, replay: bool) -> Result<consumer::PullConsumer, BusError> {
        let stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| BusError::nats("get stream", e))?;
        let config = consumer::pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subject: pattern.to_owned(),
            ack_policy: consumer::AckPolicy::Explicit,
            // A new durable consumer also takes what was published just
            // before it existed: services that start together must not lose
            // each other's first messages (as on the in-process bus).
            deliver_policy: if replay {
                consumer::DeliverPolicy::All
            } else {
                consumer::DeliverPolicy::ByStartTime {
                    start_time: time::OffsetDateTime::now_utc() - super::memory::RECENT_AGE,
                }
            },
            ack_wait: Duration::from_secs(30),
            ..Default::default()
        };
        let existing = stream.get_consumer::<consumer::pull::Config>(name).await.ok();
        if let Some(c) = existing {
            let old = c.cached_info().config.filter_subject.clone();
            if old == pattern {
                return Ok(c);
            }
            tracing::warn!(consumer = %name, old = %old, new = %pattern, "durable consumer changes its subject; recreating it");
            stream
                .delete_consumer(name)
                .await
                .map_err(|e| BusError::nats("delete consumer", e))?;
        }
        stream
            .create_consumer(config)
            .await
            .map_err(|e| BusError::nats("create consumer", e))
    }

    /// Forwards the consumer's messages until the subscriber goes away,
    /// re-attaching (with backoff) when the message stream breaks.
    async fn pump(
        &self,
        mut consumer: consumer::PullConsumer,
        (pattern, name, replay): (String, String, bool),
        tx: mpsc::Sender<Message>,
    ) {
        let mut failures: u32 = 0;
        loop {
            match consumer.messages().await {
                Ok(mut messages) => loop {
                    let next = tokio::select! {
                        () = tx.closed() => return,
                        next = messages.next() => next,
                    };
                    match next {
                        Some(Ok(m)) => {
                            failures = 0;
                            if tx.send(from_jetstream(m)).await.is_err() {
                                return;
                            }
                        }
                        Some(Err(e)) => {
                            tracing::warn!(consumer = %name, error = %e, "durable consumer error; re-attaching");
                            break;
                        }
                        None => break,
                    }
                },
                Err(e) => tracing::warn!(consumer = %name, error = %e, "cannot read durable consumer"),
            }
            failures = failures.saturating_add(1);
            let delay = Duration::from_millis(200u64.saturating_mul(1 << failures.min(4)));
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(delay) => {}
            }
            match self.consumer(&pattern, &name, replay).await {
                Ok(c) => consumer = c,
                Err(e) => tracing::warn!(consumer = %name, error = %e, "cannot re-attach durable consumer"),
            }
        }
    }
}

fn to_nats_headers(headers: &Headers) -> async_nats::HeaderMap {
    let mut map = async_nats::HeaderMap::new();
    for (k, v) in headers {
        map.insert(k.as_str(), v.as_str());
    }
    map
}

fn from_nats_headers(headers: Option<&async_nats::HeaderMap>) -> Headers {
    let mut out = Headers::new();
    if let Some(h) = headers {
        for (k, values) in h.iter() {
            if let Some(v) = values.first() {
                out.insert(k.to_string(), v.as_str().to_owned());
            }
        }
    }
    out
}

struct JsAcker(jetstream::Message);

#[async_trait]
impl Acker for JsAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.0.ack().await.map_err(|e| BusError::Nats { op: "ack", source: e })
    }

    async fn nak(&self, delay: Option<Duration>) -> Result<(), BusError> {
        self.0
            .ack_with(jetstream::AckKind::Nak(delay))
            .await
            .map_err(|e| BusError::Nats { op: "nak", source: e })
    }

    async fn in_progress(&self) -> Result<(), BusError> {
        self.0
            .ack_with(jetstream::AckKind::Progress)
            .await
            .map_err(|e| BusError::Nats {
                op: "ack progress",
                source: e,
            })
    }
}

/// A received payload in an allocation of its own: what the client hands
/// over may be a slice of its read buffer, which a consumer that keeps the
/// payload (the gateway's latest results) would otherwise pin whole.
fn own(payload: &Bytes) -> Bytes {
    Bytes::copy_from_slice(payload)
}

fn from_jetstream(m: jetstream::Message) -> Message {
    let msg = Message::new(
        m.subject.as_str(),
        from_nats_headers(m.headers.as_ref()),
        own(&m.payload),
    );
    msg.with_acker(Box::new(JsAcker(m)))
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, subject: &str, headers: Headers, payload: Bytes) -> Result<(), BusError> {
        subject::validate_publish(subject)?;
        let ack = self
            .js
            .publish_with_headers(subject.to_owned(), to_nats_headers(&headers), payload)
            .await
            .map_err(|e| BusError::nats("publish", e))?;
        match tokio::time::timeout(self.publish_timeout, ack).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(BusError::nats("publish acknowledgement", e)),
            Err(_) => Err(BusError::AckTimeout(self.publish_timeout)),
        }
    }

    async fn subscribe(&self, sub: Subscription) -> Result<MessageStream, BusError> {
        subject::validate_pattern(&sub.pattern)?;
        if let Some(name) = sub.durable {
            if !pantau_config::is_token(&name) {
                return Err(BusError::InvalidDurable(name));
            }
            return self.durable(sub.pattern, name, sub.replay).await;
        }
        let s = self
            .client
            .subscribe(sub.pattern)
            .await
            .map_err(|e| BusError::nats("subscribe", e))?;
        Ok(Box::pin(s.map(|m| {
            Message::new(
                m.subject.as_str(),
                from_nats_headers(m.headers.as_ref()),
                own(&m.payload),
            )
        })))
    }

    fn kind(&self) -> &'static str {
        "nats"
    }

    async fn check(&self) -> Result<(), BusError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(BusError::Nats {
                op: "connection",
                source: format!("{state} from {}", self.url).into(),
            }),
        }
    }
}

/// Where [`client`] connects when `nats.url` is unset.
const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// A NATS client as `nats.*` says: the seeds of `nats.url`, the token, TLS
/// against `nats.ca_file`, reconnecting forever with a capped backoff. The
/// bus uses it, and so does anything else that talks to the same NATS (the
/// sync-api's lease). Fails at once if no seed can be reached.
pub async fn client(cfg: &NatsConfig, name: &str) -> Result<async_nats::Client, BusError> {
    let url = cfg.url.clone().unwrap_or_else(|| DEFAULT_URL.to_owned());
    let shown = pantau_config::mask_urls_passwords(&url);
    let seeds: Vec<&str> = url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
    let mut opts = async_nats::ConnectOptions::new()
        .name(name)
        .max_reconnects(None::<usize>)
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(100u64.saturating_mul(1 << attempts.min(5))).min(Duration::from_secs(2))
        })
        .event_callback({
            let shown = shown.clone();
            move |event| {
                let shown = shown.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => tracing::info!(url = %shown, "connected to nats"),
                        async_nats::Event::Disconnected => {
                            tracing::warn!(url = %shown, "disconnected from nats; reconnecting");
                        }
                        other => tracing::info!(url = %shown, event = %other, "nats event"),
                    }
                }
            }
        });
    if let Some(token) = &cfg.token {
        opts = opts.token(token.clone());
    }
    if let Some(ca) = &cfg.ca_file {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    opts.connect(seeds.as_slice())
        .await
        .map_err(|source| BusError::Connect { url: shown, source })
}

/// Connects to NATS when `cfg.url` is set, else gives the in-process bus.
pub async fn connect_or_memory(cfg: &NatsConfig, name: &str) -> Result<Arc<dyn Bus>, BusError> {
    if cfg.url.is_some() {
        Ok(Arc::new(NatsBus::connect(cfg, name).await?))
    } else {
        Ok(Arc::new(super::memory::MemoryBus::new()))
    }
}
