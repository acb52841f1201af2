//! A small Kafka client on the `kafka-protocol` crate's message codecs:
//! one connection, one request at a time, fixed protocol versions that
//! Apache Kafka 0.11 to 4.x and Kafka-protocol brokers (tansu) all serve.
//! A [`Connector`] makes each connection as the target's `security` says:
//! plain TCP or TLS (rustls), then SASL ([`super::sasl`]) when asked.
//! Every answer is bounded in size and decoded as untrusted input: a reply
//! that does not decode is a [`KafkaError::Malformed`], never a panic.

use std::io::ErrorKind;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FindCoordinatorRequest, GroupId, ListOffsetsRequest, MetadataRequest, MetadataResponse,
    OffsetFetchRequest, ProduceRequest, RequestHeader, ResponseHeader, TopicName,
    fetch_request::{FetchPartition, FetchTopic},
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    metadata_request::MetadataRequestTopic,
    offset_fetch_request::OffsetFetchRequestTopic,
    produce_request::{PartitionProduceData, TopicProduceData},
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, Record, RecordBatchDecoder,
    RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest answer read from a broker; a longer length prefix is refused.
pub const MAX_RESPONSE: usize = 16 * 1024 * 1024;
/// Bytes asked for per partition in a fetch.
pub const FETCH_BYTES: i32 = 1024 * 1024;

/// Protocol versions used: the lowest Kafka 4 still serves, so older
/// brokers serve them too.
mod version {
    pub const METADATA: i16 = 4;
    pub const PRODUCE: i16 = 3;
    pub const FETCH: i16 = 4;
    pub const LIST_OFFSETS: i16 = 1;
    pub const FIND_COORDINATOR: i16 = 1;
    pub const OFFSET_FETCH: i16 = 1;
}

/// Why a Kafka request failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot resolve {address}: {source}")]
    Resolve { address: String, source: std::io::Error },
    #[error("cannot connect to {address}: {source}")]
    Connect { address: String, source: std::io::Error },
    #[error("connection to {address} lost: {source}")]
    Io { address: String, source: std::io::Error },
    #[error("{address} sent an answer that does not decode: {why}")]
    Malformed { address: String, why: String },
    #[error("the broker answered error {code} ({name}){}", .context.as_deref().map(|c| format!(" for {c}")).unwrap_or_default())]
    Broker {
        code: i16,
        name: String,
        context: Option<String>,
    },
    #[error("topic `{0}` does not exist")]
    TopicMissing(String),
    #[error("partition {partition} of topic `{topic}` does not exist (it has {count})")]
    PartitionMissing {
        topic: String,
        partition: i32,
        count: usize,
    },
    #[error("the broker refused our credentials or access: error {code} ({name})")]
    Auth { code: i16, name: String },
    #[error("partition {partition} of `{topic}` has no leader")]
    NoLeader { topic: String, partition: i32 },
    #[error("TLS handshake with {address} failed: {why}")]
    Tls { address: String, why: String },
    #[error("SASL authentication with {address} failed: {why}")]
    Sasl { address: String, why: String },
}

impl KafkaError {
    /// The error a broker's error `code` means, or `None` for 0.
    pub fn from_code(code: i16, context: Option<String>) -> Option<Self> {
        let err = ResponseError::try_from_code(code)?;
        let name = format!("{err:?}");
        Some(match err {
            ResponseError::SaslAuthenticationFailed
            | ResponseError::TopicAuthorizationFailed
            | ResponseError::GroupAuthorizationFailed
            | ResponseError::ClusterAuthorizationFailed
            | ResponseError::IllegalSaslState
            | ResponseError::UnsupportedSaslMechanism => Self::Auth { code, name },
            _ => Self::Broker { code, name, context },
        })
    }

    /// The broker's error code, when the broker sent one.
    pub fn code(&self) -> i16 {
        match self {
            Self::Broker { code, .. } | Self::Auth { code, .. } => *code,
            Self::TopicMissing(_) | Self::PartitionMissing { .. } => 3,
            _ => 0,
        }
    }
}

