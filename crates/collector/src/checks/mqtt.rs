//! MQTT: connect to a broker with rumqttc (MQTT 3.1.1, plain or TLS with
//! what the `tls` check trusts), with the target's credentials; with a
//! `topic`, subscribe to it, publish a canary (QoS 1) and wait for it to come
//! back. The broker's packets are bounded ([`MAX_PACKET`]) and decoded by
//! rumqttc as untrusted input: a malformed one is `protocol`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pantau_proto::v1::{FailureReason, ProbeDetail, check_result::Detail};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeReasonCode,
    TlsConfiguration, Transport,
};
use tokio::time::Instant;

use super::Outcome;

/// Largest packet a check sends or accepts.
pub const MAX_PACKET: usize = 64 * 1024;

/// A compiled `mqtt` target. Its `Debug` masks the password.
#[derive(Clone)]
pub struct MqttSpec {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    password: Option<String>,
    pub topic: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for MqttSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSpec")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("topic", &self.topic)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl MqttSpec {
    /// Compiles `m`; an error names the field (`ca_file`, `client_cert`, …).
    pub fn new(m: &pantau_config::MqttTarget) -> Result<Self, (&'static str, String)> {
        let tls = if m.use_tls == Some(true) {
            let config = trust::client_config(&m.tls, m.verify_tls.unwrap_or(true), false)
                .map_err(|e| (super::super::target::tls_key(&e), e))?;
            Some(Arc::new(config))
        } else {
            None
        };
        Ok(Self {
            host: m.address.host().to_owned(),
            port: m.address.port(),
            username: m.username.clone(),
            password: m.password.clone(),
            topic: m.topic.clone(),
            tls,
        })
    }

    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

use super::trust;

/// A distinct client id and canary payload per check.
fn nonce() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Runs the check of `spec` within `timeout` (the caller bounds it too; the
/// round trip gives up a little earlier so its own words are reported).
pub async fn check(spec: &MqttSpec, target_id: &str, timeout: Duration, started: Instant) -> Outcome {
    let address = spec.address();
    let (ip, peer) = match super::resolve(&spec.host, spec.port, started).await {
        Ok(a) => (a.ip(), a.to_string()),
        Err(down) => return down,
    };
    let nonce = nonce();
    // TLS verifies the name, so it connects by name; plain by the address resolved.
    let host = if spec.tls.is_some() {
        spec.host.clone()
    } else {
        ip.to_string()
    };
    let mut options = MqttOptions::new(format!("pantau-{target_id}-{nonce}"), host, spec.port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if let Some(user) = &spec.username {
        options.set_credentials(user.clone(), spec.password.clone().unwrap_or_default());
    }
    if let Some(config) = &spec.tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::clone(config))));
    }
    let (client, mut events) = AsyncClient::new(options, 10);
    events.network_options.set_connection_timeout(timeout.as_secs().max(1));
    let session_present = loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => break ack.session_present,
            Ok(_) => {}
            Err(e) => return connect_down(started, &address, &e),
        }
    };
    let connected = started.elapsed();
    let mut metadata = HashMap::from([
        ("protocol".to_owned(), "MQTT 3.1.1".to_owned()),
        ("session_present".to_owned(), session_present.to_string()),
        ("connect_ms".to_owned(), connected.as_millis().to_string()),
        ("tls".to_owned(), spec.tls.is_some().to_string()),
    ]);
    let margin = (timeout / 10).min(Duration::from_millis(100));
    let deadline = started + timeout.saturating_sub(margin);
    let Some(topic) = &spec.topic else {
        disconnect(&client, &mut events, deadline).await;
        return Outcome::up(connected, Some(probe(peer, metadata)));
    };
    metadata.insert("topic".to_owned(), topic.clone());
    let payload = format!("pantau canary {target_id} {nonce}");
    let trip = tokio::time::timeout_at(deadline, round_trip(&client, &mut events, topic, &payload)).await;
    let timed_out = trip.is_err();
    let outcome = match trip {
        Ok(Ok(())) => {
            let latency = started.elapsed();
            metadata.insert(
                "round_trip_ms".to_owned(),
                latency.saturating_sub(connected).as_millis().to_string(),
            );
            Outcome::up(latency, None)
        }
        Ok(Err((reason, why))) => Outcome::down(started.elapsed(), reason, format!("{address} {why}")),
        Err(_) => Outcome::down(
            started.elapsed(),
            FailureReason::Timeout,
            format!(
                "{address} accepted the connection, but the message published to `{topic}` did not come back within {} \
                 (may the user publish and subscribe to it?)",
                pantau_config::duration::format(timeout.saturating_sub(margin))
            ),
        ),
    };
    // After a timeout there is no time left to say goodbye: dropping the
    // event loop closes the connection.
    if !timed_out {
        disconnect(&client, &mut events, deadline).await;
    }
    outcome.with_detail(probe(peer, metadata))
}

