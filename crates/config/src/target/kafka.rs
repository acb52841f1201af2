//! `kafka_producer` and `kafka_consumer` targets: their wire shape (the
//! `kafka:` block of a target, [`RawKafka`]) and the typed spec it is parsed
//! into ([`KafkaTarget`]), every problem keyed under `<prefix>.kafka.<field>`.

use serde::{Deserialize, Serialize};

use super::{CheckType, HostPort};
use crate::text;
use crate::types::limits as l;

/// Most bootstrap servers a target may list.
pub const MAX_BOOTSTRAP: usize = 16;
/// Kafka's own limit on a topic name.
pub const MAX_TOPIC: usize = 249;
/// Longest consumer group id accepted.
pub const MAX_GROUP: usize = 255;
/// Highest partition index a target may name.
pub const MAX_PARTITION: i32 = 100_000;

/// The `kafka:` block of a `kafka_producer` or `kafka_consumer` target, as
/// YAML and JSON write it. Text fields stay text here, so a wrong value is
/// refused by [`RawKafka::parse`] naming its key, not by serde.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// `host:port` of one or more brokers to bootstrap from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bootstrap_servers: Vec<String>,
    /// The topic to produce to or consume from.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub topic: Option<String>,
    /// `plaintext` (the only one supported so far; `ssl`, `sasl_plaintext`
    /// and `sasl_ssl` are refused naming this key).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub security: Option<String>,
    /// producer: `all` (or `-1`), `1` or `0`; `all` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub acks: Option<String>,
    /// The partition to produce to or read canaries from; 0 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i64>,
    /// consumer: `end_to_end` or `group_lag`.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub mode: Option<String>,
    /// consumer `end_to_end`: the id of the `kafka_producer` target whose
    /// canary records it reads.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub producer: Option<String>,
    /// consumer `group_lag`: the consumer group whose lag is measured.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub group: Option<String>,
    /// consumer `group_lag`: a partition lagging more records than this is
    /// down; 1000 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lag: Option<i64>,
}

/// How the client talks to the brokers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KafkaSecurity {
    #[default]
    Plaintext,
}

/// How many replicas must acknowledge a produced record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// Every in-sync replica (`-1`).
    #[default]
    All,
    /// The leader only.
    Leader,
    /// No acknowledgement: the broker does not answer.
    None,
}

impl Acks {
    /// The wire value.
    pub fn wire(self) -> i16 {
        match self {
            Self::All => -1,
            Self::Leader => 1,
            Self::None => 0,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Leader => "1",
            Self::None => "0",
        }
    }
}

/// What a `kafka_consumer` check measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerMode {
    /// Read the canary records `producer` (a `kafka_producer` target id)
    /// wrote: produce→consume latency and records missing.
    EndToEnd { producer: String },
    /// `group`'s committed offsets against the partitions' ends; a partition
    /// lagging more than `max_lag` records is down.
    GroupLag { group: String, max_lag: u64 },
}

/// Default `max_lag`.
pub const DEFAULT_MAX_LAG: u64 = 1000;

/// A parsed `kafka:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTarget {
    /// 1 to [`MAX_BOOTSTRAP`] brokers.
    pub bootstrap_servers: Vec<HostPort>,
    /// A valid Kafka topic name.
    pub topic: String,
    pub security: KafkaSecurity,
    /// Producer only (`All` for a consumer).
    pub acks: Acks,
    /// 0 to [`MAX_PARTITION`].
    pub partition: i32,
    /// Consumer only.
    pub mode: Option<ConsumerMode>,
}