fn no_answer(address: &str, e: std::io::Error) -> KafkaError {
    if e.kind() == ErrorKind::UnexpectedEof {
        KafkaError::Io {
            address: address.to_owned(),
            source: std::io::Error::new(ErrorKind::UnexpectedEof, "the broker closed the connection"),
        }
    } else {
        KafkaError::Io {
            address: address.to_owned(),
            source: e,
        }
    }
}

pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One connection to one broker.
pub struct Conn {
    stream: Box<dyn Io>,
    address: String,
    correlation: i32,
}

pub use super::connect::Connector;

/// A partition's leader as metadata names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub id: i32,
    pub address: String,
    /// Partitions the topic has.
    pub partitions: usize,
}

impl Conn {
    /// A connection to `address` over `stream`, before any request.
    pub(super) fn new(stream: Box<dyn Io>, address: &str) -> Self {
        Self {
            stream,
            address: address.to_owned(),
            correlation: 0,
        }
    }

    /// A plaintext connection to `address` (`host:port`), without SASL.
    pub async fn connect(address: &str) -> Result<Self, KafkaError> {
        Connector::default().connect(address).await
    }

    /// A plaintext connection to the first of `servers` that answers.
    pub async fn bootstrap(servers: &[String]) -> Result<Self, KafkaError> {
        Connector::default().bootstrap(servers).await
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    fn frame<R: Request>(&mut self, req: &R, version: i16) -> Result<(i32, BytesMut), KafkaError> {
        self.correlation = self.correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("pantau")));
        let mut body = BytesMut::new();
        let bad = |e: &dyn std::fmt::Display| KafkaError::Malformed {
            address: self.address.clone(),
            why: format!("cannot encode the request: {e}"),
        };
        header
            .encode(&mut body, R::header_version(version))
            .map_err(|e| bad(&e))?;
        req.encode(&mut body, version).map_err(|e| bad(&e))?;
        let mut out = BytesMut::with_capacity(body.len() + 4);
        out.put_i32(i32::try_from(body.len()).unwrap_or(i32::MAX));
        out.extend_from_slice(&body);
        Ok((self.correlation, out))
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), KafkaError> {
        let address = self.address.clone();
        self.stream.write_all(bytes).await.map_err(|e| no_answer(&address, e))
    }

    /// Sends a request the broker does not answer (a produce with acks 0).
    pub async fn send_only<R: Request>(&mut self, req: &R, version: i16) -> Result<(), KafkaError> {
        let (_, out) = self.frame(req, version)?;
        self.write(&out).await
    }

    /// Sends `req` and decodes its answer.
    pub async fn send<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response, KafkaError> {
        let (id, out) = self.frame(req, version)?;
        self.write(&out).await?;
        let address = self.address.clone();
        let len = self.stream.read_i32().await.map_err(|e| no_answer(&address, e))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|n| (4..=MAX_RESPONSE).contains(n))
            .ok_or_else(|| KafkaError::Malformed {
                address: address.clone(),
                why: format!("answer length {len} is outside 4..={MAX_RESPONSE}"),
            })?;
        let mut buf = vec![0u8; len];
        self.stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| no_answer(&address, e))?;
        decode_response::<R>(&address, id, version, Bytes::from(buf))
    }
}

/// Decodes one answer (without its length prefix) to a request of type `R`
/// sent with correlation id `id`.
pub fn decode_response<R: Request>(
    address: &str,
    id: i32,
    version: i16,
    mut buf: Bytes,
) -> Result<R::Response, KafkaError> {
    let bad = |why: String| KafkaError::Malformed {
        address: address.to_owned(),
        why,
    };
    let header_version = <R::Response as HeaderVersion>::header_version(version);
    if header_version != 0 || buf.len() < 4 {
        return Err(bad(format!(
            "an answer of {} bytes with header version {header_version}",
            buf.len()
        )));
    }
    // Before the crate decodes it: see `guard` for why.
    super::guard::response(R::KEY, version, &buf[4..]).map_err(bad)?;
    let header = ResponseHeader::decode(&mut buf, header_version).map_err(|e| bad(format!("header: {e}")))?;
    if header.correlation_id != id {
        return Err(bad(format!(
            "it answers request {} while {id} was sent",
            header.correlation_id
        )));
    }
    let resp = R::Response::decode(&mut buf, version).map_err(|e| bad(format!("body: {e}")))?;
    Ok(resp)
}

