//! `kafka_producer` and `kafka_consumer` targets: their wire shape (the
//! `kafka:` block of a target, [`RawKafka`]) and the typed spec it is parsed
//! into ([`KafkaTarget`]), every problem keyed under `<prefix>.kafka.<field>`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{CheckType, HostPort, TlsFiles};
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
/// Longest SASL user name or password.
pub const MAX_SASL_CREDENTIAL: usize = 512;
/// Longest `ca_file`, `client_cert` or `client_key` path.
pub const MAX_PATH: usize = 4096;

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
    /// `plaintext` (when unset), `ssl` (TLS), `sasl_plaintext` (SASL
    /// without TLS) or `sasl_ssl` (SASL over TLS).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub security: Option<String>,
    /// sasl_*: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (any case).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub sasl_mechanism: Option<String>,
    /// sasl_*: the user name.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub sasl_username: Option<String>,
    /// sasl_*: the password. Secret: masked in every answer and log.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub sasl_password: Option<String>,
    /// ssl, sasl_ssl: a PEM file of CA certificates trusted besides the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// ssl, sasl_ssl: a PEM client certificate (chain) to present; with `client_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// ssl, sasl_ssl: the PEM private key of `client_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// ssl, sasl_ssl: verify the brokers' certificates and names; true when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_tls: Option<bool>,
    /// ssl, sasl_ssl: the name asked for (SNI) and verified; each broker's
    /// host when unset.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text::option")]
    pub server_name: Option<String>,
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
    /// TLS, no SASL.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl KafkaSecurity {
    /// The configuration's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// A SASL mechanism the collector speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    /// The IANA name, as sent in a `SaslHandshake`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials. Its `Debug` masks the password.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaSasl {
    pub mechanism: SaslMechanism,
    /// 1 to [`MAX_SASL_CREDENTIAL`] bytes without control characters.
    pub username: String,
    /// Secret: masked in every answer and log.
    pub password: String,
}

