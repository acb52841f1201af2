//! Protobuf targets to and from [`TargetConfig`]: the collector's gRPC
//! contract and the gateway's REST bodies share this one mapping.

use std::time::Duration;

use pantau_proto::v1::{self, condition::Condition as C, target::Spec};

use crate::{
    CheckType, ConditionConfig, HeaderCondition, Invalid, JsonCondition, RawTarget, RecordType, TargetConfig,
    TargetError, TargetSpec,
};
use pantau_proto::duration::{from_duration, to_duration};

/// A set, non-zero protobuf duration.
pub fn opt_duration(d: Option<&prost_types::Duration>) -> Option<Duration> {
    d.and_then(from_duration).filter(|d| !d.is_zero())
}

/// A duration field as sent: unset stays unset; a set one must be a valid,
/// non-negative duration (negative seconds or nanos, or nanos of a second or
/// more, are refused rather than replaced by a default). Zero is passed on,
/// for validation to refuse where a field needs more.
pub fn duration_field(field: &str, d: Option<&prost_types::Duration>) -> Result<Option<Duration>, ConvertError> {
    let Some(d) = d else { return Ok(None) };
    if d.seconds < 0 || d.nanos < 0 {
        return Err(err(field, format!("{}s {}ns must not be negative", d.seconds, d.nanos)));
    }
    if d.nanos >= 1_000_000_000 {
        return Err(err(field, format!("nanos {} must be below 1000000000", d.nanos)));
    }
    from_duration(d)
        .map(Some)
        .ok_or_else(|| err(field, "is not a valid duration"))
}

/// An enum field as sent: a value this version does not know is refused,
/// naming the field and the value.
pub fn enum_field<E: TryFrom<i32>>(field: &str, value: i32) -> Result<E, ConvertError> {
    E::try_from(value).map_err(|_| err(field, format!("{value} is not one of its values")))
}

/// The check kind of a spec.
fn kind_of_spec(spec: &Spec) -> (CheckType, v1::CheckKind) {
    match spec {
        Spec::Http(_) => (CheckType::Http, v1::CheckKind::Http),
        Spec::Tcp(_) => (CheckType::Tcp, v1::CheckKind::Tcp),
        Spec::Tls(_) => (CheckType::Tls, v1::CheckKind::Tls),
        Spec::Icmp(_) => (CheckType::Icmp, v1::CheckKind::Icmp),
        Spec::Dns(_) => (CheckType::Dns, v1::CheckKind::Dns),
        Spec::Push(_) => (CheckType::Push, v1::CheckKind::Push),
        Spec::Grpc(_) => (CheckType::Grpc, v1::CheckKind::Grpc),
        Spec::Redis(_) => (CheckType::Redis, v1::CheckKind::Redis),
        Spec::Postgres(_) => (CheckType::Postgres, v1::CheckKind::Postgres),
        Spec::Mysql(_) => (CheckType::Mysql, v1::CheckKind::Mysql),
        Spec::Udp(_) => (CheckType::Udp, v1::CheckKind::Udp),
        Spec::Ssh(_) => (CheckType::Ssh, v1::CheckKind::Ssh),
        Spec::KafkaProducer(_) => (CheckType::KafkaProducer, v1::CheckKind::KafkaProducer),
        Spec::KafkaConsumer(_) => (CheckType::KafkaConsumer, v1::CheckKind::KafkaConsumer),
        Spec::HttpSteps(_) => (CheckType::HttpSteps, v1::CheckKind::HttpSteps),
        Spec::Websocket(_) => (CheckType::Websocket, v1::CheckKind::Websocket),
        Spec::Mqtt(_) => (CheckType::Mqtt, v1::CheckKind::Mqtt),
        Spec::Mail(_) => (CheckType::Mail, v1::CheckKind::Mail),
    }
}

/// Why a protobuf target cannot become a configuration.
#[derive(Debug, thiserror::Error)]
#[error("`{}`: {}", crate::types::quote(field), crate::types::quote(reason))]
pub struct ConvertError {
    pub field: String,
    pub reason: String,
}