fn topic_name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_owned()))
}

/// Asks for `topic`'s metadata (never creating it) and finds `partition`'s leader.
pub async fn leader(conn: &mut Conn, topic: &str, partition: i32) -> Result<Leader, KafkaError> {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
        ]))
        .with_allow_auto_topic_creation(false);
    let resp: MetadataResponse = conn.send(&req, version::METADATA).await?;
    find_leader(&resp, topic, partition)
}

/// `partition`'s leader in a metadata answer.
pub fn find_leader(resp: &MetadataResponse, topic: &str, partition: i32) -> Result<Leader, KafkaError> {
    let t = resp
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .ok_or_else(|| KafkaError::TopicMissing(topic.to_owned()))?;
    match ResponseError::try_from_code(t.error_code) {
        None => {}
        Some(ResponseError::UnknownTopicOrPartition | ResponseError::InvalidTopicException) => {
            return Err(KafkaError::TopicMissing(topic.to_owned()));
        }
        Some(_) => {
            return Err(KafkaError::from_code(t.error_code, Some(format!("topic `{topic}`")))
                .unwrap_or_else(|| KafkaError::TopicMissing(topic.to_owned())));
        }
    }
    let p = t
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| KafkaError::PartitionMissing {
            topic: topic.to_owned(),
            partition,
            count: t.partitions.len(),
        })?;
    if let Some(e) = KafkaError::from_code(p.error_code, Some(format!("{topic}/{partition}")))
        && !matches!(
            ResponseError::try_from_code(p.error_code),
            Some(ResponseError::ReplicaNotAvailable)
        )
    {
        return Err(e);
    }
    let BrokerId(id) = p.leader_id;
    let b = resp
        .brokers
        .iter()
        .find(|b| b.node_id == p.leader_id)
        .ok_or_else(|| KafkaError::NoLeader {
            topic: topic.to_owned(),
            partition,
        })?;
    let port = u16::try_from(b.port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| KafkaError::Malformed {
            address: String::new(),
            why: format!("broker {id} has port {}", b.port),
        })?;
    let host = b.host.as_str();
    let address = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok(Leader {
        id,
        address,
        partitions: t.partitions.len(),
    })
}

/// A connection to `partition`'s leader (reusing `conn` when it is the
/// leader), made by `connector`.
pub async fn leader_conn(
    connector: &Connector,
    mut conn: Conn,
    topic: &str,
    partition: i32,
) -> Result<(Conn, Leader), KafkaError> {
    let l = leader(&mut conn, topic, partition).await?;
    if l.address == conn.address {
        return Ok((conn, l));
    }
    let c = connector.connect(&l.address).await?;
    Ok((c, l))
}

/// One record to produce.
#[derive(Debug, Clone)]
pub struct Message {
    pub key: Bytes,
    pub value: Bytes,
    /// Unix milliseconds.
    pub timestamp_ms: i64,
}

/// A produced record's offset (`None` with acks 0, which has no answer).
pub async fn produce(
    conn: &mut Conn,
    topic: &str,
    partition: i32,
    acks: i16,
    timeout_ms: i32,
    msg: Message,
) -> Result<Option<i64>, KafkaError> {
    let Message {
        key,
        value,
        timestamp_ms,
    } = msg;
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: NO_SEQUENCE,
        timestamp: timestamp_ms,
        key: Some(key),
        value: Some(value),
        headers: kafka_protocol::indexmap::IndexMap::default(),
    };
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| KafkaError::Malformed {
        address: conn.address.clone(),
        why: format!("cannot encode the record: {e}"),
    })?;
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(batch.freeze())),
                ]),
        ]);
    if acks == 0 {
        conn.send_only(&req, version::PRODUCE).await?;
        return Ok(None);
    }
    let resp = conn.send(&req, version::PRODUCE).await?;
    let p = resp
        .responses
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| t.partition_responses.iter())
        .find(|p| p.index == partition)
        .ok_or_else(|| KafkaError::Malformed {
            address: conn.address.clone(),
            why: format!("the produce answer lacks {topic}/{partition}"),
        })?;
    if matches!(
        ResponseError::try_from_code(p.error_code),
        Some(ResponseError::UnknownTopicOrPartition)
    ) {
        return Err(KafkaError::TopicMissing(topic.to_owned()));
    }
    if let Some(e) = KafkaError::from_code(p.error_code, Some(format!("{topic}/{partition}"))) {
        return Err(e);
    }
    Ok(Some(p.base_offset))
}

