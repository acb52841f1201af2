//! Kafka checks. `kafka_producer` produces a canary record (key
//! `pantau-canary/<target id>`, a JSON value naming pantau, the target, this
//! process's run, a sequence number and the time) and reports the ack
//! latency, partition, offset and leader. `kafka_consumer` either reads those
//! canaries back (`end_to_end`: produce→consume latency, records missing) or
//! measures a consumer group's lag per partition (`group_lag`).
//!
//! The wire work is in [`client`]; this module keeps the per-target state
//! (producer sequence numbers, consumer positions) and turns every failure
//! into a typed reason: connect, tls, auth, timeout (the caller's bound),
//! kafka_error with the broker's code, topic_missing. Connections speak TLS
//! and SASL as the target's `security` says ([`client::Connector`], [`sasl`]).

pub mod client;
mod connect;
pub mod guard;
pub mod sasl;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use pantau_config::{Acks, ConsumerMode, KafkaTarget};
use pantau_proto::v1::{FailureReason, KafkaDetail, check_result::Detail};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use self::client::{Conn, Connector, KafkaError};
use super::Outcome;

pub const PRODUCE_LATENCY: &str = "pantau_collector_kafka_produce_latency_seconds";
pub const END_TO_END_LATENCY: &str = "pantau_collector_kafka_end_to_end_latency_seconds";
pub const RECORDS_MISSING: &str = "pantau_collector_kafka_records_missing_total";
pub const CONSUMER_LAG: &str = "pantau_collector_kafka_consumer_lag_records";
pub const ERRORS: &str = "pantau_collector_kafka_errors_total";

/// Reasons of [`ERRORS`], each on /metrics from the first scrape.
const ERROR_REASONS: [&str; 6] = ["connect", "tls", "auth", "kafka_error", "topic_missing", "malformed"];

/// Describes the Kafka metrics, and sets the error counters to 0 so the first
/// scrape has them.
pub fn describe() {
    describe_histogram!(
        PRODUCE_LATENCY,
        Unit::Seconds,
        "Time from sending a kafka_producer canary to the broker's acknowledgement, by target"
    );
    describe_gauge!(
        END_TO_END_LATENCY,
        Unit::Seconds,
        "Produce→consume latency of the newest canary a kafka_consumer end_to_end check read, by target"
    );
    describe_counter!(
        RECORDS_MISSING,
        Unit::Count,
        "Canary records a kafka_consumer end_to_end check found missing (gaps in the producer's sequence), by target"
    );
    describe_gauge!(
        CONSUMER_LAG,
        Unit::Count,
        "Records a consumer group is behind on a partition (kafka_consumer group_lag), by target and partition"
    );
    describe_counter!(
        ERRORS,
        Unit::Count,
        "Kafka checks that failed, by reason (connect, tls, auth, kafka_error, topic_missing, malformed)"
    );
    for r in ERROR_REASONS {
        metrics::counter!(ERRORS, "reason" => r).increment(0);
    }
}

/// Records scanned back from the end of the partition when an end-to-end
/// consumer starts.
pub const LOOKBACK: i64 = 1000;
/// Most fetches one end-to-end check makes.
const MAX_FETCHES: usize = 64;

/// The canary a producer writes, as JSON in the record's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// Always `canary`.
    pub pantau: String,
    pub target: String,
    /// The producing process's run: sequence numbers restart with it.
    pub run: u64,
    pub seq: u64,
    /// When it was produced, in Unix milliseconds.
    pub ts_ms: i64,
}

/// The key of `producer`'s canaries.
pub fn canary_key(producer: &str) -> String {
    format!("pantau-canary/{producer}")
}

/// Where an end-to-end consumer is.
#[derive(Debug, Clone, Default)]
struct Position {
    next_offset: Option<i64>,
    /// The last canary seen: run and sequence.
    last: Option<(u64, u64)>,
}

/// State the Kafka checks keep between runs.
pub struct Kafka {
    run: u64,
    next_seq: Mutex<HashMap<String, u64>>,
    positions: Mutex<HashMap<String, Position>>,
}

