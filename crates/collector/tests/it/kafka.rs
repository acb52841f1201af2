//! Kafka checks against a real Kafka-protocol broker (`tansu`, started by
//! the testkit): produce OK with each acks, topic missing, broker down,
//! end-to-end consume with records missing, a consumer group's lag.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, TopicName,
    offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
};
use kafka_protocol::protocol::StrBytes;
use pantau_collector::checks::kafka::{Canary, canary_key, client};
use pantau_collector::checks::{Checker, Outcome};
use pantau_collector::target::Target;
use pantau_config::{CheckType, CollectorConfig, RawKafka, RawTarget};
use pantau_proto::v1::{FailureReason, KafkaDetail, TargetSource, check_result::Detail};
use pantau_testkit::Kafka;

fn compile(t: &RawTarget) -> Target {
    let cfg = CollectorConfig {
        timeout: Duration::from_secs(5),
        ..CollectorConfig::default()
    };
    Target::compile(
        &Arc::new(t.clone().parse("t").unwrap_or_else(|e| panic!("{e:?}"))),
        "t",
        &cfg,
        TargetSource::Config,
    )
    .unwrap_or_else(|e| panic!("{e:?}"))
}

fn kafka_target(id: &str, check: CheckType, broker: &str, topic: &str, f: impl FnOnce(&mut RawKafka)) -> Target {
    let mut t = RawTarget::new(id, check);
    let mut k = RawKafka {
        bootstrap_servers: vec![broker.to_owned()],
        topic: Some(topic.to_owned()),
        ..RawKafka::default()
    };
    f(&mut k);
    t.kafka = Some(k);
    compile(&t)
}

fn detail(o: &Outcome) -> &KafkaDetail {
    match &o.detail {
        Some(Detail::Kafka(k)) => k,
        other => panic!("no kafka detail: {other:?} in {o:?}"),
    }
}

async fn broker() -> Kafka {
    Kafka::start()
        .await
        .expect("tansu starts (cargo install --locked tansu --features dynostore)")
}

async fn conn(k: &Kafka) -> client::Conn {
    client::Conn::connect(&k.bootstrap()).await.unwrap()
}

#[tokio::test]
async fn produce_reports_offset_partition_and_leader_with_each_acks() {
    let k = broker().await;
    k.create_topic("canary", 1).await.unwrap();
    let checker = Checker::new().unwrap();
    let t = kafka_target("p", CheckType::KafkaProducer, &k.bootstrap(), "canary", |_| {});
    let first = checker.check(&t).await;
    assert!(first.up, "{first:?}\n{}", k.log_tail());
    let d = detail(&first);
    assert_eq!((d.topic.as_str(), d.partition), ("canary", 0));
    assert!(d.broker_id >= 0, "{d:?}");
    let second = checker.check(&t).await;
    assert!(second.up, "{second:?}");
    assert_eq!(detail(&second).offset, d.offset + 1, "offsets move on");

    let leader = kafka_target("p1", CheckType::KafkaProducer, &k.bootstrap(), "canary", |x| {
        x.acks = Some("1".into());
    });
    let o = checker.check(&leader).await;
    assert!(o.up && detail(&o).offset >= 2, "{o:?}");
    let none = kafka_target("p0", CheckType::KafkaProducer, &k.bootstrap(), "canary", |x| {
        x.acks = Some("0".into());
    });
    let o = checker.check(&none).await;
    assert!(o.up, "{o:?}");
    assert_eq!(detail(&o).offset, -1, "acks 0 has no offset");

    // The canary is in the topic, with its key and a value naming the target.
    let mut c = conn(&k).await;
    let (records, high) = client::fetch(&mut c, "canary", 0, 0, 100).await.unwrap();
    assert!(high >= 3, "{high}");
    let r = &records[0];
    assert_eq!(r.key.as_deref(), Some(canary_key("p").as_bytes()));
    let canary: Canary = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
    assert_eq!(
        (canary.pantau.as_str(), canary.target.as_str(), canary.seq),
        ("canary", "p", 0)
    );
}

#[tokio::test]
async fn a_missing_topic_and_partition_are_topic_missing() {
    let k = broker().await;
    k.create_topic("present", 1).await.unwrap();
    let checker = Checker::new().unwrap();
    let t = kafka_target("p", CheckType::KafkaProducer, &k.bootstrap(), "absent", |_| {});
    let o = checker.check(&t).await;
    assert!(!o.up);
    assert_eq!(o.reason, FailureReason::TopicMissing, "{o:?}");
    assert!(o.message.contains("absent"), "{}", o.message);
    assert_eq!(detail(&o).error_code, 3);
    let t = kafka_target("p", CheckType::KafkaProducer, &k.bootstrap(), "present", |x| {
        x.partition = Some(7);
    });
    let o = checker.check(&t).await;
    assert_eq!(o.reason, FailureReason::TopicMissing, "{o:?}");
    assert!(o.message.contains("partition 7"), "{}", o.message);
}

#[tokio::test]
async fn a_stopped_broker_is_down_connect_and_recovers() {
    let mut k = broker().await;
    k.create_topic("canary", 1).await.unwrap();
    let checker = Checker::new().unwrap();
    let t = kafka_target("p", CheckType::KafkaProducer, &k.bootstrap(), "canary", |_| {});
    assert!(checker.check(&t).await.up);
    k.stop().await;
    let o = checker.check(&t).await;
    assert!(!o.up);
    assert_eq!(o.reason, FailureReason::Connect, "{o:?}");
    assert!(o.message.contains(&k.bootstrap()), "{}", o.message);
    k.start_again().await.unwrap();
    k.create_topic("canary", 1).await.unwrap();
    let o = checker.check(&t).await;
    assert!(o.up, "{o:?}");
}