/// A partition's earliest (`-2`) or latest (`-1`) offset.
pub async fn offset(conn: &mut Conn, topic: &str, partition: i32, at: i64) -> Result<i64, KafkaError> {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_timestamp(at),
                ]),
        ]);
    let resp = conn.send(&req, version::LIST_OFFSETS).await?;
    let p = resp
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| KafkaError::Malformed {
            address: conn.address.clone(),
            why: format!("the offsets answer lacks {topic}/{partition}"),
        })?;
    if let Some(e) = KafkaError::from_code(p.error_code, Some(format!("{topic}/{partition}"))) {
        return Err(e);
    }
    if p.offset < 0 {
        return Err(KafkaError::Malformed {
            address: conn.address.clone(),
            why: format!("offset {} of {topic}/{partition} is negative", p.offset),
        });
    }
    Ok(p.offset)
}

/// Records of `partition` from `from`, and the partition's high watermark.
pub async fn fetch(
    conn: &mut Conn,
    topic: &str,
    partition: i32,
    from: i64,
    max_wait_ms: i32,
) -> Result<(Vec<Record>, i64), KafkaError> {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_BYTES)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(from)
                        .with_partition_max_bytes(FETCH_BYTES),
                ]),
        ]);
    let resp = conn.send(&req, version::FETCH).await?;
    let address = conn.address.clone();
    let p = resp
        .responses
        .into_iter()
        .filter(|t| t.topic.0.as_str() == topic)
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| KafkaError::Malformed {
            address: address.clone(),
            why: format!("the fetch answer lacks {topic}/{partition}"),
        })?;
    if let Some(e) = KafkaError::from_code(p.error_code, Some(format!("{topic}/{partition}"))) {
        return Err(e);
    }
    let records = match p.records {
        Some(mut bytes) if bytes.has_remaining() => decode_records(&address, &mut bytes)?,
        _ => Vec::new(),
    };
    Ok((records, p.high_watermark))
}

/// The records of every whole batch in `bytes`; a batch cut short at the end
/// (a fetch answer may end in one) is left for the next fetch.
pub fn decode_records(address: &str, bytes: &mut Bytes) -> Result<Vec<Record>, KafkaError> {
    let mut out = Vec::new();
    while bytes.remaining() >= 12 {
        // A batch: base offset (8), length (4), then `length` bytes.
        let len = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let Ok(len) = usize::try_from(len) else {
            return Err(KafkaError::Malformed {
                address: address.to_owned(),
                why: format!("a record batch has length {len}"),
            });
        };
        if bytes.remaining() < 12 + len {
            break;
        }
        let mut batch = bytes.split_to(12 + len);
        // Before the crate decodes it: see `guard` for why.
        super::guard::batch(&batch).map_err(|why| KafkaError::Malformed {
            address: address.to_owned(),
            why,
        })?;
        let set = RecordBatchDecoder::decode(&mut batch).map_err(|e| KafkaError::Malformed {
            address: address.to_owned(),
            why: format!("a record batch does not decode: {e}"),
        })?;
        out.extend(set.records);
    }
    Ok(out)
}