fn err(field: &str, reason: impl Into<String>) -> ConvertError {
    ConvertError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

pub fn condition_to_proto(c: &ConditionConfig) -> v1::Condition {
    let condition = match c {
        ConditionConfig::ResponseTimeBelow(d) => C::ResponseTimeBelow(to_duration(*d)),
        ConditionConfig::BodyContains(s) => C::BodyContains(s.clone()),
        ConditionConfig::BodyMatches(s) => C::BodyMatches(s.clone()),
        ConditionConfig::Json(j) => C::Json(v1::JsonCondition {
            path: j.path.clone(),
            equals: j.equals.clone(),
            greater_than: j.greater_than,
            less_than: j.less_than,
            exists: j.exists,
        }),
        ConditionConfig::Header(h) => C::Header(v1::HeaderCondition {
            name: h.name.clone(),
            equals: h.equals.clone(),
            contains: h.contains.clone(),
        }),
    };
    v1::Condition {
        condition: Some(condition),
    }
}

fn condition_from_proto(i: usize, c: &v1::Condition) -> Result<ConditionConfig, ConvertError> {
    condition_at(&format!("spec.http.conditions[{i}]"), c)
}

/// A condition as sent, its errors keyed `field`.
pub(crate) fn condition_at(field: &str, c: &v1::Condition) -> Result<ConditionConfig, ConvertError> {
    let field = field.to_owned();
    Ok(
        match c
            .condition
            .as_ref()
            .ok_or_else(|| err(&field, "is empty: set one condition"))?
        {
            C::ResponseTimeBelow(d) => ConditionConfig::ResponseTimeBelow(
                duration_field(&format!("{field}.response_time_below"), Some(d))?.unwrap_or_default(),
            ),
            C::BodyContains(s) => ConditionConfig::BodyContains(s.clone()),
            C::BodyMatches(s) => ConditionConfig::BodyMatches(s.clone()),
            C::Json(j) => ConditionConfig::Json(JsonCondition {
                path: j.path.clone(),
                equals: j.equals.clone(),
                greater_than: j.greater_than,
                less_than: j.less_than,
                exists: j.exists,
            }),
            C::Header(h) => ConditionConfig::Header(HeaderCondition {
                name: h.name.clone(),
                equals: h.equals.clone(),
                contains: h.contains.clone(),
            }),
        },
    )
}

/// The target a protobuf target describes, parsed by the same
/// [`RawTarget::parse`] as YAML and REST bodies, keys under `target`.
pub fn target_from_proto(t: &v1::Target) -> Result<TargetConfig, TargetError> {
    raw_from_proto(t)
        .map_err(|e| {
            TargetError(vec![Invalid {
                key: format!("target.{}", e.field),
                value: String::new(),
                allowed: e.reason,
            }])
        })?
        .parse("target")
        .map_err(TargetError)
}

/// The protobuf target in the flat wire shape, before it is parsed.
fn raw_from_proto(t: &v1::Target) -> Result<RawTarget, ConvertError> {
    let spec = t.spec.as_ref().ok_or_else(|| {
        err(
            "spec",
            "is required: one of http, tcp, tls, icmp, dns, push, grpc, redis, postgres, mysql, udp, ssh, kafka_producer, kafka_consumer, http_steps, websocket, mqtt, mail",
        )
    })?;
    let (check, spec_kind) = kind_of_spec(spec);
    let kind: v1::CheckKind = enum_field("kind", t.kind)?;
    if kind != v1::CheckKind::Unspecified && kind != spec_kind {
        return Err(err(
            "kind",
            format!(
                "is {} but the spec is {}: leave kind unset or make them agree",
                kind.as_str_name(),
                spec_kind.as_str_name()
            ),
        ));
    }
    // Output-only fields are ignored on input, but an unknown value is still refused.
    let _: v1::TargetSource = enum_field("source", t.source)?;
    let _: v1::BreakerState = enum_field("breaker", t.breaker)?;
    let mut c = RawTarget::new(t.id.clone(), check);
    c.name = nonempty(&t.name);
    c.interval = duration_field("interval", t.interval.as_ref())?;
    c.timeout = duration_field("timeout", t.timeout.as_ref())?;
    c.labels = t.labels.clone().into_iter().collect();
    c.quorum = t.quorum;
    c.depends_on.clone_from(&t.depends_on);
    match spec {
        Spec::Http(h) => {
            c.url = Some(h.url.clone());
            c.method = nonempty(&h.method);
            c.headers = h.headers.clone().into_iter().collect();
            c.body = nonempty(&h.body);
            c.follow_redirects = h.follow_redirects;
            c.verify_tls = h.verify_tls;
            c.reuse_connection = h.reuse_connection;
            c.expected_status = h
                .expected_status
                .iter()
                .map(|s| {
                    u16::try_from(*s).map_err(|_| err("spec.http.expected_status", format!("{s} is not a status code")))
                })
                .collect::<Result<_, _>>()?;
            c.conditions = h
                .conditions
                .iter()
                .enumerate()
                .map(|(i, x)| condition_from_proto(i, x))
                .collect::<Result<_, _>>()?;
            c.warn_days = h.warn_days;
            set_tls_files(&mut c, h.tls.as_ref());
            crate::target::options_from_proto(&mut c, &h.proxy, &h.resolve, &h.dns_server);
        }
        Spec::Tcp(x) => {
            c.address = Some(x.address.clone());
            c.send = nonempty(&x.send);
            c.expect = nonempty(&x.expect);
        }
        Spec::Tls(x) => {
            c.address = Some(x.address.clone());
            c.server_name = nonempty(&x.server_name);
            c.verify_tls = x.verify_tls;
            c.warn_days = x.warn_days;
            set_tls_files(&mut c, x.tls.as_ref());
        }
        Spec::Icmp(x) => {
            c.host = Some(x.host.clone());
            c.count = x
                .count
                .map(|n| u16::try_from(n).map_err(|_| err("spec.icmp.count", format!("{n} is too many"))))
                .transpose()?;
            c.max_loss_percent = x.max_loss_percent;
        }
        Spec::Dns(x) => {
            c.name_to_resolve = Some(x.name.clone());
            c.record_type = match x.record_type.to_ascii_uppercase().as_str() {
                "" => None,
                "A" => Some(RecordType::A),
                "AAAA" => Some(RecordType::Aaaa),
                "CNAME" => Some(RecordType::Cname),
                "MX" => Some(RecordType::Mx),
                "TXT" => Some(RecordType::Txt),
                "NS" => Some(RecordType::Ns),
                other => {
                    return Err(err(
                        "spec.dns.record_type",
                        format!("`{other}` is not one of A, AAAA, CNAME, MX, TXT, NS"),
                    ));
                }
            };
            c.resolver = nonempty(&x.resolver);
            c.expected_answers.clone_from(&x.expected_answers);
        }
        Spec::Push(x) => {
            c.token = Some(x.token.clone());
            c.grace = duration_field("spec.push.grace", x.grace.as_ref())?;
        }
        Spec::Grpc(x) => {
            c.address = Some(x.address.clone());
            c.service = nonempty(&x.service);
            c.use_tls = x.use_tls;
            c.server_name = nonempty(&x.server_name);
            c.verify_tls = x.verify_tls;
            set_tls_files(&mut c, x.tls.as_ref());
        }
        Spec::Redis(x) => {
            c.address = Some(x.address.clone());
            c.username = nonempty(&x.username);
            c.password = nonempty(&x.password);
            c.query = nonempty(&x.query);
            c.expected_reply.clone_from(&x.expected_reply);
        }
        Spec::Postgres(x) | Spec::Mysql(x) => {
            c.address = Some(x.address.clone());
            c.username = Some(x.username.clone());
            c.password = nonempty(&x.password);
            c.database = nonempty(&x.database);
            c.query = nonempty(&x.query);
            c.expected_reply.clone_from(&x.expected_reply);
        }
        Spec::Udp(x) => {
            c.address = Some(x.address.clone());
            c.send = Some(x.send.clone());
            c.expect = nonempty(&x.expect);
        }
        Spec::Ssh(x) => {
            c.address = Some(x.address.clone());
            c.expect = nonempty(&x.expect);
        }
        Spec::KafkaProducer(x) | Spec::KafkaConsumer(x) => c.kafka = Some(crate::target::kafka_from_proto(x)),
        Spec::HttpSteps(x) => crate::target::steps_from_proto(&mut c, x)?,
        Spec::Websocket(x) => {
            c.url = Some(x.url.clone());
            c.headers = x.headers.clone().into_iter().collect();
            c.send = nonempty(&x.send);
            c.expect = nonempty(&x.expect);
            c.expect_matches = nonempty(&x.expect_matches);
            c.verify_tls = x.verify_tls;
            set_tls_files(&mut c, x.tls.as_ref());
        }
        Spec::Mqtt(x) => {
            c.address = Some(x.address.clone());
            c.username = nonempty(&x.username);
            c.password = nonempty(&x.password);
            c.topic = nonempty(&x.topic);
            c.use_tls = x.use_tls;
            c.verify_tls = x.verify_tls;
            set_tls_files(&mut c, x.tls.as_ref());
        }
        Spec::Mail(x) => {
            c.protocol = match x.protocol.as_str() {
                "" => None,
                name => Some(crate::MailProtocol::from_name(name).ok_or_else(|| {
                    err(
                        "spec.mail.protocol",
                        format!("`{}` is not one of smtp, imap, pop3", crate::types::quote(name)),
                    )
                })?),
            };
            c.address = Some(x.address.clone());
            c.use_tls = x.use_tls;
            c.starttls = x.starttls;
            c.expect = nonempty(&x.expect);
            c.server_name = nonempty(&x.server_name);
            c.verify_tls = x.verify_tls;
            c.warn_days = x.warn_days;
            set_tls_files(&mut c, x.tls.as_ref());
        }
    }
    Ok(c)
}

pub(crate) fn set_tls_files(c: &mut RawTarget, f: Option<&v1::TlsFiles>) {
    let path = |s: &str| nonempty(s).map(std::path::PathBuf::from);
    if let Some(f) = f {
        c.ca_file = path(&f.ca_file);
        c.client_cert = path(&f.client_cert);
        c.client_key = path(&f.client_key);
    }
}

pub(crate) fn tls_files_to_proto(f: &crate::TlsFiles) -> Option<v1::TlsFiles> {
    let text = |p: &std::path::Path| p.to_string_lossy().into_owned();
    (!f.is_empty()).then(|| v1::TlsFiles {
        ca_file: f.ca_file.as_deref().map(text).unwrap_or_default(),
        client_cert: f.client.as_deref().map(|(c, _)| text(c)).unwrap_or_default(),
        client_key: f.client.as_deref().map(|(_, k)| text(k)).unwrap_or_default(),
    })
}

/// The check-specific part of a target, as protobuf. Secrets are copied as
/// they are: mask the configuration first where the answer leaves the process.
pub fn spec_to_proto(t: &TargetConfig) -> Spec {
    match &t.spec {
        TargetSpec::Http(h) => Spec::Http(v1::HttpSpec {
            url: h.url.to_string(),
            method: h.method().unwrap_or_default().to_owned(),
            headers: h.headers().clone().into_iter().collect(),
            body: h.body().unwrap_or_default().to_owned(),
            follow_redirects: h.follow_redirects,
            verify_tls: h.verify_tls,
            reuse_connection: h.reuse_connection,
            expected_status: h.expected_status.iter().map(|s| u32::from(*s)).collect(),
            conditions: h.conditions().iter().map(condition_to_proto).collect(),
            warn_days: h.warn_days,
            tls: tls_files_to_proto(h.tls()),
            proxy: crate::target::options_to_proto(h.options()).0,
            resolve: crate::target::options_to_proto(h.options()).1,
            dns_server: crate::target::options_to_proto(h.options()).2,
        }),
        TargetSpec::Tcp(x) => Spec::Tcp(v1::TcpSpec {
            address: x.address.to_string(),
            send: x.send.clone().unwrap_or_default(),
            expect: x.expect.clone().unwrap_or_default(),
        }),
        TargetSpec::Tls(x) => Spec::Tls(v1::TlsSpec {
            address: x.address.to_string(),
            server_name: x.server_name.clone().unwrap_or_default(),
            verify_tls: x.verify_tls,
            warn_days: x.warn_days,
            tls: tls_files_to_proto(&x.tls),
        }),
        TargetSpec::Icmp(x) => Spec::Icmp(v1::IcmpSpec {
            host: x.host.clone(),
            count: x.count.map(u32::from),
            max_loss_percent: x.max_loss_percent,
        }),
        TargetSpec::Dns(x) => Spec::Dns(v1::DnsSpec {
            name: x.name_to_resolve.clone(),
            record_type: x
                .record_type
                .map(|r| format!("{r:?}").to_uppercase())
                .unwrap_or_default(),
            resolver: x.resolver.map(|a| a.to_string()).unwrap_or_default(),
            expected_answers: x.expected_answers.clone(),
        }),
        TargetSpec::Push(x) => Spec::Push(v1::PushSpec {
            token: x.token.clone(),
            grace: x.grace.map(|g| to_duration(g.get())),
        }),
        TargetSpec::Grpc(x) => Spec::Grpc(v1::GrpcSpec {
            address: x.address.to_string(),
            service: x.service.clone(),
            use_tls: x.use_tls,
            server_name: x.server_name.clone().unwrap_or_default(),
            verify_tls: x.verify_tls,
            tls: tls_files_to_proto(&x.tls),
        }),
        TargetSpec::Redis(x) => Spec::Redis(v1::RedisSpec {
            address: x.address.to_string(),
            username: x.username.clone().unwrap_or_default(),
            password: x.password.clone().unwrap_or_default(),
            query: x.command.join(" "),
            expected_reply: x.expected_reply.clone(),
        }),
        TargetSpec::Postgres(x) => Spec::Postgres(sql_to_proto(x)),
        TargetSpec::Mysql(x) => Spec::Mysql(sql_to_proto(x)),
        TargetSpec::Udp(x) => Spec::Udp(v1::UdpSpec {
            address: x.address.to_string(),
            send: x.send.clone(),
            expect: x.expect.clone().unwrap_or_default(),
        }),
        TargetSpec::Ssh(x) => Spec::Ssh(v1::SshSpec {
            address: x.address.to_string(),
            expect: x.expect.clone().unwrap_or_default(),
        }),
        TargetSpec::KafkaProducer(k) => Spec::KafkaProducer(crate::target::kafka_to_proto(k)),
        TargetSpec::KafkaConsumer(k) => Spec::KafkaConsumer(crate::target::kafka_to_proto(k)),
        TargetSpec::HttpSteps(x) => Spec::HttpSteps(crate::target::steps_to_proto(x)),
        TargetSpec::Websocket(x) => Spec::Websocket(v1::WebSocketSpec {
            url: x.url.as_str().to_owned(),
            headers: x.headers.clone().into_iter().collect(),
            send: x.send.clone().unwrap_or_default(),
            expect: x.expect.clone().unwrap_or_default(),
            expect_matches: x
                .expect_matches
                .as_ref()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default(),
            verify_tls: x.verify_tls,
            tls: tls_files_to_proto(&x.tls),
        }),
        TargetSpec::Mqtt(x) => Spec::Mqtt(v1::MqttSpec {
            address: x.address.to_string(),
            username: x.username.clone().unwrap_or_default(),
            password: x.password.clone().unwrap_or_default(),
            topic: x.topic.clone().unwrap_or_default(),
            use_tls: x.use_tls,
            verify_tls: x.verify_tls,
            tls: tls_files_to_proto(&x.tls),
        }),
        TargetSpec::Mail(x) => Spec::Mail(v1::MailSpec {
            protocol: x.protocol.as_str().to_owned(),
            address: x.address.to_string(),
            use_tls: x.use_tls,
            starttls: x.starttls,
            expect: x.expect.clone().unwrap_or_default(),
            server_name: x.server_name.clone().unwrap_or_default(),
            verify_tls: x.verify_tls,
            warn_days: x.warn_days,
            tls: tls_files_to_proto(&x.tls),
        }),
    }
}

fn sql_to_proto(x: &crate::SqlTarget) -> v1::SqlSpec {
    v1::SqlSpec {
        address: x.address.to_string(),
        username: x.username.clone(),
        password: x.password.clone().unwrap_or_default(),
        database: x.database.clone().unwrap_or_default(),
        query: x.query.clone().unwrap_or_default(),
        expected_reply: x.expected_reply.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(quorum: Option<u32>) -> v1::Target {
        v1::Target {
            id: "web".into(),
            quorum,
            spec: Some(Spec::Tcp(v1::TcpSpec {
                address: "127.0.0.1:1".into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn a_grpc_target_travels_in_the_protobuf_and_a_bad_one_is_refused_by_name() {
        let mut t = tcp(None);
        t.spec = Some(Spec::Grpc(v1::GrpcSpec {
            address: "127.0.0.1:50051".into(),
            service: "pantau.v1.CollectorService".into(),
            ..Default::default()
        }));
        let c = target_from_proto(&t).unwrap();
        assert_eq!(c.check(), CheckType::Grpc);
        let Spec::Grpc(back) = spec_to_proto(&c) else { panic!() };
        assert_eq!(back.service, "pantau.v1.CollectorService");
        t.kind = v1::CheckKind::Tcp.into();
        assert!(target_from_proto(&t).unwrap_err().to_string().contains("target.kind"));
        t.kind = 99;
        assert!(target_from_proto(&t).unwrap_err().to_string().contains("target.kind"));
        t.kind = 0;
        t.spec = Some(Spec::Grpc(v1::GrpcSpec {
            address: "127.0.0.1:50051".into(),
            service: "a b".into(),
            verify_tls: Some(false),
            ..Default::default()
        }));
        let e = target_from_proto(&t).unwrap_err().to_string();
        assert!(e.contains("target.service") && e.contains("target.verify_tls"), "{e}");
    }

    #[test]
    fn the_new_probes_travel_in_the_protobuf_and_bad_ones_are_refused_by_name() {
        let specs = [
            Spec::Websocket(v1::WebSocketSpec {
                url: "wss://example.org/live".into(),
                headers: [("Authorization".to_owned(), "Bearer x".to_owned())].into(),
                send: "ping".into(),
                expect_matches: "^pong".into(),
                verify_tls: Some(false),
                ..Default::default()
            }),
            Spec::Mqtt(v1::MqttSpec {
                address: "127.0.0.1:1883".into(),
                username: "probe".into(),
                password: "pw".into(),
                topic: "pantau/canary".into(),
                ..Default::default()
            }),
            Spec::Mail(v1::MailSpec {
                protocol: "imap".into(),
                address: "127.0.0.1:143".into(),
                starttls: Some(true),
                warn_days: Some(30),
                ..Default::default()
            }),
        ];
        for (spec, check) in specs
            .into_iter()
            .zip([CheckType::Websocket, CheckType::Mqtt, CheckType::Mail])
        {
            let mut t = tcp(None);
            t.spec = Some(spec.clone());
            let c = target_from_proto(&t).unwrap();
            assert_eq!(c.check(), check);
            assert_eq!(spec_to_proto(&c), spec);
        }
        let bad = [
            (
                Spec::Websocket(v1::WebSocketSpec {
                    url: "http://example.org".into(),
                    ..Default::default()
                }),
                "target.url",
            ),
            (
                Spec::Websocket(v1::WebSocketSpec {
                    url: "ws://example.org".into(),
                    expect_matches: "([".into(),
                    ..Default::default()
                }),
                "target.expect_matches",
            ),
            (
                Spec::Mqtt(v1::MqttSpec {
                    address: "127.0.0.1:1883".into(),
                    topic: "a/#".into(),
                    ..Default::default()
                }),
                "target.topic",
            ),
            (
                Spec::Mail(v1::MailSpec {
                    protocol: "smtps".into(),
                    address: "127.0.0.1:465".into(),
                    ..Default::default()
                }),
                "target.spec.mail.protocol",
            ),
            (
                Spec::Mail(v1::MailSpec {
                    address: "127.0.0.1:25".into(),
                    ..Default::default()
                }),
                "target.protocol",
            ),
        ];
        for (spec, key) in bad {
            let mut t = tcp(None);
            t.spec = Some(spec);
            let e = target_from_proto(&t).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
        let mut t = tcp(None);
        t.kind = v1::CheckKind::Mail.into();
        assert!(target_from_proto(&t).unwrap_err().to_string().contains("target.kind"));
    }

    #[test]
    fn quorum_travels_in_the_protobuf_and_a_bad_one_is_refused_by_name() {
        let t = target_from_proto(&tcp(Some(2))).unwrap();
        assert_eq!(t.quorum().map(std::num::NonZeroU32::get), Some(2));
        assert_eq!(target_from_proto(&tcp(None)).unwrap().quorum(), None);
        for (q, why) in [(0, "at least 1"), (65, "at most 64"), (u32::MAX, "at most 64")] {
            let e = target_from_proto(&tcp(Some(q))).unwrap_err().to_string();
            assert!(e.contains("target.quorum") && e.contains(why), "{q}: {e}");
        }
    }
}