#[tokio::test]
async fn end_to_end_reads_the_producers_canaries_and_counts_the_missing() {
    let k = broker().await;
    k.create_topic("e2e", 1).await.unwrap();
    let checker = Checker::new().unwrap();
    let producer = kafka_target("canary-p", CheckType::KafkaProducer, &k.bootstrap(), "e2e", |_| {});
    let consumer = kafka_target("canary-c", CheckType::KafkaConsumer, &k.bootstrap(), "e2e", |x| {
        x.mode = Some("end_to_end".into());
        x.producer = Some("canary-p".into());
    });
    for _ in 0..3 {
        assert!(checker.check(&producer).await.up);
    }
    let o = checker.check(&consumer).await;
    assert!(o.up, "{o:?}");
    let d = detail(&o);
    assert_eq!((d.records_consumed, d.records_missing), (3, 0), "{d:?}");
    assert!(d.end_to_end_latency.is_some());
    assert!(o.latency < Duration::from_secs(5), "{o:?}");

    // Nothing new since: down, saying so.
    let o = checker.check(&consumer).await;
    assert_eq!(o.reason, FailureReason::Assertion, "{o:?}");
    assert!(o.message.contains("no new canary"), "{}", o.message);

    // Another producer's records and garbage are skipped; a gap of 2 is counted.
    let mut c = conn(&k).await;
    let mut write = async |key: &str, value: Vec<u8>| {
        let msg = client::Message {
            key: Bytes::from(key.to_owned()),
            value: Bytes::from(value),
            timestamp_ms: 0,
        };
        client::produce(&mut c, "e2e", 0, -1, 5000, msg).await.unwrap();
    };
    let canary = |seq| {
        serde_json::to_vec(&Canary {
            pantau: "canary".into(),
            target: "canary-p".into(),
            run: 42,
            seq,
            ts_ms: 1,
        })
        .unwrap()
    };
    write(&canary_key("canary-p"), canary(0)).await;
    write(&canary_key("canary-p"), b"\xff not json".to_vec()).await;
    write(&canary_key("other"), canary(1)).await;
    write("", Vec::new()).await;
    write(&canary_key("canary-p"), canary(3)).await;
    let o = checker.check(&consumer).await;
    assert_eq!(o.reason, FailureReason::Assertion, "{o:?}");
    let d = detail(&o);
    assert_eq!((d.records_consumed, d.records_missing), (2, 2), "{d:?}");
    assert!(o.message.contains("2 canary record(s)"), "{}", o.message);
}

async fn commit(k: &Kafka, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let mut c = conn(k).await;
    let coordinator = client::coordinator(&mut c, group).await.unwrap();
    let mut c = client::Conn::connect(&coordinator).await.unwrap();
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_retention_time_ms(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(
                    offsets
                        .iter()
                        .map(|(p, o)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(*o)
                        })
                        .collect(),
                ),
        ]);
    let resp = c.send(&req, 2).await.unwrap();
    for t in resp.topics {
        for p in t.partitions {
            assert_eq!(p.error_code, 0, "commit of {}/{}", topic, p.partition_index);
        }
    }
}

#[tokio::test]
async fn group_lag_per_partition_against_the_threshold() {
    let k = broker().await;
    k.create_topic("orders", 2).await.unwrap();
    let mut c = conn(&k).await;
    for (partition, n) in [(0, 10), (1, 3)] {
        for i in 0..n {
            let msg = client::Message {
                key: Bytes::from_static(b"o"),
                value: Bytes::from(format!("{i}")),
                timestamp_ms: 0,
            };
            client::produce(&mut c, "orders", partition, -1, 5000, msg)
                .await
                .unwrap();
        }
    }
    commit(&k, "billing", "orders", &[(0, 2), (1, 3)]).await;
    let checker = Checker::new().unwrap();
    let lag = |max: i64| {
        kafka_target("lag", CheckType::KafkaConsumer, &k.bootstrap(), "orders", move |x| {
            x.mode = Some("group_lag".into());
            x.group = Some("billing".into());
            x.max_lag = Some(max);
        })
    };
    let o = checker.check(&lag(5)).await;
    assert_eq!(o.reason, FailureReason::Assertion, "{o:?}");
    let d = detail(&o);
    assert_eq!(d.lag_by_partition.get(&0), Some(&8), "{d:?}");
    assert_eq!(d.lag_by_partition.get(&1), Some(&0), "{d:?}");
    assert_eq!((d.total_lag, d.max_lag, d.partition), (8, 5, 0));
    assert!(o.message.contains("8 records behind"), "{}", o.message);
    let o = checker.check(&lag(10)).await;
    assert!(o.up, "{o:?}");
    // A group that never committed lags by everything retained.
    let fresh = kafka_target("fresh", CheckType::KafkaConsumer, &k.bootstrap(), "orders", |x| {
        x.mode = Some("group_lag".into());
        x.group = Some("never-committed".into());
        x.max_lag = Some(100);
    });
    let o = checker.check(&fresh).await;
    assert!(o.up, "{o:?}");
    assert_eq!(detail(&o).total_lag, 13);
    // A missing topic is topic_missing here too.
    let gone = kafka_target("gone", CheckType::KafkaConsumer, &k.bootstrap(), "nope", |x| {
        x.mode = Some("group_lag".into());
        x.group = Some("billing".into());
    });
    assert_eq!(checker.check(&gone).await.reason, FailureReason::TopicMissing);
}