/// The broker coordinating `group`.
pub async fn coordinator(conn: &mut Conn, group: &str) -> Result<String, KafkaError> {
    let req = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_owned()))
        .with_key_type(0);
    let resp = conn.send(&req, version::FIND_COORDINATOR).await?;
    if let Some(e) = KafkaError::from_code(resp.error_code, Some(format!("group `{group}`"))) {
        return Err(e);
    }
    let port = u16::try_from(resp.port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| KafkaError::Malformed {
            address: conn.address.clone(),
            why: format!("the coordinator has port {}", resp.port),
        })?;
    let host = resp.host.as_str();
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// `group`'s committed offset of each of `partitions` of `topic` (`-1`: none committed).
pub async fn committed(
    conn: &mut Conn,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<Vec<(i32, i64)>, KafkaError> {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(partitions.to_vec()),
        ]));
    let resp = conn.send(&req, version::OFFSET_FETCH).await?;
    if let Some(e) = KafkaError::from_code(resp.error_code, Some(format!("group `{group}`"))) {
        return Err(e);
    }
    let mut out = Vec::new();
    for p in resp
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| t.partitions.iter())
    {
        if let Some(e) = KafkaError::from_code(
            p.error_code,
            Some(format!("group `{group}` {topic}/{}", p.partition_index)),
        ) {
            return Err(e);
        }
        out.push((p.partition_index, p.committed_offset));
    }
    Ok(out)
}