/// Subscribes to `topic`, publishes `payload` to it and waits for it.
async fn round_trip(
    client: &AsyncClient,
    events: &mut EventLoop,
    topic: &str,
    payload: &str,
) -> Result<(), (FailureReason, String)> {
    let queue_failed = |e: rumqttc::ClientError| (FailureReason::Internal, format!("cannot queue a request: {e}"));
    client.subscribe(topic, QoS::AtLeastOnce).await.map_err(queue_failed)?;
    let mut published = false;
    loop {
        let event = events.poll().await.map_err(|e| {
            let (reason, why) = classify(&e);
            (
                reason,
                format!("{why} during the round trip on `{topic}`: {}", shown(&e.to_string())),
            )
        })?;
        match event {
            Event::Incoming(Packet::SubAck(ack)) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure))
                {
                    return Err((
                        FailureReason::Auth,
                        format!("refused the subscription to `{topic}` (not authorised?)"),
                    ));
                }
                if !published {
                    published = true;
                    client
                        .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
                        .await
                        .map_err(queue_failed)?;
                }
            }
            Event::Incoming(Packet::Publish(p)) if p.topic == topic && p.payload.as_ref() == payload.as_bytes() => {
                return Ok(());
            }
            _ => {}
        }
    }
}

/// Says goodbye, briefly and before `deadline`: a broker that does not take
/// it is not a failure.
async fn disconnect(client: &AsyncClient, events: &mut EventLoop, deadline: Instant) {
    if client.try_disconnect().is_ok() {
        let until = deadline.min(Instant::now() + Duration::from_millis(100));
        let _ = tokio::time::timeout_at(until, async { while events.poll().await.is_ok() {} }).await;
    }
}

fn probe(peer: String, metadata: HashMap<String, String>) -> Detail {
    Detail::Probe(ProbeDetail {
        peer,
        metadata,
        certificate: None,
    })
}

/// The typed reason of a connection error, and a few words on it.
fn classify(e: &ConnectionError) -> (FailureReason, &'static str) {
    match e {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => (FailureReason::Auth, "refused the credentials"),
        ConnectionError::ConnectionRefused(_) => (FailureReason::Protocol, "refused the connection"),
        ConnectionError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            (FailureReason::Refused, "refused the connection")
        }
        ConnectionError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            (FailureReason::Timeout, "did not answer in time")
        }
        ConnectionError::Io(_) => (FailureReason::Connect, "could not be reached"),
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => {
            (FailureReason::Timeout, "did not answer in time")
        }
        ConnectionError::Tls(_) => (FailureReason::Tls, "failed the TLS handshake"),
        ConnectionError::MqttState(rumqttc::StateError::Io(_)) => (FailureReason::Connect, "dropped the connection"),
        ConnectionError::MqttState(_) | ConnectionError::NotConnAck(_) => {
            (FailureReason::Protocol, "did not answer as an MQTT broker")
        }
        ConnectionError::RequestsDone => (FailureReason::Internal, "was left by the check"),
    }
}

/// The down outcome of a failed connection or CONNACK.
fn connect_down(started: Instant, address: &str, e: &ConnectionError) -> Outcome {
    let (reason, what) = classify(e);
    let why = match e {
        ConnectionError::ConnectionRefused(code) => format!("CONNACK {code:?}"),
        ConnectionError::Tls(t) => trust::refusal(t).unwrap_or_else(|| t.to_string()),
        other => other.to_string(),
    };
    Outcome::down(started.elapsed(), reason, format!("{address} {what}: {}", shown(&why)))
}

/// Longest part of an error put in a message.
const MAX_SHOWN: usize = 200;

fn shown(text: &str) -> String {
    text.chars()
        .take(MAX_SHOWN)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