impl Default for Kafka {
    fn default() -> Self {
        Self {
            run: rand::random::<u64>() >> 12,
            next_seq: Mutex::default(),
            positions: Mutex::default(),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn detail(k: &KafkaTarget) -> KafkaDetail {
    KafkaDetail {
        topic: k.topic.clone(),
        partition: k.partition,
        broker_id: -1,
        offset: -1,
        ..KafkaDetail::default()
    }
}

/// The down outcome of `e`, with the broker's error code in the detail.
pub fn down(target: &str, e: &KafkaError, started: Instant, mut d: KafkaDetail) -> Outcome {
    let (reason, label) = match e {
        KafkaError::Resolve { .. } => (FailureReason::Dns, "connect"),
        KafkaError::Connect { .. } | KafkaError::Io { .. } => (FailureReason::Connect, "connect"),
        KafkaError::Auth { .. } | KafkaError::Sasl { .. } => (FailureReason::Auth, "auth"),
        KafkaError::Tls { .. } => (FailureReason::Tls, "tls"),
        KafkaError::TopicMissing(_) | KafkaError::PartitionMissing { .. } => {
            (FailureReason::TopicMissing, "topic_missing")
        }
        KafkaError::Broker { .. } | KafkaError::NoLeader { .. } => (FailureReason::KafkaError, "kafka_error"),
        KafkaError::Malformed { .. } => (FailureReason::KafkaError, "malformed"),
    };
    metrics::counter!(ERRORS, "reason" => label).increment(1);
    tracing::debug!(target_id = %target, error = %e, "kafka check failed");
    d.error_code = i32::from(e.code());
    Outcome::down(started.elapsed(), reason, e.to_string()).with_detail(Detail::Kafka(d))
}

fn servers(k: &KafkaTarget) -> Vec<String> {
    k.bootstrap_servers.iter().map(ToString::to_string).collect()
}

/// A compiled `kafka_producer` or `kafka_consumer` target: its spec and
/// how its connections are made.
#[derive(Debug, Clone)]
pub struct KafkaSpec {
    pub target: KafkaTarget,
    pub connector: Connector,
}

impl KafkaSpec {
    /// Compiles `k`; an error names the field under `kafka.`.
    pub fn new(k: &KafkaTarget) -> Result<Self, (&'static str, String)> {
        Ok(Self {
            target: k.clone(),
            connector: Connector::new(k)?,
        })
    }
}

impl Kafka {
    /// A `kafka_producer` check: one canary record, acknowledged as `acks` says.
    pub async fn produce(&self, target: &str, spec: &KafkaSpec, timeout: Duration, started: Instant) -> Outcome {
        let (k, connector) = (&spec.target, &spec.connector);
        let mut d = detail(k);
        let conn = match connector.bootstrap(&servers(k)).await {
            Ok(c) => c,
            Err(e) => return down(target, &e, started, d),
        };
        let (mut conn, leader) = match client::leader_conn(connector, conn, &k.topic, k.partition).await {
            Ok(x) => x,
            Err(e) => return down(target, &e, started, d),
        };
        d.broker_id = leader.id;
        let seq = *self
            .next_seq
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(target.to_owned())
            .or_insert(0);
        let ts_ms = now_ms();
        let canary = Canary {
            pantau: "canary".into(),
            target: target.to_owned(),
            run: self.run,
            seq,
            ts_ms,
        };
        let value = serde_json::to_vec(&canary).unwrap_or_default();
        let sent = Instant::now();
        let acked = client::produce(
            &mut conn,
            &k.topic,
            k.partition,
            k.acks.wire(),
            i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
            client::Message {
                key: Bytes::from(canary_key(target)),
                value: Bytes::from(value),
                timestamp_ms: ts_ms,
            },
        )
        .await;
        let latency = sent.elapsed();
        match acked {
            Ok(offset) => {
                // Acknowledged (or, with acks 0, sent): the next canary gets the next number.
                self.next_seq
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(target.to_owned(), seq + 1);
                metrics::histogram!(PRODUCE_LATENCY, "target" => target.to_owned()).record(latency.as_secs_f64());
                d.offset = offset.unwrap_or(-1);
                debug_assert!(k.acks != Acks::None || offset.is_none());
                Outcome::up(latency, Some(Detail::Kafka(d)))
            }
            Err(e) => down(target, &e, started, d),
        }
    }

    /// A `kafka_consumer` check, by its mode.
    pub async fn consume(&self, target: &str, spec: &KafkaSpec, started: Instant) -> Outcome {
        match &spec.target.mode {
            Some(ConsumerMode::GroupLag { group, max_lag }) => group_lag(target, spec, group, *max_lag, started).await,
            Some(ConsumerMode::EndToEnd { producer }) => self.end_to_end(target, spec, producer, started).await,
            None => Outcome::down(
                started.elapsed(),
                FailureReason::Internal,
                "a kafka_consumer target without a mode (the configuration should have refused it)",
            ),
        }
    }

    async fn end_to_end(&self, target: &str, spec: &KafkaSpec, producer: &str, started: Instant) -> Outcome {
        let (k, connector) = (&spec.target, &spec.connector);
        let mut d = detail(k);
        let conn = match connector.bootstrap(&servers(k)).await {
            Ok(c) => c,
            Err(e) => return down(target, &e, started, d),
        };
        let (mut conn, leader) = match client::leader_conn(connector, conn, &k.topic, k.partition).await {
            Ok(x) => x,
            Err(e) => return down(target, &e, started, d),
        };
        d.broker_id = leader.id;
        let mut pos = self
            .positions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(target)
            .cloned()
            .unwrap_or_default();
        let read = read_canaries(&mut conn, k, producer, &mut pos).await;
        let read = match read {
            Ok(r) => r,
            Err(e) => return down(target, &e, started, d),
        };
        self.positions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(target.to_owned(), pos.clone());
        d.records_consumed = read.consumed;
        d.records_missing = read.missing;
        d.offset = pos.next_offset.unwrap_or(-1);
        if read.missing > 0 {
            metrics::counter!(RECORDS_MISSING, "target" => target.to_owned()).increment(read.missing);
        }
        let Some(newest) = read.newest_latency else {
            return Outcome::down(
                started.elapsed(),
                FailureReason::Assertion,
                format!(
                    "no new canary from `{producer}` in {}/{} since offset {}",
                    k.topic, k.partition, d.offset
                ),
            )
            .with_detail(Detail::Kafka(d));
        };
        metrics::gauge!(END_TO_END_LATENCY, "target" => target.to_owned()).set(newest.as_secs_f64());
        d.end_to_end_latency = Some(pantau_core::time::to_duration(newest));
        if read.missing > 0 {
            return Outcome::down(
                started.elapsed(),
                FailureReason::Assertion,
                format!(
                    "{} canary record(s) of `{producer}` missing in {}/{}",
                    read.missing, k.topic, k.partition
                ),
            )
            .with_detail(Detail::Kafka(d));
        }
        Outcome::up(newest, Some(Detail::Kafka(d)))
    }
}

/// What one end-to-end read found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Read {
    consumed: u64,
    missing: u64,
    newest_latency: Option<Duration>,
}

/// Reads `producer`'s canaries from `pos` up to the partition's end as it
/// was at the first fetch, moving `pos` on.
async fn read_canaries(
    conn: &mut Conn,
    k: &KafkaTarget,
    producer: &str,
    pos: &mut Position,
) -> Result<Read, KafkaError> {
    let mut from = if let Some(o) = pos.next_offset {
        o
    } else {
        let latest = client::offset(conn, &k.topic, k.partition, -1).await?;
        let earliest = client::offset(conn, &k.topic, k.partition, -2).await?;
        earliest.max(latest - LOOKBACK)
    };
    let key = canary_key(producer);
    let mut read = Read::default();
    let mut end = None;
    for _ in 0..MAX_FETCHES {
        let fetched = client::fetch(conn, &k.topic, k.partition, from, 100).await;
        let (records, high) = match fetched {
            Ok(x) => x,
            // Retention removed our position: start again from the oldest record.
            Err(KafkaError::Broker { code: 1, .. }) => {
                from = client::offset(conn, &k.topic, k.partition, -2).await?;
                pos.last = None;
                continue;
            }
            Err(e) => return Err(e),
        };
        let end = *end.get_or_insert(high);
        let mut moved = false;
        let start = from;
        for r in records.iter().filter(|r| r.offset >= start) {
            moved = true;
            from = r.offset + 1;
            if r.key.as_deref() != Some(key.as_bytes()) {
                continue;
            }
            let Some(c) = r
                .value
                .as_deref()
                .and_then(|v| serde_json::from_slice::<Canary>(v).ok())
            else {
                continue;
            };
            if c.pantau != "canary" || c.target != producer {
                continue;
            }
            read.consumed += 1;
            read.missing += gap(pos.last, c.run, c.seq);
            if pos.last.is_none_or(|(run, seq)| run != c.run || c.seq > seq) {
                pos.last = Some((c.run, c.seq));
            }
            let age = u64::try_from(now_ms().saturating_sub(c.ts_ms)).unwrap_or(0);
            read.newest_latency = Some(Duration::from_millis(age));
        }
        if !moved || from >= end {
            break;
        }
    }
    pos.next_offset = Some(from);
    Ok(read)
}

/// Canaries missing between the last one seen and (`run`, `seq`): none
/// across runs (the producer restarted) or for a repeat.
fn gap(last: Option<(u64, u64)>, run: u64, seq: u64) -> u64 {
    match last {
        Some((r, s)) if r == run && seq > s.saturating_add(1) => seq - s - 1,
        _ => 0,
    }
}

/// A `kafka_consumer` group_lag check: each partition's end against the
/// group's committed offset.
async fn group_lag(target: &str, spec: &KafkaSpec, group: &str, max_lag: u64, started: Instant) -> Outcome {
    let k = &spec.target;
    let mut d = detail(k);
    d.group = group.to_owned();
    d.max_lag = max_lag;
    let lags = match lags(spec, group).await {
        Ok(l) => l,
        Err(e) => return down(target, &e, started, d),
    };
    let mut worst: Option<(i32, u64)> = None;
    for (&p, &lag) in &lags {
        metrics::gauge!(CONSUMER_LAG, "target" => target.to_owned(), "partition" => p.to_string()).set(lag as f64);
        d.total_lag = d.total_lag.saturating_add(lag);
        if worst.is_none_or(|(_, w)| lag > w) {
            worst = Some((p, lag));
        }
    }
    d.lag_by_partition = lags.into_iter().collect();
    match worst {
        Some((p, lag)) if lag > max_lag => {
            d.partition = p;
            Outcome::down(
                started.elapsed(),
                FailureReason::Assertion,
                format!(
                    "group `{group}` is {lag} records behind on {}/{p} (at most {max_lag} allowed)",
                    k.topic
                ),
            )
            .with_detail(Detail::Kafka(d))
        }
        _ => Outcome::up(started.elapsed(), Some(Detail::Kafka(d))),
    }
}

/// Lag per partition: the partition's end minus the group's committed
/// offset, or minus its start when the group committed none.
async fn lags(spec: &KafkaSpec, group: &str) -> Result<BTreeMap<i32, u64>, KafkaError> {
    let (k, connector) = (&spec.target, &spec.connector);
    let mut conn = connector.bootstrap(&servers(k)).await?;
    let leaders = client::partition_leaders(&mut conn, &k.topic).await?;
    let mut ends = BTreeMap::new();
    let mut conns: HashMap<String, Conn> = HashMap::new();
    let bootstrap = conn.address().to_owned();
    conns.insert(bootstrap, conn);
    for (p, leader) in &leaders {
        if !conns.contains_key(&leader.address) {
            conns.insert(leader.address.clone(), connector.connect(&leader.address).await?);
        }
        let c = conns.get_mut(&leader.address).expect("inserted above");
        let latest = client::offset(c, &k.topic, *p, -1).await?;
        let earliest = client::offset(c, &k.topic, *p, -2).await?;
        ends.insert(*p, (earliest, latest));
    }
    let any = conns.values_mut().next().expect("the bootstrap connection");
    let coordinator = client::coordinator(any, group).await?;
    let mut cc = match conns.remove(&coordinator) {
        Some(c) => c,
        None => connector.connect(&coordinator).await?,
    };
    let partitions: Vec<i32> = ends.keys().copied().collect();
    let committed: HashMap<i32, i64> = client::committed(&mut cc, group, &k.topic, &partitions)
        .await?
        .into_iter()
        .collect();
    Ok(ends
        .into_iter()
        .map(|(p, (earliest, latest))| {
            let at = committed.get(&p).copied().filter(|o| *o >= 0).unwrap_or(earliest);
            (p, u64::try_from(latest.saturating_sub(at)).unwrap_or(0))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_count_within_a_run_only() {
        assert_eq!(gap(None, 1, 5), 0);
        assert_eq!(gap(Some((1, 4)), 1, 5), 0);
        assert_eq!(gap(Some((1, 4)), 1, 8), 3);
        assert_eq!(gap(Some((1, 4)), 1, 4), 0);
        assert_eq!(gap(Some((1, 4)), 1, 2), 0);
        assert_eq!(gap(Some((1, 4)), 2, 9), 0);
        assert_eq!(gap(Some((1, u64::MAX - 1)), 1, u64::MAX), 0);
    }

    #[test]
    fn canary_value_is_strict() {
        let c = Canary {
            pantau: "canary".into(),
            target: "t".into(),
            run: 1,
            seq: 2,
            ts_ms: 3,
        };
        let v = serde_json::to_vec(&c).unwrap();
        assert_eq!(serde_json::from_slice::<Canary>(&v).unwrap(), c);
        for junk in [
            &b""[..],
            b"{}",
            b"null",
            b"{\"pantau\":\"canary\",\"target\":\"t\",\"run\":-1,\"seq\":2,\"ts_ms\":3}",
            b"{\"pantau\":\"canary\",\"target\":\"t\",\"run\":1,\"seq\":\"2\",\"ts_ms\":3}",
            b"{\"pantau\":\"canary\",\"target\":\"t\",\"run\":1,\"seq\":2,\"ts_ms\":3,\"x\":1}",
            b"\xff\xfe",
        ] {
            assert!(serde_json::from_slice::<Canary>(junk).is_err(), "{junk:?}");
        }
    }
}