impl std::fmt::Debug for KafkaSasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// TLS settings of `ssl` and `sasl_ssl`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KafkaTls {
    pub files: TlsFiles,
    /// Verify the chain and name; true when unset.
    pub verify: Option<bool>,
    /// The name asked for and verified; each broker's host when unset.
    pub server_name: Option<String>,
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
    /// Set exactly when `security` is `sasl_*`.
    pub sasl: Option<KafkaSasl>,
    /// Set exactly when `security` is `ssl` or `sasl_ssl`.
    pub tls: Option<KafkaTls>,
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
            Some("ssl") => KafkaSecurity::Ssl,
            Some("sasl_plaintext") => KafkaSecurity::SaslPlaintext,
            Some("sasl_ssl") => KafkaSecurity::SaslSsl,
            Some(other) => {
                bad(
                    "security",
                    other,
                    "must be one of plaintext, ssl, sasl_plaintext, sasl_ssl".into(),
                );
                KafkaSecurity::Plaintext
            }
        };
        let sasl = self.sasl(security, &mut bad);
        let tls = self.tls(security, &mut bad);
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
            sasl,
            tls,
            acks,
            partition,
            mode,
        })
    }

    /// The SASL credentials of a `sasl_*` target; the fields refused on any other.
    fn sasl(&self, security: KafkaSecurity, bad: &mut dyn FnMut(&str, &str, String)) -> Option<KafkaSasl> {
        if !security.uses_sasl() {
            for (field, set) in [
                ("sasl_mechanism", self.sasl_mechanism.is_some()),
                ("sasl_username", self.sasl_username.is_some()),
                ("sasl_password", self.sasl_password.is_some()),
            ] {
                if set {
                    bad(
                        field,
                        "",
                        "applies only with security sasl_plaintext or sasl_ssl".into(),
                    );
                }
            }
            return None;
        }
        let mechanism = match self.sasl_mechanism.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("") => {
                bad(
                    "sasl_mechanism",
                    "",
                    "is required with SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512".into(),
                );
                None
            }
            Some("PLAIN") => Some(SaslMechanism::Plain),
            Some("SCRAM-SHA-256") => Some(SaslMechanism::ScramSha256),
            Some("SCRAM-SHA-512") => Some(SaslMechanism::ScramSha512),
            Some(_) => {
                let shown = self.sasl_mechanism.as_deref().unwrap_or_default();
                let shown: String = shown.chars().take(64).collect();
                bad(
                    "sasl_mechanism",
                    &shown,
                    "must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (GSSAPI and OAUTHBEARER are not supported)"
                        .into(),
                );
                None
            }
        };
        let username = match self.sasl_username.as_deref() {
            None | Some("") => {
                bad("sasl_username", "", "is required with SASL".into());
                None
            }
            Some(u) if u.len() > MAX_SASL_CREDENTIAL || u.chars().any(char::is_control) => {
                let shown: String = u.chars().take(64).collect();
                bad(
                    "sasl_username",
                    &shown,
                    format!("must be 1–{MAX_SASL_CREDENTIAL} bytes without control characters"),
                );
                None
            }
            Some(u) => Some(u.to_owned()),
        };
        // A password is never quoted.
        let password = match self.sasl_password.as_deref() {
            None | Some("") => {
                bad("sasl_password", "", "is required with SASL".into());
                None
            }
            Some(p) if p.len() > MAX_SASL_CREDENTIAL || p.contains('\0') => {
                bad(
                    "sasl_password",
                    "***",
                    format!("must be 1–{MAX_SASL_CREDENTIAL} bytes without NUL"),
                );
                None
            }
            Some(p) => Some(p.to_owned()),
        };
        Some(KafkaSasl {
            mechanism: mechanism?,
            username: username?,
            password: password?,
        })
    }

    /// The TLS settings of an `ssl` or `sasl_ssl` target; the fields refused on any other.
    fn tls(&self, security: KafkaSecurity, bad: &mut dyn FnMut(&str, &str, String)) -> Option<KafkaTls> {
        let fields = [
            ("ca_file", self.ca_file.is_some()),
            ("client_cert", self.client_cert.is_some()),
            ("client_key", self.client_key.is_some()),
            ("verify_tls", self.verify_tls.is_some()),
            ("server_name", self.server_name.is_some()),
        ];
        if !security.uses_tls() {
            for (field, set) in fields {
                if set {
                    bad(field, "", "applies only with security ssl or sasl_ssl".into());
                }
            }
            return None;
        }
        let mut ok = true;
        for (field, path) in [
            ("ca_file", &self.ca_file),
            ("client_cert", &self.client_cert),
            ("client_key", &self.client_key),
        ] {
            if let Some(p) = path
                && (p.as_os_str().is_empty() || p.as_os_str().len() > MAX_PATH)
            {
                ok = false;
                let shown: String = p.to_string_lossy().chars().take(64).collect();
                bad(field, &shown, format!("must be a file path of 1–{MAX_PATH} bytes"));
            }
        }
        let client = match (&self.client_cert, &self.client_key) {
            (Some(c), Some(k)) => Some(Box::new((c.clone(), k.clone()))),
            (None, None) => None,
            (Some(_), None) => {
                ok = false;
                bad("client_key", "", "is required with client_cert".into());
                None
            }
            (None, Some(_)) => {
                ok = false;
                bad("client_cert", "", "is required with client_key".into());
                None
            }
        };
        if let Some(n) = &self.server_name
            && (n.is_empty()
                || n.len() > l::HOST
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':')))
        {
            ok = false;
            let shown: String = n.chars().take(64).collect();
            bad("server_name", &shown, "must be a host name or IP address".into());
        }
        ok.then(|| KafkaTls {
            files: TlsFiles {
                ca_file: self.ca_file.clone(),
                client,
            },
            verify: self.verify_tls,
            server_name: self.server_name.clone(),
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
        let tls = k.tls.clone().unwrap_or_default();
        let (cert, key) = tls.files.client.map_or((None, None), |pair| {
            let (c, k) = *pair;
            (Some(c), Some(k))
        });
        Self {
            bootstrap_servers: k.bootstrap_servers.iter().map(ToString::to_string).collect(),
            topic: Some(k.topic.clone()),
            security: Some(k.security.as_str().into()),
            sasl_mechanism: k.sasl.as_ref().map(|s| s.mechanism.as_str().to_owned()),
            sasl_username: k.sasl.as_ref().map(|s| s.username.clone()),
            sasl_password: k.sasl.as_ref().map(|s| s.password.clone()),
            ca_file: tls.files.ca_file,
            client_cert: cert,
            client_key: key,
            verify_tls: tls.verify,
            server_name: tls.server_name,
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
        sasl_mechanism: text(&x.sasl_mechanism),
        sasl_username: text(&x.sasl_username),
        sasl_password: text(&x.sasl_password),
        ca_file: text(&x.ca_file).map(PathBuf::from),
        client_cert: text(&x.client_cert).map(PathBuf::from),
        client_key: text(&x.client_key).map(PathBuf::from),
        verify_tls: x.verify_tls,
        server_name: text(&x.server_name),
        acks: text(&x.acks),
        partition: x.partition,
        mode: text(&x.mode),
        producer: text(&x.producer),
        group: text(&x.group),
        max_lag: x.max_lag,
    }
}

/// The protobuf spec of a parsed block. The SASL password goes as it is:
/// mask the configuration first (`CollectorConfig::mask`) where it is shown.
pub fn to_proto(k: &KafkaTarget) -> pantau_proto::v1::KafkaSpec {
    let r = RawKafka::from(k);
    let path = |p: Option<PathBuf>| p.map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    pantau_proto::v1::KafkaSpec {
        bootstrap_servers: r.bootstrap_servers,
        topic: r.topic.unwrap_or_default(),
        security: r.security.unwrap_or_default(),
        sasl_mechanism: r.sasl_mechanism.unwrap_or_default(),
        sasl_username: r.sasl_username.unwrap_or_default(),
        sasl_password: r.sasl_password.unwrap_or_default(),
        ca_file: path(r.ca_file),
        client_cert: path(r.client_cert),
        client_key: path(r.client_key),
        verify_tls: r.verify_tls,
        server_name: r.server_name.unwrap_or_default(),
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
                "kafka.sasl_mechanism",
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

    fn sasl(mechanism: &str) -> RawKafka {
        RawKafka {
            security: Some("sasl_plaintext".into()),
            sasl_mechanism: Some(mechanism.into()),
            sasl_username: Some("alice".into()),
            sasl_password: Some("s3cret".into()),
            ..producer()
        }
    }

    #[test]
    fn sasl_and_ssl_parse_and_round_trip() {
        for (text, m) in [
            ("PLAIN", SaslMechanism::Plain),
            ("scram-sha-256", SaslMechanism::ScramSha256),
            ("SCRAM-SHA-512", SaslMechanism::ScramSha512),
        ] {
            let k = parse(CheckType::KafkaProducer, &sasl(text)).unwrap();
            assert_eq!(k.security, KafkaSecurity::SaslPlaintext);
            let s = k.sasl.as_ref().unwrap();
            assert_eq!((s.mechanism, s.username.as_str()), (m, "alice"));
            assert!(k.tls.is_none());
            assert!(!format!("{k:?}").contains("s3cret"), "Debug masks the password");
            assert_eq!(parse(CheckType::KafkaProducer, &RawKafka::from(&k)).unwrap(), k);
            let proto = to_proto(&k);
            assert_eq!(proto.sasl_mechanism, m.as_str());
            assert_eq!(parse(CheckType::KafkaProducer, &from_proto(&proto)).unwrap(), k);
        }
        let ssl = RawKafka {
            security: Some("SASL_SSL".into()),
            ca_file: Some("/etc/pantau/ca.pem".into()),
            verify_tls: Some(true),
            server_name: Some("kafka.example".into()),
            ..sasl("PLAIN")
        };
        let k = parse(CheckType::KafkaProducer, &ssl).unwrap();
        assert_eq!(k.security, KafkaSecurity::SaslSsl);
        let t = k.tls.as_ref().unwrap();
        assert_eq!(
            t.files.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/pantau/ca.pem"))
        );
        assert_eq!(t.server_name.as_deref(), Some("kafka.example"));
        assert_eq!(parse(CheckType::KafkaProducer, &RawKafka::from(&k)).unwrap(), k);
        assert_eq!(parse(CheckType::KafkaProducer, &from_proto(&to_proto(&k))).unwrap(), k);
        let plain_ssl = RawKafka {
            security: Some("ssl".into()),
            ..producer()
        };
        let k = parse(CheckType::KafkaProducer, &plain_ssl).unwrap();
        assert_eq!(
            (k.security, k.sasl.is_none(), k.tls.is_some()),
            (KafkaSecurity::Ssl, true, true)
        );
    }

    #[test]
    fn the_sasl_password_is_masked() {
        let mut t = crate::RawTarget::new("k", CheckType::KafkaProducer);
        t.kafka = Some(sasl("SCRAM-SHA-256"));
        let mut c = crate::CollectorConfig {
            targets: vec![t.parse("t").unwrap().into()],
            ..crate::CollectorConfig::default()
        };
        c.mask();
        let crate::TargetSpec::KafkaProducer(k) = &c.targets[0].spec else {
            panic!()
        };
        assert_eq!(k.sasl.as_ref().unwrap().password, "***");
        let json = serde_json::to_string(&crate::RawTarget::from((*c.targets[0]).clone())).unwrap();
        assert!(!json.contains("s3cret"), "{json}");
    }

    #[test]
    fn hostile_sasl_and_tls_values_are_refused_naming_the_field() {
        let cases: Vec<(RawKafka, &str)> = vec![
            (sasl("GSSAPI"), "kafka.sasl_mechanism"),
            (sasl("OAUTHBEARER"), "kafka.sasl_mechanism"),
            (sasl("SCRAM-SHA-1"), "kafka.sasl_mechanism"),
            (sasl(&"M".repeat(100_000)), "kafka.sasl_mechanism"),
            (sasl("\u{0}PLAIN"), "kafka.sasl_mechanism"),
            (
                RawKafka {
                    sasl_mechanism: None,
                    ..sasl("PLAIN")
                },
                "kafka.sasl_mechanism",
            ),
            (
                RawKafka {
                    sasl_username: None,
                    ..sasl("PLAIN")
                },
                "kafka.sasl_username",
            ),
            (
                RawKafka {
                    sasl_username: Some("u".repeat(100_000)),
                    ..sasl("PLAIN")
                },
                "kafka.sasl_username",
            ),
            (
                RawKafka {
                    sasl_username: Some("a\nb".into()),
                    ..sasl("PLAIN")
                },
                "kafka.sasl_username",
            ),
            (
                RawKafka {
                    sasl_password: None,
                    ..sasl("PLAIN")
                },
                "kafka.sasl_password",
            ),
            (
                RawKafka {
                    sasl_password: Some("p".repeat(513)),
                    ..sasl("PLAIN")
                },
                "kafka.sasl_password",
            ),
            (
                RawKafka {
                    sasl_password: Some("a\u{0}b".into()),
                    ..sasl("PLAIN")
                },
                "kafka.sasl_password",
            ),
            (
                RawKafka {
                    sasl_mechanism: Some("PLAIN".into()),
                    ..producer()
                },
                "kafka.sasl_mechanism",
            ),
            (
                RawKafka {
                    sasl_password: Some("x".into()),
                    security: Some("ssl".into()),
                    ..producer()
                },
                "kafka.sasl_password",
            ),
            (
                RawKafka {
                    ca_file: Some("/ca.pem".into()),
                    ..sasl("PLAIN")
                },
                "kafka.ca_file",
            ),
            (
                RawKafka {
                    verify_tls: Some(false),
                    ..producer()
                },
                "kafka.verify_tls",
            ),
            (
                RawKafka {
                    security: Some("ssl".into()),
                    client_cert: Some("/c.pem".into()),
                    ..producer()
                },
                "kafka.client_key",
            ),
            (
                RawKafka {
                    security: Some("ssl".into()),
                    ca_file: Some("c".repeat(5000).into()),
                    ..producer()
                },
                "kafka.ca_file",
            ),
            (
                RawKafka {
                    security: Some("ssl".into()),
                    server_name: Some("a b".into()),
                    ..producer()
                },
                "kafka.server_name",
            ),
            (
                RawKafka {
                    security: Some("ssl".into()),
                    server_name: Some("h".repeat(100_000)),
                    ..producer()
                },
                "kafka.server_name",
            ),
            (
                RawKafka {
                    security: Some("tls".into()),
                    ..producer()
                },
                "kafka.security",
            ),
        ];
        for (raw, key) in cases {
            let problems = parse(CheckType::KafkaProducer, &raw).unwrap_err();
            assert!(problems.iter().any(|(f, _, _)| f == key), "{key}: {problems:?}");
            for (_, value, why) in &problems {
                assert!(value.len() <= 200 && !value.contains("s3cret"), "{key}: {value:?}");
                assert!(!why.contains("s3cret"));
            }
        }
    }

    #[test]
    fn wrong_types_and_unknown_fields_are_refused() {
        // A number where text goes stays text, refused by the parser naming the key.
        let raw: RawKafka = serde_json::from_str(r#"{"security": 5, "sasl_mechanism": 256}"#).unwrap();
        let problems = parse(CheckType::KafkaProducer, &raw).unwrap_err();
        assert!(problems.iter().any(|(f, _, _)| f == "kafka.security"), "{problems:?}");
        for (json, needle) in [
            (r#"{"sasl_mechanism": ["PLAIN"]}"#, ""),
            (r#"{"verify_tls": "yes"}"#, ""),
            (r#"{"sasl_pasword": "x"}"#, "sasl_pasword"),
            (r#"{"ca_file": 7}"#, ""),
        ] {
            let e = serde_json::from_str::<RawKafka>(json).unwrap_err().to_string();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }
}