impl KafkaTarget {
    /// `host:port,host:port`, for display.
    pub fn servers(&self) -> String {
        self.bootstrap_servers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Whether `name` is a Kafka topic name: 1–249 of letters, digits, `.`, `_`, `-`, and not `.` or `..`.
pub fn is_topic(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOPIC
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl RawKafka {
    /// Parses the block for a target of type `check`; `add(field, value,
    /// allowed)` receives every problem with `field` under `kafka.`.
    pub(super) fn parse(&self, check: CheckType, add: &mut dyn FnMut(&str, &str, String)) -> Option<KafkaTarget> {
        let producer = check == CheckType::KafkaProducer;
        let mut ok = true;
        let mut bad = |field: &str, value: &str, why: String| {
            ok = false;
            add(&format!("kafka.{field}"), value, why);
        };
        if self.bootstrap_servers.is_empty() {
            bad(
                "bootstrap_servers",
                "",
                "is required: one or more host:port, e.g. [\"127.0.0.1:9092\"]".into(),
            );
        }
        if self.bootstrap_servers.len() > MAX_BOOTSTRAP {
            bad(
                "bootstrap_servers",
                &format!("{} entries", self.bootstrap_servers.len()),
                format!("must have at most {MAX_BOOTSTRAP} entries"),
            );
        }
        let mut servers = Vec::new();
        for (i, s) in self.bootstrap_servers.iter().enumerate().take(MAX_BOOTSTRAP) {
            if s.len() > l::HOST + 6 {
                bad(
                    &format!("bootstrap_servers[{i}]"),
                    s,
                    format!("must be at most {} bytes", l::HOST + 6),
                );
                continue;
            }
            match s.parse::<HostPort>() {
                Ok(hp) => servers.push(hp),
                Err(why) => bad(&format!("bootstrap_servers[{i}]"), s, why.into()),
            }
        }
        let topic = match self.topic.as_deref() {
            None | Some("") => {
                bad("topic", "", "is required: a Kafka topic name".into());
                None
            }
            Some(t) if !is_topic(t) => {
                bad(
                    "topic",
                    t,
                    format!("must be 1–{MAX_TOPIC} letters, digits, `.`, `_` or `-` (and not `.` or `..`)"),
                );
                None
            }
            Some(t) => Some(t.to_owned()),
        };
        let security = match self.security.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("plaintext") => KafkaSecurity::Plaintext,
            Some(s @ ("ssl" | "sasl_plaintext" | "sasl_ssl")) => {
                bad(
                    "security",
                    s,
                    "is not supported yet: only plaintext (TLS and SASL are not implemented by this collector)".into(),
                );
                KafkaSecurity::Plaintext
            }
            Some(other) => {
                bad(
                    "security",
                    other,
                    "must be one of plaintext, ssl, sasl_plaintext, sasl_ssl (only plaintext is supported yet)".into(),
                );
                KafkaSecurity::Plaintext
            }
        };
        let acks = match self.acks.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("all" | "-1") => Acks::All,
            Some("1") => Acks::Leader,
            Some("0") => Acks::None,
            Some(other) => {
                bad("acks", other, "must be one of all (or -1), 1, 0".into());
                Acks::All
            }
        };
        if !producer && self.acks.is_some() {
            bad(
                "acks",
                acks.text(),
                "does not apply to a kafka_consumer target (it produces nothing)".into(),
            );
        }
        let partition = match self.partition {
            None => 0,
            Some(p) if (0..=i64::from(MAX_PARTITION)).contains(&p) => i32::try_from(p).unwrap_or(0),
            Some(p) => {
                bad(
                    "partition",
                    &p.to_string(),
                    format!("must be between 0 and {MAX_PARTITION}"),
                );
                0
            }
        };
        let mode = if producer {
            for (field, set) in [
                ("mode", self.mode.is_some()),
                ("producer", self.producer.is_some()),
                ("group", self.group.is_some()),
                ("max_lag", self.max_lag.is_some()),
            ] {
                if set {
                    bad(field, "", "does not apply to a kafka_producer target".into());
                }
            }
            None
        } else {
            self.consumer_mode(&mut bad)
        };
        if !ok {
            return None;
        }
        Some(KafkaTarget {
            bootstrap_servers: servers,
            topic: topic?,
            security,
            acks,
            partition,
            mode,
        })
    }

    fn consumer_mode(&self, bad: &mut dyn FnMut(&str, &str, String)) -> Option<ConsumerMode> {
        let not_here = |bad: &mut dyn FnMut(&str, &str, String), field: &str, mode: &str| {
            bad(field, "", format!("does not apply to mode {mode}"));
        };
        match self.mode.as_deref() {
            None | Some("") => {
                bad(
                    "mode",
                    "",
                    "is required for a kafka_consumer target: end_to_end or group_lag".into(),
                );
                None
            }
            Some("end_to_end") => {
                for (field, set) in [("group", self.group.is_some()), ("max_lag", self.max_lag.is_some())] {
                    if set {
                        not_here(bad, field, "end_to_end");
                    }
                }
                match self.producer.as_deref() {
                    Some(p) if crate::validate::is_subject_token(p) => {
                        Some(ConsumerMode::EndToEnd { producer: p.to_owned() })
                    }
                    Some(p) => {
                        bad(
                            "producer",
                            p,
                            "must be the id of a kafka_producer target (letters, digits, `-` or `_`)".into(),
                        );
                        None
                    }
                    None => {
                        bad(
                            "producer",
                            "",
                            "is required for mode end_to_end: the id of the kafka_producer target whose canaries it reads"
                                .into(),
                        );
                        None
                    }
                }
            }
            Some("group_lag") => {
                if self.producer.is_some() {
                    not_here(bad, "producer", "group_lag");
                }
                let max_lag = match self.max_lag {
                    None => Some(DEFAULT_MAX_LAG),
                    Some(n) if n >= 0 => u64::try_from(n).ok(),
                    Some(n) => {
                        bad("max_lag", &n.to_string(), "must be 0 or more (records)".into());
                        None
                    }
                };
                let group = match self.group.as_deref() {
                    None | Some("") => {
                        bad(
                            "group",
                            "",
                            "is required for mode group_lag: a consumer group id".into(),
                        );
                        None
                    }
                    Some(g) if g.len() > MAX_GROUP || g.chars().any(char::is_control) => {
                        bad(
                            "group",
                            g,
                            format!("must be 1–{MAX_GROUP} bytes without control characters"),
                        );
                        None
                    }
                    Some(g) => Some(g.to_owned()),
                };
                Some(ConsumerMode::GroupLag {
                    group: group?,
                    max_lag: max_lag?,
                })
            }
            Some(other) => {
                bad("mode", other, "must be end_to_end or group_lag".into());
                None
            }
        }
    }
}

impl From<&KafkaTarget> for RawKafka {
    fn from(k: &KafkaTarget) -> Self {
        let (mode, producer, group, max_lag) = match &k.mode {
            None => (None, None, None, None),
            Some(ConsumerMode::EndToEnd { producer }) => (Some("end_to_end"), Some(producer.clone()), None, None),
            Some(ConsumerMode::GroupLag { group, max_lag }) => (
                Some("group_lag"),
                None,
                Some(group.clone()),
                Some(i64::try_from(*max_lag).unwrap_or(i64::MAX)),
            ),
        };
        Self {
            bootstrap_servers: k.bootstrap_servers.iter().map(ToString::to_string).collect(),
            topic: Some(k.topic.clone()),
            security: Some("plaintext".into()),
            acks: mode.is_none().then(|| k.acks.text().to_owned()),
            partition: Some(i64::from(k.partition)),
            mode: mode.map(str::to_owned),
            producer,
            group,
            max_lag,
        }
    }
}

/// The protobuf spec in the wire shape; empty text is unset.
pub fn from_proto(x: &pantau_proto::v1::KafkaSpec) -> RawKafka {
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    RawKafka {
        bootstrap_servers: x.bootstrap_servers.clone(),
        topic: Some(x.topic.clone()),
        security: text(&x.security),
        acks: text(&x.acks),
        partition: x.partition,
        mode: text(&x.mode),
        producer: text(&x.producer),
        group: text(&x.group),
        max_lag: x.max_lag,
    }
}

/// The protobuf spec of a parsed block (nothing in it is secret).
pub fn to_proto(k: &KafkaTarget) -> pantau_proto::v1::KafkaSpec {
    let r = RawKafka::from(k);
    pantau_proto::v1::KafkaSpec {
        bootstrap_servers: r.bootstrap_servers,
        topic: r.topic.unwrap_or_default(),
        security: r.security.unwrap_or_default(),
        acks: r.acks.unwrap_or_default(),
        partition: r.partition,
        mode: r.mode.unwrap_or_default(),
        producer: r.producer.unwrap_or_default(),
        group: r.group.unwrap_or_default(),
        max_lag: r.max_lag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(check: CheckType, raw: &RawKafka) -> Result<KafkaTarget, Vec<(String, String, String)>> {
        let mut out = Vec::new();
        let got = raw.parse(check, &mut |f, v, why| out.push((f.to_owned(), v.to_owned(), why)));
        got.ok_or(out)
    }

    fn producer() -> RawKafka {
        RawKafka {
            bootstrap_servers: vec!["127.0.0.1:9092".into()],
            topic: Some("canary".into()),
            ..RawKafka::default()
        }
    }

    #[test]
    fn producer_defaults() {
        let k = parse(CheckType::KafkaProducer, &producer()).unwrap();
        assert_eq!(k.acks, Acks::All);
        assert_eq!(k.partition, 0);
        assert_eq!(k.mode, None);
        assert_eq!(k.servers(), "127.0.0.1:9092");
        let back = RawKafka::from(&k);
        assert_eq!(parse(CheckType::KafkaProducer, &back).unwrap(), k);
    }

    #[test]
    fn hostile_values_are_refused_naming_the_field() {
        let cases: Vec<(RawKafka, &str)> = vec![
            (
                RawKafka {
                    bootstrap_servers: vec![],
                    ..producer()
                },
                "kafka.bootstrap_servers",
            ),
            (
                RawKafka {
                    bootstrap_servers: vec!["nohost".into()],
                    ..producer()
                },
                "kafka.bootstrap_servers[0]",
            ),
            (
                RawKafka {
                    bootstrap_servers: vec!["h:0".into()],
                    ..producer()
                },
                "kafka.bootstrap_servers[0]",
            ),
            (
                RawKafka {
                    bootstrap_servers: vec!["h:70000".into()],
                    ..producer()
                },
                "kafka.bootstrap_servers[0]",
            ),
            (
                RawKafka {
                    bootstrap_servers: vec!["x".repeat(100_000)],
                    ..producer()
                },
                "kafka.bootstrap_servers[0]",
            ),
            (
                RawKafka {
                    bootstrap_servers: vec!["h:1".into(); 17],
                    ..producer()
                },
                "kafka.bootstrap_servers",
            ),
            (
                RawKafka {
                    topic: Some(String::new()),
                    ..producer()
                },
                "kafka.topic",
            ),
            (
                RawKafka {
                    topic: None,
                    ..producer()
                },
                "kafka.topic",
            ),
            (
                RawKafka {
                    topic: Some("..".into()),
                    ..producer()
                },
                "kafka.topic",
            ),
            (
                RawKafka {
                    topic: Some("a b".into()),
                    ..producer()
                },
                "kafka.topic",
            ),
            (
                RawKafka {
                    topic: Some("t".repeat(250)),
                    ..producer()
                },
                "kafka.topic",
            ),
            (
                RawKafka {
                    acks: Some("2".into()),
                    ..producer()
                },
                "kafka.acks",
            ),
            (
                RawKafka {
                    acks: Some("-2".into()),
                    ..producer()
                },
                "kafka.acks",
            ),
            (
                RawKafka {
                    acks: Some("everyone".into()),
                    ..producer()
                },
                "kafka.acks",
            ),
            (
                RawKafka {
                    security: Some("kerberos".into()),
                    ..producer()
                },
                "kafka.security",
            ),
            (
                RawKafka {
                    security: Some("sasl_ssl".into()),
                    ..producer()
                },
                "kafka.security",
            ),
            (
                RawKafka {
                    partition: Some(-1),
                    ..producer()
                },
                "kafka.partition",
            ),
            (
                RawKafka {
                    partition: Some(i64::MAX),
                    ..producer()
                },
                "kafka.partition",
            ),
            (
                RawKafka {
                    mode: Some("end_to_end".into()),
                    ..producer()
                },
                "kafka.mode",
            ),
        ];
        for (raw, key) in cases {
            let problems = parse(CheckType::KafkaProducer, &raw).unwrap_err();
            assert!(problems.iter().any(|(f, _, _)| f == key), "{key}: {problems:?}");
        }
    }

    #[test]
    fn consumer_modes() {
        let e2e = RawKafka {
            mode: Some("end_to_end".into()),
            producer: Some("canary".into()),
            ..producer()
        };
        let k = parse(CheckType::KafkaConsumer, &e2e).unwrap();
        assert_eq!(
            k.mode,
            Some(ConsumerMode::EndToEnd {
                producer: "canary".into()
            })
        );
        assert_eq!(parse(CheckType::KafkaConsumer, &RawKafka::from(&k)).unwrap(), k);
        let lag = RawKafka {
            mode: Some("group_lag".into()),
            group: Some("billing".into()),
            ..producer()
        };
        let k = parse(CheckType::KafkaConsumer, &lag).unwrap();
        assert_eq!(
            k.mode,
            Some(ConsumerMode::GroupLag {
                group: "billing".into(),
                max_lag: DEFAULT_MAX_LAG
            })
        );
        assert_eq!(parse(CheckType::KafkaConsumer, &RawKafka::from(&k)).unwrap(), k);

        let cases: Vec<(RawKafka, &str)> = vec![
            (producer(), "kafka.mode"),
            (
                RawKafka {
                    mode: Some("latest".into()),
                    ..producer()
                },
                "kafka.mode",
            ),
            (
                RawKafka {
                    mode: Some("end_to_end".into()),
                    ..producer()
                },
                "kafka.producer",
            ),
            (
                RawKafka {
                    producer: Some("a.b".into()),
                    ..e2e.clone()
                },
                "kafka.producer",
            ),
            (
                RawKafka {
                    group: Some("g".into()),
                    ..e2e.clone()
                },
                "kafka.group",
            ),
            (
                RawKafka {
                    acks: Some("1".into()),
                    ..e2e.clone()
                },
                "kafka.acks",
            ),
            (
                RawKafka {
                    mode: Some("group_lag".into()),
                    ..producer()
                },
                "kafka.group",
            ),
            (
                RawKafka {
                    max_lag: Some(-5),
                    ..lag.clone()
                },
                "kafka.max_lag",
            ),
            (
                RawKafka {
                    group: Some("g".repeat(300)),
                    ..lag.clone()
                },
                "kafka.group",
            ),
            (
                RawKafka {
                    group: Some("a\u{0}b".into()),
                    ..lag.clone()
                },
                "kafka.group",
            ),
            (
                RawKafka {
                    producer: Some("p".into()),
                    ..lag.clone()
                },
                "kafka.producer",
            ),
        ];
        for (raw, key) in cases {
            let problems = parse(CheckType::KafkaConsumer, &raw).unwrap_err();
            assert!(problems.iter().any(|(f, _, _)| f == key), "{key}: {problems:?}");
        }
    }
}