/// Every partition of `topic` with its leader's id and address.
pub async fn partition_leaders(conn: &mut Conn, topic: &str) -> Result<Vec<(i32, Leader)>, KafkaError> {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
        ]))
        .with_allow_auto_topic_creation(false);
    let resp: MetadataResponse = conn.send(&req, version::METADATA).await?;
    let indexes: Vec<i32> = resp
        .topics
        .iter()
        .filter(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
        .collect();
    if indexes.is_empty() {
        // Says why: the topic is missing, or the broker's error.
        find_leader(&resp, topic, 0)?;
    }
    indexes
        .into_iter()
        .map(|i| find_leader(&resp, topic, i).map(|l| (i, l)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsRequest;

    #[test]
    fn garbage_answers_are_malformed_not_panics() {
        let samples: Vec<Vec<u8>> = vec![
            vec![],
            vec![0, 0, 0, 1],
            vec![0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff],
            vec![0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 0, 1, 2],
            (0..=255u8).collect(),
            vec![0xff; 4096],
        ];
        for s in samples {
            let r = decode_response::<MetadataRequest>("b:1", 1, version::METADATA, Bytes::from(s.clone()));
            assert!(matches!(r, Err(KafkaError::Malformed { .. })), "{s:?}: {r:?}");
            let r = decode_response::<ProduceRequest>("b:1", 1, version::PRODUCE, Bytes::from(s.clone()));
            assert!(r.is_err(), "{s:?}");
            let r = decode_response::<FetchRequest>("b:1", 1, version::FETCH, Bytes::from(s.clone()));
            assert!(r.is_err(), "{s:?}");
            let r = decode_response::<ApiVersionsRequest>("b:1", 1, 0, Bytes::from(s));
            assert!(r.is_err());
        }
    }

    #[test]
    fn hostile_sasl_answers_are_malformed_not_panics() {
        use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
        // Correlation id 1, then the body.
        let frame = |body: &[u8]| {
            let mut b = 1i32.to_be_bytes().to_vec();
            b.extend_from_slice(body);
            Bytes::from(b)
        };
        // SaslHandshake v1: error 0 and two billion mechanisms.
        let mut huge = 0i16.to_be_bytes().to_vec();
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        let r = decode_response::<SaslHandshakeRequest>("b:1", 1, 1, frame(&huge));
        assert!(matches!(r, Err(KafkaError::Malformed { .. })), "{r:?}");
        // SaslAuthenticate v1: auth_bytes claiming 2 GiB.
        let mut big = 0i16.to_be_bytes().to_vec();
        big.extend_from_slice(&(-1i16).to_be_bytes()); // error_message null
        big.extend_from_slice(&i32::MAX.to_be_bytes());
        let r = decode_response::<SaslAuthenticateRequest>("b:1", 1, 1, frame(&big));
        assert!(matches!(r, Err(KafkaError::Malformed { .. })), "{r:?}");
        // A well-formed answer decodes: error 58 with a message and no bytes.
        let mut ok = 58i16.to_be_bytes().to_vec();
        ok.extend_from_slice(&3i16.to_be_bytes());
        ok.extend_from_slice(b"bad");
        ok.extend_from_slice(&0i32.to_be_bytes());
        ok.extend_from_slice(&0i64.to_be_bytes());
        let r = decode_response::<SaslAuthenticateRequest>("b:1", 1, 1, frame(&ok)).unwrap();
        assert_eq!((r.error_code, r.error_message.as_deref()), (58, Some("bad")));
        for garbage in [vec![], vec![0xff; 3], (0..=255u8).collect::<Vec<_>>()] {
            assert!(decode_response::<SaslHandshakeRequest>("b:1", 1, 1, frame(&garbage)).is_err());
            assert!(decode_response::<SaslAuthenticateRequest>("b:1", 1, 1, frame(&garbage)).is_err());
        }
        // An unguarded version is refused, not decoded.
        assert!(decode_response::<SaslAuthenticateRequest>("b:1", 1, 2, frame(&ok)).is_err());
    }

    #[test]
    fn wrong_correlation_id_is_refused() {
        // A header with correlation id 7 and a ListOffsets v1 body with no topics.
        let mut b = BytesMut::new();
        b.put_i32(7);
        b.put_i32(0);
        let ok = decode_response::<ListOffsetsRequest>("b:1", 7, version::LIST_OFFSETS, b.clone().freeze());
        assert!(ok.is_ok(), "{ok:?}");
        let r = decode_response::<ListOffsetsRequest>("b:1", 8, version::LIST_OFFSETS, b.freeze());
        let Err(KafkaError::Malformed { why, .. }) = r else {
            panic!("{r:?}")
        };
        assert!(why.contains("answers request 7"), "{why}");
    }

    #[test]
    fn truncated_and_garbage_batches() {
        let mut whole = BytesMut::new();
        let rec = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: 5,
            sequence: NO_SEQUENCE,
            timestamp: 1,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: kafka_protocol::indexmap::IndexMap::default(),
        };
        RecordBatchEncoder::encode(
            &mut whole,
            [&rec],
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        let whole = whole.freeze();
        let got = decode_records("b:1", &mut whole.clone()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].offset, 5);
        // Cut short: nothing yet, no error.
        let mut cut = whole.slice(..whole.len() - 3);
        assert!(decode_records("b:1", &mut cut).unwrap().is_empty());
        // Negative length.
        let mut neg = BytesMut::from(&whole[..]);
        neg[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(
            decode_records("b:1", &mut neg.freeze()),
            Err(KafkaError::Malformed { .. })
        ));
        // A whole batch of garbage of the length it claims.
        let mut junk = BytesMut::new();
        junk.put_i64(0);
        junk.put_i32(40);
        junk.extend_from_slice(&[0xab; 40]);
        assert!(matches!(
            decode_records("b:1", &mut junk.freeze()),
            Err(KafkaError::Malformed { .. })
        ));
    }

    #[test]
    fn huge_counts_are_malformed_not_an_abort() {
        // Correlation id 1, throttle 0, then i32::MAX brokers: the crate
        // alone would try to allocate them all.
        let mut b = BytesMut::new();
        b.put_i32(1);
        b.put_i32(0);
        b.put_i32(i32::MAX);
        let r = decode_response::<MetadataRequest>("b:1", 1, version::METADATA, b.freeze());
        assert!(matches!(r, Err(KafkaError::Malformed { .. })), "{r:?}");
        // A record batch claiming i32::MAX records.
        let mut batch = BytesMut::new();
        batch.put_i64(0);
        batch.put_i32(49);
        batch.extend_from_slice(&[0; 49]);
        batch[16] = 2;
        batch[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            decode_records("b:1", &mut batch.freeze()),
            Err(KafkaError::Malformed { .. })
        ));
    }

    #[test]
    fn error_codes_are_typed() {
        assert!(KafkaError::from_code(0, None).is_none());
        assert!(matches!(
            KafkaError::from_code(58, None),
            Some(KafkaError::Auth { code: 58, .. })
        ));
        let e = KafkaError::from_code(6, Some("t/0".into())).unwrap();
        assert_eq!(e.code(), 6);
        assert!(e.to_string().contains("error 6"), "{e}");
        assert!(matches!(
            KafkaError::from_code(-32000, None),
            Some(KafkaError::Broker { code: -32000, .. })
        ));
    }
}
