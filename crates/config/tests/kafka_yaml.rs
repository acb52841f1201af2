//! `kafka_producer` and `kafka_consumer` targets through every door: YAML
//! (`collector.targets[i].kafka.<field>`), a REST body (JSON into
//! `TargetConfig`, keys under `target.`) and protobuf. Hostile values are
//! refused naming the field, never defaulted, never a panic.

use pantau_config::proto::{spec_to_proto, target_from_proto};
use pantau_config::{Acks, CheckType, Config, ConsumerMode, LoadOptions, TargetConfig, TargetSpec};
use pantau_proto::v1;
use serde_json::{Value, json};

fn load(doc: &Value) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pantau.yaml");
    std::fs::write(&path, serde_yaml::to_string(doc).unwrap()).unwrap();
    Config::load(&LoadOptions {
        file: Some(path),
        env: vec![],
    })
    .map_err(|e| e.to_string())
}

fn producer() -> Value {
    json!({"id": "canary", "type": "kafka_producer",
           "kafka": {"bootstrap_servers": ["127.0.0.1:9092", "[::1]:9093"], "topic": "pantau-canary", "acks": 1}})
}

fn with_kafka(mut t: Value, key: &str, v: Value) -> Value {
    t["kafka"][key] = v;
    t
}

#[test]
fn producer_and_consumers_load_from_yaml() {
    let doc = json!({"collector": {"targets": [
        producer(),
        {"id": "canary-e2e", "type": "kafka_consumer", "interval": "30s",
         "kafka": {"bootstrap_servers": ["127.0.0.1:9092"], "topic": "pantau-canary", "mode": "end_to_end", "producer": "canary"}},
        {"id": "billing-lag", "type": "kafka_consumer",
         "kafka": {"bootstrap_servers": ["kafka.internal:9092"], "topic": "orders", "mode": "group_lag", "group": "billing", "max_lag": 500}},
    ]}});
    let c = load(&doc).unwrap();
    let t = &c.collector.targets;
    let TargetSpec::KafkaProducer(p) = &t[0].spec else {
        panic!("{:?}", t[0])
    };
    assert_eq!(p.acks, Acks::Leader);
    assert_eq!(p.bootstrap_servers.len(), 2);
    assert_eq!(t[1].check(), CheckType::KafkaConsumer);
    let TargetSpec::KafkaConsumer(l) = &t[2].spec else {
        panic!("{:?}", t[2])
    };
    assert_eq!(
        l.mode,
        Some(ConsumerMode::GroupLag {
            group: "billing".into(),
            max_lag: 500
        })
    );
    // And back: the masked YAML loads again to the same targets.
    let again: Vec<TargetConfig> = t
        .iter()
        .map(|x| serde_json::from_value(serde_json::to_value(&**x).unwrap()).unwrap())
        .collect();
    assert_eq!(
        again.iter().collect::<Vec<_>>(),
        t.iter().map(|x| &**x).collect::<Vec<_>>()
    );
}

/// Each hostile target and the key its refusal must name.
fn hostile() -> Vec<(Value, &'static str)> {
    let huge = "x".repeat(1_000_000);
    vec![
        (json!({"id": "k", "type": "kafka_producer"}), "kafka"),
        (
            with_kafka(producer(), "bootstrap_servers", json!([])),
            "kafka.bootstrap_servers",
        ),
        (
            with_kafka(producer(), "bootstrap_servers", json!(["localhost"])),
            "kafka.bootstrap_servers[0]",
        ),
        (
            with_kafka(producer(), "bootstrap_servers", json!(["h:99999"])),
            "kafka.bootstrap_servers[0]",
        ),
        (
            with_kafka(producer(), "bootstrap_servers", json!(["::1:9092"])),
            "kafka.bootstrap_servers[0]",
        ),
        (
            with_kafka(producer(), "bootstrap_servers", json!([huge.clone()])),
            "kafka.bootstrap_servers[0]",
        ),
        (
            with_kafka(producer(), "bootstrap_servers", json!("127.0.0.1:9092")),
            "bootstrap_servers",
        ),
        (with_kafka(producer(), "topic", json!("")), "kafka.topic"),
        (with_kafka(producer(), "topic", json!(huge)), "kafka.topic"),
        (with_kafka(producer(), "topic", json!("a/b")), "kafka.topic"),
        (with_kafka(producer(), "topic", json!(["t"])), "topic"),
        (with_kafka(producer(), "acks", json!(2)), "kafka.acks"),
        (with_kafka(producer(), "acks", json!(-2)), "kafka.acks"),
        (with_kafka(producer(), "acks", json!(1e300)), "kafka.acks"),
        (with_kafka(producer(), "acks", json!("leader")), "kafka.acks"),
        (with_kafka(producer(), "security", json!("kerberos")), "kafka.security"),
        (with_kafka(producer(), "security", json!(["ssl"])), "security"),
        (
            with_kafka(producer(), "security", json!("sasl_plaintext")),
            "kafka.sasl_mechanism",
        ),
        (
            with_kafka(producer(), "sasl_password", json!("pw")),
            "kafka.sasl_password",
        ),
        (with_kafka(producer(), "verify_tls", json!("no")), "verify_tls"),
        (with_kafka(producer(), "ca_file", json!("/ca.pem")), "kafka.ca_file"),
        (
            json!({"id": "k", "type": "kafka_producer", "kafka": {"bootstrap_servers": ["h:1"], "topic": "t",
                "security": "sasl_ssl", "sasl_mechanism": "GSSAPI", "sasl_username": "u", "sasl_password": "p"}}),
            "kafka.sasl_mechanism",
        ),
        (
            json!({"id": "k", "type": "kafka_producer", "kafka": {"bootstrap_servers": ["h:1"], "topic": "t",
                "security": "sasl_plaintext", "sasl_mechanism": "SCRAM-SHA-256", "sasl_username": huge, "sasl_password": "p"}}),
            "kafka.sasl_username",
        ),
        (with_kafka(producer(), "partition", json!(-1)), "kafka.partition"),
        (
            with_kafka(producer(), "partition", json!(1u64 << 40)),
            "kafka.partition",
        ),
        (with_kafka(producer(), "partition", json!("zero")), "partition"),
        (with_kafka(producer(), "colour", json!("red")), "colour"),
        (with_kafka(producer(), "mode", json!("end_to_end")), "kafka.mode"),
        (
            json!({"id": "c", "type": "kafka_consumer", "kafka": {"bootstrap_servers": ["h:1"], "topic": "t", "mode": "latest"}}),
            "kafka.mode",
        ),
        (
            json!({"id": "c", "type": "kafka_consumer", "kafka": {"bootstrap_servers": ["h:1"], "topic": "t"}}),
            "kafka.mode",
        ),
        (
            json!({"id": "c", "type": "kafka_consumer", "kafka": {"bootstrap_servers": ["h:1"], "topic": "t", "mode": "group_lag", "group": "g", "max_lag": -1}}),
            "kafka.max_lag",
        ),
        (
            json!({"id": "c", "type": "kafka_consumer", "kafka": {"bootstrap_servers": ["h:1"], "topic": "t", "mode": "end_to_end"}}),
            "kafka.producer",
        ),
        (
            json!({"id": "h", "type": "http", "url": "http://127.0.0.1/", "kafka": {"topic": "t"}}),
            "kafka",
        ),
    ]
}

#[test]
fn hostile_yaml_is_refused_naming_the_field() {
    for (t, key) in hostile() {
        let err = load(&json!({"collector": {"targets": [t.clone()]}})).unwrap_err();
        assert!(err.contains(key), "{t}: `{key}` not in: {err}");
        assert!(err.len() < 4000, "the refusal quotes too much: {} bytes", err.len());
    }
}

/// A REST body decoded as the gateway's Json extractor decodes it (serde
/// with the failing field's path, `serde_path_to_error`).
fn rest(body: &Value) -> Result<TargetConfig, String> {
    let text = serde_json::to_string(body).unwrap();
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| format!("{}: {}", e.path(), e.inner()))
}

#[test]
fn hostile_rest_bodies_are_refused_naming_the_field() {
    for (t, key) in hostile() {
        let err = rest(&t).unwrap_err();
        assert!(err.contains(key), "{t}: `{key}` not in: {err}");
    }
    assert!(rest(&producer()).is_ok());
}

#[test]
fn protobuf_round_trip_and_refusals() {
    let t: TargetConfig = serde_json::from_value(producer()).unwrap();
    let pb = v1::Target {
        id: t.id.clone(),
        spec: Some(spec_to_proto(&t)),
        ..v1::Target::default()
    };
    assert_eq!(target_from_proto(&pb).unwrap(), t);
    let mut bad = pb.clone();
    let Some(v1::target::Spec::KafkaProducer(k)) = &mut bad.spec else {
        panic!()
    };
    k.acks = "3".into();
    k.partition = Some(-7);
    let e = target_from_proto(&bad).unwrap_err().to_string();
    assert!(
        e.contains("target.kafka.acks") && e.contains("target.kafka.partition"),
        "{e}"
    );
    let mut kind = pb;
    kind.kind = v1::CheckKind::KafkaConsumer.into();
    assert!(target_from_proto(&kind).unwrap_err().to_string().contains("kind"));
}

#[test]
fn the_probes_example_loads() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/probes.yaml");
    let c = Config::load(&LoadOptions {
        file: Some(file.into()),
        env: vec![],
    })
    .unwrap_or_else(|e| panic!("{file}: {e}"));
    let kafka = c
        .collector
        .targets
        .iter()
        .filter(|t| matches!(t.check(), CheckType::KafkaProducer | CheckType::KafkaConsumer))
        .count();
    assert!(kafka >= 3, "{kafka} kafka targets");
}
